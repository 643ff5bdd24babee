import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { type PlannedRun, type TransferPlan, loadTransferStudy, planTransferStudy, runStatus, runTransferStudy, transferStudySchema } from '../runtime/training/transfer-study';
import { collectTransferResults } from '../runtime/training/transfer-results';
import { expectCleanFailure, runCli } from './helpers/cli-run';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-transfer-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let fileCount = 0;
function writeStudy(study: unknown): string {
  const file = path.join(tmp, `study-${fileCount++}.yaml`);
  fs.writeFileSync(file, typeof study === 'string' ? study : YAML.stringify(study));
  return file;
}

/** A study every run of which a scratch-only baseline can train: QMIX, tiny budgets. */
const SCRATCH_ONLY = {
  base: { algo: { name: 'qmix' }, run: { num_envs: 2, eval_interval: 400, eval_episodes: 2, log_interval: 400, checkpoint_interval: 400 } },
  sources: [{ id: 'combat-3v3' }],
  targets: [{ id: 'lbf-8x8-2p-2f-coop', name: 'lbf' }, { id: 'combat-2a3b' }],
  conditions: ['scratch'],
  pretrain: { seeds: 1, total_env_steps: 800 },
  target: { seeds: 2, total_env_steps: 800 },
};

describe('transfer study files', () => {
  test('defaults: all four conditions, 3 pretraining and 5 target seeds, win rate at 0.8, fixed bootstrap', () => {
    const study = transferStudySchema.parse({ base: { algo: { name: 'mtma' } }, sources: [{ id: 'a' }], targets: [{ id: 'b' }], pretrain: { total_env_steps: 10 }, target: { total_env_steps: 10 } });
    expect(study.conditions).toEqual(['scratch', 'frozen', 'finetune', 'random_frozen']);
    expect([study.pretrain.seeds, study.target.seeds, study.target.finetune_lr_scale]).toEqual([3, 5, 0.1]);
    expect(study.report).toEqual({ metric: 'win_rate', threshold: 0.8, absolute_episodes_factor: 10, bootstrap_reps: 2000, bootstrap_seed: 0 });
  });

  test.each([
    ['a missing section', { ...SCRATCH_ONLY, targets: undefined }, /targets: required/],
    ['an unknown key', { ...SCRATCH_ONLY, seeds: 3 }, /\(top level\): unknown key\(s\) 'seeds'/],
    ['an unknown condition', { ...SCRATCH_ONLY, conditions: ['frozn'] }, /conditions\.0: Invalid enum value/],
    ['a task with neither id nor module', { ...SCRATCH_ONLY, targets: [{ options: {} }] }, /targets\.0: give the task's env 'id' or its 'module'/],
    ['zero seeds', { ...SCRATCH_ONLY, target: { seeds: 0, total_env_steps: 10 } }, /target\.seeds/],
  ])('refuses %s, naming the key', (_name, study, pattern) => {
    expect(() => loadTransferStudy(writeStudy(study))).toThrow(pattern);
  });

  test('refuses a target that is also a source, two tasks of one name, and a run config troupe train would refuse', () => {
    const file = writeStudy({ ...SCRATCH_ONLY, targets: [{ id: 'combat-3v3' }] });
    expect(() => planTransferStudy(loadTransferStudy(file), file, tmp)).toThrow(/targets: combat-3v3 is also a source; transfer is measured on tasks held out/);
    const twice = writeStudy({ ...SCRATCH_ONLY, targets: [{ id: 'combat-2a3b' }, { id: 'combat-2a3b' }] });
    expect(() => planTransferStudy(loadTransferStudy(twice), twice, tmp)).toThrow(/two targets are called 'combat-2a3b'/);
    const badAlgo = writeStudy({ ...SCRATCH_ONLY, base: { algo: { name: 'qmix', lr: -1 } } });
    expect(() => planTransferStudy(loadTransferStudy(badAlgo), badAlgo, tmp)).toThrow(/run target\/lbf\/scratch\/seed0\)[\s\S]*algo\.lr: expected a finite number > 0/);
  });

  test('plans one run per target, condition and seed, as ordinary run configs; scratch needs no pretraining', () => {
    const file = writeStudy(SCRATCH_ONLY);
    const plan = planTransferStudy(loadTransferStudy(file), file, path.join(tmp, 'plan'));
    expect(plan.runs.map((r) => r.key)).toEqual(['target/lbf/scratch/seed0', 'target/lbf/scratch/seed1', 'target/combat-2a3b/scratch/seed0', 'target/combat-2a3b/scratch/seed1']);
    expect(plan.runs[1]).toMatchObject({
      dir: path.join(tmp, 'plan', 'runs', 'lbf', 'scratch', 'seed1'),
      dependsOn: [],
      config: { env: { id: 'lbf-8x8-2p-2f-coop' }, algo: { name: 'qmix' }, run: { seed: 1, total_env_steps: 800, num_envs: 2 } },
    });
  });
});

