import fs from 'node:fs';
import path from 'node:path';
import { takeWhile } from 'rxjs';
import type { Trainer, TrainerState, TrainStats } from '../../trainers/trainer';
import { type CheckpointData, type JsonObject, type SerializedArray, deserializeArray, serializeArray, writeCheckpoint } from '../core/checkpoint';
import { serializeRunConfig } from './config-loader';
import { type EvaluationResult, evaluatePolicy } from '../rollout/evaluation';
import { type Experience, type TrajectoryChunk, collectionSettled, consumeEach, experienceStream } from '../rollout/experience-stream';
import { learningCurveSvg } from '../core/learning-curve-plot';
import { MetricsLog, type MetricsRecord } from '../core/metrics-log';
import { deriveSeed } from '../core/rng';
import type { RunConfig } from './run-config';
import { VectorEnv } from '../rollout/vector-env';
import type { VectorLayout } from '../rollout/vector-layout';

/*
 * The training loop behind `troupe train`: envs (in worker threads or in-process) feed the
 * trainer through the experience stream; the loop counts steps, logs metrics, evaluates,
 * checkpoints and resumes.
 *
 * Reproducibility. Everything that shapes the numbers is a function of the config and seed:
 * envs are seeded per env index (so the worker count does not matter), the stream runs in
 * lock-step (bufferSize 1: no step is taken with weights an update is still changing), and
 * the trainer's randomness is its own seeded streams.
 *
 * Exact resume. Training is cut into segments of `checkpoint_interval` env steps. Every
 * segment starts by resetting all envs to fresh episodes seeded from (seed, segment), so a
 * checkpoint at a segment's end needs no env state at all. A checkpoint taken inside a segment
 * (Ctrl-C) also stores the actions taken since the segment began; resuming replays them on
 * freshly reset envs, which brings every env back to the exact same state (envs are
 * deterministic, which `troupe check-env` verifies). The running episodes cut at segment
 * boundaries are ordinary truncations, bootstrapped like time limits.
 */

export interface TrainingRunOptions {
  config: RunConfig;
  /** Run directory: config.yaml, run.json, metrics.jsonl, checkpoints/, summary.json, learning-curve.svg. */
  outDir: string;
  /** The tfjs backend in use (already selected), recorded with the run. */
  backend: { name: string; reason: string };
  createTrainer: (layout: VectorLayout, config: RunConfig) => Trainer;
  /** Continue from this checkpoint (its config is the run's config). */
  resume?: { data: CheckpointData; path: string };
  /** Asked after every stream item; true stops the run with a checkpoint (e.g. on Ctrl-C). */
  shouldStop?: (progress: TrainingProgress) => boolean;
  onProgress?: (progress: TrainingProgress) => void;
  onRecord?: (record: MetricsRecord) => void;
  /** Checkpoints kept in checkpoints/ (older ones are deleted). Default 3. */
  keepCheckpoints?: number;
}

export interface TrainingProgress {
  envSteps: number;
  totalEnvSteps: number;
  episodes: number;
  updates: number;
  /** Mean training return of the last log interval (NaN before the first). */
  lastReturn: number;
  lastEval?: EvaluationResult;
  elapsedSeconds: number;
}

export interface TrainingSummary {
  env: string;
  algo: string;
  seed: number;
  backend: string;
  env_steps: number;
  episodes: number;
  updates: number;
  wall_time_s: number;
  interrupted: boolean;
  final_eval: EvaluationSummary | null;
  best_eval: (EvaluationSummary & { env_steps: number }) | null;
  checkpoint: string | null;
}

type EvaluationSummary = { return_mean: number; return_std: number; win_rate: number | null; length_mean: number; episodes: number };

/** Episode and update statistics of the current log interval; plain numbers, so checkpoints can hold it. */
interface IntervalState {
  episodes: number;
  returnSum: number;
  lengthSum: number;
  successSum: number;
  successCount: number;
  statSums: Record<string, number>;
  statCounts: Record<string, number>;
  /** Elapsed run seconds and env steps when the interval began (for steps/s). */
  startSeconds: number;
  startEnvSteps: number;
}

/** The loop's own state between stream items. */
interface LoopState {
  segment: number;
  /** Vector steps taken in the current segment. */
  segmentSteps: number;
  vectorSteps: number;
  episodes: number;
  updates: number;
  nextLogAt: number;
  nextEvalAt: number;
  evaluations: number;
  lastReturn: number;
  bestEval: (EvaluationSummary & { env_steps: number }) | null;
  lastEval: (EvaluationSummary & { env_steps: number }) | null;
  interval: IntervalState;
  /** Run seconds accumulated before this process (resumes). */
  priorSeconds: number;
}

const CHECKPOINT_DIR = 'checkpoints';
const ACTION_LOG = 'run/actions-since-segment-start';
const TRAINER_ARRAY_PREFIX = 'trainer/';

