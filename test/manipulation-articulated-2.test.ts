import { ButtonPressTopdownExpert } from '../agents/policies/experts/button-press-topdown-expert';
import { LeverPullExpert } from '../agents/policies/experts/lever-pull-expert';
import { WindowCloseExpert, WindowOpenExpert } from '../agents/policies/experts/window-experts';
import { createManipulationEnv, type ManipulationEnv } from '../envs/manipulation/manipulation-env';
import { OBS } from '../envs/manipulation/observation-layout';
import { initPhysics } from '../envs/manipulation/physics';
import { buttonPressTopdownTask } from '../envs/manipulation/tasks/button-press-topdown';
import { leverPullTask } from '../envs/manipulation/tasks/lever-pull';
import { windowCloseTask } from '../envs/manipulation/tasks/window-close';
import { windowOpenTask } from '../envs/manipulation/tasks/window-open';
import { type AnyTask, describeFixtureTaskBattery, type FixtureTaskCase, moveTo, type Run } from './helpers/fixture-task-battery';

const A = 'arm_0';

beforeAll(async () => {
  await initPhysics();
});

const TASKS: FixtureTaskCase[] = [
  { kind: 'window-open', task: windowOpenTask as unknown as AnyTask, makeExpert: () => new WindowOpenExpert(), outOfRange: [0.3, 0.8, 0.16] },
  { kind: 'window-close', task: windowCloseTask as unknown as AnyTask, makeExpert: () => new WindowCloseExpert(), outOfRange: [0.05, 0.8, 0.2] },
  { kind: 'button-press-topdown', task: buttonPressTopdownTask as unknown as AnyTask, makeExpert: () => new ButtonPressTopdownExpert(), outOfRange: [0, 0.85, 0.2] },
  { kind: 'lever-pull', task: leverPullTask as unknown as AnyTask, makeExpert: () => new LeverPullExpert(), outOfRange: [0, 0.75, 0.1] },
];

/** Runs the moves in order from `obs`; the run succeeded if any step did. */
function path(env: ManipulationEnv, obs: Float32Array, moves: Array<[[number, number, number], number]>): Run {
  let run: Run = { obs, everSucceeded: false };
  for (const [target, steps] of moves) {
    const next = moveTo(env, target, steps, run.obs);
    run = { obs: next.obs, everSucceeded: run.everSucceeded || next.everSucceeded };
  }
  return run;
}

const obj = (obs: Float32Array, i: number) => obs[OBS.OBJ1_POS + i];
const tcp = (obs: Float32Array, i: number) => obs[OBS.HAND + i];

describeFixtureTaskBattery(TASKS);

