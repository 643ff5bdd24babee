import { expertFor } from '../agents/policies/experts/expert-registry';
import { createManipulationEnv, type ManipulationEnv } from '../envs/manipulation/manipulation-env';
import { OBS } from '../envs/manipulation/observation-layout';
import { initPhysics } from '../envs/manipulation/physics';
import { pickPlaceTask, type PickPlaceParams } from '../envs/manipulation/tasks/pick-place';
import { pushTask } from '../envs/manipulation/tasks/push';
import { reachTask } from '../envs/manipulation/tasks/reach';
import type { ManipulationTask, TaskParamsBase } from '../envs/manipulation/task';
import { Rng } from '../runtime/core/rng';

const A = 'arm_0';
const EPISODES = 50;

beforeAll(async () => {
  await initPhysics();
});

interface Outcome {
  success: boolean;
  maxObjectZ: number;
}

function play(env: ManipulationEnv, seed: number, act: (obs: Float32Array) => Float32Array): Outcome {
  let obs = env.reset({ seed }).observations[A];
  let success = false;
  let maxObjectZ = 0;
  while (env.agents.length) {
    const r = env.step({ [A]: act(obs) });
    obs = r.observations[A];
    success = r.infos[A].episode_success as boolean;
    maxObjectZ = Math.max(maxObjectZ, obs[OBS.OBJ1_POS + 2]);
  }
  return { success, maxObjectZ };
}

const TASKS: Array<[string, ManipulationTask<TaskParamsBase>]> = [
  ['reach', reachTask as unknown as ManipulationTask<TaskParamsBase>],
  ['push', pushTask as unknown as ManipulationTask<TaskParamsBase>],
  ['pick-place', pickPlaceTask as unknown as ManipulationTask<TaskParamsBase>],
];

describe('scripted experts', () => {
  it.each(TASKS)('%s: the expert succeeds in ≥ 90%% of 50 seeded episodes, a random policy in few', (kind, task) => {
    const env = createManipulationEnv(task, { horizon: 150 });
    const expert = expertFor(kind);
    let expertWins = 0;
    for (let ep = 0; ep < EPISODES; ep++) if (play(env, ep, (o) => expert.act(o)).success) expertWins++;
    expect(expertWins / EPISODES).toBeGreaterThanOrEqual(0.9);
    const rng = new Rng('random');
    let randomWins = 0;
    for (let ep = 0; ep < 20; ep++) if (play(env, 1000 + ep, () => env.actionSpace(A).sample(rng)).success) randomWins++;
    expect(randomWins / 20).toBeLessThanOrEqual(0.2);
  });

  it('noise makes actions differ but stays inside the action space, reproducibly from the seed', () => {
    const env = createManipulationEnv(pushTask, {});
    const obs = env.reset({ seed: 0 }).observations[A];
    const clean = expertFor('push').act(obs);
    const noisy = expertFor('push', { noise: 0.5, seed: 7 }).act(obs);
    const same = expertFor('push', { noise: 0.5, seed: 7 }).act(obs);
    expect(Array.from(noisy)).toEqual(Array.from(same));
    expect(Array.from(noisy)).not.toEqual(Array.from(clean));
    expect(env.actionSpace(A).contains(noisy)).toBe(true);
    expect(() => expertFor('stack-blocks')).toThrow(/no scripted expert for task 'stack-blocks'.*reach, push, pick-place/);
    expect(() => expertFor('push', { noise: -1 })).toThrow(/noise/);
  });
});

