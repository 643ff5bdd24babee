import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from '../core/atomic-file';
import { type LearningCurvesData, type PerformanceProfileData, type TransferMatrixData, learningCurvesSpec, performanceProfileSpec, transferMatrixSpec, writePlot } from '../core/report-plots';
import {
  type IntervalEstimate,
  type LearningCurve,
  aggregateIqm,
  areaUnderCurve,
  bestValue,
  finalValue,
  jumpstart,
  minMaxBounds,
  minMaxNormalise,
  performanceProfile,
  probabilityOfImprovementCI,
  sampleEfficiencyCurve,
  scoreColumn,
  stratifiedBootstrapCI,
  timeToThreshold,
} from '../core/statistics';
import type { SeedResult, TransferResults } from './transfer-results';
import type { TransferCondition, TransferStudyConfig } from './transfer-study';

/*
 * The transfer report: per target and condition, the per-seed transfer numbers (jumpstart, area
 * under the curve, time to threshold, final, best, absolute), each summarised by its IQM with a
 * 95% stratified-bootstrap interval over seeds, and the probability that each transfer condition
 * beats scratch, with its interval (rliable's definitions, `runtime/core/statistics.ts`). Across
 * targets, scores are min–max normalised per target before they are pooled. Bootstrap seeds and
 * repetitions are fixed by the study, so the same runs give the same report, bit for bit.
 */

/** The per-seed numbers the report summarises; for `time_to_threshold` lower is better. */
export const TRANSFER_MEASURES = ['jumpstart', 'auc', 'time_to_threshold', 'final', 'best', 'absolute'] as const;
export type TransferMeasure = (typeof TRANSFER_MEASURES)[number];

export interface MeasureSummary extends IntervalEstimate {
  /** The per-seed values, in seed order. */
  values: number[];
}

export interface ConditionSummary {
  seeds: number;
  measures: Partial<Record<TransferMeasure, MeasureSummary>>;
  /** Seeds that never reached the threshold (their time is the budget: an optimistic stand-in). */
  censored: number;
  /** P(this condition beats scratch) per measure, with its interval; absent for scratch itself. */
  improvement?: Partial<Record<TransferMeasure, IntervalEstimate>>;
  /** IQM curve over seeds with its band, at the evaluation steps. */
  curve: Array<IntervalEstimate & { step: number }>;
}

export interface TransferReport {
  metric: TransferResults['metric'];
  threshold: number;
  budget: number;
  bootstrap: { reps: number; seed: number };
  targets: Record<string, Partial<Record<TransferCondition, ConditionSummary>>>;
  /** Across targets: normalised absolute (or final) scores, pooled. */
  overall: {
    measure: 'absolute' | 'final';
    conditions: Partial<Record<TransferCondition, { iqm: IntervalEstimate; improvement?: IntervalEstimate }>>;
  } | null;
  /** Source → target: P(finetune / frozen DecL from that source alone beats scratch) on the AUC. */
  matrix: Record<string, Record<string, Partial<Record<'frozen' | 'finetune', IntervalEstimate>>>>;
  /**
   * Per task: the multi-task model's final evaluation (sources, from the pretraining runs) beside
   * single-task baselines trained at the same per-task budget, and P(multi-task better).
   */
  baselines: Record<string, { multiTask?: IntervalEstimate & { values: number[] }; algos: Record<string, IntervalEstimate & { values: number[]; multiTaskBetter?: IntervalEstimate }> }>;
  /** One plain sentence per target: does transfer reach the threshold sooner and end as high, and does the control not? */
  verdicts: Record<string, string>;
  missing: string[];
}

const LOWER_IS_BETTER: ReadonlySet<TransferMeasure> = new Set(['time_to_threshold']);

/** The per-seed values of every measure for one condition's seeds. */
function perSeedMeasures(seeds: SeedResult[], threshold: number, budget: number): { values: Partial<Record<TransferMeasure, number[]>>; censored: number } {
  const curves = seeds.map((s) => s.curve);
  let censored = 0;
  const values: Partial<Record<TransferMeasure, number[]>> = {
    jumpstart: curves.map((c) => jumpstart(c)),
    auc: curves.map((c) => areaUnderCurve(c)),
    time_to_threshold: curves.map((c) => {
      const t = timeToThreshold(c, threshold, budget);
      if (t.censored) censored++;
      return t.step;
    }),
    final: curves.map((c) => finalValue(c)),
    best: curves.map((c) => bestValue(c)),
  };
  if (seeds.every((s) => s.absolute !== null)) values.absolute = seeds.map((s) => s.absolute!.value);
  return { values, censored };
}

