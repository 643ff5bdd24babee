import { Observable, type OperatorFunction, concatMap } from 'rxjs';
import type { EpisodeFinal, EpisodeStat, Experience, TrajectoryChunk, Transition } from '../../agents/experience';
import type { Policy, PolicyBatch, PolicyContext, PolicyExtras } from '../../agents/policies/policy';
import type { Collection } from '../../trainers/learner';
import type { VectorEnv } from './vector-env';

/**
 * An emitted item plus its flow-control credit. The producer keeps at most `bufferSize`
 * items un-acked, so a consumer that falls behind pauses collection instead of growing a
 * queue. Call `ack()` once the item is consumed (idempotent).
 */
export interface Delivery<T> {
  readonly item: T;
  ack(): void;
}


export type { Collection } from '../../trainers/learner';

/** One task feeding a stream: its envs, the policy that acts in them, and how items are cut. */
export interface ExperienceSource {
  vec: VectorEnv;
  policy: Policy;
  collection: Collection;
  /** The key every item carries (default `default`) and the task's index in the run (default 0, `PolicyContext.taskIndex`). */
  task?: string;
  taskIndex?: number;
  /**
   * A latent vector per env, [E, latentDim], handed to the policy as `PolicyContext.latent` at
   * every step (read live, so the caller may change it between items). Default: none.
   */
  latent?: { values: Float32Array; dim: number };
  /** The version of `policy` (its learner's updates so far), asked before every step; default 0. */
  policyVersion?: () => number;
}

interface CommonOptions {
  /**
   * Most items un-acked at once, counting the one being collected. 1 = strict lock-step
   * (collection of the next item starts only after the previous one was consumed). Default 2.
   */
  bufferSize?: number;
  /** Reset the VectorEnvs on subscribe (default). false continues the envs' running episodes. */
  reset?: boolean;
}

export interface TaskStreamOptions extends CommonOptions {
  /** Rounds to run, each one item from every source in order; then complete. Default: never stop. */
  rounds?: number;
  /** The source the first round starts at (the earlier ones sit that round out); default 0. */
  firstSource?: number;
}

export interface TransitionStreamOptions extends CommonOptions {
  mode: 'transition';
  /** Stop after this many vector steps and complete (in chunk mode: after the last full chunk). Default: never. */
  maxSteps?: number;
}

export interface ChunkStreamOptions extends CommonOptions {
  mode: 'chunk';
  /** T, steps per chunk. */
  chunkLength: number;
  maxSteps?: number;
}

export type ExperienceStreamOptions = TransitionStreamOptions | ChunkStreamOptions;

interface ActiveLoop {
  done: Promise<void>;
  /** Subscribed and not finished: a second stream on the same env would interleave steps. */
  live: () => boolean;
}

/** The producer loop driving each VectorEnv, so a new subscription waits for an unsubscribed one to let go. */
const activeLoops = new WeakMap<VectorEnv, ActiveLoop>();

/**
 * Resolves once no stream is stepping `vec`. Unsubscribing stops collection at the next
 * step boundary, but a step already in flight finishes first: await this before `vec.close()`.
 */
export function collectionSettled(vec: VectorEnv): Promise<void> {
  return activeLoops.get(vec)?.done ?? Promise.resolve();
}

/**
 * Runs `policy` on `vec` and emits owned copies of the experience, either per vector step
 * or as fixed-length chunks. Cold: each subscription drives the env from its own loop
 * (one at a time per VectorEnv). Flow is credit-based: every item must be acked (see
 * `consumeEach`) before more than `bufferSize` items exist, so a slow consumer stalls
 * stepping instead of buffering. Env and policy errors error the Observable; unsubscribing
 * stops stepping; the VectorEnv is never closed here — the caller owns it.
 */
export function experienceStream(vec: VectorEnv, policy: Policy, options: TransitionStreamOptions): Observable<Delivery<Transition>>;
export function experienceStream(vec: VectorEnv, policy: Policy, options: ChunkStreamOptions): Observable<Delivery<TrajectoryChunk>>;
export function experienceStream(vec: VectorEnv, policy: Policy, options: ExperienceStreamOptions): Observable<Delivery<Transition | TrajectoryChunk>>;
export function experienceStream(vec: VectorEnv, policy: Policy, options: ExperienceStreamOptions): Observable<Delivery<Transition | TrajectoryChunk>> {
  const maxSteps = options.maxSteps ?? Number.POSITIVE_INFINITY;
  const chunkLength = options.mode === 'chunk' ? options.chunkLength : 1;
  if (!Number.isInteger(chunkLength) || chunkLength < 1) throw new Error(`experienceStream: chunkLength must be a positive integer, got ${chunkLength}`);
  if (!(maxSteps >= 0) || (Number.isFinite(maxSteps) && !Number.isInteger(maxSteps))) throw new Error(`experienceStream: maxSteps must be a non-negative integer, got ${maxSteps}`);
  const collection: Collection = options.mode === 'chunk' ? { mode: 'chunk', chunkLength } : { mode: 'transition' };
  return taskExperienceStream([{ vec, policy, collection }], { bufferSize: options.bufferSize, reset: options.reset, rounds: Math.floor(maxSteps / chunkLength) });
}

