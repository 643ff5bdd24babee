import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { lastValueFrom } from 'rxjs';
import { RandomPolicy } from '../agents/policies/random-policy';
import { decodeCheckpoint, encodeCheckpoint, type JsonObject } from '../runtime/core/checkpoint';
import { validateRunConfig } from '../runtime/training/config-loader';
import { evaluatePolicy } from '../runtime/rollout/evaluation';
import type { TrajectoryChunk } from '../agents/experience';
import { type Policy, type PolicyBatch, type PolicyOutput, emptyContext } from '../agents/policies/policy';
import { consumeEach, experienceStream } from '../runtime/rollout/experience-stream';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { type VectorLayout, layoutFor } from '../envs/env-shape';
import { createLearner } from '../trainers/index';
import { taskOfLayout } from '../trainers/learner';
import { gaussianEntropy, gaussianLogProb, sampleGaussianRow } from '../agents/policies/gaussian';
import { type MappoHyperparams, Mappo } from '../trainers/mappo';
import type { LearnerState } from '../trainers/learner';
import { PointReachEnv } from './fixtures/point-reach-env';

// wasm for speed; the point-reach test also trains on cpu.
/** The layout a learner collects with: its task's shape over its collection envs. */
const collectionLayout = (m: Mappo): VectorLayout => ({ ...m.task.shape, numEnvs: m.task.numEnvs });

beforeAll(async () => {
  await selectBackend('wasm');
});

const POINT_REACH = { id: 'point-reach', module: path.join(__dirname, 'fixtures', 'point-reach-env.js'), options: { numAgents: 2 } };

/** The point-reach layout (2 agents, Box(-1, 1, [2]) actions) for E envs. */
const layout = (E = 2): VectorLayout => layoutFor(new PointReachEnv({ numAgents: 2 }), E);

const config = (over: Partial<MappoHyperparams> = {}): MappoHyperparams => ({
  name: 'mappo',
  lr: 0.003,
  gamma: 0.95,
  gae_lambda: 0.95,
  eps_clip: 0.2,
  epochs: 4,
  num_minibatches: 2,
  entropy_coef: 0,
  value_loss_coef: 0.5,
  max_grad_norm: 10,
  hidden_dim: 32,
  use_rnn: false,
  obs_agent_id: true,
  obs_last_action: false,
  standardise_returns: true,
  standardise_rewards: false,
  batch_size: 10,
  rollout_length: 20,
  log_std_init: -0.5,
  ...over,
});

const bits = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex');

/**
 * A T-step chunk of synthetic experience (seeded random obs/state), acting with `policy`;
 * reward −|action − 0.5| per dimension. Env 0 agent 1 terminates at row 1 and stays dead; env 1
 * is truncated at row 1 (with a final observation) and starts a new episode at row 2.
 */
function collect(m: Mappo, spec: { T: number; seed: number; firstStart?: boolean }, policy: Policy = m.policy): TrajectoryChunk {
  const L = collectionLayout(m);
  const { numEnvs: E, numAgents: A, obsDim, stateDim, actDim: D } = L;
  const { T } = spec;
  const S = E * A;
  const rng = new Rng(spec.seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const c: TrajectoryChunk = {
    kind: 'chunk', task: 'default', taskIndex: 0, layout: L, index: 0, startStep: 0, length: T, policyVersions: new Int32Array(T), teamSize: new Int32Array(T * E).fill(A), latent: new Float32Array(0),
    obs: fill(T * S * obsDim), state: fill(T * E * stateDim), masks: new Uint8Array(0), alive: new Uint8Array(T * S).fill(1), episodeStart: new Uint8Array(T * E),
    actions: new Float32Array(T * S * D), extras: {}, rewards: new Float32Array(T * S), terminated: new Uint8Array(T * S), truncated: new Uint8Array(T * S),
    episodeDone: new Uint8Array(T * E), episodeAborted: new Uint8Array(T * E), finals: [],
    bootstrap: { obs: fill(S * obsDim), state: fill(E * stateDim), alive: new Uint8Array(S).fill(1), masks: new Uint8Array(0), episodeStart: new Uint8Array(E), teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0) },
    episodes: [],
  };
  if (spec.firstStart) c.episodeStart.fill(1, 0, E);
  c.terminated[(1 * E + 0) * A + 1] = 1;
  for (let t = 2; t < T; t++) c.alive[(t * E + 0) * A + 1] = 0;
  for (let a = 0; a < A; a++) c.truncated[(1 * E + 1) * A + a] = 1;
  c.episodeDone[1 * E + 1] = 1;
  if (T > 2) c.episodeStart[2 * E + 1] = 1;
  c.finals.push({ t: 1, env: 1, obs: fill(A * obsDim), state: fill(stateDim) });
  const extras: Record<string, Float32Array> = {};
  for (let t = 0; t < T; t++) {
    const acts = new Float32Array(S * D);
    const out = <PolicyOutput | void>policy.act(
      {
        obs: c.obs.subarray(t * S * obsDim, (t + 1) * S * obsDim), state: c.state.subarray(t * E * stateDim, (t + 1) * E * stateDim), masks: new Uint8Array(0),
        alive: c.alive.subarray(t * S, (t + 1) * S), episodeStart: c.episodeStart.subarray(t * E, (t + 1) * E), layout: L, context: emptyContext(E),
      },
      acts,
    );
    c.actions.set(acts, t * S * D);
    for (let i = 0; i < S; i++) for (let d = 0; d < D; d++) c.rewards[t * S + i] -= Math.abs(acts[i * D + d] - 0.5);
    for (const [key, value] of Object.entries((out && out.extras) ?? {})) {
      extras[key] ??= new Float32Array(T * value.length);
      extras[key].set(value, t * value.length);
    }
  }
  c.extras = extras;
  return c;
}

