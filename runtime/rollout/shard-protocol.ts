import type { VectorLayout } from '../../envs/env-shape';
import type { EnvSpec } from '../../envs/env-spec';
import { deriveSeed } from '../core/rng';
import type { VectorBuffers } from './vector-buffers';

/*
 * The rollout seam: how a VectorEnv drives the envs that simulate its rows, wherever they run.
 *
 * A VectorEnv owns flat buffers [env][agent][…] (`VectorBuffers`) and splits its E envs into
 * G groups of contiguous rows (double buffering) and each group into shards. A transport runs
 * the shards somewhere — in this thread (`InProcessTransport`), in worker threads over shared
 * memory (`WorkerThreadTransport`), or, later, on other machines through a broker — and speaks
 * three commands per group:
 *
 *  - reset(group, epoch): every env e of the group resets with seed
 *    deriveSeed(resetSeed(vectorSeed, epoch), e), so results never depend on which shard,
 *    thread or machine runs env e.
 *  - step(group, policyVersion): every env of the group steps with its rows of
 *    `buffers.actions` (written by the caller before the command). `policyVersion` is the
 *    version (learner updates so far) of the policy that chose those actions. A remote backend
 *    sends it with the actions and gets it back with the results, so experience can say which
 *    policy produced it even when results arrive late; the serial runner's is always current.
 *  - observe(group): resolves once the group's last command is done and its rows of the buffers
 *    (obs, state, masks, alive, rewards, terminated, truncated, episode flags and statistics,
 *    final observations, team sizes) hold the results. A backend whose envs live elsewhere copies
 *    the rows in before resolving; in-process and worker threads write them in place.
 *
 * Commands for one group run in order; different groups may overlap. A failure rejects
 * `observe` with a `VectorEnvError` naming the env id, the env index and the vector step; with
 * `restartOnFailure` a transport may instead restart the failed shard from its seed, flag its
 * running episodes as aborted (`episodeAborted`) and record a `ShardRestart`.
 *
 * The serial runner (in-process, one group) is the reference: every transport must give
 * bit-identical buffers for the same commands.
 */

export const enum ShardCommand {
  Reset = 1,
  Step = 2,
  Close = 3,
}

/** How a shard checks what its envs return (see `envs/env-output-check.ts`). */
export interface EnvOutputChecks {
  /** Also refuse NaN/±Infinity in observations, rewards and state (lengths, keys and types are always checked). */
  checkFinite: boolean;
  /** The task the envs belong to in a multi-task run, named in error messages. */
  task?: string;
}

/** What a transport needs to run the shards of one VectorEnv. */
export interface ShardTransportContext {
  spec: EnvSpec;
  layout: VectorLayout;
  buffers: VectorBuffers;
  /** [start, end) env rows of each group. */
  groupRanges: ReadonlyArray<readonly [number, number]>;
  /** The vector's seed; env e resets with deriveSeed(resetSeed(seed, epoch), e). */
  seed: number | string;
  /** Shards to run (a transport may run fewer when there are fewer envs). */
  shards: number;
  restartOnFailure: boolean;
  maxRestarts: number;
  /** What the envs' output is checked for as it enters the buffers (`VectorEnvOptions.checkFinite`, `task`). */
  checks: EnvOutputChecks;
}

/** One backend of the rollout seam (see the header of this file). */
export interface ShardTransport {
  /** e.g. `in-process`, `worker-threads`. */
  readonly name: string;
  /** Restarts that replaced failed shards (only with `restartOnFailure`). */
  readonly restarts: readonly ShardRestart[];
  /** Starts resetting `group` in reset epoch `epoch`. */
  reset(group: number, epoch: number): void;
  /** Starts stepping `group` with its rows of `buffers.actions`, chosen by policy version `policyVersion`. */
  step(group: number, policyVersion: number): void;
  /**
   * Resolves when `group`'s last command is done and its buffer rows hold the results.
   * `vectorStep` (the group's steps since its reset) locates failures in error messages.
   */
  observe(group: number, command: ShardCommand, vectorStep: number): Promise<void>;
  close(): Promise<void>;
}

/** Makes the transport of a VectorEnv (see `VectorEnvOptions.transport`). */
export type ShardTransportFactory = (context: ShardTransportContext) => ShardTransport | Promise<ShardTransport>;

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

/**
 * The base seed envs are reset with in reset epoch k: the vector's own seed for epoch 0, a
 * derived one after, so a reset to a new epoch starts fresh (but reproducible) episodes.
 */
export function resetSeed(seed: number | string, epoch: number): number | string {
  return epoch === 0 ? seed : deriveSeed(seed, 'reset-epoch', epoch);
}

/** The [start, end) rows of shard `w` of `shards` within each group: every shard owns a slice of every group. */
export function shardRanges(groupRanges: ReadonlyArray<readonly [number, number]>, w: number, shards: number): Array<[number, number]> {
  return groupRanges.map(([gs, ge]): [number, number] => {
    const n = ge - gs;
    return [gs + Math.floor((w * n) / shards), gs + Math.floor(((w + 1) * n) / shards)];
  });
}

/**
 * Marks envs [start, end) as ended and aborted (their shard failed and restarts), keeping
 * their last observations as final ones, so no consumer mistakes a cut episode for complete.
 */
export function abortEpisodes(buffers: VectorBuffers, layout: VectorLayout, envStart: number, envEnd: number): void {
  const b = buffers;
  const { numAgents: A, obsDim } = layout;
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
