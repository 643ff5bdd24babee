import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from '../core/atomic-file';
import { type JsonValue, type LearningCurvesData, type VegaLiteSpec, learningCurvesSpec, writePlot } from '../core/report-plots';
import { type IntervalEstimate, aggregateIqm, probabilityOfImprovementCI, sampleEfficiencyCurve, scoreColumn, stratifiedBootstrapCI } from '../core/statistics';
import type { MraPopulationResult, MraRunEvaluation, MraScore } from './mra-evaluation';
import { fmt, interval } from './transfer-report';
import { type AdaptationBudget, type MraPlan, type MraRunResult, type MraStudyResults, resourceEnvId, scratchEnvSteps } from './mra-study';

/*
 * The MRA study's report: per held-out population, each way of playing it — MRA zero-shot (z
 * from p(z | N)), MRA with the best single z, MRA after k adaptation steps, the unimodal baseline,
 * and runs trained from scratch on that population for 1× and 10× (the study's multiples) the
 * env steps MRA's adaptation used — as the IQM over seeds of the return per agent with a 95%
 * stratified-bootstrap interval, and the probability that MRA beats each baseline with its
 * interval (rliable's definitions, `runtime/core/statistics.ts`, called as the MTMA transfer
 * report calls them). Then the evidence that z matters (I(a; z | o) and the game classifier's
 * accuracy per training population) and the behaviour per z. Bootstrap seed and repetitions
 * come from the study, so the same evaluations give the same report, bit for bit.
 */

/** The ways of playing a population that the report compares; scratch ones are `scratch_x<multiple>`. */
export type MraCondition = 'mra_zero_shot' | 'mra_best_z' | 'mra_adapted' | 'unimodal' | `scratch_x${number}`;

export interface ScoreSummary extends IntervalEstimate {
  /** The per-seed returns per agent, in seed order, and the runs they come from. */
  values: number[];
  runs: string[];
  /** Env steps spent on this population before playing (adaptation, best-z sweep, or scratch training), mean over seeds. */
  envStepsUsed: number;
  /** Resources occupied at an episode's last step, and overlapping agent pairs per episode: means over seeds. */
  occupied: number;
  collisions: number;
}

/** P(the first condition's run beats the second's), with its interval. */
export interface Comparison extends IntervalEstimate {
  better: MraCondition;
  than: MraCondition;
}

export interface PopulationSummary {
  numAgents: number;
  env: string;
  trained: boolean;
  /** Held-out populations: MRA's adaptation budget there (what the scratch budgets multiply). */
  adaptationBudget?: AdaptationBudget;
  conditions: Partial<Record<MraCondition, ScoreSummary>>;
  comparisons: Comparison[];
  /** MRA's return per agent over adaptation steps (IQM over seeds), with env steps used (mean over seeds). */
  adaptationCurve: Array<IntervalEstimate & { step: number; envStepsUsed: number }>;
  /** Held-out populations: the plain sentence. */
  verdict?: string;
}

export interface TrainingEvidence {
  numAgents: number;
  task: string;
  /** Per MRA seed, in seed order. */
  informationEstimate: { mean: number; min: number; values: number[] };
  classifierAccuracy: { mean: number; min: number; values: number[] };
  /** 1 / number of training populations. */
  chance: number;
}

/** One z's behaviour on one population in one MRA run (z labels are arbitrary per run). */
export interface LatentBehaviour {
  run: string;
  seed: number;
  numAgents: number;
  trained: boolean;
  z: number;
  /** p(z | N) of the run's task encoder. */
  probability: number;
  agentsPerResource: number[];
  returnPerAgent: number;
}

export interface MraReport {
  bootstrap: { reps: number; seed: number };
  numLatents: number;
  trainPopulations: number[];
  heldOutPopulations: number[];
  seeds: number;
  adaptationSteps: number;
  scratchMultiples: number[];
  heldOut: PopulationSummary[];
  /** The training populations: the same numbers without scratch runs, for comparison. */
  trainedOn: PopulationSummary[];
  training: TrainingEvidence[];
  behaviours: LatentBehaviour[];
  /** One per held-out population. */
  verdicts: string[];
  /** Runs not finished, and finished runs whose evaluation failed. */
  missing: string[];
  failedEvaluations: Array<{ key: string; error: string }>;
  /** Every evaluated run and where its evaluation is saved. */
  runs: Array<{ key: string; phase: MraRunResult['phase']; seed: number; evaluation: string }>;
}