/** P(X better than Y) with lower-is-better measures flipped. */
function improvement(measure: TransferMeasure, x: number[], y: number[], bootstrap: { reps: number; seed: string }): IntervalEstimate {
  const sign = LOWER_IS_BETTER.has(measure) ? -1 : 1;
  return probabilityOfImprovementCI(scoreColumn(x.map((v) => sign * v)), scoreColumn(y.map((v) => sign * v)), bootstrap);
}

export function buildTransferReport(results: TransferResults, study: TransferStudyConfig): TransferReport {
  const { threshold, bootstrap_reps: reps, bootstrap_seed: seed } = study.report;
  const budget = study.target.total_env_steps;
  const boot = (what: string) => ({ reps, seed: `${seed}/${what}` });
  const report: TransferReport = { metric: results.metric, threshold, budget, bootstrap: { reps, seed }, targets: {}, overall: null, matrix: {}, baselines: {}, verdicts: {}, missing: results.missing };

  for (const [target, conditions] of Object.entries(results.targets)) {
    const summaries: Partial<Record<TransferCondition, ConditionSummary>> = {};
    const scratch = conditions.scratch ? perSeedMeasures(conditions.scratch, threshold, budget).values : undefined;
    for (const [condition, seeds] of Object.entries(conditions) as Array<[TransferCondition, SeedResult[]]>) {
      if (seeds.length === 0 || seeds.some((s) => s.curve.length === 0)) continue;
      const { values, censored } = perSeedMeasures(seeds, threshold, budget);
      const measures: ConditionSummary['measures'] = {};
      for (const [measure, v] of Object.entries(values) as Array<[TransferMeasure, number[]]>) {
        measures[measure] = { ...stratifiedBootstrapCI(scoreColumn(v), aggregateIqm, boot(`${target}/${condition}/${measure}`)), values: v };
      }
      const summary: ConditionSummary = { seeds: seeds.length, measures, censored, curve: curveOf(seeds.map((s) => s.curve), boot(`${target}/${condition}/curve`)) };
      if (condition !== 'scratch' && scratch) {
        summary.improvement = {};
        for (const [measure, v] of Object.entries(values) as Array<[TransferMeasure, number[]]>) {
          const base = scratch[measure];
          if (base) summary.improvement[measure] = improvement(measure, v, base, boot(`${target}/${condition}/poi/${measure}`));
        }
      }
      summaries[condition] = summary;
    }
    report.targets[target] = summaries;
    report.verdicts[target] = verdict(target, summaries, threshold, results.metric);
  }
  report.overall = overall(results, boot);
  for (const [source, targets] of Object.entries(results.matrix)) {
    for (const [target, conditions] of Object.entries(targets)) {
      const scratch = results.targets[target]?.scratch;
      if (!scratch) continue;
      const base = scratch.map((s) => areaUnderCurve(s.curve));
      for (const condition of ['frozen', 'finetune'] as const) {
        const seeds = conditions[condition];
        if (!seeds || seeds.length === 0) continue;
        ((report.matrix[source] ??= {})[target] ??= {})[condition] = improvement('auc', seeds.map((s) => areaUnderCurve(s.curve)), base, boot(`matrix/${source}/${target}/${condition}`));
      }
    }
  }
  const finals = (list: SeedResult[]) => list.filter((r) => r.curve.length > 0).map((r) => finalValue(r.curve));
  const tasks = new Set([...Object.keys(results.multiTask), ...Object.values(results.baselines).flatMap((b) => Object.keys(b))]);
  for (const task of tasks) {
    const entry: TransferReport['baselines'][string] = { algos: {} };
    const mt = finals(results.multiTask[task] ?? []);
    if (mt.length > 0) entry.multiTask = { ...stratifiedBootstrapCI(scoreColumn(mt), aggregateIqm, boot(`baselines/${task}/multi-task`)), values: mt };
    for (const [algo, byTask] of Object.entries(results.baselines)) {
      const v = finals(byTask[task] ?? []);
      if (v.length === 0) continue;
      entry.algos[algo] = { ...stratifiedBootstrapCI(scoreColumn(v), aggregateIqm, boot(`baselines/${task}/${algo}`)), values: v };
      if (mt.length > 0) entry.algos[algo].multiTaskBetter = probabilityOfImprovementCI(scoreColumn(mt), scoreColumn(v), boot(`baselines/${task}/${algo}/poi`));
    }
    report.baselines[task] = entry;
  }
  return report;
}

