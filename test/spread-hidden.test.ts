import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { expertPolicyFor } from '../agents/policies/experts/expert-policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import { checkEnv, formatCheckReport } from '../envs/checker';
import type { SpreadEnv } from '../envs/gridworld/spread';
import { parseSpreadHiddenOptions } from '../envs/gridworld/spread-hidden';
import { envTaskFamily, makeEnv } from '../envs/registry';
import { selectBackend } from '../runtime/core/tf-backend';
import { evaluatePolicy } from '../runtime/rollout/evaluation';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { RandomPolicy } from '../agents/policies/random-policy';
import { parseRunConfig } from '../runtime/training/config-loader';
import { resolveDatasetSet } from '../runtime/training/dataset-sets';
import { TASK_INFERENCE_FILE, runTraining } from '../runtime/training/training-run';
import type { TaskInferenceResults } from '../runtime/training/task-inference-evaluation';

/*
 * `spread-hidden-N`: the multi-agent task family for offline meta-RL — landmarks fixed per
 * task and hidden from the agents — its scripted team, and Meta-DT on it (every agent a sequence
 * of its own, sharing the weights).
 */

beforeAll(() => registerBuiltinEnvs());

describe('spread-hidden-N', () => {
  test('passes the env checker and hides the landmarks from the observations, not from the state', () => {
    const report = checkEnv(() => makeEnv('spread-hidden-3', { task: 7 }), { seed: 1 });
    expect(report.passed ? '' : formatCheckReport(report)).toBe('');
    const env = makeEnv('spread-hidden-3', { task: 7 }) as unknown as SpreadEnv;
    const { observations } = env.reset({ seed: 3 });
    // own move (2), own position (2), two others (4): 2N + 2.
    expect(observations[env.possibleAgents[0]]).toHaveLength(8);
    const { landmarks } = parseSpreadHiddenOptions({ numAgents: 3, task: 7 });
    const state = env.state();
    const scale = 1 / (env.config.gridSize - 1);
    expect(Array.from(state.subarray(12, 18))).toEqual(landmarks.flatMap(([r, c]) => [r * scale, c * scale]).map((v) => Math.fround(v)));
    expect(() => env.reset({ seed: 1, options: { layout: { agents: [[0, 0], [0, 1], [0, 2]], landmarks: [[1, 1], [1, 2], [1, 3]] } } })).toThrow(/cannot move the landmarks, which this task fixes/);
  });

  test('a task fixes its landmarks in every episode; agents start anywhere', () => {
    const env = makeEnv('spread-hidden-2', { task: 3 }) as unknown as SpreadEnv;
    const starts = new Set<string>();
    const landmarkSets = new Set<string>();
    for (let seed = 0; seed < 10; seed++) {
      env.reset({ seed });
      const s = env.state();
      starts.add(Array.from(s.subarray(0, 4)).join());
      landmarkSets.add(Array.from(s.subarray(8, 12)).join());
    }
    expect(landmarkSets.size).toBe(1);
    expect(starts.size).toBeGreaterThan(5);
    const other = makeEnv('spread-hidden-2', { task: 4 }) as unknown as SpreadEnv;
    other.reset({ seed: 0 });
    expect(Array.from(other.state().subarray(8, 12)).join()).not.toBe([...landmarkSets][0]);
  });

  test('its task family: 50 layouts, 45 train / 5 test, parameters the landmarks; bad options named', () => {
    const family = envTaskFamily('spread-hidden-3')!;
    expect(family).toHaveLength(50);
    expect(family.filter((m) => m.split === 'test').map((m) => m.key)).toEqual(['task45', 'task46', 'task47', 'task48', 'task49']);
    expect(family[7].options).toMatchObject({ task: 7 });
    expect((family[7].parameters.landmarks as number[]).length).toBe(6);
    expect(() => envTaskFamily('spread-hidden-3', { task: 2 })).toThrow(/option 'task' picks one task, but the task family lists them all/);
    expect(() => makeEnv('spread-hidden-3', { task: 50 })).toThrow(/invalid option 'task' = 50: task indices run from 0 to numTasks − 1 = 49/);
    expect(() => makeEnv('spread-hidden-3', { landmarks: 1 })).toThrow(/unknown option 'landmarks'/);
  });

  test('the scripted team covers the hidden landmarks; noise is a random-action probability', async () => {
    const vec = await VectorEnv.create({ env: { id: 'spread-hidden-3', options: { task: 11 } }, numEnvs: 5, seed: 2 });
    try {
      const expert = await evaluatePolicy(vec, expertPolicyFor('spread-hidden-3', vec.layout, { envOptions: { task: 11 }, seed: 1 }), 40);
      const random = await evaluatePolicy(vec, new RandomPolicy(vec.layout, 5), 40);
      expect(expert.successRate).toBeGreaterThan(0.9);
      expect(expert.meanReturn).toBeGreaterThan(random.meanReturn + 10);
      expect(() => expertPolicyFor('spread-hidden-3', vec.layout, { envOptions: { task: 11 }, noise: 1.5 })).toThrow(/noise is the probability of a random action, in \[0, 1\]/);
    } finally {
      await vec.close();
    }
  });
});

describe('Meta-DT on spread-hidden-2', () => {
  let root: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-spread-hidden-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('collects, trains with discrete actions and per-agent sequences, and evaluates every mode', async () => {
    fs.writeFileSync(
      path.join(root, 'collect.yaml'),
      YAML.stringify({ env: { id: 'spread-hidden-2' }, tasks: ['task00', 'task01', 'task45'], policies: [{ policy: 'random', episodes: 2 }, { policy: 'expert', noise: 0.2, episodes: 2 }], quality: 'mixed', num_envs: 2 }),
    );
    const text = YAML.stringify({
      datasets: { dir: path.join(root, 'data'), collect: path.join(root, 'collect.yaml') },
      algo: { name: 'meta_dt', world_model_steps: 10, world_model_batch_size: 16, context_hidden_dim: 16, decoder_hidden_dims: [16], horizon: 4, embed_dim: 16, num_layers: 1, batch_size: 8, warmup_steps: 5, warm_train_steps: 5, prompt_length: 3, context_horizon: 2, few_shot_rollouts: 1 },
      run: { seed: 1, total_gradient_steps: 25, num_envs: 2, log_interval: 5, eval_interval: 25, eval_episodes: 2, checkpoint_interval: 25 },
    });
    const outDir = path.join(root, 'run');
    const summary = await runTraining({ config: await resolveDatasetSet(parseRunConfig(text, 'spread-hidden meta-dt')), outDir, backend: { name: 'wasm', reason: 'test' } });
    expect(summary.grad_steps).toBe(25);
    const results = JSON.parse(fs.readFileSync(path.join(outDir, TASK_INFERENCE_FILE), 'utf8')) as TaskInferenceResults;
    expect(results.tasks.task45.split).toBe('test');
    for (const mode of ['zero-shot', 'few-shot', 'demo'] as const) expect(results.tasks.task45[mode]!.episodes).toBe(2);
    expect(results.probe).toMatchObject({ target: ['landmarks[0]', 'landmarks[1]', 'landmarks[2]', 'landmarks[3]'] });
  }, 120000);
});
