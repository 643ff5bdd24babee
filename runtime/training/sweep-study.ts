import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { writeFileAtomicSync } from '../core/atomic-file';
import { MetricsLog, type MetricsRecord } from '../core/metrics-log';
import { type IntervalEstimate, aggregateIqm, aggregateMean, scoreColumn, stratifiedBootstrapCI } from '../core/statistics';
import { RunConfigError, loadYamlConfigFile, parseRunConfig } from './config-loader';
import { type PlannedRun, type StudyPlan, runStatus } from './transfer-study';

/*
 * A hyperparameter sweep (`troupe sweep <study.yaml>`): one base run config, a grid of `--set`
 * overrides (every combination is a condition) and a number of seeds. Each run is an ordinary
 * `troupe train` run directory, `<out>/runs/<condition>/seed<k>`; the report ranks the
 * conditions by their final evaluation over seeds, with bootstrap intervals.
 */

/** A `--set` value: a YAML scalar or flow collection. */
const overrideValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.unknown()), z.record(z.string(), z.unknown())]);
const keyPath = z.string().regex(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/, 'a config key path such as algo.lr');

export const sweepStudySchema = z
  .object({
    /** Names the study (its default output folder and queue id); default: the file's name. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits and _ . - only').optional(),
    /** The run config every run starts from, relative to the study file. */
    base: z.string().min(1).optional(),
    /** …or the run config inline. */
    config: z.record(z.string(), z.unknown()).optional(),
    /** Overrides every run shares (`--set key=value`), e.g. a smaller budget. */
    set: z.record(keyPath, overrideValue).default({}),
    /** `--set` key → the values to try; every combination is a condition. */
    grid: z.record(keyPath, z.array(overrideValue).min(1, 'give at least one value')).refine((g) => Object.keys(g).length > 0, { message: 'give at least one key to vary' }),
    /** A count (seeds 0 … n−1) or the seeds themselves. */
    seeds: z.union([z.number().int().gt(0).lte(1000), z.array(z.number().int().gte(0).lte(Number.MAX_SAFE_INTEGER)).min(1)]),
    report: z
      .object({
        /** The final evaluation's number the conditions are ranked by. */
        metric: z.enum(['return_mean', 'win_rate']).default('return_mean'),
        bootstrap_reps: z.number().int().gt(0).lte(1_000_000).default(2000),
        bootstrap_seed: z.number().int().gte(0).default(0),
      })
      .strict()
      .default({}),
  })
  .strict()
  .refine((s) => (s.base === undefined) !== (s.config === undefined), { message: "give the run config as 'base' (a file) or 'config' (inline), one of the two" });

export type SweepStudyConfig = z.output<typeof sweepStudySchema>;

/** One combination of the grid's values. */
export interface SweepCondition {
  name: string;
  overrides: Record<string, unknown>;
}

export interface SweepPlan extends StudyPlan {
  kind: 'sweep';
  name: string;
  study: SweepStudyConfig;
  conditions: SweepCondition[];
}

/** Reads and validates a sweep file; errors name the file and the key. */
export function loadSweepStudy(file: string): SweepStudyConfig {
  return loadYamlConfigFile(file, sweepStudySchema, 'sweep study');
}

/** The study's name: its `name`, else the file's name without `.yaml`. */
export function sweepName(study: SweepStudyConfig, file: string): string {
  return study.name ?? path.basename(file).replace(/\.ya?ml$/i, '');
}

function overrideText(key: string, value: unknown): string {
  // JSON is YAML, so strings with spaces, lists and mappings arrive as they were written.
  return `${key}=${JSON.stringify(value)}`;
}

/** Every combination of the grid, in the file's key order (the last key varies fastest). */
function gridCombinations(grid: Record<string, unknown[]>): Array<Record<string, unknown>> {
  let combos: Array<Record<string, unknown>> = [{}];
  for (const [key, values] of Object.entries(grid)) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  return combos;
}

