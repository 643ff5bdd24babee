/**
 * Whole-episode replay for value-based learners (QMIX, VDN, IQL), kept the way EPyMARL keeps
 * it: a FIFO of at most `capacity` finished episodes, sampled uniformly (without replacement
 * within one batch) and padded into a batch with a `filled` mask. Recurrent agents need whole
 * episodes, because their hidden state is rebuilt from the first step at every update.
 *
 *  - `EpisodeCollector` turns the stream's per-step `Transition`s into finished `Episode`s,
 *    one partial episode per env.
 *  - `EpisodeReplay` stores them and samples `EpisodeBatch`es.
 *
 * Episodes are stored at their own length rather than padded to `maxEpisodeSteps`: a sampled
 * batch is padded only to its longest episode, which is what EPyMARL trains on too (it cuts
 * every batch to `max_t_filled()`), and short-episode tasks do not pay for the step limit in
 * memory. `sample(…, { padToMaxSteps: true })` pads to the step limit instead.
 */
import { type JsonObject, type SerializedArray, type StoredArray, deserializeArray, serializeArray } from '../runtime/core/checkpoint-format';
import type { Transition } from '../agents/experience';
import type { Rng } from '../runtime/core/rng';
import type { EnvShape, VectorLayout } from '../envs/env-shape';

/** The sizes every stored episode shares. */
export interface EpisodeShape {
  numAgents: number;
  obsDim: number;
  /** 0 when the env has no global state. */
  stateDim: number;
  numActions: number;
  maxEpisodeSteps: number;
}

/**
 * One finished episode of T steps. Observation-like fields have T + 1 rows: row t is what the
 * agents saw before step t, and row T is the observation after the last step (the final
 * observation), so the last step has a next observation to bootstrap from.
 */
export interface Episode {
  /** T, 1 ≤ T ≤ maxEpisodeSteps. */
  length: number;
  /** [T+1, A, obsDim] */
  obs: Float32Array;
  /** [T+1, stateDim] */
  state: Float32Array;
  /** Legal actions, [T+1, A, numActions], 1 = legal. */
  avail: Uint8Array;
  /** [T+1, A] */
  alive: Uint8Array;
  /** [T, A] */
  actions: Int32Array;
  /** Team reward, [T]. */
  reward: Float32Array;
  /** [T]: 1 only at the last step, and only when the episode ended by termination (not a time limit). */
  terminated: Uint8Array;
}

/**
 * B episodes padded to T steps, time-major (row t of episode b at index t·B + b), which is the
 * order a recurrent unroll consumes. Padding is zero everywhere, including `alive` and `avail`.
 */
export interface EpisodeBatch {
  /** B */
  size: number;
  /** T: the longest sampled episode (or `maxEpisodeSteps` when asked). */
  steps: number;
  /** [T+1, B, A, obsDim] */
  obs: Float32Array;
  /** [T+1, B, stateDim] */
  state: Float32Array;
  /** [T+1, B, A, numActions] */
  avail: Uint8Array;
  /** [T+1, B, A] */
  alive: Uint8Array;
  /** [T, B, A] */
  actions: Int32Array;
  /** [T, B] */
  reward: Float32Array;
  /** [T, B] */
  terminated: Uint8Array;
  /** [T, B]: 1 where step t is a real step of episode b. */
  filled: Uint8Array;
}

/** What a buffer or collector hands to a checkpoint. */
export interface StoredState {
  arrays: Record<string, SerializedArray>;
  json: JsonObject;
}

type EpisodeField = 'obs' | 'state' | 'avail' | 'alive' | 'actions' | 'reward' | 'terminated';
const FIELDS: readonly EpisodeField[] = ['obs', 'state', 'avail', 'alive', 'actions', 'reward', 'terminated'];

/** Numbers per row of each field, and whether the field has the extra final-observation row. */
function fieldLayout(s: EpisodeShape): Record<EpisodeField, { width: number; obsRow: boolean }> {
  const A = s.numAgents;
  return {
    obs: { width: A * s.obsDim, obsRow: true },
    state: { width: s.stateDim, obsRow: true },
    avail: { width: A * s.numActions, obsRow: true },
    alive: { width: A, obsRow: true },
    actions: { width: A, obsRow: false },
    reward: { width: 1, obsRow: false },
    terminated: { width: 1, obsRow: false },
  };
}

