import type { z } from 'zod';
import type { Experience } from '../agents/experience';
import type { Policy } from '../agents/policies/policy';
import type { PolicySpec } from '../agents/policies/policy-spec';
import { type EnvShape, type VectorLayout, shapeOf } from '../envs/env-shape';
import type { EnvSpec } from '../envs/env-spec';
import type { JsonObject, NamedTensorData, OptimizerState, SerializedArray } from '../runtime/core/checkpoint-format';
import type { RngState } from '../runtime/core/rng';
import type { DatasetEpisode, OfflineDataset } from './dataset';

/*
 * What every learning algorithm offers the training loop (`runtime/training/`), and how an
 * algorithm is added: one file that exports a `TrainerDefinition` (its config schemas, a
 * learner factory, a benchmark case) and one line in `trainers/index.ts`. The loop owns envs,
 * counters, logging and files; a learner owns networks, optimisers, replay and the randomness
 * of acting and sampling.
 */

/** One task of a run: its key (carried by experience items), index, env, shape and collection envs. */
export interface TaskSpec {
  key: string;
  index: number;
  env: EnvSpec;
  shape: EnvShape;
  /** Envs collecting this task's experience (its acting memory is sized for them). */
  numEnvs: number;
}

/** How a task's experience is cut for `observe`: one item per vector step, or chunks of T steps. */
export type Collection = { mode: 'chunk'; chunkLength: number } | { mode: 'transition' };

export interface EvaluationOptions {
  /** Sample actions from the policy instead of taking the argmax (value-based learners ignore it). */
  sample?: boolean;
}

/** Scalar statistics for the metrics file (losses, entropy, ε, …), by name. */
export type TrainStats = Record<string, number>;

/** Everything needed to continue bit-for-bit: weights, optimiser slots, RNG states, buffers, counters. */
export interface LearnerState {
  models: Record<string, NamedTensorData>;
  optimizers: Record<string, OptimizerState>;
  rngs: Record<string, RngState>;
  arrays: Record<string, SerializedArray>;
  /** Plain numbers and flags (counters, running statistics). */
  json: JsonObject;
}

interface LearnerBase {
  readonly tasks: readonly TaskSpec[];
  /**
   * A new evaluation policy for `numEnvs` envs of `task`, with memory of its own, so evaluating
   * never disturbs collection: greedy (argmax over legal actions) unless `options.sample` asks a
   * policy-gradient learner to sample from its policy. Deterministic given the seed.
   */
  evaluationPolicy(task: string, numEnvs: number, seed: string, options?: EvaluationOptions): Policy;
  /**
   * Learners whose networks act for other shapes (MRA's entity-set networks, any population
   * size): an evaluation policy for `numEnvs` envs of `shape`, as `evaluationPolicy` makes for
   * a task; throws naming what does not fit.
   */
  evaluationPolicyForShape?(shape: EnvShape, numEnvs: number, seed: string, options?: EvaluationOptions): Policy;
  /** What acting needs per task (stored with checkpoints for `loadPolicy`); `model` names a key of `captureState().models`. */
  policySpecs(): Record<string, PolicySpec>;
  captureState(): Promise<LearnerState>;
  /** Loads a captured state; throws an error naming what is missing or mis-shaped, leaving the learner as it was. */
  restoreState(state: LearnerState): Promise<void>;
  dispose(): void;
}

/** A learner fed by envs: the loop streams experience collected with its policies and counts env steps. */
export interface OnlineLearner extends LearnerBase {
  readonly kind: 'online';
  collection(task: string): Collection;
  /** The policy that collects `task`'s experience in its `numEnvs` envs; the same object for the learner's life. */
  collectionPolicy(task: string): Policy;
  /** The version of `task`'s collection policy: updates applied to it so far (experience items carry it). */
  policyVersion(task: string): number;
  /**
   * Learns from one item, in stream order (`item.task` says whose). `envSteps` is the env-step
   * count of the item's task after the item (the run's, in a single-task run), for schedules such
   * as ε, so each task's schedule runs as in a run of that task alone. Returns the mean stats of the
   * gradient updates it ran, or undefined when it ran none; a `grad_steps` entry says how many
   * updates the item triggered (1 when absent).
   */
  observe(item: Experience, envSteps: number): TrainStats | undefined;
  /**
   * The loop reset every env of `task` to a fresh episode (a new segment starts): drop running
   * recurrent state and unfinished episodes, as they will never continue.
   */
  episodesReset(task: string): void;
}

