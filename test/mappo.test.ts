import * as tf from '@tensorflow/tfjs';
import { decodeCheckpoint, encodeCheckpoint, type JsonObject } from '../runtime/core/checkpoint';
import type { TrajectoryChunk } from '../agents/experience';
import { type Policy, type PolicyOutput, emptyContext } from '../agents/policies/policy';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import type { VectorLayout } from '../envs/env-shape';
import { type MappoHyperparams, Mappo, computeGae } from '../trainers/mappo';
import type { LearnerState } from '../trainers/learner';

/** The layout a learner collects with: its task's shape over its collection envs. */
const collectionLayout = (m: Mappo): VectorLayout => ({ ...m.task.shape, numEnvs: m.task.numEnvs });

beforeAll(async () => {
  await selectBackend('cpu');
});

const layout = (E = 2): VectorLayout => ({
  numEnvs: E,
  agentIds: ['a', 'b'],
  numAgents: 2,
  obsDim: 3,
  agentObsDims: [3, 3],
  actDim: 1,
  numActions: 4,
  agentNumActions: [4, 4],
  discreteActions: true,
  stateDim: 5,
  maxEpisodeSteps: 10,
  reportsSuccess: false,
  sharedTeamReward: false,
});

const config = (over: Partial<MappoHyperparams> = {}): MappoHyperparams => ({
  name: 'mappo',
  lr: 0.001,
  gamma: 0.99,
  gae_lambda: 0.95,
  eps_clip: 0.2,
  epochs: 2,
  num_minibatches: 2,
  entropy_coef: 0.01,
  value_loss_coef: 0.5,
  max_grad_norm: 10,
  hidden_dim: 8,
  use_rnn: true,
  obs_agent_id: true,
  obs_last_action: false,
  standardise_returns: false,
  standardise_rewards: false,
  batch_size: 10,
  rollout_length: null,
  ...over,
});

interface CollectSpec {
  T: number;
  seed: number;
  /** Row 0 starts every env's episode (the first chunk of a run). */
  firstStart?: boolean;
  /** Every row is a whole one-step episode that terminates (a bandit). */
  oneStep?: boolean;
  /** Reward of agent a for action k; default: seeded noise. */
  reward?: (a: number, k: number) => number;
  /** Masks: all legal (else action 0 plus random others). */
  allLegal?: boolean;
}

/**
 * A T-step chunk collected by acting with `m` on seeded random obs and masks, laid out like the
 * experience stream's. Unless `oneStep`: env 0 agent 1 terminates at row 1 and stays dead;
 * env 1 is truncated at row 1 and starts a new episode at row 2.
 */