function emptyEpisode(s: EpisodeShape, T: number): Episode {
  const L = fieldLayout(s);
  const rows = (f: EpisodeField) => (L[f].obsRow ? T + 1 : T) * L[f].width;
  return {
    length: T,
    obs: new Float32Array(rows('obs')),
    state: new Float32Array(rows('state')),
    avail: new Uint8Array(rows('avail')),
    alive: new Uint8Array(rows('alive')),
    actions: new Int32Array(rows('actions')),
    reward: new Float32Array(rows('reward')),
    terminated: new Uint8Array(rows('terminated')),
  };
}

export function episodeShapeOf(shape: EnvShape): EpisodeShape {
  const { numAgents, obsDim, stateDim, numActions, maxEpisodeSteps } = shape;
  return { numAgents, obsDim, stateDim, numActions, maxEpisodeSteps };
}

function sameShape(a: EpisodeShape, b: JsonObject): boolean {
  return (Object.keys(a) as Array<keyof EpisodeShape>).every((k) => a[k] === b[k]);
}

function shapeJson(s: EpisodeShape): JsonObject {
  return { ...s };
}

function readArray<T extends StoredArray>(arrays: Record<string, SerializedArray>, key: string, type: string, owner: string): T {
  const s = arrays[key];
  if (!s) throw new Error(`${owner}: stored state has no array '${key}'`);
  const a = deserializeArray(s);
  if (a.constructor.name !== type) throw new Error(`${owner}: array '${key}' is a ${a.constructor.name}, expected ${type}`);
  return a as T;
}

// ---------------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------------

export class EpisodeReplay {
  readonly shape: EpisodeShape;
  readonly capacity: number;
  /** Slot i holds an episode for i < size; `next` is the slot the next insert overwrites. */
  private slots: Episode[] = [];
  private next = 0;

