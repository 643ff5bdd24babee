import type { JsonObject, NamedTensorData, OptimizerState, SerializedArray } from '../runtime/core/checkpoint';
import type { Policy, TrajectoryChunk, Transition } from '../runtime/rollout/experience';
import type { RngState } from '../runtime/core/rng';
import type { VectorLayout } from '../runtime/rollout/vector-layout';

/**
 * What every learning algorithm offers the training loop (`runtime/training-run.ts`): a policy
 * to collect experience with, a way to learn from the stream's items, a greedy policy to
 * evaluate, and its whole state for checkpoints. The loop owns envs, counters, logging and
 * files; a trainer owns networks, optimisers, replay and the randomness of acting/sampling.
 */
export interface Trainer {
  /** How the loop should stream experience to `observe`. */
  readonly collection: { mode: 'chunk'; chunkLength: number } | { mode: 'transition' };
  /** Acts during collection (exploring: sampling, ε-greedy …). */
  readonly policy: Policy;
  /**
   * Learns from one item, in stream order. `envSteps` is the run's env-step count after the
   * item (vector steps × envs), for schedules such as ε. Returns the mean stats of the
   * gradient updates it ran, or undefined when it ran none; a `grad_steps` entry says how many
   * updates the item triggered (1 when absent).
   */
  observe(item: Transition | TrajectoryChunk, envSteps: number): TrainStats | undefined;
  /**
   * The loop reset every env to a fresh episode (a new segment starts): drop running
   * recurrent state and unfinished episodes, as they will never continue.
   */
  episodesReset(): void;
  /**
   * A new evaluation policy for `layout`'s envs, with recurrent state of its own, so evaluating
   * never disturbs collection: greedy (argmax over legal actions) unless `options.sample` asks
   * a policy-gradient trainer to sample from its policy. Deterministic given the seed.
   */
  evaluationPolicy(layout: VectorLayout, seed: string, options?: EvaluationOptions): Policy;
  /** Everything needed to continue bit-for-bit: weights, optimiser slots, RNG states, buffers. */
  captureState(): Promise<TrainerState>;
  /** Loads a captured state; throws an error naming what is missing or mis-shaped. */
  restoreState(state: TrainerState): Promise<void>;
  dispose(): void;
}

export interface EvaluationOptions {
  /** Sample actions from the policy instead of taking the argmax (value-based trainers ignore it). */
  sample?: boolean;
}

/** Scalar statistics for the metrics file (losses, entropy, ε, …), by name. */
export type TrainStats = Record<string, number>;

export interface TrainerState {
  models: Record<string, NamedTensorData>;
  optimizers: Record<string, OptimizerState>;
  rngs: Record<string, RngState>;
  arrays: Record<string, SerializedArray>;
  /** Plain numbers and flags (counters, running statistics). */
  json: JsonObject;
}

/** Mean of each key over a list of stats (keys missing from some entries average over those present). */
export function meanStats(all: readonly TrainStats[]): TrainStats | undefined {
  if (all.length === 0) return undefined;
  const sums: Record<string, number> = {};
  const counts: Record<string, number> = {};
  for (const s of all) {
    for (const [k, v] of Object.entries(s)) {
      sums[k] = (sums[k] ?? 0) + v;
      counts[k] = (counts[k] ?? 0) + 1;
    }
  }
  const out: TrainStats = {};
  for (const k of Object.keys(sums)) out[k] = sums[k] / counts[k];
  return out;
}