export function conditionLabel(condition: MraCondition, adaptationSteps?: number): string {
  if (condition === 'mra_zero_shot') return 'MRA zero-shot';
  if (condition === 'mra_best_z') return 'MRA best z';
  if (condition === 'mra_adapted') return adaptationSteps === undefined ? 'MRA adapted' : `MRA adapted (${adaptationSteps} steps)`;
  if (condition === 'unimodal') return 'unimodal zero-shot';
  return `scratch ×${condition.slice('scratch_x'.length)}`;
}

function populationOf(evaluation: MraRunEvaluation, numAgents: number): MraPopulationResult | undefined {
  return evaluation.populations.find((p) => p.numAgents === numAgents);
}

/** The last point of the adaptation curve (after k steps), or zero-shot when there is none. */
function adapted(p: MraPopulationResult): { score: MraScore; envStepsUsed: number } {
  const last = [...p.adaptation].sort((a, b) => a.step - b.step).at(-1);
  return last ? { score: last.score, envStepsUsed: last.envStepsUsed } : { score: p.zeroShot, envStepsUsed: 0 };
}

export function buildMraReport(results: MraStudyResults, plan: MraPlan): MraReport {
  const study = plan.study;
  const { bootstrap_reps: reps, bootstrap_seed: seed } = study.report;
  const boot = (what: string) => ({ reps, seed: `${seed}/${what}` });
  const mraRuns = results.runs.filter((r) => r.phase === 'mra');
  const unimodalRuns = results.runs.filter((r) => r.phase === 'unimodal');
  const adaptationSteps = study.evaluation.adaptation.steps;

  const summarise = (numAgents: number, trained: boolean): PopulationSummary => {
    const env = resourceEnvId(numAgents);
    const conditions: PopulationSummary['conditions'] = {};
    const add = (condition: MraCondition, entries: Array<{ run: MraRunResult; score: MraScore; envSteps: number }>) => {
      if (entries.length === 0) return;
      const values = entries.map((e) => e.score.returnPerAgent);
      const meanOf = (f: (e: (typeof entries)[number]) => number) => entries.reduce((a, e) => a + f(e), 0) / entries.length;
      conditions[condition] = {
        ...stratifiedBootstrapCI(scoreColumn(values), aggregateIqm, boot(`${env}/${condition}`)),
        values,
        runs: entries.map((e) => e.run.key),
        envStepsUsed: meanOf((e) => e.envSteps),
        occupied: meanOf((e) => e.score.occupied),
        collisions: meanOf((e) => e.score.collisions),
      };
    };
    const played = (runs: MraRunResult[]) => runs.flatMap((run) => {
      const p = populationOf(run.evaluation, numAgents);
      return p ? [{ run, p }] : [];
    });
    const mra = played(mraRuns);
    add('mra_zero_shot', mra.map(({ run, p }) => ({ run, score: p.zeroShot, envSteps: 0 })));
    add('mra_best_z', mra.map(({ run, p }) => ({ run, score: p.bestLatent.score, envSteps: p.bestLatent.envStepsUsed })));
    add('mra_adapted', mra.map(({ run, p }) => {
      const a = adapted(p);
      return { run, score: a.score, envSteps: a.envStepsUsed };
    }));
    add('unimodal', played(unimodalRuns).map(({ run, p }) => ({ run, score: p.zeroShot, envSteps: 0 })));
    const budget = trained ? undefined : plan.adaptationBudgets.find((b) => b.numAgents === numAgents);
    if (!trained) {
      for (const multiple of study.scratch.budgets) {
        const runs = results.runs.filter((r) => r.phase === 'scratch' && r.population === numAgents && r.budgetMultiple === multiple);
        const trainedSteps = budget ? scratchEnvSteps(multiple, budget) : 0;
        add(`scratch_x${multiple}`, played(runs).map(({ run, p }) => ({ run, score: p.zeroShot, envSteps: trainedSteps })));
      }
    }
    const comparisons: Comparison[] = [];
    const compare = (better: MraCondition, than: MraCondition) => {
      const x = conditions[better];
      const y = conditions[than];
      if (!x || !y) return;
      comparisons.push({ better, than, ...probabilityOfImprovementCI(scoreColumn(x.values), scoreColumn(y.values), boot(`${env}/poi/${better}/${than}`)) });
    };
    compare('mra_adapted', 'unimodal');
    compare('mra_zero_shot', 'unimodal');
    compare('mra_best_z', 'unimodal');
    if (!trained) for (const multiple of study.scratch.budgets) compare('mra_adapted', `scratch_x${multiple}`);
    const summary: PopulationSummary = { numAgents, env, trained, ...(budget ? { adaptationBudget: budget } : {}), conditions, comparisons, adaptationCurve: adaptationCurve(mra.map((m) => m.p), boot(`${env}/adaptation`)) };
    if (!trained) summary.verdict = verdict(summary, adaptationSteps, study.scratch.budgets);
    return summary;
  };

  const heldOut = study.held_out_populations.map((n) => summarise(n, false));
  const trainedOn = study.train_populations.map((n) => summarise(n, true));

  const training: TrainingEvidence[] = [];
  for (const n of study.train_populations) {
    const entries = mraRuns.flatMap((r) => r.evaluation.training.filter((t) => t.numAgents === n));
    if (entries.length === 0) continue;
    const stats = (values: number[]) => ({ mean: values.reduce((a, b) => a + b, 0) / values.length, min: Math.min(...values), values });
    training.push({
      numAgents: n,
      task: entries[0].task,
      informationEstimate: stats(entries.map((e) => e.informationEstimate)),
      classifierAccuracy: stats(entries.map((e) => e.classifierAccuracy)),
      chance: 1 / study.train_populations.length,
    });
  }

  const behaviours: LatentBehaviour[] = [];
  for (const run of mraRuns) {
    for (const p of run.evaluation.populations) {
      p.perLatent.forEach((score, z) => {
        behaviours.push({ run: run.key, seed: run.seed, numAgents: p.numAgents, trained: p.trained, z, probability: p.latentProbs[z] ?? Number.NaN, agentsPerResource: [...score.agentsPerResource], returnPerAgent: score.returnPerAgent });
      });
    }
  }

  return {
    bootstrap: { reps, seed },
    numLatents: study.base.algo.num_latents as number,
    trainPopulations: [...study.train_populations],
    heldOutPopulations: [...study.held_out_populations],
    seeds: study.seeds,
    adaptationSteps,
    scratchMultiples: [...study.scratch.budgets],
    heldOut,
    trainedOn,
    training,
    behaviours,
    verdicts: heldOut.map((h) => h.verdict!),
    missing: [...results.missing, ...results.failed.map((f) => f.key)],
    failedEvaluations: results.failed,
    runs: results.runs.map((r) => ({ key: r.key, phase: r.phase, seed: r.seed, evaluation: path.join(r.dir, 'mra-evaluation.json') })),
  };
}