/**
 * Experience of several tasks in one stream, keyed by task: round after round, one item from
 * each source in the order given (a fixed interleaving, so a run is reproducible whatever
 * each task's worker count). Each source has its own envs, policy, collection mode and chunk
 * length; items carry `task` and `taskIndex`. Flow control, errors and unsubscription work as
 * in `experienceStream`, with one credit pool for all sources.
 */
export function taskExperienceStream(sources: readonly ExperienceSource[], options: TaskStreamOptions = {}): Observable<Delivery<Experience>> {
  const bufferSize = options.bufferSize ?? 2;
  const rounds = options.rounds ?? Number.POSITIVE_INFINITY;
  const firstSource = options.firstSource ?? 0;
  if (!Number.isInteger(bufferSize) || bufferSize < 1) throw new Error(`experienceStream: bufferSize must be a positive integer, got ${bufferSize}`);
  if (!(rounds >= 0) || (Number.isFinite(rounds) && !Number.isInteger(rounds))) throw new Error(`experienceStream: rounds must be a non-negative integer, got ${rounds}`);
  if (sources.length === 0) throw new Error('experienceStream: no sources');
  if (!Number.isInteger(firstSource) || firstSource < 0 || firstSource >= sources.length) throw new Error(`experienceStream: firstSource must be an index of the ${sources.length} sources, got ${firstSource}`);
  const keys = sources.map((s) => s.task ?? 'default');
  if (new Set(keys).size !== keys.length) throw new Error(`experienceStream: task keys must differ, got ${keys.join(', ')}`);
  const vecs = sources.map((s) => s.vec);
  if (new Set(vecs).size !== vecs.length) throw new Error('experienceStream: each source needs its own VectorEnv');
  sources.forEach((source, i) => {
    if (source.collection.mode === 'chunk' && !(Number.isInteger(source.collection.chunkLength) && source.collection.chunkLength >= 1)) {
      throw new Error(`experienceStream: chunkLength must be a positive integer, got ${source.collection.chunkLength}`);
    }
    const latent = source.latent;
    const E = source.vec.numEnvs;
    if (latent && (!Number.isInteger(latent.dim) || latent.dim < 0 || latent.values.length !== E * latent.dim)) {
      throw new Error(`experienceStream: task '${keys[i]}' latent must hold E·dim = ${E}·${latent.dim} numbers, got ${latent.values.length}`);
    }
  });

  return new Observable<Delivery<Experience>>((subscriber) => {
    const credit = new Credit(bufferSize);
    let stopped = false;
    const collectors = sources.map((source, i) => new Collector(source, keys[i], () => stopped));
    const produce = async (): Promise<void> => {
      if (options.reset ?? true) for (const vec of vecs) await vec.reset();
      for (const collector of collectors) collector.begin();
      const counts = collectors.map(() => 0);
      for (let round = 0; round < rounds; round++) {
        for (let s = round === 0 ? firstSource : 0; s < collectors.length; s++) {
          await credit.acquire(() => stopped);
          if (stopped) return;
          const collector = collectors[s];
          const collection = sources[s].collection;
          const item = collection.mode === 'chunk' ? await collector.chunk(counts[s]++, collection.chunkLength) : await collector.transition();
          if (!item) return;
          subscriber.next(credit.delivery<Experience>(item));
          // In-process stepping never leaves the microtask queue; yield so timers and I/O
          // (including an unsubscribe driven by them) get a turn between items.
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (stopped) return;
        }
      }
      subscriber.complete();
    };
    for (const vec of vecs) {
      if (activeLoops.get(vec)?.live()) {
        subscriber.error(new Error('experienceStream: this VectorEnv is already driven by another subscribed stream; unsubscribe it first'));
        return;
      }
    }
    let finished = false;
    const previous = Promise.all(vecs.map((vec) => activeLoops.get(vec)?.done ?? Promise.resolve()));
    const loop: Promise<void> = previous
      .then(() => (stopped ? undefined : produce()))
      .catch((error: unknown) => {
        if (!stopped) subscriber.error(error);
      })
      .finally(() => {
        finished = true;
        for (const vec of vecs) if (activeLoops.get(vec)?.done === loop) activeLoops.delete(vec);
      });
    for (const vec of vecs) activeLoops.set(vec, { done: loop, live: () => !stopped && !finished });
    return () => {
      stopped = true;
      credit.wake();
    };
  });
}

