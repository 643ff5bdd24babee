import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Packr } from 'msgpackr';
import { loadPolicy } from '../agents/load-policy';
import type { Policy, PolicyBatch } from '../agents/policies/policy';
import { RandomPolicy } from '../agents/policies/random-policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import { shapeOf } from '../envs/env-shape';
import { readCheckpoint } from '../runtime/core/checkpoint';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { selectBackend } from '../runtime/core/tf-backend';
import { collectEpisodes } from '../runtime/rollout/collect-episodes';
import { evaluatePolicy } from '../runtime/rollout/evaluation';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { parseRunConfig } from '../runtime/training/config-loader';
import { type TrainingRunOptions, runTraining } from '../runtime/training/training-run';
import { type OfflineDataset, checkEpisode, readDataset, writeDataset } from '../trainers/dataset';

/*
 * The loop driven by gradient steps: behaviour cloning on a dataset recorded from a scripted
 * expert on the point-reach fixture, with the same logging, evaluation, checkpoints and exact
 * resume as online runs.
 */

const POINT_REACH = { id: 'point-reach', module: path.join(__dirname, 'fixtures', 'point-reach-env.js'), options: { numAgents: 2 } };

/** Moves straight at the goal: obs is [position, goal − position]. */
const expert: Policy = {
  act(batch: PolicyBatch, actions: Float32Array) {
    const { numEnvs: E, numAgents: A, obsDim } = batch.layout;
    for (let i = 0; i < E * A; i++) {
      if (!batch.alive[i]) continue;
      for (let d = 0; d < 2; d++) actions[i * 2 + d] = Math.max(-1, Math.min(1, 5 * batch.obs[i * obsDim + 2 + d]));
    }
  },
};

let root: string;
let datasetFile: string;
let dataset: OfflineDataset;
beforeAll(async () => {
  registerBuiltinEnvs();
  await selectBackend('wasm');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-offline-'));
  const vec = await VectorEnv.create({ env: POINT_REACH, numEnvs: 4, seed: 11 });
  try {
    const episodes = await collectEpisodes(vec, expert, 40);
    dataset = {
      header: { env: POINT_REACH, shape: shapeOf(vec.layout), task: 'point-reach', policy: 'expert', quality: 'expert', seed: '11', createdAt: new Date(0).toISOString() },
      episodes,
    };
  } finally {
    await vec.close();
  }
  datasetFile = path.join(root, 'expert.msgpack');
  await writeDataset(datasetFile, dataset);
}, 60000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const config = (over: string[] = []) =>
  parseRunConfig(
    `env: ${JSON.stringify(POINT_REACH)}\ndataset: ${JSON.stringify(datasetFile)}\nalgo: { name: bc, hidden_dim: 32, batch_size: 64, lr: 0.003 }\nrun: { seed: 2, total_gradient_steps: 600, num_envs: 8, log_interval: 100, eval_interval: 300, eval_episodes: 16, checkpoint_interval: 200 }\n`,
    'test',
    over,
  );

let count = 0;
async function train(over: string[] = [], extra: Partial<TrainingRunOptions> = {}) {
  const outDir = extra.outDir ?? path.join(root, `run-${count++}`);
  const summary = await runTraining({ config: config(over), outDir, backend: { name: 'wasm', reason: 'test' }, ...extra });
  return { outDir, summary, metrics: MetricsLog.read(path.join(outDir, 'metrics.jsonl')) };
}

const withoutClock = (records: MetricsRecord[]) => records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));

