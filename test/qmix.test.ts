import * as tf from '@tensorflow/tfjs';
import { type CheckpointData, decodeCheckpoint, encodeCheckpoint } from '../runtime/core/checkpoint';
import type { Transition } from '../agents/experience';
import { type PolicyBatch, emptyContext } from '../agents/policies/policy';
import { Rng } from '../runtime/core/rng';
import { algoConfigSchema } from '../runtime/training/run-config';
import { selectBackend } from '../runtime/core/tf-backend';
import type { VectorLayout } from '../envs/env-shape';
import { type QConfig, QLearner } from '../trainers/qmix';
import type { LearnerState, TrainStats } from '../trainers/learner';

// wasm is the backend benchmarks train on, and several times faster than cpu here.
beforeAll(async () => {
  await selectBackend('wasm');
});


type QName = 'qmix' | 'vdn' | 'iql';

/** A full config from the real schema (so defaults are EPyMARL's), with test-sized overrides. */
function qConfig(name: QName, over: Record<string, unknown> = {}): QConfig {
  return algoConfigSchema.parse({
    name,
    hidden_dim: 32,
    batch_size: 16,
    buffer_size: 400,
    lr: 0.005,
    epsilon_anneal_time: 1500,
    target_update_interval_or_tau: 20,
    // One update per 4 episodes: EPyMARL's parallel runner with the 4 envs these tests use.
    updates_per_episode: 0.25,
    ...over,
  }) as QConfig;
}

function makeLayout(over: Partial<VectorLayout> = {}): VectorLayout {
  return {
    numEnvs: 4,
    agentIds: ['a', 'b'],
    numAgents: 2,
    obsDim: 3,
    agentObsDims: [3, 3],
    actDim: 1,
    numActions: 2,
    agentNumActions: [2, 2],
    discreteActions: true,
    stateDim: 0,
    maxEpisodeSteps: 2,
    reportsSuccess: false,
    sharedTeamReward: true,
    ...over,
  };
}

// ---------------------------------------------------------------------------------------------
// A tiny vectorised env loop that produces exactly what the experience stream would
// ---------------------------------------------------------------------------------------------

/** One env, stepped with every agent's action; obs are [A, obsDim], masks [A, K]. */
interface TinyGame {
  reset(rng: Rng): void;
  obs(): Float32Array;
  masks(): Uint8Array;
  /** Shared team reward and how the episode ended. */
  step(actions: number[]): { reward: number; terminated: boolean; truncated: boolean };
  clone(): TinyGame;
}

/**
 * The 2-step chain: at t = 0 only the joint action (1, 1) leads to the good state; there the
 * joint action (0, 0) pays 1. Everything else pays 0. Obs one-hot: [start, good, bad]. The
 * optimal greedy joint actions are (1, 1) then (0, 0), worth 1; learning them needs the
 * bootstrapped value of the good state.
 */
class ChainGame implements TinyGame {
  t = 0;
  good = false;
  reset(): void {
    this.t = 0;
    this.good = false;
  }
  obs(): Float32Array {
    const o = this.t === 0 ? [1, 0, 0] : this.good ? [0, 1, 0] : [0, 0, 1];
    return Float32Array.from([...o, ...o]);
  }
  masks(): Uint8Array {
    return new Uint8Array(4).fill(1);
  }
  step(a: number[]) {
    if (this.t === 0) {
      this.good = a[0] === 1 && a[1] === 1;
      this.t = 1;
      return { reward: 0, terminated: false, truncated: false };
    }
    this.t = 2;
    return { reward: this.good && a[0] === 0 && a[1] === 0 ? 1 : 0, terminated: true, truncated: false };
  }
  clone(): ChainGame {
    return Object.assign(new ChainGame(), this);
  }
}

/** A one-step matrix game: only the joint action (1, 1) pays 1; obs are random (seeded). */
class MatrixGame implements TinyGame {
  private o = new Float32Array(6);
  reset(rng: Rng): void {
    this.o = Float32Array.from({ length: 6 }, () => rng.next());
  }
  obs(): Float32Array {
    return this.o;
  }
  masks(): Uint8Array {
    return new Uint8Array(4).fill(1);
  }
  step(a: number[]) {
    return { reward: a[0] === 1 && a[1] === 1 ? 1 : 0, terminated: true, truncated: false };
  }
  clone(): MatrixGame {
    return Object.assign(new MatrixGame(), { o: this.o.slice() });
  }
}