function collect(m: Mappo, spec: CollectSpec, policy: Policy = m.policy): TrajectoryChunk {
  const L = collectionLayout(m);
  const { numEnvs: E, numAgents: A, obsDim, stateDim, numActions: K } = L;
  const { T } = spec;
  const rng = new Rng(spec.seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const c: TrajectoryChunk = {
    kind: 'chunk', task: 'default', taskIndex: 0, layout: L, index: 0, startStep: 0, length: T, policyVersions: new Int32Array(T), teamSize: new Int32Array(T * E).fill(A), latent: new Float32Array(0),
    obs: fill(T * E * A * obsDim), state: fill(T * E * stateDim), masks: new Uint8Array(T * E * A * K), alive: new Uint8Array(T * E * A).fill(1), episodeStart: new Uint8Array(T * E),
    actions: new Float32Array(T * E * A), extras: {}, rewards: new Float32Array(T * E * A), terminated: new Uint8Array(T * E * A), truncated: new Uint8Array(T * E * A),
    episodeDone: new Uint8Array(T * E), episodeAborted: new Uint8Array(T * E), finals: [],
    bootstrap: { obs: fill(E * A * obsDim), state: fill(E * stateDim), alive: new Uint8Array(E * A).fill(1), masks: new Uint8Array(E * A * K).fill(1), episodeStart: new Uint8Array(E), teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0) },
    episodes: [],
  };
  for (let i = 0; i < T * E * A; i++) for (let k = 0; k < K; k++) c.masks[i * K + k] = spec.allLegal || k === 0 || rng.next() < 0.5 ? 1 : 0;
  if (spec.oneStep) {
    c.episodeStart.fill(1);
    c.terminated.fill(1);
    c.episodeDone.fill(1);
    c.bootstrap.episodeStart.fill(1);
  } else {
    if (spec.firstStart) c.episodeStart.fill(1, 0, E);
    c.terminated[(1 * E + 0) * A + 1] = 1;
    for (let t = 2; t < T; t++) c.alive[(t * E + 0) * A + 1] = 0;
    for (let a = 0; a < A; a++) c.truncated[(1 * E + 1) * A + a] = 1;
    c.episodeDone[1 * E + 1] = 1;
    if (T > 2) c.episodeStart[2 * E + 1] = 1;
    c.finals.push({ t: 1, env: 1, obs: fill(A * obsDim), state: fill(stateDim) });
  }
  const extras: Record<string, Float32Array> = {};
  for (let t = 0; t < T; t++) {
    const rows = (d: number) => [t * E * A * d, (t + 1) * E * A * d] as const;
    const acts = new Float32Array(E * A);
    const out = <PolicyOutput | void>policy.act(
      {
        obs: c.obs.subarray(...rows(obsDim)), state: c.state.subarray(t * E * stateDim, (t + 1) * E * stateDim), masks: c.masks.subarray(...rows(K)),
        alive: c.alive.subarray(...rows(1)), episodeStart: c.episodeStart.subarray(t * E, (t + 1) * E), layout: L, context: emptyContext(E),
      },
      acts,
    );
    c.actions.set(acts, t * E * A);
    for (let i = 0; i < E * A; i++) c.rewards[t * E * A + i] = spec.reward ? spec.reward(i % A, acts[i]) : rng.normal();
    for (const [key, value] of Object.entries((out && out.extras) ?? {})) {
      extras[key] ??= new Float32Array(T * value.length);
      extras[key].set(value, t * value.length);
    }
  }
  c.extras = extras;
  return c;
}

const bits = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex');

describe('computeGae', () => {
  it('matches a hand-computed 3-step example with a truncation, a termination and a dead step', () => {
    // [T=3, E=1, A=2], γ = 0.9, λ = 0.5. Agent 0: episode truncated at t=1 (bootstraps from the
    // final obs value 9). Agent 1: terminates at t=0, dead at t=1, alive in the new episode at t=2.
    const { advantages, returns } = computeGae({
      T: 3, E: 1, A: 2, gamma: 0.9, lambda: 0.5,
      rewards: [1, 1, 2, 5, 3, 2],
      values: [0.5, 2, 1, 7, 1.5, 1],
      nextValues: [1, 3, 9, 0, 2, 4],
      terminated: [0, 1, 0, 0, 0, 0],
      truncated: [0, 0, 1, 0, 0, 0],
      episodeDone: [0, 1, 0],
      alive: [1, 1, 1, 0, 1, 1],
    });
    // Agent 0: t2 δ = 3 + .9·2 − 1.5 = 3.3; t1 δ = 2 + .9·9 − 1 = 9.1 (cut); t0 = 1 + .9·1 − .5 + .45·9.1 = 5.495.
    // Agent 1: t2 δ = 2 + .9·4 − 1 = 4.6; t1 dead → 0; t0 terminated: 1 − 2 = −1.
    const expectAdv = [5.495, -1, 9.1, 0, 3.3, 4.6];
    const expectRet = [5.995, 1, 10.1, 0, 4.8, 5.6];
    expectAdv.forEach((v, i) => expect(advantages[i]).toBeCloseTo(v, 5));
    expectRet.forEach((v, i) => expect(returns[i]).toBeCloseTo(v, 5));
  });
});

