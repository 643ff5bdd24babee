import path from 'node:path';
import { Piscina } from 'piscina';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import type { EnvSpec } from '../../envs/env-spec';
import { CONTROL_SLOTS, ControlSlot, ERROR_TEXT_BYTES, MAX_GROUPS, RING_SIZE, RING_START, ShardCommand, ShardStatus, type ShardTask, encodeCommand, resetSeed } from './shard-protocol';
import { EnvFailure, ShardRunner } from './shard-runner';
import { type VectorBuffers, type VectorLayout, allocateBuffers, layoutFor } from './vector-layout';

export interface VectorEnvOptions {
  env: EnvSpec;
  /** Number of env copies E. */
  numEnvs: number;
  /** 0 = step every env in this thread; W ≥ 1 = shard the envs over W worker threads. */
  workers?: number;
  /**
   * Env groups G for double buffering: with G = 2, `sendStep(1)` can start while group 0's
   * results are being used, so workers never wait for the policy. Default 1.
   */
  groups?: number;
  seed?: number | string;
  /** Restart a failed shard from its seed and go on (its running episodes are aborted). */
  restartOnFailure?: boolean;
  /** Restarts allowed over the vector's life before a failure is fatal. */
  maxRestarts?: number;
}

/** Reported when a failed shard is restarted; the affected episodes are flagged as aborted. */
export interface ShardRestart {
  shard: number;
  /** The env index ranges the shard owns (one per group). */
  envRanges: Array<[number, number]>;
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
  ranges: Array<[number, number]>;
  control: Int32Array;
  errorText: Uint8Array;
  /** Settles when the worker's task ends; `exited` is set then, `dead` too if the worker died. */
  finished: Promise<unknown>;
  exited: boolean;
  dead?: Error;
  commandsSent: number;
  /** Commands sent per group; the worker's GroupDone counter catches up with it. */
  groupSent: number[];
}

/** How long to block synchronously for a shard before yielding to the event loop (to notice dead workers). */
const SYNC_WAIT_MS = 20;

/**
 * E copies of one env stepped in lock-step, results in flat typed arrays (`buffers`): the
 * policy reads `obs`/`masks`/`alive`, writes `actions`, and calls `step()`. Episodes reset
 * automatically; an ended episode's last observation is kept in `finalObs`.
 *
 * In worker mode each of W worker threads owns a fixed slice of every env group for its whole
 * life; buffers are SharedArrayBuffers, so steps copy nothing. With G ≥ 2 groups, `sendStep(g)`
 * and `awaitStep(g)` let simulation of one group overlap the policy's work on another
 * (Sample Factory's double buffering). The results are the same for any W and G, including
 * in-process (W = 0).
 */
export class VectorEnv {
  readonly buffers: VectorBuffers;
  readonly restarts: ShardRestart[] = [];
  /** [start, end) of each env group. */
  readonly groupRanges: Array<[number, number]>;
  private readonly groupSteps: number[];
  private readonly groupPending: boolean[];
  private pool?: Piscina;
  private shards: Shard[] = [];
  private inProcess?: ShardRunner;
  private closed = false;
  private resetEpoch = 0;

  private constructor(
    readonly options: Required<Omit<VectorEnvOptions, 'env'>> & { env: EnvSpec },
    readonly layout: VectorLayout,
  ) {
    this.buffers = allocateBuffers(layout, options.workers > 0);
    const { numEnvs: E, groups: G } = options;
    this.groupRanges = Array.from({ length: G }, (_, g) => [Math.floor((g * E) / G), Math.floor(((g + 1) * E) / G)]);
    this.groupSteps = new Array<number>(G).fill(0);
    this.groupPending = new Array<boolean>(G).fill(false);
  }

