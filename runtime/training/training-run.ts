import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { takeWhile } from 'rxjs';
import type { Experience, TrajectoryChunk } from '../../agents/experience';
import { policySpecJson } from '../../agents/policies/policy-spec';
import { shapeDifferences, shapeOf } from '../../envs/env-shape';
import { type OfflineDataset, checkDatasetShape, readDataset } from '../../trainers/dataset';
import { createLearner as createLearnerFromList, trainerFor } from '../../trainers/index';
import { type Learner, type LearnerState, type OfflineLearner, type OnlineLearner, type TaskInferenceMode, type TaskSpec, type TrainStats, isTaskInferenceLearner } from '../../trainers/learner';
import { type CheckpointData, type JsonObject, type SerializedArray, deserializeArray, serializeArray, withPrefix } from '../core/checkpoint';
import type { MetricsRecord } from '../core/metrics-log';
import { writeFileAtomicSync } from '../core/atomic-file';
import { encodeCheckpoint } from '../core/checkpoint-format';
import { deriveSeed } from '../core/rng';
import { type EvaluationResult, evaluatePolicy } from '../rollout/evaluation';
import { type ExperienceSource, collectionSettled, consumeEach, taskExperienceStream } from '../rollout/experience-stream';
import { VectorEnv } from '../rollout/vector-env';
import type { ShardTransportFactory } from '../rollout/shard-protocol';
import { RolloutBrokerError } from '../rollout/remote-transport';
import { asyncConfigIssue } from '../rollout/async-protocol';
import { AsyncLearnerLink, type AsyncRunTotals, type RunBroker } from './async-learner';
import { type WorkerChoice, chooseWorkers } from '../rollout/worker-count';
import { TRAINER_ARRAY_PREFIX, learnerStateOf } from './learner-checkpoint';
import { RunDirectory } from './run-directory';
import { type ModeResult, type TaskInferenceResults, evaluateTaskInference } from './task-inference-evaluation';
import { type RunConfig, type RunTask, runLabel, runTasks } from './run-config';

/*
 * The training loop behind `troupe train`. One loop for every run: the run's tasks (one or
 * several, each with its own envs, worker shards and evaluation), one learner, and a driver
 * that says what a step is —
 *
 *  - online learners: the experience stream feeds the learner items keyed by task, round after
 *    round (one item of every task per round), and the loop counts env steps of all tasks;
 *  - offline learners: the learner takes gradient steps on its datasets, and the loop counts
 *    those.
 *
 * Around the driver the loop logs metrics, evaluates every task, checkpoints and resumes, the
 * same way for both.
 *
 * Reproducibility. Everything that shapes the numbers is a function of the config and seed:
 * envs are seeded per env index (so the worker count does not matter), the stream runs in
 * lock-step (bufferSize 1: no step is taken with weights an update is still changing), tasks
 * interleave in a fixed order, and the learner's randomness is its own seeded streams.
 *
 * Exact resume (online). Training is cut into segments of about `checkpoint_interval` env steps
 * (whole rounds). Every segment starts by resetting all envs to fresh episodes seeded from
 * (seed, segment), so a checkpoint at a segment's end needs no env state at all. A checkpoint
 * taken inside a segment (Ctrl-C) also stores, per task, the actions taken since the segment
 * began and where in the round it stopped; resuming replays the actions on freshly reset envs,
 * which brings every env back to the exact same state (envs are deterministic, which `troupe
 * check-env` verifies). The running episodes cut at segment boundaries are ordinary
 * truncations, bootstrapped like time limits. Offline runs need none of this: a learner's state
 * (weights, optimiser, sampling RNG) is the whole run.
 */

export interface TrainingRunOptions {
  config: RunConfig;
  /** Run directory: config.yaml, run.json, metrics.jsonl, checkpoints/, summary.json, learning-curve.svg. */
  outDir: string;
  /**
   * The tfjs backend in use (already selected), recorded with the run: why it was chosen, a timed
   * `auto` choice's timings, and tfjs-node's thread and oneDNN settings.
   */
  backend: { name: string; reason: string; choice?: Record<string, unknown>; native?: { values: Record<string, string | null>; setByTroupe: string[] } };
  /** Builds the run's learner (default: the algorithm `config.algo.name` names, from `trainers/index.ts`). */
  createLearner?: (args: { config: RunConfig; tasks: readonly TaskSpec[]; datasets: Readonly<Record<string, OfflineDataset>> }) => Learner;
  /** Continue from this checkpoint (its config is the run's config). */
  resume?: { data: CheckpointData; path: string };
  /** Asked after every stream item (online) or gradient step (offline); true stops the run with a checkpoint (e.g. on Ctrl-C). */
  shouldStop?: (progress: TrainingProgress) => boolean;
  onProgress?: (progress: TrainingProgress) => void;
  onRecord?: (record: MetricsRecord) => void;
  /**
   * Told once at the start about anything the run does differently from the config's letter
   * (the budget rounded up to whole rounds, more worker threads than cores); also in run.json.
   */
  onNotice?: (message: string) => void;
  /** Told at the start what `workers: auto` chose and why (run.json records it as `workers_auto`). */
  onInfo?: (message: string) => void;
  /** Meta-learners (Meta-DT): told each task's result per evaluation mode after training. */
  onTaskInference?: (task: string, mode: TaskInferenceMode, result: ModeResult) => void;
  /** Checkpoints kept in checkpoints/ (older ones are deleted). Default 3. */
  keepCheckpoints?: number;
  /**
   * Where a task's training envs run when not on this machine (`troupe train --broker`: remote
   * rollout hosts). Evaluation envs stay in-process. A broker that goes away mid-run stops the
   * run with a checkpoint (`RolloutBrokerError`).
   */
  rolloutTransport?: (task: RunTask) => ShardTransportFactory | undefined;
  /**
   * A Redis broker for remote rollouts (`troupe train --broker`). With `run.remote.mode: async`
   * the envs run on acting hosts (`troupe rollout`) and the loop learns from the chunks they
   * send (`async-learner.ts`).
   */
  broker?: RunBroker;
}

/** What the run counts: env steps of all tasks (online learners) or gradient steps (offline). */
export type StepUnit = 'env_steps' | 'grad_steps';

export interface TrainingProgress {
  unit: StepUnit;
  /** Steps so far and in the whole run, in `unit`. */
  steps: number;
  totalSteps: number;
  /** Env steps so far (0 for offline runs). */
  envSteps: number;
  totalEnvSteps: number;
  episodes: number;
  updates: number;
  /** Mean training return of the last log interval (NaN before the first; mean over tasks). */
  lastReturn: number;
  lastEval?: EvaluationResult;
  elapsedSeconds: number;
}

