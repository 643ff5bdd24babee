import { PursuitEnv, createPursuit, parsePursuitId, registerPursuit } from '../envs/gridworld/pursuit';
import type { PursuitLayout } from '../envs/gridworld/pursuit';
import type { PerAgent, StepResult } from '../envs/parallel-env';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { listEnvs, makeEnv } from '../envs/registry';
import { InvalidActionError } from '../envs/validate-actions';
import { Rng } from '../runtime/core/rng';

registerPursuit();

const NONE = 0;
const NORTH = 1;
const SOUTH = 2;
const WEST = 3;
const EAST = 4;

/** A small env with stationary prey so hand-placed scenarios only change through the predators. */
function handPlaced(options: Record<string, unknown>, layout: PursuitLayout): PursuitEnv {
  const env = createPursuit({ id: 'pursuit-test', rows: 5, cols: 5, preyMovement: 'stationary', ...options });
  env.reset({ seed: 1, options: { layout } });
  return env;
}

function allNone(env: PursuitEnv): PerAgent<number> {
  return Object.fromEntries(env.agents.map((a) => [a, NONE]));
}

/** Prey cells read back from the global state's prey channel. */
function preyCells(env: PursuitEnv): Array<[number, number]> {
  const s = env.state();
  const cells: Array<[number, number]> = [];
  for (let cell = 0; cell < env.config.rows * env.config.cols; cell++) {
    if (s[cell * 3 + 2] === 1) cells.push([Math.floor(cell / env.config.cols), cell % env.config.cols]);
  }
  return cells;
}

describe('pursuit registration and spaces', () => {
  test.each([
    ['pursuit-7x7-2p-1prey', 7, 7, 2],
    ['pursuit-10x10-4p-2prey', 10, 10, 4],
    ['pursuit-16x16-8p-4prey', 16, 16, 8],
  ])('%s is listed and has the documented spaces', (id, rows, cols, predators) => {
    expect(listEnvs()).toContainEqual(expect.objectContaining({ id, family: 'gridworld/pursuit' }));
    const env = makeEnv(id);
    expect(env.metadata).toMatchObject({ id, family: 'gridworld/pursuit', reportsSuccess: true });
    expect(env.metadata.maxEpisodeSteps).toBeGreaterThan(0);
    expect(env.possibleAgents).toHaveLength(predators);
    const obsSpace = env.observationSpace(env.possibleAgents[0]);
    expect(obsSpace.flatDim).toBe(7 * 7 * 3 + 2);
    expect(env.actionSpace(env.possibleAgents[0]).describe()).toBe('Discrete(5)');
    expect(env.stateSpace?.flatDim).toBe(rows * cols * 3);
    const { observations } = env.reset({ seed: 3 });
    expect(Object.keys(observations)).toEqual([...env.possibleAgents]);
    for (const agent of env.possibleAgents) expect(obsSpace.contains(observations[agent])).toBe(true);
    expect(env.stateSpace?.contains(env.state?.())).toBe(true);
  });

  test.each(['pursuit-7x7-2p-1prey', 'pursuit-10x10-4p-2prey', 'pursuit-16x16-8p-4prey'])('%s passes the env conformance checker', (id) => {
    const report = checkEnv(() => makeEnv(id), { seed: 1 });
    expect(report.passed ? 'passed' : formatCheckReport(report)).toBe('passed');
  });

  test('parametric ids parse into options and build the right env', () => {
    expect(parsePursuitId('pursuit-12x9-3p-2prey')).toEqual({ rows: 12, cols: 9, numPredators: 3, numPrey: 2 });
    expect(parsePursuitId('pursuit-12x9-3p')).toBeUndefined();
    expect(parsePursuitId('lbf-8x8-2p-2f')).toBeUndefined();
    const env = makeEnv('pursuit-12x9-3p-2prey') as PursuitEnv;
    expect(env.metadata.id).toBe('pursuit-12x9-3p-2prey');
    expect(env.config).toMatchObject({ rows: 12, cols: 9, numPredators: 3, numPrey: 2 });
    expect(env.possibleAgents).toEqual(['predator_0', 'predator_1', 'predator_2']);
    expect(listEnvs().map((e) => e.id)).not.toContain('pursuit-12x9-3p-2prey');
  });

  test('bad options are errors that name the option', () => {
    expect(() => makeEnv('pursuit-7x7-2p-1prey', { obsRange: 4 })).toThrow(/'obsRange'.*odd/);
    expect(() => makeEnv('pursuit-7x7-2p-1prey', { catchNeighbours: 5 })).toThrow(/'catchNeighbours'/);
    expect(() => makeEnv('pursuit-7x7-2p-1prey', { preyMovment: 'random' })).toThrow(/unknown option 'preyMovment'/);
    expect(() => makeEnv('pursuit-2x2-4p-1prey')).toThrow(/'numPredators' \+ 'numPrey'/);
  });
});