/** The IQM over seeds at every adaptation step that all seeds evaluated at. */
function adaptationCurve(populations: MraPopulationResult[], bootstrap: { reps: number; seed: string }): PopulationSummary['adaptationCurve'] {
  const curves = populations.map((p) => [...p.adaptation].sort((a, b) => a.step - b.step)).filter((c) => c.length > 0);
  if (curves.length === 0) return [];
  const shared = curves.map((c) => new Set(c.map((p) => p.step))).reduce((a, b) => new Set([...a].filter((s) => b.has(s))));
  const aligned = curves.map((c) => c.filter((p) => shared.has(p.step)));
  if (aligned[0].length === 0) return [];
  const points = sampleEfficiencyCurve(aligned.map((c) => c.map((p) => ({ step: p.step, value: p.score.returnPerAgent }))), bootstrap);
  return points.map((point, i) => ({ ...point, envStepsUsed: aligned.reduce((a, c) => a + c[i].envStepsUsed, 0) / aligned.length }));
}

/**
 * A probability as printed: 3 decimals, unless rounding would move it across ½ (or onto it),
 * in which case every digit is printed — a bound is never shown rounded past the line the
 * verdict is drawn at.
 */
export function formatProbability(p: number): string {
  const short = p.toFixed(3);
  const side = (x: number) => Math.sign(x - 0.5);
  return side(Number(short)) === side(p) ? short : String(p);
}