/** IQM learning curve over seeds; seeds whose evaluation steps differ are cut to the steps they share. */
function curveOf(curves: LearningCurve[], bootstrap: { reps: number; seed: string }): Array<IntervalEstimate & { step: number }> {
  const shared = curves.map((c) => new Set(c.map((p) => p.step))).reduce((a, b) => new Set([...a].filter((s) => b.has(s))));
  const aligned = curves.map((c) => c.filter((p) => shared.has(p.step)));
  if (aligned[0].length === 0) return [];
  return sampleEfficiencyCurve(aligned, bootstrap);
}

/**
 * Each condition's scores as runs × targets, min–max normalised per target over all its conditions
 * and seeds: the absolute score when every run has one, else the final evaluation. A condition
 * whose seed count differs between targets cannot be pooled and is left out.
 */
function pooledScores(results: TransferResults): { measure: 'absolute' | 'final'; matrices: Partial<Record<TransferCondition, number[][]>> } | null {
  const targets = Object.keys(results.targets);
  const runsOf = (t: string) => (Object.values(results.targets[t]).flat() as SeedResult[]).filter((s) => s.curve.length > 0);
  const all = targets.flatMap(runsOf);
  if (all.length === 0) return null;
  const measure: 'absolute' | 'final' = all.every((s) => s.absolute !== null) ? 'absolute' : 'final';
  const score = (s: SeedResult) => (measure === 'absolute' ? s.absolute!.value : finalValue(s.curve));
  const conditions = [...new Set(targets.flatMap((t) => Object.keys(results.targets[t])))] as TransferCondition[];
  const matrices: Partial<Record<TransferCondition, number[][]>> = {};
  for (const condition of conditions) {
    const columns = targets.map((t) => minMaxNormalise((results.targets[t][condition] ?? []).filter((s) => s.curve.length > 0).map(score), minMaxBounds(runsOf(t).map(score))));
    const runs = columns[0].length;
    if (runs === 0 || columns.some((c) => c.length !== runs)) continue;
    matrices[condition] = Array.from({ length: runs }, (_, r) => columns.map((c) => c[r]));
  }
  return { measure, matrices };
}

/** Pooled over targets (`pooledScores`): the IQM of each condition and P(better than scratch). */
function overall(results: TransferResults, boot: (what: string) => { reps: number; seed: string }): TransferReport['overall'] {
  const pooled = pooledScores(results);
  if (!pooled) return null;
  const { measure, matrices } = pooled;
  const out: NonNullable<TransferReport['overall']>['conditions'] = {};
  for (const [condition, m] of Object.entries(matrices) as Array<[TransferCondition, number[][]]>) {
    out[condition] = { iqm: stratifiedBootstrapCI(m, aggregateIqm, boot(`overall/${condition}`)) };
    if (condition !== 'scratch' && matrices.scratch) out[condition]!.improvement = probabilityOfImprovementCI(m, matrices.scratch, boot(`overall/poi/${condition}`));
  }
  return { measure, conditions: out };
}

/** A number as the reports print it: `digits` decimals, or its name when not finite. */
export function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** `estimate [lower, upper]` as the reports print intervals. */
export function interval(e: IntervalEstimate, digits = 3): string {
  return `${fmt(e.estimate, digits)} [${fmt(e.lower, digits)}, ${fmt(e.upper, digits)}]`;
}

/**
 * The plain sentence of issue 12: does the transferred DecL reach the threshold in fewer env
 * steps than scratch and end at least as high, and does the random-frozen control not? Claims
 * are made only where the interval of the probability of improvement excludes ½.
 */
function verdict(target: string, s: Partial<Record<TransferCondition, ConditionSummary>>, threshold: number, metric: string): string {
  if (!s.scratch) return `${target}: no scratch runs, so no comparison.`;
  const parts: string[] = [];
  const scratchTime = s.scratch.measures.time_to_threshold!;
  const scratchEnd = s.scratch.measures.absolute ?? s.scratch.measures.final!;
  for (const condition of ['frozen', 'finetune', 'random_frozen'] as const) {
    const c = s[condition];
    if (!c || !c.improvement) continue;
    const time = c.measures.time_to_threshold!;
    const end = c.measures.absolute ?? c.measures.final!;
    const poiTime = c.improvement.time_to_threshold!;
    const poiEnd = c.improvement.absolute ?? c.improvement.final!;
    const sooner = poiTime.lower > 0.5 ? 'sooner' : poiTime.upper < 0.5 ? 'later' : 'not measurably sooner or later';
    const higher = poiEnd.lower > 0.5 ? 'higher' : poiEnd.upper < 0.5 ? 'lower' : 'about as high';
    parts.push(
      `${condition} reaches ${metric} ${threshold} ${sooner} than scratch (IQM ${fmt(time.estimate, 0)} vs ${fmt(scratchTime.estimate, 0)} env steps, P(better) ${interval(poiTime, 2)}, ${c.censored}/${c.seeds} seeds never reached it) and ends ${higher} (IQM ${fmt(end.estimate)} vs ${fmt(scratchEnd.estimate)}, P(better) ${interval(poiEnd, 2)})`,
    );
  }
  return parts.length ? `${target}: ${parts.join('; ')}.` : `${target}: only scratch runs.`;
}

