import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { buildSweepReport, conditionName, loadSweepStudy, planSweepStudy, sweepRunDataFromDisk } from '../runtime/training/sweep-study';
import type { PlannedRun } from '../runtime/training/transfer-study';
import { expectCleanFailure, runCli } from './helpers/cli-run';

const ROOT = path.join(__dirname, '..', '..');
const QUICKSTART = path.join(ROOT, 'configs', 'quickstart.yaml');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-sweep-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let fileCount = 0;
function writeStudy(study: unknown): string {
  const file = path.join(tmp, `sweep-${fileCount++}.yaml`);
  fs.writeFileSync(file, typeof study === 'string' ? study : YAML.stringify(study));
  return file;
}

/** Runs of a few hundred env steps: two learning rates × two seeds. */
const TINY = {
  name: 'tiny',
  base: QUICKSTART,
  set: { 'run.total_env_steps': 800, 'run.eval_interval': 400, 'run.eval_episodes': 4, 'run.log_interval': 400, 'run.checkpoint_interval': 400, 'run.backend': 'wasm' },
  grid: { 'algo.lr': [0.0005, 0.002] },
  seeds: 2,
};

describe('sweep study files', () => {
  test.each([
    ['no grid', { ...TINY, grid: undefined }, /invalid sweep study .*sweep-\d+\.yaml:[\s\S]*grid: required/],
    ['an empty grid', { ...TINY, grid: {} }, /grid: give at least one key to vary/],
    ['a grid key with no values', { ...TINY, grid: { 'algo.lr': [] } }, /grid\.algo\.lr: give at least one value/],
    ['both base and config', { ...TINY, config: { env: { id: 'lbf-8x8-2p-2f-coop' } } }, /give the run config as 'base' \(a file\) or 'config' \(inline\), one of the two/],
    ['an unknown key', { ...TINY, seed: 3 }, /\(top level\): unknown key\(s\) 'seed'/],
    ['zero seeds', { ...TINY, seeds: 0 }, /seeds/],
    ['an unknown metric', { ...TINY, report: { metric: 'score' } }, /report\.metric: Invalid enum value/],
  ])('refuses %s, naming the file and the key', (_name, study, pattern) => {
    expect(() => loadSweepStudy(writeStudy(study))).toThrow(pattern);
  });

  test('refuses a base file that is not there, a grid value troupe train would refuse (naming the run), a key it does not know, and a seed given twice', () => {
    const missing = writeStudy({ ...TINY, base: 'nowhere.yaml' });
    expect(() => planSweepStudy(loadSweepStudy(missing), missing, tmp)).toThrow(/base: cannot read the run config .*nowhere\.yaml/);
    const badValue = writeStudy({ ...TINY, grid: { 'algo.lr': [0.001, -1] } });
    expect(() => planSweepStudy(loadSweepStudy(badValue), badValue, tmp)).toThrow(/run lr=-1\/seed0\)[\s\S]*algo\.lr: expected a finite number > 0, got -1/);
    const badKey = writeStudy({ ...TINY, grid: { 'algo.learning_rate': [0.001] } });
    expect(() => planSweepStudy(loadSweepStudy(badKey), badKey, tmp)).toThrow(/--set algo\.learning_rate: unknown key 'algo\.learning_rate'/);
    const twice = writeStudy({ ...TINY, seeds: [1, 1] });
    expect(() => planSweepStudy(loadSweepStudy(twice), twice, tmp)).toThrow(/seeds: seed 1 is listed twice/);
  });

  test('expands the grid: every combination a condition named by its overrides, times the seeds; each run config resolved and validated', () => {
    const file = writeStudy({ ...TINY, grid: { 'algo.lr': [0.001, 0.01], 'algo.hidden_dim': [32, 64] }, seeds: [3, 7] });
    const plan = planSweepStudy(loadSweepStudy(file), file, path.join(tmp, 'plan'));
    expect(plan.conditions.map((c) => c.name)).toEqual(['lr=0.001_hidden_dim=32', 'lr=0.001_hidden_dim=64', 'lr=0.01_hidden_dim=32', 'lr=0.01_hidden_dim=64']);
    expect(plan.runs).toHaveLength(8);
    expect(plan.runs[3]).toMatchObject({
      key: 'lr=0.001_hidden_dim=64/seed7',
      phase: 'sweep',
      seed: 7,
      dir: path.join(tmp, 'plan', 'runs', 'lr=0.001_hidden_dim=64', 'seed7'),
      config: { env: { id: 'lbf-8x8-2p-2f-coop' }, algo: { name: 'mappo', lr: 0.001, hidden_dim: 64, gamma: 0.99 }, run: { seed: 7, total_env_steps: 800, backend: 'wasm' } },
    });
    expect(conditionName({ 'algo.lr': 1, 'run.lr': 2 })).toBe('algo.lr=1_run.lr=2');
    expect(conditionName({ 'env.options.name': 'a b/c' })).toBe('name=a-b-c');
  });

  test('the report ranks the conditions by the final evaluation over seeds and names the best; unfinished runs are listed as missing', () => {
    const file = writeStudy({ ...TINY, seeds: 4, report: { metric: 'return_mean', bootstrap_reps: 200 } });
    const plan = planSweepStudy(loadSweepStudy(file), file, path.join(tmp, 'report'));
    const finals: Record<string, number> = { 'lr=0.0005/seed0': 0.1, 'lr=0.0005/seed1': 0.2, 'lr=0.0005/seed2': 0.3, 'lr=0.002/seed0': 0.5, 'lr=0.002/seed1': 0.6, 'lr=0.002/seed2': 0.9, 'lr=0.002/seed3': 0.7 };
    const data = (run: PlannedRun) => (run.key in finals ? { evalRows: [{ kind: 'eval' as const, env_steps: 400, return_mean: 0 }, { kind: 'eval' as const, env_steps: 800, return_mean: finals[run.key] }] } : null);
    const report = buildSweepReport(plan, data);
    expect(report.best).toBe('lr=0.002');
    expect(report.aggregate).toBe('mean');
    expect(report.missing).toEqual(['lr=0.0005/seed3']);
    expect(report.conditions.map((c) => [c.name, c.rank, c.seeds.length])).toEqual([['lr=0.002', 1, 4], ['lr=0.0005', 2, 3]]);
    expect(report.conditions[1].estimate).toBeCloseTo(0.2, 10);
    expect(report.conditions[0].lower).toBeLessThanOrEqual(report.conditions[0].estimate);
    // The same numbers give the same report, bit for bit.
    expect(JSON.stringify(buildSweepReport(plan, data))).toBe(JSON.stringify(report));
  });
});

