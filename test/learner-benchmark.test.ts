import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../envs/builtin';
import { layoutFor } from '../envs/env-shape';
import { isRegistered, makeEnv, prepareEnv } from '../envs/registry';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import { parseRunConfig } from '../runtime/training/config-loader';
import { type BenchLearnerReport, LEARNER_CASES, algoCases, benchLearner, resolveLearnerCases } from '../runtime/training/learner-benchmark';
import { parseBackends } from '../scripts/commands/bench-learner';
import { trainerFor } from '../trainers/index';
import { taskOfLayout } from '../trainers/learner';
import { MtmaLearner, mtmaUpdateFlops } from '../trainers/mtma';
import { SpaceSampler, profileNextTimed, syntheticEpisode, timed } from '../trainers/synthetic-experience';

import { profiledMatmulFlops } from './helpers/profiled-flops';

const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');


describe('learner benchmark cases', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
    registerBuiltinEnvs();
  });

  test('the named cases are the issue\'s, each with a benchmark hook and registered envs', () => {
    expect(LEARNER_CASES.map((c) => c.name)).toEqual(['mappo-mlp', 'mappo-gru', 'ippo-mlp', 'ippo-gru', 'qmix-mlp', 'qmix-gru', 'vdn-mlp', 'vdn-gru', 'sac128', 'sac256', 'mtma', 'dt']);
    for (const c of LEARNER_CASES) {
      expect([c.name, trainerFor(c.algo).benchmark !== undefined]).toEqual([c.name, true]);
      for (const env of c.envs) expect([c.name, env, isRegistered(env)]).toEqual([c.name, env, true]);
    }
    const byName = Object.fromEntries(LEARNER_CASES.map((c) => [c.name, c]));
    expect(byName['mappo-gru']).toMatchObject({ algo: 'mappo', useRnn: true, hiddenDim: 64, envs: ['lbf-8x8-2p-2f-coop'] });
    expect(byName.sac256.config).toMatchObject({ hidden_dims: [256, 256], batch_size: 256, policy_frequency: 1 });
    expect(byName.mtma.envs).toHaveLength(2);
    expect(byName.dt.config).toMatchObject({ num_layers: 3, num_heads: 1, embed_dim: 128, horizon: 20, batch_size: 64, prompt: 'none' });
  });

  test('--cases resolves names in order, all by default, and names a bad value with the valid ones', () => {
    expect(resolveLearnerCases(undefined)).toEqual(LEARNER_CASES);
    expect(resolveLearnerCases('all')).toEqual(LEARNER_CASES);
    expect(resolveLearnerCases('sac256, qmix-gru').map((c) => c.name)).toEqual(['sac256', 'qmix-gru']);
    expect(() => resolveLearnerCases('qmix-mlp,qmix_gru')).toThrow(/unknown case 'qmix_gru' in --cases \(valid: all, mappo-mlp, mappo-gru, .*, dt\)/);
    expect(() => resolveLearnerCases(' , ')).toThrow(/names no case/);
  });

  test('--algos still builds algorithm × rnn cases on one env, and refuses an algorithm without a hook', () => {
    expect(algoCases('combat-3v3', ['ippo', 'vdn'], [false, true]).map((c) => [c.name, c.envs[0], c.useRnn])).toEqual([
      ['ippo-mlp', 'combat-3v3', false],
      ['ippo-gru', 'combat-3v3', true],
      ['vdn-mlp', 'combat-3v3', false],
      ['vdn-gru', 'combat-3v3', true],
    ]);
    expect(() => algoCases('lbf-8x8-2p-2f-coop', ['qmix', 'ppo'], [false])).toThrow(/unknown algo 'ppo'/);
  });

  test('--algos leaves out the use_rnn settings an algorithm has no case for', async () => {
    const report = await benchLearner({ backends: ['wasm'], cases: algoCases('reach', ['sac'], [false, true]), seconds: 0.05, repeats: 1, log: () => undefined });
    expect(report.backends[0].results.map((r) => r.case)).toEqual(['sac-mlp']);
    expect(report.settings.cases.map((c) => c.name)).toEqual(['sac-mlp']);
    await expect(benchLearner({ backends: ['wasm'], cases: algoCases('reach', ['sac'], [true]), seconds: 0.05, repeats: 1, log: () => undefined })).rejects.toThrow(/no benchmark case applies \(sac-gru\)/);
  });

  test('--backend: all is tensorflow and wasm, lists merge without repeats, auto stands alone', () => {
    expect(parseBackends(undefined)).toEqual(['auto']);
    expect(parseBackends('all')).toEqual(['tensorflow', 'wasm']);
    expect(parseBackends('all,cpu,wasm')).toEqual(['tensorflow', 'wasm', 'cpu']);
    expect(() => parseBackends('auto,wasm')).toThrow(/auto picks one backend/);
    expect(() => parseBackends('wasm,gpu')).toThrow(/unknown backend 'gpu'/);
  });

  test('a profiled timed call records exactly its own kernels, not work done right after it', async () => {
    const a = tf.ones([4, 4]);
    const profile = profileNextTimed();
    const ms = timed(() => {
      tf.tidy(() => tf.matMul(tf.add(a, 1), a));
    });
    const after = tf.mul(a, 2); // the case's untimed work after its update
    const info = await profile;
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(info.kernels.map((k) => k.name)).toEqual(['Add', 'BatchMatMul']);
    // The next timed call is not profiled again.
    const next = timed(() => tf.dispose(tf.sub(a, 1)));
    expect(next).toBeGreaterThanOrEqual(0);
    tf.dispose([a, after]);
  });

  test('a tiny run counts kernels per update, measures each case, and leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const report = await benchLearner({ backends: ['wasm'], cases: resolveLearnerCases('vdn-mlp,sac128'), seconds: 0.05, repeats: 1, log: (l) => lines.push(l) });
    expect(tf.memory().numTensors).toBe(before);
    expect(report.skipped).toEqual([]);
    expect(report.backends).toHaveLength(1);
    const [b] = report.backends;
    expect(b.backend).toBe('wasm');
    expect(b.results.map((r) => r.case)).toEqual(['vdn-mlp', 'sac128']);
    for (const r of b.results) {
      expect(r.kernelsPerUpdate).toBeGreaterThan(0);
      expect(Object.values(r.kernelsByName).reduce((x, y) => x + y, 0)).toBe(r.kernelsPerUpdate);
      // Most frequent kernel first.
      const counts = Object.values(r.kernelsByName);
      expect([...counts].sort((x, y) => y - x)).toEqual(counts);
      expect(r.msPerUpdate).toBeGreaterThan(0);
      expect(r.updatesTimed).toBeGreaterThanOrEqual(1);
      expect(r.gflops).toBeCloseTo(r.flopsPerUpdate / (r.msPerUpdate * 1e6));
    }
    expect(lines.some((l) => /backend wasm: wasm/.test(l))).toBe(true);
  });

  test('kernel counts are the update\'s only: the MAPPO case acts its next chunk outside the count', async () => {
    await prepareEnv('lbf-8x8-2p-2f-coop');
    const env = makeEnv<unknown, unknown>('lbf-8x8-2p-2f-coop');
    const layout = layoutFor(env, 8);
    const task = taskOfLayout(layout, 'lbf-8x8-2p-2f-coop', { id: 'lbf-8x8-2p-2f-coop' });
    const settings = { numEnvs: 8, rolloutLength: 50, hiddenDim: 16, seed: 0 };
    const c = await trainerFor('ippo').benchmark!({ algo: 'ippo', task, settings, useRnn: false, sampler: new SpaceSampler(env, layout, new Rng(5)), backend: 'wasm' });
    try {
      await c!.update();
      const seam = profileNextTimed();
      await c!.update();
      const updateOnly = (await seam).kernels.length;
      const whole = (await tf.profile(async () => void (await c!.update()))).kernels.length;
      // Acting the next 50-step chunk runs the policy at least once per step.
      expect(whole - updateOnly).toBeGreaterThanOrEqual(50);
      const again = profileNextTimed();
      await c!.update();
      expect((await again).kernels.length).toBe(updateOnly);
    } finally {
      c!.dispose();
    }
  });

  test('--backend all runs each backend in its own process; one that does not load is listed as skipped with the reason', () => {
    const res = spawnSync(process.execPath, [cli, 'bench', 'learner', '--json', '--backend', 'all', '--cases', 'vdn-mlp', '--seconds', '0.05', '--repeats', '2'], {
      encoding: 'utf8',
      timeout: 120000,
    });
    expect(res.status).toBe(0);
    const report = JSON.parse(res.stdout) as BenchLearnerReport;
    let nodeBinding = true;
    try {
      require.resolve('@tensorflow/tfjs-node');
    } catch {
      nodeBinding = false;
    }
    if (!nodeBinding) {
      expect(report.skipped).toEqual([{ backend: 'tensorflow', reason: expect.stringMatching(/@tensorflow\/tfjs-node did not load/) }]);
      expect(report.backends.map((b) => b.backend)).toEqual(['wasm']);
    } else {
      expect([...report.backends.map((b) => b.backend), ...report.skipped.map((s) => s.backend)].sort()).toEqual(['tensorflow', 'wasm']);
    }
    const wasm = report.backends.find((b) => b.backend === 'wasm')!;
    expect(wasm.results[0]).toMatchObject({ case: 'vdn-mlp', updatesTimed: expect.any(Number) });
    expect(wasm.results[0].kernelsPerUpdate).toBeGreaterThan(0);
  });

  test.each([false, true])('MTMA\'s FLOP model equals the profiled matmul FLOPs (two tasks, use_rnn %s)', async (rnn) => {
    const tasks = [];
    const samplers: SpaceSampler[] = [];
    for (const [i, id] of ['combat-3v3', 'combat-2a3b'].entries()) {
      await prepareEnv(id);
      const env = makeEnv<unknown, unknown>(id);
      const layout = layoutFor(env, 1);
      tasks.push({ ...taskOfLayout(layout, id, { id }), index: i });
      samplers.push(new SpaceSampler(env, layout, new Rng(i)));
    }
    const config = parseRunConfig(`tasks: [{id: combat-3v3}, {id: combat-2a3b}]\nalgo: {name: mtma, rnn_hidden_dim: 8, decl_hidden_dim: 4, use_rnn: ${rnn}, batch_size: 2}`, 'test');
    const learner = new MtmaLearner({ tasks, config: config.algo as MtmaLearner['config'], seed: 0 });
    try {
      tasks.forEach((t, k) => {
        for (let i = 0; i < 2; i++) learner.parts[k].replay.insert(syntheticEpisode(t.shape, samplers[k]));
      });
      const profile = await tf.profile(() => learner.update());
      // The DecL's last layer (width 1) runs as multiply-and-sum, not a matmul: per task its
      // online forward, input and weight gradients and the target's forward, over every candidate row.
      let lastLayer = 0;
      for (const t of tasks) lastLayer += 4 * 2 * 4 * (t.shape.maxEpisodeSteps + 1) * 2 * t.shape.numAgents * t.shape.numActions;
      expect(profiledMatmulFlops(profile.kernels)).toBe(mtmaUpdateFlops(learner) - lastLayer);
    } finally {
      learner.dispose();
    }
  });

  test('the dt case\'s FLOP model equals the profiled matmul FLOPs, and its tokens are B·3K', async () => {
    await prepareEnv('reach');
    const env = makeEnv<unknown, unknown>('reach');
    const layout = layoutFor(env, 1);
    const task = taskOfLayout(layout, 'reach', { id: 'reach' });
    const dt = LEARNER_CASES.find((c) => c.name === 'dt')!;
    const config = { ...dt.config, embed_dim: 8, num_layers: 1, horizon: 4, batch_size: 2 };
    const c = await trainerFor('meta_dt').benchmark!({ algo: 'meta_dt', task, settings: { numEnvs: 1, rolloutLength: 1, hiddenDim: 8, seed: 0 }, useRnn: false, sampler: new SpaceSampler(env, layout, new Rng(7)), backend: 'wasm', config });
    try {
      expect(c!.tokensPerUpdate).toBe(2 * 3 * 4);
      const profile = profileNextTimed();
      await c!.update();
      // The return embedding (width 1 → embed) runs as a broadcast multiply, not a matmul: its
      // forward and weight gradient, 2·B·K·embed FLOPs each, are in the model only.
      const returnEmbedding = 2 * (2 * 2 * 4 * 8);
      expect(profiledMatmulFlops((await profile).kernels)).toBe(c!.flopsPerUpdate - returnEmbedding);
    } finally {
      c!.dispose();
    }
  });
});
