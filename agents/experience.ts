import type { VectorLayout } from '../envs/env-shape';
import type { PolicyExtras } from './policies/policy';

/*
 * What acting produces and learning consumes: per-step transitions and fixed-length trajectory
 * chunks as the experience stream (`runtime/rollout/experience-stream.ts`) delivers them, and
 * the finished episodes they report. Every item names the task it comes from, so one stream can
 * carry several tasks to one learner.
 */

/** One finished episode, as reported by the VectorEnv at the step it ended. */
export interface EpisodeStat {
  env: number;
  /** Stream vector step (0-based) at which the episode ended. */
  step: number;
  /** Team return (summed or shared, see `EnvMetadata.teamReward`); NaN when aborted. */
  return: number;
  length: number;
  /** 1 / 0 for won / lost, NaN when the task reports no success. */
  success: number;
  /** Cut short by a worker restart: not a real episode outcome. */
  aborted: boolean;
}

/**
 * One vector step, all arrays owned by the receiver. "Next" arrays hold the observation that
 * follows the action: for envs whose episode ended this step that is the episode's final
 * observation/state (not the auto-reset one), so bootstrapping never crosses episodes.
 * `nextAlive`/`nextMasks` are the buffers after the step, so for ended envs they belong to
 * the new episode; use `terminated`/`truncated`/`episodeDone` to know what ended.
 */
export interface Transition {
  readonly kind: 'transition';
  /** The run's key of the task the item comes from, and its index among the run's tasks. */
  readonly task: string;
  readonly taskIndex: number;
  readonly layout: VectorLayout;
  /** Stream vector step (0-based, counted per task). */
  readonly step: number;
  /** The version (learner updates so far) of the policy that chose `actions`. */
  readonly policyVersion: number;
  obs: Float32Array;
  state: Float32Array;
  masks: Uint8Array;
  alive: Uint8Array;
  /** [E], as in `PolicyBatch.episodeStart`. */
  episodeStart: Uint8Array;
  /** [E] and [E, latentDim]: the context the policy acted with (`PolicyContext`). */
  teamSize: Int32Array;
  latent: Float32Array;
  actions: Float32Array;
  extras: PolicyExtras;
  rewards: Float32Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  nextObs: Float32Array;
  nextState: Float32Array;
  nextAlive: Uint8Array;
  nextMasks: Uint8Array;
  /** [E] */
  episodeDone: Uint8Array;
  episodeAborted: Uint8Array;
  episodes: EpisodeStat[];
}

/** The last observation of an episode that ended inside a chunk (needed to bootstrap truncations). */
export interface EpisodeFinal {
  /** Row of the chunk whose step ended the episode. */
  t: number;
  env: number;
  /** [A, obsDim] */
  obs: Float32Array;
  /** [stateDim] */
  state: Float32Array;
}

/**
 * T consecutive vector steps stacked time-major: obs [T, E, A, obsDim], rewards [T, E, A], …
 * Row t's observation for step t+1 is `obs[t+1]` (or `bootstrap` for the last row), except
 * for envs whose episode ended at t: their final observation is in `finals`. Agents that die
 * mid-episode still have their last observation in the following row.
 */
export interface TrajectoryChunk {
  readonly kind: 'chunk';
  /** The run's key of the task the item comes from, and its index among the run's tasks. */
  readonly task: string;
  readonly taskIndex: number;
  readonly layout: VectorLayout;
  /** 0-based chunk number in the stream (counted per task). */
  readonly index: number;
  /** Stream vector step of row 0. */
  readonly startStep: number;
  readonly length: number;
  /** [T]: the version (learner updates so far) of the policy that acted in each row. */
  readonly policyVersions: Int32Array;
  obs: Float32Array;
  state: Float32Array;
  masks: Uint8Array;
  alive: Uint8Array;
  /** [T, E], as in `PolicyBatch.episodeStart`. */
  episodeStart: Uint8Array;
  /** [T, E] and [T, E, latentDim]: the context the policy acted with (`PolicyContext`). */
  teamSize: Int32Array;
  latent: Float32Array;
  actions: Float32Array;
  extras: PolicyExtras;
  rewards: Float32Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  /** [T, E] */
  episodeDone: Uint8Array;
  episodeAborted: Uint8Array;
  finals: EpisodeFinal[];
  /** The policy inputs after the last row: what GAE bootstraps from. */
  bootstrap: { obs: Float32Array; state: Float32Array; alive: Uint8Array; masks: Uint8Array; episodeStart: Uint8Array; teamSize: Int32Array; latent: Float32Array };
  episodes: EpisodeStat[];
}

export type Experience = Transition | TrajectoryChunk;

export interface EpisodeSummary {
  /** Finished, non-aborted episodes. */
  episodes: number;
  aborted: number;
  meanReturn: number;
  meanLength: number;
  /** NaN when no counted episode reported success. */
  successRate: number;
}

/** Running means over finished episodes; aborted ones are only counted, since their outcome is not real. */
export class EpisodeStatsAccumulator {
  private count = 0;
  private abortedCount = 0;
  private returnSum = 0;
  private lengthSum = 0;
  private successSum = 0;
  private successCount = 0;

  add(episodes: Iterable<EpisodeStat>): this {
    for (const ep of episodes) {
      if (ep.aborted) {
        this.abortedCount++;
        continue;
      }
      this.count++;
      this.returnSum += ep.return;
      this.lengthSum += ep.length;
      if (!Number.isNaN(ep.success)) {
        this.successSum += ep.success;
        this.successCount++;
      }
    }
    return this;
  }

  summary(): EpisodeSummary {
    return {
      episodes: this.count,
      aborted: this.abortedCount,
      meanReturn: this.count ? this.returnSum / this.count : NaN,
      meanLength: this.count ? this.lengthSum / this.count : NaN,
      successRate: this.successCount ? this.successSum / this.successCount : NaN,
    };
  }

  clear(): void {
    this.count = this.abortedCount = this.returnSum = this.lengthSum = this.successSum = this.successCount = 0;
  }
}

export function summarizeEpisodes(episodes: Iterable<EpisodeStat>): EpisodeSummary {
  return new EpisodeStatsAccumulator().add(episodes).summary();
}