  constructor(shape: EpisodeShape, capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`EpisodeReplay: capacity must be a positive integer, got ${capacity}`);
    this.shape = shape;
    this.capacity = capacity;
  }

  get size(): number {
    return this.slots.length;
  }

  /** The episode in slot i (0 ≤ i < size); slots fill in order, then the oldest is overwritten. */
  episode(i: number): Episode {
    const ep = this.slots[i];
    if (!ep) throw new Error(`EpisodeReplay: no episode in slot ${i} (size ${this.size})`);
    return ep;
  }

  /** Stores an episode (kept by reference: do not modify it afterwards), evicting the oldest when full. */
  insert(episode: Episode): void {
    this.check(episode);
    if (this.slots.length < this.capacity) this.slots.push(episode);
    else this.slots[this.next] = episode;
    this.next = (this.next + 1) % this.capacity;
  }

  /** n distinct episodes chosen uniformly with `rng`, padded into one time-major batch. */
  sample(n: number, rng: Rng, options: { padToMaxSteps?: boolean } = {}): EpisodeBatch {
    if (n > this.size) throw new Error(`EpisodeReplay: cannot sample ${n} episodes from ${this.size}`);
    // Partial Fisher–Yates over a fresh identity permutation, so a draw depends on the RNG alone.
    const order = Int32Array.from({ length: this.size }, (_, i) => i);
    const picked: Episode[] = [];
    for (let i = 0; i < n; i++) {
      const j = i + rng.int(this.size - i);
      const tmp = order[i];
      order[i] = order[j];
      order[j] = tmp;
      picked.push(this.slots[order[i]]);
    }
    const T = options.padToMaxSteps ? this.shape.maxEpisodeSteps : Math.max(...picked.map((e) => e.length));
    return padBatch(this.shape, picked, T);
  }

  /** Contents as typed arrays: every field of every slot concatenated in slot order. */
  capture(): StoredState {
    const arrays: Record<string, SerializedArray> = { lengths: serializeArray(Int32Array.from(this.slots, (e) => e.length)) };
    const blank = emptyEpisode(this.shape, 0);
    for (const f of FIELDS) {
      const total = this.slots.reduce((n, e) => n + e[f].length, 0);
      const all = new (blank[f].constructor as new (n: number) => StoredArray)(total);
      let at = 0;
      for (const e of this.slots) {
        (all as Float32Array).set(e[f] as Float32Array, at);
        at += e[f].length;
      }
      arrays[f] = serializeArray(all);
    }
    return { arrays, json: { shape: shapeJson(this.shape), capacity: this.capacity, next: this.next } };
  }

  /** Replaces the contents with a captured state; throws naming what does not fit. */
  restore(state: StoredState): void {
    const owner = 'EpisodeReplay.restore';
    const { json, arrays } = state;
    const shape = json.shape;
    if (typeof shape !== 'object' || shape === null || Array.isArray(shape) || !sameShape(this.shape, shape)) {
      throw new Error(`${owner}: stored episode shape ${JSON.stringify(shape)} differs from ${JSON.stringify(this.shape)}`);
    }
    if (json.capacity !== this.capacity) throw new Error(`${owner}: stored capacity ${String(json.capacity)} differs from ${this.capacity}`);
    const lengths = readArray<Int32Array>(arrays, 'lengths', 'Int32Array', owner);
    const next = json.next;
    if (typeof next !== 'number' || !Number.isInteger(next) || next < 0 || next >= this.capacity || lengths.length > this.capacity) {
      throw new Error(`${owner}: bad slot pointer ${String(next)} or ${lengths.length} episodes for capacity ${this.capacity}`);
    }
    const slots = Array.from(lengths, (T) => emptyEpisode(this.shape, T));
    for (const f of FIELDS) {
      const all = readArray<StoredArray>(arrays, f, emptyEpisode(this.shape, 0)[f].constructor.name, owner);
      const total = slots.reduce((n, e) => n + e[f].length, 0);
      if (all.length !== total) throw new Error(`${owner}: array '${f}' has ${all.length} values, the stored lengths need ${total}`);
      let at = 0;
      for (const e of slots) {
        (e[f] as Float32Array).set((all as Float32Array).subarray(at, at + e[f].length));
        at += e[f].length;
      }
    }
    this.slots = slots;
    this.next = next;
  }

  private check(ep: Episode): void {
    const L = fieldLayout(this.shape);
    const T = ep.length;
    if (!Number.isInteger(T) || T < 1 || T > this.shape.maxEpisodeSteps) {
      throw new Error(`EpisodeReplay: episode length ${T} is outside 1..${this.shape.maxEpisodeSteps}`);
    }
    for (const f of FIELDS) {
      const want = (L[f].obsRow ? T + 1 : T) * L[f].width;
      if (ep[f].length !== want) throw new Error(`EpisodeReplay: episode field '${f}' has ${ep[f].length} values, expected ${want} for ${T} steps`);
    }
  }
}

/** Copies episodes into a zero-padded, time-major batch of T steps. */
function padBatch(shape: EpisodeShape, episodes: readonly Episode[], T: number): EpisodeBatch {
  const B = episodes.length;
  const L = fieldLayout(shape);
  const size = (f: EpisodeField) => (L[f].obsRow ? T + 1 : T) * B * L[f].width;
  const batch: EpisodeBatch = {
    size: B,
    steps: T,
    obs: new Float32Array(size('obs')),
    state: new Float32Array(size('state')),
    avail: new Uint8Array(size('avail')),
    alive: new Uint8Array(size('alive')),
    actions: new Int32Array(size('actions')),
    reward: new Float32Array(size('reward')),
    terminated: new Uint8Array(size('terminated')),
    filled: new Uint8Array(T * B),
  };
  episodes.forEach((ep, b) => {
    for (const f of FIELDS) {
      const { width, obsRow } = L[f];
      const rows = obsRow ? ep.length + 1 : ep.length;
      const src = ep[f] as Float32Array;
      const dst = batch[f] as Float32Array;
      for (let t = 0; t < rows; t++) dst.set(src.subarray(t * width, (t + 1) * width), (t * B + b) * width);
    }
    for (let t = 0; t < ep.length; t++) batch.filled[t * B + b] = 1;
  });
  return batch;
}