/** `lr=0.001_hidden_dim=64`: the last part of each key (the whole key where two end alike), folder-safe. */
export function conditionName(overrides: Record<string, unknown>): string {
  const keys = Object.keys(overrides);
  const last = (k: string) => k.split('.').pop()!;
  const short = keys.map(last);
  const parts = keys.map((k, i) => {
    const label = short.indexOf(short[i]) !== short.lastIndexOf(short[i]) ? k : short[i];
    const value = overrides[k];
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return `${label}=${text}`;
  });
  return parts.join('_').replace(/[^A-Za-z0-9._=-]+/g, '-');
}

/**
 * Every run of the sweep with its resolved config (defaults filled), validated as `troupe train`
 * would, so a bad grid value is refused before anything runs, naming the run.
 */
export function planSweepStudy(study: SweepStudyConfig, file: string, outDir: string): SweepPlan {
  const studyDir = path.dirname(path.resolve(file));
  let baseText: string;
  let baseSource: string;
  let baseDir: string;
  if (study.base !== undefined) {
    const baseFile = path.resolve(studyDir, study.base);
    try {
      baseText = fs.readFileSync(baseFile, 'utf8');
    } catch {
      throw new RunConfigError(`${file}: base: cannot read the run config ${baseFile} (relative paths are taken from the study file's folder)`);
    }
    baseSource = baseFile;
    baseDir = path.dirname(baseFile);
  } else {
    baseText = YAML.stringify(study.config);
    baseSource = `${file} (config)`;
    baseDir = studyDir;
  }
  const seeds = typeof study.seeds === 'number' ? Array.from({ length: study.seeds }, (_, i) => i) : study.seeds;
  const dupSeed = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (dupSeed !== undefined) throw new RunConfigError(`${file}: seeds: seed ${dupSeed} is listed twice`);
  const conditions = gridCombinations(study.grid).map((overrides) => ({ name: conditionName(overrides), overrides }));
  const dupName = conditions.find((c, i) => conditions.findIndex((o) => o.name === c.name) !== i);
  if (dupName) throw new RunConfigError(`${file}: grid: two combinations are both named '${dupName.name}'; give distinct values`);
  const abs = path.resolve(outDir);
  const runs: PlannedRun[] = [];
  for (const condition of conditions) {
    for (const seed of seeds) {
      const key = `${condition.name}/seed${seed}`;
      const overrides = [...Object.entries(study.set), ...Object.entries(condition.overrides), ['run.seed', seed] as const].map(([k, v]) => overrideText(k, v));
      let config: Record<string, unknown>;
      try {
        config = parseRunConfig(baseText, `${baseSource} (sweep ${file}, run ${key})`, overrides, baseDir) as unknown as Record<string, unknown>;
      } catch (error) {
        throw error instanceof RunConfigError ? error : new RunConfigError(`${file}: run ${key}: ${(error as Error).message}`);
      }
      runs.push({ key, phase: 'sweep', dir: path.join(abs, 'runs', condition.name, `seed${seed}`), config, dependsOn: [], seed, sweep: { condition: condition.name, overrides: condition.overrides } });
    }
  }
  return { kind: 'sweep', name: sweepName(study, file), study, file, outDir: abs, runs, conditions };
}

// ---------------------------------------------------------------------------------------------
// The report

/** What the report needs of one finished run: its evaluation rows (from the run directory or a job's result). */
export interface SweepRunData {
  evalRows: MetricsRecord[];
}

/** The evaluation rows of a finished run on disk; null when the run has not finished. */
export function sweepRunDataFromDisk(run: PlannedRun): SweepRunData | null {
  if (runStatus(run) !== 'finished') return null;
  return { evalRows: MetricsLog.read(path.join(run.dir, 'metrics.jsonl')).filter((r) => r.kind === 'eval') };
}

export interface SweepConditionResult extends IntervalEstimate {
  name: string;
  overrides: Record<string, unknown>;
  /** 1 = best. */
  rank: number;
  seeds: Array<{ seed: number; run: string; value: number; env_steps: number | null }>;
}

export interface SweepReport {
  study: string;
  metric: SweepStudyConfig['report']['metric'];
  /** IQM over seeds from 4 seeds on; with fewer, the mean (an IQM of 2–3 values drops nothing or is one value). */
  aggregate: 'iqm' | 'mean';
  bootstrap: { reps: number; seed: number };
  conditions: SweepConditionResult[];
  best: string | null;
  /** Runs not finished, or without the metric in their last evaluation. */
  missing: string[];
}

