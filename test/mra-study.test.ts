import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { MraPopulationResult, MraRunEvaluation, MraScore } from '../runtime/training/mra-evaluation';
import { buildMraReport, formatProbability, mraReportMarkdown, outcomeOf, writeMraReport } from '../runtime/training/mra-report';
import {
  type MraPlan,
  type MraPlannedRun,
  MRA_EVALUATION_FILE,
  collectMraResults,
  loadMraStudy,
  mraStudySchema,
  planMraStudy,
  saveMraEvaluation,
  studyMethodOf,
} from '../runtime/training/mra-study';
import { expectCleanFailure, runCli } from './helpers/cli-run';
import { repoRoot } from './helpers/repo-root';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-mra-study-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let fileCount = 0;
function writeStudy(study: unknown): string {
  const file = path.join(tmp, `study-${fileCount++}.yaml`);
  fs.writeFileSync(file, typeof study === 'string' ? study : YAML.stringify(study));
  return file;
}

const STUDY = {
  method: 'mra',
  base: { algo: { name: 'mra', num_latents: 3, batch_size: 64 }, run: { num_envs: 2, eval_interval: 1000 } },
  train_populations: [2, 3],
  held_out_populations: [4, 5],
  seeds: 3,
  train: { total_env_steps: 3000 },
  evaluation: { episodes: 4, num_envs: 2, sweep_episodes: 2, adaptation: { steps: 2, episodes_per_step: 3, lr: 0.5 } },
  scratch: { budgets: [1, 10] },
  report: { bootstrap_reps: 500 },
};

/** A plan without run-config validation (the `mra` learner and `resource-N` envs need not be registered) and a known episode length. */
function planOf(study: unknown, dir: string, episodeLength = 20): MraPlan {
  const file = writeStudy(study);
  return planMraStudy(loadMraStudy(file), file, path.join(tmp, dir), { validate: false, episodeLength: () => ({ steps: episodeLength, from: 'default' }) });
}

