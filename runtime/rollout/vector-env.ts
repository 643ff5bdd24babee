import type { PolicyBatch } from '../../agents/policies/policy';
import { type VectorLayout, layoutFor } from '../../envs/env-shape';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import type { EnvSpec } from '../../envs/env-spec';
import { InProcessTransport } from './in-process-transport';
import { ShardCommand, type ShardRestart, type ShardTransport, type ShardTransportFactory } from './shard-protocol';
import { type VectorBuffers, allocateBuffers } from './vector-buffers';
import { MAX_GROUPS } from './worker-ring';
import { WorkerThreadTransport } from './worker-transport';

export { type ShardRestart, VectorEnvError } from './shard-protocol';

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
  /**
   * Another backend for the rollout seam (see `shard-protocol.ts`), e.g. a broker; it is given
   * `workers` (at least 1) as its shard count. Default: in-process for 0 workers, else worker threads.
   */
  transport?: ShardTransportFactory;
  /**
   * Refuse NaN/±Infinity in the envs' observations, rewards and state (default true). Lengths,
   * keys, types and action masks are always checked; turning this off saves a pass over each
   * observation for envs known to be finite.
   */
  checkFinite?: boolean;
  /** The task these envs belong to in a multi-task run, named in error messages (`task 'k'`). */
  task?: string;
}

type ResolvedOptions = Required<Omit<VectorEnvOptions, 'env' | 'transport' | 'task'>> & { env: EnvSpec; task?: string };

/**
 * E copies of one env stepped in lock-step, results in flat typed arrays (`buffers`): the
 * policy reads `obs`/`masks`/`alive`, writes `actions`, and calls `step()`. Episodes reset
 * automatically; an ended episode's last observation is kept in `finalObs`.
 *
 * Where the envs run is the transport's business (`shard-protocol.ts`): in this thread, or in
 * W worker threads that each own a fixed slice of every env group for their whole life, with
 * SharedArrayBuffer buffers so steps copy nothing. With G ≥ 2 groups, `sendStep(g)` and
 * `awaitStep(g)` let simulation of one group overlap the policy's work on another (Sample
 * Factory's double buffering). The results are the same for any W and G, including in-process.
 */
export class VectorEnv {
  readonly buffers: VectorBuffers;
  /** [start, end) of each env group. */
  readonly groupRanges: Array<[number, number]>;
  private readonly groupSteps: number[];
  private readonly groupPending: boolean[];
  private readonly groupPolicyVersion: number[];
  private transport!: ShardTransport;
  private closed = false;

  private constructor(
    readonly options: ResolvedOptions,
    readonly layout: VectorLayout,
  ) {
    this.buffers = allocateBuffers(layout, options.workers > 0);
    const { numEnvs: E, groups: G } = options;
    this.groupRanges = Array.from({ length: G }, (_, g) => [Math.floor((g * E) / G), Math.floor(((g + 1) * E) / G)]);
    this.groupSteps = new Array<number>(G).fill(0);
    this.groupPending = new Array<boolean>(G).fill(false);
    this.groupPolicyVersion = new Array<number>(G).fill(0);
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
    const resolved: ResolvedOptions = {
      env: options.env,
      numEnvs,
      groups,
      workers: Math.min(workers, Math.floor(numEnvs / groups)),
      seed: options.seed ?? 0,
      restartOnFailure: options.restartOnFailure ?? false,
      maxRestarts: options.maxRestarts ?? 10,
      checkFinite: options.checkFinite ?? true,
      ...(options.task !== undefined ? { task: options.task } : {}),
    };
    await prepareEnvSpec(options.env);
    const probe = instantiateEnv(options.env);
    const layout = layoutFor(probe, numEnvs);
    probe.close?.();
    const vec = new VectorEnv(resolved, layout);
    const context = {
      spec: options.env,
      layout,
      buffers: vec.buffers,
      groupRanges: vec.groupRanges,
      seed: resolved.seed,
      shards: Math.max(1, resolved.workers),
      restartOnFailure: resolved.restartOnFailure,
      maxRestarts: resolved.maxRestarts,
      checks: { checkFinite: resolved.checkFinite, ...(resolved.task !== undefined ? { task: resolved.task } : {}) },
    };
    if (options.transport) vec.transport = await options.transport(context);
    else vec.transport = resolved.workers === 0 ? new InProcessTransport(context) : new WorkerThreadTransport(context);
    return vec;
  }