const MEASURE_LABELS: Record<TransferMeasure, string> = {
  jumpstart: 'jumpstart',
  auc: 'AUC (mean level)',
  time_to_threshold: 'time to threshold (env steps)',
  final: 'final',
  best: 'best',
  absolute: 'absolute (best ckpt, 10× episodes)',
};

/** report.md: the verdicts, then one table per target (IQM [95% CI] per measure, P(better than scratch)). */
export function transferReportMarkdown(report: TransferReport, title: string): string {
  const lines = [`# Transfer report: ${title}`, ''];
  lines.push(
    `Metric: evaluation ${report.metric}; threshold ${report.threshold}; target budget ${report.budget} env steps. Every number is the IQM over seeds with a 95% stratified-bootstrap interval (${report.bootstrap.reps} repetitions, seed ${report.bootstrap.seed}); P(better) is the probability that a run of the condition beats a scratch run (Mann–Whitney U / nm), with its interval. Times of seeds that never reached the threshold count as the budget.`,
    '',
  );
  if (report.missing.length > 0) lines.push(`**Missing runs** (not finished): ${report.missing.join(', ')}`, '');
  lines.push('## Verdicts', '', ...Object.values(report.verdicts).map((v) => `- ${v}`), '');
  for (const [target, conditions] of Object.entries(report.targets)) {
    lines.push(`## ${target}`, '');
    const measures = TRANSFER_MEASURES.filter((m) => Object.values(conditions).some((c) => c?.measures[m]));
    lines.push(`| condition | seeds | ${measures.map((m) => MEASURE_LABELS[m]).join(' | ')} |`, `|---|---|${measures.map(() => '---').join('|')}|`);
    for (const [condition, c] of Object.entries(conditions)) {
      if (!c) continue;
      const cell = (m: TransferMeasure) => {
        const v = c.measures[m];
        if (!v) return '—';
        const poi = c.improvement?.[m];
        return `${interval(v, m === 'time_to_threshold' ? 0 : 3)}${poi ? `<br>P(better) ${interval(poi, 2)}` : ''}`;
      };
      lines.push(`| ${condition} | ${c.seeds}${c.censored ? ` (${c.censored} never reached)` : ''} | ${measures.map(cell).join(' | ')} |`);
    }
    lines.push('');
  }
  if (report.overall) {
    lines.push(`## All targets (min–max normalised ${report.overall.measure} score per target)`, '', '| condition | IQM | P(better than scratch) |', '|---|---|---|');
    for (const [condition, o] of Object.entries(report.overall.conditions)) lines.push(`| ${condition} | ${interval(o!.iqm)} | ${o!.improvement ? interval(o!.improvement, 2) : '—'} |`);
    lines.push('');
  }
  if (Object.keys(report.matrix).length > 0) {
    lines.push('## Source → target (P(AUC better than scratch), DecL pretrained on one source)', '');
    const targets = [...new Set(Object.values(report.matrix).flatMap((t) => Object.keys(t)))];
    lines.push(`| source | ${targets.map((t) => `${t} frozen | ${t} finetune`).join(' | ')} |`, `|---|${targets.map(() => '---|---').join('|')}|`);
    for (const [source, row] of Object.entries(report.matrix)) {
      lines.push(`| ${source} | ${targets.map((t) => `${row[t]?.frozen ? interval(row[t].frozen!, 2) : '—'} | ${row[t]?.finetune ? interval(row[t].finetune!, 2) : '—'}`).join(' | ')} |`);
    }
    lines.push('');
  }
  if (Object.keys(report.baselines).length > 0) {
    const algos = [...new Set(Object.values(report.baselines).flatMap((b) => Object.keys(b.algos)))];
    lines.push(algos.length > 0 ? `## Multi-task model vs single-task baselines (final evaluation ${report.metric}, same per-task budget)` : `## Multi-task model on its sources (final evaluation ${report.metric}; no single-task baselines in this study)`, '');
    lines.push(`| task | multi-task |${algos.map((a) => ` ${a} (P(multi-task better)) |`).join('')}`, `|---|---|${algos.map(() => '---|').join('')}`);
    for (const [task, b] of Object.entries(report.baselines)) {
      lines.push(`| ${task} | ${b.multiTask ? interval(b.multiTask) : '—'} |${algos.map((a) => ` ${b.algos[a] ? `${interval(b.algos[a])}${b.algos[a].multiTaskBetter ? ` (${interval(b.algos[a].multiTaskBetter!, 2)})` : ''}` : '—'} |`).join('')}`);
    }
    lines.push('');
  }
  lines.push('Plots: `curves.svg` (IQM learning curves with 95% bands), `profile.svg` (performance profile of normalised scores)' + (Object.keys(report.matrix).length ? ', `matrix.svg` (source → target)' : '') + '; PNG copies beside them.', '');
  return lines.join('\n');
}

