import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import YAML from 'yaml';
import type { PolicyBatch } from '../agents/policies/policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import { envShape } from '../envs/env-shape';
import { makeEnv } from '../envs/registry';
import { readCheckpoint } from '../runtime/core/checkpoint';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { selectBackend } from '../runtime/core/tf-backend';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { collectDatasets, collectConfigSchema } from '../runtime/training/collect-datasets';
import { RunConfigError, parseRunConfig } from '../runtime/training/config-loader';
import { resolveDatasetSet } from '../runtime/training/dataset-sets';
import { TASK_INFERENCE_FILE, type TrainingRunOptions, runTraining } from '../runtime/training/training-run';
import { type TaskInferenceResults, evaluateTaskInferenceCheckpoint } from '../runtime/training/task-inference-evaluation';
import { deriveSeed } from '../runtime/core/rng';
import { runEvalCommand } from '../scripts/commands/eval';
import { Adam } from '../trainers/adam';
import { type OfflineDataset, readDataset } from '../trainers/dataset';
import type { TaskSpec } from '../trainers/learner';
import { MetaDecisionTransformer, type MetaDtConfig, metaDtConfigSchema } from '../trainers/meta-dt';

/*
 * Meta-DT end to end on Point-Robot: a dataset folder collected when the run starts, the world
 * model then the decision transformer in one offline run with exact resume, every evaluation mode
 * per task, and the learner's own contracts (held-out tasks never trained on, no tensor leaks,
 * clear errors for what a mode needs).
 */

let root: string;
let dataDir: string;
const TASKS = ['task00', 'task01', 'task02', 'task45'];

beforeAll(async () => {
  registerBuiltinEnvs();
  await selectBackend('wasm');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-meta-dt-'));
  dataDir = path.join(root, 'data');
  fs.writeFileSync(
    path.join(root, 'collect.yaml'),
    YAML.stringify({ env: { id: 'point-robot' }, tasks: TASKS, policies: [{ policy: 'random', episodes: 3 }, { policy: 'expert', noise: 0.05, episodes: 3 }], quality: 'mixed', seed: 3, num_envs: 3 }),
  );
}, 60000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const ALGO = {
  name: 'meta_dt',
  world_model_steps: 20,
  world_model_batch_size: 16,
  context_hidden_dim: 16,
  context_dim: 8,
  field_embed_dim: 8,
  decoder_hidden_dims: [16],
  horizon: 5,
  embed_dim: 16,
  num_layers: 1,
  state_embed_dim: 8,
  batch_size: 8,
  lr: 0.001,
  warmup_steps: 10,
  warm_train_steps: 10,
  prompt_length: 3,
  context_horizon: 2,
  few_shot_rollouts: 1,
};

function configText(over: Record<string, unknown> = {}): string {
  return YAML.stringify({
    datasets: { dir: dataDir, collect: path.join(root, 'collect.yaml') },
    algo: { ...ALGO, ...over },
    run: { seed: 4, total_gradient_steps: 60, num_envs: 2, log_interval: 10, eval_interval: 30, eval_episodes: 2, checkpoint_interval: 20 },
  });
}

const withoutClock = (records: MetricsRecord[]) => records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));

let count = 0;
async function train(extra: Partial<TrainingRunOptions> = {}, over: Record<string, unknown> = {}) {
  const config = await resolveDatasetSet(parseRunConfig(configText(over), 'meta-dt test'));
  const outDir = extra.outDir ?? path.join(root, `run-${count++}`);
  const summary = await runTraining({ config, outDir, backend: { name: 'wasm', reason: 'test' }, ...extra });
  const inference = fs.existsSync(path.join(outDir, TASK_INFERENCE_FILE)) ? (JSON.parse(fs.readFileSync(path.join(outDir, TASK_INFERENCE_FILE), 'utf8')) as TaskInferenceResults) : undefined;
  return { outDir, summary, metrics: MetricsLog.read(path.join(outDir, 'metrics.jsonl')), inference };
}