/**
 * Consumes each item with `fn`, one at a time, and acks it once `fn` (or its promise) is
 * done — so the producer runs at most `bufferSize` items ahead of `fn`. Emits `fn`'s results.
 */
export function consumeEach<T, R>(fn: (item: T) => R | Promise<R>): OperatorFunction<Delivery<T>, R> {
  return concatMap(async (delivery: Delivery<T>) => {
    try {
      return await fn(delivery.item);
    } finally {
      delivery.ack();
    }
  });
}

/** Counting semaphore whose waiter can also be woken by cancellation. */
class Credit {
  private wakeUp?: () => void;

  constructor(private available: number) {}

  async acquire(cancelled: () => boolean): Promise<void> {
    while (this.available === 0 && !cancelled()) {
      await new Promise<void>((resolve) => (this.wakeUp = resolve));
    }
    if (!cancelled()) this.available--;
  }

  delivery<T>(item: T): Delivery<T> {
    let acked = false;
    return {
      item,
      ack: () => {
        if (acked) return;
        acked = true;
        this.available++;
        this.wake();
      },
    };
  }

  wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = undefined;
    wakeUp?.();
  }
}

/** Steps one source's envs with its policy and copies what each step produced out of the reused buffers. */
class Collector {
  private step = 0;
  private extraKeys?: string[];
  private readonly vec: VectorEnv;
  private readonly policy: Policy;
  private readonly taskIndex: number;
  private readonly batch: PolicyBatch;
  private readonly context: PolicyContext;
  private readonly episodeStart: Uint8Array;
  private readonly policyVersion: () => number;

  constructor(
    source: ExperienceSource,
    private readonly task: string,
    private readonly stopped: () => boolean,
  ) {
    const vec = source.vec;
    const E = vec.numEnvs;
    this.vec = vec;
    this.policy = source.policy;
    this.taskIndex = source.taskIndex ?? 0;
    this.policyVersion = source.policyVersion ?? (() => 0);
    this.episodeStart = new Uint8Array(E);
    this.batch = vec.policyBatch(this.episodeStart, this.taskIndex, source.latent);
    this.context = this.batch.context;
  }

  /**
   * Marks where episodes start before the first step: everywhere when the vector has not
   * stepped since its reset, else where its last step ended an episode.
   */
  begin(): void {
    if (this.vec.steps === 0) this.episodeStart.fill(1);
    else this.episodeStart.set(this.vec.buffers.episodeDone);
  }

  /** Acts and steps once; returns the policy extras and version, or undefined when stopped meanwhile. */
  private async actAndStep(): Promise<{ extras: PolicyExtras; version: number } | undefined> {
    const b = this.vec.buffers;
    b.actions.fill(0);
    const version = this.policyVersion();
    const out = await this.policy.act(this.batch, b.actions);
    if (this.stopped()) return undefined;
    const extras = this.checkExtras(out ? out.extras : undefined);
    await this.vec.step(version);
    this.episodeStart.set(b.episodeDone);
    return { extras, version };
  }

  /** Copies the extras right away: the policy may reuse its arrays on the next call. */
  private checkExtras(extras: PolicyExtras | undefined): PolicyExtras {
    const { numEnvs: E, numAgents: A } = this.vec.layout;
    const keys = extras ? Object.keys(extras).sort() : [];
    if (!this.extraKeys) this.extraKeys = keys;
    if (keys.join(',') !== this.extraKeys.join(',')) {
      throw new Error(`experienceStream: policy extras changed from [${this.extraKeys.join(', ')}] to [${keys.join(', ')}]; return the same keys every step`);
    }
    const copy: PolicyExtras = {};
    for (const key of keys) {
      const value = extras![key];
      if (!(value instanceof Float32Array) || value.length === 0 || value.length % (E * A) !== 0) {
        throw new Error(`experienceStream: policy extra '${key}' must be a Float32Array of E·A·k = ${E}·${A}·k numbers`);
      }
      copy[key] = value.slice();
    }
    return copy;
  }

  private episodesEnded(step: number, into: EpisodeStat[]): void {
    const b = this.vec.buffers;
    for (let e = 0; e < this.vec.numEnvs; e++) {
      if (!b.episodeDone[e]) continue;
      into.push({
        env: e,
        step,
        return: b.episodeReturn[e],
        length: b.episodeLength[e],
        success: b.episodeSuccess[e],
        aborted: b.episodeAborted[e] === 1,
      });
    }
  }

