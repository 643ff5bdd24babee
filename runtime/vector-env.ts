import path from 'node:path';
import { Piscina } from 'piscina';
import { type EnvSpec, instantiateEnv } from './env-spec';
import { CONTROL_SLOTS, ControlSlot, ERROR_TEXT_BYTES, ShardCommand, ShardStatus, type ShardTask } from './shard-protocol';
import { EnvFailure, ShardRunner } from './shard-runner';
import { type VectorBuffers, type VectorLayout, allocateBuffers, layoutFor } from './vector-layout';

export interface VectorEnvOptions {
  env: EnvSpec;
  /** Number of env copies E. */
  numEnvs: number;
  /** 0 = step every env in this thread; W ≥ 1 = shard the envs over W worker threads. */
  workers?: number;
  seed?: number | string;
  /** Restart a failed shard from its seed and go on (its running episodes are aborted). */
  restartOnFailure?: boolean;
  /** Restarts allowed over the vector's life before a failure is fatal. */
  maxRestarts?: number;
}

/** Reported when a failed shard is restarted; the affected episodes are flagged as aborted. */
export interface ShardRestart {
  shard: number;
  envStart: number;
  envEnd: number;
  vectorStep: number;
  error: string;
}

/** A failure no restart covers: names the env id, the env index and the step. */
export class VectorEnvError extends Error {
  constructor(
    message: string,
    readonly envIndex: number,
    readonly vectorStep: number,
  ) {
    super(message);
    this.name = 'VectorEnvError';
  }
}

interface Shard {
  index: number;
  envStart: number;
  envEnd: number;
  control: Int32Array;
  errorText: Uint8Array;
  /** Resolves when the worker's task ends; rejects when the worker dies. */
  finished: Promise<unknown>;
  dead?: Error;
  seq: number;
}

/** How long to block synchronously for a shard before yielding to the event loop (to notice dead workers). */
const SYNC_WAIT_MS = 20;

/**
 * E copies of one env stepped in lock-step, results in flat typed arrays (`buffers`): the
 * policy reads `obs`/`masks`/`alive`, writes `actions`, and calls `step()`. Episodes reset
 * automatically; an ended episode's last observation is kept in `finalObs`.
 *
 * In worker mode the envs are split into W contiguous shards, each owned by one worker thread
 * for its whole life; buffers are SharedArrayBuffers, so steps copy nothing. The results are
 * the same for any W, including in-process (W = 0).
 */
export class VectorEnv {
  readonly buffers: VectorBuffers;
  readonly restarts: ShardRestart[] = [];
  private vectorStep = 0;
  private pool?: Piscina;
  private shards: Shard[] = [];
  private inProcess?: ShardRunner;
  private pending = false;
  private closed = false;

  private constructor(
    readonly options: Required<Omit<VectorEnvOptions, 'env'>> & { env: EnvSpec },
    readonly layout: VectorLayout,
  ) {
    this.buffers = allocateBuffers(layout, options.workers > 0);
  }

  static async create(options: VectorEnvOptions): Promise<VectorEnv> {
    const resolved = {
      env: options.env,
      numEnvs: options.numEnvs,
      workers: Math.min(options.workers ?? 0, options.numEnvs),
      seed: options.seed ?? 0,
      restartOnFailure: options.restartOnFailure ?? false,
      maxRestarts: options.maxRestarts ?? 10,
    };
    if (!Number.isInteger(resolved.numEnvs) || resolved.numEnvs < 1) throw new Error(`VectorEnv: numEnvs must be a positive integer, got ${options.numEnvs}`);
    if (!Number.isInteger(resolved.workers) || resolved.workers < 0) throw new Error(`VectorEnv: workers must be a non-negative integer, got ${options.workers}`);
    const probe = instantiateEnv(options.env);
    const layout = layoutFor(probe, resolved.numEnvs);
    probe.close?.();
    const vec = new VectorEnv(resolved, layout);
    if (resolved.workers === 0) vec.inProcess = new ShardRunner(options.env, layout, vec.buffers, 0, resolved.numEnvs);
    else vec.startWorkers();
    return vec;
  }

  get numEnvs(): number {
    return this.layout.numEnvs;
  }

  /** Vector steps taken since the last reset. */
  get steps(): number {
    return this.vectorStep;
  }

  async reset(): Promise<void> {
    this.vectorStep = 0;
    this.buffers.episodeDone.fill(0);
    this.buffers.episodeAborted.fill(0);
    await this.run(ShardCommand.Reset);
  }