/**
 * Agents see [t/2, noise, 1]; 4 actions, action 3 is never legal and agent 0 may not use 2.
 * Episodes are cut by the time limit after 2 steps (truncated, so targets bootstrap).
 */
class MaskedGame implements TinyGame {
  t = 0;
  private noise = 0;
  reset(rng: Rng): void {
    this.t = 0;
    this.noise = rng.next();
  }
  obs(): Float32Array {
    return Float32Array.from([this.t / 2, this.noise, 1, this.t / 2, -this.noise, 1]);
  }
  masks(): Uint8Array {
    return Uint8Array.from([1, 1, 0, 0, 1, 1, 1, 0]);
  }
  step(a: number[]) {
    a.forEach((x, i) => {
      if (!this.masks()[i * 4 + x]) throw new Error(`agent ${i} took illegal action ${x}`);
    });
    this.t++;
    return { reward: a[0] === a[1] ? 1 : 0, terminated: false, truncated: this.t >= 2 };
  }
  clone(): MaskedGame {
    return Object.assign(new MaskedGame(), this);
  }
}

/** Steps E games with a policy and feeds the learner transitions like `experienceStream`. */
class Loop {
  vectorSteps = 0;
  readonly episodeReturns: number[] = [];
  private readonly running: number[];
  private starts: Uint8Array;

  /** Games are taken as they are: `Loop.start` resets them first. */
  constructor(
    readonly layout: VectorLayout,
    readonly games: TinyGame[],
    readonly rng: Rng,
  ) {
    this.starts = new Uint8Array(layout.numEnvs).fill(1);
    this.running = new Array(layout.numEnvs).fill(0);
  }

  static start(layout: VectorLayout, games: TinyGame[], rng: Rng): Loop {
    for (const g of games) g.reset(rng);
    return new Loop(layout, games, rng);
  }

  private batch(): PolicyBatch {
    const { numEnvs: E, numAgents: A, obsDim, numActions: K } = this.layout;
    const obs = new Float32Array(E * A * obsDim);
    const masks = new Uint8Array(E * A * K);
    this.games.forEach((g, e) => {
      obs.set(g.obs(), e * A * obsDim);
      masks.set(g.masks(), e * A * K);
    });
    return { obs, state: new Float32Array(0), masks, alive: new Uint8Array(E * A).fill(1), episodeStart: this.starts.slice(), layout: this.layout, context: emptyContext(this.layout.numEnvs) };
  }

  /** One vector step; returns the actions taken and the learner's stats (if it updated). */
  step(learner: QLearner): { actions: Float32Array; stats?: TrainStats } {
    const { numEnvs: E, numAgents: A, numActions: K } = this.layout;
    const b = this.batch();
    const actions = new Float32Array(E * A);
    void learner.policy.act(b, actions);
    const rewards = new Float32Array(E * A);
    const terminated = new Uint8Array(E * A);
    const truncated = new Uint8Array(E * A);
    const done = new Uint8Array(E);
    const nextObs = new Float32Array(b.obs.length);
    this.games.forEach((g, e) => {
      const r = g.step(Array.from(actions.subarray(e * A, (e + 1) * A)));
      rewards.fill(r.reward, e * A, (e + 1) * A);
      terminated.fill(r.terminated ? 1 : 0, e * A, (e + 1) * A);
      truncated.fill(r.truncated ? 1 : 0, e * A, (e + 1) * A);
      nextObs.set(g.obs(), e * A * this.layout.obsDim);
      this.running[e] += r.reward;
      if (r.terminated || r.truncated) {
        done[e] = 1;
        this.episodeReturns.push(this.running[e]);
        this.running[e] = 0;
        g.reset(this.rng);
      }
    });
    const next = this.batch();
    const tr: Transition = {
      kind: 'transition', task: 'default', taskIndex: 0, policyVersion: 0, teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0), layout: this.layout, step: this.vectorSteps, obs: b.obs, state: b.state, masks: b.masks, alive: b.alive,
      episodeStart: b.episodeStart, actions, extras: {}, rewards, terminated, truncated, nextObs, nextState: new Float32Array(0),
      nextAlive: next.alive, nextMasks: new Uint8Array(E * A * K).fill(1), episodeDone: done, episodeAborted: new Uint8Array(E), episodes: [],
    };
    this.starts = done;
    this.vectorSteps++;
    return { actions, stats: learner.observe(tr, this.vectorSteps * E) };
  }

  run(learner: QLearner, vectorSteps: number): TrainStats[] {
    const stats: TrainStats[] = [];
    for (let i = 0; i < vectorSteps; i++) {
      const s = this.step(learner).stats;
      if (s) stats.push(s);
    }
    return stats;
  }

  clone(): Loop {
    const copy = new Loop(this.layout, this.games.map((g) => g.clone()), Rng.fromState(this.rng.state()));
    copy.vectorSteps = this.vectorSteps;
    copy.starts = this.starts.slice();
    copy.running.splice(0, this.running.length, ...this.running);
    return copy;
  }
}

