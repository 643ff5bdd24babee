import type { Transition } from '../agents/experience';
import { Rng } from '../runtime/core/rng';
import type { VectorLayout } from '../envs/env-shape';
import { type Episode, EpisodeCollector, EpisodeReplay, type EpisodeShape } from '../trainers/episode-replay';

const shape: EpisodeShape = { numAgents: 2, obsDim: 3, stateDim: 2, numActions: 4, maxEpisodeSteps: 5 };

/** A T-step episode whose every number encodes (id, row), so copies can be traced. */
function episode(id: number, T: number): Episode {
  const { numAgents: A, obsDim, stateDim, numActions: K } = shape;
  const ep: Episode = {
    length: T,
    obs: new Float32Array((T + 1) * A * obsDim),
    state: new Float32Array((T + 1) * stateDim),
    avail: new Uint8Array((T + 1) * A * K).fill(1),
    alive: new Uint8Array((T + 1) * A).fill(1),
    actions: new Int32Array(T * A),
    reward: new Float32Array(T),
    terminated: new Uint8Array(T),
  };
  for (let t = 0; t <= T; t++) {
    for (let k = 0; k < A * obsDim; k++) ep.obs[t * A * obsDim + k] = id * 100 + t + k / 10;
    for (let k = 0; k < stateDim; k++) ep.state[t * stateDim + k] = -(id * 100 + t);
  }
  for (let t = 0; t < T; t++) {
    ep.reward[t] = id + t / 10;
    for (let a = 0; a < A; a++) ep.actions[t * A + a] = (id + t + a) % K;
  }
  ep.terminated[T - 1] = 1;
  return ep;
}

describe('EpisodeReplay', () => {
  test('inserts until full, then evicts the oldest first', () => {
    const replay = new EpisodeReplay(shape, 3);
    for (let id = 0; id < 3; id++) replay.insert(episode(id, 2));
    expect(replay.size).toBe(3);
    expect([0, 1, 2].map((i) => replay.episode(i).reward[0])).toEqual([0, 1, 2]);
    replay.insert(episode(3, 2));
    replay.insert(episode(4, 2));
    expect(replay.size).toBe(3);
    expect([0, 1, 2].map((i) => replay.episode(i).reward[0])).toEqual([3, 4, 2]);
    replay.insert(episode(5, 2));
    expect([0, 1, 2].map((i) => replay.episode(i).reward[0])).toEqual([3, 4, 5]);
  });

  test('rejects episodes of the wrong size or length', () => {
    const replay = new EpisodeReplay(shape, 3);
    expect(() => replay.insert(episode(0, 6))).toThrow(/length 6 is outside 1..5/);
    const bad = episode(0, 2);
    bad.obs = new Float32Array(5);
    expect(() => replay.insert(bad)).toThrow(/field 'obs' has 5 values/);
  });

  test('pads a batch time-major to its longest episode with a filled mask and zero padding', () => {
    const replay = new EpisodeReplay(shape, 10);
    replay.insert(episode(1, 2));
    replay.insert(episode(2, 4));
    const batch = replay.sample(2, new Rng(0));
    const B = 2;
    const { numAgents: A, obsDim, numActions: K } = shape;
    expect(batch.size).toBe(2);
    expect(batch.steps).toBe(4);
    expect(batch.obs.length).toBe(5 * B * A * obsDim);
    expect(batch.actions.length).toBe(4 * B * A);
    const ids = [0, 1].map((b) => batch.reward[b]);
    expect([...ids].sort()).toEqual([1, 2]);
    const short = ids.indexOf(1);
    const long = 1 - short;
    // filled: 2 real steps for the short episode, 4 for the long one.
    expect([0, 1, 2, 3].map((t) => batch.filled[t * B + short])).toEqual([1, 1, 0, 0]);
    expect([0, 1, 2, 3].map((t) => batch.filled[t * B + long])).toEqual([1, 1, 1, 1]);
    // Row t of episode b sits at t·B + b; the short episode's final observation is its row 2.
    expect(batch.obs[(2 * B + short) * A * obsDim]).toBeCloseTo(102);
    expect(batch.obs[(4 * B + long) * A * obsDim]).toBeCloseTo(204);
    expect(batch.state[(3 * B + long) * shape.stateDim]).toBe(-203);
    // Past the final row everything is zero, including alive and legal actions.
    expect(batch.obs[(3 * B + short) * A * obsDim]).toBe(0);
    expect(batch.alive[(3 * B + short) * A]).toBe(0);
    expect(batch.avail[(3 * B + short) * A * K]).toBe(0);
    expect(batch.alive[(2 * B + short) * A]).toBe(1);
    expect(batch.reward[2 * B + short]).toBe(0);
    expect(batch.terminated[1 * B + short]).toBe(1);
    expect(batch.terminated[3 * B + long]).toBe(1);
    expect(batch.actions[(1 * B + long) * A + 1]).toBe((2 + 1 + 1) % K);

    const full = replay.sample(2, new Rng(0), { padToMaxSteps: true });
    expect(full.steps).toBe(shape.maxEpisodeSteps);
    expect(full.filled.reduce((n, f) => n + f, 0)).toBe(6);
  });

  test('sampling is uniform without replacement and determined by the RNG', () => {
    const replay = new EpisodeReplay(shape, 20);
    for (let id = 0; id < 20; id++) replay.insert(episode(id, 1 + (id % 5)));
    const a = replay.sample(8, new Rng('s'));
    const b = replay.sample(8, new Rng('s'));
    expect(b).toEqual(a);
    expect(replay.sample(8, new Rng('t'))).not.toEqual(a);
    const counts = new Array(20).fill(0);
    const rng = new Rng(1);
    for (let i = 0; i < 500; i++) {
      const batch = replay.sample(8, rng);
      const ids = Array.from({ length: 8 }, (_, k) => batch.reward[k]);
      expect(new Set(ids).size).toBe(8);
      for (const id of ids) counts[id]++;
    }
    // Each episode is expected 200 times; a biased sampler lands far outside this band.
    for (const c of counts) expect(Math.abs(c - 200)).toBeLessThan(60);
    expect(() => replay.sample(21, rng)).toThrow(/cannot sample 21 episodes from 20/);
  });

  test('capture → restore reproduces the contents, later samples and later evictions', () => {
    const replay = new EpisodeReplay(shape, 4);
    for (let id = 0; id < 6; id++) replay.insert(episode(id, 1 + (id % 5)));
    const state = replay.capture();
    const copy = new EpisodeReplay(shape, 4);
    copy.restore(state);
    expect(copy.size).toBe(4);
    for (let i = 0; i < 4; i++) expect(copy.episode(i)).toEqual(replay.episode(i));
    const r1 = new Rng(7);
    const r2 = Rng.fromState(r1.state());
    expect(copy.sample(3, r2)).toEqual(replay.sample(3, r1));
    replay.insert(episode(10, 3));
    copy.insert(episode(10, 3));
    for (let i = 0; i < 4; i++) expect(copy.episode(i)).toEqual(replay.episode(i));

    // An empty buffer round-trips too.
    const empty = new EpisodeReplay(shape, 4);
    const fresh = new EpisodeReplay(shape, 4);
    fresh.restore(empty.capture());
    expect(fresh.size).toBe(0);

    expect(() => new EpisodeReplay({ ...shape, obsDim: 4 }, 4).restore(state)).toThrow(/shape/);
    expect(() => new EpisodeReplay(shape, 5).restore(state)).toThrow(/capacity 4 differs from 5/);
    const { obs: _obs, ...withoutObs } = state.arrays;
    expect(() => new EpisodeReplay(shape, 4).restore({ ...state, arrays: withoutObs })).toThrow(/no array 'obs'/);
  });
});

