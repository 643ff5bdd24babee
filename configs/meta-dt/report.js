#!/usr/bin/env node
// The tables of the Meta-DT Point-Robot study (BENCHMARKS.md) from the run directories that
// configs/meta-dt/run-study.sh wrote:
//   npm run build && node configs/meta-dt/report.js <study-dir> [--json]
// Per variant and evaluation mode: IQM and mean of the per-task returns over runs × tasks, with
// 95% stratified-bootstrap intervals (runs resampled within each task), on the 5 held-out tasks
// and on the first 5 training tasks (the reference's two task sets); the probability that Meta-DT
// few-shot beats each other row on the held-out tasks; the z → goal probe where measured; and
// the learning curve (periodic evaluations in each run's eval_mode by decision-transformer step,
// mean over held-out tasks and runs). It reads any task family's runs named <variant>-<seed>;
// run-study.sh is the Point-Robot study's runner. Rows of the same variant in other modes are the
// same runs evaluated differently: their P(improvement) treats them as unpaired (wider intervals).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');
const { statistics } = require('../../dist/index.js');

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node configs/meta-dt/report.js <study-dir> [--json]\n');
  process.exit(2);
}
const ROWS = [
  ['plain DT (no task information)', 'plain-dt', 'zero-shot'],
  ['Prompt-DT, prompts from own rollouts (no demonstrations)', 'prompt-dt', 'few-shot'],
  ['Prompt-DT, prompts from the dataset (demonstrations)', 'prompt-dt', 'demo'],
  ['Meta-DT zero-shot: a model trained without prompts (z only)', 'meta-dt-zs', 'zero-shot'],
  ['Meta-DT, the prompt-trained model without a prompt (z only)', 'meta-dt', 'zero-shot'],
  ['Meta-DT few-shot (z + complementary prompt from own rollouts)', 'meta-dt', 'few-shot'],
  ['Meta-DT with prompts from the dataset (z + demonstrations)', 'meta-dt', 'demo'],
  ['ablation: no z (prompt only), few-shot', 'no-z', 'few-shot'],
  ['ablation: random-segment prompt, few-shot', 'random-segment', 'few-shot'],
];

function runsOf(variant) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((d) => new RegExp(`^${variant}-\\d+$`).test(d) && fs.existsSync(path.join(dir, d, 'task-inference.json')))
    .sort((a, b) => Number(a.split('-').pop()) - Number(b.split('-').pop()))
    .map((d) => ({ name: d, results: JSON.parse(fs.readFileSync(path.join(dir, d, 'task-inference.json'), 'utf8')), metrics: path.join(dir, d, 'metrics.jsonl') }));
}

function matrix(runs, mode, tasks) {
  return runs.map((r) =>
    tasks.map((t) => {
      const result = r.results.tasks[t]?.[mode];
      if (!result) throw new Error(`${r.name}: task-inference.json has no '${mode}' result for task '${t}' (its modes: ${r.results.modes.join(', ')})`);
      return result.return_mean;
    }),
  );
}

/** The run's tasks on one side of the split, in key order; every run of a variant must have the same. */
function tasksOf(runs, split) {
  const keysOf = (r) => Object.keys(r.results.tasks).filter((t) => r.results.tasks[t].split === split).sort().join(',');
  for (const r of runs) if (keysOf(r) !== keysOf(runs[0])) throw new Error(`${r.name} has other ${split} tasks than ${runs[0].name}`);
  return keysOf(runs[0]).split(',').filter(Boolean);
}