/** A learner fed by a dataset: the loop counts its gradient steps. */
export interface OfflineLearner extends LearnerBase {
  readonly kind: 'offline';
  /** One gradient step on a batch the learner samples from its dataset (its sampling RNG is part of its state). */
  trainStep(): TrainStats;
}

export type Learner = OnlineLearner | OfflineLearner;

/**
 * How a meta-learner is told which task it is in, at evaluation: `zero-shot` (only from its own
 * transitions in the current episode), `few-shot` (also from its own earlier rollouts of the
 * task), `demo` (from demonstrations: the task's dataset).
 */
export type TaskInferenceMode = 'zero-shot' | 'few-shot' | 'demo';
export const TASK_INFERENCE_MODES: readonly TaskInferenceMode[] = ['zero-shot', 'few-shot', 'demo'];

/** A learner that infers its task at test time (Meta-DT): evaluation per mode, on tasks it did or did not train on. */
export interface TaskInferenceLearner {
  readonly inferenceModes: readonly TaskInferenceMode[];
  /** Each task's side of the train/test split. */
  taskSplits(): Record<string, 'train' | 'test'>;
  /** Settings of few-shot evaluation: zero-shot episodes per env whose trajectories become prompt candidates. */
  readonly config: { few_shot_rollouts: number };
  inferencePolicy(task: string, numEnvs: number, seed: string, mode: TaskInferenceMode, ownEpisodes?: readonly DatasetEpisode[]): Policy;
  /** The task representation at dataset steps of `task` (all trajectories, or the lower / upper half by return), for probes. */
  taskRepresentations?(task: string, half?: 'all' | 'low' | 'high'): { values: Float32Array; count: number; dim: number } | undefined;
  /** What defines the task (the dataset header's parameters). */
  taskParameters?(task: string): Record<string, unknown> | null;
}

export function isTaskInferenceLearner(learner: Learner): learner is Learner & TaskInferenceLearner {
  return 'inferencePolicy' in learner && 'inferenceModes' in learner;
}

/** One algorithm name a trainer file implements, with its config schema (whose `name` is that literal). */
export interface AlgorithmVariant {
  name: string;
  schema: z.AnyZodObject;
  /** Parallel envs when `run.num_envs` is not given (EPyMARL's `batch_size_run`). */
  defaultNumEnvs: number;
}

/** What `createLearner` is given. */
export interface LearnerArgs<C> {
  tasks: readonly TaskSpec[];
  /** The validated `algo` section (every default filled). */
  config: C;
  seed: number | string;
  /** Offline learners: the datasets by task key. */
  datasets?: Readonly<Record<string, OfflineDataset>>;
}

/** A learner set up for `troupe bench learner`, fed synthetic but valid experience. */
export interface LearnerBenchCase {
  /** Agent-steps one update learns from. */
  samplesPerUpdate: number;
  /** Optimiser steps per update. */
  gradientSteps: number;
  /** Rows through forward + backward per update (samples × epochs for PPO). */
  samplePasses: number;
  /** Matrix-product FLOPs of one update (`agents/networks/flops.ts`). */
  flopsPerUpdate: number;
  /** Decision-transformer tokens one update trains on (B·3K, as PyTorch's DT counts them); absent for other learners. */
  tokensPerUpdate?: number;
  /** Runs one more update, returning its time in ms (preparing its input is not timed). */
  update(): Promise<number>;
  dispose(): void;
}

/** Synthetic experience for a bench case: observations, states and masks sampled from a task's own spaces. */
export interface ExperienceSampler {
  /** [n, A, obsDim] */
  obs(n: number): Float32Array;
  /** [n, stateDim] */
  state(n: number): Float32Array;
  /** [n, A, numActions]: every action of each agent's own space legal, padding illegal. */
  masks(n: number): Uint8Array;
  reward(): number;
  /** A uniform discrete action of agent slot `agent`. */
  discreteAction(agent: number): number;
}

