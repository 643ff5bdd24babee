import { LbfAction, LbfEnv, LISTED_LBF_IDS, parseLbfId, registerLbf, type LbfLayout, type LbfOptions } from '../envs/gridworld/lbf';
import type { PerAgent } from '../envs/parallel-env';
import { listEnvs, makeEnv } from '../envs/registry';
import { Rng } from '../runtime/core/rng';

const { None, North, South, West, East, Load } = LbfAction;

/** An env whose board is set by hand through the documented `layout` reset option. */
function handBuilt(options: LbfOptions, layout: LbfLayout): LbfEnv {
  const env = new LbfEnv(options);
  env.reset({ options: { layout } });
  return env;
}

function positions(env: LbfEnv): number[][] {
  const s = env.state();
  const base = 3 * env.options.foods;
  return env.possibleAgents.map((_, i) => [s[base + 3 * i], s[base + 3 * i + 1]]);
}

function randomActions(env: LbfEnv, rng: Rng): PerAgent<number> {
  const actions: PerAgent<number> = {};
  for (const agent of env.agents) actions[agent] = env.actionSpace(agent).sample(rng, env.actionMask(agent));
  return actions;
}

/** The reference's test fixture: one level-2 food between two level-2 agents on 8x8. */
const between: LbfLayout = {
  foods: [{ row: 4, col: 4, level: 2 }],
  players: [
    { row: 4, col: 3, level: 2 },
    { row: 4, col: 5, level: 2 },
  ],
};

describe('ids and registration', () => {
  beforeAll(() => registerLbf());

  test('parses sizes, counts, sight and coop like the reference ids', () => {
    expect(parseLbfId('lbf-8x8-2p-2f-coop')).toEqual({ size: 8, players: 2, foods: 2, coop: true });
    expect(parseLbfId('lbf-2s-8x8-2p-2f-coop')).toEqual({ size: 8, players: 2, foods: 2, coop: true, sight: 2 });
    expect(parseLbfId('lbf-15x15-4p-5f')).toEqual({ size: 15, players: 4, foods: 5, coop: false });
    expect(parseLbfId('lbf-6x9-3p-1f')).toEqual({ rows: 6, cols: 9, players: 3, foods: 1, coop: false });
    expect(parseLbfId('lbf-8x8-2p')).toBeUndefined();
    expect(parseLbfId('lbf-8x8-2p-2f-coop-v3')).toBeUndefined();
    expect(parseLbfId('Foraging-8x8-2p-2f-v3')).toBeUndefined();
  });

  test('listed ids are listed, the base id and parsed ids are makeable but hidden', () => {
    const listed = listEnvs().filter((e) => e.family === 'gridworld/lbf').map((e) => e.id);
    expect(listed.sort()).toEqual([...LISTED_LBF_IDS].sort());
    for (const id of ['lbf-8x8-2p-2f-coop', 'lbf-2s-8x8-2p-2f-coop', 'lbf-10x10-3p-3f', 'lbf-15x15-4p-5f']) expect(listed).toContain(id);
    const env = makeEnv('lbf-3s-11x11-5p-4f-coop') as LbfEnv;
    expect(env.metadata).toMatchObject({ id: 'lbf-3s-11x11-5p-4f-coop', family: 'gridworld/lbf', maxEpisodeSteps: 50, reportsSuccess: false });
    expect(env.options).toMatchObject({ rows: 11, cols: 11, players: 5, foods: 4, coop: true, sight: 3 });
    expect(env.possibleAgents).toEqual(['agent_0', 'agent_1', 'agent_2', 'agent_3', 'agent_4']);
    registerLbf(); // idempotent
  });

  test('defaults follow the reference registration; options override the id', () => {
    const env = makeEnv('lbf-10x10-3p-3f', { maxEpisodeSteps: 25, penalty: 0.1 }) as LbfEnv;
    expect(env.options).toMatchObject({ sight: 10, minPlayerLevel: 1, maxPlayerLevel: 2, minFoodLevel: 1, maxFoodLevel: null, normalizeReward: true });
    expect(env.options).toMatchObject({ maxEpisodeSteps: 25, penalty: 0.1, coop: false });
    expect(env.metadata.maxEpisodeSteps).toBe(25);
  });

  test('bad options fail with the option named', () => {
    expect(() => makeEnv('lbf-8x8-2p-2f', { players: 0 })).toThrow(/lbf-8x8-2p-2f: option 'players' must be an integer >= 1, got 0/);
    expect(() => makeEnv('lbf-8x8-2p-2f', { coop: 'yes' })).toThrow(/option 'coop' must be a boolean/);
    expect(() => makeEnv('lbf-8x8-2p-2f', { sightRadius: 2 })).toThrow(/unknown option 'sightRadius'/);
    expect(() => makeEnv('lbf-2x2-2p-1f')).toThrow(/option 'size' must be an integer >= 3/);
    expect(() => new LbfEnv({ minFoodLevel: 3, maxFoodLevel: 2 })).toThrow(/'maxFoodLevel' \(2\) is below 'minFoodLevel' \(3\)/);
    expect(() => new LbfEnv({ penalty: -1 })).toThrow(/option 'penalty'/);
  });
});

