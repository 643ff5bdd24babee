import type { VectorLayout } from './vector-layout';

/**
 * What a policy sees for one vector step. The arrays are views of the VectorEnv's buffers,
 * valid only until `act` returns (or its promise settles): copy anything kept longer.
 * Layouts: obs [E, A, obsDim], state [E, stateDim], masks [E, A, numActions], alive [E, A].
 */
export interface PolicyBatch {
  readonly obs: Float32Array;
  readonly state: Float32Array;
  readonly masks: Uint8Array;
  readonly alive: Uint8Array;
  /**
   * [E]: 1 where `obs` is the first observation of an episode (after a reset or an automatic
   * one), so recurrent policies know when to clear their memory.
   */
  readonly episodeStart: Uint8Array;
  readonly layout: VectorLayout;
}

/**
 * Per-agent side outputs of acting (log-probs, values, hidden states …), each laid out
 * [E, A, k] with k = length / (E·A). The stream copies them, so a policy may reuse the arrays.
 */
export type PolicyExtras = Record<string, Float32Array>;

export interface PolicyOutput {
  extras?: PolicyExtras;
}

/**
 * Acts for all E·A agent slots at once, in the main thread (SEED-RL style: envs step in
 * workers, inference is batched here). Writes [E, A, actDim] actions into `actions`, which
 * arrives zeroed; entries of dead agents are ignored by the env.
 */
export interface Policy {
  act(batch: PolicyBatch, actions: Float32Array): PolicyOutput | void | Promise<PolicyOutput | void>;
}

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
  readonly layout: VectorLayout;
  /** Stream vector step (0-based). */
  readonly step: number;
  obs: Float32Array;
  state: Float32Array;
  masks: Uint8Array;
  alive: Uint8Array;
  /** [E], as in `PolicyBatch.episodeStart`. */
  episodeStart: Uint8Array;
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
  readonly layout: VectorLayout;
  /** 0-based chunk number in the stream. */
  readonly index: number;
  /** Stream vector step of row 0. */
  readonly startStep: number;
  readonly length: number;
  obs: Float32Array;
  state: Float32Array;
  masks: Uint8Array;
  alive: Uint8Array;
  /** [T, E], as in `PolicyBatch.episodeStart`. */
  episodeStart: Uint8Array;
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
  bootstrap: { obs: Float32Array; state: Float32Array; alive: Uint8Array; masks: Uint8Array; episodeStart: Uint8Array };
  episodes: EpisodeStat[];
}

export type Experience = Transition | TrajectoryChunk;

/**
 * An emitted item plus its flow-control credit. The producer keeps at most `bufferSize`
 * items un-acked, so a consumer that falls behind pauses collection instead of growing a
 * queue. Call `ack()` once the item is consumed (idempotent).
 */
export interface Delivery<T> {
  readonly item: T;
  ack(): void;
}

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