test('troupe sweep trains every run as its own process, writes report.md and results.json, and finds everything finished the second time', () => {
  const file = writeStudy(TINY);
  const out = path.join(tmp, 'cli');
  const dry = runCli(['sweep', file, '--out', out, '--dry-run']);
  expect(dry.status).toBe(0);
  expect(dry.stdout).toMatch(/2 conditions × 2 seeds = 4 runs \(0 finished, 0 to resume, 4 new\)[\s\S]*new\s+lr=0\.002\/seed1/);
  const first = runCli(['sweep', file, '--out', out, '--jobs', '2'], { timeoutMs: 120000 });
  expect([first.status, first.stderr]).toEqual([0, '']);
  expect(first.stdout).toMatch(/4 of 4 runs finished\nbest: lr=\S+ \(return_mean [\d.]+ \[[\d.]+, [\d.]+\]\)\nreport: .*report\.md, .*results\.json/);
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as { conditions: Array<{ name: string; seeds: Array<{ value: number }> }>; best: string; missing: string[] };
  expect(results.missing).toEqual([]);
  expect(results.conditions.map((c) => c.name).sort()).toEqual(['lr=0.0005', 'lr=0.002']);
  // The report's numbers are the runs' last evaluations.
  const plan = planSweepStudy(loadSweepStudy(file), file, out);
  const run = plan.runs.find((r) => r.key === 'lr=0.002/seed1')!;
  const rows = sweepRunDataFromDisk(run)!.evalRows;
  expect(rows.map((r) => r.env_steps)).toEqual([400, 800]);
  expect(results.conditions.find((c) => c.name === 'lr=0.002')!.seeds[1].value).toBe(rows[1].return_mean);
  expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toContain(`**Best: ${results.best}**`);
  const again = runCli(['sweep', file, '--out', out]);
  expect(again.stdout).toMatch(/4 runs \(4 finished, 0 to resume, 0 new\)[\s\S]*4 of 4 runs finished/);
  expectCleanFailure(runCli(['sweep', path.join(tmp, 'nope.yaml')]), /cannot read sweep study .*nope\.yaml: no such file/);
  expectCleanFailure(runCli(['sweep', file, '--jobs', '0']), /--jobs must be a positive integer, got '0'/);
  expectCleanFailure(runCli(['sweep', file, '--backend', 'cpu']), /--backend applies to queued studies \(--queue <url>\) only/);
});

test('configs/sweeps/lbf-lr.yaml plans 2 learning rates × 3 seeds on the quickstart config', () => {
  const file = path.join(ROOT, 'configs', 'sweeps', 'lbf-lr.yaml');
  const plan = planSweepStudy(loadSweepStudy(file), file, path.join(tmp, 'lbf-lr'));
  expect(plan.name).toBe('lbf-lr');
  expect(plan.runs.map((r) => r.key)).toEqual(['lr=0.0005/seed0', 'lr=0.0005/seed1', 'lr=0.0005/seed2', 'lr=0.002/seed0', 'lr=0.002/seed1', 'lr=0.002/seed2']);
  expect(plan.runs[4].config).toMatchObject({ algo: { name: 'mappo', lr: 0.002 }, run: { seed: 1, total_env_steps: 200000 } });
});
