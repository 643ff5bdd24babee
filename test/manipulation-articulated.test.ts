import { DoorCloseExpert } from '../agents/policies/experts/door-close-expert';
import { DoorOpenExpert } from '../agents/policies/experts/door-open-expert';
import { DrawerCloseExpert, DrawerOpenExpert } from '../agents/policies/experts/drawer-experts';
import { createManipulationEnv } from '../envs/manipulation/manipulation-env';
import { OBS } from '../envs/manipulation/observation-layout';
import { initPhysics } from '../envs/manipulation/physics';
import { doorCloseTask } from '../envs/manipulation/tasks/door-close';
import { doorOpenTask } from '../envs/manipulation/tasks/door-open';
import { drawerCloseTask } from '../envs/manipulation/tasks/drawer-close';
import { drawerOpenTask } from '../envs/manipulation/tasks/drawer-open';
import { type AnyTask, describeFixtureTaskBattery, type FixtureTaskCase, moveTo } from './helpers/fixture-task-battery';

const A = 'arm_0';

beforeAll(async () => {
  await initPhysics();
});

const TASKS: FixtureTaskCase[] = [
  { kind: 'door-open', task: doorOpenTask as unknown as AnyTask, makeExpert: () => new DoorOpenExpert(), outOfRange: [0.6, 0.9, 0.1] },
  { kind: 'door-close', task: doorCloseTask as unknown as AnyTask, makeExpert: () => new DoorCloseExpert(), outOfRange: [0.6, 0.9, 0.1] },
  { kind: 'drawer-open', task: drawerOpenTask as unknown as AnyTask, makeExpert: () => new DrawerOpenExpert(), outOfRange: [0.6, 0.9, 0.1] },
  { kind: 'drawer-close', task: drawerCloseTask as unknown as AnyTask, makeExpert: () => new DrawerCloseExpert(), outOfRange: [0.6, 0.9, 0.1] },
];

/** The door's angle from the observed handle quaternion (a turn about z). */
const doorAngle = (obs: Float32Array) => 2 * Math.atan2(obs[OBS.OBJ1_QUAT + 2], obs[OBS.OBJ1_QUAT + 3]);

describeFixtureTaskBattery(TASKS);

describe('door joint behaviour', () => {
  const params = { kind: 'door-open', fixturePosition: [0.05, 0.9, 0.15] } as const;
  // Hinge at (−0.135, 0.8, 0.15); the closed panel's front face at y = 0.79, from x = −0.13 to 0.23;
  // the handle bar at y = 0.65, x from 0.115 to 0.265.

  it('pushing the closed panel away from the handle, or the bar in the closing direction, does not open it', () => {
    const env = createManipulationEnv(doorOpenTask, { horizon: 400 });
    env.setTask(params);
    let obs = env.reset({ seed: 0 }).observations[A];
    obs = moveTo(env, [-0.03, 0.6, 0.15], 40, obs).obs;
    let run = moveTo(env, [-0.03, 0.95, 0.15], 40, obs);
    // The hand is stopped by the panel (its palm reaches 6 cm ahead of the TCP): it does not pass through.
    expect(run.obs[OBS.HAND + 1]).toBeLessThan(0.79 - 0.04);
    run = moveTo(env, [-0.03, 0.6, 0.15], 40, run.obs);
    expect(Math.abs(doorAngle(run.obs))).toBeLessThan(0.1);
    expect(run.everSucceeded).toBe(false);
    // Sweeping sideways along the front of the panel drags nothing open either.
    run = moveTo(env, [0.35, 0.74, 0.15], 40, run.obs);
    run = moveTo(env, [-0.35, 0.74, 0.15], 70, run.obs);
    expect(Math.abs(doorAngle(run.obs))).toBeLessThan(0.1);
    // Pressing the bar towards the safe: the door is at its closed stop.
    obs = env.reset({ seed: 0 }).observations[A];
    run = moveTo(env, [0.19, 0.6, 0.15], 40, obs);
    run = moveTo(env, [0.19, 0.95, 0.15], 40, run.obs);
    expect(doorAngle(run.obs)).toBeGreaterThan(-0.05);
    expect(run.everSucceeded).toBe(false);
  });

  it('hooking the bar from behind and pulling it round the hinge opens the door', () => {
    const env = createManipulationEnv(doorOpenTask, { horizon: 400 });
    env.setTask(params);
    let obs = env.reset({ seed: 0 }).observations[A];
    // Down into the gap between bar (y 0.635–0.665) and panel (0.79), then pull straight towards the robot.
    obs = moveTo(env, [0.19, 0.7, 0.25], 40, obs).obs;
    obs = moveTo(env, [0.19, 0.7, 0.15], 15, obs).obs;
    const run = moveTo(env, [0.19, 0.45, 0.15], 30, obs);
    expect(doorAngle(run.obs)).toBeLessThan(-0.3);
    // The handle moves on its circle about the hinge.
    const r = Math.hypot(run.obs[OBS.OBJ1_POS] + 0.135, run.obs[OBS.OBJ1_POS + 1] - 0.8);
    expect(r).toBeCloseTo(Math.hypot(0.325, 0.15), 3);
  });

  it('door-close: the door starts open 90° and pushing its face shuts it; it stops at the closed stop', () => {
    const env = createManipulationEnv(doorCloseTask, {});
    env.setTask({ kind: 'door-close', fixturePosition: [0.05, 0.9, 0.15] });
    const obs = env.reset({ seed: 0 }).observations[A];
    expect(doorAngle(obs)).toBeCloseTo(-Math.PI / 2, 3);
    expect(Array.from(obs.slice(OBS.HAND, OBS.HAND + 3))).toEqual([-0.5, 0.6, 0.2].map(Math.fround));
    const expert = new DoorCloseExpert();
    let o = obs;
    let minAngle = 0;
    let last = doorAngle(o);
    for (let t = 0; t < 150; t++) {
      o = env.step({ [A]: expert.act(o) }).observations[A];
      last = doorAngle(o);
      minAngle = Math.min(minAngle, last);
    }
    expect(minAngle).toBeGreaterThanOrEqual(-Math.PI / 2 - 0.05); // never pushed further open
    expect(last).toBeGreaterThan(-0.1);
    expect(last).toBeLessThan(0.03);
  });
});