/** Settings every benchmarked learner shares (`troupe bench learner`). */
export interface LearnerBenchSettings {
  numEnvs: number;
  rolloutLength: number;
  hiddenDim: number;
  seed: number;
}

/**
 * One trainer file: the algorithms it implements (mappo and ippo share `mappo.ts`), what they
 * need of a task, and their learner. The training loop, the config schema, `troupe bench
 * learner` and the CLI find algorithms only through `TRAINERS` in `trainers/index.ts`.
 */
/** What a trainer's `configIssues` may compare its keys with. */
export interface RunBudget {
  /** `run.total_env_steps` (summed over tasks). */
  totalEnvSteps: number;
  /** Envs stepped together, summed over tasks (one env step of each is one round's row). */
  numEnvs: number;
}

/** A problem with `algo.<key>` (the key first named in the message). */
export interface AlgoConfigIssue {
  key: string;
  message: string;
}

export interface TrainerDefinition {
  readonly algorithms: readonly AlgorithmVariant[];
  readonly kind: 'online' | 'offline';
  /**
   * True when one learner handles several tasks itself; otherwise a multi-task run gives each
   * task its own learner of this algorithm (`PerTaskLearner`).
   */
  readonly multiTask?: boolean;
  /**
   * Acts by the argmax of learned values (ε-greedy while collecting), so evaluation cannot
   * sample actions from a distribution: `eval_greedy: false` and `troupe eval --sample` are refused.
   */
  readonly valueBased?: boolean;
  /**
   * Infers its task at test time (`TaskInferenceLearner`): evaluated per mode (`troupe eval
   * --mode`) by rebuilding the learner from its run, since acting needs more than weights.
   */
  readonly taskInference?: boolean;
  /**
   * Acting needs the whole learner (no inference-only policy spec): `troupe eval` rebuilds the
   * learner from its run and evaluates with `evaluationPolicy` (MRA).
   */
  readonly evaluatesRebuilt?: boolean;
  /**
   * Keys of one validated `algo` section that cannot work together (a batch larger than the
   * replay that holds it), given the run's budget; each problem names both keys and values.
   */
  configIssues?(config: { name: string } & Record<string, unknown>, run: RunBudget): AlgoConfigIssue[];
  /** Throws a message naming the env when `algo` cannot learn tasks of this shape. */
  checkTask?(algo: string, task: TaskSpec): void;
  createLearner(args: LearnerArgs<{ name: string }>): Learner;
  /**
   * `troupe bench learner`: a learner of `algo` on `task` with hidden size and rollout from
   * `settings`; undefined when the setting does not apply (`useRnn` for an MLP-only algorithm).
   * `config` holds `algo` keys that override the hook's own choices (a named case's sizes);
   * `tasks` lists every task of a multi-task case, `task` first (absent: `task` alone).
   */
  benchmark?(args: {
    algo: string;
    task: TaskSpec;
    settings: LearnerBenchSettings;
    useRnn: boolean;
    sampler: ExperienceSampler;
    backend: string;
    config?: Readonly<Record<string, unknown>>;
    tasks?: readonly { task: TaskSpec; sampler: ExperienceSampler }[];
  }): Promise<LearnerBenchCase | undefined>;
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

/** A run's only task, from a layout (shape and collection envs); for learners built by hand. */
export function taskOfLayout(layout: VectorLayout, key = 'default', env: EnvSpec = { id: key }): TaskSpec {
  return { key, index: 0, env, shape: shapeOf(layout), numEnvs: layout.numEnvs };
}

/** The single task of a learner that handles one, or an error naming the learner. */
export function onlyTask(tasks: readonly TaskSpec[], who: string): TaskSpec {
  if (tasks.length !== 1) throw new Error(`${who}: handles one task, got ${tasks.length}`);
  return tasks[0];
}

/** Throws unless `task` is the learner's task (its key), naming both. */
export function checkTaskKey(task: TaskSpec, key: string, who: string): void {
  if (key !== task.key) throw new Error(`${who}: learns task '${task.key}', got '${key}'`);
}