describe('grasp rule', () => {
  const params: PickPlaceParams = { kind: 'pick-place', objectPosition: [0.02, 0.65, 0.02], goalPosition: [0.02, 0.85, 0.25] };

  /** Brings the open gripper down around the puck (which stands under x = 0.02, y = 0.65). */
  function descendAroundPuck(env: ManipulationEnv): Float32Array {
    let obs = env.reset({ seed: 0 }).observations[A];
    for (let t = 0; t < 40; t++) {
      const dx = Math.max(-1, Math.min(1, 50 * (0.02 - obs[0])));
      const dy = Math.max(-1, Math.min(1, 50 * (0.65 - obs[1])));
      obs = env.step({ [A]: Float32Array.of(dx, dy, -1, -1) }).observations[A];
    }
    expect(obs[OBS.HAND + 2]).toBeCloseTo(0.025, 6);
    return obs;
  }

  it('the expert lifts the puck off the table in pick-place', () => {
    const env = createManipulationEnv(pickPlaceTask, {});
    env.setTask(params);
    const expert = expertFor('pick-place');
    const outcome = play(env, 0, (o) => expert.act(o));
    expect(outcome.maxObjectZ).toBeGreaterThan(0.2);
    expect(outcome.success).toBe(true);
  });

  it('closing on the puck holds it (opening stops at its width) and lifts it; opening drops it', () => {
    const env = createManipulationEnv(pickPlaceTask, {});
    env.setTask(params);
    descendAroundPuck(env);
    let obs!: Float32Array;
    for (let t = 0; t < 5; t++) obs = env.step({ [A]: Float32Array.of(0, 0, 0, 1) }).observations[A];
    expect(obs[OBS.GRIPPER]).toBeCloseTo(0.4, 6); // 4 cm puck / 10 cm full opening
    let info: Record<string, unknown> = {};
    for (let t = 0; t < 10; t++) {
      const r = env.step({ [A]: Float32Array.of(0, 0, 1, 1) });
      obs = r.observations[A];
      info = r.infos[A];
    }
    expect(obs[OBS.OBJ1_POS + 2]).toBeGreaterThan(0.1);
    expect(obs[OBS.OBJ1_POS + 2] - obs[OBS.HAND + 2]).toBeCloseTo(0.02 - 0.025, 3);
    expect(info.grasp_success).toBe(true);
    expect(env.render()).toMatch(/holding/);
    // Open: the puck falls back to the table.
    for (let t = 0; t < 40; t++) obs = env.step({ [A]: Float32Array.of(0, 0, 0, -1) }).observations[A];
    expect(obs[OBS.GRIPPER]).toBe(1);
    expect(obs[OBS.OBJ1_POS + 2]).toBeLessThan(0.03);
  });

  it('an open gripper does not lift the puck, and a shut gripper coming down does not grasp it', () => {
    const env = createManipulationEnv(pickPlaceTask, {});
    env.setTask(params);
    descendAroundPuck(env);
    let obs!: Float32Array;
    for (let t = 0; t < 15; t++) obs = env.step({ [A]: Float32Array.of(0, 0, 1, -1) }).observations[A];
    expect(obs[OBS.HAND + 2]).toBeGreaterThan(0.15);
    expect(obs[OBS.OBJ1_POS + 2]).toBeLessThan(0.03);
    // Shut first, then come down onto the puck and up again: it is pushed, never held.
    env.reset({ seed: 0 });
    for (let t = 0; t < 8; t++) obs = env.step({ [A]: Float32Array.of(0, 0, 0, 1) }).observations[A];
    expect(obs[OBS.GRIPPER]).toBe(0);
    for (let t = 0; t < 40; t++) {
      const dx = Math.max(-1, Math.min(1, 50 * (0.02 - obs[0])));
      const dy = Math.max(-1, Math.min(1, 50 * (0.65 - obs[1])));
      obs = env.step({ [A]: Float32Array.of(dx, dy, -1, 1) }).observations[A];
    }
    for (let t = 0; t < 15; t++) obs = env.step({ [A]: Float32Array.of(0, 0, 1, 1) }).observations[A];
    expect(obs[OBS.GRIPPER]).toBe(0);
    expect(obs[OBS.OBJ1_POS + 2]).toBeLessThan(0.05);
  });
});
