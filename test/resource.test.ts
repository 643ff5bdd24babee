import { registerBuiltinEnvs } from '../envs/builtin';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { envShape, shapeDifferences } from '../envs/env-shape';
import { RESOURCE_BLOCK_DIM, RESOURCE_COUNT, RESOURCE_SIZES, ResourceEnv, type ResourceLayout, createResource, parseResourceId } from '../envs/navigation/resource';
import type { PerAgent, StepResult } from '../envs/parallel-env';
import { listEnvs, makeEnv } from '../envs/registry';
import { Rng } from '../runtime/core/rng';

registerBuiltinEnvs();

const NONE = 0;
const LEFT = 1;
const RIGHT = 2;
const UP = 4;

/** Resources far from everything, except where a test moves one. */
const FAR_RESOURCES: Array<[number, number]> = [[-3, -3], [3, -3], [-3, 3], [3, 3], [6, 0], [-6, 0]];

function placed(layout: ResourceLayout, options: Record<string, unknown> = {}): ResourceEnv {
  const env = createResource({ id: 'resource-test', numAgents: layout.agents.length, ...options });
  env.reset({ seed: 1, options: { layout } });
  return env;
}

const idle = (env: ResourceEnv): PerAgent<number> => Object.fromEntries(env.possibleAgents.map((a) => [a, NONE]));

function expectNumbers(actual: Float32Array, expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  // Float32 observations of float64 arithmetic: equal up to float32 rounding.
  expected.forEach((v, k) => expect([k, Math.abs(actual[k] - v) <= 1e-6 * Math.max(1, Math.abs(v))]).toEqual([k, true]));
}

describe('resource registration and spaces', () => {
  test.each([1, 3, 12])('resource-%i is listed with its spaces, limits and entity layout', (n) => {
    const id = `resource-${n}`;
    expect(listEnvs()).toContainEqual(expect.objectContaining({ id, family: 'navigation/resource' }));
    const env = makeEnv(id) as ResourceEnv;
    expect(env.metadata).toMatchObject({ id, family: 'navigation/resource', maxEpisodeSteps: 20, teamReward: 'sum', entityObservation: { selfDim: 22, entityDim: 22 } });
    expect(env.possibleAgents).toHaveLength(n);
    expect(env.observationSpace('agent_0').flatDim).toBe(22 + 22 * (n - 1));
    expect(env.actionSpace('agent_0').describe()).toBe('Discrete(5)');
    expect(env.stateSpace.flatDim).toBe(4 * n + 12);
    expect((env as { actionMask?: unknown }).actionMask).toBeUndefined();
    const { observations } = env.reset({ seed: n });
    for (const agent of env.possibleAgents) expect(env.observationSpace(agent).contains(observations[agent])).toBe(true);
    expect(env.stateSpace.contains(env.state())).toBe(true);
    expect(envShape(env).entityObservation).toEqual({ selfDim: 22, entityDim: 22 });
  });

  test('unlisted sizes come from the id; other envs keep shapes without the key; sizes are not a shape difference of their own', () => {
    expect(parseResourceId('resource-40')).toEqual({ numAgents: 40 });
    expect(parseResourceId('resource')).toBeUndefined();
    expect(listEnvs().map((e) => e.id)).not.toContain('resource-40');
    expect(makeEnv('resource-40').possibleAgents).toHaveLength(40);
    expect('entityObservation' in envShape(makeEnv('spread-3'))).toBe(false);
    expect(shapeDifferences(envShape(makeEnv('resource-3')), envShape(makeEnv('resource-4')))).toEqual([
      'agents agent_0,agent_1,agent_2 vs agent_0,agent_1,agent_2,agent_3',
      'obsDim 66 vs 88',
      'stateDim 24 vs 28',
    ]);
  });

  test.each([1, 3, 9])('resource-%i passes the env conformance checker', (n) => {
    const report = checkEnv(() => makeEnv(`resource-${n}`), { seed: 2 });
    expect(report.passed ? 'passed' : formatCheckReport(report)).toBe('passed');
  });

  test('bad options are errors naming the option', () => {
    expect(() => makeEnv('resource-65')).toThrow(/resource-65: invalid option 'numAgents' = 65/);
    expect(() => makeEnv('resource-3', { maxSteps: 0 })).toThrow(/invalid option 'maxSteps' = 0/);
    expect(() => makeEnv('resource-3', { maxSteps: 2.5 })).toThrow(/'maxSteps'/);
    expect(() => makeEnv('resource', { numAgents: 0 })).toThrow(/invalid option 'numAgents' = 0/);
    expect(() => makeEnv('resource-3', { resources: 4 })).toThrow(/unknown option 'resources'/);
    expect(() => createResource({ id: 'r', landmarks: 6 })).toThrow(/r: unknown option 'landmarks' \(known options: id, numAgents, maxSteps\)/);
    expect((makeEnv('resource-2', { maxSteps: 7 }) as ResourceEnv).metadata.maxEpisodeSteps).toBe(7);
  });

  test('bad layouts are errors naming the agent or resource', () => {
    const env = makeEnv('resource-3') as ResourceEnv;
    const agents: Array<[number, number]> = [[0, 0], [1, 0], [2, 0]];
    const reset = (layout: unknown) => () => env.reset({ options: { layout } });
    expect(reset([1, 2])).toThrow(/reset option 'layout' must be an object \{ agents, resources \}/);
    expect(reset({ agents: agents.slice(0, 2), resources: FAR_RESOURCES })).toThrow(/'layout'\.agents needs exactly 3 \[x, y\] positions, one per agent; got 2/);
    expect(reset({ agents: [[0, 0], [1, 'a'], [2, 0]], resources: FAR_RESOURCES })).toThrow(/'layout'\.agents\[1\] \(agent 1\) = \[1,"a"\] is not an \[x, y\] pair of finite numbers/);
    const resources = FAR_RESOURCES.map((p, l) => (l === 4 ? [Number.NaN, 0] : p));
    expect(reset({ agents, resources })).toThrow(/'layout'\.resources\[4\] \(resource 4\)/);
    expect(reset({ agents })).toThrow(/'layout'\.resources must be an array of 6/);
    expect(reset({ agents, resources: FAR_RESOURCES, walls: [] })).toThrow(/unknown key 'walls'/);
    expect(() => env.reset({ options: { spawn: 1 } })).toThrow(/unknown reset option 'spawn'/);
    // A failed reset leaves no episode to step.
    expect(() => env.step({ agent_0: 0, agent_1: 0, agent_2: 0 })).toThrow(/call reset\(\) before step\(\)/);
  });
});