  static async create(options: VectorEnvOptions): Promise<VectorEnv> {
    const numEnvs = options.numEnvs;
    if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new Error(`VectorEnv: numEnvs must be a positive integer, got ${numEnvs}`);
    const groups = options.groups ?? 1;
    if (!Number.isInteger(groups) || groups < 1 || groups > Math.min(MAX_GROUPS, numEnvs)) {
      throw new Error(`VectorEnv: groups must be an integer from 1 to ${Math.min(MAX_GROUPS, numEnvs)}, got ${options.groups}`);
    }
    const workers = options.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0) throw new Error(`VectorEnv: workers must be a non-negative integer, got ${options.workers}`);
    const resolved = {
      env: options.env,
      numEnvs,
      groups,
      workers: Math.min(workers, Math.floor(numEnvs / groups)),
      seed: options.seed ?? 0,
      restartOnFailure: options.restartOnFailure ?? false,
      maxRestarts: options.maxRestarts ?? 10,
    };
    await prepareEnvSpec(options.env);
    const probe = instantiateEnv(options.env);
    const layout = layoutFor(probe, numEnvs);
    probe.close?.();
    const vec = new VectorEnv(resolved, layout);
    if (resolved.workers === 0) vec.inProcess = new ShardRunner(options.env, layout, vec.buffers, vec.groupRanges);
    else vec.startWorkers();
    return vec;
  }

  get numEnvs(): number {
    return this.layout.numEnvs;
  }

  /** Steps taken by group 0 since the last reset (all groups, when stepped with `step()`). */
  get steps(): number {
    return this.groupSteps[0];
  }

  /**
   * Resets every env. Epoch 0 (the default) seeds env e from (seed, e), so every such reset
   * replays the same first episodes; epoch k > 0 derives fresh seeds from (seed, k, e), which
   * lets a training run start reproducible new episodes at a checkpoint boundary.
   */
  async reset(epoch = 0): Promise<void> {
    this.assertUsable();
    if (this.groupPending.some((p) => p)) throw new Error('VectorEnv: reset() while a step is in flight; await it first');
    if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > 0x7fffffff) throw new Error(`VectorEnv: reset epoch must be an integer from 0 to 2^31-1, got ${epoch}`);
    this.resetEpoch = epoch;
    for (const shard of this.shards) Atomics.store(shard.control, ControlSlot.ResetEpoch, epoch);
    this.groupSteps.fill(0);
    this.buffers.episodeDone.fill(0);
    this.buffers.episodeAborted.fill(0);
    for (let g = 0; g < this.groupRanges.length; g++) this.send(ShardCommand.Reset, g);
    for (let g = 0; g < this.groupRanges.length; g++) await this.complete(ShardCommand.Reset, g);
  }

  /** Steps every env with `buffers.actions` (only live agents' entries are read). */
  async step(): Promise<void> {
    for (let g = 0; g < this.groupRanges.length; g++) this.sendStep(g);
    for (let g = 0; g < this.groupRanges.length; g++) await this.awaitStep(g);
  }

  /** Starts stepping group g with its envs' entries of `buffers.actions`; returns at once in worker mode. */
  sendStep(group: number): void {
    this.assertUsable();
    if (this.groupPending[group]) throw new Error(`VectorEnv: group ${group} is already stepping; awaitStep(${group}) first`);
    this.groupPending[group] = true;
    this.send(ShardCommand.Step, group);
  }

  /** Waits for group g's step; its envs' results are then in `buffers`. */
  async awaitStep(group: number): Promise<void> {
    if (!this.groupPending[group]) throw new Error(`VectorEnv: awaitStep(${group}) without sendStep(${group})`);
    try {
      await this.complete(ShardCommand.Step, group);
      this.groupSteps[group]++;
    } finally {
      this.groupPending[group] = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inProcess) {
      this.inProcess.close();
      return;
    }
    for (const shard of this.shards) if (!shard.exited) this.sendToShard(shard, ShardCommand.Close, 0);
    await Promise.allSettled(this.shards.map((s) => s.finished));
    await this.pool?.destroy();
  }

  private assertUsable(): void {
    if (this.closed) throw new Error('VectorEnv: used after close()');
  }

  private send(command: ShardCommand, group: number): void {
    if (this.inProcess) return; // in-process work happens in complete(), on the caller's await
    for (const shard of this.shards) this.sendToShard(shard, command, group);
  }

  private async complete(command: ShardCommand, group: number): Promise<void> {
    if (this.inProcess) return this.runInProcess(command, group);
    for (const shard of this.shards) await this.awaitShard(this.shards[shard.index], command, group);
  }

  private runInProcess(command: ShardCommand, group: number): void {
    const [start, end] = this.groupRanges[group];
    try {
      if (command === ShardCommand.Reset) this.inProcess!.reset(resetSeed(this.options.seed, this.resetEpoch), start, end);
      else this.inProcess!.step(start, end);
    } catch (error) {
      const failure = error instanceof EnvFailure ? error : undefined;
      throw new VectorEnvError(
        `${failure ? failure.message : String(error)} (vector step ${this.groupSteps[group]})`,
        failure?.envIndex ?? -1,
        this.groupSteps[group],
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
    for (let w = 0; w < W; w++) {
      // Each worker owns the w-th slice of every group, so every group keeps all workers busy.
      const ranges = this.groupRanges.map(([gs, ge]): [number, number] => {
        const n = ge - gs;
        return [gs + Math.floor((w * n) / W), gs + Math.floor(((w + 1) * n) / W)];
      });
      this.shards.push(this.startShard(w, ranges));
    }
  }

  private startShard(index: number, ranges: Array<[number, number]>): Shard {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
    control[ControlSlot.ResetEpoch] = this.resetEpoch;
    const errorText = new Uint8Array(new SharedArrayBuffer(ERROR_TEXT_BYTES));
    const task: ShardTask = { spec: this.options.env, layout: this.layout, buffers: this.buffers, control, errorText, groupRanges: ranges, seed: this.options.seed };
    const shard: Shard = { index, ranges, control, errorText, exited: false, commandsSent: 0, groupSent: new Array<number>(MAX_GROUPS).fill(0), finished: Promise.resolve() };
    shard.finished = this.pool!.run(task).then(
      () => {
        shard.exited = true;
      },
      (error: unknown) => {
        shard.exited = true;
        shard.dead = error instanceof Error ? error : new Error(String(error));
      },
    );
    return shard;
  }

  private sendToShard(shard: Shard, command: ShardCommand, group: number): void {
    Atomics.store(shard.control, RING_START + (shard.commandsSent % RING_SIZE), encodeCommand(command, group));
    shard.commandsSent++;
    if (command !== ShardCommand.Close) shard.groupSent[group]++;
    Atomics.store(shard.control, ControlSlot.CommandTail, shard.commandsSent);
    Atomics.notify(shard.control, ControlSlot.CommandTail);
  }

  private async awaitShard(shard: Shard, command: ShardCommand, group: number): Promise<void> {
    const { control } = shard;
    const slot = ControlSlot.GroupDone + group;
    const target = shard.groupSent[group];
    // Fast path: block this thread briefly; env steps take microseconds.
    let done = Atomics.load(control, slot);
    if (done < target) {
      Atomics.wait(control, slot, done, SYNC_WAIT_MS);
      done = Atomics.load(control, slot);
    }
    // Slow path: wait on the event loop too, so a worker's death (reported there) is seen.
    while (done < target && !shard.exited) {
      const waiting = Atomics.waitAsync(control, slot, done, 100);
      await Promise.race([waiting.async ? waiting.value : Promise.resolve(), shard.finished]);
      done = Atomics.load(control, slot);
    }
    if (done >= target && Atomics.load(control, ControlSlot.Status) === ShardStatus.Ok) return;
    await this.handleFailure(shard, command, group);
  }

  private async handleFailure(shard: Shard, command: ShardCommand, group: number): Promise<void> {
    const { control } = shard;
    const reported = Atomics.load(control, ControlSlot.Status) === ShardStatus.Failed;
    const envIndex = reported ? Atomics.load(control, ControlSlot.ErrorEnvIndex) : -1;
    const detail = reported
      ? new TextDecoder().decode(shard.errorText.slice(0, Atomics.load(control, ControlSlot.ErrorLength)))
      : `worker thread died: ${shard.dead?.message ?? 'its task ended unexpectedly'}`;
    const envs = shard.ranges.map(([s, e]) => `#${s}–${e - 1}`).join(', ');
    const where = envIndex >= 0 ? '' : `env '${this.options.env.id}' ${envs} (shard ${shard.index}): `;
    const vectorStep = this.groupSteps[group];
    const message = `${where}${detail.split('\n')[0]} (vector step ${vectorStep})`;
    const canRestart = this.options.restartOnFailure && this.restarts.length < this.options.maxRestarts && command === ShardCommand.Step;
    if (!canRestart) {
      throw Object.assign(new VectorEnvError(message, envIndex >= 0 ? envIndex : shard.ranges[0][0], vectorStep), { details: detail });
    }
    await shard.finished;
    this.restarts.push({ shard: shard.index, envRanges: shard.ranges, vectorStep, error: message });
    for (const [s, e] of shard.ranges) this.abortEpisodes(s, e);
    const replacement = this.startShard(shard.index, shard.ranges);
    this.shards[shard.index] = replacement;
    // Every group of the new shard starts fresh episodes; flags and final observations set above stay for the consumer.
    for (let g = 0; g < this.groupRanges.length; g++) this.sendToShard(replacement, ShardCommand.Reset, g);
    for (let g = 0; g < this.groupRanges.length; g++) await this.awaitShard(replacement, ShardCommand.Reset, g);
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
