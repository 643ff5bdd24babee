import { DoorCloseExpert } from '../agents/experts/door-close-expert';
import { DoorOpenExpert } from '../agents/experts/door-open-expert';
import { DrawerCloseExpert, DrawerOpenExpert } from '../agents/experts/drawer-experts';
import type { ManipulationExpert } from '../agents/experts/manipulation-expert';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { createManipulationEnv, type ManipulationEnv } from '../envs/manipulation/manipulation-env';
import { OBS } from '../envs/manipulation/observation-layout';
import { initPhysics } from '../envs/manipulation/physics';
import type { ManipulationTask, TaskParamsBase } from '../envs/manipulation/task';
import { doorCloseTask } from '../envs/manipulation/tasks/door-close';
import { doorOpenTask } from '../envs/manipulation/tasks/door-open';
import { drawerCloseTask } from '../envs/manipulation/tasks/drawer-close';
import { drawerOpenTask } from '../envs/manipulation/tasks/drawer-open';
import { Rng } from '../runtime/rng';

const A = 'arm_0';

beforeAll(async () => {
  await initPhysics();
});

type AnyTask = ManipulationTask<TaskParamsBase>;
const TASKS: Array<[string, AnyTask, () => ManipulationExpert]> = [
  ['door-open', doorOpenTask as unknown as AnyTask, () => new DoorOpenExpert()],
  ['door-close', doorCloseTask as unknown as AnyTask, () => new DoorCloseExpert()],
  ['drawer-open', drawerOpenTask as unknown as AnyTask, () => new DrawerOpenExpert()],
  ['drawer-close', drawerCloseTask as unknown as AnyTask, () => new DrawerCloseExpert()],
];

/** Plays until the episode succeeds or ends; returns whether it succeeded. */
function succeeds(env: ManipulationEnv, seed: number, act: (obs: Float32Array) => Float32Array): boolean {
  let obs = env.reset({ seed }).observations[A];
  while (env.agents.length) {
    const r = env.step({ [A]: act(obs) });
    if (r.infos[A].episode_success === true) return true;
    obs = r.observations[A];
  }
  return false;
}

/** Moves the TCP towards (x, y, z) for `steps` steps with the gripper shut; returns the last observation. */
function moveTo(env: ManipulationEnv, target: readonly [number, number, number], steps: number, obs: Float32Array): { obs: Float32Array; everSucceeded: boolean } {
  let everSucceeded = false;
  for (let t = 0; t < steps; t++) {
    const action = Float32Array.of(...[0, 1, 2].map((i) => Math.max(-1, Math.min(1, 25 * (target[i] - obs[OBS.HAND + i])))), 1);
    const r = env.step({ [A]: action });
    obs = r.observations[A];
    if (r.infos[A].success === true) everSucceeded = true;
  }
  return { obs, everSucceeded };
}

/** The door's angle from the observed handle quaternion (a turn about z). */
const doorAngle = (obs: Float32Array) => 2 * Math.atan2(obs[OBS.OBJ1_QUAT + 2], obs[OBS.OBJ1_QUAT + 3]);

describe.each(TASKS)('%s', (kind, task, makeExpert) => {
  it('the expert succeeds in ≥ 90% of 20 seeded episodes; a random policy mostly fails', () => {
    const env = createManipulationEnv(task, {});
    let wins = 0;
    for (let ep = 0; ep < 20; ep++) {
      const expert = makeExpert();
      if (succeeds(env, ep, (o) => expert.act(o))) wins++;
    }
    expect(wins).toBeGreaterThanOrEqual(18);
    const rng = new Rng(`random/${kind}`);
    const short = createManipulationEnv(task, { horizon: 100 });
    let randomWins = 0;
    for (let ep = 0; ep < 8; ep++) if (succeeds(short, 1000 + ep, () => short.actionSpace(A).sample(rng))) randomWins++;
    expect(randomWins).toBeLessThanOrEqual(2);
  });

  it('passes the conformance checker', () => {
    const report = checkEnv(() => createManipulationEnv(task, { horizon: 30 }), { seed: 0, episodes: 2 });
    if (!report.passed) throw new Error(formatCheckReport(report));
  });

  it('is deterministic under a seed, and the kind and params round-trip', () => {
    const play = () => {
      const env = createManipulationEnv(task, {});
      const rng = new Rng('actions');
      const out: number[] = Array.from(env.reset({ seed: 7 }).observations[A]);
      for (let t = 0; t < 40; t++) out.push(...env.step({ [A]: env.actionSpace(A).sample(rng) }).observations[A]);
      return { out, params: env.currentTask() };
    };
    const a = play();
    const b = play();
    expect(b.out).toEqual(a.out);
    expect(a.params!.kind).toBe(kind);
    expect(task.paramsSchema.parse(JSON.parse(JSON.stringify(a.params)))).toEqual(a.params);
    expect(() => createManipulationEnv(task, {}).setTask({ kind, fixturePosition: [0.6, 0.9, 0.1] } as TaskParamsBase)).toThrow(/fixturePosition/);
  });
});

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