describe('datasets', () => {
  test('collected episodes round-trip through a file', async () => {
    const back = await readDataset(datasetFile);
    expect(back.header).toEqual({ ...dataset.header, taskParameters: null, split: null });
    expect(back.episodes).toHaveLength(40);
    const ep = back.episodes[0];
    // 20 steps of 2 agents; observations include the final one.
    expect(ep.rewards).toHaveLength(40);
    expect(ep.obs).toHaveLength(21 * 2 * 4);
    expect(ep.actions).toEqual(dataset.episodes[0].actions);
    expect(ep.terminated).toBe(0);
    expect(ep.success).toBe(dataset.episodes[0].success);
  });

  test('bad files are refused naming the file and field', async () => {
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    const raw = packr.unpack(fs.readFileSync(datasetFile)) as Record<string, unknown>;
    const write = (name: string, value: unknown) => {
      const file = path.join(root, name);
      fs.writeFileSync(file, packr.pack(value));
      return file;
    };
    await expect(readDataset(path.join(root, 'missing.msgpack'))).rejects.toThrow(/dataset .*missing\.msgpack does not exist/);
    await expect(readDataset(write('foreign.msgpack', { hello: 1 }))).rejects.toThrow(/foreign\.msgpack is not a troupe dataset/);
    await expect(readDataset(write('v9.msgpack', { ...raw, version: 9 }))).rejects.toThrow(/v9\.msgpack: field 'version' is 9; this build reads versions 1 and 2/);
    // Version 1 (before task parameters and split) still reads, with both null; bad values are named.
    const { taskParameters: _p, split: _s, ...v1Header } = raw.header as Record<string, unknown>;
    await expect(readDataset(write('v1.msgpack', { ...raw, version: 1, header: v1Header }))).resolves.toMatchObject({ header: { taskParameters: null, split: null } });
    await expect(readDataset(write('split.msgpack', { ...raw, header: { ...(raw.header as object), split: 'validation' } }))).rejects.toThrow(/split\.msgpack: field 'header\.split' must be 'train', 'test' or null/);
    await expect(readDataset(write('params.msgpack', { ...raw, header: { ...(raw.header as object), taskParameters: [1, 2] } }))).rejects.toThrow(/params\.msgpack: field 'header\.taskParameters' must be a map or null/);
    const episodes = raw.episodes as Array<Record<string, { data: Uint8Array }>>;
    const short = episodes.map((e, i) => (i === 2 ? { ...e, obs: { ...e.obs, data: e.obs.data.subarray(0, 16) } } : e));
    await expect(readDataset(write('short.msgpack', { ...raw, episodes: short }))).rejects.toThrow(/short\.msgpack: episodes\[2\]\.obs has 4 numbers, expected 168/);
    fs.writeFileSync(path.join(root, 'cut.msgpack'), fs.readFileSync(datasetFile).subarray(0, 100));
    await expect(readDataset(path.join(root, 'cut.msgpack'))).rejects.toThrow(/cut\.msgpack is corrupt or truncated/);
  });

  test('a dataset of another shape is refused before training', async () => {
    const other = { ...dataset, header: { ...dataset.header, shape: { ...dataset.header.shape, obsDim: 5, agentObsDims: [5, 5] } } };
    await expect(writeDataset(path.join(root, 'x.msgpack'), other)).rejects.toThrow(/episodes\[0\]\.obs has 168 numbers, expected 210/);
    const lbf = parseRunConfig(`env: { id: spread-3 }\ndataset: ${JSON.stringify(datasetFile)}\nalgo: { name: bc }\nrun: { total_gradient_steps: 10 }\n`, 'test');
    await expect(runTraining({ config: lbf, outDir: path.join(root, 'mismatch'), backend: { name: 'wasm', reason: 'test' } })).rejects.toThrow(/expert\.msgpack was recorded on 'point-reach', whose shape does not fit 'spread-3'/);
    // What the algorithm learns from decides which budget and data keys a config needs.
    expect(() => parseRunConfig(`env: ${JSON.stringify(POINT_REACH)}\ndataset: ${JSON.stringify(datasetFile)}\nalgo: { name: bc }\n`, 'test')).toThrow(/run\.total_gradient_steps: required for the offline algorithm 'bc'/);
    expect(() => parseRunConfig(`env: ${JSON.stringify(POINT_REACH)}\nalgo: { name: bc }\nrun: { total_gradient_steps: 5 }\n`, 'test')).toThrow(/dataset: required for the offline algorithm 'bc'/);
    expect(() => parseRunConfig(`env: ${JSON.stringify(POINT_REACH)}\ndataset: x.msgpack\nalgo: { name: mappo }\nrun: { total_gradient_steps: 5 }\n`, 'test')).toThrow(/dataset: only offline algorithms read a dataset; 'mappo' learns from its envs[\s\S]*run\.total_gradient_steps: counts offline training/);
  });
});