// ---------------------------------------------------------------------------------------------
// Building episodes from the transition stream
// ---------------------------------------------------------------------------------------------

/**
 * Assembles each env's consecutive transitions into episodes. An episode opens at a transition
 * flagged `episodeStart` (steps seen before the first such flag are skipped: their episode's
 * beginning is unknown), and is handed out when `episodeDone` arrives; aborted episodes
 * (a worker restart cut them) are dropped.
 *
 * Team reward: the sum of the agents' rewards, or with `sharedTeamReward` the reward of the
 * first agent acting at that step. The episode counts as terminated unless a live agent was
 * truncated without also terminating (a time limit), so truncated episodes bootstrap from
 * their final observation. That final row takes its observation/state from `nextObs` /
 * `nextState`; the stream gives no legal actions for it (`nextMasks` belong to the next
 * episode), so it reuses the last step's masks for the agents that did not terminate.
 */
export class EpisodeCollector {
  readonly shape: EpisodeShape;
  private readonly numEnvs: number;
  private readonly sharedTeamReward: boolean;
  /** Per env: steps of its open episode so far, or −1 when none is open. */
  private readonly steps: Int32Array;
  /** Per env, sized for the longest allowed episode and reused from one episode to the next. */
  private readonly buffers: Episode[];

  constructor(layout: VectorLayout) {
    this.shape = episodeShapeOf(layout);
    this.numEnvs = layout.numEnvs;
    this.sharedTeamReward = layout.sharedTeamReward;
    this.steps = new Int32Array(layout.numEnvs).fill(-1);
    this.buffers = Array.from({ length: layout.numEnvs }, () => emptyEpisode(this.shape, this.shape.maxEpisodeSteps));
  }

  /** Adds one vector step; returns the episodes it completed (in env order). */
  add(tr: Transition): Episode[] {
    const { numAgents: A, obsDim, stateDim, numActions: K, maxEpisodeSteps } = this.shape;
    const l = tr.layout;
    if (l.numEnvs !== this.numEnvs || l.numAgents !== A || l.obsDim !== obsDim || l.numActions !== K || l.stateDim !== stateDim) {
      throw new Error('EpisodeCollector: transition layout differs from the one the collector was built for');
    }
    const done: Episode[] = [];
    for (let e = 0; e < this.numEnvs; e++) {
      if (tr.episodeStart[e]) this.steps[e] = 0;
      const t = this.steps[e];
      if (t < 0) continue;
      if (t >= maxEpisodeSteps) throw new Error(`EpisodeCollector: env ${e} ran more than maxEpisodeSteps = ${maxEpisodeSteps} steps without ending its episode`);
      const buf = this.buffers[e];
      writeObservationRow(buf, this.shape, t, e, tr.obs, tr.state, tr.masks, tr.alive);
      let reward = 0;
      let rewarded = false;
      for (let a = 0; a < A; a++) {
        const i = e * A + a;
        buf.actions[t * A + a] = tr.actions[i * l.actDim];
        if (!this.sharedTeamReward) reward += tr.rewards[i];
        else if (!rewarded && tr.alive[i]) {
          reward = tr.rewards[i];
          rewarded = true;
        }
      }
      buf.reward[t] = reward;
      buf.terminated[t] = 0;
      this.steps[e] = t + 1;
      if (!tr.episodeDone[e] && !tr.episodeAborted[e]) continue;
      this.steps[e] = -1;
      if (tr.episodeAborted[e]) continue;

      let timeLimit = false;
      for (let i = e * A; i < (e + 1) * A; i++) if (tr.alive[i] && tr.truncated[i] && !tr.terminated[i]) timeLimit = true;
      buf.terminated[t] = timeLimit ? 0 : 1;
      writeObservationRow(buf, this.shape, t + 1, e, tr.nextObs, tr.nextState, tr.masks, tr.alive);
      for (let a = 0; a < A; a++) {
        if (!tr.terminated[e * A + a]) continue;
        const row = (t + 1) * A + a;
        buf.alive[row] = 0;
        buf.avail.fill(0, row * K, (row + 1) * K);
      }
      done.push(copyRows(buf, this.shape, t + 1, t + 2));
    }
    return done;
  }