describe('resource observations and state', () => {
  const agents: Array<[number, number]> = [[0.25, -0.5], [0.5, 0.2], [-0.4, 0.75]];
  const resources: Array<[number, number]> = [[1, 1], [-1, 0.5], [0.3, -0.9], [0, 0], [-0.7, -0.2], [0.9, -0.1]];

  /** The resource part of a block as seen from (x, y). */
  const resourcePart = (x: number, y: number) => resources.flatMap(([rx, ry], l) => [rx - x, ry - y, 0.05 * (l + 1)]);

  test('a self block, then one block per other agent in index order', () => {
    const env = placed({ agents, resources });
    const { observations } = env.reset({ options: { layout: { agents, resources } } });
    for (let i = 0; i < 3; i++) {
      const [x, y] = agents[i];
      const others = [0, 1, 2].filter((j) => j !== i);
      const expected = [0, 0, x, y, ...resourcePart(x, y)];
      for (const j of others) expected.push(agents[j][0] - x, agents[j][1] - y, 0, 0, ...resourcePart(agents[j][0], agents[j][1]));
      expectNumbers(observations[`agent_${i}`], expected);
    }
    expect(RESOURCE_BLOCK_DIM).toBe(22);
    expect(RESOURCE_SIZES).toEqual([0.05, 0.1, 0.15000000000000002, 0.2, 0.25, 0.30000000000000004]);
  });

  test('velocities appear in the own block and in the other agents\' blocks; state lists agents then resources', () => {
    const env = placed({ agents, resources });
    const { observations } = env.step({ agent_0: NONE, agent_1: RIGHT, agent_2: UP });
    const moved: Array<[number, number]> = [agents[0], [0.55, 0.2], [-0.4, 0.8]];
    const a1 = observations.agent_1;
    expectNumbers(a1.subarray(0, 4), [0.5, 0, 0.55, 0.2]);
    // agent_1's blocks: agent_0, then agent_2.
    expectNumbers(a1.subarray(22, 26), [0.25 - 0.55, -0.5 - 0.2, 0, 0]);
    expectNumbers(a1.subarray(44, 48), [-0.4 - 0.55, 0.8 - 0.2, 0, 0.5]);
    expectNumbers(a1.subarray(48, 66), resourcePart(-0.4, 0.8));
    expectNumbers(observations.agent_0.subarray(22, 26), [0.55 - 0.25, 0.2 + 0.5, 0.5, 0]);
    const velocities = [[0, 0], [0.5, 0], [0, 0.5]];
    expectNumbers(env.state(), [...moved.flatMap((p, i) => [...p, ...velocities[i]]), ...resources.flat()]);
  });
});