describe('MRA study files', () => {
  test('defaults: unimodal baseline, 3 seeds, scratch at 1× and 10×, adaptation of the latent logits, fixed bootstrap', () => {
    const study = mraStudySchema.parse({ ...STUDY, seeds: undefined, scratch: undefined, report: undefined, unimodal: undefined });
    expect([study.unimodal, study.seeds, study.scratch.budgets]).toEqual([true, 3, [1, 10]]);
    expect(study.evaluation.adaptation).toEqual({ steps: 2, episodes_per_step: 3, lr: 0.5, params: ['latent_logits'], eval_every: 1 });
    expect(study.report).toEqual({ bootstrap_reps: 2000, bootstrap_seed: 0 });
  });

  test.each([
    ['an unknown key', { ...STUDY, sources: [{ id: 'combat-3v3' }] }, /\(top level\): unknown key\(s\) 'sources'/],
    ['a population of 0 agents', { ...STUDY, train_populations: [2, 0] }, /train_populations\.1: expected a number of agents N ≥ 1 \(the env resource-N\)/],
    ['a fractional population', { ...STUDY, held_out_populations: [4.5] }, /held_out_populations\.0: expected a whole number of agents N/],
    ['a population that is not a number', { ...STUDY, train_populations: ['three'] }, /train_populations\.0: expected a number of agents N/],
    ['a population listed twice', { ...STUDY, train_populations: [2, 3, 2] }, /train_populations\.2: population 2 is listed twice/],
    ['a held-out population that is also trained on', { ...STUDY, held_out_populations: [4, 3] }, /held_out_populations\.1: 3 is also a training population; held-out populations must be ones the MRA runs never train on/],
    ['another learner', { ...STUDY, base: { algo: { name: 'qmix', num_latents: 3 } } }, /base\.algo\.name: is 'qmix'; an MRA study trains the 'mra' learner/],
    ['no num_latents', { ...STUDY, base: { algo: { name: 'mra' } } }, /base\.algo\.num_latents: required in an MRA study/],
    ['one latent', { ...STUDY, base: { algo: { num_latents: 1 } } }, /base\.algo\.num_latents: is 1; expected a whole number ≥ 2/],
    ['a seed in base.run', { ...STUDY, base: { ...STUDY.base, run: { seed: 4 } } }, /base\.run\.seed: is set by the study/],
    ['an unknown adaptation parameter', { ...STUDY, evaluation: { ...STUDY.evaluation, adaptation: { ...STUDY.evaluation.adaptation, params: ['encoder'] } } }, /evaluation\.adaptation\.params\.0: Invalid enum value/],
    ['a missing section', { ...STUDY, train: undefined }, /train: required, missing/],
  ])('refuses %s, naming the file and the key', (_name, study, pattern) => {
    const file = writeStudy(study);
    let message = '';
    try {
      loadMraStudy(file);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`invalid MRA study ${file}`);
    expect(message).toMatch(pattern);
  });

  test('method: mra marks an MRA study; no method is an MTMA study; another method is refused', () => {
    expect(studyMethodOf(writeStudy(STUDY))).toBe('mra');
    expect(studyMethodOf(writeStudy({ base: { algo: { name: 'mtma' } } }))).toBe('mtma');
    expect(() => studyMethodOf(writeStudy({ ...STUDY, method: 'mtma' }))).toThrow(/method: is "mtma"; expected 'mra'/);
  });

  test('the configs in configs/mra load and plan', () => {
    const root = path.join(__dirname, '..', '..');
    for (const name of ['smoke', 'study']) {
      const file = path.join(root, 'configs', 'mra', `${name}.yaml`);
      expect(studyMethodOf(file)).toBe('mra');
      const plan = planMraStudy(loadMraStudy(file), file, path.join(tmp, `configs-${name}`), { validate: false });
      expect(plan.runs.length).toBeGreaterThan(0);
    }
    const smoke = planMraStudy(loadMraStudy(path.join(root, 'configs/mra/smoke.yaml')), 'smoke.yaml', path.join(tmp, 'smoke'), { validate: false, episodeLength: () => ({ steps: 20, from: 'default' }) });
    expect(smoke.runs.map((r) => r.key)).toHaveLength(8);
    expect(YAML.parse(fs.readFileSync(path.join(root, 'configs/mra/train.yaml'), 'utf8'))).toMatchObject({ algo: { name: 'mra', num_latents: 6 }, tasks: [{ id: 'resource-3' }, { id: 'resource-6' }, { id: 'resource-9' }] });
  });
});