describe('running a plan', () => {
  /** A plan of fake runs: two pretraining runs and targets that wait for them. */
  function fakePlan(dir: string): TransferPlan {
    const run = (key: string, dependsOn: string[] = []): PlannedRun => ({ key, phase: key.startsWith('pretrain') ? 'pretrain' : 'target', dir: path.join(dir, key), config: {}, dependsOn, seed: 0 });
    const runs = [run('pretrain/seed0'), run('pretrain/seed1'), run('t/frozen/seed0', ['pretrain/seed0']), run('t/frozen/seed1', ['pretrain/seed1']), run('t/scratch/seed0'), run('t/scratch/seed1')];
    for (const r of runs) fs.mkdirSync(path.dirname(r.dir), { recursive: true });
    return { study: transferStudySchema.parse({ base: { algo: { name: 'mtma' } }, sources: [{ id: 'a' }], targets: [{ id: 't' }], pretrain: { total_env_steps: 1 }, target: { total_env_steps: 1 } }), file: 'fake.yaml', outDir: dir, runs };
  }

  /** A launcher that "trains" by writing a finished summary, failing the keys in `fail`, and records concurrency. */
  function fakeLauncher(fail: string[] = []) {
    const started: string[] = [];
    let running = 0;
    let maxRunning = 0;
    const launch = async (run: PlannedRun, how: { resume: boolean }) => {
      started.push(`${run.key}${how.resume ? ' (resume)' : ''}`);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      if (fail.includes(run.key)) return 3;
      fs.mkdirSync(run.dir, { recursive: true });
      fs.writeFileSync(path.join(run.dir, 'summary.json'), JSON.stringify({ interrupted: false }));
      return 0;
    };
    return { launch, started, maxRunning: () => maxRunning };
  }

  test('runs wait for what they load, at most `jobs` at a time; a second pass skips finished runs and resumes unfinished ones', async () => {
    const dir = path.join(tmp, 'fake-ok');
    const plan = fakePlan(dir);
    const first = fakeLauncher();
    const outcome = await runTransferStudy(plan, { jobs: 2, launch: first.launch });
    expect(outcome).toEqual({ finished: expect.arrayContaining(plan.runs.map((r) => r.key)), failed: [], skipped: [] });
    expect(first.maxRunning()).toBe(2);
    for (const [t, p] of [['t/frozen/seed0', 'pretrain/seed0'], ['t/frozen/seed1', 'pretrain/seed1']]) expect(first.started.indexOf(t)).toBeGreaterThan(first.started.indexOf(p));

    // One run interrupted (a checkpoint, no finished summary): the next pass resumes just that one.
    const interrupted = plan.runs[4];
    fs.writeFileSync(path.join(interrupted.dir, 'summary.json'), JSON.stringify({ interrupted: true }));
    fs.mkdirSync(path.join(interrupted.dir, 'checkpoints'));
    fs.writeFileSync(path.join(interrupted.dir, 'checkpoints', 'latest'), '{}');
    expect(runStatus(interrupted)).toBe('resumable');
    const second = fakeLauncher();
    await runTransferStudy(plan, { jobs: 2, launch: second.launch });
    expect(second.started).toEqual(['t/scratch/seed0 (resume)']);
  });

  test('a failed pretraining run stops only the runs that load it', async () => {
    const plan = fakePlan(path.join(tmp, 'fake-fail'));
    const launcher = fakeLauncher(['pretrain/seed1']);
    const progress: number[] = [];
    const outcome = await runTransferStudy(plan, { jobs: 1, launch: launcher.launch, onProgress: (p) => progress.push(p.done) });
    expect(outcome.failed).toEqual([{ key: 'pretrain/seed1', exitCode: 3, logFile: `${path.join(plan.outDir, 'pretrain/seed1')}.log` }]);
    expect(outcome.skipped).toEqual(['t/frozen/seed1']);
    expect(outcome.finished.sort()).toEqual(['pretrain/seed0', 't/frozen/seed0', 't/scratch/seed0', 't/scratch/seed1']);
    expect(launcher.maxRunning()).toBe(1);
    expect(progress.at(-1)).toBe(4);
  });
});