describe('resource rewards, physics and infos', () => {
  test('agents sharing a resource split it, an agent on two resources gets both, an agent on none gets 0', () => {
    // Resource 2 (radius 0.15) at the origin holds agents 0 and 1; agent 2 sits on resources 0 and 1.
    const resources = [[2, 2], [2.1, 2], [0, 0], ...FAR_RESOURCES.slice(3)] as Array<[number, number]>;
    const env = placed({ agents: [[0.12, 0], [-0.12, 0], [2.05, 2]], resources });
    const result = env.step(idle(env));
    expect(result.rewards.agent_0).toBeCloseTo((0.15 / 2) * 10, 12);
    expect(result.rewards.agent_1).toBeCloseTo(0.75, 12);
    expect(result.rewards.agent_2).toBeCloseTo(0.5 + 1, 12);
    // Resources 0 and 1 have an agent within 0.1 of their centre; resource 2's nearest is 0.12 away.
    expect(result.infos.agent_0).toEqual({ occupied: 2, collisions: 0 });
    expect(result.infos.agent_2).toEqual(result.infos.agent_0);

    env.reset({ options: { layout: { agents: [[0.12, 0], [5, 5], [2.05, 2]], resources } } });
    const alone = env.step(idle(env));
    expect(alone.rewards.agent_0).toBeCloseTo(1.5, 12);
    expect(alone.rewards.agent_1).toBe(0);
  });

  test('action 2 accelerates +x with force 5 (velocity 0.5 after one step), damping 0.25 after that', () => {
    const env = placed({ agents: [[0, 0]], resources: FAR_RESOURCES });
    let obs = env.step({ agent_0: RIGHT }).observations.agent_0;
    expectNumbers(obs.subarray(0, 4), [0.5, 0, 0.05, 0]);
    obs = env.step({ agent_0: RIGHT }).observations.agent_0;
    expectNumbers(obs.subarray(0, 4), [0.875, 0, 0.1375, 0]);
    obs = env.step({ agent_0: LEFT }).observations.agent_0;
    expectNumbers(obs.subarray(0, 4), [0.875 * 0.75 - 0.5, 0, 0.1375 + (0.875 * 0.75 - 0.5) * 0.1, 0]);
    obs = env.step({ agent_0: UP }).observations.agent_0;
    expect(obs[1]).toBeCloseTo(0.5, 6);
  });

  test('overlapping agents are pushed apart and counted as a colliding pair', () => {
    const env = createResource({ id: 'resource-test', numAgents: 3 });
    const reset = env.reset({ options: { layout: { agents: [[0, 0], [0.02, 0], [1, 1]], resources: FAR_RESOURCES } } });
    expect(reset.infos.agent_0).toEqual({ occupied: 0, collisions: 1 });
    const { observations, infos } = env.step(idle(env));
    const a0 = observations.agent_0;
    const a1 = observations.agent_1;
    // Penetration 0.08 (softened by k = 0.001, a negligible amount here) × contact force 100 × dt 0.1.
    expect(a0[0]).toBeCloseTo(-0.8, 5);
    expect(a1[0]).toBeCloseTo(0.8, 5);
    expect(a0[1]).toBe(0);
    expect(a1[2] - a0[2]).toBeCloseTo(0.02 + 2 * 0.08, 5);
    expect(observations.agent_2[0]).toBe(0); // far from both: no force
    expect(infos.agent_1.collisions).toBe(0); // now 0.18 apart

    // Two pairs at once, and two agents at the very same point stay finite.
    const start = env.reset({ options: { layout: { agents: [[0, 0], [0.05, 0], [0.05, 0]], resources: FAR_RESOURCES } } });
    expect(start.infos.agent_2.collisions).toBe(3);
    const stacked = env.step(idle(env));
    // Agent 0 pushes agents 1 and 2 alike, and they exert no force on each other: they stay together.
    expect(stacked.infos.agent_0.collisions).toBe(1);
    for (const agent of env.possibleAgents) expect(stacked.observations[agent].every(Number.isFinite)).toBe(true);
  });

  test('the same seed and actions give the same episode; 20 steps, truncation only', () => {
    const play = (seed: number) => {
      const env = makeEnv('resource-4') as ResourceEnv;
      const rng = new Rng(seed + 100);
      const first = env.reset({ seed });
      const steps: Array<StepResult<Float32Array>> = [];
      while (env.agents.length > 0) steps.push(env.step(Object.fromEntries(env.agents.map((a) => [a, rng.int(5)]))));
      return { first, steps, state: env.state() };
    };
    const a = play(7);
    const b = play(7);
    expect(b).toEqual(a);
    expect(a.steps).toHaveLength(20);
    a.steps.forEach((s, t) => {
      expect(Object.values(s.terminations).every((d) => d === false)).toBe(true);
      expect(Object.values(s.truncations).every((d) => d === (t === 19))).toBe(true);
    });
    expect(play(8).first.observations.agent_0).not.toEqual(a.first.observations.agent_0);
  });

  test('reset draws agent then resource positions in U(-1, 1)²', () => {
    const env = makeEnv('resource-2') as ResourceEnv;
    env.reset({ seed: 11 });
    const rng = new Rng(11);
    const draws = Array.from({ length: 4 + 2 * RESOURCE_COUNT }, () => rng.uniform(-1, 1));
    const state = env.state();
    expectNumbers(state, [draws[0], draws[1], 0, 0, draws[2], draws[3], 0, 0, ...draws.slice(4)]);
  });
});