describe('pursuit capture rule', () => {
  test('a full surround (catchNeighbours 4) needs every open neighbour', () => {
    const env = handPlaced(
      { numPredators: 4, numPrey: 1, catchNeighbours: 4, sharedReward: false },
      { predators: [[1, 2], [3, 2], [2, 1], [2, 4]], prey: [[2, 2]] },
    );
    let result = env.step(allNone(env));
    expect(result.infos.predator_0.preyRemaining).toBe(1);
    expect(result.terminations.predator_0).toBe(false);
    result = env.step({ predator_0: NONE, predator_1: NONE, predator_2: NONE, predator_3: WEST });
    expect(result.infos.predator_0.preyCaughtThisStep).toBe(1);
    expect(result.terminations).toEqual({ predator_0: true, predator_1: true, predator_2: true, predator_3: true });
    expect(result.infos.predator_3.success).toBe(true);
    expect(env.agents).toEqual([]);
    expect(preyCells(env)).toEqual([]);
  });

  test('the grid edge and walls block for the predators', () => {
    const corner = handPlaced({ numPredators: 2, numPrey: 1, catchNeighbours: 4 }, { predators: [[0, 1], [1, 0]], prey: [[0, 0]] });
    expect(corner.step(allNone(corner)).terminations.predator_0).toBe(true);

    const walled = handPlaced(
      { numPredators: 2, numPrey: 1, catchNeighbours: 4 },
      { predators: [[3, 2], [2, 3]], prey: [[2, 2]], walls: [[1, 2], [2, 1]] },
    );
    expect(walled.step(allNone(walled)).terminations.predator_0).toBe(true);

    const open = handPlaced({ numPredators: 2, numPrey: 1, catchNeighbours: 4 }, { predators: [[3, 2], [2, 3]], prey: [[2, 2]] });
    expect(open.step(allNone(open)).terminations.predator_0).toBe(false);
  });

  test('a neighbouring prey is not a predator, so it prevents a full surround', () => {
    const env = handPlaced(
      { numPredators: 3, numPrey: 2, catchNeighbours: 4 },
      { predators: [[1, 2], [3, 2], [2, 1]], prey: [[2, 2], [2, 3]] },
    );
    expect(env.step(allNone(env)).infos.predator_0.preyRemaining).toBe(2);
  });

  test('catchNeighbours 2 catches with two adjacent predators but not one', () => {
    const one = handPlaced({ numPredators: 2, numPrey: 1, catchNeighbours: 2 }, { predators: [[1, 2], [4, 4]], prey: [[2, 2]] });
    expect(one.step(allNone(one)).terminations.predator_0).toBe(false);
    const two = handPlaced({ numPredators: 2, numPrey: 1, catchNeighbours: 2 }, { predators: [[1, 2], [3, 2]], prey: [[2, 2]] });
    expect(two.step(allNone(two)).terminations.predator_0).toBe(true);
  });

  test('only the predators next to the prey are credited, unless rewards are shared', () => {
    const layout: PursuitLayout = { predators: [[1, 2], [3, 2], [0, 0]], prey: [[2, 2], [4, 4]] };
    const options = { numPredators: 3, numPrey: 2, catchNeighbours: 2, captureReward: 5, stepPenalty: 0.1 };
    const individual = handPlaced({ ...options, sharedReward: false }, layout);
    const r = individual.step(allNone(individual)).rewards;
    expect(r.predator_0).toBeCloseTo(4.9);
    expect(r.predator_1).toBeCloseTo(4.9);
    expect(r.predator_2).toBeCloseTo(-0.1);

    const shared = handPlaced({ ...options, sharedReward: true }, layout);
    const s = shared.step(allNone(shared)).rewards;
    for (const agent of shared.possibleAgents) expect(s[agent]).toBeCloseTo((4.9 + 4.9 - 0.1) / 3);
  });

  test('tag reward goes to predators next to a prey that is not caught', () => {
    const env = handPlaced(
      { numPredators: 2, numPrey: 1, catchNeighbours: 4, sharedReward: false, stepPenalty: 0, tagReward: 0.5 },
      { predators: [[1, 2], [4, 4]], prey: [[2, 2]] },
    );
    const { rewards } = env.step(allNone(env));
    expect(rewards.predator_0).toBeCloseTo(0.5);
    expect(rewards.predator_1).toBe(0);
  });
});