/** Greedy joint actions of the evaluation policy at both chain steps (env 0). */
function greedyChain(learner: QLearner, layout: VectorLayout): number[][] {
  const policy = learner.evaluationPolicy('default', layout.numEnvs, 'eval');
  const games = Array.from({ length: layout.numEnvs }, () => new ChainGame());
  const out: number[][] = [];
  const { numEnvs: E, numAgents: A } = layout;
  for (let t = 0; t < 2; t++) {
    const obs = new Float32Array(E * A * layout.obsDim);
    games.forEach((g, e) => obs.set(g.obs(), e * A * layout.obsDim));
    const actions = new Float32Array(E * A);
    void policy.act({ obs, state: new Float32Array(0), masks: new Uint8Array(E * A * 2).fill(1), alive: new Uint8Array(E * A).fill(1), episodeStart: new Uint8Array(E).fill(t === 0 ? 1 : 0), layout, context: emptyContext(E) }, actions);
    out.push([actions[0], actions[1]]);
    games.forEach((g, e) => g.step([actions[e * A], actions[e * A + 1]]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('learning the 2-step coordination chain', () => {
  const cases: Array<[QName, boolean, Record<string, unknown>]> = [
    ['qmix', false, {}],
    ['qmix', true, { obs_last_action: true, target_update_interval_or_tau: 0.05 }],
    ['vdn', false, { double_q: false }],
    ['vdn', true, { standardise_rewards: false }],
    ['iql', false, { target_update_interval_or_tau: 0.05 }],
    ['iql', true, { hidden_dim: 32, lr: 0.005 }],
    // Each agent its own weights (EPyMARL's *_ns), without the agent id.
    ['qmix', false, { parameter_sharing: false, obs_agent_id: false }],
    ['iql', true, { parameter_sharing: false, obs_agent_id: false }],
  ];
  test.each(cases)('%s (use_rnn %s) finds the optimal greedy joint actions', (name, useRnn, over) => {
    const layout = makeLayout();
    const learner = new QLearner({ layout, config: qConfig(name, { use_rnn: useRnn, ...over }), seed: 3 });
    const loop = Loop.start(layout, Array.from({ length: layout.numEnvs }, () => new ChainGame()), new Rng(0));
    const stats = loop.run(learner, 500);
    // One update per 4 episodes (updates_per_episode 0.25) = 2 vector steps, once 16 episodes are stored.
    expect(stats.length).toBeGreaterThan(200);
    for (const key of ['loss', 'q_taken_mean', 'target_mean', 'grad_norm', 'epsilon']) expect(Number.isFinite(stats[0][key])).toBe(true);
    expect(stats[stats.length - 1].epsilon).toBeCloseTo(0.05);
    expect(greedyChain(learner, layout)).toEqual([[1, 1], [0, 0]]);
    // Late collection (ε = 0.05) mostly scores.
    const late = loop.episodeReturns.slice(-200);
    expect(late.reduce((a, b) => a + b, 0) / late.length).toBeGreaterThan(0.75);
    learner.dispose();
  });
});

describe('update cadence', () => {
  test.each([
    [1, 77],
    [0.25, 20],
    [0.5, 39],
  ])('updates_per_episode %s: %s gradient steps over 80 episodes from 4 envs', (rate, expected) => {
    const layout = makeLayout();
    const learner = new QLearner({ layout, config: qConfig('vdn', { updates_per_episode: rate, batch_size: 4 }), seed: 1 });
    const loop = Loop.start(layout, Array.from({ length: layout.numEnvs }, () => new ChainGame()), new Rng(0));
    // Every chain episode lasts 2 vector steps, so all 4 envs finish together: 40 steps = 80 episodes.
    loop.run(learner, 40);
    // Credit earned while the replay holds fewer than batch_size (4) episodes is spent without training.
    expect(learner.updateCount).toBe(expected);
    learner.dispose();
  });
});

describe('action masks', () => {
  const layout = makeLayout({ numEnvs: 2, numActions: 4, agentNumActions: [4, 4] });

  test('ε = 1 exploration only samples legal actions, and all of them', () => {
    const learner = new QLearner({ layout, config: qConfig('qmix', { epsilon_start: 1, epsilon_finish: 1 }), seed: 0 });
    const loop = Loop.start(layout, [new MaskedGame(), new MaskedGame()], new Rng(1));
    const seen = [new Set<number>(), new Set<number>()];
    for (let i = 0; i < 100; i++) {
      const { actions } = loop.step(learner); // MaskedGame throws on an illegal action
      for (let e = 0; e < 2; e++) for (let a = 0; a < 2; a++) seen[a].add(actions[e * 2 + a]);
    }
    expect([...seen[0]].sort()).toEqual([0, 1]);
    expect([...seen[1]].sort()).toEqual([0, 1, 2]);
    learner.dispose();
  });

  /** Q(a) = [0, 1, 2, 100][a] for every input: the illegal action 3 has by far the largest Q. */
  function rigQ(learner: QLearner): void {
    for (const net of [learner.agent, learner.targetAgent]) {
      const v = net.namedVariables();
      v['out/w'].assign(tf.zerosLike(v['out/w']));
      v['out/b'].assign(tf.tensor1d([0, 1, 2, 100]));
    }
  }

  test('greedy acting never picks an illegal action with a large Q', () => {
    const learner = new QLearner({ layout, config: qConfig('vdn', { epsilon_start: 0, epsilon_finish: 0 }), seed: 0 });
    rigQ(learner);
    const loop = Loop.start(layout, [new MaskedGame(), new MaskedGame()], new Rng(1));
    for (let i = 0; i < 6; i++) expect(Array.from(loop.step(learner).actions)).toEqual([1, 2, 1, 2]);
    learner.dispose();
  });

  test.each([
    ['vdn', true, 3],
    ['vdn', false, 3],
    ['iql', true, 1.5],
    ['iql', false, 1.5],
  ] as Array<[QName, boolean, number]>)('%s targets (double_q %s) take the max over legal actions only', (name, doubleQ, expected) => {
    // γ = 1, zero reward: every target is Σ (or per agent) max over legal actions of the next Q,
    // 1 for agent 0 and 2 for agent 1; with action 3 counted it would be ≈ 100 per agent.
    const config = qConfig(name, { double_q: doubleQ, gamma: 1, standardise_rewards: false, batch_size: 4, lr: 1e-9, epsilon_start: 0, epsilon_finish: 0 });
    const learner = new QLearner({ layout, config, seed: 0 });
    rigQ(learner);
    const loop = Loop.start(layout, [new MaskedGame(), new MaskedGame()], new Rng(1));
    // Rewards are 1 when the agents agree; greedy (1, 2) never agrees, so every reward is 0.
    const stats = loop.run(learner, 4);
    expect(stats.length).toBeGreaterThan(0);
    expect(stats[0].target_mean).toBeCloseTo(expected, 5);
    expect(stats[0].q_taken_mean).toBeCloseTo(expected, 5);
    learner.dispose();
  });
});

describe('checkpoints', () => {
  test('capture → restore into a new learner continues with bit-identical actions and losses', async () => {
    const layout = makeLayout({ numEnvs: 2, maxEpisodeSteps: 2 });
    const config = qConfig('qmix', {
      use_rnn: true,
      obs_last_action: true,
      standardise_rewards: true,
      standardise_returns: true,
      target_update_interval_or_tau: 0.1,
      batch_size: 8,
      epsilon_anneal_time: 400,
      updates_per_episode: 0.5,
    });
    const learner = new QLearner({ layout, config, seed: 'ckpt' });
    const loop = Loop.start(layout, [new ChainGame(), new ChainGame()], new Rng(5));
    loop.run(learner, 43); // odd: both envs are mid-episode, so partial episodes and hidden state matter
    const state = await learner.captureState();

    // Through the checkpoint encoder, as a real resume would go.
    const data: CheckpointData = {
      createdAt: new Date(0).toISOString(), config: {}, counters: { envSteps: 0, episodes: 0, updates: 0, logIndex: 0 },
      models: state.models, optimizers: state.optimizers, rngs: state.rngs, arrays: state.arrays, backend: tf.getBackend(), metadata: state.json,
    };
    const back = decodeCheckpoint(encodeCheckpoint(data), 'mem.ckpt');
    const restoredState: LearnerState = { models: back.models, optimizers: back.optimizers, rngs: back.rngs, arrays: back.arrays, json: back.metadata };
    const loop2 = loop.clone();
    const loop3 = loop.clone();

    const trace = (l: QLearner, lp: Loop) => {
      const actions: number[] = [];
      const stats: TrainStats[] = [];
      for (let i = 0; i < 40; i++) {
        const r = lp.step(l);
        actions.push(...r.actions);
        if (r.stats) stats.push(r.stats);
      }
      return { actions, stats };
    };
    const original = trace(learner, loop);
    const resumed = new QLearner({ layout, config, seed: 'ckpt' });
    await resumed.restoreState(restoredState);
    const again = trace(resumed, loop2);
    expect(original.stats.length).toBe(20);
    expect(again.actions).toEqual(original.actions);
    expect(again.stats).toEqual(original.stats);
    // Weights too, bit for bit.
    const bits = (l: QLearner) => l.agent.variables().concat(l.mixer!.variables()).map((v) => Array.from(new Uint32Array(v.dataSync().slice().buffer)));
    expect(bits(resumed)).toEqual(bits(learner));
    // Adam's running β powers, which tfjs's own restore recomputes inexactly.
    const powers = async (l: QLearner) => (await l.captureState()).optimizers.q.weights.filter((w) => w.name.endsWith('_power')).map((w) => Array.from(w.tensor.data));
    expect(await powers(resumed)).toEqual(await powers(learner));

    // Without the restore the same seed does not continue the same way, so the test has teeth.
    const fresh = new QLearner({ layout, config, seed: 'ckpt' });
    expect(trace(fresh, loop3).stats).not.toEqual(original.stats);
    // What is missing is named.
    const { agent: _agent, ...noAgent } = state.models;
    await expect(fresh.restoreState({ ...state, models: noAgent })).rejects.toThrow(/no model 'agent'/);
    for (const l of [learner, resumed, fresh]) l.dispose();
  });
});

describe('resources', () => {
  test('tf.memory().numTensors stays flat over 100 updates with acting in between', () => {
    const layout = makeLayout({ numEnvs: 1 });
    const learner = new QLearner({ layout, config: qConfig('qmix', { use_rnn: true, hidden_dim: 8, batch_size: 4, updates_per_episode: 1 }), seed: 1 });
    const loop = Loop.start(layout, [new ChainGame()], new Rng(2));
    let updates = loop.run(learner, 8).length; // 4 episodes: the first update creates Adam's slots
    expect(updates).toBe(1);
    const before = tf.memory().numTensors;
    updates += loop.run(learner, 200).length;
    learner.update();
    expect(updates).toBe(101);
    expect(tf.memory().numTensors).toBe(before);
    learner.dispose();
  });
});

describe.each(['wasm', 'cpu'] as const)('on the %s backend', (backend) => {
  afterAll(async () => {
    await selectBackend('wasm');
  });

  test('the TD loss falls on a one-step game (QMIX, GRU)', async () => {
    await selectBackend(backend);
    expect(tf.getBackend()).toBe(backend);
    const layout = makeLayout({ numEnvs: 4, maxEpisodeSteps: 1 });
    // ε = 1 keeps the data distribution fixed and episodes end at once, so the loss is plain regression.
    const config = qConfig('qmix', { use_rnn: true, hidden_dim: 16, epsilon_start: 1, epsilon_finish: 1, standardise_rewards: false, lr: 0.003 });
    const learner = new QLearner({ layout, config, seed: 2 });
    const loop = Loop.start(layout, Array.from({ length: 4 }, () => new MatrixGame()), new Rng(3));
    const losses = loop.run(learner, 60).map((s) => s.loss);
    expect(losses.length).toBe(57);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-15))).toBeLessThan(0.5 * mean(losses.slice(0, 5)));
    learner.dispose();
  });
});