  /** Steps every env with `buffers.actions` (only live agents' entries are read). */
  async step(): Promise<void> {
    await this.run(ShardCommand.Step);
    this.vectorStep++;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inProcess) {
      this.inProcess.close();
      return;
    }
    for (const shard of this.shards) if (!shard.dead) this.send(shard, ShardCommand.Close);
    await Promise.allSettled(this.shards.map((s) => s.finished));
    await this.pool?.destroy();
  }

  private async run(command: ShardCommand): Promise<void> {
    if (this.closed) throw new Error('VectorEnv: used after close()');
    if (this.pending) throw new Error('VectorEnv: reset()/step() called while another is still running; await it first');
    this.pending = true;
    try {
      if (this.inProcess) return this.runInProcess(command);
      for (const shard of this.shards) this.send(shard, command);
      for (const shard of this.shards) await this.awaitShard(shard, command);
    } finally {
      this.pending = false;
    }
  }

  private runInProcess(command: ShardCommand): void {
    try {
      if (command === ShardCommand.Reset) this.inProcess!.reset(this.options.seed);
      else this.inProcess!.step();
    } catch (error) {
      const failure = error instanceof EnvFailure ? error : undefined;
      throw new VectorEnvError(
        `${failure ? failure.message : String(error)} (vector step ${this.vectorStep})`,
        failure?.envIndex ?? -1,
        this.vectorStep,
      );
    }
  }

  private startWorkers(): void {
    const W = this.options.workers;
    this.pool = new Piscina({
      filename: path.join(__dirname, 'shard-worker.js'),
      minThreads: W,
      maxThreads: W,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
    });
    const E = this.options.numEnvs;
    for (let w = 0; w < W; w++) {
      const envStart = Math.floor((w * E) / W);
      const envEnd = Math.floor(((w + 1) * E) / W);
      this.shards.push(this.startShard(w, envStart, envEnd));
    }
  }

  private startShard(index: number, envStart: number, envEnd: number): Shard {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
    const errorText = new Uint8Array(new SharedArrayBuffer(ERROR_TEXT_BYTES));
    const task: ShardTask = {
      spec: this.options.env,
      layout: this.layout,
      buffers: this.buffers,
      control,
      errorText,
      envStart,
      envEnd,
      seed: this.options.seed,
    };
    const shard: Shard = { index, envStart, envEnd, control, errorText, seq: 0, finished: Promise.resolve() };
    shard.finished = this.pool!.run(task).catch((error: unknown) => {
      shard.dead = error instanceof Error ? error : new Error(String(error));
      // Wake anyone blocked on this shard so the death is noticed promptly.
      Atomics.notify(control, ControlSlot.DoneSeq);
    });
    return shard;
  }

  private send(shard: Shard, command: ShardCommand): void {
    shard.seq++;
    Atomics.store(shard.control, ControlSlot.Command, command);
    Atomics.store(shard.control, ControlSlot.CommandSeq, shard.seq);
    Atomics.notify(shard.control, ControlSlot.CommandSeq);
  }

  private async awaitShard(shard: Shard, command: ShardCommand): Promise<void> {
    const { control } = shard;
    // Fast path: block this thread briefly; env steps take microseconds.
    let done = Atomics.load(control, ControlSlot.DoneSeq);
    if (done !== shard.seq) {
      Atomics.wait(control, ControlSlot.DoneSeq, done, SYNC_WAIT_MS);
      done = Atomics.load(control, ControlSlot.DoneSeq);
    }
    // Slow path: wait on the event loop, so a worker's death (reported there) is seen.
    while (done !== shard.seq && !shard.dead) {
      const waiting = Atomics.waitAsync(control, ControlSlot.DoneSeq, done, 100);
      await Promise.race([waiting.async ? waiting.value : Promise.resolve(), shard.finished]);
      done = Atomics.load(control, ControlSlot.DoneSeq);
    }
    if (done === shard.seq && Atomics.load(control, ControlSlot.Status) === ShardStatus.Ok) return;
    await this.handleFailure(shard, command);
  }

  private async handleFailure(shard: Shard, command: ShardCommand): Promise<void> {
    const { control } = shard;
    const reported = !shard.dead;
    const envIndex = reported ? Atomics.load(control, ControlSlot.ErrorEnvIndex) : -1;
    const detail = reported
      ? new TextDecoder().decode(shard.errorText.slice(0, Atomics.load(control, ControlSlot.ErrorLength)))
      : `worker thread died: ${shard.dead!.message}`;
    const where = envIndex >= 0 ? '' : `env '${this.options.env.id}' #${shard.envStart}–${shard.envEnd - 1} (shard ${shard.index}): `;
    const message = `${where}${detail.split('\n')[0]} (vector step ${this.vectorStep})`;
    const canRestart = this.options.restartOnFailure && this.restarts.length < this.options.maxRestarts && command === ShardCommand.Step;
    if (!canRestart) {
      throw Object.assign(new VectorEnvError(message, envIndex >= 0 ? envIndex : shard.envStart, this.vectorStep), { details: detail });
    }
    await shard.finished;
    this.restarts.push({ shard: shard.index, envStart: shard.envStart, envEnd: shard.envEnd, vectorStep: this.vectorStep, error: message });
    this.abortEpisodes(shard.envStart, shard.envEnd);
    const replacement = this.startShard(shard.index, shard.envStart, shard.envEnd);
    this.shards[shard.index] = replacement;
    // Keep the finished-episode flags and final observations; the reset writes the new episode's first observation.
    this.send(replacement, ShardCommand.Reset);
    await this.awaitShard(replacement, ShardCommand.Reset);
  }

  /** Marks the shard's running episodes as ended and aborted, so no consumer mistakes them for complete. */
  private abortEpisodes(envStart: number, envEnd: number): void {
    const b = this.buffers;
    const { numAgents: A, obsDim } = this.layout;
    for (let e = envStart; e < envEnd; e++) {
      b.finalObs.set(b.obs.subarray(e * A * obsDim, (e + 1) * A * obsDim), e * A * obsDim);
      for (let a = 0; a < A; a++) {
        b.truncated[e * A + a] = b.alive[e * A + a];
        b.terminated[e * A + a] = 0;
        b.rewards[e * A + a] = 0;
      }
      b.episodeDone[e] = 1;
      b.episodeAborted[e] = 1;
      b.episodeReturn[e] = NaN;
      b.episodeLength[e] = 0;
      b.episodeSuccess[e] = NaN;
    }
  }
}