let full: Awaited<ReturnType<typeof train>>;

describe('a Meta-DT run from a dataset folder', () => {
  test('collects the missing datasets, trains world model then DT, and evaluates every mode per task', async () => {
    full = await train();
    expect(fs.existsSync(path.join(dataDir, 'dataset.json'))).toBe(true);
    const train_ = full.metrics.filter((r) => r.kind === 'train');
    // One learner, one record per log interval (not one per task), world model first.
    expect(train_.map((r) => r.grad_steps)).toEqual([10, 20, 30, 40, 50, 60]);
    expect(train_[0]).toHaveProperty('world_model_loss');
    expect(train_[0]).not.toHaveProperty('task');
    expect(train_[2]).toHaveProperty('action_loss');
    expect(train_[2].prompted).toBe(0);
    expect(train_[4].prompted).toBe(1);
    const evals = full.metrics.filter((r) => r.kind === 'eval');
    expect(new Set(evals.map((r) => r.task))).toEqual(new Set(TASKS));
    const inference = full.inference!;
    expect(inference.modes).toEqual(['zero-shot', 'few-shot', 'demo']);
    expect(Object.keys(inference.tasks).sort()).toEqual(TASKS);
    expect(inference.tasks.task45.split).toBe('test');
    expect(inference.tasks.task00.split).toBe('train');
    for (const t of TASKS) {
      for (const mode of inference.modes) {
        expect(inference.tasks[t][mode]!.episodes).toBe(2);
        expect(Number.isFinite(inference.tasks[t][mode]!.return_mean)).toBe(true);
      }
      // Few-shot prompts came from the model's own zero-shot rollouts: 1 per env.
      expect(inference.tasks[t]['few-shot']!.own_rollouts).toBe(2);
    }
    expect(inference.summary.test['zero-shot']!.tasks).toBe(1);
    // The probe from z to the goal: fitted on the 3 training goals, scored on the held-out one.
    expect(inference.probe).toMatchObject({ target: ['goal[0]', 'goal[1]'], windows_train: expect.any(Number), windows_test: expect.any(Number) });
    expect(Number.isFinite((inference.probe as { r2_train: number }).r2_train)).toBe(true);
    expect(full.summary.task_inference).toEqual(inference.summary);
  }, 120000);

  test('stopped in either phase and resumed = uninterrupted, evaluation included', async () => {
    for (const stopAt of [13, 37]) {
      const part = await train({ shouldStop: (p) => p.steps >= stopAt });
      expect(part.summary.interrupted).toBe(true);
      expect(part.inference).toBeUndefined();
      const data = await readCheckpoint(part.summary.checkpoint!);
      const resumed = await train({ outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
      expect(withoutClock(resumed.metrics)).toEqual(withoutClock(full.metrics));
      expect(resumed.inference).toEqual(full.inference);
    }
  }, 180000);

  test('prompts scored while the world model still trains are not reused after it froze: a resume matches', async () => {
    // Demonstration prompts chosen by world-model error in evaluations during phase 1 (every 10 steps).
    const over = { eval_mode: 'demo' };
    const text = (o: Record<string, unknown>) => configText(o).replace('eval_interval: 30', 'eval_interval: 10');
    const trainWith = async (extra: Partial<TrainingRunOptions>) => {
      const config = await resolveDatasetSet(parseRunConfig(text(over), 'meta-dt test'));
      const outDir = extra.outDir ?? path.join(root, `run-${count++}`);
      const summary = await runTraining({ config, outDir, backend: { name: 'wasm', reason: 'test' }, ...extra });
      return { outDir, summary, metrics: MetricsLog.read(path.join(outDir, 'metrics.jsonl')) };
    };
    const whole = await trainWith({});
    expect(whole.metrics.filter((r) => r.kind === 'eval' && r.grad_steps === 10)).toHaveLength(TASKS.length);
    const part = await trainWith({ shouldStop: (p) => p.steps >= 25 });
    const data = await readCheckpoint(part.summary.checkpoint!);
    const resumed = await trainWith({ outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(whole.metrics));
  }, 180000);

  test('troupe eval --mode rebuilds the model from its run and reproduces its evaluation', async () => {
    const again = await evaluateTaskInferenceCheckpoint(full.outDir, { modes: ['zero-shot', 'few-shot', 'demo'], episodes: 2, numEnvs: 2, seed: deriveSeed(4, 'task-inference') });
    // Point-Robot episodes all start at the origin, so only the prompt draws (same seeds) could differ.
    expect(again.tasks).toEqual(full.inference!.tasks);
    expect(again.gradSteps).toBe(60);
    const one = await evaluateTaskInferenceCheckpoint(full.outDir, { modes: ['few-shot'], episodes: 2, numEnvs: 2, seed: deriveSeed(4, 'task-inference'), task: 'task45' });
    expect(Object.keys(one.tasks)).toEqual(['task45']);
    expect(one.summary.test['few-shot']!.return_mean).toBe(full.inference!.tasks.task45['few-shot']!.return_mean);
    const opts = { policy: 'random', episodes: '2', seed: '0', envs: '2', workers: '0', option: [] };
    await expect(runEvalCommand(full.outDir, opts)).rejects.toThrow(/is a meta_dt run, which infers its task at test time: say how with --mode zero-shot, few-shot or demo/);
    await expect(runEvalCommand(full.outDir, { ...opts, mode: ['fewshot'] })).rejects.toThrow(/--mode must be one of zero-shot, few-shot, demo, got 'fewshot'/);
    await expect(evaluateTaskInferenceCheckpoint(full.outDir, { modes: ['zero-shot'], episodes: 2, numEnvs: 2, seed: 's', task: 'task99' })).rejects.toThrow(/--task: 'task99' is not a task of/);
  }, 60000);

  test('a dataset folder that is neither there nor collectable is refused naming the key', async () => {
    const config = parseRunConfig(YAML.stringify({ datasets: { dir: path.join(root, 'nowhere') }, algo: ALGO, run: { total_gradient_steps: 5 } }), 'x');
    await expect(resolveDatasetSet(config)).rejects.toThrow(/datasets\.dir: .*nowhere holds no dataset\.json; collect it first/);
    const unknown = parseRunConfig(YAML.stringify({ datasets: { dir: dataDir, tasks: ['task00', 'task99'] }, algo: ALGO, run: { total_gradient_steps: 5 } }), 'x');
    await expect(resolveDatasetSet(unknown)).rejects.toThrow(/datasets\.tasks\.1: 'task99' is not in .*dataset\.json/);
    expect(() => parseRunConfig(YAML.stringify({ datasets: { dir: dataDir }, env: { id: 'point-robot' }, algo: ALGO, run: { total_gradient_steps: 5 } }), 'x')).toThrow(/datasets: give either 'datasets' .* or 'env', not both/);
    expect(() => parseRunConfig(YAML.stringify({ datasets: { dir: dataDir }, algo: { name: 'mappo' } }), 'x')).toThrow(/datasets: only offline algorithms read a dataset/);
    expect(() => parseRunConfig(YAML.stringify({ datasets: { dir: dataDir, shuffle: true }, algo: ALGO, run: { total_gradient_steps: 5 } }), 'x')).toThrow(RunConfigError);
    const twice = parseRunConfig(YAML.stringify({ datasets: { dir: dataDir, tasks: ['task00', 'task01', 'task00'] }, algo: ALGO, run: { total_gradient_steps: 5 } }), 'x');
    await expect(resolveDatasetSet(twice)).rejects.toThrow(/datasets\.tasks\.2: 'task00' is listed twice \(first at datasets\.tasks\.0\)/);
    const test = await resolveDatasetSet(parseRunConfig(YAML.stringify({ datasets: { dir: dataDir, tasks: 'test' }, algo: ALGO, run: { total_gradient_steps: 5 } }), 'x'));
    expect(test.tasks!.map((t) => t.name)).toEqual(['task45']);
    expect(test.datasets).toBeUndefined();
  }, 60000);
});

describe('the learner', () => {
  let datasets: Record<string, OfflineDataset>;
  let tasks: TaskSpec[];
  beforeAll(async () => {
    if (!fs.existsSync(path.join(dataDir, 'dataset.json'))) await collectDatasets(collectConfigSchema.parse(YAML.parse(fs.readFileSync(path.join(root, 'collect.yaml'), 'utf8'))), dataDir);
    datasets = {};
    for (const key of TASKS) datasets[key] = await readDataset(path.join(dataDir, `${key}.msgpack`));
    const shape = envShape(makeEnv('point-robot'));
    tasks = TASKS.map((key, index) => ({ key, index, env: datasets[key].header.env, shape, numEnvs: 2 }));
  }, 60000);

  const learner = (over: Partial<MetaDtConfig> = {}, data = datasets) => new MetaDecisionTransformer(tasks, metaDtConfigSchema.parse({ ...ALGO, ...over }), data, 7);

  test('never trains on a held-out task: its data can change without changing a single weight', async () => {
    const scrambled: Record<string, OfflineDataset> = {
      ...datasets,
      // Same shape, other numbers (the target return and demonstrations still come from it).
      task45: { ...datasets.task45, episodes: datasets.task45.episodes.map((ep) => ({ ...ep, obs: ep.obs.map((x) => x + 5), rewards: ep.rewards.map((r) => r - 1) })) },
    };
    const a = learner();
    const b = learner({}, scrambled);
    try {
      for (let i = 0; i < 35; i++) expect(b.trainStep()).toEqual(a.trainStep());
      const wa = await a.captureState();
      const wb = await b.captureState();
      expect(wb.models).toEqual(wa.models);
    } finally {
      a.dispose();
      b.dispose();
    }
  }, 60000);

  test('leaks no tensors in either phase, nor while acting', async () => {
    const l = learner();
    const vec = await VectorEnv.create({ env: { id: 'point-robot', options: { task: 45 } }, numEnvs: 2, seed: 1 });
    try {
      l.trainStep();
      let before = tf.memory().numTensors;
      for (let i = 0; i < 25; i++) l.trainStep();
      expect(tf.memory().numTensors).toBe(before);
      const { collectEpisodes } = await import('../runtime/rollout/collect-episodes');
      const own = await collectEpisodes(vec, l.inferencePolicy('task45', 2, 's', 'zero-shot'), 2);
      before = tf.memory().numTensors;
      for (const mode of ['zero-shot', 'few-shot', 'demo'] as const) await collectEpisodes(vec, l.inferencePolicy('task45', 2, 's', mode, own), 2);
      l.actionsAlong('task45', own[0]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      await vec.close();
      l.dispose();
    }
  }, 60000);

  test.each([
    ['z and prompts', {}],
    ['no task representation, no prompts', { task_representation: 'none', prompt: 'none' }],
  ])('acting feeds the network what training does (%s): the zero-shot episode, cut as training cuts sequences, gives back its actions', async (_name, over) => {
    const l = learner(over as Partial<MetaDtConfig>);
    const vec = await VectorEnv.create({ env: { id: 'point-robot', options: { task: 1 } }, numEnvs: 2, seed: 3 });
    try {
      for (let i = 0; i < 35; i++) l.trainStep();
      const { collectEpisodes } = await import('../runtime/rollout/collect-episodes');
      const episodes = await collectEpisodes(vec, l.inferencePolicy('task01', 2, 's', 'zero-shot'), 2);
      for (const ep of episodes) {
        const along = l.actionsAlong('task01', ep);
        expect(along.length).toBe(ep.actions.length);
        for (let i = 0; i < along.length; i++) expect(along[i]).toBeCloseTo(ep.actions[i], 5);
      }
      // A single changed reward shifts every later return-to-go (and z), so the actions after it change.
      const changed = { ...episodes[0], rewards: episodes[0].rewards.map((r, t) => (t === 5 ? r - 10 : r)) };
      const after = l.actionsAlong('task01', changed);
      const W = 2;
      for (let i = 0; i < 6 * W; i++) expect(after[i]).toBeCloseTo(episodes[0].actions[i], 5);
      expect(Array.from(after.subarray(6 * W)).some((x, i) => Math.abs(x - episodes[0].actions[6 * W + i]) > 1e-6)).toBe(true);
    } finally {
      await vec.close();
      l.dispose();
    }
  }, 60000);

  test('a mode without what it needs is refused with a clear error', () => {
    const l = learner({ prompt: 'none' });
    const m = learner();
    try {
      expect(l.inferenceModes).toEqual(['zero-shot']);
      expect(m.inferenceModes).toEqual(['zero-shot', 'few-shot', 'demo']);
      expect(() => l.inferencePolicy('task00', 2, 's', 'demo')).toThrow(/demo evaluation needs prompts, but this model was trained with prompt 'none'/);
      expect(() => m.inferencePolicy('task00', 2, 's', 'few-shot')).toThrow(/few-shot evaluation of task 'task00' needs the model's own rollouts of it/);
      expect(() => m.inferencePolicy('task99', 2, 's', 'zero-shot')).toThrow(/unknown task 'task99'/);
      const shape = tasks[0].shape;
      const layout = { ...shape, numEnvs: 2 };
      const batch = (start: number): PolicyBatch => ({
        obs: new Float32Array(2 * shape.obsDim),
        state: new Float32Array(0),
        masks: new Uint8Array(0),
        alive: new Uint8Array(2).fill(1),
        episodeStart: new Uint8Array(2).fill(start),
        layout,
        context: { taskIndex: new Int32Array(2), teamSize: new Int32Array(2), latent: new Float32Array(0), latentDim: 0 },
      });
      const policy = m.inferencePolicy('task00', 2, 's', 'zero-shot');
      policy.act(batch(1), new Float32Array(2 * shape.actDim));
      expect(() => policy.act(batch(0), new Float32Array(2 * shape.actDim))).toThrow(/the batch carries no rewards/);
      expect(() => learner({ world_model_steps: 0 })).toThrow(/world_model_steps is 0, but task_representation 'world_model' needs a trained world model/);
      const allTest = Object.fromEntries(Object.entries(datasets).map(([k, d]) => [k, { ...d, header: { ...d.header, split: 'test' as const } }]));
      expect(() => learner({}, allTest)).toThrow(/every task's dataset is on the test side of its split/);
    } finally {
      l.dispose();
      m.dispose();
    }
  });
});

describe('AdamW', () => {
  test('decays decoupled from the gradient and scales its step by the schedule factor', () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const adam = new Adam({ lr: 0.1, weightDecay: 0.5 }, { p });
    const g = tf.tensor1d([0.3, 0]);
    adam.apply({ p: g }, undefined, 0.5);
    // lr 0.05: p·(1 − 0.05·0.5), then the first Adam step moves by lr·sign(g) (and not where g = 0).
    const got = Array.from(p.dataSync());
    expect(got[0]).toBeCloseTo(1 * (1 - 0.025) - 0.05, 6);
    expect(got[1]).toBeCloseTo(-2 * (1 - 0.025), 6);
    expect(() => new Adam({ lr: 0.1, weightDecay: 0.1, formulation: 'tfjs' }, { p })).toThrow(/only implemented for the pytorch formulation/);
    adam.dispose();
    p.dispose();
    g.dispose();
  });
});