type EvaluationSummary = { return_mean: number; return_std: number; win_rate: number | null; length_mean: number; episodes: number };
type PlacedEvaluation = EvaluationSummary & { env_steps?: number; grad_steps?: number };

export interface TrainingSummary {
  /** The env id, or the task keys joined with '+'. */
  env: string;
  algo: string;
  seed: number;
  backend: string;
  unit: StepUnit;
  env_steps: number;
  grad_steps?: number;
  episodes: number;
  updates: number;
  wall_time_s: number;
  interrupted: boolean;
  /** The last evaluation (for a multi-task run: the mean over tasks; each task's in `tasks`). */
  final_eval: EvaluationSummary | null;
  best_eval: PlacedEvaluation | null;
  tasks?: Record<string, { final_eval: EvaluationSummary | null; best_eval: PlacedEvaluation | null; env_steps: number; episodes: number }>;
  checkpoint: string | null;
  /** Meta-learners: the mean return per split and evaluation mode (every task's in task-inference.json). */
  task_inference?: TaskInferenceResults['summary'];
  /** Async remote runs: chunks learned from (by host), dropped and refused. */
  async?: AsyncRunTotals;
}

/** What a meta-learner's run writes after training: returns per task and evaluation mode. */
export const TASK_INFERENCE_FILE = 'task-inference.json';

/** Episode and update statistics of one task's current log interval; plain numbers, so checkpoints can hold it. */
interface IntervalState {
  episodes: number;
  returnSum: number;
  lengthSum: number;
  successSum: number;
  successCount: number;
  statSums: Record<string, number>;
  statCounts: Record<string, number>;
  /** Elapsed run seconds and steps when the interval began (for steps/s). */
  startSeconds: number;
  startSteps: number;
}

/** One task's part of the loop's state. */
interface TaskLoopState {
  /** Vector steps of the task so far, and within the current segment. */
  vectorSteps: number;
  segmentSteps: number;
  episodes: number;
  updates: number;
  interval: IntervalState;
  lastEval: PlacedEvaluation | null;
  bestEval: PlacedEvaluation | null;
  /** With `run.best_checkpoint`: the number of the evaluation kept in the best checkpoint (absent before one). */
  bestCheckpointValue?: number;
}

/** The loop's own state between stream items (stored in checkpoints as `metadata.loop`, version 3). */
interface LoopState {
  version: 3;
  unit: StepUnit;
  segment: number;
  /** Online: complete rounds of the run and of the current segment, and tasks done in the round under way. Offline: gradient steps of the run and of the segment. */
  rounds: number;
  segmentRounds: number;
  roundPosition: number;
  /** Steps so far in the run's unit. */
  steps: number;
  updates: number;
  nextLogAt: number;
  nextEvalAt: number;
  evaluations: number;
  lastReturn: number;
  /** Run seconds accumulated before this process (resumes). */
  priorSeconds: number;
  tasks: Record<string, TaskLoopState>;
}

const ACTION_LOG = 'run/actions-since-segment-start';

/** A run task with its envs (and, offline, what its dataset file was). */
interface LiveTask extends RunTask {
  spec: TaskSpec;
  vec?: VectorEnv;
  evalVec: VectorEnv;
  datasetInfo?: DatasetInfo;
  /** What `workers: auto` chose for this task's vector, and why. */
  workersChoice?: WorkerChoice;
}

/** What a checkpoint records of each dataset, so a resume can tell that the file was replaced. */
interface DatasetInfo {
  file: string;
  sha256: string;
  episodes: number;
}

function freshInterval(startSeconds: number, startSteps: number): IntervalState {
  return { episodes: 0, returnSum: 0, lengthSum: 0, successSum: 0, successCount: 0, statSums: {}, statCounts: {}, startSeconds, startSteps };
}

function freshTaskState(): TaskLoopState {
  return { vectorSteps: 0, segmentSteps: 0, episodes: 0, updates: 0, interval: freshInterval(0, 0), lastEval: null, bestEval: null };
}

function actionLogKey(task: string, single: boolean): string {
  return single ? ACTION_LOG : `run/tasks/${encodeURIComponent(task)}/actions-since-segment-start`;
}

export async function runTraining(options: TrainingRunOptions): Promise<TrainingSummary> {
  const { config } = options;
  const run = config.run;
  const trainer = trainerFor(config.algo.name);
  const unit: StepUnit = trainer.kind === 'offline' ? 'grad_steps' : 'env_steps';
  const offline = unit === 'grad_steps';
  const runTaskList = runTasks(config);
  const single = runTaskList.length === 1;
  const dir = new RunDirectory(options.outDir, options.keepCheckpoints ?? 3);
  if (offline && run.total_gradient_steps === undefined) throw new Error(`run.total_gradient_steps: required for the offline algorithm '${config.algo.name}' (its budget counts gradient steps)`);
  const asyncIssue = asyncConfigIssue(config);
  if (asyncIssue) throw new Error(asyncIssue);
  // Async remote runs act on the hosts: the learner keeps only its evaluation envs.
  const actsRemotely = run.remote?.mode === 'async' && options.broker !== undefined;

  // Per-task seeds: a single-task run keeps the seeds it always had.
  const taskSeed = (key: string, ...p: Array<string | number>) => (single ? deriveSeed(run.seed, ...p) : deriveSeed(run.seed, ...p, key));
  const datasets: Record<string, OfflineDataset> = {};
  const tasks: LiveTask[] = [];
  let learner: Learner | undefined;
  try {
    for (const [index, t] of runTaskList.entries()) {
      // Env output is checked as it enters the buffers; a multi-task run's messages name the task.
      const checks = { checkFinite: run.check_finite, ...(single ? {} : { task: t.key }) };
      const evalVec = await VectorEnv.create({ env: t.env, numEnvs: Math.min(run.eval_episodes, t.numEnvs), workers: 0, seed: taskSeed(t.key, 'eval'), ...checks });
      const live: LiveTask = { ...t, evalVec, spec: { key: t.key, index, env: t.env, shape: shapeOf(evalVec.layout), numEnvs: t.numEnvs } };
      tasks.push(live);
      if (offline) {
        if (!t.dataset) throw new Error(`${single ? 'dataset' : `tasks.${index}.dataset`}: required for the offline algorithm '${config.algo.name}'`);
        const data = await readDataset(t.dataset);
        checkDatasetShape(data, live.spec.shape, t.dataset, t.env.id);
        datasets[t.key] = data;
        live.datasetInfo = { file: t.dataset, sha256: createHash('sha256').update(fs.readFileSync(t.dataset)).digest('hex'), episodes: data.episodes.length };
      } else if (!actsRemotely) {
        const transport = options.rolloutTransport?.(t);
        let workers: number;
        if (transport) workers = 0;
        else if (t.workers === 'auto') {
          live.workersChoice = await chooseWorkers(t.env, t.numEnvs, { seed: taskSeed(t.key, 'choose-workers') });
          workers = live.workersChoice.workers;
        } else workers = t.workers;
        live.vec = await VectorEnv.create({ env: t.env, numEnvs: t.numEnvs, workers, ...(transport ? { transport } : {}), seed: taskSeed(t.key), ...checks });
        const differences = shapeDifferences(live.spec.shape, live.vec.layout);
        if (differences.length > 0) throw new Error(`task '${t.key}': its envs disagree on their shape (${differences.join('; ')})`);
      }
    }
    const specs = tasks.map((t) => t.spec);
    learner = options.createLearner ? options.createLearner({ config, tasks: specs, datasets }) : createLearnerFromList({ config: config.algo, tasks: specs, seed: run.seed, datasets });
    if (learner.kind !== trainer.kind) throw new Error(`algo '${config.algo.name}' is ${trainer.kind}, but its learner is ${learner.kind}`);
    const summary = await new TrainingLoop(options, dir, tasks, learner, unit, taskSeed).run();
    if (!summary.interrupted && isTaskInferenceLearner(learner)) {
      // A meta-learner is judged per evaluation mode on trained and held-out tasks: task-inference.json.
      const results = await evaluateTaskInference(
        learner,
        tasks.map((t) => ({ key: t.key, vec: t.evalVec, taskIndex: t.spec.index })),
        { episodes: run.eval_episodes, seed: deriveSeed(run.seed, 'task-inference'), maxSteps: run.eval_max_steps, onTask: options.onTaskInference },
      );
      writeFileAtomicSync(path.join(options.outDir, TASK_INFERENCE_FILE), `${JSON.stringify(results, null, 2)}\n`);
      summary.task_inference = results.summary;
      dir.writeSummary(summary);
    }
    return summary;
  } finally {
    for (const t of tasks) {
      await t.vec?.close();
      await t.evalVec.close();
    }
    learner?.dispose();
  }
}

