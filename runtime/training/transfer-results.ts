import fs from 'node:fs';
import path from 'node:path';
import { MetricsLog, type MetricsRecord } from '../core/metrics-log';
import { evaluateCheckpoint } from './evaluate-policies';
import { JOINT, type PlannedRun, type TransferCondition, type TransferPlan, type TransferStudyConfig, runStatus } from './transfer-study';

/*
 * What a finished transfer study measured, gathered from its run directories: each target run's
 * evaluation curve (the report's metric over env steps) and the best policy's score re-evaluated
 * with more episodes. The statistics and plots are made from these numbers alone.
 */

export interface CurvePoint {
  step: number;
  value: number;
}

export interface SeedResult {
  seed: number;
  run: string;
  dir: string;
  /** The evaluation rows of the run, in the study's metric; null values (no win rate reported) are left out. */
  curve: CurvePoint[];
  /** The best checkpoint re-evaluated with `absolute_episodes_factor` × the run's eval episodes; null without one. */
  absolute: { value: number; episodes: number; envSteps: number } | null;
}

export interface TransferResults {
  metric: 'win_rate' | 'return_mean';
  /** Target → condition → one result per seed, in seed order (DecLs pretrained on all sources). */
  targets: Record<string, Partial<Record<TransferCondition, SeedResult[]>>>;
  /** With `matrix`: source → target → condition → seeds, for DecLs pretrained on that source alone. */
  matrix: Record<string, Record<string, Partial<Record<TransferCondition, SeedResult[]>>>>;
  /** Single-task baselines: algo → task → seeds (sources at the per-task budget of the multi-task runs). */
  baselines: Record<string, Record<string, SeedResult[]>>;
  /** The multi-task pretraining runs (all sources): each source's evaluation curve per seed. */
  multiTask: Record<string, SeedResult[]>;
  /** Target runs not finished (or never started): the report says they are missing. */
  missing: string[];
}

/**
 * Where a finished run's numbers come from: its run directory (`runDataFromDisk`), or the result
 * a queue worker returned for it (`run-queue.ts`), so the report needs no shared filesystem.
 */
export interface TransferRunSource {
  /** The run's metrics records (evaluation rows at least) when it finished; null otherwise. */
  rows(run: PlannedRun): MetricsRecord[] | null;
  /** The best checkpoint re-evaluated (`evaluateBest`); null without one. */
  absolute(run: PlannedRun): Promise<SeedResult['absolute']>;
}

/** The run directories of the plan, re-evaluating best checkpoints here unless `absolute: false`. */
export function runDataFromDisk(plan: TransferPlan, options: { absolute?: boolean; log?: (line: string) => void } = {}): TransferRunSource {
  return {
    rows: (run) => (runStatus(run) === 'finished' ? MetricsLog.read(path.join(run.dir, 'metrics.jsonl')) : null),
    absolute: async (run) => (options.absolute === false ? null : evaluateBest(run, plan.study.report, options.log)),
  };
}

/** Reads every finished target run of the plan; `absolute: false` skips the re-evaluation (e.g. for a quick look). */
export async function collectTransferResults(
  plan: Pick<TransferPlan, 'study' | 'runs'>,
  options: { absolute?: boolean; log?: (line: string) => void; source?: TransferRunSource } = {},
): Promise<TransferResults> {
  const metric = plan.study.report.metric;
  const source = options.source ?? runDataFromDisk(plan as TransferPlan, options);
  const results: TransferResults = { metric, targets: {}, matrix: {}, baselines: {}, multiTask: {}, missing: [] };
  for (const run of plan.runs) {
    if (run.phase === 'pretrain' && run.pretraining === JOINT) {
      const rows = source.rows(run);
      if (!rows) continue;
      for (const task of new Set(rows.map((r) => r.task).filter((t): t is string => typeof t === 'string'))) {
        const curve = curveOfRows(rows.filter((r) => r.task === task), metric);
        (results.multiTask[task] ??= []).push({ seed: run.seed, run: run.key, dir: run.dir, curve, absolute: null });
      }
      continue;
    }
    if (run.phase === 'baseline' && run.baseline) {
      const rows = source.rows(run);
      if (!rows) {
        results.missing.push(run.key);
        continue;
      }
      const absolute = await source.absolute(run);
      ((results.baselines[run.baseline.algo] ??= {})[run.baseline.task] ??= []).push({ seed: run.seed, run: run.key, dir: run.dir, curve: curveOfRows(rows, metric), absolute });
      continue;
    }
    if (run.phase !== 'target' || !run.target || !run.condition) continue;
    const rows = source.rows(run);
    if (!rows) {
      results.missing.push(run.key);
      continue;
    }
    const curve = curveOfRows(rows, metric);
    const absolute = await source.absolute(run);
    const single = run.pretraining !== undefined && run.pretraining !== JOINT;
    const byCondition = single ? ((results.matrix[run.pretraining!] ??= {})[run.target] ??= {}) : (results.targets[run.target] ??= {});
    (byCondition[run.condition] ??= []).push({ seed: run.seed, run: run.key, dir: run.dir, curve, absolute });
  }
  return results;
}

/** The run's evaluation rows as (env steps, metric) points. */
export function evaluationCurve(run: Pick<PlannedRun, 'dir' | 'key'>, metric: 'win_rate' | 'return_mean'): CurvePoint[] {
  return curveOfRows(MetricsLog.read(path.join(run.dir, 'metrics.jsonl')), metric);
}

function curveOfRows(rows: ReturnType<typeof MetricsLog.read>, metric: 'win_rate' | 'return_mean'): CurvePoint[] {
  const points: CurvePoint[] = [];
  for (const row of rows) {
    if (row.kind !== 'eval') continue;
    const value = row[metric];
    const step = row.env_steps;
    if (typeof value === 'number' && Number.isFinite(value) && typeof step === 'number') points.push({ step, value });
  }
  return points;
}

/**
 * The run's best checkpoint re-evaluated with `absolute_episodes_factor` × its eval episodes, on
 * episodes it never saw; null without a best checkpoint. A queue worker calls it beside the run.
 */
export async function evaluateBest(
  run: Pick<PlannedRun, 'dir' | 'seed' | 'config'>,
  report: Pick<TransferStudyConfig['report'], 'metric' | 'absolute_episodes_factor'>,
  log?: (line: string) => void,
): Promise<SeedResult['absolute']> {
  const best = path.join(run.dir, 'checkpoints', 'best.ckpt');
  if (!fs.existsSync(best)) return null;
  const runSection = run.config.run as { eval_episodes?: number; num_envs?: number } | undefined;
  const episodes = (runSection?.eval_episodes ?? 20) * report.absolute_episodes_factor;
  const summary = await evaluateCheckpoint(best, {
    episodes,
    // Other episodes than any the run evaluated on during training.
    seed: `absolute/${run.seed}`,
    numEnvs: Math.min(episodes, runSection?.num_envs ?? 8),
    workers: 0,
    log: log ?? (() => undefined),
  });
  const value = report.metric === 'win_rate' ? summary.successRate : summary.meanReturn;
  return value === null ? null : { value, episodes: summary.episodes, envSteps: summary.trainedEnvSteps ?? 0 };
}