  async transition(): Promise<Transition | undefined> {
    const b = this.vec.buffers;
    const { numAgents: A, obsDim, stateDim } = this.vec.layout;
    const obs = b.obs.slice();
    const state = b.state.slice();
    const masks = b.masks.slice();
    const alive = b.alive.slice();
    const episodeStart = this.episodeStart.slice();
    const teamSize = b.teamSize.slice();
    const latent = this.context.latent.slice();
    const acted = await this.actAndStep();
    if (!acted) return undefined;
    const step = this.step++;
    const nextObs = b.obs.slice();
    const nextState = b.state.slice();
    const episodes: EpisodeStat[] = [];
    this.episodesEnded(step, episodes);
    for (const { env: e } of episodes) {
      nextObs.set(b.finalObs.subarray(e * A * obsDim, (e + 1) * A * obsDim), e * A * obsDim);
      nextState.set(b.finalState.subarray(e * stateDim, (e + 1) * stateDim), e * stateDim);
    }
    return {
      kind: 'transition',
      task: this.task,
      taskIndex: this.taskIndex,
      layout: this.vec.layout,
      step,
      policyVersion: acted.version,
      obs,
      state,
      masks,
      alive,
      episodeStart,
      teamSize,
      latent,
      actions: b.actions.slice(),
      extras: acted.extras,
      rewards: b.rewards.slice(),
      terminated: b.terminated.slice(),
      truncated: b.truncated.slice(),
      nextObs,
      nextState,
      nextAlive: b.alive.slice(),
      nextMasks: b.masks.slice(),
      episodeDone: b.episodeDone.slice(),
      episodeAborted: b.episodeAborted.slice(),
      episodes,
    };
  }

  async chunk(index: number, T: number): Promise<TrajectoryChunk | undefined> {
    const b = this.vec.buffers;
    const { numAgents: A, obsDim, stateDim } = this.vec.layout;
    const latentNow = this.context.latent;
    const stack = <Arr extends Float32Array | Uint8Array | Int32Array>(src: Arr): Arr => new (src.constructor as new (n: number) => Arr)(T * src.length);
    const c = {
      obs: stack(b.obs),
      state: stack(b.state),
      masks: stack(b.masks),
      alive: stack(b.alive),
      episodeStart: stack(this.episodeStart),
      teamSize: stack(b.teamSize),
      latent: stack(latentNow),
      actions: stack(b.actions),
      rewards: stack(b.rewards),
      terminated: stack(b.terminated),
      truncated: stack(b.truncated),
      episodeDone: stack(b.episodeDone),
      episodeAborted: stack(b.episodeAborted),
    };
    const policyVersions = new Int32Array(T);
    const extras: PolicyExtras = {};
    const finals: EpisodeFinal[] = [];
    const episodes: EpisodeStat[] = [];
    const startStep = this.step;
    for (let t = 0; t < T; t++) {
      c.obs.set(b.obs, t * b.obs.length);
      c.state.set(b.state, t * b.state.length);
      c.masks.set(b.masks, t * b.masks.length);
      c.alive.set(b.alive, t * b.alive.length);
      c.episodeStart.set(this.episodeStart, t * this.episodeStart.length);
      c.teamSize.set(b.teamSize, t * b.teamSize.length);
      c.latent.set(latentNow, t * latentNow.length);
      const acted = await this.actAndStep();
      if (!acted) return undefined;
      policyVersions[t] = acted.version;
      const step = this.step++;
      for (const key in acted.extras) {
        const value = acted.extras[key];
        extras[key] ??= new Float32Array(T * value.length);
        extras[key].set(value, t * value.length);
      }
      c.actions.set(b.actions, t * b.actions.length);
      c.rewards.set(b.rewards, t * b.rewards.length);
      c.terminated.set(b.terminated, t * b.terminated.length);
      c.truncated.set(b.truncated, t * b.truncated.length);
      c.episodeDone.set(b.episodeDone, t * b.episodeDone.length);
      c.episodeAborted.set(b.episodeAborted, t * b.episodeAborted.length);
      const before = episodes.length;
      this.episodesEnded(step, episodes);
      for (let k = before; k < episodes.length; k++) {
        const e = episodes[k].env;
        finals.push({
          t,
          env: e,
          obs: b.finalObs.slice(e * A * obsDim, (e + 1) * A * obsDim),
          state: b.finalState.slice(e * stateDim, (e + 1) * stateDim),
        });
      }
    }
    return {
      kind: 'chunk',
      task: this.task,
      taskIndex: this.taskIndex,
      layout: this.vec.layout,
      index,
      startStep,
      length: T,
      policyVersions,
      ...c,
      extras,
      finals,
      bootstrap: {
        obs: b.obs.slice(),
        state: b.state.slice(),
        alive: b.alive.slice(),
        masks: b.masks.slice(),
        episodeStart: this.episodeStart.slice(),
        teamSize: b.teamSize.slice(),
        latent: latentNow.slice(),
      },
      episodes,
    };
  }
}