/** Writes report.json, report.md and the plots (SVG and PNG) into `dir`; returns the files written. */
export async function writeTransferReport(report: TransferReport, results: TransferResults, study: TransferStudyConfig, dir: string, title: string): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const json = path.join(dir, 'report.json');
  writeFileAtomicSync(json, `${JSON.stringify(report, null, 2)}\n`);
  const md = path.join(dir, 'report.md');
  writeFileAtomicSync(md, transferReportMarkdown(report, title));
  files.push(json, md);
  const conditions = [...new Set(Object.values(report.targets).flatMap((c) => Object.keys(c)))];

  const curves: LearningCurvesData = {
    valueLabel: `evaluation ${report.metric} (IQM over seeds)`,
    stepLabel: 'env steps',
    threshold: report.threshold,
    targets: Object.entries(report.targets).map(([task, c]) => ({
      task,
      curves: Object.entries(c)
        .filter(([, s]) => s && s.curve.length > 0)
        .map(([condition, s]) => ({ condition, steps: s!.curve.map((p) => p.step), estimate: s!.curve.map((p) => p.estimate), lower: s!.curve.map((p) => p.lower), upper: s!.curve.map((p) => p.upper) })),
    })).filter((t) => t.curves.length > 0),
  };
  if (curves.targets.length > 0) files.push(...Object.values(await writePlot(path.join(dir, 'curves.svg'), learningCurvesSpec(curves, { title, conditions }))));

  const profile = profileData(results, study, conditions);
  if (profile) files.push(...Object.values(await writePlot(path.join(dir, 'profile.svg'), performanceProfileSpec(profile, { title: `${title}: performance profile`, conditions }))));

  const sources = Object.keys(report.matrix);
  if (sources.length > 0) {
    const targets = [...new Set(Object.values(report.matrix).flatMap((t) => Object.keys(t)))];
    const matrix: TransferMatrixData = {
      sources,
      targets,
      values: sources.map((s) => targets.map((t) => report.matrix[s][t]?.finetune?.estimate ?? report.matrix[s][t]?.frozen?.estimate ?? null)),
      valueLabel: 'P(AUC better than scratch), fine-tuned DecL',
      midpoint: 0.5,
      domain: [0, 1],
      format: '.2f',
    };
    files.push(...Object.values(await writePlot(path.join(dir, 'matrix.svg'), transferMatrixSpec(matrix, { title: `${title}: source → target` }))));
  }
  return files;
}

/** Performance profile of the pooled normalised scores (`pooledScores`), per condition. */
function profileData(results: TransferResults, study: TransferStudyConfig, conditions: string[]): PerformanceProfileData | null {
  const pooled = pooledScores(results);
  if (!pooled) return null;
  const taus = Array.from({ length: 21 }, (_, i) => i / 20);
  const curves: Array<PerformanceProfileData['curves'][number]> = [];
  for (const condition of conditions as TransferCondition[]) {
    const matrix = pooled.matrices[condition];
    if (!matrix) continue;
    const points = performanceProfile(matrix, taus, { reps: study.report.bootstrap_reps, seed: `${study.report.bootstrap_seed}/profile/${condition}` });
    curves.push({ condition, taus, fraction: points.map((p) => p.estimate), lower: points.map((p) => p.lower), upper: points.map((p) => p.upper) });
  }
  return curves.length > 0 ? { curves, scoreLabel: `normalised ${pooled.measure} score τ` } : null;
}