  get numEnvs(): number {
    return this.layout.numEnvs;
  }

  /** Steps taken by group 0 since the last reset (all groups, when stepped with `step()`). */
  get steps(): number {
    return this.groupSteps[0];
  }

  /** The backend running the envs (`in-process`, `worker-threads`, …). */
  get transportName(): string {
    return this.transport.name;
  }

  /** Failed shards that were restarted (with `restartOnFailure`). */
  get restarts(): readonly ShardRestart[] {
    return this.transport.restarts;
  }

  /**
   * A policy's view of this vector: the buffers' observations, state, masks and live agents (valid
   * until the next step), `episodeStart`, and a context of task index `taskIndex` everywhere, the
   * envs' team sizes and `latent` ([E, dim], read live; none by default).
   */
  policyBatch(episodeStart: Uint8Array, taskIndex = 0, latent: { values: Float32Array; dim: number } = { values: new Float32Array(0), dim: 0 }): PolicyBatch {
    const b = this.buffers;
    const E = this.numEnvs;
    if (episodeStart.length !== E) throw new Error(`VectorEnv.policyBatch: episodeStart has ${episodeStart.length} entries, expected ${E}`);
    if (!Number.isInteger(latent.dim) || latent.dim < 0 || latent.values.length !== E * latent.dim) {
      throw new Error(`VectorEnv.policyBatch: latent must hold E·dim = ${E}·${latent.dim} numbers, got ${latent.values.length}`);
    }
    const context = { taskIndex: new Int32Array(E).fill(taskIndex), teamSize: b.teamSize, latent: latent.values, latentDim: latent.dim };
    return { obs: b.obs, state: b.state, masks: b.masks, alive: b.alive, episodeStart, rewards: b.rewards, layout: this.layout, context };
  }

  /** The policy version of the actions behind group g's last step (what `step`/`sendStep` were given). */
  policyVersion(group = 0): number {
    return this.groupPolicyVersion[group];
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
    this.groupSteps.fill(0);
    this.buffers.episodeDone.fill(0);
    this.buffers.episodeAborted.fill(0);
    for (let g = 0; g < this.groupRanges.length; g++) this.transport.reset(g, epoch);
    for (let g = 0; g < this.groupRanges.length; g++) await this.transport.observe(g, ShardCommand.Reset, this.groupSteps[g]);
  }

  /** Steps every env with `buffers.actions` (only live agents' entries are read), chosen by policy `policyVersion`. */
  async step(policyVersion = 0): Promise<void> {
    for (let g = 0; g < this.groupRanges.length; g++) this.sendStep(g, policyVersion);
    for (let g = 0; g < this.groupRanges.length; g++) await this.awaitStep(g);
  }

  /** Starts stepping group g with its envs' entries of `buffers.actions`; returns at once in worker mode. */
  sendStep(group: number, policyVersion = 0): void {
    this.assertUsable();
    if (this.groupPending[group]) throw new Error(`VectorEnv: group ${group} is already stepping; awaitStep(${group}) first`);
    this.groupPending[group] = true;
    this.groupPolicyVersion[group] = policyVersion;
    this.transport.step(group, policyVersion);
  }

  /** Waits for group g's step; its envs' results are then in `buffers`. */
  async awaitStep(group: number): Promise<void> {
    if (!this.groupPending[group]) throw new Error(`VectorEnv: awaitStep(${group}) without sendStep(${group})`);
    try {
      await this.transport.observe(group, ShardCommand.Step, this.groupSteps[group]);
      this.groupSteps[group]++;
    } finally {
      this.groupPending[group] = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport.close();
  }

  private assertUsable(): void {
    if (this.closed) throw new Error('VectorEnv: used after close()');
  }
}