describe('window joint behaviour', () => {
  // Window at (0, 0.8, 0.16): the sliding pane spans x −0.2…0 with its front face at y 0.775 and its
  // top at z 0.31; the handle bar stands at x −0.014, y 0.7 (observed 2.6 cm to its left, at −0.04).

  it('pressing or rubbing the pane, or pushing the handle the closing way, does not open the window', () => {
    const env = createManipulationEnv(windowOpenTask, { horizon: 400 });
    env.setTask({ kind: 'window-open', fixturePosition: [0, 0.8, 0.16] });
    const start = env.reset({ seed: 0 }).observations[A];
    expect(obj(start, 0)).toBeCloseTo(-0.04, 4);
    let run = path(env, start, [
      [[-0.1, 0.6, 0.27], 30],
      [[-0.1, 0.95, 0.27], 30], // into the glass above the handle
    ]);
    // The palm (6 cm ahead of the TCP) is stopped by the pane: the hand does not pass through.
    expect(tcp(run.obs, 1)).toBeLessThan(0.775 - 0.05);
    run = path(env, run.obs, [[[-0.17, 0.95, 0.27], 15], [[0.15, 0.95, 0.27], 40]]); // rubbing the glass sideways
    expect(obj(run.obs, 0)).toBeCloseTo(-0.04, 2);
    // From the bar's right, pushing it left: the pane is at its closed stop.
    run = path(env, run.obs, [
      [[0.05, 0.6, 0.3], 30],
      [[0.05, 0.7, 0.3], 15],
      [[0.05, 0.7, 0.16], 20],
      [[-0.2, 0.7, 0.16], 30],
    ]);
    expect(obj(run.obs, 0)).toBeCloseTo(-0.04, 2);
    expect(tcp(run.obs, 0)).toBeGreaterThan(-0.014 + 0.012);
    expect(run.everSucceeded).toBe(false);
  });

  it('pushing the handle to the right slides the pane along x only, up to its stop (0.2 m)', () => {
    const env = createManipulationEnv(windowOpenTask, { horizon: 400 });
    env.setTask({ kind: 'window-open', fixturePosition: [0, 0.8, 0.16] });
    let obs = env.reset({ seed: 0 }).observations[A];
    obs = path(env, obs, [
      [[-0.064, 0.7, 0.3], 40],
      [[-0.064, 0.7, 0.16], 20],
    ]).obs;
    const run = moveTo(env, [0.4, 0.7, 0.16], 50, obs);
    expect(obj(run.obs, 0)).toBeCloseTo(-0.04 + 0.2, 2);
    expect(obj(run.obs, 0)).toBeLessThan(-0.04 + 0.2 + 0.003);
    expect(obj(run.obs, 1)).toBeCloseTo(0.7, 3);
    expect(obj(run.obs, 2)).toBeCloseTo(0.16, 2);
    expect(tcp(run.obs, 0)).toBeLessThan(0.2 - 0.014); // held back by the bar at the stop
    expect(run.everSucceeded).toBe(true);
  });

  it('window-close: the window starts open 0.2 m and pushing the handle left shuts it', () => {
    const env = createManipulationEnv(windowCloseTask, {});
    env.setTask({ kind: 'window-close', fixturePosition: [0, 0.8, 0.2] });
    let obs = env.reset({ seed: 0 }).observations[A];
    expect(obj(obs, 0)).toBeCloseTo(0.21, 4);
    expect(Array.from(obs.slice(OBS.OBJ1_QUAT, OBS.OBJ1_QUAT + 4))).toEqual([0, 0, 0, 0]);
    const expert = new WindowCloseExpert();
    let everSucceeded = false;
    for (let t = 0; t < 150; t++) {
      const r = env.step({ [A]: expert.act(obs) });
      obs = r.observations[A];
      everSucceeded ||= r.infos[A].success === true;
    }
    expect(everSucceeded).toBe(true);
    expect(obj(obs, 0)).toBeGreaterThan(0.005);
    expect(obj(obs, 0)).toBeLessThan(0.02);
  });
});

describe('button joint behaviour', () => {
  // Box at (0, 0.85): its top at z 0.205 (0.24 m square); the button's cap top at 0.292, 4 cm in
  // radius; pressed home it is at 0.232 (the goal).

  it('pressing the box beside the button or pushing the cap sideways does not press it', () => {
    const env = createManipulationEnv(buttonPressTopdownTask, { horizon: 400 });
    env.setTask({ kind: 'button-press-topdown', fixturePosition: [0, 0.85, 0.115] });
    const start = env.reset({ seed: 0 }).observations[A];
    expect(obj(start, 2)).toBeCloseTo(0.292, 3);
    let run = path(env, start, [
      [[0.08, 0.85, 0.4], 40],
      [[0.08, 0.85, 0.1], 30],
    ]);
    expect(tcp(run.obs, 2)).toBeGreaterThan(0.205 + 0.015); // the fingertips rest on the box
    expect(obj(run.obs, 2)).toBeCloseTo(0.292, 3);
    run = path(env, run.obs, [
      [[0.08, 0.85, 0.29], 10],
      [[-0.2, 0.85, 0.29], 30], // into the cap's side
    ]);
    expect(tcp(run.obs, 0)).toBeGreaterThan(0.04);
    // Shoved hard, the slide gives a few millimetres (Rapier's joints are stiff springs), no more.
    expect(Math.abs(obj(run.obs, 0))).toBeLessThan(0.005);
    expect(obj(run.obs, 1)).toBeCloseTo(0.85, 3);
    expect(obj(run.obs, 2)).toBeGreaterThan(0.285);
    expect(run.everSucceeded).toBe(false);
    run = moveTo(env, [0.1, 0.85, 0.4], 20, run.obs);
    expect(obj(run.obs, 0)).toBeCloseTo(0, 3);
    expect(obj(run.obs, 2)).toBeCloseTo(0.292, 3);
  });

  it('pressing the cap moves it down to its stop; released, it springs back up', () => {
    const env = createManipulationEnv(buttonPressTopdownTask, { horizon: 400 });
    env.setTask({ kind: 'button-press-topdown', fixturePosition: [0, 0.85, 0.115] });
    let run = path(env, env.reset({ seed: 0 }).observations[A], [
      [[0, 0.85, 0.4], 40],
      [[0, 0.85, 0.15], 30],
    ]);
    expect(obj(run.obs, 2)).toBeCloseTo(0.232, 2);
    expect(obj(run.obs, 2)).toBeGreaterThan(0.232 - 0.003);
    expect(tcp(run.obs, 2)).toBeGreaterThan(0.245); // the stop holds the hand
    expect(run.everSucceeded).toBe(true);
    run = moveTo(env, [0, 0.85, 0.45], 30, run.obs);
    expect(obj(run.obs, 2)).toBeCloseTo(0.292, 3);
  });
});

