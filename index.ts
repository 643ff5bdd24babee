/*
 * troupe's public API: what `import { … } from 'troupe'` gives. Layered as the code is
 * (README, "How the code is organised"): envs, then what acts, then learners, then rollouts and
 * the training loop.
 */

// --- ground -----------------------------------------------------------------------------------
export { Rng, deriveSeed, type RngState } from './runtime/core/rng';
export { selectBackend, type BackendChoice, type BackendPreference } from './runtime/core/tf-backend';
export { type CheckpointData, readCheckpoint, readLatestCheckpoint } from './runtime/core/checkpoint';
export { MetricsLog, type MetricsRecord } from './runtime/core/metrics-log';
export * as statistics from './runtime/core/statistics';
export { learningCurvesSpec, performanceProfileSpec, transferMatrixSpec, renderSvg, svgToPng, writePlot } from './runtime/core/report-plots';

// --- envs: the env API, spaces, registry, checker, shapes ---------------------------------------
export * from './envs/spaces';
export * from './envs/parallel-env';
export * from './envs/registry';
export * from './envs/validate-actions';
export { AgentRoster } from './envs/agent-roster';
export { checkEnv, formatCheckReport, type CheckReport } from './envs/checker';
export { loadEnvModule } from './envs/load-env-module';
export type { EnvSpec } from './envs/env-spec';
export { instantiateEnv, prepareEnvSpec } from './envs/env-from-spec';
export { type EnvShape, type VectorLayout, envShape, layoutFor, shapeDifferences, vectorLayout } from './envs/env-shape';
export { BaseParallelEnv, type BaseParallelEnvSetup } from './envs/base-parallel-env';
export { registerBuiltinEnvs } from './envs/builtin';
export type { ManipulationTask, TaskEpisode, TaskEvaluation, TaskParamsBase } from './envs/manipulation/task';
export { MANIPULATION_TASKS, manipulationTask, sampleTaskParams } from './envs/manipulation/register';
export { BENCHMARK_SPLITS, benchmarkSplit, ml1Split, splitEnvSpec, type BenchmarkSplit, type SplitRole } from './envs/manipulation/benchmark-split';
export { type Ml1PinnedConfiguration, ml1PinnedConfiguration, ml1TaskFamily } from './envs/manipulation/register-splits';
export { initPhysics } from './envs/manipulation/physics';
export {
  POINT_ROBOT_ID,
  PointRobotEnv,
  pointRobotTaskParameters,
  pointRobotTasks,
  type PointRobotTaskParameters,
  type PointRobotTasks,
} from './envs/navigation/point-robot';
export { RESOURCE_FAMILY, RESOURCE_SIZES, ResourceEnv, createResource, registerResource, type ResourceLayout } from './envs/navigation/resource';

// --- agents: policies, experience, inference-only loading --------------------------------------
export type { DisposablePolicy, Policy, PolicyBatch, PolicyContext, PolicyExtras, PolicyOutput } from './agents/policies/policy';
export { emptyContext } from './agents/policies/policy';
export type { EpisodeFinal, EpisodeStat, Experience, TrajectoryChunk, Transition } from './agents/experience';
export { RandomPolicy } from './agents/policies/random-policy';
export { buildPolicy, type BuildPolicyOptions } from './agents/policies/build-policy';
export { type PolicySpec, parsePolicySpec } from './agents/policies/policy-spec';
export { type LoadedPolicy, type LoadPolicyOptions, loadPolicy } from './agents/load-policy';
export { expertFor, expertKinds } from './agents/policies/experts/expert-registry';
export { expertPolicyFor, type ExpertPolicyOptions } from './agents/policies/experts/expert-policy';

// --- trainers: the learner interface and the algorithms -----------------------------------------
export type {
  AlgorithmVariant,
  Collection,
  EvaluationOptions,
  Learner,
  LearnerArgs,
  LearnerState,
  OfflineLearner,
  OnlineLearner,
  TaskInferenceLearner,
  TaskInferenceMode,
  TaskSpec,
  TrainStats,
  TrainerDefinition,
} from './trainers/learner';
export { TASK_INFERENCE_MODES, isTaskInferenceLearner } from './trainers/learner';
export { MetaDecisionTransformer, type MetaDtConfig } from './trainers/meta-dt';
export { MraAdapter, MraLearner, MraPolicy, type LatentChoice, type MraConfig, mraConfigSchema } from './trainers/mra';
export { evaluateMraRun, type MraEvaluationSpec, type MraRunEvaluation } from './runtime/training/mra-evaluation';
export { TRAINERS, algorithmVariants, createLearner, trainerFor } from './trainers/index';
export { type DeclWeights, loadDeclWeights } from './trainers/mtma';
export { type DatasetEpisode, type DatasetHeader, type OfflineDataset, readDataset, writeDataset } from './trainers/dataset';

// --- rollout: vector envs, the experience stream, evaluation -----------------------------------
export { VectorEnv, VectorEnvError, type VectorEnvOptions, type ShardRestart } from './runtime/rollout/vector-env';
export type { ShardTransport, ShardTransportContext, ShardTransportFactory } from './runtime/rollout/shard-protocol';
export { type ExperienceSource, collectionSettled, consumeEach, experienceStream, taskExperienceStream } from './runtime/rollout/experience-stream';
export { type EvaluationContext, type EvaluationResult, evaluatePolicy } from './runtime/rollout/evaluation';
export { collectEpisodes } from './runtime/rollout/collect-episodes';

// --- training: configs and the run loop --------------------------------------------------------
export { RunConfigError, loadRunConfig, parseRunConfig, validateRunConfig } from './runtime/training/config-loader';
export { type RunConfig, type RunTask, runTasks } from './runtime/training/run-config';
export { TASK_INFERENCE_FILE, type TrainingProgress, type TrainingRunOptions, type TrainingSummary, runTraining } from './runtime/training/training-run';
export { resolveDatasetSet } from './runtime/training/dataset-sets';
export { type ModeResult, type RepresentationProbe, type TaskInferenceResults, evaluateTaskInference, evaluateTaskInferenceCheckpoint } from './runtime/training/task-inference-evaluation';
export { type PlannedRun, type TransferPlan, type TransferStudyConfig, loadTransferStudy, planTransferStudy, runTransferStudy, withTaskLists } from './runtime/training/transfer-study';
export { type TransferResults, collectTransferResults } from './runtime/training/transfer-results';
export { type TransferReport, buildTransferReport, transferReportMarkdown, writeTransferReport } from './runtime/training/transfer-report';
