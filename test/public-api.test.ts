import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as troupe from '../index';

/*
 * The package's public API, used as the README's "Use it as a library" section shows: train
 * from a config in code, load the trained policy for another number of envs, evaluate it.
 */

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-api-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('the entry exports the env API, policies, learners and the training loop', () => {
  for (const name of [
    'makeEnv', 'registerEnv', 'checkEnv', 'Box', 'Discrete', 'envShape', 'VectorEnv', 'experienceStream', 'taskExperienceStream',
    'evaluatePolicy', 'RandomPolicy', 'loadPolicy', 'buildPolicy', 'createLearner', 'runTraining', 'parseRunConfig', 'collectEpisodes',
    'loadDeclWeights', 'loadTransferStudy', 'planTransferStudy', 'runTransferStudy', 'collectTransferResults', 'buildTransferReport', 'writeTransferReport', 'writePlot',
  ]) {
    expect([name, typeof (troupe as Record<string, unknown>)[name]]).toEqual([name, 'function']);
  }
  expect(troupe.TRAINERS.flatMap((t) => t.algorithms.map((a) => a.name))).toEqual(['mappo', 'ippo', 'qmix', 'vdn', 'iql', 'sac', 'bc', 'mtma', 'meta_dt', 'mra']);
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { exports: Record<string, { types: string; default: string }> };
  expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
});

test('README example: train from code, then load the policy for 3 envs and evaluate it', async () => {
  // --- as in the README ---
  const { parseRunConfig, runTraining, loadPolicy, VectorEnv, evaluatePolicy, registerBuiltinEnvs, selectBackend } = troupe;
  registerBuiltinEnvs();
  const backend = await selectBackend('auto');
  const config = parseRunConfig(
    `env: { id: lbf-8x8-2p-2f-coop }
algo: { name: mappo, use_rnn: false, rollout_length: 25 }
run: { total_env_steps: 800, num_envs: 8, eval_episodes: 4 }`,
    'in-code config',
  );
  const summary = await runTraining({ config, outDir: path.join(root, 'lbf'), backend: { name: backend.backend, reason: backend.reason } });
  const policy = await loadPolicy(path.join(root, 'lbf'), { numEnvs: 3 });
  const vec = await VectorEnv.create({ env: { id: 'lbf-8x8-2p-2f-coop' }, numEnvs: 3, seed: 1 });
  const result = await evaluatePolicy(vec, policy, 10);
  await vec.close();
  policy.dispose();
  // --- end ---
  expect(summary.env_steps).toBe(800);
  expect(result.episodes).toBe(10);
  expect(Number.isFinite(result.meanReturn)).toBe(true);
}, 60000);