test('troupe transfer runs a scratch-only study as separate train processes, then finds everything finished; the results are read back', async () => {
  const file = writeStudy({ ...SCRATCH_ONLY, targets: [{ id: 'combat-2a3b' }], target: { seeds: 2, total_env_steps: 400 } });
  const out = path.join(tmp, 'cli-study');
  const dry = runCli(['transfer', file, '--out', out, '--dry-run']);
  expect(dry.status).toBe(0);
  expect(dry.stdout).toMatch(/2 runs \(0 finished, 0 to resume, 2 new\)[\s\S]*new\s+target\/combat-2a3b\/scratch\/seed1/);
  const first = runCli(['transfer', file, '--out', out, '--jobs', '2'], { timeoutMs: 240000 });
  expect([first.status, first.stderr]).toEqual([0, '']);
  expect(first.stdout).toMatch(/2 of 2 runs finished\n[\s\S]*combat-2a3b: only scratch runs\.\nreport: .*report\.json, .*report\.md, .*curves\.svg/);
  expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/\| scratch \| 2/);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'runs', 'combat-2a3b', 'scratch', 'seed1', 'summary.json'), 'utf8')) as { seed: number; env_steps: number };
  expect(summary).toMatchObject({ seed: 1, env_steps: expect.any(Number) });
  expect(fs.existsSync(path.join(out, 'study.json'))).toBe(true);
  const results = await collectTransferResults(planTransferStudy(loadTransferStudy(file), file, out));
  expect(results.missing).toEqual([]);
  const seeds = results.targets['combat-2a3b'].scratch!;
  expect(seeds.map((s) => s.seed)).toEqual([0, 1]);
  // Evaluations every 400 env steps: at 400 (whole rounds) and at the end.
  expect(seeds[0].curve.map((p) => p.step)).toEqual([400]);
  expect(seeds[0].absolute).toMatchObject({ episodes: 20, value: expect.any(Number) });
  const again = runCli(['transfer', file, '--out', out]);
  expect(again.stdout).toMatch(/2 runs \(2 finished, 0 to resume, 0 new\)[\s\S]*2 of 2 runs finished/);
  expectCleanFailure(runCli(['transfer', file, '--jobs', '0']), /--jobs must be a positive integer, got '0'/);
  expectCleanFailure(runCli(['transfer', path.join(tmp, 'nope.yaml')]), /cannot read transfer study .*nope\.yaml: no such file/);
});