class TrainingLoop {
  private state: LoopState;
  private readonly startedAt = Date.now();
  private readonly config: RunConfig;
  private replayActions?: Record<string, Float32Array>;
  private interrupted = false;
  private lastCheckpoint: string | null = null;
  /** Async remote runs: the broker link chunks come through. */
  private asyncLink?: AsyncLearnerLink;
  /** What `onNotice` is told at the start (and run.json records). */
  private readonly notices: string[] = [];
  /** Online: env steps one round takes (every task's item), rounds per segment and in the run. */
  private readonly roundSteps: number;
  private readonly segmentLength: number;
  private readonly totalLength: number;

  constructor(
    private readonly options: TrainingRunOptions,
    private readonly dir: RunDirectory,
    private readonly tasks: LiveTask[],
    private readonly learner: Learner,
    private readonly unit: StepUnit,
    private readonly taskSeed: (key: string, ...p: Array<string | number>) => string,
  ) {
    this.config = options.config;
    const run = this.config.run;
    if (learner.kind === 'online') {
      this.roundSteps = tasks.reduce((n, t) => n + t.numEnvs * this.chunkLength(t), 0);
      if (this.roundSteps > run.total_env_steps) throw new Error(`run.total_env_steps: ${run.total_env_steps} is less than one round of collection, ${this.roundDescription()}; lower num_envs or the rollout length, or raise total_env_steps`);
      // Whole rounds per segment and per run, so every checkpoint falls on an item boundary.
      this.segmentLength = Math.ceil(run.checkpoint_interval / this.roundSteps);
      this.totalLength = Math.ceil(run.total_env_steps / this.roundSteps);
      const planned = this.totalLength * this.roundSteps;
      if (planned !== run.total_env_steps) this.notices.push(`run.total_env_steps ${run.total_env_steps} is rounded up to ${planned}: the run stops after whole rounds of ${this.roundDescription()}`);
    } else {
      this.roundSteps = 1;
      this.segmentLength = run.checkpoint_interval;
      this.totalLength = run.total_gradient_steps!;
    }
    this.state = {
      version: 3,
      unit,
      segment: 0,
      rounds: 0,
      segmentRounds: 0,
      roundPosition: 0,
      steps: 0,
      updates: 0,
      nextLogAt: run.log_interval,
      nextEvalAt: run.eval_interval,
      evaluations: 0,
      lastReturn: NaN,
      priorSeconds: 0,
      tasks: Object.fromEntries(tasks.map((t) => [t.key, freshTaskState()])),
    };
  }

  /** One round's env steps, spelt out (`8 envs × 50 steps = 400 env steps`). */
  private roundDescription(): string {
    const parts = this.tasks.map((t) => `${t.numEnvs} envs × ${this.chunkLength(t)} step${this.chunkLength(t) === 1 ? '' : 's'}${this.single ? '' : ` (${t.key})`}`);
    return `${parts.join(' + ')} = ${this.roundSteps} env steps`;
  }

  private chunkLength(task: LiveTask): number {
    const c = (this.learner as OnlineLearner).collection(task.key);
    return c.mode === 'chunk' ? c.chunkLength : 1;
  }

  private elapsed(): number {
    return this.state.priorSeconds + (Date.now() - this.startedAt) / 1000;
  }

  private get single(): boolean {
    return this.tasks.length === 1;
  }

  private envSteps(): number {
    return this.unit === 'env_steps' ? this.state.steps : 0;
  }

  /** Where a metrics record or evaluation sits: `env_steps`, or `grad_steps` offline. */
  private place(): { env_steps: number } | { grad_steps: number } {
    return this.unit === 'env_steps' ? { env_steps: this.state.steps } : { grad_steps: this.state.steps };
  }

