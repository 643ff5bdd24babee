import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadPolicy } from '../agents/load-policy';
import { buildPolicy } from '../agents/policies/build-policy';
import { type Policy, emptyContext } from '../agents/policies/policy';
import { parsePolicySpec, policySpecJson } from '../agents/policies/policy-spec';
import { registerBuiltinEnvs } from '../envs/builtin';
import { type VectorLayout, layoutFor } from '../envs/env-shape';
import type { ParallelEnv } from '../envs/parallel-env';
import { makeEnv, prepareEnv } from '../envs/registry';
import { readCheckpoint } from '../runtime/core/checkpoint';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import { evaluatePolicy } from '../runtime/rollout/evaluation';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { parseRunConfig } from '../runtime/training/config-loader';
import { runTraining } from '../runtime/training/training-run';
import { createLearner, trainerFor } from '../trainers/index';
import { type OnlineLearner, taskOfLayout } from '../trainers/learner';
import { PointReachEnv } from './fixtures/point-reach-env';

/*
 * Inference-only loading: a checkpoint's policy spec and weights rebuild exactly the policy the
 * learner evaluates with — no critic, optimiser or replay — for any number of envs.
 */

const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');
const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures', 'checkpoints');

let root: string;
beforeAll(async () => {
  registerBuiltinEnvs();
  await selectBackend('wasm');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-load-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Actions of `policy` over `steps` random batches for `layout` (episodes restart now and then). */
function trace(policy: Policy, layout: VectorLayout, steps: number, seed: number): number[] {
  const { numEnvs: E, numAgents: A, obsDim, stateDim, numActions: K, actDim } = layout;
  const rng = new Rng(seed);
  const out: number[] = [];
  for (let t = 0; t < steps; t++) {
    const masks = new Uint8Array(E * A * K);
    for (let i = 0; i < E * A; i++) for (let k = 0; k < K; k++) masks[i * K + k] = k === 0 || rng.next() < 0.6 ? 1 : 0;
    const batch = {
      obs: Float32Array.from({ length: E * A * obsDim }, () => rng.uniform(-1, 1)),
      state: Float32Array.from({ length: E * stateDim }, () => rng.uniform(-1, 1)),
      masks,
      alive: Uint8Array.from({ length: E * A }, () => (rng.next() < 0.9 ? 1 : 0)),
      episodeStart: Uint8Array.from({ length: E }, () => (t === 0 || rng.next() < 0.2 ? 1 : 0)),
      layout,
      context: emptyContext(E),
    };
    const actions = new Float32Array(E * A * actDim);
    void policy.act(batch, actions);
    out.push(...actions);
  }
  return out;
}

const CASES: ReadonlyArray<[string, string, string]> = [
  ['mappo, GRU, last action', 'lbf-8x8-2p-2f-coop', '{ name: mappo, hidden_dim: 16, use_rnn: true, obs_last_action: true, rollout_length: 5 }'],
  ['ippo, separate weights', 'combat-3v3', '{ name: ippo, hidden_dim: 16, parameter_sharing: false, rollout_length: 5 }'],
  ['qmix, GRU, ε = 0.1', 'combat-3v3', '{ name: qmix, hidden_dim: 16, use_rnn: true, evaluation_epsilon: 0.1 }'],
  ['vdn', 'lbf-8x8-2p-2f-coop', '{ name: vdn, hidden_dim: 16 }'],
  ['mappo, Gaussian', 'point-reach', '{ name: mappo, hidden_dim: 16, use_rnn: false, log_std_init: -0.3, rollout_length: 5 }'],
  ['sac, two agents', 'point-reach', '{ name: sac, hidden_dims: [16, 8] }'],
];

describe('buildPolicy = the learner\'s own evaluation policy', () => {
  test.each(CASES)('%s: same actions for another number of envs, greedy and sampled; only the actor is built', async (_name, envId, algo) => {
    const env: ParallelEnv<unknown, unknown> = envId === 'point-reach' ? new PointReachEnv({ numAgents: 2 }) : (await prepareEnv(envId), makeEnv<unknown, unknown>(envId));
    const config = parseRunConfig(`env: { id: ${envId} }\nalgo: ${algo}\nrun: { num_envs: 4 }\n`, 'test');
    const learner = createLearner({ config: config.algo, tasks: [taskOfLayout(layoutFor(env, 4))], seed: 5 }) as OnlineLearner;
    try {
      // Move the weights off their initial values, so a policy that ignored them would differ.
      const state = await learner.captureState();
      for (const model of Object.values(state.models)) {
        for (const t of Object.values(model)) {
          const values = new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
          for (let i = 0; i < values.length; i++) values[i] += 0.01 * Math.sin(i);
          t.data = new Uint8Array(values.buffer);
        }
      }
      await learner.restoreState(state);
      const spec = parsePolicySpec(policySpecJson(learner.policySpecs().default), 'test');
      const weights = (await learner.captureState()).models[spec.model];
      const layout = layoutFor(env, 3);
      for (const sample of [false, true]) {
        const before = tf.memory().numTensors;
        const loaded = buildPolicy(spec, weights, { numEnvs: 3, mode: sample ? 'sample' : 'greedy', seed: 'eval' });
        // Just the actor's variables (plus a Gaussian's log-std): no critic, mixer or optimiser slots.
        expect(tf.memory().numTensors - before).toBe(Object.keys(weights).length);
        const own = learner.evaluationPolicy('default', 3, 'eval', { sample });
        expect(trace(loaded, layout, 12, 9)).toEqual(trace(own, layout, 12, 9));
        loaded.dispose();
        expect(tf.memory().numTensors).toBe(before);
      }
    } finally {
      learner.dispose();
      env.close?.();
    }
  });

  test('a spec that does not fit its weights is refused, naming the model and tensor', async () => {
    const env = makeEnv<unknown, unknown>('lbf-8x8-2p-2f-coop');
    const config = parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo, hidden_dim: 16 }\n', 'test');
    const learner = createLearner({ config: config.algo, tasks: [taskOfLayout(layoutFor(env, 2))], seed: 1 });
    try {
      const spec = learner.policySpecs().default;
      const weights = (await learner.captureState()).models.actor;
      const wider = { ...spec, network: { ...(spec as { network: object }).network, hiddenDim: 32 } } as typeof spec;
      expect(() => buildPolicy(wider, weights, { numEnvs: 1 })).toThrow(/model 'actor' does not fit its policy spec: checkpoint tensor 'fc1\/w' is float32\[\d+,16\], variable is float32\[\d+,32\]/);
      expect(() => parsePolicySpec({ ...policySpecJson(spec), kind: 'mystery' }, 'x.ckpt')).toThrow(/x\.ckpt: invalid policy spec at 'kind'/);
    } finally {
      learner.dispose();
    }
  });
});

describe('loadPolicy from runs', () => {
  test('a run trained with 4 envs acts in 3, and `troupe eval` gives what evaluatePolicy gives', async () => {
    const config = parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo, hidden_dim: 16, use_rnn: true, rollout_length: 10 }\nrun: { seed: 1, total_env_steps: 400, num_envs: 4, eval_episodes: 2, checkpoint_interval: 400 }\n', 'test');
    const outDir = path.join(root, 'mappo');
    await runTraining({ config, outDir, backend: { name: 'wasm', reason: 'test' } });
    const policy = await loadPolicy(outDir, { numEnvs: 3, seed: 'x' });
    expect(policy.task).toBe('lbf-8x8-2p-2f-coop');
    expect(policy.trainedEnvSteps).toBe(400);
    const vec = await VectorEnv.create({ env: { id: 'lbf-8x8-2p-2f-coop' }, numEnvs: 3, seed: 0 });
    try {
      const direct = await evaluatePolicy(vec, policy, 6);
      const printed = JSON.parse(execFileSync(process.execPath, [cli, 'eval', outDir, '--envs', '3', '--episodes', '6', '--backend', 'wasm', '--json'], { encoding: 'utf8' })) as { meanReturn: number; episodes: number };
      expect(printed.episodes).toBe(6);
      expect(printed.meanReturn).toBe(direct.meanReturn);
    } finally {
      policy.dispose();
      await vec.close();
    }
  }, 60000);

  test.each(['format-2-mappo-gru', 'format-2-qmix-gru'])('%s (written before policy specs): loads for any number of envs, and `troupe eval --envs 3` runs', async (fixture) => {
    const dir = path.join(FIXTURES, fixture);
    const policy = await loadPolicy(dir, { numEnvs: 3 });
    try {
      expect(policy.spec.kind === 'agent-network' && policy.spec.network.recurrent).toBe(true);
    } finally {
      policy.dispose();
    }
    const out = execFileSync(process.execPath, [cli, 'eval', dir, '--envs', '3', '--episodes', '3', '--backend', 'wasm'], { encoding: 'utf8' });
    expect(out).toMatch(/env lbf-8x8-2p-2f-coop, (mappo|qmix) checkpoint .*, 3 episodes/);
  }, 60000);
});

