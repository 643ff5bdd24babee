import { SpreadEnv, createSpread, parseSpreadId, registerSpread } from '../envs/gridworld/spread';
import type { SpreadLayout } from '../envs/gridworld/spread';
import type { PerAgent, StepResult } from '../envs/parallel-env';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { listEnvs, makeEnv } from '../envs/registry';
import { InvalidActionError } from '../envs/validate-actions';
import { Rng } from '../runtime/core/rng';

registerSpread();

const NONE = 0;
const NORTH = 1;
const SOUTH = 2;
const WEST = 3;
const EAST = 4;

/** Two agents on a 5x5 board (distance normaliser 2 * 4 = 8), placed by hand. */
function twoAgents(layout: SpreadLayout, options: Record<string, unknown> = {}): SpreadEnv {
  const env = createSpread({ id: 'spread-test', numAgents: 2, gridSize: 5, ...options });
  env.reset({ seed: 1, options: { layout } });
  return env;
}

/** An agent's own (row, col) in cells, read back from its observation. */
function ownCell(env: SpreadEnv, obs: Float32Array): [number, number] {
  const size = env.config.gridSize - 1;
  return [Math.round(obs[2] * size), Math.round(obs[3] * size)];
}

describe('spread registration and spaces', () => {
  test.each([2, 3, 4, 5, 6, 7, 8])('spread-%i is listed with documented spaces and limits', (n) => {
    const id = `spread-${n}`;
    expect(listEnvs()).toContainEqual(expect.objectContaining({ id, family: 'gridworld/spread' }));
    const env = makeEnv(id) as SpreadEnv;
    expect(env.metadata).toMatchObject({ id, family: 'gridworld/spread', reportsSuccess: true });
    expect(env.metadata.maxEpisodeSteps).toBeGreaterThanOrEqual(25);
    expect(env.metadata.maxEpisodeSteps).toBeLessThanOrEqual(50);
    expect(env.config.gridSize).toBe(n + 3);
    expect(env.possibleAgents).toHaveLength(n);
    const obsSpace = env.observationSpace('agent_0');
    expect(obsSpace.flatDim).toBe(4 * n + 2);
    expect(env.actionSpace('agent_0').describe()).toBe('Discrete(5)');
    expect(env.stateSpace.flatDim).toBe(6 * n);
    const { observations } = env.reset({ seed: n });
    for (const agent of env.possibleAgents) expect(obsSpace.contains(observations[agent])).toBe(true);
    expect(env.stateSpace.contains(env.state())).toBe(true);
  });

  test.each(['spread-2', 'spread-5', 'spread-8'])('%s passes the env conformance checker', (id) => {
    const report = checkEnv(() => makeEnv(id), { seed: 1 });
    expect(report.passed ? 'passed' : formatCheckReport(report)).toBe('passed');
  });

  test('ids parse and bad options are errors naming the option', () => {
    expect(parseSpreadId('spread-5')).toEqual({ numAgents: 5 });
    expect(parseSpreadId('spread')).toBeUndefined();
    expect(parseSpreadId('spread-x')).toBeUndefined();
    expect(() => makeEnv('spread-40')).toThrow(/spread-40: invalid option 'numAgents' = 40/);
    expect(() => makeEnv('spread-3', { gridSize: 1 })).toThrow(/'gridSize'/);
    expect(() => makeEnv('spread-3', { maxSteps: 0 })).toThrow(/'maxSteps'/);
    expect(() => makeEnv('spread-3', { collisionPenalty: -1 })).toThrow(/'collisionPenalty'/);
    expect(() => makeEnv('spread-3', { landmarks: 3 })).toThrow(/unknown option 'landmarks'/);
    expect((makeEnv('spread-3', { gridSize: 9, maxSteps: 30 }) as SpreadEnv).config).toMatchObject({ gridSize: 9, maxSteps: 30 });
  });
});