describe('lever joint behaviour', () => {
  // Lever at (0, 0.75, 0): hinge at (0.12, 0.75, 0.25); at rest the knob (3 cm radius) is at (0.12, 0.55, 0.25).
  const hingeDistance = (obs: Float32Array) => Math.hypot(obj(obs, 1) - 0.75, obj(obs, 2) - 0.25);

  it('pressing the knob down or pushing it sideways does not turn the lever', () => {
    const env = createManipulationEnv(leverPullTask, { horizon: 400 });
    env.setTask({ kind: 'lever-pull', fixturePosition: [0, 0.75, 0] });
    const start = env.reset({ seed: 0 }).observations[A];
    expect([obj(start, 0), obj(start, 1), obj(start, 2)].map((v) => Number(v.toFixed(4)))).toEqual([0.12, 0.55, 0.25]);
    let run = path(env, start, [
      [[0.12, 0.55, 0.4], 40],
      [[0.12, 0.55, 0.1], 30],
    ]);
    expect(tcp(run.obs, 2)).toBeGreaterThan(0.28 + 0.015); // resting on the knob: the lower stop holds it
    expect(obj(run.obs, 2)).toBeCloseTo(0.25, 2);
    run = path(env, run.obs, [
      [[0.25, 0.55, 0.4], 20],
      [[0.25, 0.55, 0.25], 20],
      [[-0.1, 0.55, 0.25], 30], // into the knob's end along the hinge axis
    ]);
    expect(tcp(run.obs, 0)).toBeGreaterThan(0.15);
    expect(obj(run.obs, 0)).toBeCloseTo(0.12, 2);
    expect(obj(run.obs, 2)).toBeCloseTo(0.25, 2);
    expect(run.everSucceeded).toBe(false);
  });

  it('lifted from below it turns about its hinge and falls back when let go; pushed over the top it stays up', () => {
    const env = createManipulationEnv(leverPullTask, { horizon: 400 });
    env.setTask({ kind: 'lever-pull', fixturePosition: [0, 0.75, 0] });
    let run = path(env, env.reset({ seed: 0 }).observations[A], [
      [[0.12, 0.52, 0.12], 30],
      [[0.12, 0.52, 0.3], 15],
    ]);
    expect(obj(run.obs, 2)).toBeGreaterThan(0.29);
    expect(obj(run.obs, 0)).toBeCloseTo(0.12, 3);
    expect(hingeDistance(run.obs)).toBeCloseTo(0.2, 3);
    run = moveTo(env, [0.12, 0.4, 0.1], 40, run.obs);
    expect(obj(run.obs, 2)).toBeCloseTo(0.25, 2);
    // The expert pushes it past vertical onto its upper stop, where it rests when the hand leaves.
    const expert = new LeverPullExpert();
    let obs = run.obs;
    for (let t = 0; t < 100; t++) obs = env.step({ [A]: expert.act(obs) }).observations[A];
    run = path(env, obs, [
      [[0.12, 0.6, 0.3], 20],
      [[0.12, 0.45, 0.3], 20],
    ]);
    const angle = 2 * Math.atan2(-run.obs[OBS.OBJ1_QUAT], run.obs[OBS.OBJ1_QUAT + 3]);
    expect(angle).toBeGreaterThan(Math.PI / 2);
    expect(angle).toBeLessThan(Math.PI / 2 + Math.PI / 36 + 0.01);
    expect(hingeDistance(run.obs)).toBeCloseTo(0.2, 3);
    expect(run.everSucceeded).toBe(true);
  });
});