function probabilityInterval(e: IntervalEstimate): string {
  return `${formatProbability(e.estimate)} [${formatProbability(e.lower)}, ${formatProbability(e.upper)}]`;
}

/** beats / is worse than / shows no clear difference from: from the interval of P(improvement) alone. */
export function outcomeOf(poi: IntervalEstimate): 'beats' | 'is worse than' | 'shows no clear difference from' {
  if (poi.lower > 0.5) return 'beats';
  if (poi.upper < 0.5) return 'is worse than';
  return 'shows no clear difference from';
}

/**
 * The plain sentence per held-out population: does MRA, adapted and zero-shot, beat the unimodal
 * baseline (and the scratch runs)? A claim is made only where the 95% interval of P(improvement)
 * lies wholly above ½ (beats) or below it (worse); otherwise no clear difference.
 */
function verdict(s: PopulationSummary, adaptationSteps: number, multiples: number[]): string {
  const head = `${s.env} (held out)`;
  const c = s.conditions;
  if (!c.mra_zero_shot) return `${head}: no evaluated MRA run, so no verdict.`;
  const find = (better: MraCondition, than: MraCondition) => s.comparisons.find((x) => x.better === better && x.than === than);
  const claim = (better: MraCondition, than: MraCondition, thanName: string) => {
    const poi = find(better, than)!;
    const x = c[better]!;
    const y = c[than]!;
    return `${conditionLabel(better, better === 'mra_adapted' ? adaptationSteps : undefined)} ${outcomeOf(poi)} ${thanName} (IQM return per agent ${fmt(x.estimate)} vs ${fmt(y.estimate)}, P(${conditionLabel(better)} > ${conditionLabel(than)}) = ${probabilityInterval(poi)}, ${x.values.length} vs ${y.values.length} seeds)`;
  };
  const parts: string[] = [];
  if (c.unimodal) parts.push(claim('mra_adapted', 'unimodal', 'the unimodal baseline'), claim('mra_zero_shot', 'unimodal', 'the unimodal baseline'));
  else parts.push('no evaluated unimodal run, so no comparison with the unimodal baseline');
  const scratch = multiples.filter((m) => c[`scratch_x${m}`]).map((m) => claim('mra_adapted', `scratch_x${m}`, `scratch ×${m} (${Math.round(c[`scratch_x${m}`]!.envStepsUsed)} env steps of training)`));
  return `${head}: ${[...parts, ...scratch].join('; ')}.`;
}

// ---------------------------------------------------------------------------------------------
// report.md