describe('observations', () => {
  const layout: LbfLayout = {
    // Given out of row-major order: the observation must list foods row-major, as the reference.
    foods: [
      { row: 5, col: 2, level: 2 },
      { row: 2, col: 5, level: 3 },
    ],
    players: [
      { row: 4, col: 3, level: 1 },
      { row: 6, col: 6, level: 2 },
    ],
  };

  test('full sight: foods (y, x, level) row-major, then self, then others, absolute coordinates', () => {
    const env = new LbfEnv({ size: 8, players: 2, foods: 2 });
    const { observations } = env.reset({ options: { layout } });
    expect(Array.from(observations.agent_0)).toEqual([2, 5, 3, 5, 2, 2, 4, 3, 1, 6, 6, 2]);
    expect(Array.from(observations.agent_1)).toEqual([2, 5, 3, 5, 2, 2, 6, 6, 2, 4, 3, 1]);
  });

  test('the space is a Box with the reference bounds', () => {
    const env = new LbfEnv({ size: 8, players: 2, foods: 2 });
    const box = env.observationSpace('agent_0');
    expect(box.shape).toEqual([12]);
    expect(Array.from(box.low)).toEqual([-1, -1, 0, -1, -1, 0, -1, -1, 0, -1, -1, 0]);
    // Food level bound without maxFoodLevel: sum of the (up to three) largest agent maxima, 2 + 2.
    expect(Array.from(box.high)).toEqual([7, 7, 4, 7, 7, 4, 7, 7, 2, 7, 7, 2]);
    expect(Array.from(new LbfEnv({ size: 6, players: 4, foods: 1, maxPlayerLevel: 3 }).observationSpace('agent_0').high.slice(0, 3))).toEqual([5, 5, 9]);
  });

  test('sight 2: coordinates relative to the view window, unseen entries are -1 -1 0', () => {
    const env = new LbfEnv({ size: 8, players: 2, foods: 2, sight: 2 });
    const { observations } = env.reset({ options: { layout } });
    // agent_0 at (4,3) sees rows 2..6, cols 1..5; window origin (2,1). agent_1 at (6,6) is out of sight.
    expect(Array.from(observations.agent_0)).toEqual([0, 4, 3, 3, 1, 2, 2, 2, 1, -1, -1, 0]);
    // agent_1 at (6,6) sees rows 4..7, cols 4..7: nothing but itself, at window position (2,2).
    expect(Array.from(observations.agent_1)).toEqual([-1, -1, 0, -1, -1, 0, 2, 2, 2, -1, -1, 0]);
  });

  test('reference partial-observation fixtures: the other agent (obs[-2]) is seen with sight 2, not 1', () => {
    const other = 7; // the reference tests obs[-2], the other agent's x
    const sight1 = new LbfEnv({ size: 8, players: 2, foods: 1, sight: 1 }).reset({ options: { layout: between } }).observations;
    expect(sight1.agent_0[other]).toBe(-1);
    expect(sight1.agent_1[other]).toBe(-1);

    const env = new LbfEnv({ size: 8, players: 2, foods: 1, sight: 2 });
    const before = env.reset({ options: { layout: between } }).observations;
    expect(before.agent_0[other]).toBe(4);
    expect(before.agent_1[other]).toBe(0);
    const after = env.step({ agent_0: West, agent_1: None }).observations;
    expect(after.agent_0[other]).toBe(-1);
    expect(after.agent_1[other]).toBe(-1);
  });

  test('near the top-left border other agents are seen up to 2·sight away, food only up to sight (reference)', () => {
    const env = handBuilt(
      { size: 8, players: 2, foods: 1, sight: 1 },
      { foods: [{ row: 0, col: 2, level: 1 }], players: [{ row: 0, col: 0, level: 1 }, { row: 2, col: 2, level: 1 }] },
    );
    const obs = env.step({ agent_0: None, agent_1: None }).observations.agent_0;
    expect(Array.from(obs)).toEqual([-1, -1, 0, 0, 0, 1, 2, 2, 1]);
  });

  test('returned observations stay inside the space and are never mutated later', () => {
    const env = makeEnv('lbf-2s-10x10-3p-3f') as LbfEnv;
    const rng = new Rng('obs');
    let { observations } = env.reset({ seed: 3 });
    const kept = observations.agent_0;
    const copy = Array.from(kept);
    for (let t = 0; t < 200; t++) {
      if (env.agents.length === 0) observations = env.reset().observations;
      else observations = env.step(randomActions(env, rng)).observations;
      for (const agent of env.possibleAgents) expect(env.observationSpace(agent).contains(observations[agent])).toBe(true);
      expect(env.stateSpace.contains(env.state())).toBe(true);
    }
    expect(Array.from(kept)).toEqual(copy);
  });

  test('state() shows everything in absolute coordinates plus elapsed time', () => {
    const env = handBuilt({ size: 8, players: 2, foods: 3, sight: 1 }, layout);
    expect(Array.from(env.state())).toEqual([2, 5, 3, 5, 2, 2, -1, -1, 0, 4, 3, 1, 6, 6, 2, 0]);
    env.step({ agent_0: None, agent_1: North });
    expect(Array.from(env.state())).toEqual([2, 5, 3, 5, 2, 2, -1, -1, 0, 4, 3, 1, 5, 6, 2, 1 / 50].map(Math.fround));
    expect(env.stateSpace.shape).toEqual([16]);
  });
});