describe('the checker verifies metadata.entityObservation', () => {
  function declaring(entityObservation: unknown): () => ResourceEnv {
    return () => {
      const env = createResource({ id: 'resource-bad', numAgents: 3 });
      (env.metadata as unknown as Record<string, unknown>).entityObservation = entityObservation;
      return env;
    };
  }
  const metadataMessage = (entityObservation: unknown) => {
    const report = checkEnv(declaring(entityObservation), { seed: 0, episodes: 1 });
    expect(report.passed).toBe(false);
    const check = report.checks.find((c) => c.name === 'metadata')!;
    expect(check.passed).toBe(false);
    return check.message;
  };

  test('a selfDim that does not split the observation fails, naming the numbers', () => {
    expect(metadataMessage({ selfDim: 21, entityDim: 22 })).toMatch(
      /metadata\.entityObservation is \{ selfDim: 21, entityDim: 22 \}, but the observation space of 'agent_0' has 66 numbers: \(66 − 21\) \/ 22 = 2\.045 is not a whole number of entity blocks/,
    );
    expect(metadataMessage({ selfDim: 70, entityDim: 22 })).toMatch(/has 66 numbers: shorter than the self block/);
  });

  test('block sizes must be positive integers', () => {
    expect(metadataMessage({ selfDim: 0, entityDim: 22 })).toMatch(/metadata\.entityObservation\.selfDim is 0; expected a positive integer/);
    expect(metadataMessage({ selfDim: 22, entityDim: 1.5 })).toMatch(/metadata\.entityObservation\.entityDim is 1\.5; expected a positive integer/);
    expect(metadataMessage(22)).toMatch(/metadata\.entityObservation is 22; expected \{ selfDim, entityDim \}/);
  });

  test('a layout that fits passes (a self block of 44 and blocks of 11 split 66 too)', () => {
    const report = checkEnv(declaring({ selfDim: 44, entityDim: 11 }), { seed: 0, episodes: 1 });
    expect(report.checks.find((c) => c.name === 'metadata')).toEqual({ name: 'metadata', passed: true });
  });
});