describe('Mappo', () => {
  it('is a chunk Trainer: chunkLength from rollout_length or ⌈batch_size·maxEpisodeSteps/numEnvs⌉; observe returns named stats', () => {
    const m = new Mappo({ layout: layout(4), config: config({ batch_size: 3 }), seed: 0 });
    expect(m.collection('default')).toEqual({ mode: 'chunk', chunkLength: Math.ceil((3 * 10) / 4) });
    expect(m.collectionPolicy('default')).toBe(m.policy);
    expect(() => m.collection('other')).toThrow(/learns task 'default', got 'other'/);
    const stats = m.observe(collect(m, { T: 4, seed: 1, firstStart: true }), 16)!;
    expect(Object.keys(stats).sort()).toEqual(['approx_kl', 'clip_frac', 'entropy', 'grad_norm', 'policy_loss', 'value_loss']);
    for (const v of Object.values(stats)) expect(Number.isFinite(v)).toBe(true);
    expect(() => m.observe({ kind: 'transition' } as never, 0)).toThrow(/chunk/);
    m.dispose();
    const r = new Mappo({ layout: layout(4), config: config({ rollout_length: 7 }), seed: 0 });
    expect(r.chunkLength).toBe(7);
    r.dispose();
  });

  it.each([true, false])('use_rnn=%s: never samples masked actions, extras per [E, A(, H)], dead agents left at 0', (useRnn) => {
    const L = layout(4);
    const m = new Mappo({ layout: L, config: config({ use_rnn: useRnn, obs_last_action: true }), seed: 1 });
    const rng = new Rng(2);
    const N = 4 * 2;
    for (let rep = 0; rep < 30; rep++) {
      const masks = new Uint8Array(N * 4);
      for (let i = 0; i < N; i++) masks[i * 4 + rng.int(4)] = 1; // one random legal action…
      for (let i = 0; i < N * 4; i++) if (rng.next() < 0.3) masks[i] = 1; // …plus some more
      const alive = Uint8Array.from({ length: N }, (_, i) => (i === 3 ? 0 : 1));
      const episodeStart = Uint8Array.from({ length: 4 }, () => (rep === 0 || rng.next() < 0.2 ? 1 : 0));
      const actions = new Float32Array(N);
      const out = m.policy.act({ obs: Float32Array.from({ length: N * 3 }, () => rng.normal()), state: new Float32Array(4 * 5), masks, alive, episodeStart, layout: L, context: emptyContext(4) }, actions);
      const ex = out.extras!;
      expect(Object.keys(ex).sort()).toEqual(useRnn ? ['h', 'last_action', 'logp', 'value'] : ['last_action', 'logp', 'value']);
      expect(ex.logp).toHaveLength(N);
      expect(ex.value).toHaveLength(N);
      if (useRnn) expect(ex.h).toHaveLength(N * 8);
      for (let e = 0; e < 4; e++) {
        if (!episodeStart[e]) continue;
        // An episode's first step starts from zero memory and no last action.
        if (useRnn) expect(ex.h.subarray(e * 2 * 8, (e + 1) * 2 * 8).every((x) => x === 0)).toBe(true);
        expect(ex.last_action[e * 2]).toBe(-1);
      }
      for (let i = 0; i < N; i++) {
        if (!alive[i]) {
          expect(actions[i]).toBe(0);
          continue;
        }
        expect(masks[i * 4 + actions[i]]).toBe(1);
        expect(ex.logp[i]).toBeLessThanOrEqual(0);
      }
    }
    m.dispose();
  });

  it('GRU: the update replays acting exactly (recomputed log-probs = acting ones; ratio 1 and approx_kl 0 at the first step)', () => {
    const m = new Mappo({ layout: layout(3), config: config({ hidden_dim: 16, obs_last_action: true, epochs: 1, num_minibatches: 1 }), seed: 4 });
    collect(m, { T: 3, seed: 20, firstStart: true }); // acting memory is non-zero at the next chunk's row 0
    const chunk = collect(m, { T: 6, seed: 21 });
    const acting = chunk.extras.logp;
    const replay = m.recomputeLogp(chunk);
    let maxDiff = 0;
    for (let i = 0; i < acting.length; i++) if (chunk.alive[i]) maxDiff = Math.max(maxDiff, Math.abs(replay[i] - acting[i]));
    expect(maxDiff).toBeLessThan(1e-5);
    // Teeth: replaying from a zero state (instead of the stored one) gives different log-probs.
    const wrongH = { ...chunk, extras: { ...chunk.extras, h: new Float32Array(chunk.extras.h.length) } };
    const wrong = m.recomputeLogp(wrongH);
    let wrongDiff = 0;
    for (let i = 0; i < acting.length; i++) if (chunk.alive[i]) wrongDiff = Math.max(wrongDiff, Math.abs(wrong[i] - acting[i]));
    expect(wrongDiff).toBeGreaterThan(1e-4);
    // One epoch, one minibatch: the stats come from the only gradient step, taken at ratio 1.
    const stats = m.update(chunk)!;
    expect(Math.abs(stats.approx_kl)).toBeLessThan(1e-7);
    expect(stats.clip_frac).toBe(0);
    m.dispose();
  });

  it('does not leak tensors over 100 updates (with acting and a greedy policy in between)', () => {
    const m = new Mappo({ layout: layout(), config: config({ standardise_returns: true, standardise_rewards: true, obs_last_action: true }), seed: 3 });
    const greedy = m.evaluationPolicy('default', 2, 'eval');
    m.update(collect(m, { T: 3, seed: 0, firstStart: true }));
    const before = tf.memory().numTensors;
    for (let i = 1; i <= 100; i++) {
      m.update(collect(m, { T: 3, seed: i }));
      if (i % 10 === 0) collect(m, { T: 2, seed: i }, greedy);
    }
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it.each(['mappo', 'ippo'] as const)('%s: same seed gives identical stats over 3 updates', (name) => {
    const run = () => {
      const m = new Mappo({ layout: layout(), config: config({ name }), seed: 'same' });
      const stats = [0, 1, 2].map((i) => m.update(collect(m, { T: 5, seed: i, firstStart: i === 0 }))!);
      m.dispose();
      return stats;
    };
    const a = run();
    const b = run();
    expect(a).toEqual(b);
    for (const s of a) for (const v of Object.values(s)) expect(Number.isFinite(v)).toBe(true);
    expect(a[0].entropy).toBeGreaterThan(0);
  });

  it.each([true, false])('use_rnn=%s: fits the value of a fixed batch: plain value loss falls over repeated updates', (useRnn) => {
    const m = new Mappo({ layout: layout(), config: config({ lr: 0.01, epochs: 4, use_rnn: useRnn }), seed: 5, clipValueLoss: false });
    const chunk = collect(m, { T: 4, seed: 9, firstStart: true });
    const first = m.update(chunk)!.value_loss;
    let last = first;
    for (let i = 0; i < 15; i++) last = m.update(chunk)!.value_loss;
    expect(last).toBeLessThan(first * 0.8);
    m.dispose();
  });

  it.each([true, false])('use_rnn=%s: capture → restore into a fresh trainer continues bit-for-bit', async (useRnn) => {
    const cfg = config({ use_rnn: useRnn, obs_last_action: true, standardise_returns: true, standardise_rewards: true });
    const a = new Mappo({ layout: layout(), config: cfg, seed: 'a' });
    a.update(collect(a, { T: 5, seed: 1, firstStart: true }));
    a.update(collect(a, { T: 5, seed: 2 }));
    const state = await a.captureState();
    // Through the checkpoint encoding, as a run's checkpoint would carry it.
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
      return { actions: [c1.actions, c2.actions].map(bits), extras: [c1, c2].flatMap((c) => Object.keys(c.extras).sort().map((k) => `${k}:${bits(c.extras[k])}`)), stats: [s1, s2] };
    };
    const expected = continueRun(a);
    const b = new Mappo({ layout: layout(), config: cfg, seed: 'b' });
    const unrestored = new Mappo({ layout: layout(), config: cfg, seed: 'b' });
    await b.restoreState(restored);
    const got = continueRun(b);
    expect(got.actions).toEqual(expected.actions);
    expect(got.extras).toEqual(expected.extras);
    expect(got.stats).toEqual(expected.stats);
    // Teeth: without the restore the same trainer acts and learns differently.
    const other = continueRun(unrestored);
    expect(other.extras).not.toEqual(expected.extras);
    expect(other.stats).not.toEqual(expected.stats);
    [a, b, unrestored].forEach((m) => m.dispose());
  });

  it('restoreState names what is missing or mis-shaped', async () => {
    const a = new Mappo({ layout: layout(), config: config(), seed: 1 });
    const s = await a.captureState();
    const { 'fc1/w': _dropped, ...actorRest } = s.models.actor;
    void _dropped;
    await expect(a.restoreState({ ...s, models: { ...s.models, actor: actorRest } })).rejects.toThrow(/actor.*fc1\/w/);
    await expect(a.restoreState({ ...s, rngs: { act: s.rngs.act } })).rejects.toThrow(/minibatch/);
    const wide = new Mappo({ layout: layout(), config: config({ hidden_dim: 16 }), seed: 1 });
    await expect(wide.restoreState(s)).rejects.toThrow(/hidden/);
    await expect(wide.restoreState({ ...s, arrays: (await wide.captureState()).arrays })).rejects.toThrow(/actor.*fc1\/w/);
    a.dispose();
    wide.dispose();
  });

  it('evaluationPolicy: greedy over legal actions (ties → lowest index), memory of its own', () => {
    const L = layout(3);
    const m = new Mappo({ layout: L, config: config({ hidden_dim: 8 }), seed: 6 });
    // Training acting alone, and with a greedy policy acting in between: same actions, so
    // evaluation never touches the training policy's memory or random stream.
    const ref = new Mappo({ layout: L, config: config({ hidden_dim: 8 }), seed: 6 });
    const greedy = m.evaluationPolicy('default', 5, 'e');
    const g = new Mappo({ layout: layout(5), config: config(), seed: 0 }); // only builds chunk arrays for 5 envs
    collect(ref, { T: 3, seed: 1, firstStart: true });
    collect(m, { T: 3, seed: 1, firstStart: true });
    collect(g, { T: 3, seed: 7, firstStart: true }, greedy);
    expect(bits(collect(m, { T: 3, seed: 2 }).actions)).toBe(bits(collect(ref, { T: 3, seed: 2 }).actions));
    // All-zero actor weights: every logit ties, so the greedy choice is the lowest legal action.
    tf.tidy(() => Object.values(m.actor.namedVariables()).forEach((v) => v.assign(tf.zerosLike(v))));
    const zeroGreedy = m.evaluationPolicy('default', 5, 'e2');
    const c = collect(g, { T: 3, seed: 8, firstStart: true }, zeroGreedy);
    const K = 4;
    for (let i = 0; i < c.alive.length; i++) {
      if (!c.alive[i]) continue;
      let lowest = 0;
      while (!c.masks[i * K + lowest]) lowest++;
      expect(c.actions[i]).toBe(lowest);
    }
    [m, ref, g].forEach((x) => x.dispose());
  });

  // A bandit: agent 0 is paid for action 2, agent 1 for action 1. Learned on both backends.
  it.each(['cpu', 'wasm'] as const)('learns a per-agent bandit on the %s backend; the greedy policy picks the paid action', async (backend) => {
    await selectBackend(backend);
    try {
      const L = layout(8);
      const paid = [2, 1];
      const m = new Mappo({ layout: L, config: config({ lr: 0.02, hidden_dim: 16, epochs: 4, num_minibatches: 1, entropy_coef: 0.001 }), seed: 7 });
      const reward = (a: number, k: number) => (k === paid[a] ? 1 : 0);
      const stats = [];
      const updates = 15;
      for (let u = 0; u < updates; u++) stats.push(m.update(collect(m, { T: 4, seed: 100 + u, oneStep: true, reward, allLegal: true }))!);
      expect(stats[updates - 1].entropy).toBeLessThan(stats[0].entropy * 0.7);
      expect(stats[updates - 1].policy_loss).not.toBe(stats[0].policy_loss);
      const greedy = m.evaluationPolicy('default', L.numEnvs, 'eval');
      const c = collect(m, { T: 3, seed: 999, oneStep: true, allLegal: true }, greedy);
      for (let i = 0; i < c.actions.length; i++) expect(c.actions[i]).toBe(paid[i % 2]);
      // With the paid action illegal, greedy still respects the mask.
      const masked = collect(m, { T: 3, seed: 1000, oneStep: true }, greedy);
      for (let i = 0; i < masked.actions.length; i++) expect(masked.masks[i * 4 + masked.actions[i]]).toBe(1);
      m.dispose();
    } finally {
      await selectBackend('cpu');
    }
  });

  // Without the agent id, only separate weights can tell the two agents apart.
  it('parameter_sharing false: agents learn different actions from the same inputs; shared weights cannot', () => {
    const L = layout(8);
    const paid = [2, 1];
    const reward = (a: number, k: number) => (k === paid[a] ? 1 : 0);
    const correct = (sharing: boolean) => {
      const m = new Mappo({ layout: L, config: config({ lr: 0.02, hidden_dim: 16, epochs: 4, entropy_coef: 0.001, obs_agent_id: false, parameter_sharing: sharing, num_minibatches: 2 }), seed: 7 });
      for (let u = 0; u < 15; u++) m.update(collect(m, { T: 4, seed: 100 + u, oneStep: true, reward, allLegal: true }));
      const c = collect(m, { T: 3, seed: 999, oneStep: true, allLegal: true }, m.evaluationPolicy('default', L.numEnvs, 'eval'));
      let right = 0;
      for (let i = 0; i < c.actions.length; i++) right += c.actions[i] === paid[i % 2] ? 1 : 0;
      m.dispose();
      return right / c.actions.length;
    };
    expect(correct(false)).toBe(1);
    expect(correct(true)).toBeLessThan(0.8);
  });
});

/**
 * A memory task: each episode is two steps; the first observation shows a cue (±1), the second
 * is blank, and the second action is paid when it names the cue (0 or 1). Only an actor that
 * carries the cue in its hidden state, trained through time, can do better than chance.
 */
function collectCue(m: Mappo, seed: number, policy: Policy = m.policy): TrajectoryChunk {
  const L = collectionLayout(m);
  const { numEnvs: E, numAgents: A, obsDim, stateDim, numActions: K } = L;
  const T = 8;
  const S = E * A;
  const rng = new Rng(seed);
  const c: TrajectoryChunk = {
    kind: 'chunk', task: 'default', taskIndex: 0, layout: L, index: 0, startStep: 0, length: T, policyVersions: new Int32Array(T), teamSize: new Int32Array(T * E).fill(A), latent: new Float32Array(0),
    obs: new Float32Array(T * S * obsDim), state: new Float32Array(T * E * stateDim), masks: new Uint8Array(T * S * K).fill(1), alive: new Uint8Array(T * S).fill(1), episodeStart: new Uint8Array(T * E),
    actions: new Float32Array(T * S), extras: {}, rewards: new Float32Array(T * S), terminated: new Uint8Array(T * S), truncated: new Uint8Array(T * S),
    episodeDone: new Uint8Array(T * E), episodeAborted: new Uint8Array(T * E), finals: [],
    bootstrap: { obs: new Float32Array(S * obsDim), state: new Float32Array(E * stateDim), alive: new Uint8Array(S).fill(1), masks: new Uint8Array(S * K).fill(1), episodeStart: new Uint8Array(E).fill(1), teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0) },
    episodes: [],
  };
  const cue = new Int32Array(S);
  const extras: Record<string, Float32Array> = {};
  for (let t = 0; t < T; t++) {
    const first = t % 2 === 0;
    for (let i = 0; i < S; i++) {
      if (first) {
        cue[i] = rng.int(2);
        c.obs[(t * S + i) * obsDim] = cue[i] ? 1 : -1;
      } else {
        c.terminated[t * S + i] = 1;
      }
    }
    (first ? c.episodeStart : c.episodeDone).fill(1, t * E, (t + 1) * E);
    const acts = new Float32Array(S);
    const out = <PolicyOutput | void>policy.act(
      {
        obs: c.obs.subarray(t * S * obsDim, (t + 1) * S * obsDim), state: c.state.subarray(t * E * stateDim, (t + 1) * E * stateDim),
        masks: c.masks.subarray(t * S * K, (t + 1) * S * K), alive: c.alive.subarray(t * S, (t + 1) * S), episodeStart: c.episodeStart.subarray(t * E, (t + 1) * E), layout: L, context: emptyContext(E),
      },
      acts,
    );
    c.actions.set(acts, t * S);
    for (let i = 0; i < S; i++) c.rewards[t * S + i] = !first && acts[i] === cue[i] ? 1 : 0;
    for (const [key, value] of Object.entries((out && out.extras) ?? {})) {
      extras[key] ??= new Float32Array(T * value.length);
      extras[key].set(value, t * value.length);
    }
  }
  c.extras = extras;
  return c;
}

describe('Mappo GRU training (wasm)', () => {
  it('learns to recall a cue across steps with use_rnn; the feed-forward actor cannot', async () => {
    await selectBackend('wasm');
    try {
      const success = (useRnn: boolean) => {
        const m = new Mappo({ layout: layout(8), config: config({ use_rnn: useRnn, lr: 0.01, hidden_dim: 16, epochs: 4, num_minibatches: 1, entropy_coef: 0.001 }), seed: 7 });
        for (let u = 0; u < 30; u++) m.update(collectCue(m, 100 + u));
        const c = collectCue(m, 999, m.evaluationPolicy('default', m.task.numEnvs, 'eval'));
        m.dispose();
        return c.rewards.reduce((a, b) => a + b, 0) / (c.rewards.length / 2);
      };
      expect(success(true)).toBeGreaterThan(0.95);
      expect(success(false)).toBeLessThan(0.75);
    } finally {
      await selectBackend('cpu');
    }
  });
});
