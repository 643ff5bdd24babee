import * as tf from '@tensorflow/tfjs';
import type { TrajectoryChunk } from '../runtime/experience';
import { Rng } from '../runtime/rng';
import type { VectorLayout } from '../runtime/vector-layout';
import { type MappoHyperparams, Mappo, computeGae } from '../trainers/mappo';

beforeAll(async () => {
  await tf.setBackend('cpu');
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
  obs_agent_id: true,
  standardise_returns: false,
  standardise_rewards: false,
  ...over,
});

/** A T-step chunk collected by acting with `m` on seeded random obs, with a death, a truncation and random masks. */
function makeChunk(m: Mappo, T: number, seed: number): TrajectoryChunk {
  const L = m.layout;
  const { numEnvs: E, numAgents: A, obsDim, stateDim, numActions: K } = L;
  const rng = new Rng(seed);
  const fill = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const c: TrajectoryChunk = {
    kind: 'chunk', layout: L, index: 0, startStep: 0, length: T,
    obs: fill(T * E * A * obsDim), state: fill(T * E * stateDim), masks: new Uint8Array(T * E * A * K), alive: new Uint8Array(T * E * A).fill(1), episodeStart: new Uint8Array(T * E),
    actions: new Float32Array(T * E * A), extras: {}, rewards: fill(T * E * A), terminated: new Uint8Array(T * E * A), truncated: new Uint8Array(T * E * A),
    episodeDone: new Uint8Array(T * E), episodeAborted: new Uint8Array(T * E), finals: [],
    bootstrap: { obs: fill(E * A * obsDim), state: fill(E * stateDim), alive: new Uint8Array(E * A).fill(1), masks: new Uint8Array(E * A * K).fill(1), episodeStart: new Uint8Array(E) },
    episodes: [],
  };
  for (let i = 0; i < T * E * A; i++) for (let k = 0; k < K; k++) c.masks[i * K + k] = k === 0 || rng.next() < 0.5 ? 1 : 0;
  // Env 0 agent 1 dies at row 1 (terminated) and is dead after; env 1 is truncated at row 1.
  c.terminated[(1 * E + 0) * A + 1] = 1;
  for (let t = 2; t < T; t++) c.alive[(t * E + 0) * A + 1] = 0;
  for (let a = 0; a < A; a++) c.truncated[(1 * E + 1) * A + a] = 1;
  c.episodeDone[1 * E + 1] = 1;
  c.finals.push({ t: 1, env: 1, obs: fill(A * obsDim), state: fill(stateDim) });
  const logp = new Float32Array(T * E * A);
  const value = new Float32Array(T * E * A);
  for (let t = 0; t < T; t++) {
    const r = (x: number, d: number) => [x * d, (x + E * A) * d] as const;
    const acts = new Float32Array(E * A);
    const out = m.act(
      {
        obs: c.obs.subarray(...r(t * E * A, obsDim)), state: c.state.subarray(t * E * stateDim, (t + 1) * E * stateDim),
        masks: c.masks.subarray(...r(t * E * A, K)), alive: c.alive.subarray(t * E * A, (t + 1) * E * A), episodeStart: c.episodeStart.subarray(t * E, (t + 1) * E), layout: L,
      },
      acts,
    );
    c.actions.set(acts, t * E * A);
    logp.set(out.extras!.logp, t * E * A);
    value.set(out.extras!.value, t * E * A);
  }
  c.extras = { logp, value };
  return c;
}

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
  it('never samples masked actions, returns logp/value per [E, A] and leaves dead agents at 0', () => {
    const L = layout(4);
    const m = new Mappo({ layout: L, config: config(), seed: 1 });
    const rng = new Rng(2);
    const N = 4 * 2;
    for (let rep = 0; rep < 50; rep++) {
      const masks = new Uint8Array(N * 4);
      for (let i = 0; i < N; i++) masks[i * 4 + rng.int(4)] = 1; // one random legal action…
      for (let i = 0; i < N * 4; i++) if (rng.next() < 0.3) masks[i] = 1; // …plus some more
      const alive = Uint8Array.from({ length: N }, (_, i) => (i === 3 ? 0 : 1));
      const actions = new Float32Array(N);
      const out = m.act({ obs: Float32Array.from({ length: N * 3 }, () => rng.normal()), state: new Float32Array(4 * 5), masks, alive, episodeStart: new Uint8Array(4), layout: L }, actions);
      expect(out.extras!.logp).toHaveLength(N);
      expect(out.extras!.value).toHaveLength(N);
      for (let i = 0; i < N; i++) {
        if (!alive[i]) {
          expect(actions[i]).toBe(0);
          continue;
        }
        expect(masks[i * 4 + actions[i]]).toBe(1);
        expect(out.extras!.logp[i]).toBeLessThanOrEqual(0);
      }
    }
    m.dispose();
  });

  it('does not leak tensors over 20 updates (with acting in between)', () => {
    const m = new Mappo({ layout: layout(), config: config({ standardise_returns: true, standardise_rewards: true }), seed: 3 });
    m.update(makeChunk(m, 4, 0)); // Adam creates its slot variables on the first step
    const before = tf.memory().numTensors;
    for (let i = 1; i <= 20; i++) m.update(makeChunk(m, 4, i));
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });

  it.each(['mappo', 'ippo'] as const)('%s: same seed gives identical stats over 3 updates', (name) => {
    const run = () => {
      const m = new Mappo({ layout: layout(), config: config({ name }), seed: 'same' });
      const stats = [0, 1, 2].map((i) => m.update(makeChunk(m, 5, i)));
      m.dispose();
      return stats;
    };
    const a = run();
    const b = run();
    expect(a).toEqual(b);
    for (const s of a) for (const v of Object.values(s)) expect(Number.isFinite(v)).toBe(true);
    expect(a[0].entropy).toBeGreaterThan(0);
  });

  it('fits the value of a fixed batch: plain value loss falls over repeated updates', () => {
    const m = new Mappo({ layout: layout(), config: config({ lr: 0.01, epochs: 4 }), seed: 5, clipValueLoss: false });
    const chunk = makeChunk(m, 4, 9);
    const first = m.update(chunk).valueLoss;
    let last = first;
    for (let i = 0; i < 15; i++) last = m.update(chunk).valueLoss;
    expect(last).toBeLessThan(first);
    m.dispose();
  });
});