  async run(): Promise<TrainingSummary> {
    const { options, dir, config } = this;
    const resume = options.resume;
    if (resume) await this.restore(resume.data, resume.path);
    dir.open(config, resume?.data.counters.logIndex);
    // The worker threads the vectors run (a transport may differ from what was asked for).
    const workersUsed = this.tasks.map((t) => t.vec?.options.workers ?? 0);
    const workerTotal = workersUsed.reduce((a, b) => a + b, 0);
    const cores = os.availableParallelism();
    if (config.run.remote?.mode === 'async' && options.broker) {
      this.notices.push('run.remote.mode async: rollout hosts act with the newest weights they have and their chunks are learned from in arrival order, so metrics.jsonl is not bit-reproducible (env steps count consumed chunks; policy lag and dropped chunks are logged)');
    }
    if (workerTotal > cores) this.notices.push(`${workerTotal} rollout worker threads on ${cores} CPU cores: threads beyond the cores compete for them, which is usually slower than ${cores} workers`);
    for (const t of this.tasks) if (t.workersChoice) options.onInfo?.(`workers: auto${this.single ? '' : ` (task '${t.key}')`} → ${t.workersChoice.workers}: ${t.workersChoice.reason}`);
    const autoRecord = (choice: WorkerChoice | undefined) =>
      choice ? { workers_auto: { workers: choice.workers, reason: choice.reason, in_process_step_us: Math.round(choice.inProcessStepMicros), predicted_step_us: Math.round(choice.predictedStepMicros) } } : {};
    for (const notice of this.notices) options.onNotice?.(notice);
    dir.writeRunInfo({
      backend: options.backend.name,
      backend_reason: options.backend.reason,
      ...(options.backend.choice ? { backend_choice: options.backend.choice } : {}),
      ...(options.backend.native ? { tf_native_env: { ...options.backend.native.values, set_by_troupe: options.backend.native.setByTroupe } } : {}),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      workers: this.single ? workersUsed[0] : config.run.workers,
      ...(this.single ? autoRecord(this.tasks[0].workersChoice) : {}),
      ...(this.tasks.some((t) => t.vec && t.vec.transportName !== 'in-process' && t.vec.transportName !== 'worker-threads') ? { rollout_transport: this.tasks[0].vec!.transportName } : {}),
      cpu_cores: cores,
      ...(this.learner.kind === 'online' ? { env_steps_per_round: this.roundSteps, planned_env_steps: this.totalLength * this.roundSteps } : {}),
      notices: this.notices,
      ...(this.single ? {} : { tasks: this.tasks.map((t, i) => ({ key: t.key, env: t.env.id, num_envs: t.numEnvs, workers: workersUsed[i], ...autoRecord(t.workersChoice) })) }),
      resumed_from: resume?.path ?? null,
      started_at: new Date(this.startedAt).toISOString(),
    });
    if (this.learner.kind === 'online' && options.broker && config.run.remote?.mode === 'async') await this.runAsync(this.learner, options.broker);
    else if (this.learner.kind === 'online') await this.runOnline(this.learner);
    else await this.runOffline(this.learner);
    if (dir.records > 0) this.writePlot();
    return this.writeSummary();
  }

  // --- the online driver: env steps from the task-keyed experience stream ----------------------

  private async runOnline(learner: OnlineLearner): Promise<void> {
    const state = this.state;
    while (state.rounds < this.totalLength && !this.interrupted) {
      // A resume may have changed the budget: the segment ends at the new total at the latest.
      const segmentEnd = Math.min(this.segmentLength, this.totalLength - (state.rounds - state.segmentRounds));
      // Actions since the segment began: what a mid-segment checkpoint needs to rebuild the envs.
      const actionLogs: Record<string, Float32Array[]> = Object.fromEntries(this.tasks.map((t) => [t.key, []]));
      let replaying = this.replayActions !== undefined;
      try {
        await this.runSegment(learner, segmentEnd, actionLogs, () => (replaying = false));
      } catch (error) {
        if (!(error instanceof RolloutBrokerError)) throw error;
        throw await this.stopForLostBroker(error, replaying ? undefined : actionLogs);
      }
      if (this.interrupted) break;
      await this.endSegment();
    }
  }

  /**
   * The rollout broker went away: checkpoint the last complete item (the action logs say how
   * to rebuild the envs) and return the error that stops the run, naming the checkpoint. During
   * a resume's replay nothing new happened, so the checkpoint resumed from still holds.
   */
  private async stopForLostBroker(error: RolloutBrokerError, actionLogs: Record<string, Float32Array[]> | undefined): Promise<Error> {
    const state = this.state;
    const resumeFrom = this.options.resume?.path;
    let written: string | undefined;
    if (actionLogs) {
      const inSegment = state.segmentRounds !== 0 || state.roundPosition !== 0;
      const logs = inSegment ? Object.fromEntries(Object.entries(actionLogs).map(([k, rows]) => [k, concat(rows)])) : undefined;
      written = await this.checkpoint('interrupt', logs);
      this.lastCheckpoint = written;
    }
    return this.lostBrokerError(error, written ?? resumeFrom ?? this.lastCheckpoint);
  }

  /** The error a lost broker stops the run with, in either mode: what happened and how to resume. */
  private lostBrokerError(error: RolloutBrokerError, checkpoint: string | null | undefined): Error {
    const next = checkpoint
      ? `The run stopped at ${this.state.steps} env steps with a checkpoint, ${checkpoint}; continue with: troupe train --resume ${this.options.outDir} (with --broker to use rollout hosts again${this.config.run.remote?.mode === 'async' ? '' : ', or without to step the envs here'})`
      : 'No checkpoint could be written.';
    return new Error(`${error.message.replace(/\.$/, '')}. ${next}`);
  }

  private async runSegment(learner: OnlineLearner, segmentEnd: number, actionLogs: Record<string, Float32Array[]>, replayDone: () => void): Promise<void> {
    const state = this.state;
    const K = this.tasks.length;
    for (const t of this.tasks) await t.vec!.reset(state.segment);
    // A resumed learner's recurrent state belongs to the envs the replay below rebuilds.
    if (state.segmentRounds === 0 && state.roundPosition === 0) for (const t of this.tasks) learner.episodesReset(t.key);
    if (this.replayActions) {
      for (const t of this.tasks) {
        const log = this.replayActions[t.key] ?? new Float32Array(0);
        const { numAgents: A, actDim } = t.vec!.layout;
        const rowLength = t.numEnvs * A * actDim;
        for (let s = 0; s * rowLength < log.length; s++) {
          const row = log.subarray(s * rowLength, (s + 1) * rowLength);
          t.vec!.buffers.actions.set(row);
          await t.vec!.step();
          actionLogs[t.key].push(row.slice());
        }
        const want = state.tasks[t.key].segmentSteps;
        if (actionLogs[t.key].length !== want) throw new Error(`${this.options.resume?.path ?? 'checkpoint'}: the action log of task '${t.key}' has ${actionLogs[t.key].length} steps, expected ${want}`);
      }
      this.replayActions = undefined;
    }
    replayDone();
    const sources: ExperienceSource[] = this.tasks.map((t) => ({
      vec: t.vec!,
      policy: learner.collectionPolicy(t.key),
      collection: learner.collection(t.key),
      task: t.key,
      taskIndex: t.spec.index,
      policyVersion: () => learner.policyVersion(t.key),
    }));
    const stream = taskExperienceStream(sources, { rounds: segmentEnd - state.segmentRounds, firstSource: state.roundPosition, bufferSize: 1, reset: false });
    const onItem = async (item: Experience): Promise<'go' | 'stop'> => {
      const task = state.tasks[item.task];
      const T = item.kind === 'chunk' ? item.length : 1;
      task.vectorSteps += T;
      task.segmentSteps += T;
      state.steps += T * item.layout.numEnvs;
      actionLogs[item.task].push(item.actions);
      state.roundPosition++;
      if (state.roundPosition === K) {
        state.roundPosition = 0;
        state.segmentRounds++;
        state.rounds++;
      }
      this.countEpisodes(task, item.episodes);
      this.addStats(task, learner.observe(item, task.vectorSteps * item.layout.numEnvs));
      await this.afterStep();
      const segmentDone = state.segmentRounds >= segmentEnd;
      if (!segmentDone && this.options.shouldStop?.(this.progress())) {
        // Written before this item is acked, so the stream has not stepped past it.
        const logs = Object.fromEntries(Object.entries(actionLogs).map(([k, rows]) => [k, concat(rows)]));
        this.lastCheckpoint = await this.checkpoint('interrupt', logs);
        this.interrupted = true;
        return 'stop';
      }
      return 'go';
    };
    await new Promise<void>((resolve, reject) => {
      stream.pipe(consumeEach(onItem), takeWhile((r) => r === 'go')).subscribe({ complete: resolve, error: reject });
    });
    for (const t of this.tasks) await collectionSettled(t.vec!);
  }

