import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expertPolicyFor } from '../agents/policies/experts/expert-policy';
import { PointRobotExpert } from '../agents/policies/experts/point-robot-expert';
import { RandomPolicy } from '../agents/policies/random-policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { layoutFor } from '../envs/env-shape';
import {
  POINT_ROBOT_AGENT,
  POINT_ROBOT_EPISODE_STEPS,
  POINT_ROBOT_MAX_STEP,
  type Point2,
  PointRobotEnv,
  createPointRobot,
  pointRobotTaskParameters,
  pointRobotTasks,
} from '../envs/navigation/point-robot';
import { listEnvs, makeEnv } from '../envs/registry';
import { InvalidActionError } from '../envs/validate-actions';
import { collectEpisodes } from '../runtime/rollout/collect-episodes';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { evaluateScriptedPolicy } from '../runtime/training/evaluate-policies';
import { Rng, deriveSeed } from '../runtime/core/rng';

registerBuiltinEnvs();

const AGENT = POINT_ROBOT_AGENT;
const action = (x: number, y: number) => ({ [AGENT]: Float32Array.of(x, y) });

/** The env built by the registry, as its class. */
function pointRobot(options: Record<string, unknown> = {}): PointRobotEnv {
  return makeEnv('point-robot', options) as unknown as PointRobotEnv;
}

/**
 * The best return any policy can get for `goal`, from the geometry alone: each axis closes at most
 * 0.1 per step, so after t steps the remaining offset on an axis is at least max(|g| − 0.1 t, 0).
 */
function optimalReturn(goal: Point2): number {
  let total = 0;
  for (let t = 1; t <= POINT_ROBOT_EPISODE_STEPS; t++) {
    total -= Math.hypot(Math.max(Math.abs(goal[0]) - 0.1 * t, 0), Math.max(Math.abs(goal[1]) - 0.1 * t, 0));
  }
  return total;
}

describe('point-robot registration and spaces', () => {
  test('is listed in its family with a description, one agent and the documented spaces', () => {
    const listed = listEnvs().find((e) => e.id === 'point-robot');
    expect(listed).toMatchObject({ family: 'navigation/point-robot' });
    expect(listed!.description).toMatch(/hidden goal/);
    const env = pointRobot();
    expect(env.metadata).toMatchObject({ id: 'point-robot', family: 'navigation/point-robot', maxEpisodeSteps: 20, reportsSuccess: false });
    expect(env.possibleAgents).toEqual(['agent_0']);
    const actSpace = env.actionSpace(AGENT);
    expect(actSpace.shape).toEqual([2]);
    expect(Array.from(actSpace.low)).toEqual([Math.fround(-0.1), Math.fround(-0.1)]);
    expect(Array.from(actSpace.high)).toEqual([Math.fround(0.1), Math.fround(0.1)]);
    expect(env.observationSpace(AGENT).flatDim).toBe(2);
    expect(env.stateSpace.flatDim).toBe(2);
  });

  test.each<[string, Record<string, unknown>]>([
    ['defaults', {}],
    ['a held-out task', { task: 47 }],
    ['the published goal range', { goalRange: 0.5, task: 3 }],
    ['a goal set directly', { goal: [1.5, -1.5] }],
  ])('passes every conformance check (%s)', (_what, options) => {
    const report = checkEnv(() => makeEnv<unknown, unknown>('point-robot', options), { seed: 3, episodes: 2 });
    expect(report.passed ? 'passed' : formatCheckReport(report)).toBe('passed');
  });
});