test('discrete actions must be actions the agent could take', () => {
  const shape = { ...dataset.header.shape, discreteActions: true, actDim: 1, numActions: 3, agentNumActions: [3, 3], actionLow: undefined, actionHigh: undefined };
  const T = 2;
  const episode = {
    obs: new Float32Array((T + 1) * 2 * 4), state: new Float32Array((T + 1) * 8), actions: Float32Array.of(0, 2, 1, 0), rewards: new Float32Array(T * 2),
    alive: Uint8Array.of(1, 1, 1, 0), masks: Uint8Array.of(1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1), terminated: 1, return: 0, success: NaN,
  };
  expect(() => checkEpisode(episode, shape, 'episodes[0]')).not.toThrow();
  expect(() => checkEpisode({ ...episode, actions: Float32Array.of(0, 3, 1, 0) }, shape, 'episodes[0]')).toThrow(/episodes\[0\]\.actions: agent 'point_1' at step 0 took 3, not an action of Discrete\(3\)/);
  expect(() => checkEpisode({ ...episode, actions: Float32Array.of(0.5, 2, 1, 0) }, shape, 'episodes[0]')).toThrow(/agent 'point_0' at step 0 took 0\.5/);
  expect(() => checkEpisode({ ...episode, masks: episode.masks.map((m, i) => (i === 5 ? 0 : m)) }, shape, 'episodes[0]')).toThrow(/agent 'point_1' at step 0 took action 2, which its mask forbids/);
  // A dead agent's action is not checked.
  expect(() => checkEpisode({ ...episode, actions: Float32Array.of(0, 2, 1, 9) }, shape, 'episodes[0]')).not.toThrow();
});

describe('the offline loop', () => {
  let full: Awaited<ReturnType<typeof train>>;
  beforeAll(async () => {
    full = await train();
  }, 120000);

  test('counts gradient steps: logs, evaluations and checkpoints at their intervals', async () => {
    const { metrics, summary } = full;
    expect(summary.unit).toBe('grad_steps');
    expect(summary.grad_steps).toBe(600);
    expect(summary.env_steps).toBe(0);
    const trainRows = metrics.filter((r) => r.kind === 'train');
    expect(trainRows.map((r) => r.grad_steps)).toEqual([100, 200, 300, 400, 500, 600]);
    expect(trainRows.every((r) => typeof r.loss === 'number' && r.env_steps === undefined)).toBe(true);
    expect(metrics.filter((r) => r.kind === 'eval').map((r) => r.grad_steps)).toEqual([300, 600]);
    // The negative log-likelihood falls as the policy fits the expert.
    expect(trainRows.at(-1)!.loss as number).toBeLessThan(trainRows[0].loss as number);
    const data = await readCheckpoint(summary.checkpoint!);
    expect(data.counters.gradientSteps).toBe(600);
    expect(fs.readFileSync(path.join(full.outDir, 'learning-curve.svg'), 'utf8')).toMatch(/gradient steps/);
  });

  test('the cloned policy acts like the expert, far better than random (loaded for another number of envs)', async () => {
    const vec = await VectorEnv.create({ env: POINT_REACH, numEnvs: 5, seed: 77 });
    const policy = await loadPolicy(full.outDir, { numEnvs: 5 });
    try {
      const cloned = await evaluatePolicy(vec, policy, 20);
      const best = await evaluatePolicy(vec, expert, 20);
      const random = await evaluatePolicy(vec, new RandomPolicy(vec.layout, 1), 20);
      expect(cloned.meanReturn).toBeGreaterThan(random.meanReturn + 0.6 * (best.meanReturn - random.meanReturn));
    } finally {
      policy.dispose();
      await vec.close();
    }
  }, 60000);

  test('stopped mid-segment and resumed = uninterrupted', async () => {
    const part = await train([], { shouldStop: (p) => p.steps >= 250 });
    expect(part.summary.interrupted).toBe(true);
    expect(part.summary.grad_steps).toBe(250);
    const data = await readCheckpoint(part.summary.checkpoint!);
    const resumed = await train([], { outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(full.metrics));
    const other = await train(['run.seed=3', 'run.total_gradient_steps=100']);
    expect(withoutClock(other.metrics)[0]).not.toEqual(withoutClock(full.metrics)[0]);
  }, 120000);

  test('a resume refuses a dataset file that changed since the checkpoint', async () => {
    const copy = path.join(root, 'copy.msgpack');
    fs.copyFileSync(datasetFile, copy);
    const run = await train([`dataset=${copy}`, 'run.total_gradient_steps=100', 'run.checkpoint_interval=50'], { shouldStop: (p) => p.steps >= 60 });
    await writeDataset(copy, { ...dataset, episodes: dataset.episodes.slice(0, 30) });
    const data = await readCheckpoint(run.summary.checkpoint!);
    await expect(train([`dataset=${copy}`, 'run.total_gradient_steps=100', 'run.checkpoint_interval=50'], { outDir: run.outDir, resume: { data, path: 'run.ckpt' } })).rejects.toThrow(
      /run\.ckpt: task 'point-reach' trained on dataset .*copy\.msgpack \(40 episodes, sha256 [0-9a-f]{12}…\), but .*copy\.msgpack is now a different file \(30 episodes/,
    );
  }, 60000);
});