describe('pursuit dynamics', () => {
  test('rewards are negative on steps without a capture', () => {
    const env = makeEnv('pursuit-10x10-4p-2prey');
    env.reset({ seed: 5 });
    const { rewards, terminations } = env.step(Object.fromEntries(env.agents.map((a) => [a, NONE])));
    if (!terminations.predator_0) for (const agent of env.possibleAgents) expect(rewards[agent]).toBeLessThan(0);
  });

  test('masks forbid moves off the grid and into walls', () => {
    const env = handPlaced({ numPredators: 2, numPrey: 1 }, { predators: [[0, 0], [4, 4]], prey: [[2, 2]], walls: [[3, 4]] });
    expect(Array.from(env.actionMask('predator_0'))).toEqual([1, 0, 1, 0, 1]);
    const walledMask = env.actionMask('predator_1');
    expect(Array.from(walledMask)).toEqual([1, 0, 0, 1, 0]);
    expect(() => env.step({ predator_0: NORTH, predator_1: NONE })).toThrow(/predator_0.*masked out/);
    expect(() => env.step({ predator_0: NONE, predator_1: NORTH })).toThrow(/predator_1.*masked out/);
    // Walls belong to one episode; a mask handed out earlier keeps describing its own episode.
    env.reset({ options: { layout: { predators: [[0, 0], [4, 4]], prey: [[2, 2]] } } });
    expect(Array.from(env.actionMask('predator_1'))).toEqual([1, 1, 0, 1, 0]);
    expect(Array.from(walledMask)).toEqual([1, 0, 0, 1, 0]);
  });

  test('a move into an occupied cell fails and the predator stays', () => {
    const env = handPlaced({ numPredators: 2, numPrey: 1, catchNeighbours: 4 }, { predators: [[0, 0], [0, 1]], prey: [[4, 4]] });
    const { observations } = env.step({ predator_0: EAST, predator_1: NONE });
    expect(observations.predator_0[7 * 7 * 3]).toBe(0);
    expect(observations.predator_0[7 * 7 * 3 + 1]).toBe(0);
  });

  test('the observation window shows walls, predators and prey around the agent', () => {
    const env = createPursuit({ id: 'pursuit-test', rows: 5, cols: 5, numPredators: 2, numPrey: 1, preyMovement: 'stationary' });
    const { observations } = env.reset({ options: { layout: { predators: [[0, 0], [1, 0]], prey: [[0, 2]] } } });
    const obs = observations.predator_0;
    const at = (wr: number, wc: number, channel: number): number => obs[(wr * 7 + wc) * 3 + channel];
    expect(at(0, 0, 0)).toBe(1); // outside the grid, up-left
    expect(at(3, 3, 1)).toBe(1); // the observer itself at the centre
    expect(at(4, 3, 1)).toBe(1); // predator_1 one row down
    expect(at(3, 5, 2)).toBe(1); // prey two columns right
    expect(at(3, 4, 0) + at(3, 4, 1) + at(3, 4, 2)).toBe(0); // empty cell
    expect(Array.from(obs.slice(-2))).toEqual([0, 0]);
    expect(Array.from(observations.predator_1.slice(-2))).toEqual([0.25, 0]);
  });

  test('evasive prey move away from an adjacent predator', () => {
    const env = createPursuit({ id: 'pursuit-test', rows: 7, cols: 7, numPredators: 1, numPrey: 1, preyMovement: 'evasive', catchNeighbours: 4 });
    // A random prey would stay or bump into the predator 2 times in 5; over ten seeds that shows.
    for (let seed = 0; seed < 10; seed++) {
      env.reset({ seed, options: { layout: { predators: [[3, 2]], prey: [[3, 3]] } } });
      env.step({ predator_0: NONE });
      const [[r, c]] = preyCells(env);
      expect(Math.abs(r - 3) + Math.abs(c - 2)).toBe(2);
    }
  });

  test('truncation at the step limit, then stepping is an error until reset', () => {
    const env = handPlaced({ numPredators: 2, numPrey: 1, maxSteps: 3, catchNeighbours: 4 }, { predators: [[0, 0], [0, 4]], prey: [[4, 2]] });
    let result: StepResult<Float32Array> | undefined;
    for (let t = 0; t < 3; t++) {
      expect(env.agents).toHaveLength(2);
      result = env.step(allNone(env));
    }
    expect(result?.truncations).toEqual({ predator_0: true, predator_1: true });
    expect(result?.terminations).toEqual({ predator_0: false, predator_1: false });
    expect(result?.infos.predator_0.success).toBe(false);
    expect(env.agents).toEqual([]);
    expect(() => env.step({})).toThrow(/episode is over/);
    env.reset();
    expect(env.agents).toHaveLength(2);
  });

  test('a capture on the last allowed step terminates instead of truncating', () => {
    const env = handPlaced(
      { numPredators: 2, numPrey: 1, maxSteps: 1, catchNeighbours: 2 },
      { predators: [[1, 2], [3, 3]], prey: [[2, 2]] },
    );
    const result = env.step({ predator_0: NONE, predator_1: WEST });
    expect(result.terminations.predator_0).toBe(true);
    expect(result.truncations.predator_0).toBe(false);
    expect(result.infos.predator_1.success).toBe(true);
  });

  test('the same seed and actions give the same episode; reset without a seed continues the stream', () => {
    const play = (env: PursuitEnv, seed: number | undefined): number[] => {
      const rng = new Rng(`policy-${seed}`);
      const trace: number[] = [];
      const { observations } = env.reset(seed === undefined ? {} : { seed });
      trace.push(...observations.predator_0);
      while (env.agents.length > 0) {
        const actions: PerAgent<number> = {};
        for (const agent of env.agents) actions[agent] = env.actionSpace(agent).sample(rng, env.actionMask(agent));
        const result = env.step(actions);
        for (const agent of env.possibleAgents) trace.push(result.rewards[agent], ...result.observations[agent]);
      }
      trace.push(...env.state());
      return trace;
    };
    const a = createPursuit({ id: 'p', rows: 7, cols: 7, numPredators: 2, numPrey: 1, maxSteps: 40, preyMovement: 'evasive' });
    const b = createPursuit({ id: 'p', rows: 7, cols: 7, numPredators: 2, numPrey: 1, maxSteps: 40, preyMovement: 'evasive' });
    const first = play(a, 11);
    expect(play(b, 11)).toEqual(first);
    const secondA = play(a, undefined);
    expect(play(b, undefined)).toEqual(secondA);
    expect(secondA).not.toEqual(first);
    expect(play(a, 11)).toEqual(first);
  });

  test('invalid actions name the agent and the space', () => {
    const env = makeEnv('pursuit-7x7-2p-1prey');
    env.reset({ seed: 0 });
    expect(() => env.step({ predator_0: 7, predator_1: NONE })).toThrow(InvalidActionError);
    expect(() => env.step({ predator_0: 7, predator_1: NONE })).toThrow(/'predator_0'.*Discrete\(5\)/);
    expect(() => env.step({ predator_0: NONE })).toThrow(/no action for live agent 'predator_1'/);
    expect(() => env.step({ predator_0: NONE, predator_1: NONE, predator_9: NONE })).toThrow(/predator_9/);
    expect(() => env.step({ predator_0: SOUTH, predator_1: 1.5 })).toThrow(/'predator_1'/);
  });

  test('render draws predators, prey and walls', () => {
    const env = handPlaced({ numPredators: 2, numPrey: 1 }, { predators: [[0, 0], [4, 4]], prey: [[2, 2]], walls: [[1, 1]] });
    const text = env.render();
    expect(text.split('\n')[0]).toBe('0 . . . .');
    expect(text).toContain('#');
    expect(text).toContain('x');
    expect(text).toMatch(/prey left 1\/1/);
    expect(() => env.render('rgb_array')).toThrow(/render mode/);
  });

  test('layouts are checked', () => {
    const env = createPursuit({ id: 'p', rows: 5, cols: 5, numPredators: 2, numPrey: 1 });
    expect(() => env.reset({ options: { layout: { predators: [[0, 0]], prey: [[1, 1]] } } })).toThrow(/predators needs exactly 2/);
    expect(() => env.reset({ options: { layout: { predators: [[0, 0], [5, 0]], prey: [[1, 1]] } } })).toThrow(/predators\[1\]/);
    expect(() => env.reset({ options: { layout: { predators: [[0, 0], [1, 1]], prey: [[1, 1]] } } })).toThrow(/overlaps/);
    expect(() => env.step({ predator_0: NONE, predator_1: NONE })).toThrow(/reset\(\) before step/);
  });
});