describe('point-robot dynamics', () => {
  test('starts at the origin; the reset info names the goal and task, the observation does not', () => {
    const env = pointRobot({ task: 7 });
    const { observations, infos } = env.reset({ seed: 1 });
    expect(Array.from(observations[AGENT])).toEqual([0, 0]);
    expect(infos[AGENT]).toEqual({ goal: pointRobotTasks().goals[7], task: 7 });
    expect(Array.from(env.state())).toEqual([0, 0]);
    // Another episode starts at the origin again, whatever the seed.
    env.step(action(0.1, 0.1));
    expect(Array.from(env.reset({ seed: 99 }).observations[AGENT])).toEqual([0, 0]);
  });

  test('adds the action to the position and rewards minus the distance to the goal after the move', () => {
    const goal: Point2 = [0.3, -0.1];
    const env = pointRobot({ goal });
    env.reset({ seed: 0 });
    const moves: Point2[] = [[0.1, 0.1], [0.1, -0.1], [-0.05, -0.1], [0.1, 0]];
    const position: Point2 = [0, 0];
    let total = 0;
    for (const [dx, dy] of moves) {
      const result = env.step(action(dx, dy));
      position[0] += Math.fround(dx);
      position[1] += Math.fround(dy);
      const expected = -Math.hypot(position[0] - goal[0], position[1] - goal[1]);
      expect(result.rewards[AGENT]).toBeCloseTo(expected, 12);
      expect(result.observations[AGENT][0]).toBeCloseTo(position[0], 6);
      expect(result.observations[AGENT][1]).toBeCloseTo(position[1], 6);
      total += result.rewards[AGENT];
    }
    // By hand: positions (0.1, 0.1), (0.2, 0), (0.15, -0.1), (0.25, -0.1), offsets to the goal (0.2, 0.2), (0.1, 0.1), (0.15, 0), (0.05, 0).
    expect(total).toBeCloseTo(-(2 * Math.SQRT2 * 0.1 + Math.SQRT2 * 0.1 + 0.15 + 0.05), 6);
  });

  test('the reward is the distance after the move, not before it', () => {
    const env = pointRobot({ goal: [0.3, -0.1] });
    env.reset({ seed: 0 });
    const first = env.step(action(0.1, 0.1)).rewards[AGENT];
    expect(first).toBeCloseTo(-Math.hypot(0.2, 0.2), 6);
    expect(first).not.toBeCloseTo(-Math.hypot(0.3, 0.1), 2);
  });

  test('the box is ±0.1 per axis: its corners are accepted, anything outside is an error naming the space', () => {
    const env = pointRobot({ goal: [0, 0] });
    env.reset({ seed: 0 });
    expect(() => env.step(action(0.1, -0.1))).not.toThrow();
    expect(() => env.step(action(0.11, 0))).toThrow(InvalidActionError);
    expect(() => env.step(action(0, -0.5))).toThrow(/agent_0.*outside its action space Box\(-0\.1/);
    expect(() => env.step(action(Number.NaN, 0))).toThrow(InvalidActionError);
    expect(() => env.step({ [AGENT]: Float32Array.of(0.1) })).toThrow(InvalidActionError);
  });

  test('is truncated (never terminated) after 20 steps, and the farthest reachable point is inside the observation box', () => {
    const env = pointRobot();
    env.reset({ seed: 0 });
    for (let t = 1; t <= POINT_ROBOT_EPISODE_STEPS; t++) {
      const result = env.step(action(0.1, -0.1));
      expect(result.terminations[AGENT]).toBe(false);
      expect(result.truncations[AGENT]).toBe(t === POINT_ROBOT_EPISODE_STEPS);
      expect(env.observationSpace(AGENT).contains(result.observations[AGENT])).toBe(true);
      if (t === POINT_ROBOT_EPISODE_STEPS) expect(Array.from(result.observations[AGENT])).toEqual([2, -2]);
    }
    expect(env.agents).toEqual([]);
    expect(() => env.step(action(0, 0))).toThrow(/episode is over/);
  });

  test('reset options are refused (the goal comes from the env options)', () => {
    const env = pointRobot();
    expect(() => env.reset({ options: { task: 3 } })).toThrow(/reset takes no options \(got 'task'\); choose the goal with the env options 'task' or 'goal'/);
  });
});

describe('point-robot tasks', () => {
  test('50 goals from goalSeed, inside [−goalRange, goalRange]², split 45 train / 5 held out', () => {
    const tasks = pointRobotTasks();
    expect(tasks.goals).toHaveLength(50);
    expect(tasks.train).toEqual(Array.from({ length: 45 }, (_, i) => i));
    expect(tasks.test).toEqual([45, 46, 47, 48, 49]);
    for (const [x, y] of tasks.goals) {
      expect(Math.abs(x)).toBeLessThanOrEqual(1);
      expect(Math.abs(y)).toBeLessThanOrEqual(1);
    }
    // Spread over the square, not bunched: every quadrant gets goals.
    const quadrants = new Set(tasks.goals.map(([x, y]) => `${Math.sign(x)}${Math.sign(y)}`));
    expect(quadrants.size).toBe(4);
  });

  test('the same goalSeed gives the same goals; another seed other goals; the range scales them', () => {
    expect(pointRobotTasks({ goalSeed: 4 })).toEqual(pointRobotTasks({ goalSeed: 4 }));
    expect(pointRobotTasks({ goalSeed: 4 }).goals).not.toEqual(pointRobotTasks({ goalSeed: 5 }).goals);
    expect(pointRobotTasks({ goalSeed: 'benchmark' }).goals).not.toEqual(pointRobotTasks().goals);
    const unit = pointRobotTasks().goals;
    const half = pointRobotTasks({ goalRange: 0.5 }).goals;
    half.forEach(([x, y], i) => {
      expect(x).toBeCloseTo(unit[i][0] / 2, 12);
      expect(y).toBeCloseTo(unit[i][1] / 2, 12);
      expect(Math.max(Math.abs(x), Math.abs(y))).toBeLessThanOrEqual(0.5);
    });
    // The first goals do not depend on how many are drawn.
    expect(pointRobotTasks({ numTasks: 10 }).goals).toEqual(unit.slice(0, 10));
  });

  test('numTasks and numTrainTasks size the split; task and goal choose the env goal', () => {
    expect(pointRobotTasks({ numTasks: 10 })).toMatchObject({ train: [0, 1, 2, 3, 4, 5, 6, 7, 8], test: [9] });
    expect(pointRobotTasks({ numTasks: 4, numTrainTasks: 2 })).toMatchObject({ train: [0, 1], test: [2, 3] });
    const { goals } = pointRobotTasks();
    expect(pointRobot().taskParameters()).toEqual({ goal: goals[0], task: 0, split: 'train' });
    expect(pointRobot({ task: 46 }).taskParameters()).toEqual({ goal: goals[46], task: 46, split: 'test' });
    expect(pointRobotTaskParameters({ task: 46 })).toEqual(pointRobot({ task: 46 }).taskParameters());
    expect(pointRobot({ goal: [0.25, -0.5] }).taskParameters()).toEqual({ goal: [0.25, -0.5], task: null, split: null });
    expect(pointRobot({ goalSeed: 9, task: 2 }).taskParameters().goal).toEqual(pointRobotTasks({ goalSeed: 9 }).goals[2]);
  });

  test.each<[Record<string, unknown>, RegExp]>([
    [{ numTasks: 0 }, /invalid option 'numTasks' = 0/],
    [{ numTasks: 2.5 }, /invalid option 'numTasks' = 2.5/],
    [{ numTrainTasks: 51 }, /invalid option 'numTrainTasks' = 51: at most numTasks \(50\)/],
    [{ numTrainTasks: -1 }, /invalid option 'numTrainTasks' = -1/],
    [{ goalRange: 0 }, /invalid option 'goalRange' = 0/],
    [{ goalRange: 'wide' }, /invalid option 'goalRange' = "wide"/],
    [{ goalSeed: 1.5 }, /invalid option 'goalSeed' = 1.5/],
    [{ task: 50 }, /invalid option 'task' = 50: task indices run from 0 to numTasks − 1 = 49/],
    [{ task: -1 }, /invalid option 'task' = -1/],
    [{ goal: [1] }, /invalid option 'goal' = \[1\]/],
    [{ goal: ['a', 0] }, /invalid option 'goal'/],
    [{ task: 1, goal: [0, 0] }, /options 'task' = 1 and 'goal' = \[0,0\] both choose the goal; give one of them/],
  ])('bad options are errors naming the option: %j', (options, message) => {
    expect(() => makeEnv('point-robot', options)).toThrow(message);
    expect(() => pointRobotTasks(options)).toThrow(/^point-robot: /);
  });

  test('unknown options are refused by name, by the registry and by the factory', () => {
    expect(() => makeEnv('point-robot', { goal_range: 0.5 })).toThrow(/point-robot: unknown option 'goal_range' \(known options: numTasks, numTrainTasks, goalRange, goalSeed, task, goal\); did you mean 'goalRange'\?/);
    expect(() => createPointRobot({ num_tasks: 5 })).toThrow(/point-robot: unknown option 'num_tasks'/);
  });
});

describe('point-robot expert and random baselines', () => {
  test('the expert moves as far toward the goal as the box allows, and its noise is seeded', () => {
    const out = new Float32Array(2);
    new PointRobotExpert([0.5, -0.03]).actInto([0, 0], out);
    expect(Array.from(out)).toEqual([Math.fround(0.1), Math.fround(-0.03)]);
    new PointRobotExpert([0.5, -0.03]).actInto([0.45, 0], out);
    expect(out[0]).toBeCloseTo(0.05, 6);
    const noisy = (seed: number) => {
      const expert = new PointRobotExpert([0.02, 0.02], 0.05, seed);
      return Array.from({ length: 5 }, () => {
        const a = new Float32Array(2);
        expert.actInto([0, 0], a);
        return Array.from(a);
      });
    };
    expect(noisy(1)).toEqual(noisy(1));
    expect(noisy(1)).not.toEqual(noisy(2));
    for (const a of noisy(3).flat()) expect(Math.abs(a)).toBeLessThanOrEqual(Math.fround(0.1));
    expect(() => new PointRobotExpert([0, 0], -1)).toThrow(/noise must be a finite number ≥ 0/);
  });

  test('without noise the expert earns the best possible return on every goal', () => {
    for (const range of [1, 0.5]) {
      const { goals } = pointRobotTasks({ goalRange: range });
      goals.forEach((goal, task) => {
        const env = pointRobot({ goalRange: range, task });
        const expert = new PointRobotExpert(goal);
        let obs = env.reset({ seed: 0 }).observations[AGENT];
        let total = 0;
        const act = new Float32Array(2);
        while (env.agents.length > 0) {
          expert.actInto(obs, act);
          const result = env.step({ [AGENT]: act.slice() });
          total += result.rewards[AGENT];
          obs = result.observations[AGENT];
        }
        expect(total).toBeCloseTo(optimalReturn(goal), 4);
        // The farthest goals are the square's corners.
        expect(total).toBeGreaterThanOrEqual(optimalReturn([range, range]) - 1e-6);
      });
    }
  });

  test.each([1, 0.5])('on the held-out goals (goalRange %p) the expert beats random actions by a wide margin', async (range) => {
    const { test: heldOut, goals } = pointRobotTasks({ goalRange: range });
    for (const task of heldOut) {
      const env = { id: 'point-robot', options: { goalRange: range, task } };
      const expert = await evaluateScriptedPolicy(env, 8, 's', 4, 0, { policy: 'expert' });
      const random = await evaluateScriptedPolicy(env, 48, 's', 4, 0, { policy: 'random' });
      expect(expert.meanReturn).toBeCloseTo(optimalReturn(goals[task]), 4);
      // Random steps are symmetric, so E‖s − g‖ ≥ E‖s‖: even at the goal, random actions lose about
      // Σ_t 0.1·√(t/3)·√(π/2) ≈ 4.5 in expectation; 3 leaves room for the spread of 48 episodes.
      expect(random.meanReturn).toBeLessThan(expert.meanReturn - 3);
      expect(random.meanLength).toBe(20);
    }
  });

  test('random actions are drawn inside the Box bounds ([-1, 1] boxes keep their former draws)', () => {
    const env = pointRobot();
    const layout = layoutFor(env, 2);
    const policy = new RandomPolicy(layout, 7);
    const actions = new Float32Array(4);
    const alive = Uint8Array.of(1, 1);
    for (let i = 0; i < 50; i++) {
      policy.writeActions(new Uint8Array(0), alive, actions);
      for (const a of actions) expect(Math.abs(a)).toBeLessThanOrEqual(Math.fround(0.1));
    }
    const unitBox = new RandomPolicy({ ...layout, actionLow: [-1, -1], actionHigh: [1, 1] }, 7);
    unitBox.writeActions(new Uint8Array(0), alive, actions);
    const rng = new Rng(deriveSeed(7, 0));
    expect(actions[0]).toBe(Math.fround(rng.uniform(-1, 1)));
    expect(actions[1]).toBe(Math.fround(rng.uniform(-1, 1)));
  });

  test('expertPolicyFor builds the expert from the env options and names bad ones', () => {
    const layout = layoutFor(pointRobot(), 1);
    expect(() => expertPolicyFor('point-robot', layout, { envOptions: { task: 47 } })).not.toThrow();
    expect(() => expertPolicyFor('point-robot', layout, { envOptions: { task: 80 } })).toThrow(/invalid option 'task' = 80/);
    expect(() => expertPolicyFor('lbf-8x8-2p-2f-coop', layout)).toThrow(/no scripted expert.*point-robot/);
  });

  test('troupe eval point-robot --policy expert reads the task from --option', () => {
    const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');
    const run = (...args: string[]) => JSON.parse(execFileSync(process.execPath, [cli, 'eval', 'point-robot', '--episodes', '4', '--json', ...args], { encoding: 'utf8' })) as { meanReturn: number; successRate: number | null };
    const expert = run('--policy', 'expert', '--option', 'task=47');
    expect(expert.meanReturn).toBeCloseTo(optimalReturn(pointRobotTasks().goals[47]), 4);
    expect(expert.successRate).toBeNull();
    expect(run('--policy', 'random', '--option', 'task=47').meanReturn).toBeLessThan(expert.meanReturn - 3);
  });
});

describe('point-robot through VectorEnv', () => {
  test('in-process and worker-thread envs give identical episodes (noisy expert and random actions)', async () => {
    const env = { id: 'point-robot', options: { task: 46, goalRange: 0.5 } };
    const record = async (workers: number, policyKind: 'expert' | 'random') => {
      const vec = await VectorEnv.create({ env, numEnvs: 4, workers, seed: 11 });
      try {
        const policy = policyKind === 'expert' ? expertPolicyFor('point-robot', vec.layout, { noise: 0.03, seed: 'p', envOptions: env.options }) : new RandomPolicy(vec.layout, 'p');
        return await collectEpisodes(vec, policy, 8);
      } finally {
        await vec.close();
      }
    };
    for (const kind of ['expert', 'random'] as const) {
      const inProcess = await record(0, kind);
      expect(inProcess).toHaveLength(8);
      for (const episode of inProcess) {
        expect(episode.rewards).toHaveLength(20);
        expect(Array.from(episode.obs.subarray(0, 2))).toEqual([0, 0]);
        expect(episode.terminated).toBe(0);
      }
      expect(await record(2, kind)).toEqual(inProcess);
    }
  });
});
