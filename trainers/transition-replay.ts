import { type JsonObject, type SerializedArray, deserializeArray, serializeArray } from '../runtime/core/checkpoint-format';
import type { Rng } from '../runtime/core/rng';

/**
 * A ring buffer of single transitions (s, a, r, s', terminated) in flat typed arrays, one row
 * per transition, for off-policy learners that sample independent steps (SAC). Every row also
 * keeps two small integers: the agent slot and the task it came from, so one buffer serves
 * parameter-shared multi-agent and multi-task learning.
 *
 * Memory grows by doubling up to `capacity` rows, so a large capacity (CleanRL's 10⁶) costs
 * nothing until it is filled. Once full, the oldest row is overwritten.
 */
export interface TransitionShape {
  obsDim: number;
  actDim: number;
}

/** What `capture` returns and `restore` takes (stored under a prefix in a checkpoint). */
export interface StoredReplay {
  arrays: Record<string, SerializedArray>;
  json: JsonObject;
}

const MIN_ROWS = 1024;

export class TransitionReplay {
  readonly shape: TransitionShape;
  readonly capacity: number;
  /** [rows, obsDim] */
  obs: Float32Array;
  /** [rows, obsDim]: the observation after the action (the final one where an episode ended). */
  nextObs: Float32Array;
  /** [rows, actDim] */
  actions: Float32Array;
  rewards: Float32Array;
  /** 1 where the task ended for the agent (no bootstrap); truncations are 0. */
  terminated: Uint8Array;
  /** Agent slot of the row. */
  agent: Int32Array;
  /** Task index of the row (0 for single-task envs). */
  task: Int32Array;
  private filled = 0;
  /** Row the next insert writes. */
  private cursor = 0;