export function mraReportMarkdown(report: MraReport, title: string): string {
  const lines = [`# MRA study: ${title}`, ''];
  lines.push(
    `Training populations ${report.trainPopulations.map(resourceEnvId).join(', ')}; held out ${report.heldOutPopulations.map(resourceEnvId).join(', ')}; ${report.numLatents} latents; ${report.seeds} seeds; ${report.adaptationSteps} adaptation steps. ` +
      `Every score is the return per agent (mean over episodes and agents), summarised as the IQM over seeds with a 95% stratified-bootstrap interval (${report.bootstrap.reps} repetitions, seed ${report.bootstrap.seed}). ` +
      'P(A > B) is the probability that a run of A scores higher than a run of B (Mann–Whitney U / nm), with its interval; a verdict says "beats" only when that interval lies above ½, "worse" only when it lies below. With few seeds the bootstrap intervals are narrow and optimistic.',
    '',
  );
  if (report.missing.length > 0) lines.push(`**Missing runs** (not finished or not evaluated): ${report.missing.join(', ')}`, '');
  for (const f of report.failedEvaluations) lines.push(`- evaluation of ${f.key} failed: ${f.error}`);
  if (report.failedEvaluations.length > 0) lines.push('');
  lines.push('## Verdicts', '', ...report.verdicts.map((v) => `- ${v}`), '');

  const table = (s: PopulationSummary) => {
    lines.push('| condition | IQM return per agent [95% CI] | per seed | resources occupied (last step) | collisions per episode | env steps used on this population |', '|---|---|---|---|---|---|');
    for (const [condition, c] of Object.entries(s.conditions) as Array<[MraCondition, ScoreSummary]>) {
      lines.push(`| ${conditionLabel(condition, condition === 'mra_adapted' ? report.adaptationSteps : undefined)} | ${interval(c)} | ${c.values.map((v) => fmt(v)).join(', ')} | ${fmt(c.occupied, 2)} | ${fmt(c.collisions, 1)} | ${Math.round(c.envStepsUsed)} |`);
    }
    lines.push('');
    if (s.comparisons.length > 0) {
      lines.push('| comparison | P(better) [95% CI] | outcome |', '|---|---|---|');
      for (const x of s.comparisons) lines.push(`| ${conditionLabel(x.better)} > ${conditionLabel(x.than)} | ${probabilityInterval(x)} | ${outcomeOf(x)} |`);
      lines.push('');
    }
  };
  for (const s of report.heldOut) {
    lines.push(`## ${s.env} (held out)`, '');
    if (s.adaptationBudget) {
      const b = s.adaptationBudget;
      lines.push(
        `Adaptation budget: ${b.episodes} episodes × ${b.episodeLength} steps = ${b.envSteps} env steps (${report.numLatents} latents × sweep episodes + adaptation steps × episodes per step; episode length ${b.episodeLengthFrom === 'env' ? "read from the env" : 'the resource-N default'}). Scratch runs train on ${s.env} alone for ${report.scratchMultiples.map((m) => `${m}×`).join(' and ')} that.`,
        '',
      );
    }
    table(s);
    if (s.adaptationCurve.length > 0) {
      lines.push('Adaptation curve (MRA):', '', '| step | env steps used | IQM return per agent [95% CI] |', '|---|---|---|');
      for (const p of s.adaptationCurve) lines.push(`| ${p.step} | ${Math.round(p.envStepsUsed)} | ${interval(p)} |`);
      lines.push('');
    }
  }
  if (report.trainedOn.some((s) => Object.keys(s.conditions).length > 0)) {
    lines.push('## Training populations', '');
    for (const s of report.trainedOn) {
      lines.push(`### ${s.env}`, '');
      table(s);
    }
  }
  lines.push('## Does z matter? Evidence from training', '');
  if (report.training.length === 0) lines.push('No MRA run reported training evidence.', '');
  else {
    lines.push(
      'I(a; z | o): the contrastive estimate of the mutual information between actions and z given observations, on a replay batch (nats; ≈ 0 when the policy ignores z). Classifier accuracy: how often the game classifier names the population from a replay batch; chance is 1 / number of training populations.',
      '',
      '| population | I(a; z | o) mean | min over seeds | classifier accuracy mean | min over seeds | chance |',
      '|---|---|---|---|---|---|',
    );
    for (const t of report.training) {
      lines.push(`| ${resourceEnvId(t.numAgents)} | ${fmt(t.informationEstimate.mean)} | ${fmt(t.informationEstimate.min)} | ${fmt(t.classifierAccuracy.mean)} | ${fmt(t.classifierAccuracy.min)} | ${fmt(t.chance)} |`);
    }
    lines.push('');
  }
  lines.push(
    'Plots: `adaptation.svg` (per held-out population, MRA over adaptation steps beside the baselines, IQM with 95% bands), `behaviours.svg` (agents per resource, smallest to largest, at the last step when every agent plays one z; one row per MRA seed — z labels are arbitrary per run — one column per population); PNG copies beside them.',
    '',
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Plots

const Z_PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Agents per resource for each z: a grouped bar chart, one row per MRA run (seed), one column per population. */
export function behavioursSpec(report: MraReport, title: string): VegaLiteSpec | null {
  if (report.behaviours.length === 0) return null;
  const populationLabel = (n: number, trained: boolean) => `${resourceEnvId(n)}${trained ? '' : ' (held out)'}`;
  const rows: Array<{ [key: string]: JsonValue }> = [];
  for (const b of report.behaviours) {
    b.agentsPerResource.forEach((agents, resource) => {
      if (!Number.isFinite(agents)) return;
      rows.push({ seed: `seed ${b.seed}`, population: populationLabel(b.numAgents, b.trained), z: `z = ${b.z}`, resource, agents });
    });
  }
  if (rows.length === 0) return null;
  const populations = [...new Map(report.behaviours.map((b) => [b.numAgents, populationLabel(b.numAgents, b.trained)])).entries()].sort((a, b) => a[0] - b[0]).map(([, label]) => label);
  const zs = [...new Set(report.behaviours.map((b) => b.z))].sort((a, b) => a - b).map((z) => `z = ${z}`);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start', fontSize: 15, offset: 14 },
    data: { values: rows },
    facet: {
      row: { field: 'seed', type: 'nominal', title: null, header: { labelFontWeight: 'bold', labelOrient: 'right', labelAngle: 0, labelAlign: 'left' } },
      column: { field: 'population', type: 'nominal', title: null, sort: populations, header: { labelFontSize: 13, labelFontWeight: 'bold' } },
    },
    spec: {
      width: 200,
      height: 120,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'resource', type: 'ordinal', title: 'resource (0 smallest … 5 largest)', axis: { labelAngle: 0 } },
        xOffset: { field: 'z', type: 'nominal', sort: zs },
        y: { field: 'agents', type: 'quantitative', title: 'agents (last step)' },
        color: { field: 'z', type: 'nominal', title: 'latent', sort: zs, scale: { domain: zs, range: zs.map((_, i) => Z_PALETTE[i % Z_PALETTE.length]) } },
      },
    },
    config: { background: '#ffffff', view: { stroke: '#cccccc' } },
  };
}