describe('drawer joint behaviour', () => {
  const at = [0, 0.9, 0] as [number, number, number];
  // Handle bar closed at (0, 0.755, 0.075); it slides along −y only.

  it('a closed drawer is not opened by pushing it in or pressing down on it, and slides only along y', () => {
    const env = createManipulationEnv(drawerOpenTask, { horizon: 400 });
    env.setTask({ kind: 'drawer-open', fixturePosition: at });
    let obs = env.reset({ seed: 0 }).observations[A];
    obs = moveTo(env, [0, 0.7, 0.075], 40, obs).obs;
    let run = moveTo(env, [0, 0.95, 0.075], 40, obs);
    expect(run.obs[OBS.OBJ1_POS + 1]).toBeGreaterThan(0.75);
    run = moveTo(env, [0.1, 0.85, 0.2], 30, run.obs);
    run = moveTo(env, [0.1, 0.85, 0.03], 30, run.obs); // onto the case's top
    expect(run.obs[OBS.HAND + 2]).toBeGreaterThan(0.09);
    run = moveTo(env, [-0.3, 0.85, 0.1], 40, run.obs); // sideways across the top
    expect(run.obs[OBS.OBJ1_POS]).toBeCloseTo(0, 4);
    expect(run.obs[OBS.OBJ1_POS + 1]).toBeGreaterThan(0.75);
    expect(run.everSucceeded).toBe(false);
  });

  it('hooking the bar and pulling opens it up to its stop (0.2 m), not beyond', () => {
    const env = createManipulationEnv(drawerOpenTask, { horizon: 400 });
    env.setTask({ kind: 'drawer-open', fixturePosition: at });
    let obs = env.reset({ seed: 0 }).observations[A];
    obs = moveTo(env, [0, 0.7775, 0.14], 40, obs).obs;
    obs = moveTo(env, [0, 0.7775, 0.072], 15, obs).obs;
    const run = moveTo(env, [0, 0.45, 0.072], 50, obs);
    expect(run.obs[OBS.OBJ1_POS + 1]).toBeCloseTo(0.755 - 0.2, 2);
    expect(run.everSucceeded).toBe(true);
    expect(run.obs[OBS.HAND + 1]).toBeGreaterThan(0.56); // held back by the bar at the stop
  });

  it('drawer-close: the drawer starts out 0.15 m and pushing the bar shuts it', () => {
    const env = createManipulationEnv(drawerCloseTask, {});
    env.setTask({ kind: 'drawer-close', fixturePosition: at });
    let obs = env.reset({ seed: 0 }).observations[A];
    expect(obs[OBS.OBJ1_POS + 1]).toBeCloseTo(0.755 - 0.15, 4);
    expect(Array.from(obs.slice(OBS.OBJ1_QUAT, OBS.OBJ1_QUAT + 4))).toEqual([0, 0, 0, 0]);
    obs = moveTo(env, [0, 0.58, 0.15], 40, obs).obs;
    obs = moveTo(env, [0, 0.58, 0.075], 15, obs).obs;
    const run = moveTo(env, [0, 0.95, 0.075], 40, obs);
    expect(run.obs[OBS.OBJ1_POS + 1]).toBeGreaterThan(0.745);
    expect(run.everSucceeded).toBe(true);
  });
});