describe('Gaussian policy helpers', () => {
  it('log-prob and entropy match the closed forms; sampled log-probs match the tensor ones', () => {
    const x = [0.3, -1.2, 2];
    const mean = [0.1, 0.5, -0.4];
    const logStd = [0, -0.7, 0.4];
    let want = 0;
    let wantEntropy = 0;
    for (let d = 0; d < 3; d++) {
      const s = Math.exp(logStd[d]);
      want += Math.log(Math.exp(-((x[d] - mean[d]) ** 2) / (2 * s * s)) / (s * Math.sqrt(2 * Math.PI)));
      wantEntropy += 0.5 * Math.log(2 * Math.PI * Math.E * s * s);
    }
    const got = tf.tidy(() => gaussianLogProb(tf.tensor2d([x, x]), tf.tensor2d([mean, mean]), tf.tensor1d(logStd)).dataSync());
    expect(Array.from(got)).toHaveLength(2);
    expect(got[0]).toBeCloseTo(want, 5);
    expect(got[1]).toBeCloseTo(want, 5);
    expect(tf.tidy(() => gaussianEntropy(tf.tensor1d(logStd)).dataSync()[0])).toBeCloseTo(wantEntropy, 5);
    // A standard normal in 1-d: log-density at 0 is −½·log 2π, entropy ½·log 2πe.
    expect(tf.tidy(() => gaussianLogProb(tf.tensor1d([0]), tf.tensor1d([0]), tf.tensor1d([0])).dataSync()[0])).toBeCloseTo(-0.5 * Math.log(2 * Math.PI), 6);

    // Sampling: moments of the draws, and the float64 log-prob equals the tensor formula.
    const rng = new Rng(5);
    const n = 20000;
    const means = Float32Array.from({ length: n * 3 }, (_, i) => mean[i % 3]);
    const raw = new Float32Array(n * 3);
    const logps = Float32Array.from({ length: n }, (_, r) => sampleGaussianRow(means, logStd, r, 3, rng, raw));
    for (let d = 0; d < 3; d++) {
      let s1 = 0;
      let s2 = 0;
      for (let r = 0; r < n; r++) {
        s1 += raw[r * 3 + d];
        s2 += raw[r * 3 + d] ** 2;
      }
      const m = s1 / n;
      expect(m).toBeCloseTo(mean[d], 1);
      expect(Math.sqrt(s2 / n - m * m)).toBeCloseTo(Math.exp(logStd[d]), 1);
    }
    const tensorLogps = tf.tidy(() => gaussianLogProb(tf.tensor2d(raw, [n, 3]), tf.tensor2d(means, [n, 3]), tf.tensor1d(logStd)).dataSync());
    let maxDiff = 0;
    for (let r = 0; r < n; r++) maxDiff = Math.max(maxDiff, Math.abs(tensorLogps[r] - logps[r]));
    expect(maxDiff).toBeLessThan(1e-4);
  });
});