  /** Drops every unfinished episode (the envs were reset). */
  reset(): void {
    this.steps.fill(-1);
  }

  /** Unfinished episodes as typed arrays: their T steps and T observation rows so far. */
  capture(): StoredState {
    const arrays: Record<string, SerializedArray> = {};
    this.steps.forEach((T, e) => {
      if (T < 0) return;
      const part = copyRows(this.buffers[e], this.shape, T, T);
      for (const f of FIELDS) arrays[`${e}/${f}`] = serializeArray(part[f]);
    });
    return { arrays, json: { shape: shapeJson(this.shape), steps: Array.from(this.steps) } };
  }

  restore(state: StoredState): void {
    const owner = 'EpisodeCollector.restore';
    const { json, arrays } = state;
    const shape = json.shape;
    if (typeof shape !== 'object' || shape === null || Array.isArray(shape) || !sameShape(this.shape, shape)) {
      throw new Error(`${owner}: stored episode shape ${JSON.stringify(shape)} differs from ${JSON.stringify(this.shape)}`);
    }
    const steps = json.steps;
    if (!Array.isArray(steps) || steps.length !== this.numEnvs || !steps.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= -1 && s < this.shape.maxEpisodeSteps)) {
      throw new Error(`${owner}: 'steps' must list one step count (or -1) per env, ${this.numEnvs} envs`);
    }
    const L = fieldLayout(this.shape);
    const restored = (steps as number[]).map((T, e) => {
      if (T < 0) return undefined;
      const buf = emptyEpisode(this.shape, this.shape.maxEpisodeSteps);
      for (const f of FIELDS) {
        const a = readArray<StoredArray>(arrays, `${e}/${f}`, buf[f].constructor.name, owner);
        if (a.length !== T * L[f].width) throw new Error(`${owner}: array '${e}/${f}' has ${a.length} values, expected ${T * L[f].width}`);
        (buf[f] as Float32Array).set(a as Float32Array);
      }
      return buf;
    });
    // Only now, so a failed restore leaves the collector as it was.
    restored.forEach((buf, e) => {
      if (buf) this.buffers[e] = buf;
      this.steps[e] = steps[e] as number;
    });
  }
}

/** Writes observation row t of env e from [E, …] stream arrays. */
function writeObservationRow(buf: Episode, s: EpisodeShape, t: number, e: number, obs: Float32Array, state: Float32Array, masks: Uint8Array, alive: Uint8Array): void {
  const { numAgents: A, obsDim, stateDim, numActions: K } = s;
  buf.obs.set(obs.subarray(e * A * obsDim, (e + 1) * A * obsDim), t * A * obsDim);
  buf.state.set(state.subarray(e * stateDim, (e + 1) * stateDim), t * stateDim);
  buf.avail.set(masks.subarray(e * A * K, (e + 1) * A * K), t * A * K);
  buf.alive.set(alive.subarray(e * A, (e + 1) * A), t * A);
}

/**
 * A copy of the first T steps and `obsRows` observation rows of a full-size buffer: T + 1 for
 * a finished episode, T for a partial one whose final observation has not arrived yet.
 */
function copyRows(buf: Episode, s: EpisodeShape, T: number, obsRows: number): Episode {
  const L = fieldLayout(s);
  const n = (f: EpisodeField) => (L[f].obsRow ? obsRows : T) * L[f].width;
  return {
    length: T,
    obs: buf.obs.slice(0, n('obs')),
    state: buf.state.slice(0, n('state')),
    avail: buf.avail.slice(0, n('avail')),
    alive: buf.alive.slice(0, n('alive')),
    actions: buf.actions.slice(0, n('actions')),
    reward: buf.reward.slice(0, n('reward')),
    terminated: buf.terminated.slice(0, n('terminated')),
  };
}