function freshInterval(startSeconds: number, startEnvSteps: number): IntervalState {
  return { episodes: 0, returnSum: 0, lengthSum: 0, successSum: 0, successCount: 0, statSums: {}, statCounts: {}, startSeconds, startEnvSteps };
}

function roundUp(x: number, multiple: number): number {
  return Math.ceil(x / multiple) * multiple;
}

export async function runTraining(options: TrainingRunOptions): Promise<TrainingSummary> {
  const { config, outDir } = options;
  const run = config.run;
  fs.mkdirSync(outDir, { recursive: true });
  const checkpointDir = path.join(outDir, CHECKPOINT_DIR);
  const metricsFile = path.join(outDir, 'metrics.jsonl');
  fs.writeFileSync(path.join(outDir, 'config.yaml'), serializeRunConfig(config));

  const vec = await VectorEnv.create({ env: config.env, numEnvs: run.num_envs, workers: run.workers, seed: run.seed });
  const evalVec = await VectorEnv.create({ env: config.env, numEnvs: Math.min(run.eval_episodes, run.num_envs), workers: 0, seed: deriveSeed(run.seed, 'eval') });
  const trainer = options.createTrainer(vec.layout, config);
  const E = vec.numEnvs;
  const { numAgents: A, actDim } = vec.layout;
  const chunkLength = trainer.collection.mode === 'chunk' ? trainer.collection.chunkLength : 1;
  // Whole items per segment and per run, so every checkpoint falls on an item boundary.
  const segmentLength = roundUp(Math.ceil(run.checkpoint_interval / E), chunkLength);
  const totalVectorSteps = roundUp(Math.ceil(run.total_env_steps / E), chunkLength);
  const startedAt = Date.now();
  const elapsed = () => state.priorSeconds + (Date.now() - startedAt) / 1000;

  let state: LoopState = {
    segment: 0,
    segmentSteps: 0,
    vectorSteps: 0,
    episodes: 0,
    updates: 0,
    nextLogAt: run.log_interval,
    nextEvalAt: run.eval_interval,
    evaluations: 0,
    lastReturn: NaN,
    bestEval: null,
    lastEval: null,
    interval: freshInterval(0, 0),
    priorSeconds: 0,
  };
  let metrics: MetricsLog;
  let replayActions: Float32Array | undefined;
  if (options.resume) {
    const restored = await restoreRun(options.resume.data, options.resume.path, trainer);
    state = restored.state;
    replayActions = restored.actionLog;
    metrics = MetricsLog.resume(metricsFile, options.resume.data.counters.logIndex);
  } else {
    metrics = MetricsLog.create(metricsFile);
  }
  fs.writeFileSync(
    path.join(outDir, 'run.json'),
    `${JSON.stringify(
      {
        backend: options.backend.name,
        backend_reason: options.backend.reason,
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        workers: run.workers,
        resumed_from: options.resume?.path ?? null,
        started_at: new Date(startedAt).toISOString(),
      },
      null,
      2,
    )}\n`,
  );

  const envSteps = () => state.vectorSteps * E;
  const progress = (): TrainingProgress => ({
    envSteps: envSteps(),
    totalEnvSteps: totalVectorSteps * E,
    episodes: state.episodes,
    updates: state.updates,
    lastReturn: state.lastReturn,
    lastEval: state.lastEval ? { episodes: state.lastEval.episodes, meanReturn: state.lastEval.return_mean, stdReturn: state.lastEval.return_std, meanLength: state.lastEval.length_mean, successRate: state.lastEval.win_rate } : undefined,
    elapsedSeconds: elapsed(),
  });
  const record = (r: MetricsRecord) => {
    metrics.append(r);
    options.onRecord?.(r);
  };

  const writePlot = () => {
    const title = `${config.algo.name} on ${config.env.id} (seed ${run.seed})`;
    fs.writeFileSync(path.join(outDir, 'learning-curve.svg'), learningCurveSvg(MetricsLog.read(metricsFile), title));
  };

  const evaluate = async (): Promise<void> => {
    const t0 = Date.now();
    const policy = trainer.evaluationPolicy(evalVec.layout, deriveSeed(run.seed, 'eval-policy', state.evaluations), { sample: !run.eval_greedy });
    const result = await evaluatePolicy(evalVec, policy, run.eval_episodes);
    state.evaluations++;
    const summary: EvaluationSummary = {
      return_mean: result.meanReturn,
      return_std: result.stdReturn,
      win_rate: result.successRate,
      length_mean: result.meanLength,
      episodes: result.episodes,
    };
    state.lastEval = { ...summary, env_steps: envSteps() };
    if (!state.bestEval || summary.return_mean > state.bestEval.return_mean) state.bestEval = state.lastEval;
    record({ kind: 'eval', env_steps: envSteps(), ...summary, eval_time_s: (Date.now() - t0) / 1000 });
    writePlot();
  };

  const logInterval = (): void => {
    const iv = state.interval;
    const now = elapsed();
    const stats: Record<string, number> = {};
    for (const k of Object.keys(iv.statSums).sort()) stats[k] = iv.statSums[k] / iv.statCounts[k];
    if (iv.episodes > 0) state.lastReturn = iv.returnSum / iv.episodes;
    record({
      kind: 'train',
      env_steps: envSteps(),
      episodes: state.episodes,
      updates: state.updates,
      interval_episodes: iv.episodes,
      return_mean: iv.episodes > 0 ? iv.returnSum / iv.episodes : null,
      win_rate: iv.successCount > 0 ? iv.successSum / iv.successCount : null,
      length_mean: iv.episodes > 0 ? iv.lengthSum / iv.episodes : null,
      ...stats,
      steps_per_s: now > iv.startSeconds ? (envSteps() - iv.startEnvSteps) / (now - iv.startSeconds) : null,
      time_s: now,
    });
    state.interval = freshInterval(now, envSteps());
  };

  const checkpoint = async (kind: 'periodic' | 'interrupt' | 'final', actionLog?: Float32Array): Promise<string> => {
    const trainerState = await trainer.captureState();
    const arrays: Record<string, SerializedArray> = {};
    for (const [k, v] of Object.entries(trainerState.arrays)) arrays[TRAINER_ARRAY_PREFIX + k] = v;
    if (actionLog) arrays[ACTION_LOG] = serializeArray(actionLog);
    const data: CheckpointData = {
      createdAt: new Date().toISOString(),
      config: JSON.parse(JSON.stringify(config)) as JsonObject,
      counters: { envSteps: envSteps(), episodes: state.episodes, updates: state.updates, logIndex: metrics.records },
      models: trainerState.models,
      optimizers: trainerState.optimizers,
      rngs: trainerState.rngs,
      arrays,
      backend: options.backend.name,
      metadata: { kind, loop: JSON.parse(JSON.stringify({ ...state, priorSeconds: elapsed() })) as JsonObject, trainer: trainerState.json },
    };
    return writeCheckpoint(checkpointDir, `step-${String(envSteps()).padStart(10, '0')}${kind === 'interrupt' ? '-interrupted' : ''}`, data, {
      keepLast: options.keepCheckpoints ?? 3,
    });
  };

  let interrupted = false;
  let lastCheckpoint: string | null = null;
  try {
    while (state.vectorSteps < totalVectorSteps && !interrupted) {
      const segmentEnd = Math.min(segmentLength, totalVectorSteps - (state.vectorSteps - state.segmentSteps));
      await vec.reset(state.segment);
      // A resumed trainer's recurrent state belongs to the envs the replay below rebuilds.
      if (state.segmentSteps === 0) trainer.episodesReset();
      // Actions since the segment began: what a mid-segment checkpoint needs to rebuild the envs.
      const actionLog: Float32Array[] = [];
      if (replayActions) {
        const rowLength = E * A * actDim;
        for (let t = 0; t * rowLength < replayActions.length; t++) {
          const row = replayActions.subarray(t * rowLength, (t + 1) * rowLength);
          vec.buffers.actions.set(row);
          await vec.step();
          actionLog.push(row.slice());
        }
        if (actionLog.length !== state.segmentSteps) throw new Error(`checkpoint action log has ${actionLog.length} steps, expected ${state.segmentSteps}`);
        replayActions = undefined;
      }
      const remaining = segmentEnd - state.segmentSteps;
      const source = experienceStream(vec, trainer.policy, {
        ...(trainer.collection.mode === 'chunk' ? { mode: 'chunk' as const, chunkLength } : { mode: 'transition' as const }),
        maxSteps: remaining,
        bufferSize: 1,
        reset: false,
      });
      const onItem = async (item: Experience): Promise<'go' | 'stop'> => {
        const T = item.kind === 'chunk' ? (item as TrajectoryChunk).length : 1;
        state.vectorSteps += T;
        state.segmentSteps += T;
        actionLog.push(item.actions);
        const iv = state.interval;
        for (const ep of item.episodes) {
          if (ep.aborted) continue;
          state.episodes++;
          iv.episodes++;
          iv.returnSum += ep.return;
          iv.lengthSum += ep.length;
          if (!Number.isNaN(ep.success)) {
            iv.successSum += ep.success;
            iv.successCount++;
          }
        }
        const stats: TrainStats | undefined = trainer.observe(item, envSteps());
        if (stats) {
          state.updates += stats.grad_steps ?? 1;
          for (const [k, v] of Object.entries(stats)) {
            if (k === 'grad_steps') continue;
            iv.statSums[k] = (iv.statSums[k] ?? 0) + v;
            iv.statCounts[k] = (iv.statCounts[k] ?? 0) + 1;
          }
        }
        if (envSteps() >= state.nextLogAt) {
          logInterval();
          state.nextLogAt = roundUp(envSteps() + 1, run.log_interval);
        }
        if (envSteps() >= state.nextEvalAt) {
          await evaluate();
          state.nextEvalAt = roundUp(envSteps() + 1, run.eval_interval);
        }
        options.onProgress?.(progress());
        const segmentDone = state.segmentSteps >= segmentEnd;
        if (!segmentDone && options.shouldStop?.(progress())) {
          // Written before this item is acked, so the stream has not stepped past it.
          lastCheckpoint = await checkpoint('interrupt', concat(actionLog));
          interrupted = true;
          return 'stop';
        }
        return 'go';
      };
      await new Promise<void>((resolve, reject) => {
        source.pipe(consumeEach(onItem), takeWhile((r) => r === 'go')).subscribe({ complete: resolve, error: reject });
      });
      await collectionSettled(vec);
      if (interrupted) break;
      state.segment++;
      state.segmentSteps = 0;
      const finished = state.vectorSteps >= totalVectorSteps;
      if (finished) {
        if (state.interval.episodes > 0 || Object.keys(state.interval.statSums).length > 0) logInterval();
        if (!state.lastEval || state.lastEval.env_steps !== envSteps()) await evaluate();
      }
      lastCheckpoint = await checkpoint(finished ? 'final' : 'periodic');
      if (!finished && options.shouldStop?.(progress())) interrupted = true;
    }
  } finally {
    await vec.close();
    await evalVec.close();
    trainer.dispose();
  }
  if (metrics.records > 0) writePlot();
  const summary: TrainingSummary = {
    env: config.env.id,
    algo: config.algo.name,
    seed: run.seed,
    backend: options.backend.name,
    env_steps: envSteps(),
    episodes: state.episodes,
    updates: state.updates,
    wall_time_s: elapsed(),
    interrupted,
    final_eval: interrupted || !state.lastEval ? null : stripSteps(state.lastEval),
    best_eval: state.bestEval,
    checkpoint: lastCheckpoint,
  };
  fs.writeFileSync(path.join(outDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

function stripSteps(e: EvaluationSummary & { env_steps: number }): EvaluationSummary {
  const { env_steps: _, ...rest } = e;
  return rest;
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

/** Rebuilds the loop and trainer state a checkpoint holds; errors name the file and the missing part. */
async function restoreRun(data: CheckpointData, file: string, trainer: Trainer): Promise<{ state: LoopState; actionLog?: Float32Array }> {
  const meta = data.metadata;
  const loop = meta.loop;
  if (typeof loop !== 'object' || loop === null || Array.isArray(loop)) throw new Error(`${file}: not a training checkpoint (metadata.loop is missing)`);
  const state = loop as unknown as LoopState;
  for (const key of ['segment', 'segmentSteps', 'vectorSteps', 'episodes', 'updates', 'nextLogAt', 'nextEvalAt', 'evaluations', 'priorSeconds'] as const) {
    if (typeof state[key] !== 'number') throw new Error(`${file}: field 'metadata.loop.${key}' must be a number`);
  }
  if (typeof state.interval !== 'object' || state.interval === null) throw new Error(`${file}: field 'metadata.loop.interval' is missing`);
  // JSON turns NaN into null.
  if (state.lastReturn === null) state.lastReturn = NaN;
  const trainerArrays: Record<string, SerializedArray> = {};
  for (const [k, v] of Object.entries(data.arrays)) if (k.startsWith(TRAINER_ARRAY_PREFIX)) trainerArrays[k.slice(TRAINER_ARRAY_PREFIX.length)] = v;
  const trainerJson = meta.trainer;
  if (typeof trainerJson !== 'object' || trainerJson === null || Array.isArray(trainerJson)) throw new Error(`${file}: field 'metadata.trainer' must be a map`);
  const trainerState: TrainerState = { models: data.models, optimizers: data.optimizers, rngs: data.rngs, arrays: trainerArrays, json: trainerJson };
  try {
    await trainer.restoreState(trainerState);
  } catch (error) {
    throw new Error(`${file}: cannot restore the trainer: ${(error as Error).message}`);
  }
  const log = data.arrays[ACTION_LOG];
  let actionLog: Float32Array | undefined;
  if (log) {
    const values = deserializeArray(log);
    if (!(values instanceof Float32Array)) throw new Error(`${file}: field 'arrays.${ACTION_LOG}' must be a Float32Array`);
    actionLog = values;
  } else if (state.segmentSteps !== 0) {
    throw new Error(`${file}: checkpoint is inside a segment (${state.segmentSteps} steps) but has no action log`);
  }
  return { state, actionLog };
}