// ---------------------------------------------------------------------------------------------

const layout = (over: Partial<VectorLayout> = {}): VectorLayout => ({
  numEnvs: 2,
  agentIds: ['a', 'b'],
  numAgents: 2,
  obsDim: 1,
  agentObsDims: [1, 1],
  actDim: 1,
  numActions: 3,
  agentNumActions: [3, 3],
  discreteActions: true,
  stateDim: 1,
  maxEpisodeSteps: 4,
  reportsSuccess: false,
  sharedTeamReward: false,
  ...over,
});

/** One vector step where obs/state of env e hold 10·e + step and the next ones 10·e + step + 0.5. */
function transition(L: VectorLayout, step: number, flags: { start?: number[]; done?: number[]; aborted?: number[]; truncated?: number[]; dead?: Array<[number, number]> } = {}): Transition {
  const { numEnvs: E, numAgents: A, numActions: K } = L;
  const perEnv = (f: (e: number) => number) => Float32Array.from({ length: E }, (_, e) => f(e));
  const perAgent = (f: (e: number, a: number) => number) => Float32Array.from({ length: E * A }, (_, i) => f(Math.floor(i / A), i % A));
  const flag = (list: number[] | undefined) => Uint8Array.from({ length: E }, (_, e) => (list?.includes(e) ? 1 : 0));
  const done = flag(flags.done);
  const truncatedEnvs = flag(flags.truncated);
  const alive = Uint8Array.from(perAgent((e, a) => (flags.dead?.some(([de, da]) => de === e && da === a) ? 0 : 1)));
  return {
    kind: 'transition',
    task: 'default',
    taskIndex: 0,
    layout: L,
    step,
    policyVersion: 0,
    teamSize: new Int32Array(E).fill(A),
    latent: new Float32Array(0),
    obs: perAgent((e, a) => 10 * e + step + a / 100),
    state: perEnv((e) => -(10 * e + step)),
    masks: Uint8Array.from({ length: E * A * K }, (_, i) => (i % K === 2 && step % 2 === 1 ? 0 : 1)),
    alive,
    episodeStart: flag(flags.start),
    actions: perAgent((e, a) => (step + a) % K),
    extras: {},
    rewards: perAgent((e, a) => (alive[e * A + a] ? 1 + a : 0)),
    terminated: Uint8Array.from({ length: E * A }, (_, i) => (done[Math.floor(i / A)] && !truncatedEnvs[Math.floor(i / A)] ? 1 : 0)),
    truncated: Uint8Array.from({ length: E * A }, (_, i) => (done[Math.floor(i / A)] && truncatedEnvs[Math.floor(i / A)] ? 1 : 0)),
    nextObs: perAgent((e, a) => 10 * e + step + 0.5 + a / 100),
    nextState: perEnv((e) => -(10 * e + step + 0.5)),
    nextAlive: new Uint8Array(E * A).fill(1),
    nextMasks: new Uint8Array(E * A * K).fill(1),
    episodeDone: done,
    episodeAborted: flag(flags.aborted),
    episodes: [],
  };
}