describe('the MTMA protocol', () => {
  test('all four conditions: frozen and finetune load the pretraining run of their seed (mod the pretraining seeds); matrix and baselines add runs', () => {
    const file = writeStudy({
      base: { algo: { name: 'mtma', use_rnn: false } },
      sources: [{ id: 'combat-3v3' }, { id: 'combat-2a3b' }],
      targets: [{ id: 'combat-4v5' }],
      pretrain: { seeds: 2, total_env_steps: 1000 },
      target: { seeds: 3, total_env_steps: 500, finetune_lr_scale: 0.2 },
      matrix: true,
      baselines: [{ name: 'qmix' }],
    });
    const out = path.join(tmp, 'mtma-plan');
    const plan = planTransferStudy(loadTransferStudy(file), file, out);
    const keys = plan.runs.map((r) => r.key);
    expect(keys.filter((k) => k.startsWith('pretrain'))).toEqual(['pretrain/seed0', 'pretrain/seed1', 'pretrain-combat-3v3/seed0', 'pretrain-combat-3v3/seed1', 'pretrain-combat-2a3b/seed0', 'pretrain-combat-2a3b/seed1']);
    const frozen2 = plan.runs.find((r) => r.key === 'target/combat-4v5/frozen/seed2')!;
    expect(frozen2.dependsOn).toEqual(['pretrain/seed0']);
    expect(frozen2.config.algo).toEqual({ name: 'mtma', use_rnn: false, transfer: { mode: 'frozen', decl_from: path.join(out, 'runs', 'pretrain', 'seed0') } });
    expect(plan.runs.find((r) => r.key === 'target/combat-4v5/finetune-from-combat-2a3b/seed1')).toMatchObject({
      dependsOn: ['pretrain-combat-2a3b/seed1'],
      pretraining: 'combat-2a3b',
      config: { algo: { transfer: { mode: 'finetune', finetune_lr_scale: 0.2 } } },
    });
    expect(plan.runs.find((r) => r.key === 'target/combat-4v5/random_frozen/seed0')).toMatchObject({ dependsOn: [], config: { algo: { transfer: { mode: 'random_frozen' } } } });
    // Baselines: each source at the per-task budget of the multi-task run, each target at the target budget.
    expect(plan.runs.find((r) => r.key === 'baseline/qmix/combat-3v3/seed2')).toMatchObject({ config: { algo: { name: 'qmix' }, run: { total_env_steps: 500 } } });
    expect(plan.runs.find((r) => r.key === 'baseline/qmix/combat-4v5/seed0')).toMatchObject({ baseline: { role: 'target' }, config: { run: { total_env_steps: 500 } } });
    // 6 pretraining, 3 seeds × (scratch + random_frozen + 3 × frozen + 3 × finetune), 3 × 3 baselines.
    expect(plan.runs.length).toBe(6 + 3 * 8 + 9);
    // baseline_seeds sets the baselines' seeds apart from the targets'.
    const fewer = planTransferStudy({ ...loadTransferStudy(file), baseline_seeds: 1 }, file, out);
    expect(fewer.runs.filter((r) => r.phase === 'baseline').map((r) => r.key)).toEqual(['baseline/qmix/combat-3v3/seed0', 'baseline/qmix/combat-2a3b/seed0', 'baseline/qmix/combat-4v5/seed0']);
  });

  test('configs/transfer/smoke.yaml: the whole protocol from the CLI, report and plots included', () => {
    const out = path.join(tmp, 'smoke');
    const result = runCli(['transfer', path.join(__dirname, '..', '..', 'configs', 'transfer', 'smoke.yaml'), '--out', out, '--jobs', '2'], { timeoutMs: 300000 });
    expect([result.status, result.stderr]).toEqual([0, '']);
    expect(result.stdout).toMatch(/10 of 10 runs finished/);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as { targets: Record<string, Record<string, { seeds: number; measures: Record<string, unknown> }>> };
    expect(Object.keys(report.targets['combat-4v5']).sort()).toEqual(['finetune', 'frozen', 'random_frozen', 'scratch']);
    for (const c of Object.values(report.targets['combat-4v5'])) expect(Object.keys(c.measures).sort()).toEqual(['absolute', 'auc', 'best', 'final', 'jumpstart', 'time_to_threshold']);
    for (const f of ['report.md', 'curves.svg', 'curves.png', 'profile.svg', 'profile.png']) expect(fs.existsSync(path.join(out, f))).toBe(true);
  });
});