const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : '—');
const ci = (e) => `${fmt(e.estimate)} [${fmt(e.lower)}, ${fmt(e.upper)}]`;
const out = { rows: [], improvement: [], probe: [], curves: [] };
const lines = [];
let reference;
let trainCount = 0;
for (const [label, variant, mode] of ROWS) {
  const runs = runsOf(variant);
  if (runs.length === 0) continue;
  const testTasks = tasksOf(runs, 'test');
  const trainTasks = tasksOf(runs, 'train');
  trainCount = trainTasks.length;
  const test = matrix(runs, mode, testTasks);
  // The reference reports its first 5 training tasks beside the held-out ones.
  const train = matrix(runs, mode, trainTasks.slice(0, 5));
  const allTrain = matrix(runs, mode, trainTasks);
  const boot = (m, agg, name) => statistics.stratifiedBootstrapCI(m, agg, { reps: 20000, seed: `${variant}/${mode}/${name}` });
  const row = {
    label,
    variant,
    mode,
    runs: runs.length,
    test_iqm: boot(test, statistics.aggregateIqm, 'test-iqm'),
    test_mean: boot(test, statistics.aggregateMean, 'test-mean'),
    train_iqm: boot(train, statistics.aggregateIqm, 'train-iqm'),
    train45_mean: statistics.aggregateMean(allTrain),
    test_matrix: test,
  };
  out.rows.push(row);
  if (variant === 'meta-dt' && mode === 'few-shot') reference = row;
}
lines.push(`| variant (evaluation mode) | runs | held-out IQM [95% CI] | held-out mean [95% CI] | first 5 train tasks IQM [95% CI] | all ${trainCount} train tasks, mean |`);
lines.push('|---|---|---|---|---|---|');
for (const r of out.rows) lines.push(`| ${r.label} | ${r.runs} | ${ci(r.test_iqm)} | ${ci(r.test_mean)} | ${ci(r.train_iqm)} | ${fmt(r.train45_mean)} |`);
if (reference) {
  lines.push('', '| P(Meta-DT few-shot > row) on held-out tasks | P [95% CI] |', '|---|---|');
  for (const r of out.rows) {
    if (r === reference) continue;
    const p = statistics.probabilityOfImprovementCI(reference.test_matrix, r.test_matrix, { reps: 2000, seed: `poi/${r.variant}/${r.mode}` });
    out.improvement.push({ against: r.label, ...p });
    lines.push(`| ${r.label} | ${fmt(p.estimate)} [${fmt(p.lower)}, ${fmt(p.upper)}] |`);
  }
}
for (const variant of ['meta-dt-zs', 'meta-dt', 'no-z', 'random-segment']) {
  for (const run of runsOf(variant)) {
    const p = run.results.probe;
    if (p && p.r2_test !== undefined) out.probe.push({ run: run.name, ...p });
  }
}
if (out.probe.length > 0) {
  lines.push('', '| run | probe R² train | held-out | held-out, low-return data | held-out, high-return data |', '|---|---|---|---|---|');
  for (const p of out.probe) lines.push(`| ${p.run} | ${fmt(p.r2_train)} | ${fmt(p.r2_test)} | ${fmt(p.r2_test_low_return)} | ${fmt(p.r2_test_high_return)} |`);
}
// Learning curves: periodic evaluations (the run's eval_mode), mean over held-out tasks, then runs.
for (const variant of ['plain-dt', 'prompt-dt', 'meta-dt-zs', 'meta-dt', 'no-z', 'random-segment']) {
  const runs = runsOf(variant);
  if (runs.length === 0) continue;
  const testTasks = new Set(tasksOf(runs, 'test'));
  const byStep = new Map();
  const evalModes = new Set();
  for (const run of runs) {
    // Curves are placed by decision-transformer steps: a run with a world model spent its first
    // world_model_steps gradient steps on it.
    const algo = YAML.parse(fs.readFileSync(path.join(path.dirname(run.metrics), 'config.yaml'), 'utf8')).algo;
    evalModes.add(algo.eval_mode ?? 'zero-shot');
    const worldModel = algo.task_representation === 'world_model' || algo.prompt === 'complementary' ? algo.world_model_steps : 0;
    const evals = fs.readFileSync(run.metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.kind === 'eval' && testTasks.has(r.task) && r.grad_steps > worldModel);
    const perStep = new Map();
    for (const e of evals) perStep.set(e.grad_steps - worldModel, [...(perStep.get(e.grad_steps - worldModel) ?? []), e.return_mean]);
    for (const [step, values] of perStep) byStep.set(step, [...(byStep.get(step) ?? []), statistics.mean(values)]);
  }
  const curve = [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([step, values]) => ({ step, mean: statistics.mean(values), runs: values.length }));
  out.curves.push({ variant, eval_mode: [...evalModes].join('/'), curve });
}
if (out.curves.length > 0) {
  const steps = [...new Set(out.curves.flatMap((c) => c.curve.map((p) => p.step)))].sort((a, b) => a - b);
  lines.push('', `| held-out return of the periodic evaluations (variant, its eval_mode) after DT step | ${steps.join(' | ')} |`, `|---|${steps.map(() => '---').join('|')}|`);
  for (const c of out.curves) lines.push(`| ${c.variant} (${c.eval_mode}) | ${steps.map((s) => fmt(c.curve.find((p) => p.step === s)?.mean)).join(' | ')} |`);
}
if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
else process.stdout.write(`${lines.join('\n')}\n`);