describe('Mappo with Box actions', () => {
  it('acts: env actions are the unclipped samples clipped to the Box; raw_action/logp extras; dead agents get 0', () => {
    const m = new Mappo({ layout: layout(4), config: config({ log_std_init: 0.5 }), seed: 1 });
    const c = collect(m, { T: 6, seed: 2, firstStart: true });
    expect(Object.keys(c.extras).sort()).toEqual(['logp', 'raw_action', 'value']);
    const raw = c.extras.raw_action;
    expect(raw).toHaveLength(c.actions.length);
    let outside = 0;
    for (let i = 0; i < c.alive.length; i++) {
      for (let d = 0; d < 2; d++) {
        const k = i * 2 + d;
        if (!c.alive[i]) {
          expect(c.actions[k]).toBe(0);
          continue;
        }
        expect(c.actions[k]).toBeGreaterThanOrEqual(-1);
        expect(c.actions[k]).toBeLessThanOrEqual(1);
        expect(c.actions[k]).toBe(Math.fround(Math.min(1, Math.max(-1, raw[k]))));
        if (Math.abs(raw[k]) > 1) outside++;
      }
    }
    // σ = e^0.5 ≈ 1.65, so many samples fall outside the box and the clip is exercised.
    expect(outside).toBeGreaterThan(5);
    m.dispose();
  });

  it.each([false, true])('use_rnn=%s: the update recomputes acting log-probs of the unclipped samples (ratio 1 at the first step)', (useRnn) => {
    const m = new Mappo({ layout: layout(3), config: config({ use_rnn: useRnn, hidden_dim: 16, epochs: 1, num_minibatches: 1, log_std_init: 0.3 }), seed: 4 });
    collect(m, { T: 3, seed: 20, firstStart: true });
    const chunk = collect(m, { T: 6, seed: 21 });
    const replay = m.recomputeLogp(chunk);
    let maxDiff = 0;
    for (let i = 0; i < replay.length; i++) if (chunk.alive[i]) maxDiff = Math.max(maxDiff, Math.abs(replay[i] - chunk.extras.logp[i]));
    expect(maxDiff).toBeLessThan(1e-4);
    // Teeth: the log-probs of the clipped actions are different.
    const clipped = m.recomputeLogp({ ...chunk, extras: { ...chunk.extras, raw_action: chunk.actions } });
    let clipDiff = 0;
    for (let i = 0; i < replay.length; i++) if (chunk.alive[i]) clipDiff = Math.max(clipDiff, Math.abs(clipped[i] - chunk.extras.logp[i]));
    expect(clipDiff).toBeGreaterThan(0.01);
    const stats = m.update(chunk)!;
    expect(Math.abs(stats.approx_kl)).toBeLessThan(1e-6);
    expect(stats.clip_frac).toBe(0);
    // Entropy is the Gaussian's: Σ_d (log σ + ½·log 2πe) at the initial log-std.
    expect(stats.entropy).toBeCloseTo(2 * (0.3 + 0.5 * Math.log(2 * Math.PI * Math.E)), 5);
    m.dispose();
  });

  it('the log-std learns: it falls when only the mean action is paid, and Adam moves it', () => {
    const m = new Mappo({ layout: layout(4), config: config({ lr: 0.01, log_std_init: 0 }), seed: 2 });
    for (let u = 0; u < 15; u++) m.update(collect(m, { T: 6, seed: u, firstStart: u === 0 }));
    const logStd = m.logStd!.dataSync();
    for (const v of logStd) expect(v).toBeLessThan(-0.1);
    m.dispose();
  });

  it('parameter_sharing false: one log-std row per agent; trains and acts', () => {
    const m = new Mappo({ layout: layout(4), config: config({ parameter_sharing: false, obs_agent_id: false }), seed: 3 });
    expect(m.logStd!.shape).toEqual([2, 2]);
    for (let u = 0; u < 3; u++) for (const v of Object.values(m.update(collect(m, { T: 5, seed: u, firstStart: u === 0 }))!)) expect(Number.isFinite(v)).toBe(true);
    m.dispose();
  });

  it('does not leak tensors over 40 updates (acting, greedy and sampling evaluation in between)', () => {
    const m = new Mappo({ layout: layout(), config: config({ use_rnn: true, hidden_dim: 8, standardise_rewards: true }), seed: 3 });
    const greedy = m.evaluationPolicy('default', 2, 'eval');
    const sampled = m.evaluationPolicy('default', 2, 'eval', { sample: true });
    m.update(collect(m, { T: 3, seed: 0, firstStart: true }));
    const before = tf.memory().numTensors;
    for (let i = 1; i <= 40; i++) {
      m.update(collect(m, { T: 3, seed: i }));
      if (i % 10 === 0) {
        collect(m, { T: 2, seed: i }, greedy);
        collect(m, { T: 2, seed: i }, sampled);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it('evaluation: greedy sends the clipped mean (deterministic); sampling stays in bounds and differs', () => {
    const m = new Mappo({ layout: layout(3), config: config({ hidden_dim: 8 }), seed: 6 });
    // A large output bias pushes the mean outside the box on dimension 0.
    tf.tidy(() => m.actor.namedVariables()['out/b'].assign(tf.tensor1d([5, -0.25])));
    const g1 = collect(m, { T: 3, seed: 1, firstStart: true }, m.evaluationPolicy('default', 3, 'e'));
    const g2 = collect(m, { T: 3, seed: 1, firstStart: true }, m.evaluationPolicy('default', 3, 'f'));
    expect(bits(g1.actions)).toBe(bits(g2.actions));
    for (let i = 0; i < g1.alive.length; i++) if (g1.alive[i]) expect(g1.actions[i * 2]).toBe(1);
    const s1 = collect(m, { T: 3, seed: 1, firstStart: true }, m.evaluationPolicy('default', 3, 'e', { sample: true }));
    const s2 = collect(m, { T: 3, seed: 1, firstStart: true }, m.evaluationPolicy('default', 3, 'e', { sample: true }));
    expect(bits(s1.actions)).toBe(bits(s2.actions));
    expect(bits(s1.actions)).not.toBe(bits(g1.actions));
    for (const v of s1.actions) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    m.dispose();
  });

  it.each([true, false])('use_rnn=%s: capture → restore (log-std and its Adam slots included) continues bit-for-bit', async (useRnn) => {
    const cfg = config({ use_rnn: useRnn, hidden_dim: 16, standardise_rewards: true });
    const a = new Mappo({ layout: layout(), config: cfg, seed: 'a' });
    a.update(collect(a, { T: 5, seed: 1, firstStart: true }));
    a.update(collect(a, { T: 5, seed: 2 }));
    const state = await a.captureState();
    expect(Object.keys(state.models.actor)).toContain('log_std');
    expect(state.optimizers.adam.weights.map((w) => w.name)).toEqual(expect.arrayContaining(['actor/log_std/m', 'actor/log_std/v']));
    const back = decodeCheckpoint(
      encodeCheckpoint({
        createdAt: '', config: {}, counters: { envSteps: 0, episodes: 0, updates: 0, logIndex: 0 }, backend: tf.getBackend(),
        models: state.models, optimizers: state.optimizers, rngs: state.rngs, arrays: state.arrays, metadata: { trainer: state.json },
      }),
      'mem.ckpt',
    );
    const restored: LearnerState = { models: back.models, optimizers: back.optimizers, rngs: back.rngs, arrays: back.arrays, json: back.metadata.trainer as JsonObject };
    const continueRun = (m: Mappo) => {
      const c1 = collect(m, { T: 5, seed: 3 });
      const s1 = m.update(c1)!;
      const c2 = collect(m, { T: 5, seed: 4 });
      const s2 = m.update(c2)!;
      return { actions: [c1.actions, c2.actions].map(bits), extras: [c1, c2].flatMap((c) => Object.keys(c.extras).sort().map((k) => `${k}:${bits(c.extras[k])}`)), stats: [s1, s2], logStd: bits(m.logStd!.dataSync() as Float32Array) };
    };
    const expected = continueRun(a);
    const b = new Mappo({ layout: layout(), config: cfg, seed: 'b' });
    await b.restoreState(restored);
    expect(continueRun(b)).toEqual(expected);
    // Teeth: restoring everything but the log-std's Adam slots (zeroed) changes the run.
    const c = new Mappo({ layout: layout(), config: cfg, seed: 'b' });
    const zeroedSlots = {
      ...restored.optimizers.adam,
      weights: restored.optimizers.adam.weights.map((w) => (w.name.startsWith('actor/log_std/') ? { name: w.name, tensor: { ...w.tensor, data: new Uint8Array(w.tensor.data.length) } } : w)),
    };
    await c.restoreState({ ...restored, optimizers: { adam: zeroedSlots } });
    expect(continueRun(c).logStd).not.toEqual(expected.logStd);
    // A checkpoint without the log-std is refused, naming it.
    const { log_std: _dropped, ...actorRest } = state.models.actor;
    void _dropped;
    await expect(b.restoreState({ ...state, models: { ...state.models, actor: actorRest } })).rejects.toThrow(/actor.*log_std/);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('createLearner builds mappo/ippo for Box shapes from a config with log_std_init; obs_last_action is refused', () => {
    const run = (algo: Record<string, unknown>) => validateRunConfig({ env: { id: 'point-reach' }, algo, run: { num_envs: 2 } }, 'test');
    const learn = (l: VectorLayout, algo: Record<string, unknown>) => createLearner({ config: run(algo).algo, tasks: [taskOfLayout(l)], seed: 0 });
    const t = learn(layout(), { name: 'ippo', log_std_init: -1, use_rnn: false }) as Mappo;
    expect(Array.from(t.logStd!.dataSync())).toEqual([-1, -1]);
    t.dispose();
    expect(() => learn(layout(), { name: 'mappo', obs_last_action: true })).toThrow(/obs_last_action/);
    expect(() => learn({ ...layout(), actionLow: undefined }, { name: 'mappo' })).toThrow(/Box/);
  });
});

/**
 * Trains on the point-reach fixture (2 agents, 8 envs, 20-step episodes) through the real
 * vector env and experience stream; every action the env receives is checked against the Box.
 */
async function trainPointReach(over: Partial<MappoHyperparams>, updates: number): Promise<{ learned: number; success: number; random: number; outside: number }> {
  const vec = await VectorEnv.create({ env: POINT_REACH, numEnvs: 8, seed: 1 });
  const evalVec = await VectorEnv.create({ env: POINT_REACH, numEnvs: 16, seed: 99 });
  const m = new Mappo({ layout: vec.layout, config: config(over), seed: 0 });
  let outside = 0;
  const checked: Policy = {
    act: (batch: PolicyBatch, actions: Float32Array) => {
      const out = m.policy.act(batch, actions);
      for (const v of actions) if (!(v >= -1 && v <= 1)) throw new Error(`action ${v} outside [-1, 1]`);
      for (const v of out.extras!.raw_action) if (Math.abs(v) > 1) outside++;
      return out;
    },
  };
  try {
    await lastValueFrom(experienceStream(vec, checked, { mode: 'chunk', chunkLength: 20, maxSteps: 20 * updates, bufferSize: 1 }).pipe(consumeEach((c) => m.update(c))), { defaultValue: undefined });
    const learned = await evaluatePolicy(evalVec, m.evaluationPolicy('default', evalVec.numEnvs, 'eval'), 32);
    const random = await evaluatePolicy(evalVec, new RandomPolicy(evalVec.layout, 3), 32);
    return { learned: learned.meanReturn, success: learned.successRate ?? 0, random: random.meanReturn, outside };
  } finally {
    m.dispose();
    await vec.close();
    await evalVec.close();
  }
}

describe('Mappo with Box actions learns point-reach', () => {
  // Random actions score about −44 (two agents × 20 steps × mean distance); reaching both goals
  // quickly scores about −7. A sign error in the log-prob or the surrogate fails this.
  it.each([
    ['mappo', 'wasm', false, 32, 25],
    ['ippo', 'wasm', false, 32, 25],
    ['mappo', 'wasm', true, 16, 20],
    ['mappo', 'cpu', false, 16, 20],
  ] as const)('%s on %s (use_rnn=%s, hidden %i, %i updates of 160 env steps)', async (name, backend, useRnn, hidden, updates) => {
    await selectBackend(backend);
    try {
      const r = await trainPointReach({ name, use_rnn: useRnn, hidden_dim: hidden }, updates);
      expect(r.random).toBeLessThan(-35);
      expect(r.learned).toBeGreaterThan(r.random + 25);
      expect(r.success).toBeGreaterThan(0.6);
      expect(r.outside).toBeGreaterThan(0); // clipping really happened on the way
    } finally {
      await selectBackend('wasm');
    }
  });
});