describe('every benchmark config', () => {
  const configs = path.join(__dirname, '..', '..', 'configs', 'benchmarks');
  // Online configs: an offline one (reach-bc) needs its dataset, which is made, not committed.
  const online = fs.readdirSync(configs).filter((f) => f.endsWith('.yaml') && trainerFor(parseRunConfig(fs.readFileSync(path.join(configs, f), 'utf8'), f).algo.name).kind === 'online');
  test('the online configs are all but the offline one', () => {
    expect(online.length).toBe(fs.readdirSync(configs).filter((f) => f.endsWith('.yaml')).length - 1);
  });
  test.each(online)('%s: its policy acts in 3 envs, whatever num_envs it trains with', async (file) => {
    const config = parseRunConfig(fs.readFileSync(path.join(configs, file), 'utf8'), file);
    const env = config.env!;
    const vec = await VectorEnv.create({ env, numEnvs: 3, seed: 0 });
    const learner = createLearner({ config: config.algo, tasks: [taskOfLayout({ ...vec.layout, numEnvs: config.run.num_envs }, env.id, env)], seed: 0 });
    try {
      const spec = parsePolicySpec(policySpecJson(learner.policySpecs()[env.id]), file);
      const policy = buildPolicy(spec, (await learner.captureState()).models[spec.model], { numEnvs: 3 });
      try {
        const b = vec.buffers;
        await vec.reset();
        for (let t = 0; t < 3; t++) {
          b.actions.fill(0);
          await policy.act({ obs: b.obs, state: b.state, masks: b.masks, alive: b.alive, episodeStart: new Uint8Array(3).fill(t === 0 ? 1 : 0), layout: vec.layout, context: emptyContext(3) }, b.actions);
          await vec.step();
        }
      } finally {
        policy.dispose();
      }
    } finally {
      learner.dispose();
      await vec.close();
    }
  }, 30000);
});