  constructor(shape: TransitionShape, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`TransitionReplay: capacity must be a positive integer, got ${capacity}`);
    this.shape = shape;
    this.capacity = capacity;
    const rows = Math.min(capacity, MIN_ROWS);
    this.obs = new Float32Array(rows * shape.obsDim);
    this.nextObs = new Float32Array(rows * shape.obsDim);
    this.actions = new Float32Array(rows * shape.actDim);
    this.rewards = new Float32Array(rows);
    this.terminated = new Uint8Array(rows);
    this.agent = new Int32Array(rows);
    this.task = new Int32Array(rows);
  }

  /** Transitions held. */
  get size(): number {
    return this.filled;
  }

  private get allocatedRows(): number {
    return this.rewards.length;
  }

  /**
   * Appends one transition: `obsDim` numbers of `obs` from `obsAt` (and of `nextObs` from
   * `nextObsAt`), `actDim` numbers of `action` from `actionAt`.
   */
  add(
    obs: Float32Array,
    obsAt: number,
    action: Float32Array,
    actionAt: number,
    reward: number,
    nextObs: Float32Array,
    nextObsAt: number,
    terminated: boolean,
    agent: number,
    task: number,
  ): void {
    const { obsDim, actDim } = this.shape;
    if (this.cursor >= this.allocatedRows) this.grow(Math.min(this.capacity, 2 * this.allocatedRows));
    const r = this.cursor;
    this.obs.set(obs.subarray(obsAt, obsAt + obsDim), r * obsDim);
    this.nextObs.set(nextObs.subarray(nextObsAt, nextObsAt + obsDim), r * obsDim);
    this.actions.set(action.subarray(actionAt, actionAt + actDim), r * actDim);
    this.rewards[r] = reward;
    this.terminated[r] = terminated ? 1 : 0;
    this.agent[r] = agent;
    this.task[r] = task;
    this.cursor = (r + 1) % this.capacity;
    this.filled = Math.min(this.filled + 1, this.capacity);
  }

  /** Fills `out` with uniformly drawn row indices (with replacement, as CleanRL's buffer). */
  sampleRows(rng: Rng, out: Int32Array): void {
    if (this.filled === 0) throw new Error('TransitionReplay: cannot sample from an empty buffer');
    for (let k = 0; k < out.length; k++) out[k] = rng.int(this.filled);
  }

  private grow(rows: number): void {
    const { obsDim, actDim } = this.shape;
    const bigger = <T extends Float32Array | Uint8Array | Int32Array>(a: T, width: number): T => {
      const b = new (a.constructor as { new (n: number): T })(rows * width);
      b.set(a);
      return b;
    };
    this.obs = bigger(this.obs, obsDim);
    this.nextObs = bigger(this.nextObs, obsDim);
    this.actions = bigger(this.actions, actDim);
    this.rewards = bigger(this.rewards, 1);
    this.terminated = bigger(this.terminated, 1);
    this.agent = bigger(this.agent, 1);
    this.task = bigger(this.task, 1);
  }

  /** The filled rows (in storage order) and the write position. */
  capture(): StoredReplay {
    const { obsDim, actDim } = this.shape;
    const n = this.filled;
    return {
      arrays: {
        obs: serializeArray(this.obs.slice(0, n * obsDim)),
        next_obs: serializeArray(this.nextObs.slice(0, n * obsDim)),
        actions: serializeArray(this.actions.slice(0, n * actDim)),
        rewards: serializeArray(this.rewards.slice(0, n)),
        terminated: serializeArray(this.terminated.slice(0, n)),
        agent: serializeArray(this.agent.slice(0, n)),
        task: serializeArray(this.task.slice(0, n)),
      },
      json: { size: n, cursor: this.cursor, capacity: this.capacity, obsDim, actDim },
    };
  }

  /** Loads a captured replay; `who` prefixes errors. Nothing changes when the state does not fit. */
  restore(state: StoredReplay, who: string): void {
    const { obsDim, actDim } = this.shape;
    const { json } = state;
    const int = (key: string): number => {
      const v = json[key];
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`${who}: replay json '${key}' is missing or not a non-negative integer`);
      return v;
    };
    const size = int('size');
    const cursor = int('cursor');
    if (int('capacity') !== this.capacity || int('obsDim') !== obsDim || int('actDim') !== actDim) {
      throw new Error(`${who}: replay was captured with capacity ${String(json.capacity)}, obs ${String(json.obsDim)}, actions ${String(json.actDim)}; this one has ${this.capacity}, ${obsDim}, ${actDim}`);
    }
    if (size > this.capacity || cursor >= this.capacity || (size < this.capacity && cursor !== size)) {
      throw new Error(`${who}: replay json has size ${size} and cursor ${cursor}, inconsistent with capacity ${this.capacity}`);
    }
    const array = <C extends Float32ArrayConstructor | Uint8ArrayConstructor | Int32ArrayConstructor>(key: string, Ctor: C, width: number): InstanceType<C> => {
      const s = state.arrays[key];
      if (!s) throw new Error(`${who}: no replay array '${key}'`);
      const a = deserializeArray(s);
      if (!(a instanceof Ctor) || a.length !== size * width) throw new Error(`${who}: replay array '${key}' is a ${a.constructor.name}[${a.length}], expected ${Ctor.name}[${size * width}]`);
      return a as InstanceType<C>;
    };
    const loaded = {
      obs: array('obs', Float32Array, obsDim),
      nextObs: array('next_obs', Float32Array, obsDim),
      actions: array('actions', Float32Array, actDim),
      rewards: array('rewards', Float32Array, 1),
      terminated: array('terminated', Uint8Array, 1),
      agent: array('agent', Int32Array, 1),
      task: array('task', Int32Array, 1),
    };
    // Room for the stored rows, plus the usual headroom, so growth continues as it would have.
    let rows = Math.min(this.capacity, MIN_ROWS);
    while (rows < size) rows = Math.min(this.capacity, 2 * rows);
    const place = <T extends Float32Array | Uint8Array | Int32Array>(a: T, width: number): T => {
      const b = new (a.constructor as { new (n: number): T })(rows * width);
      b.set(a);
      return b;
    };
    this.obs = place(loaded.obs, obsDim);
    this.nextObs = place(loaded.nextObs, obsDim);
    this.actions = place(loaded.actions, actDim);
    this.rewards = place(loaded.rewards, 1);
    this.terminated = place(loaded.terminated, 1);
    this.agent = place(loaded.agent, 1);
    this.task = place(loaded.task, 1);
    this.filled = size;
    this.cursor = cursor;
  }
}