describe('loading and rewards', () => {
  test('reference fixture: both load ⇒ 0.5 each; one level-2 agent alone ⇒ 1 for it', () => {
    const both = handBuilt({ size: 8, players: 2, foods: 1 }, between).step({ agent_0: Load, agent_1: Load });
    expect(both.rewards).toEqual({ agent_0: 0.5, agent_1: 0.5 });
    expect(both.terminations).toEqual({ agent_0: true, agent_1: true });
    expect(both.truncations).toEqual({ agent_0: false, agent_1: false });
    expect(handBuilt({ size: 8, players: 2, foods: 1 }, between).step({ agent_0: None, agent_1: Load }).rewards).toEqual({ agent_0: 0, agent_1: 1 });
    expect(handBuilt({ size: 8, players: 2, foods: 1 }, between).step({ agent_0: Load, agent_1: None }).rewards).toEqual({ agent_0: 1, agent_1: 0 });
  });

  test('insufficient summed level collects nothing (and costs the penalty); sufficient loaders split by level', () => {
    const weak: LbfLayout = {
      foods: [
        { row: 2, col: 2, level: 3 },
        { row: 5, col: 5, level: 2 },
      ],
      players: [
        { row: 2, col: 1, level: 1 },
        { row: 1, col: 2, level: 1 },
        { row: 6, col: 6, level: 2 },
      ],
    };
    const env = handBuilt({ size: 8, players: 3, foods: 2, maxPlayerLevel: 2, penalty: 0.1 }, weak);
    const failed = env.step({ agent_0: Load, agent_1: Load, agent_2: None });
    expect(failed.rewards).toEqual({ agent_0: -0.1, agent_1: -0.1, agent_2: 0 });
    expect(env.state()[2]).toBe(3); // still there

    // agent_2 walks next to the level-3 food: levels 1 + 2 ≥ 3 with agent_0 (agent_1 does not load).
    const strong = handBuilt({ size: 8, players: 3, foods: 2, maxPlayerLevel: 2 }, {
      foods: weak.foods,
      players: [weak.players[0], weak.players[1], { row: 3, col: 2, level: 2 }],
    });
    const r = strong.step({ agent_0: Load, agent_1: None, agent_2: Load });
    // level × food / (group level × total spawned food level) = 1·3/(3·5) and 2·3/(3·5).
    expect(r.rewards.agent_0).toBe((1 * 3) / (3 * 5));
    expect(r.rewards.agent_2).toBe((2 * 3) / (3 * 5));
    expect(r.rewards.agent_1).toBe(0);
    expect(Array.from(strong.state().slice(0, 3))).toEqual([-1, -1, 0]);
    expect(strong.agents).toHaveLength(3); // one food left: the episode goes on
  });

  test('without normalisation the reward is level × food level', () => {
    const r = handBuilt({ size: 8, players: 2, foods: 1, normalizeReward: false }, between).step({ agent_0: Load, agent_1: Load });
    expect(r.rewards).toEqual({ agent_0: 4, agent_1: 4 });
  });

  test('a scripted full episode collects all food, sums to 1 and reports the summary', () => {
    const env = handBuilt(
      { size: 8, players: 2, foods: 2 },
      {
        foods: [
          { row: 2, col: 2, level: 2 },
          { row: 5, col: 5, level: 3 },
        ],
        players: [
          { row: 2, col: 1, level: 2 },
          { row: 5, col: 3, level: 1 },
        ],
      },
    );
    let total = 0;
    // agent_0 collects food 0 alone (2·2/(2·5)); agent_1 steps west of food 1, then fails on it alone.
    for (const [a0, a1] of [
      [Load, East],
      [South, Load],
    ]) {
      const r = env.step({ agent_0: a0, agent_1: a1 });
      total += r.rewards.agent_0 + r.rewards.agent_1;
    }
    expect(total).toBeCloseTo(2 / 5, 12);
    // agent_0 walks from (3,1) to (6,5), south of the food; agent_1 is at (5,4), west of it.
    for (const a0 of [South, South, South, East, East, East, East]) total += env.step({ agent_0: a0, agent_1: None }).rewards.agent_0;
    expect(positions(env)).toEqual([
      [6, 5],
      [5, 4],
    ]);
    const last = env.step({ agent_0: Load, agent_1: Load });
    total += last.rewards.agent_0 + last.rewards.agent_1;
    expect(last.rewards.agent_0).toBeCloseTo((2 * 3) / (3 * 5), 12);
    expect(total).toBeCloseTo(1, 12);
    expect(last.terminations).toEqual({ agent_0: true, agent_1: true });
    expect(last.infos.agent_0).toEqual({ foodCollected: 2, foodSpawned: 2, episodeSteps: 10 });
    expect(env.agents).toEqual([]);
    expect(() => env.step({})).toThrow(/no live agents; call reset/);
  });

  test('random episodes that clear the board sum to exactly 1', () => {
    const env = makeEnv('lbf-5x5-3p-1f') as LbfEnv;
    const rng = new Rng('sum');
    env.reset({ seed: 11 });
    let cleared = 0;
    let episodeReturn = 0;
    for (let t = 0; t < 20000 && cleared < 50; t++) {
      const r = env.step(randomActions(env, rng));
      for (const agent of env.possibleAgents) episodeReturn += r.rewards[agent];
      if (env.agents.length > 0) continue;
      if (r.terminations.agent_0) {
        cleared++;
        expect(episodeReturn).toBeCloseTo(1, 12);
      } else {
        expect(r.truncations.agent_0).toBe(true);
        expect(episodeReturn).toBe(0);
      }
      episodeReturn = 0;
      env.reset();
    }
    expect(cleared).toBe(50);
  });
});