describe('spread dynamics', () => {
  test('team reward is minus the normalised distance from each landmark to its nearest agent', () => {
    const env = twoAgents({ agents: [[0, 1], [4, 3]], landmarks: [[0, 0], [4, 4]] });
    let result = env.step({ agent_0: NONE, agent_1: NONE });
    expect(result.rewards.agent_0).toBeCloseTo(-(1 + 1) / 8);
    expect(result.rewards.agent_1).toBe(result.rewards.agent_0);
    expect(result.infos.agent_0.coverage).toBe(0);
    result = env.step({ agent_0: WEST, agent_1: EAST });
    expect(result.rewards.agent_0).toBe(0);
    expect(result.infos.agent_0.coverage).toBe(1);
  });

  test('two agents entering the same cell are both blocked and both penalised', () => {
    const env = twoAgents({ agents: [[2, 1], [2, 3]], landmarks: [[2, 2], [0, 0]] }, { collisionPenalty: 1 });
    const result = env.step({ agent_0: EAST, agent_1: WEST });
    expect(ownCell(env, result.observations.agent_0)).toEqual([2, 1]);
    expect(ownCell(env, result.observations.agent_1)).toEqual([2, 3]);
    expect(result.infos.agent_0.blockedMoves).toBe(2);
    expect(result.rewards.agent_0).toBeCloseTo(-(1 + 3) / 8 - 2);
  });

  test('moving into an occupied cell fails, even if its occupant leaves or swaps', () => {
    const follow = twoAgents({ agents: [[2, 1], [2, 2]], landmarks: [[0, 0], [4, 4]] }, { collisionPenalty: 0.5 });
    let result = follow.step({ agent_0: EAST, agent_1: EAST });
    expect(ownCell(follow, result.observations.agent_0)).toEqual([2, 1]);
    expect(ownCell(follow, result.observations.agent_1)).toEqual([2, 3]);
    expect(result.infos.agent_0.blockedMoves).toBe(1);

    const swap = twoAgents({ agents: [[2, 1], [2, 2]], landmarks: [[0, 0], [4, 4]] });
    result = swap.step({ agent_0: EAST, agent_1: WEST });
    expect(ownCell(swap, result.observations.agent_0)).toEqual([2, 1]);
    expect(ownCell(swap, result.observations.agent_1)).toEqual([2, 2]);
    expect(result.infos.agent_0.blockedMoves).toBe(2);
  });

  test('observations hold last move, own position, landmarks and other agents relative to the agent', () => {
    const env = twoAgents({ agents: [[1, 1], [3, 4]], landmarks: [[0, 0], [4, 2]] });
    const { observations } = env.step({ agent_0: SOUTH, agent_1: NONE });
    // agent_0 is now at (2, 1) after moving one row down.
    const expected = [1, 0, 2 / 4, 1 / 4, -2 / 4, -1 / 4, 2 / 4, 1 / 4, 1 / 4, 3 / 4];
    Array.from(observations.agent_0).forEach((v, k) => expect(v).toBeCloseTo(expected[k]));
    expect(Array.from(observations.agent_1.slice(0, 2))).toEqual([0, 0]);
    expect(Array.from(env.state().slice(0, 4))).toEqual([0.5, 0.25, 0.75, 1]);
  });

  test('masks forbid moves off the board', () => {
    const env = twoAgents({ agents: [[0, 0], [4, 4]], landmarks: [[2, 2], [1, 1]] });
    expect(Array.from(env.actionMask('agent_0'))).toEqual([1, 0, 1, 0, 1]);
    expect(Array.from(env.actionMask('agent_1'))).toEqual([1, 1, 0, 1, 0]);
    expect(() => env.step({ agent_0: WEST, agent_1: NONE })).toThrow(/agent_0.*masked out/);
  });

  test('episodes end by truncation only, with success when every landmark is covered at the end', () => {
    const env = twoAgents({ agents: [[0, 1], [4, 3]], landmarks: [[0, 0], [4, 4]] }, { maxSteps: 2 });
    let result: StepResult<Float32Array> = env.step({ agent_0: WEST, agent_1: NONE });
    expect(result.truncations.agent_0).toBe(false);
    expect(result.infos.agent_0.success).toBeUndefined();
    result = env.step({ agent_0: NONE, agent_1: NONE });
    expect(result.terminations).toEqual({ agent_0: false, agent_1: false });
    expect(result.truncations).toEqual({ agent_0: true, agent_1: true });
    expect(result.infos.agent_0).toMatchObject({ coverage: 0.5, success: false });
    expect(env.agents).toEqual([]);
    expect(() => env.step({})).toThrow(/episode is over/);

    const covered = twoAgents({ agents: [[0, 1], [4, 3]], landmarks: [[0, 0], [4, 4]] }, { maxSteps: 1 });
    result = covered.step({ agent_0: WEST, agent_1: EAST });
    expect(result.truncations.agent_1).toBe(true);
    expect(result.infos.agent_1).toMatchObject({ coverage: 1, success: true });
  });

  test('the same seed and actions give the same episode; reset without a seed continues the stream', () => {
    const play = (env: SpreadEnv, seed: number | undefined): number[] => {
      const rng = new Rng(`policy-${seed}`);
      const trace: number[] = [];
      const { observations } = env.reset(seed === undefined ? {} : { seed });
      trace.push(...observations.agent_0, ...env.state());
      while (env.agents.length > 0) {
        const actions: PerAgent<number> = {};
        for (const agent of env.agents) actions[agent] = env.actionSpace(agent).sample(rng, env.actionMask(agent));
        const result = env.step(actions);
        for (const agent of env.possibleAgents) trace.push(result.rewards[agent], ...result.observations[agent]);
      }
      return trace;
    };
    const a = makeEnv('spread-4') as SpreadEnv;
    const b = makeEnv('spread-4') as SpreadEnv;
    const first = play(a, 3);
    expect(play(b, 3)).toEqual(first);
    const secondA = play(a, undefined);
    expect(play(b, undefined)).toEqual(secondA);
    expect(secondA).not.toEqual(first);
    expect(play(a, 3)).toEqual(first);
  });

  test('invalid actions name the agent and the space', () => {
    const env = makeEnv('spread-2');
    env.reset({ seed: 0 });
    expect(() => env.step({ agent_0: 5, agent_1: NONE })).toThrow(InvalidActionError);
    expect(() => env.step({ agent_0: 5, agent_1: NONE })).toThrow(/'agent_0'.*Discrete\(5\)/);
    expect(() => env.step({ agent_0: NONE })).toThrow(/no action for live agent 'agent_1'/);
    expect(() => env.step({ agent_0: NONE, agent_1: NORTH, agent_7: NONE })).toThrow(/agent_7/);
  });

  test('render marks agents, landmarks and covered landmarks', () => {
    const env = twoAgents({ agents: [[0, 0], [4, 4]], landmarks: [[0, 0], [2, 2]] });
    const lines = env.render().split('\n');
    expect(lines[0]).toBe('0*. . . .');
    expect(lines[2]).toBe('. . * . .');
    expect(lines[4]).toBe('. . . . 1');
    expect(lines[5]).toMatch(/coverage 50%/);
  });

  test('layouts are checked', () => {
    const env = createSpread({ id: 's', numAgents: 2, gridSize: 5 });
    expect(() => env.reset({ options: { layout: { agents: [[0, 0]], landmarks: [[1, 1], [2, 2]] } } })).toThrow(/agents needs exactly 2/);
    expect(() => env.reset({ options: { layout: { agents: [[0, 0], [0, 0]], landmarks: [[1, 1], [2, 2]] } } })).toThrow(/agents\[1\].*repeats/);
    expect(() => env.reset({ options: { layout: { agents: [[0, 0], [0, 1]], landmarks: [[1, 1], [9, 2]] } } })).toThrow(/landmarks\[1\]/);
    expect(() => env.step({ agent_0: NONE, agent_1: NONE })).toThrow(/reset\(\) before step/);
  });
});