describe('EpisodeCollector', () => {
  test('builds episodes per env with team rewards, the final observation row and how they ended', () => {
    const L = layout();
    const c = new EpisodeCollector(L);
    expect(c.add(transition(L, 0, { start: [0, 1] }))).toEqual([]);
    expect(c.add(transition(L, 1, { dead: [[1, 1]] }))).toEqual([]);
    const [e0, e1] = c.add(transition(L, 2, { done: [0, 1], truncated: [1], dead: [[1, 1]] }));
    expect(e0.length).toBe(3);
    expect(Array.from(e0.reward)).toEqual([3, 3, 3]); // summed: 1 + 2
    expect(Array.from(e0.terminated)).toEqual([0, 0, 1]);
    expect(Array.from(e0.obs)).toEqual([0, 0.01, 1, 1.01, 2, 2.01, 2.5, 2.51].map(Math.fround));
    expect(Array.from(e0.state)).toEqual([-0, -1, -2, -2.5]);
    expect(Array.from(e0.actions)).toEqual([0, 1, 1, 2, 2, 0]);
    // A terminated agent has no legal actions and is not alive in the final row.
    expect(Array.from(e0.alive)).toEqual([1, 1, 1, 1, 1, 1, 0, 0]);
    expect(Array.from(e0.avail.subarray(3 * 6))).toEqual([0, 0, 0, 0, 0, 0]);
    // Env 1: agent 1 died at step 1; truncated at step 2, so it bootstraps: not terminated,
    // the final row keeps the last step's masks for the live agent.
    expect(Array.from(e1.reward)).toEqual([3, 1, 1]);
    expect(Array.from(e1.terminated)).toEqual([0, 0, 0]);
    expect(Array.from(e1.alive)).toEqual([1, 1, 1, 0, 1, 0, 1, 0]);
    expect(Array.from(e1.avail.subarray(3 * 6, 3 * 6 + 3))).toEqual([1, 1, 1]);
    expect(e1.obs[3 * 2]).toBeCloseTo(12.5);
  });

  test('shared team reward counts once; aborted episodes and steps before a start are dropped', () => {
    const L = layout({ sharedTeamReward: true });
    const c = new EpisodeCollector(L);
    // Env 1 has not started yet: its steps are skipped until its first episodeStart.
    expect(c.add(transition(L, 0, { start: [0], done: [1] }))).toEqual([]);
    expect(c.add(transition(L, 1, { start: [1], dead: [[0, 0]] }))).toEqual([]);
    const out = c.add(transition(L, 2, { done: [0, 1], aborted: [0] }));
    expect(out.length).toBe(1);
    expect(out[0].length).toBe(2);
    expect(Array.from(out[0].reward)).toEqual([1, 1]);
    // Env 0's agent 0 was dead at step 1, so the shared reward comes from agent 1 (reward 2).
    const c2 = new EpisodeCollector(L);
    c2.add(transition(L, 0, { start: [0, 1] }));
    const [first] = c2.add(transition(L, 1, { done: [0], dead: [[0, 0]] }));
    expect(Array.from(first.reward)).toEqual([1, 2]);
  });

  test('an episode longer than maxEpisodeSteps is an error; reset drops partial episodes', () => {
    const L = layout({ numEnvs: 1 });
    const c = new EpisodeCollector(L);
    c.add(transition(L, 0, { start: [0] }));
    for (let s = 1; s < 4; s++) c.add(transition(L, s));
    expect(() => c.add(transition(L, 4))).toThrow(/env 0 ran more than maxEpisodeSteps = 4/);
    c.reset();
    expect(c.add(transition(L, 5, { done: [0] }))).toEqual([]);
  });

  test('capture → restore continues partial episodes identically', () => {
    const L = layout();
    const a = new EpisodeCollector(L);
    a.add(transition(L, 0, { start: [0] }));
    a.add(transition(L, 1, { start: [1] }));
    const state = a.capture();
    const b = new EpisodeCollector(L);
    b.restore(state);
    const last = transition(L, 2, { done: [0, 1] });
    const fromA = a.add(last);
    expect(fromA.length).toBe(2);
    expect(b.add(last)).toEqual(fromA);
    expect(() => new EpisodeCollector(layout({ numEnvs: 3 })).restore(state)).toThrow(/one step count \(or -1\) per env/);
  });
});