describe('spawning', () => {
  function foodsAndPlayers(env: LbfEnv): { foods: number[][]; players: number[][] } {
    const s = env.state();
    const foods: number[][] = [];
    for (let j = 0; j < env.options.foods; j++) if (s[3 * j] >= 0) foods.push([s[3 * j], s[3 * j + 1], s[3 * j + 2]]);
    const base = 3 * env.options.foods;
    const players = env.possibleAgents.map((_, i) => [s[base + 3 * i], s[base + 3 * i + 1], s[base + 3 * i + 2]]);
    return { foods, players };
  }

  test('foods avoid borders, agents and each other; agents get free cells and levels 1..2', () => {
    const env = makeEnv('lbf-8x8-3p-3f') as LbfEnv;
    env.reset({ seed: 'spawn' });
    const foodLevels = new Set<number>();
    for (let episode = 0; episode < 500; episode++) {
      if (episode > 0) env.reset();
      const { foods, players } = foodsAndPlayers(env);
      expect(foods).toHaveLength(3);
      const levels = players.map((p) => p[2]).sort((a, b) => a - b);
      for (const [r, c, level] of foods) {
        expect(r >= 1 && r <= 6 && c >= 1 && c <= 6).toBe(true);
        expect(level >= 1 && level <= levels[0] + levels[1] + levels[2]).toBe(true);
        foodLevels.add(level);
        expect(players.some((p) => p[0] === r && p[1] === c)).toBe(false);
      }
      for (let a = 0; a < foods.length; a++) {
        for (let b = a + 1; b < foods.length; b++) {
          const dr = Math.abs(foods[a][0] - foods[b][0]);
          const dc = Math.abs(foods[a][1] - foods[b][1]);
          expect(Math.max(dr, dc)).toBeGreaterThan(1);
          expect((dr === 2 && dc === 0) || (dr === 0 && dc === 2)).toBe(false);
        }
      }
      expect(new Set(players.map((p) => `${p[0]},${p[1]}`)).size).toBe(3);
      for (const p of players) expect([1, 2]).toContain(p[2]);
    }
    expect([...foodLevels].sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('coop: every food needs the sum of the (up to three) lowest agent levels', () => {
    for (const [id, weakest] of [
      ['lbf-8x8-2p-2f-coop', 2],
      ['lbf-10x10-4p-3f-coop', 3],
    ] as const) {
      const env = makeEnv(id) as LbfEnv;
      env.reset({ seed: id });
      for (let episode = 0; episode < 200; episode++) {
        if (episode > 0) env.reset();
        const { foods, players } = foodsAndPlayers(env);
        const need = players
          .map((p) => p[2])
          .sort((a, b) => a - b)
          .slice(0, weakest)
          .reduce((a, b) => a + b, 0);
        for (const f of foods) expect(f[2]).toBe(need);
      }
    }
  });

  test('an explicit maxFoodLevel bounds food levels and the observation space', () => {
    const env = new LbfEnv({ size: 8, players: 2, foods: 2, maxFoodLevel: 1 });
    env.reset({ seed: 1 });
    for (let episode = 0; episode < 50; episode++) {
      env.reset();
      expect(foodsAndPlayers(env).foods.every((f) => f[2] === 1)).toBe(true);
    }
    expect(env.observationSpace('agent_0').high[2]).toBe(1);
  });
});

describe('movement and masks', () => {
  const open: LbfLayout = {
    foods: [{ row: 6, col: 6, level: 1 }],
    players: [
      { row: 2, col: 2, level: 1 },
      { row: 2, col: 4, level: 1 },
      { row: 0, col: 0, level: 1 },
    ],
  };
  const options: LbfOptions = { size: 8, players: 3, foods: 1 };

  test('two agents moving into the same cell both stay', () => {
    const env = handBuilt(options, open);
    env.step({ agent_0: East, agent_1: West, agent_2: None });
    expect(positions(env)).toEqual([
      [2, 2],
      [2, 4],
      [0, 0],
    ]);
  });

  test('moving into a staying agent fails; following a leaving agent succeeds; swaps pass (reference)', () => {
    const env = handBuilt(options, { ...open, players: [open.players[0], { row: 2, col: 3, level: 1 }, open.players[2]] });
    env.step({ agent_0: East, agent_1: None, agent_2: None });
    expect(positions(env)[0]).toEqual([2, 2]);
    env.step({ agent_0: East, agent_1: East, agent_2: South });
    expect(positions(env)).toEqual([
      [2, 3],
      [2, 4],
      [1, 0],
    ]);
    env.step({ agent_0: East, agent_1: West, agent_2: None });
    expect(positions(env).slice(0, 2)).toEqual([
      [2, 4],
      [2, 3],
    ]);
  });

  test('masks follow the reference: board edges and food block moves, LOAD needs orthogonal food', () => {
    const env = handBuilt(
      { size: 8, players: 3, foods: 1 },
      {
        foods: [{ row: 3, col: 3, level: 1 }],
        players: [
          { row: 3, col: 2, level: 1 }, // west of the food
          { row: 2, col: 2, level: 1 }, // diagonal to the food
          { row: 0, col: 7, level: 1 }, // top-right corner
        ],
      },
    );
    expect(Array.from(env.actionMask('agent_0'))).toEqual([1, 1, 1, 1, 0, 1]);
    // Other agents do not mask moves (agent_1 may try to walk into agent_0).
    expect(Array.from(env.actionMask('agent_1'))).toEqual([1, 1, 1, 1, 1, 0]);
    expect(Array.from(env.actionMask('agent_2'))).toEqual([1, 0, 1, 1, 0, 0]);
    expect(env.actionMask('agent_0')).toBe(env.actionMask('agent_0')); // cached within a step
    const kept = env.actionMask('agent_0');
    env.step({ agent_0: North, agent_1: None, agent_2: West });
    expect(positions(env)[0]).toEqual([3, 2]); // agent_1 stayed in the way
    expect(env.actionMask('agent_0')).not.toBe(kept); // a new array each step, so kept masks stay valid
    expect(Array.from(env.actionMask('agent_2'))).toEqual([1, 0, 1, 1, 1, 0]);
  });
});

describe('contract', () => {
  test('bad, masked and missing actions fail naming the agent, action and space', () => {
    const env = handBuilt({ size: 8, players: 2, foods: 1 }, between);
    expect(() => env.step({ agent_0: 6, agent_1: None })).toThrow(/action 6 for agent 'agent_0' is outside its action space Discrete\(6\)/);
    expect(() => env.step({ agent_0: East, agent_1: None })).toThrow(/action 4 for agent 'agent_0' is masked out .*Discrete\(6\)/);
    expect(() => env.step({ agent_0: None })).toThrow(/no action for live agent 'agent_1'/);
    expect(() => env.step({ agent_0: None, agent_1: None, agent_9: None })).toThrow(/agent_9/);
    expect(() => env.actionSpace('agent_9')).toThrow(/'agent_9' is not an agent/);
  });

  test('the time limit truncates every agent together', () => {
    const env = makeEnv('lbf-8x8-2p-2f-coop', { maxEpisodeSteps: 5 }) as LbfEnv;
    env.reset({ seed: 4 });
    for (let t = 1; t <= 5; t++) {
      const r = env.step({ agent_0: None, agent_1: None });
      expect(r.truncations).toEqual({ agent_0: t === 5, agent_1: t === 5 });
      expect(r.terminations).toEqual({ agent_0: false, agent_1: false });
      if (t === 5) expect(r.infos.agent_1).toEqual({ foodCollected: 0, foodSpawned: 2, episodeSteps: 5 });
    }
    expect(env.agents).toEqual([]);
  });

  test('same seed and actions give the same episode; unseeded resets continue the stream', () => {
    function rollout(seed: number): string[] {
      const env = makeEnv('lbf-2s-8x8-2p-2f-coop') as LbfEnv;
      const rng = new Rng('policy');
      const trace: string[] = [];
      let { observations } = env.reset({ seed });
      for (let t = 0; t < 300; t++) {
        trace.push(JSON.stringify([Array.from(observations.agent_0), Array.from(observations.agent_1), Array.from(env.state())]));
        if (env.agents.length === 0) {
          observations = env.reset().observations;
          continue;
        }
        const r = env.step(randomActions(env, rng));
        observations = r.observations;
        trace.push(JSON.stringify(r.rewards));
      }
      return trace;
    }
    const a = rollout(7);
    expect(rollout(7)).toEqual(a);
    expect(rollout(8)).not.toEqual(a);

    const env = makeEnv('lbf-8x8-2p-2f') as LbfEnv;
    env.reset({ seed: 1 });
    const first = Array.from(env.state());
    env.reset();
    const second = Array.from(env.state());
    env.reset({ seed: 1 });
    expect(Array.from(env.state())).toEqual(first);
    env.reset();
    expect(Array.from(env.state())).toEqual(second);
  });

  test('render draws foods, agents with levels and a legend', () => {
    const env = handBuilt({ size: 8, players: 2, foods: 1 }, between);
    const lines = env.render().split('\n');
    expect(lines[0]).toBe('step 0/50, food left 1/1');
    expect(lines[5]).toBe('. . . A 2 B . .');
    expect(lines[9]).toContain('A=agent_0 level 2 at (4,3)');
  });
});