describe('checkpoints written before this format', () => {
  const withoutClock = (records: MetricsRecord[]) => records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));

  test.each(['format-2-mappo-gru', 'format-2-qmix-gru'])('%s: an interrupted format-2 run resumes to exactly what a fresh run of its config gives', async (fixture) => {
    const dir = path.join(root, fixture);
    fs.cpSync(path.join(FIXTURES, fixture), dir, { recursive: true });
    const ckptDir = path.join(dir, 'checkpoints');
    const file = path.join(ckptDir, JSON.parse(fs.readFileSync(path.join(ckptDir, 'latest'), 'utf8')).latest as string);
    const data = await readCheckpoint(file);
    expect(data.metadata.policies).toBeUndefined();
    const config = parseRunConfig(fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8'), 'fixture');
    await runTraining({ config, outDir: dir, backend: { name: 'wasm', reason: 'test' }, resume: { data, path: file } });
    const fresh = path.join(root, `${fixture}-fresh`);
    await runTraining({ config, outDir: fresh, backend: { name: 'wasm', reason: 'test' } });
    const resumed = MetricsLog.read(path.join(dir, 'metrics.jsonl'));
    expect(resumed.length).toBeGreaterThan(6);
    // The rows before the interruption were written by the code of that time: numbers match a
    // fresh run to float tolerance (rewritten updates may round differently), everything else exactly.
    const fresher = withoutClock(MetricsLog.read(path.join(fresh, 'metrics.jsonl')));
    const got = withoutClock(resumed);
    expect(got.map((r) => Object.keys(r).sort())).toEqual(fresher.map((r) => Object.keys(r).sort()));
    got.forEach((row, i) => {
      for (const [k, v] of Object.entries(row)) {
        const want = fresher[i][k];
        if (typeof v === 'number' && typeof want === 'number' && v !== want) {
          if (!(Math.abs(v - want) <= 1e-6 + 1e-3 * Math.abs(want))) throw new Error(`row ${i} ${k}: resumed ${v}, fresh ${want}`);
        } else expect(v).toEqual(want);
      }
    });
  }, 120000);
});