  // --- the async remote driver: chunks from acting hosts over a broker ----------------------------

  /**
   * Async remote runs (`async-learner.ts`): the hosts step the envs, so segments only pace
   * checkpoints, nothing is reset or replayed, and an interrupted run's checkpoint closes its
   * segment (a resume starts a fresh one). One task; every consumed chunk is one round.
   */
  private async runAsync(learner: OnlineLearner, broker: RunBroker): Promise<void> {
    const state = this.state;
    const t = this.tasks[0];
    const remote = this.config.run.remote!;
    const chunkLength = this.chunkLength(t);
    const link = new AsyncLearnerLink(
      broker.redis,
      {
        runId: broker.runId,
        mode: 'async',
        config: JSON.parse(JSON.stringify(this.config)) as Record<string, unknown>,
        tasks: [{ key: t.key, env: t.env as unknown as Record<string, unknown>, numEnvs: t.numEnvs, seed: this.taskSeed(t.key), groups: 1, shards: remote.shards, checkFinite: this.config.run.check_finite }],
        leaseMs: remote.lease_ms,
        credits: remote.credits,
        maxPolicyLag: remote.max_policy_lag,
        registeredAt: Date.now(),
      },
      { layout: { ...t.spec.shape, numEnvs: t.numEnvs }, taskIndex: t.spec.index, chunkLength, onNotice: this.options.onNotice, brokerDisplay: broker.display },
    );
    this.asyncLink = link;
    let publishedVersion = learner.policyVersion(t.key);
    // Captured (the whole learner's state) only when an update made a new version to publish.
    const publish = async () => {
      const version = learner.policyVersion(t.key);
      if (version === publishedVersion) return;
      await link.publishWeights((await learner.captureState()).models, version);
      publishedVersion = version;
    };
    let failure: unknown;
    try {
      await link.start((await learner.captureState()).models, learner.policyVersion(t.key));
      while (state.rounds < this.totalLength && !this.interrupted) {
        const segmentEnd = Math.min(this.segmentLength, this.totalLength - (state.rounds - state.segmentRounds));
        const stream = link.chunks({ items: segmentEnd - state.segmentRounds, learnerVersion: () => learner.policyVersion(t.key), shouldStop: () => this.options.shouldStop?.(this.progress()) ?? false });
        const onItem = async (item: TrajectoryChunk): Promise<'go' | 'stop'> => {
          const task = state.tasks[t.key];
          task.vectorSteps += item.length;
          task.segmentSteps += item.length;
          state.steps += item.length * item.layout.numEnvs;
          state.segmentRounds++;
          state.rounds++;
          this.countEpisodes(task, item.episodes);
          this.addStats(task, learner.observe(item, task.vectorSteps * item.layout.numEnvs));
          await publish();
          await this.afterStep();
          return state.segmentRounds < segmentEnd && this.options.shouldStop?.(this.progress()) ? 'stop' : 'go';
        };
        await new Promise<void>((resolve, reject) => {
          stream.pipe(consumeEach(onItem), takeWhile((r) => r === 'go')).subscribe({ complete: resolve, error: reject });
        });
        if (state.segmentRounds < segmentEnd) {
          this.closeSegment();
          this.lastCheckpoint = await this.checkpoint('interrupt');
          this.interrupted = true;
          break;
        }
        await this.endSegment();
      }
    } catch (error) {
      failure = error;
      if (!(error instanceof RolloutBrokerError)) throw error;
      // The broker went away: keep what was learned (the loop state counts only consumed chunks).
      this.closeSegment();
      const saved = await this.checkpoint('interrupt');
      this.lastCheckpoint = saved;
      throw this.lostBrokerError(error, saved);
    } finally {
      // Unregistering tells the hosts the run is over; after a broker failure there is nothing to tell.
      await link.close(!(failure instanceof RolloutBrokerError)).catch(() => undefined);
    }
  }

  /** Counts an item's ended episodes into the task's totals and log interval (cut episodes are not episodes). */
  private countEpisodes(task: TaskLoopState, episodes: Experience['episodes']): void {
    const iv = task.interval;
    for (const ep of episodes) {
      if (ep.aborted) continue;
      task.episodes++;
      iv.episodes++;
      iv.returnSum += ep.return;
      iv.lengthSum += ep.length;
      if (!Number.isNaN(ep.success)) {
        iv.successSum += ep.success;
        iv.successCount++;
      }
    }
  }

  /** Ends the current segment where it stands (async runs have no env state to rebuild). */
  private closeSegment(): void {
    const state = this.state;
    if (state.segmentRounds === 0) return;
    state.segment++;
    state.segmentRounds = 0;
    state.roundPosition = 0;
    for (const task of Object.values(state.tasks)) task.segmentSteps = 0;
  }

  // --- the offline driver: gradient steps on the learner's datasets ----------------------------