describe('the plan', () => {
  test('per seed an MRA and a unimodal run on all training populations, and scratch runs per held-out N, seed and budget multiple', () => {
    const plan = planOf({ ...STUDY, seeds: 2, held_out_populations: [4], num_envs: 3 }, 'plan', 25);
    expect(plan.runs.map((r) => r.key)).toEqual([
      'mra/seed0',
      'mra/seed1',
      'unimodal/seed0',
      'unimodal/seed1',
      'scratch/resource-4/x1/seed0',
      'scratch/resource-4/x1/seed1',
      'scratch/resource-4/x10/seed0',
      'scratch/resource-4/x10/seed1',
    ]);
    for (const run of plan.runs) expect(run.dependsOn).toEqual([]);
    const [mra, , unimodal, , scratch1, , scratch10] = plan.runs;
    expect(mra).toMatchObject({
      phase: 'mra',
      seed: 0,
      dir: path.join(tmp, 'plan', 'runs', 'mra', 'seed0'),
      populations: [2, 3],
      config: {
        tasks: [{ id: 'resource-2', num_envs: 3 }, { id: 'resource-3', num_envs: 3 }],
        algo: { name: 'mra', num_latents: 3, batch_size: 64 },
        run: { num_envs: 2, eval_interval: 1000, seed: 0, total_env_steps: 3000 },
      },
    });
    expect(plan.runs[1].config.run).toMatchObject({ seed: 1 });
    expect(unimodal).toMatchObject({ phase: 'unimodal', dir: path.join(tmp, 'plan', 'runs', 'unimodal', 'seed0'), config: { algo: { name: 'mra', num_latents: 1, batch_size: 64 }, run: { total_env_steps: 3000 } } });
    // The adaptation budget: (3 latents × 2 sweep episodes + 2 steps × 3 episodes) × 25 steps = 300 env steps.
    expect(plan.adaptationBudgets).toEqual([{ numAgents: 4, episodeLength: 25, episodeLengthFrom: 'default', episodes: 12, envSteps: 300 }]);
    expect(scratch1).toMatchObject({
      phase: 'scratch',
      dir: path.join(tmp, 'plan', 'runs', 'scratch', 'resource-4', 'x1', 'seed0'),
      populations: [4],
      budgetMultiple: 1,
      config: { tasks: [{ id: 'resource-4', num_envs: 3 }], algo: { name: 'mra', num_latents: 3 }, run: { seed: 0, total_env_steps: 300 } },
    });
    expect(scratch10.config.run).toMatchObject({ seed: 0, total_env_steps: 3000 });
    // Evaluations: MRA adapts on held-out and training populations; the baselines do not adapt; one seed index, one evaluation seed.
    expect(mra.evaluation).toEqual({ populations: [4, 2, 3], episodes: 4, numEnvs: 2, seed: 'mra-evaluation/seed0', sweepEpisodes: 2, adaptation: { steps: 2, episodesPerStep: 3, lr: 0.5, params: ['latent_logits'], evalEvery: 1 } });
    expect(unimodal.evaluation).toMatchObject({ populations: [4, 2, 3], seed: 'mra-evaluation/seed0', adaptation: { steps: 0 } });
    expect(scratch1.evaluation).toMatchObject({ populations: [4], seed: 'mra-evaluation/seed0', adaptation: { steps: 0 } });
  });

  test('without the unimodal baseline, without scratch budgets; fractional multiples round to whole env steps', () => {
    expect(planOf({ ...STUDY, seeds: 1, unimodal: false, scratch: { budgets: [] } }, 'plan-bare').runs.map((r) => r.key)).toEqual(['mra/seed0']);
    const plan = planOf({ ...STUDY, seeds: 1, held_out_populations: [4], scratch: { budgets: [0.5] } }, 'plan-half', 20);
    // (3 × 2 + 2 × 3) × 20 = 240; half of it is 120.
    expect(plan.runs.at(-1)).toMatchObject({ key: 'scratch/resource-4/x0.5/seed0', config: { run: { total_env_steps: 120 } } });
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-made evaluations

function score(returnPerAgent: number, agentsPerResource = [0, 0, 1, 1, 1, 1]): MraScore {
  return { returnPerAgent, teamReturn: returnPerAgent * 4, occupied: 4, collisions: 0, episodes: 4, agentsPerResource };
}

/** A population as an MRA run reports it: zero-shot, the per-z sweep, the best z, and an adaptation curve ending at `adapted`. */
function populationResult(numAgents: number, trained: boolean, r: { zero: number; best: number; adapted: number }, latents: number): MraPopulationResult {
  const probs = Array.from({ length: latents }, () => 1 / latents);
  const steps = latents > 1 ? [r.zero, (r.zero + r.adapted) / 2, r.adapted] : [r.zero];
  return {
    numAgents,
    trained,
    latentProbs: probs,
    zeroShot: score(r.zero),
    perLatent: Array.from({ length: latents }, (_, z) => score(z === 0 ? r.best : r.zero, [z, 0, 0, 0, 0, numAgents - z])),
    bestLatent: { z: 0, score: score(r.best), envStepsUsed: 40 },
    adaptation: steps.map((value, step) => ({ step, episodesUsed: 3 * step, envStepsUsed: 60 * step, score: score(value), latentProbs: probs })),
  };
}

/** MRA clearly better than unimodal on resource-4 when adapted, tied zero-shot; clearly worse on resource-5. */
const MRA_SCORES: Record<number, Array<{ zero: number; best: number; adapted: number }>> = {
  4: [
    { zero: 0.1, best: 0.5, adapted: 0.8 },
    { zero: 0.2, best: 0.6, adapted: 0.9 },
    { zero: 0.3, best: 0.7, adapted: 1.0 },
  ],
  5: [
    { zero: 0.0, best: 0.1, adapted: 0.05 },
    { zero: 0.05, best: 0.1, adapted: 0.0 },
    { zero: 0.1, best: 0.1, adapted: 0.1 },
  ],
  2: [0, 1, 2].map(() => ({ zero: 0.5, best: 0.5, adapted: 0.5 })),
  3: [0, 1, 2].map(() => ({ zero: 0.5, best: 0.5, adapted: 0.5 })),
};
const UNIMODAL_SCORES: Record<number, number[]> = { 4: [0.1, 0.2, 0.3], 5: [0.5, 0.6, 0.7], 2: [0.4, 0.4, 0.4], 3: [0.4, 0.4, 0.4] };
const SCRATCH_SCORES: Record<string, number[]> = { '4/1': [0.0, 0.0, 0.1], '4/10': [2, 2, 2], '5/1': [0.0, 0.0, 0.0], '5/10': [0.05, 0.06, 0.07] };

function fakeEvaluation(run: MraPlannedRun): MraRunEvaluation {
  const latents = run.phase === 'unimodal' ? 1 : 3;
  const populations = run.evaluation.populations.map((n) => {
    const trained = run.populations.includes(n);
    if (run.phase === 'mra') return populationResult(n, trained, MRA_SCORES[n][run.seed], latents);
    const v = run.phase === 'unimodal' ? UNIMODAL_SCORES[n][run.seed] : SCRATCH_SCORES[`${n}/${run.budgetMultiple}`][run.seed];
    return populationResult(n, trained, { zero: v, best: v, adapted: v }, latents);
  });
  const training =
    run.phase === 'mra'
      ? run.populations.map((n) => ({ task: `resource-${n}`, numAgents: n, informationEstimate: 0.2 + 0.1 * run.seed, classifierAccuracy: 0.6 + 0.1 * run.seed }))
      : [];
  return { run: run.dir, numLatents: latents, trainedPopulations: run.populations, populations, training };
}

function finish(run: MraPlannedRun, summary: object = { interrupted: false }): void {
  fs.mkdirSync(run.dir, { recursive: true });
  fs.writeFileSync(path.join(run.dir, 'summary.json'), JSON.stringify(summary));
}

describe('evaluations of the finished runs', () => {
  test('each is saved beside its run and reused while the run is unchanged; unfinished runs are missing; a failed evaluation is recorded', async () => {
    const plan = planOf({ ...STUDY, seeds: 1, held_out_populations: [4], scratch: { budgets: [1] } }, 'evaluations');
    for (const run of plan.runs.slice(0, 2)) finish(run);
    const calls: string[] = [];
    const evaluate = async (dir: string) => {
      calls.push(dir);
      const run = plan.runs.find((r) => r.dir === dir)!;
      if (run.phase === 'unimodal') throw new Error('no checkpoint');
      return fakeEvaluation(run);
    };
    const first = await collectMraResults(plan, { evaluate });
    expect(calls).toEqual([plan.runs[0].dir, plan.runs[1].dir]);
    expect(first.runs.map((r) => [r.key, r.reused])).toEqual([['mra/seed0', false]]);
    expect(first.missing).toEqual(['scratch/resource-4/x1/seed0']);
    expect(first.failed).toEqual([{ key: 'unimodal/seed0', error: 'no checkpoint' }]);
    const saved = JSON.parse(fs.readFileSync(path.join(plan.runs[0].dir, MRA_EVALUATION_FILE), 'utf8'));
    expect(saved).toMatchObject({ format: 'troupe/mra-evaluation@1', run: 'mra/seed0', spec: plan.runs[0].evaluation, evaluation: { numLatents: 3 } });

    calls.length = 0;
    const second = await collectMraResults(plan, { evaluate });
    expect(calls).toEqual([plan.runs[1].dir]);
    expect(second.runs.map((r) => [r.key, r.reused])).toEqual([['mra/seed0', true]]);

    // Retrained (a new summary): evaluated again. Another evaluation spec: also again.
    finish(plan.runs[0], { interrupted: false, wallSeconds: 12 });
    calls.length = 0;
    await collectMraResults(plan, { evaluate });
    expect(calls).toEqual([plan.runs[0].dir, plan.runs[1].dir]);
    const changed = { ...plan, runs: plan.runs.map((r) => ({ ...r, evaluation: { ...r.evaluation, episodes: 99 } })) };
    calls.length = 0;
    await collectMraResults(changed, { evaluate });
    expect(calls).toEqual([plan.runs[0].dir, plan.runs[1].dir]);
  });
});

describe('the report', () => {
  let plan: MraPlan;
  beforeAll(() => {
    plan = planOf(STUDY, 'report');
    // Hand-made evaluations written to disk beside fake finished runs; nothing is trained or evaluated.
    for (const run of plan.runs) {
      finish(run);
      saveMraEvaluation(run, fakeEvaluation(run));
    }
  });

  async function report() {
    const results = await collectMraResults(plan, {
      evaluate: () => {
        throw new Error('every evaluation is saved: none should run');
      },
    });
    expect(results.failed).toEqual([]);
    expect(results.runs.every((r) => r.reused)).toBe(true);
    return buildMraReport(results, plan);
  }

  test('IQMs over seeds of the return per agent, with intervals, for every condition', async () => {
    const r = await report();
    const four = r.heldOut.find((h) => h.numAgents === 4)!;
    // Three seeds: the IQM is the mean.
    expect(four.conditions.mra_adapted!.estimate).toBeCloseTo(0.9, 10);
    expect(four.conditions.mra_adapted!.values).toEqual([0.8, 0.9, 1.0]);
    expect(four.conditions.mra_zero_shot!.estimate).toBeCloseTo(0.2, 10);
    expect(four.conditions.mra_best_z!.estimate).toBeCloseTo(0.6, 10);
    expect(four.conditions.unimodal!.estimate).toBeCloseTo(0.2, 10);
    expect(four.conditions.scratch_x1!.estimate).toBeCloseTo(1 / 30, 10);
    expect(four.conditions.scratch_x10!).toMatchObject({ estimate: 2, lower: 2, upper: 2 });
    // (3 latents × 2 sweep episodes + 2 steps × 3 episodes) × 20 = 240 env steps; scratch ×10 trained 2400.
    expect(four.adaptationBudget!.envSteps).toBe(240);
    expect(four.conditions.scratch_x10!.envStepsUsed).toBe(2400);
    for (const c of Object.values(four.conditions)) expect(c!.lower).toBeLessThanOrEqual(c!.estimate), expect(c!.upper).toBeGreaterThanOrEqual(c!.estimate);
    expect(four.adaptationCurve.map((p) => [p.step, p.envStepsUsed])).toEqual([[0, 0], [1, 60], [2, 120]]);
    expect(four.adaptationCurve[2].estimate).toBeCloseTo(0.9, 10);
    expect(r.trainedOn.map((t) => t.numAgents)).toEqual([2, 3]);
    expect(r.trainedOn[0].conditions.scratch_x1).toBeUndefined();
  });

  test('P(improvement) points the right way: a clear win, a clear loss, a tie', async () => {
    const r = await report();
    const poi = (n: number, better: string, than: string) => r.heldOut.find((h) => h.numAgents === n)!.comparisons.find((c) => c.better === better && c.than === than)!;
    expect(poi(4, 'mra_adapted', 'unimodal')).toEqual({ better: 'mra_adapted', than: 'unimodal', estimate: 1, lower: 1, upper: 1 });
    expect(poi(5, 'mra_adapted', 'unimodal')).toMatchObject({ estimate: 0, lower: 0, upper: 0 });
    const tie = poi(4, 'mra_zero_shot', 'unimodal');
    expect(tie.estimate).toBe(0.5);
    expect(tie.lower).toBeLessThan(0.5);
    expect(tie.upper).toBeGreaterThan(0.5);
    expect(poi(4, 'mra_adapted', 'scratch_x1').estimate).toBe(1);
    expect(poi(4, 'mra_adapted', 'scratch_x10').estimate).toBe(0);
  });

  test('verdicts say plainly: beats, is worse than, no clear difference', async () => {
    const r = await report();
    expect(r.verdicts).toHaveLength(2);
    const [four, five] = r.verdicts;
    expect(four).toMatch(/^resource-4 \(held out\): MRA adapted \(2 steps\) beats the unimodal baseline \(IQM return per agent 0\.900 vs 0\.200, P\(MRA adapted > unimodal zero-shot\) = 1\.000 \[1\.000, 1\.000\], 3 vs 3 seeds\)/);
    expect(four).toMatch(/MRA zero-shot shows no clear difference from the unimodal baseline \(IQM return per agent 0\.200 vs 0\.200, P\(MRA zero-shot > unimodal zero-shot\) = 0\.500 \[/);
    expect(four).toMatch(/MRA adapted \(2 steps\) beats scratch ×1 \(240 env steps of training\)/);
    expect(four).toMatch(/MRA adapted \(2 steps\) is worse than scratch ×10 \(2400 env steps of training\)/);
    expect(five).toMatch(/^resource-5 \(held out\): MRA adapted \(2 steps\) is worse than the unimodal baseline/);
    expect(five).toMatch(/MRA zero-shot is worse than the unimodal baseline/);
  });

  test('a claim needs the whole interval past ½, and bounds are never printed rounded across it', () => {
    expect(outcomeOf({ estimate: 0.9, lower: 0.5, upper: 1 })).toBe('shows no clear difference from');
    expect(outcomeOf({ estimate: 0.9, lower: 0.5001, upper: 1 })).toBe('beats');
    expect(outcomeOf({ estimate: 0.1, lower: 0, upper: 0.4999 })).toBe('is worse than');
    expect(formatProbability(0.5001)).toBe('0.5001');
    expect(formatProbability(0.4999)).toBe('0.4999');
    expect(formatProbability(0.5)).toBe('0.500');
    expect(formatProbability(0.8125)).toBe('0.813');
  });

  test('training evidence per training population (mean and min over seeds, chance) and the behaviour of each z', async () => {
    const r = await report();
    expect(r.training.map((t) => t.numAgents)).toEqual([2, 3]);
    expect(r.training[0].informationEstimate.mean).toBeCloseTo(0.3, 10);
    expect(r.training[0].informationEstimate.min).toBeCloseTo(0.2, 10);
    expect(r.training[0].classifierAccuracy.min).toBeCloseTo(0.6, 10);
    expect(r.training[0].chance).toBe(0.5);
    // 3 seeds × 4 populations × 3 latents.
    expect(r.behaviours).toHaveLength(36);
    expect(r.behaviours.find((b) => b.seed === 1 && b.numAgents === 4 && b.z === 2)).toMatchObject({ trained: false, agentsPerResource: [2, 0, 0, 0, 0, 2] });
    const md = mraReportMarkdown(r, 'fake');
    expect(md).toMatch(/## Verdicts\n\n- resource-4 \(held out\): MRA adapted \(2 steps\) beats the unimodal baseline/);
    expect(md).toMatch(/\| MRA adapted \(2 steps\) \| 0\.900 \[0\.800, 1\.000\] \| 0\.800, 0\.900, 1\.000 \| 4\.00 \| 0\.0 \| 120 \|/);
    expect(md).toMatch(/\| resource-2 \| 0\.300 \| 0\.200 \| 0\.700 \| 0\.600 \| 0\.500 \|/);
    expect(md).toMatch(/Adaptation budget: 12 episodes × 20 steps = 240 env steps/);
  });

  test('writes results.json, report.md and the plots', async () => {
    const r = await report();
    const files = await writeMraReport(r, plan.outDir, 'fake');
    expect(files.map((f) => path.basename(f))).toEqual(['results.json', 'report.md', 'adaptation.svg', 'adaptation.png', 'behaviours.svg', 'behaviours.png']);
    const results = JSON.parse(fs.readFileSync(path.join(plan.outDir, 'results.json'), 'utf8'));
    expect(results.heldOut[0].conditions.mra_adapted.values).toEqual([0.8, 0.9, 1.0]);
    expect(results.heldOut[0].conditions.unimodal.values).toEqual([0.1, 0.2, 0.3]);
    expect(fs.readFileSync(path.join(plan.outDir, 'behaviours.svg'), 'utf8')).toMatch(/^<svg/);
    expect(fs.readFileSync(path.join(plan.outDir, 'adaptation.svg'), 'utf8')).toMatch(/resource-4 \(held out\)/);
  }, 60000);

  test('missing and unevaluated runs are listed; no MRA evaluation, no verdict', async () => {
    const results = { runs: [], missing: ['mra/seed0'], failed: [{ key: 'mra/seed1', error: 'boom' }] };
    const r = buildMraReport(results, plan);
    expect(r.missing).toEqual(['mra/seed0', 'mra/seed1']);
    expect(r.verdicts[0]).toBe('resource-4 (held out): no evaluated MRA run, so no verdict.');
    expect(mraReportMarkdown(r, 'empty')).toMatch(/evaluation of mra\/seed1 failed: boom/);
  });
});

test('troupe transfer refuses --sources and --targets for an MRA study', () => {
  const file = writeStudy(STUDY);
  expectCleanFailure(runCli(['transfer', file, '--sources', 'resource-3', '--targets', 'resource-4', '--dry-run']), /is an MRA study \(method: mra\): --sources\/--targets apply to MTMA transfer studies only/);
  expectCleanFailure(runCli(['transfer', file, '--targets', 'resource-4']), /--sources\/--targets apply to MTMA transfer studies only/);
});

describe('the whole chain from the CLI (configs/mra/smoke.yaml)', () => {
  test('trains, evaluates held out, adapts, runs the baselines and writes results.json; a second run reuses everything', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-mra-smoke-'));
    const file = path.join(repoRoot(), 'configs', 'mra', 'smoke.yaml');
    const first = runCli(['transfer', file, '--out', out, '--jobs', '2'], { timeoutMs: 240_000 });
    expect(first.stderr).not.toMatch(/failed|Error/);
    expect(first.status).toBe(0);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as {
      heldOut: Array<{ numAgents: number; conditions: Record<string, { values: number[] }> }>;
    };
    const held = results.heldOut.find((h) => h.numAgents === 4)!;
    for (const condition of ['mra_zero_shot', 'mra_adapted', 'unimodal', 'scratch_x1', 'scratch_x10']) {
      expect(held.conditions[condition].values).toHaveLength(2);
      for (const v of held.conditions[condition].values) expect(Number.isFinite(v)).toBe(true);
    }
    for (const f of ['report.md', 'adaptation.svg', 'behaviours.svg']) expect(fs.existsSync(path.join(out, f))).toBe(true);
    // Everything is on disk: running again trains and evaluates nothing, and gives the same results.
    const again = runCli(['transfer', file, '--out', out, '--jobs', '2'], { timeoutMs: 120_000 });
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/8 runs \(8 finished, 0 to resume, 0 new\)/);
    expect(again.stdout).toMatch(/8 runs evaluated \(8 reused\)/);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'))).toEqual(results);
    // troupe eval rebuilds an MRA run and plays its own populations or any other resource-N.
    const run = path.join(out, 'runs', 'mra', 'seed0');
    const own = runCli(['eval', run, '--episodes', '2', '--json']);
    expect(own.status).toBe(0);
    const other = runCli(['eval', run, '--env', 'resource-7', '--episodes', '2', '--sample']);
    expect(other.status).toBe(0);
    expect(other.stdout).toMatch(/env resource-7/);
    expectCleanFailure(runCli(['eval', run, '--env', 'lbf-8x8-2p-2f-coop', '--episodes', '2']), /cannot act in 'lbf-8x8-2p-2f-coop'/, /entityObservation/);
  }, 300_000);
});