/** Per held-out population: MRA's adaptation curve, with the baselines as flat bands for comparison. */
export function adaptationCurvesData(report: MraReport): LearningCurvesData | null {
  const targets: LearningCurvesData['targets'][number][] = [];
  for (const s of report.heldOut) {
    if (s.adaptationCurve.length === 0) continue;
    const steps = s.adaptationCurve.map((p) => p.step);
    const curves = [
      { condition: conditionLabel('mra_adapted'), steps, estimate: s.adaptationCurve.map((p) => p.estimate), lower: s.adaptationCurve.map((p) => p.lower), upper: s.adaptationCurve.map((p) => p.upper) },
    ];
    for (const condition of ['mra_best_z', 'unimodal', ...report.scratchMultiples.map((m) => `scratch_x${m}` as const)] as MraCondition[]) {
      const c = s.conditions[condition];
      if (!c) continue;
      curves.push({ condition: conditionLabel(condition), steps, estimate: steps.map(() => c.estimate), lower: steps.map(() => c.lower), upper: steps.map(() => c.upper) });
    }
    targets.push({ task: `${s.env} (held out)`, curves });
  }
  return targets.length > 0 ? { targets, valueLabel: 'return per agent (IQM, 95% CI)', stepLabel: 'adaptation steps on p(z | N)' } : null;
}

/** Adaptation steps are whole numbers: no ticks between them on the x axes. */
function withWholeSteps(spec: VegaLiteSpec): VegaLiteSpec {
  const layers = (spec.spec as { layer?: Array<{ encoding?: { x?: { axis?: Record<string, JsonValue> } } }> } | undefined)?.layer ?? [];
  for (const layer of layers) {
    const axis = layer.encoding?.x?.axis;
    if (axis) axis.tickMinStep = 1;
  }
  return spec;
}

/** Writes results.json, report.md and the plots (SVG and PNG) into `dir`; returns the files written. */
export async function writeMraReport(report: MraReport, dir: string, title: string): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, 'results.json');
  writeFileAtomicSync(json, `${JSON.stringify(report, null, 2)}\n`);
  const md = path.join(dir, 'report.md');
  writeFileAtomicSync(md, mraReportMarkdown(report, title));
  const files = [json, md];
  const curves = adaptationCurvesData(report);
  if (curves) {
    const conditions = [...new Set(curves.targets.flatMap((t) => t.curves.map((c) => c.condition)))];
    const spec = learningCurvesSpec(curves, { title: `${title}: adaptation on held-out populations`, conditions });
    files.push(...Object.values(await writePlot(path.join(dir, 'adaptation.svg'), withWholeSteps(spec))));
  }
  const behaviours = behavioursSpec(report, `${title}: agents per resource for each z`);
  if (behaviours) files.push(...Object.values(await writePlot(path.join(dir, 'behaviours.svg'), behaviours)));
  return files;
}