  private async runOffline(learner: OfflineLearner): Promise<void> {
    const state = this.state;
    const task = state.tasks[this.tasks[0].key];
    while (state.rounds < this.totalLength && !this.interrupted) {
      const segmentEnd = Math.min(this.segmentLength, this.totalLength - (state.rounds - state.segmentRounds));
      while (state.segmentRounds < segmentEnd) {
        const stats = learner.trainStep();
        state.steps++;
        state.rounds++;
        state.segmentRounds++;
        this.addStats(task, { ...stats, grad_steps: 1 });
        await this.afterStep();
        // Let timers and signals (Ctrl-C) in now and then; gradient steps never leave the microtask queue.
        if (state.steps % 64 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        if (state.segmentRounds < segmentEnd && this.options.shouldStop?.(this.progress())) {
          this.lastCheckpoint = await this.checkpoint('interrupt');
          this.interrupted = true;
          return;
        }
      }
      await this.endSegment();
    }
  }

  // --- what both drivers share ---------------------------------------------------------------

  private addStats(task: TaskLoopState, stats: TrainStats | undefined): void {
    if (!stats) return;
    for (const k in stats) {
      const v = stats[k];
      if (!Number.isFinite(v)) throw this.divergence(`its '${k}' is ${v}`);
    }
    const n = stats.grad_steps ?? 1;
    this.state.updates += n;
    task.updates += n;
    const iv = task.interval;
    for (const [k, v] of Object.entries(stats)) {
      if (k === 'grad_steps') continue;
      iv.statSums[k] = (iv.statSums[k] ?? 0) + v;
      iv.statCounts[k] = (iv.statCounts[k] ?? 0) + 1;
    }
  }

  /** Logging and evaluation when their intervals come due, then progress. */
  private async afterStep(): Promise<void> {
    const state = this.state;
    const run = this.config.run;
    if (state.steps >= state.nextLogAt) {
      this.logInterval();
      state.nextLogAt = roundUp(state.steps + 1, run.log_interval);
    }
    if (state.steps >= state.nextEvalAt) {
      await this.evaluate();
      state.nextEvalAt = roundUp(state.steps + 1, run.eval_interval);
    }
    this.options.onProgress?.(this.progress());
  }

  private async endSegment(): Promise<void> {
    const state = this.state;
    state.segment++;
    state.segmentRounds = 0;
    state.roundPosition = 0;
    for (const t of Object.values(state.tasks)) t.segmentSteps = 0;
    const finished = state.rounds >= this.totalLength;
    if (finished) {
      const pending = Object.values(state.tasks).some((t) => t.interval.episodes > 0 || Object.keys(t.interval.statSums).length > 0);
      if (pending) this.logInterval();
      const last = Object.values(state.tasks)[0].lastEval;
      const at = last ? (this.unit === 'env_steps' ? last.env_steps : last.grad_steps) : undefined;
      if (at !== state.steps) await this.evaluate();
    }
    this.lastCheckpoint = await this.checkpoint(finished ? 'final' : 'periodic');
    if (!finished && this.options.shouldStop?.(this.progress())) this.interrupted = true;
  }

  private progress(): TrainingProgress {
    const state = this.state;
    const evals = Object.values(state.tasks).map((t) => t.lastEval).filter((e): e is PlacedEvaluation => e !== null);
    const lastEval = evals.length === 0 ? undefined : meanEvaluation(evals);
    const totalSteps = this.totalLength * this.roundSteps;
    return {
      unit: this.unit,
      steps: state.steps,
      totalSteps,
      envSteps: this.envSteps(),
      totalEnvSteps: this.unit === 'env_steps' ? totalSteps : 0,
      episodes: Object.values(state.tasks).reduce((n, t) => n + t.episodes, 0),
      updates: state.updates,
      lastReturn: state.lastReturn,
      lastEval: lastEval ? { episodes: lastEval.episodes, meanReturn: lastEval.return_mean, stdReturn: lastEval.return_std, meanLength: lastEval.length_mean, successRate: lastEval.win_rate } : undefined,
      elapsedSeconds: this.elapsed(),
    };
  }

  private record(r: MetricsRecord): void {
    this.dir.append(r);
    this.options.onRecord?.(r);
  }

  private writePlot(): void {
    this.dir.writePlot(`${this.config.algo.name} on ${runLabel(this.config)} (seed ${this.config.run.seed})`);
  }

  private logInterval(): void {
    const state = this.state;
    const now = this.elapsed();
    const returns: number[] = [];
    // Online, every task has its episodes and updates; offline, the one learner's steps are the run's.
    const perTask = !this.single && this.unit === 'env_steps';
    for (const t of this.unit === 'env_steps' ? this.tasks : this.tasks.slice(0, 1)) {
      const task = state.tasks[t.key];
      const iv = task.interval;
      const stats: Record<string, number> = {};
      for (const k of Object.keys(iv.statSums).sort()) stats[k] = iv.statSums[k] / iv.statCounts[k];
      if (iv.episodes > 0) returns.push(iv.returnSum / iv.episodes);
      const taskFields = perTask ? { task: t.key, task_env_steps: task.vectorSteps * t.numEnvs, task_updates: task.updates } : {};
      this.record({
        kind: 'train',
        ...(perTask ? { task: t.key } : {}),
        ...this.place(),
        ...(this.unit === 'env_steps' ? { episodes: task.episodes } : {}),
        updates: state.updates,
        ...(this.unit === 'env_steps'
          ? {
              interval_episodes: iv.episodes,
              return_mean: iv.episodes > 0 ? iv.returnSum / iv.episodes : null,
              win_rate: iv.successCount > 0 ? iv.successSum / iv.successCount : null,
              length_mean: iv.episodes > 0 ? iv.lengthSum / iv.episodes : null,
            }
          : {}),
        ...taskFields,
        ...stats,
        ...(this.asyncLink?.takeIntervalStats() ?? {}),
        steps_per_s: now > iv.startSeconds ? (state.steps - iv.startSteps) / (now - iv.startSeconds) : null,
        time_s: now,
      } as MetricsRecord);
      task.interval = freshInterval(now, state.steps);
    }
    if (returns.length > 0) state.lastReturn = returns.reduce((a, b) => a + b, 0) / returns.length;
  }

  private async evaluate(): Promise<void> {
    const state = this.state;
    const run = this.config.run;
    for (const t of this.tasks) {
      const t0 = Date.now();
      const policy = this.learner.evaluationPolicy(t.key, t.evalVec.numEnvs, this.taskSeed(t.key, 'eval-policy', state.evaluations), { sample: !run.eval_greedy });
      const result = await evaluatePolicy(t.evalVec, policy, run.eval_episodes, 0, { taskIndex: t.spec.index, maxSteps: run.eval_max_steps });
      const summary: EvaluationSummary = {
        return_mean: result.meanReturn,
        return_std: result.stdReturn,
        win_rate: result.successRate,
        length_mean: result.meanLength,
        episodes: result.episodes,
      };
      const task = state.tasks[t.key];
      task.lastEval = { ...summary, ...this.place() };
      if (!task.bestEval || summary.return_mean > task.bestEval.return_mean) task.bestEval = task.lastEval;
      if (run.best_checkpoint !== 'none') {
        const value = run.best_checkpoint === 'win_rate' ? summary.win_rate : summary.return_mean;
        if (value !== null && Number.isFinite(value) && (task.bestCheckpointValue === undefined || value > task.bestCheckpointValue)) {
          task.bestCheckpointValue = value;
          await this.writeBestCheckpoint(t.key, task.lastEval);
        }
      }
      // Only a capped evaluation carries the cap, so normal runs' rows stay as they were.
      const capped: Record<string, number> = result.stepCapHit ? { step_cap: result.stepCapHit.maxSteps, episodes_requested: result.stepCapHit.requestedEpisodes } : {};
      this.record({ kind: 'eval', ...(this.single ? {} : { task: t.key }), ...this.place(), ...summary, ...capped, eval_time_s: (Date.now() - t0) / 1000 });
    }
    state.evaluations++;
    this.writePlot();
  }

  /**
   * The policy weights behind `task`'s best evaluation so far, for evaluating it again later
   * (`troupe eval <run>/checkpoints/best.ckpt`). Not a training checkpoint: no optimiser, replay
   * or loop state, so it cannot be resumed from (and `--resume` says so).
   */
  private async writeBestCheckpoint(task: string, evaluation: PlacedEvaluation): Promise<void> {
    const { models } = await this.learner.captureState();
    const policy = this.learner.policySpecs()[task];
    const data: CheckpointData = {
      createdAt: new Date().toISOString(),
      config: JSON.parse(JSON.stringify(this.config)) as JsonObject,
      counters: { envSteps: this.envSteps(), episodes: 0, updates: this.state.updates, logIndex: 0, ...(this.unit === 'grad_steps' ? { gradientSteps: this.state.steps } : {}) },
      models,
      optimizers: {},
      rngs: {},
      arrays: {},
      backend: this.options.backend.name,
      metadata: JSON.parse(JSON.stringify({ kind: 'best', task, metric: this.config.run.best_checkpoint, evaluation, policies: policy ? { [task]: policySpecJson(policy) } : {} })) as JsonObject,
    };
    const name = this.single ? 'best' : `best-${task.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    fs.mkdirSync(this.dir.checkpointDir, { recursive: true });
    writeFileAtomicSync(path.join(this.dir.checkpointDir, `${name}.ckpt`), encodeCheckpoint(data));
  }

  /**
   * The error that stops a run whose learner diverged (`what` became NaN/Infinity): it names the
   * algorithm, the step and the last checkpoint written before, which holds finite weights.
   */
  private divergence(what: string): Error {
    const state = this.state;
    const at = this.unit === 'env_steps' ? `env step ${state.steps}` : `gradient step ${state.steps}`;
    const last = this.lastCheckpoint ?? this.options.resume?.path ?? null;
    const next = last
      ? `the last good checkpoint is ${last}; resume from it with: troupe train --resume ${last} (add --set to change e.g. algo.lr)`
      : 'no checkpoint was written before it, so there is none to resume from; start again, e.g. with a smaller algo.lr';
    return new Error(`${this.config.algo.name} diverged at ${at} (after ${state.updates} finite updates): ${what}, expected a finite number. Training stopped without writing a checkpoint; ${next}`);
  }

  private async checkpoint(kind: 'periodic' | 'interrupt' | 'final', actionLogs?: Record<string, Float32Array>): Promise<string> {
    const state = this.state;
    const learnerState = await this.learner.captureState();
    // Never save NaN weights: a checkpoint is what a user resumes from and deploys.
    const bad = firstNonFiniteWeight(learnerState.models);
    if (bad) throw this.divergence(`weight '${bad.tensor}' of model '${bad.model}' has ${bad.value} at index ${bad.index}`);
    const arrays: Record<string, SerializedArray> = withPrefix(TRAINER_ARRAY_PREFIX, learnerState.arrays);
    if (actionLogs) for (const [task, log] of Object.entries(actionLogs)) arrays[actionLogKey(task, this.single)] = serializeArray(log);
    const policies = Object.fromEntries(Object.entries(this.learner.policySpecs()).map(([k, spec]) => [k, policySpecJson(spec)]));
    const data: CheckpointData = {
      createdAt: new Date().toISOString(),
      config: JSON.parse(JSON.stringify(this.config)) as JsonObject,
      counters: {
        envSteps: this.envSteps(),
        episodes: Object.values(state.tasks).reduce((n, t) => n + t.episodes, 0),
        updates: state.updates,
        logIndex: this.dir.records,
        ...(this.unit === 'grad_steps' ? { gradientSteps: state.steps } : {}),
      },
      models: learnerState.models,
      optimizers: learnerState.optimizers,
      rngs: learnerState.rngs,
      arrays,
      backend: this.options.backend.name,
      metadata: JSON.parse(
        JSON.stringify({
          kind,
          loop: { ...state, priorSeconds: this.elapsed() },
          trainer: learnerState.json,
          policies,
          ...(this.unit === 'grad_steps' ? { datasets: Object.fromEntries(this.tasks.map((t) => [t.key, t.datasetInfo ?? null])) } : {}),
        }),
      ) as JsonObject,
    };
    return this.dir.writeCheckpoint(`step-${String(state.steps).padStart(10, '0')}${kind === 'interrupt' ? '-interrupted' : ''}`, data);
  }

  private writeSummary(): TrainingSummary {
    const state = this.state;
    const strip = (e: PlacedEvaluation | null): EvaluationSummary | null => {
      if (!e) return null;
      const { env_steps: _e, grad_steps: _g, ...rest } = e;
      return rest;
    };
    const taskStates = this.tasks.map((t) => state.tasks[t.key]);
    const finals = taskStates.map((t) => t.lastEval).filter((e): e is PlacedEvaluation => e !== null);
    const summary: TrainingSummary = {
      env: runLabel(this.config),
      algo: this.config.algo.name,
      seed: this.config.run.seed,
      backend: this.options.backend.name,
      unit: this.unit,
      env_steps: this.envSteps(),
      ...(this.unit === 'grad_steps' ? { grad_steps: state.steps } : {}),
      episodes: taskStates.reduce((n, t) => n + t.episodes, 0),
      updates: state.updates,
      wall_time_s: this.elapsed(),
      interrupted: this.interrupted,
      final_eval: this.interrupted || finals.length === 0 ? null : strip(this.single ? finals[0] : meanEvaluation(finals)),
      best_eval: this.single ? taskStates[0].bestEval : null,
      ...(this.single
        ? {}
        : {
            tasks: Object.fromEntries(
              this.tasks.map((t) => {
                const s = state.tasks[t.key];
                return [t.key, { final_eval: this.interrupted ? null : strip(s.lastEval), best_eval: s.bestEval, env_steps: s.vectorSteps * t.numEnvs, episodes: s.episodes }];
              }),
            ),
          }),
      checkpoint: this.lastCheckpoint,
      ...(this.asyncLink ? { async: this.asyncLink.summary() } : {}),
    };
    this.dir.writeSummary(summary);
    return summary;
  }

  /** Rebuilds the loop and learner state a checkpoint holds; errors name the file and the missing part. */
  private async restore(data: CheckpointData, file: string): Promise<void> {
    const meta = data.metadata;
    const loop = meta.loop;
    if (typeof loop !== 'object' || loop === null || Array.isArray(loop)) throw new Error(`${file}: not a training checkpoint (metadata.loop is missing)`);
    // A copy: the checkpoint's data must stay as it was read (a caller may resume from it again).
    const state = loop.version === 3 ? (structuredClone(loop) as unknown as LoopState) : this.upgradeLoopState(loop as JsonObject, file);
    for (const key of ['segment', 'rounds', 'segmentRounds', 'roundPosition', 'steps', 'updates', 'nextLogAt', 'nextEvalAt', 'evaluations', 'priorSeconds'] as const) {
      if (typeof state[key] !== 'number') throw new Error(`${file}: field 'metadata.loop.${key}' must be a number`);
    }
    if (state.unit !== this.unit) throw new Error(`${file}: the checkpoint counts ${state.unit}, this run ${this.unit}`);
    if (this.unit === 'grad_steps') {
      const recorded = (meta.datasets ?? {}) as Record<string, DatasetInfo | null>;
      for (const t of this.tasks) {
        const was = recorded[t.key];
        if (was && t.datasetInfo && was.sha256 !== t.datasetInfo.sha256) {
          throw new Error(`${file}: task '${t.key}' trained on dataset ${was.file} (${was.episodes} episodes, sha256 ${was.sha256.slice(0, 12)}…), but ${t.datasetInfo.file} is now a different file (${t.datasetInfo.episodes} episodes, sha256 ${t.datasetInfo.sha256.slice(0, 12)}…); resuming would continue on other data`);
        }
      }
    }
    for (const t of this.tasks) {
      const ts = state.tasks?.[t.key];
      if (typeof ts !== 'object' || ts === null || typeof ts.interval !== 'object' || ts.interval === null) throw new Error(`${file}: field 'metadata.loop.tasks.${t.key}' is missing`);
    }
    // JSON turns NaN into null.
    if (state.lastReturn === null) state.lastReturn = NaN;
    const learnerState = learnerStateOf(data, file);
    try {
      await this.learner.restoreState(learnerState);
    } catch (error) {
      throw new Error(`${file}: cannot restore the trainer: ${(error as Error).message}`);
    }
    const inSegment = state.segmentRounds !== 0 || state.roundPosition !== 0;
    if (this.unit === 'env_steps' && inSegment) {
      this.replayActions = {};
      for (const t of this.tasks) {
        const key = actionLogKey(t.key, this.single);
        const log = data.arrays[key];
        if (!log) {
          if (state.tasks[t.key].segmentSteps !== 0) throw new Error(`${file}: checkpoint is inside a segment (${state.tasks[t.key].segmentSteps} steps of task '${t.key}') but has no action log`);
          continue;
        }
        const values = deserializeArray(log);
        if (!(values instanceof Float32Array)) throw new Error(`${file}: field 'arrays.${key}' must be a Float32Array`);
        this.replayActions[t.key] = values;
      }
    }
    this.state = state;
  }

  /** The loop state of a checkpoint written before multi-task runs (format 2): one task, counted in vector steps. */
  private upgradeLoopState(loop: JsonObject, file: string): LoopState {
    if (!this.single) throw new Error(`${file}: a single-task checkpoint cannot resume a run of ${this.tasks.length} tasks`);
    const t = this.tasks[0];
    const num = (key: string): number => {
      const v = loop[key];
      if (typeof v !== 'number') throw new Error(`${file}: field 'metadata.loop.${key}' must be a number`);
      return v;
    };
    const interval = loop.interval as unknown as { startEnvSteps?: number } & Omit<IntervalState, 'startSteps'>;
    if (typeof interval !== 'object' || interval === null) throw new Error(`${file}: field 'metadata.loop.interval' is missing`);
    const T = this.chunkLength(t);
    const vectorSteps = num('vectorSteps');
    const segmentSteps = num('segmentSteps');
    const evalOf = (key: string): PlacedEvaluation | null => (loop[key] === null || loop[key] === undefined ? null : (loop[key] as unknown as PlacedEvaluation));
    const { startEnvSteps, ...rest } = interval;
    return {
      version: 3,
      unit: 'env_steps',
      segment: num('segment'),
      rounds: vectorSteps / T,
      segmentRounds: segmentSteps / T,
      roundPosition: 0,
      steps: vectorSteps * t.numEnvs,
      updates: num('updates'),
      nextLogAt: num('nextLogAt'),
      nextEvalAt: num('nextEvalAt'),
      evaluations: num('evaluations'),
      lastReturn: typeof loop.lastReturn === 'number' ? loop.lastReturn : NaN,
      priorSeconds: num('priorSeconds'),
      tasks: {
        [t.key]: {
          vectorSteps,
          segmentSteps,
          episodes: num('episodes'),
          updates: num('updates'),
          interval: { ...rest, startSteps: startEnvSteps ?? 0 },
          lastEval: evalOf('lastEval'),
          bestEval: evalOf('bestEval'),
        },
      },
    };
  }
}

/** The first NaN/±Infinity in a learner's float32 model weights, or undefined when all are finite. */
function firstNonFiniteWeight(models: LearnerState['models']): { model: string; tensor: string; index: number; value: number } | undefined {
  for (const [model, tensors] of Object.entries(models)) {
    for (const [tensor, t] of Object.entries(tensors)) {
      if (t.dtype !== 'float32') continue;
      const bytes = t.data.byteOffset % 4 === 0 ? t.data : t.data.slice();
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return { model, tensor, index: i, value: values[i] };
    }
  }
  return undefined;
}

function roundUp(x: number, multiple: number): number {
  return Math.ceil(x / multiple) * multiple;
}

function concat(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    out.set(r, offset);
    offset += r.length;
  }
  return out;
}

/** The mean of several tasks' evaluations (the headline number of a multi-task run). */
function meanEvaluation(evals: PlacedEvaluation[]): PlacedEvaluation {
  const mean = (f: (e: PlacedEvaluation) => number) => evals.reduce((a, e) => a + f(e), 0) / evals.length;
  const wins = evals.filter((e) => e.win_rate !== null);
  return {
    return_mean: mean((e) => e.return_mean),
    return_std: mean((e) => e.return_std),
    win_rate: wins.length === 0 ? null : wins.reduce((a, e) => a + (e.win_rate ?? 0), 0) / wins.length,
    length_mean: mean((e) => e.length_mean),
    episodes: evals.reduce((a, e) => a + e.episodes, 0),
  };
}
