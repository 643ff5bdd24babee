import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../envs/builtin';
import { makeEnv, prepareEnv } from '../envs/registry';
import { layoutFor } from '../envs/env-shape';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import { parseRunConfig } from '../runtime/training/config-loader';
import type { BenchLearnerReport } from '../runtime/training/learner-benchmark';
import { createLearner } from '../trainers/index';
import { taskOfLayout } from '../trainers/learner';
import { Mappo, mappoUpdateFlops } from '../trainers/mappo';
import { QLearner, qUpdateFlops } from '../trainers/qmix';
import { Sac, sacUpdateFlops } from '../trainers/sac';
import { SpaceSampler, SyntheticChunks, syntheticEpisode } from '../trainers/synthetic-experience';

import { profiledMatmulFlops } from './helpers/profiled-flops';

const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');


describe('bench learner', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
    registerBuiltinEnvs();
  });

  // The model must count exactly the matmuls an update runs, or GFLOP/s would drift from the truth
  // whenever a trainer changes; tfjs's profiler lists every kernel with its shapes.
  test.each([
    ['lbf-8x8-2p-2f-coop', 'mappo', false, 1],
    ['lbf-8x8-2p-2f-coop', 'mappo', true, 2],
    ['combat-3v3', 'ippo', true, 1],
  ] as const)('FLOP model equals the profiled matmul FLOPs: %s %s rnn=%s minibatches=%d', async (id, algo, rnn, minibatches) => {
    const env = makeEnv<unknown, unknown>(id);
    const layout = layoutFor(env, 3);
    const config = parseRunConfig(
      `env: {id: ${id}}\nalgo: {name: ${algo}, hidden_dim: 8, use_rnn: ${rnn}, rollout_length: 7, epochs: 2, num_minibatches: ${minibatches}, obs_last_action: true}\nrun: {num_envs: 3}`,
      'test',
    );
    const trainer = createLearner({ config: config.algo, tasks: [taskOfLayout(layout)], seed: 0 });
    expect(trainer).toBeInstanceOf(Mappo);
    const m = trainer as Mappo;
    try {
      const chunks = new SyntheticChunks(layout, 3, m.policy, new SpaceSampler(env, layout, new Rng(1)));
      const chunk = await chunks.next(7);
      expect(Object.keys(chunk.extras).sort()).toEqual(rnn ? ['h', 'last_action', 'logp', 'value'] : ['last_action', 'logp', 'value']);
      const profile = await tf.profile(() => void m.observe(chunk, 0));
      expect(profiledMatmulFlops(profile.kernels)).toBe(mappoUpdateFlops(m, 7, chunk.finals.length));
    } finally {
      m.dispose();
    }
  });

  test.each([
    ['qmix', true],
    ['vdn', false],
    ['iql', true],
  ] as const)('FLOP model equals the profiled matmul FLOPs: %s rnn=%s', async (algo, rnn) => {
    const env = makeEnv<unknown, unknown>('lbf-8x8-2p-2f-coop');
    const layout = layoutFor(env, 1);
    const config = parseRunConfig(`env: {id: lbf-8x8-2p-2f-coop}\nalgo: {name: ${algo}, hidden_dim: 8, use_rnn: ${rnn}, batch_size: 3}`, 'test');
    const q = createLearner({ config: config.algo, tasks: [taskOfLayout(layout)], seed: 0 }) as QLearner;
    try {
      const sampler = new SpaceSampler(env, layout, new Rng(2));
      for (let i = 0; i < 3; i++) q.replay.insert(syntheticEpisode(layout, sampler));
      const profile = await tf.profile(() => void q.update());
      let expected = qUpdateFlops(q, 3, layout.maxEpisodeSteps);
      // The mixer's per-row products run as multiply-and-sum, not matmul kernels: forward,
      // backward (2×) and the target mixer's forward, over T·B rows.
      if (q.mixer) expected -= 8 * layout.maxEpisodeSteps * 3 * (layout.numAgents * q.mixer.spec.embedDim + q.mixer.spec.embedDim);
      expect(profiledMatmulFlops(profile.kernels)).toBe(expected);
    } finally {
      q.dispose();
    }
  });

  test('FLOP model equals the profiled matmul FLOPs: sac, one critic step and one actor step', async () => {
    await prepareEnv('reach');
    const env = makeEnv<unknown, unknown>('reach');
    const layout = layoutFor(env, 1);
    const config = parseRunConfig('env: {id: reach}\nalgo: {name: sac, hidden_dims: [16, 8], batch_size: 5, learning_starts: 0, policy_frequency: 1, autotune: false}', 'test');
    const sac = createLearner({ config: config.algo, tasks: [taskOfLayout(layout)], seed: 0 }) as Sac;
    try {
      const sampler = new SpaceSampler(env, layout, new Rng(3));
      const obs = sampler.obs(10);
      for (let i = 0; i < 10; i++) sac.replay.add(obs, i * layout.obsDim, new Float32Array(layout.actDim), 0, 0, obs, i * layout.obsDim, false, 0, 0);
      const profile = await tf.profile(() => void sac.update());
      // The critics' input gradients at their single-output last layer run as a broadcast multiply,
      // not matmul (in the critic step and the actor step, 2 critics each), and in the actor step
      // their first layer's input gradient is taken towards the action columns only.
      const lastLayer = 2 * 8 * 1 * 5;
      const firstLayerObsRows = 2 * sac.inputDim * 16 * 5;
      const expected = sacUpdateFlops(sac, 5, 1, 1) - lastLayer * (2 + 2) - 2 * firstLayerObsRows;
      expect(profiledMatmulFlops(profile.kernels)).toBe(expected);
    } finally {
      sac.dispose();
    }
  });

  test('the CLI reports machine, matmul peak, kernel counts and positive finite throughput per case as JSON', () => {
    const res = spawnSync(process.execPath, [cli, 'bench', 'learner', '--json', '--seconds', '0.05', '--repeats', '1', '--backend', 'wasm', '--cases', 'qmix-mlp,sac128'], {
      encoding: 'utf8',
      timeout: 120000,
      env: { ...process.env, TF_NUM_INTRAOP_THREADS: '2', TF_ENABLE_ONEDNN_OPTS: undefined, TF_NUM_INTEROP_THREADS: undefined, OMP_NUM_THREADS: undefined },
    });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const report = JSON.parse(res.stdout) as BenchLearnerReport;
    expect(report.machine).toMatchObject({ node: process.version });
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.settings).toMatchObject({ numEnvs: 8, rolloutLength: 50, repeats: 1 });
    expect(report.settings.cases.map((c) => [c.name, c.algo, c.envs, c.hiddenDim])).toEqual([
      ['qmix-mlp', 'qmix', ['lbf-8x8-2p-2f-coop'], 64],
      ['sac128', 'sac', ['reach'], 128],
    ]);
    expect(report.settings.cases[1].layout).toMatchObject({ obsDim: 39, actDim: 4 });
    expect(report.skipped).toEqual([]);
    expect(report.backends.map((b) => b.backend)).toEqual(['wasm']);
    const [wasm] = report.backends;
    // The user's TF_NUM_INTRAOP_THREADS stays; the CLI fills in the other tfjs-node defaults.
    expect(wasm.threadingEnv).toEqual({ TF_NUM_INTRAOP_THREADS: '2', TF_ENABLE_ONEDNN_OPTS: '1', TF_NUM_INTEROP_THREADS: '1', OMP_NUM_THREADS: '1' });
    expect(wasm.matmul.sizes.map((s) => s.n)).toEqual([256, 512]);
    const positive = (x: number) => Number.isFinite(x) && x > 0;
    for (const s of wasm.matmul.sizes) expect(positive(s.gflops) && positive(s.msPerMatmul)).toBe(true);
    expect(wasm.matmul.peakGflops).toBe(Math.max(...wasm.matmul.sizes.map((s) => s.gflops)));
    expect(wasm.results.map((r) => r.case)).toEqual(['qmix-mlp', 'sac128']);
    for (const r of wasm.results) {
      for (const key of ['msPerUpdate', 'samplesPerUpdate', 'samplesPerSec', 'gradientStepsPerUpdate', 'samplePassesPerSec', 'flopsPerUpdate', 'gflops', 'percentOfPeak', 'updatesTimed', 'kernelsPerUpdate'] as const) {
        expect([key, positive(r[key])]).toEqual([key, true]);
      }
      expect(r.samplesPerSec).toBeCloseTo((r.samplesPerUpdate * 1000) / r.msPerUpdate);
      expect(r.percentOfPeak).toBeCloseTo((100 * r.gflops) / wasm.matmul.peakGflops);
      // The by-name counts add up to the total, and the matmuls are among them.
      expect(Object.values(r.kernelsByName).reduce((a, b) => a + b, 0)).toBe(r.kernelsPerUpdate);
      expect((r.kernelsByName.BatchMatMul ?? 0) + (r.kernelsByName._FusedMatMul ?? 0)).toBeGreaterThan(0);
      expect(r.tokensPerUpdate).toBeUndefined();
    }
    const [qmix, sac] = wasm.results;
    expect(qmix.samplesPerUpdate).toBe(32 * 50 * 2); // B·T·A
    expect(sac.samplesPerUpdate).toBe(256); // one critic step's batch: PyTorch's update
    expect(sac.gradientStepsPerUpdate).toBe(3); // critic, actor, α
    expect(report.flopModel).toMatch(/estimate/);
  });

  test('bad options fail before any measuring, naming the value and the valid ones', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'bench', 'learner', ...args], { encoding: 'utf8', timeout: 30000 });
    const badAlgo = run('--algos', 'mappo,ppo');
    expect(badAlgo.status).toBe(1);
    expect(badAlgo.stderr).toMatch(/unknown algo 'ppo'/);
    const badCase = run('--cases', 'qmix-mlp,qmix-lstm');
    expect(badCase.status).toBe(1);
    expect(badCase.stderr).toMatch(/unknown case 'qmix-lstm' in --cases \(valid: all, mappo-mlp, .*sac256, mtma, dt\)/);
    const badBackend = run('--backend', 'wasm,webgpu');
    expect(badBackend.status).toBe(1);
    expect(badBackend.stderr).toMatch(/unknown backend 'webgpu' in --backend \(valid: auto, all, tensorflow, wasm, cpu/);
    const both = run('--cases', 'qmix-mlp', '--algos', 'qmix');
    expect(both.status).toBe(1);
    expect(both.stderr).toMatch(/either --cases or --algos/);
  });
});