/** Ranks the conditions by the final evaluation (last eval row, the study's metric) over seeds. */
export function buildSweepReport(plan: Pick<SweepPlan, 'name' | 'study' | 'runs' | 'conditions'>, data: (run: PlannedRun) => SweepRunData | null): SweepReport {
  const { metric, bootstrap_reps: reps, bootstrap_seed: seed } = plan.study.report;
  const missing: string[] = [];
  const perCondition = new Map<string, SweepConditionResult['seeds']>(plan.conditions.map((c) => [c.name, []]));
  for (const run of plan.runs) {
    const rows = data(run)?.evalRows;
    const last = rows && rows.length > 0 ? rows[rows.length - 1] : undefined;
    const value = last?.[metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      missing.push(run.key);
      continue;
    }
    perCondition.get(run.sweep!.condition)!.push({ seed: run.seed, run: run.key, value, env_steps: typeof last!.env_steps === 'number' ? last!.env_steps : null });
  }
  const fewest = Math.min(...[...perCondition.values()].map((s) => s.length).filter((n) => n > 0));
  const aggregate = fewest >= 4 ? 'iqm' : 'mean';
  const results: SweepConditionResult[] = [];
  for (const condition of plan.conditions) {
    const seeds = perCondition.get(condition.name)!;
    if (seeds.length === 0) continue;
    const ci = stratifiedBootstrapCI(scoreColumn(seeds.map((s) => s.value)), aggregate === 'iqm' ? aggregateIqm : aggregateMean, { reps, seed: `${seed}/${condition.name}` });
    results.push({ name: condition.name, overrides: condition.overrides, rank: 0, ...ci, seeds });
  }
  // Ties keep the grid's order, so the ranking is the same on every machine.
  const ranked = [...results].sort((a, b) => b.estimate - a.estimate);
  ranked.forEach((r, i) => (r.rank = i + 1));
  return { study: plan.name, metric, aggregate, bootstrap: { reps, seed }, conditions: ranked, best: ranked[0]?.name ?? null, missing };
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(3) : String(x);
}

export function sweepReportMarkdown(report: SweepReport): string {
  const lines = [`# Sweep report: ${report.study}`, ''];
  lines.push(
    `Ranked by the final evaluation ${report.metric} (each run's last evaluation), ${report.aggregate === 'iqm' ? 'IQM' : 'mean'} over seeds with a 95% stratified-bootstrap interval (${report.bootstrap.reps} repetitions, seed ${report.bootstrap.seed}).`,
    '',
  );
  if (report.best) lines.push(`**Best: ${report.best}**${report.conditions.length > 1 && report.conditions[1].estimate >= report.conditions[0].lower ? ' (its interval overlaps the next one: not a clear winner)' : ''}`, '');
  if (report.missing.length > 0) lines.push(`**Missing runs** (not finished): ${report.missing.join(', ')}`, '');
  lines.push(`| rank | condition | seeds | ${report.aggregate === 'iqm' ? 'IQM' : 'mean'} [95% CI] | per seed |`, '|---|---|---|---|---|');
  for (const c of report.conditions) {
    lines.push(`| ${c.rank} | ${c.name} | ${c.seeds.length} | ${fmt(c.estimate)} [${fmt(c.lower)}, ${fmt(c.upper)}] | ${c.seeds.map((s) => fmt(s.value)).join(', ')} |`);
  }
  lines.push('');
  return lines.join('\n');
}

/** The report's files by name (report.md, results.json), as written to disk or returned by a queue job. */
export function sweepReportFiles(report: SweepReport): Record<string, string> {
  return { 'report.md': sweepReportMarkdown(report), 'results.json': `${JSON.stringify(report, null, 2)}\n` };
}

export function writeSweepReport(report: SweepReport, dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return Object.entries(sweepReportFiles(report)).map(([name, text]) => {
    const file = path.join(dir, name);
    writeFileAtomicSync(file, text);
    return file;
  });
}
