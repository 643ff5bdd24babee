import { checkEnv, formatCheckReport } from '../envs/checker';
import { ManipulationEnv, createManipulationEnv } from '../envs/manipulation/manipulation-env';
import { OBS } from '../envs/manipulation/observation-layout';
import { initPhysics } from '../envs/manipulation/physics';
import { registerManipulationEnvs, sampleTaskParams } from '../envs/manipulation/register';
import { gripperCagingReward, hamacherProduct, tolerance } from '../envs/manipulation/reward-shaping';
import { pushTask, type PushParams } from '../envs/manipulation/tasks/push';
import { reachTask, type ReachParams } from '../envs/manipulation/tasks/reach';
import { listEnvs, makeEnv, prepareEnv } from '../envs/registry';
import { Box } from '../envs/spaces/box';
import { InvalidActionError } from '../envs/validate-actions';
import { Rng } from '../runtime/core/rng';

registerManipulationEnvs();

const IDS = ['reach', 'push', 'pick-place'];
const A = 'arm_0';

/** Plays an episode of seeded random actions and returns every observation and reward. */
function rollout(env: ManipulationEnv, seed: number, actionSeed: string): { observations: Float32Array[]; rewards: number[] } {
  const rng = new Rng(actionSeed);
  const observations = [env.reset({ seed }).observations[A]];
  const rewards: number[] = [];
  while (env.agents.length) {
    const r = env.step({ [A]: env.actionSpace(A).sample(rng) });
    observations.push(r.observations[A]);
    rewards.push(r.rewards[A]);
  }
  return { observations, rewards };
}

function move(env: ManipulationEnv, dx: number, dy: number, dz: number, effort: number): { obs: Float32Array; info: Record<string, unknown>; reward: number } {
  const r = env.step({ [A]: Float32Array.of(dx, dy, dz, effort) });
  return { obs: r.observations[A], info: r.infos[A], reward: r.rewards[A] };
}

describe('manipulation: before physics is initialised', () => {
  it('factories fail with a clear message', () => {
    // Jest gives each test file a fresh module registry, so physics is not initialised yet here.
    expect(() => makeEnv('reach')).toThrow(/await prepareEnv\('reach'\)/);
  });
});

describe('manipulation envs', () => {
  beforeAll(async () => {
    await prepareEnv('reach');
  });

  it('registers reach, push and pick-place in the manipulation family', () => {
    const listed = listEnvs().filter((e) => e.family === 'manipulation').map((e) => e.id);
    expect(listed).toEqual(expect.arrayContaining(IDS));
  });

  it('has Meta-World spaces: Box(39) observations with finite bounds, Box(-1, 1, [4]) actions, one agent', () => {
    const env = makeEnv<Float32Array, Float32Array>('push') as ManipulationEnv;
    expect(env.possibleAgents).toEqual([A]);
    const obsSpace = env.observationSpace(A);
    expect(obsSpace).toBeInstanceOf(Box);
    expect(obsSpace.shape).toEqual([39]);
    expect(Array.from(obsSpace.low).every(Number.isFinite) && Array.from(obsSpace.high).every(Number.isFinite)).toBe(true);
    const act = env.actionSpace(A);
    expect(act.shape).toEqual([4]);
    expect(Array.from(act.low)).toEqual([-1, -1, -1, -1]);
    expect(Array.from(act.high)).toEqual([1, 1, 1, 1]);
    expect(env.metadata).toMatchObject({ family: 'manipulation', maxEpisodeSteps: 200, reportsSuccess: true });
  });

  it('lays out the observation as hand, opening, object pose, zero padding, previous frame, goal', () => {
    const env = createManipulationEnv(pushTask, {});
    const params: PushParams = { kind: 'push', objectPosition: [0.05, 0.65, 0.02], goalPosition: [-0.05, 0.85, 0.02] };
    env.setTask(params);
    const obs0 = env.reset({ seed: 0 }).observations[A];
    expect(Array.from(obs0.slice(OBS.HAND, OBS.HAND + 3))).toEqual([0, 0.6, 0.2].map(Math.fround));
    expect(obs0[OBS.GRIPPER]).toBe(1); // fully open at reset
    expect(obs0[OBS.OBJ1_POS]).toBeCloseTo(0.05, 6);
    expect(obs0[OBS.OBJ1_POS + 1]).toBeCloseTo(0.65, 6);
    expect(obs0[OBS.OBJ1_POS + 2]).toBeCloseTo(0.02, 6);
    expect(Array.from(obs0.slice(OBS.OBJ1_QUAT, OBS.OBJ1_QUAT + 4))).toEqual([0, 0, 0, 1]);
    expect(Array.from(obs0.slice(OBS.OBJ2_POS, OBS.FRAME_SIZE)).every((v) => v === 0)).toBe(true);
    expect(Array.from(obs0.slice(OBS.PREV, OBS.PREV + 18))).toEqual(Array.from(obs0.slice(0, 18)));
    expect(Array.from(obs0.slice(OBS.GOAL))).toEqual([-0.05, 0.85, 0.02].map(Math.fround));

    const { obs } = move(env, 1, 0, -1, -1);
    expect(obs[OBS.HAND]).toBeCloseTo(0.01, 6); // 1 cm per unit of action
    expect(obs[OBS.HAND + 2]).toBeCloseTo(0.19, 6);
    expect(Array.from(obs.slice(OBS.PREV, OBS.PREV + 18))).toEqual(Array.from(obs0.slice(0, 18)));
  });

  it('clips the hand to its workspace and moves the fingers by the effort', () => {
    const env = createManipulationEnv(reachTask, {});
    env.reset({ seed: 0 });
    let obs = env.reset({ seed: 0 }).observations[A];
    for (let t = 0; t < 60; t++) obs = move(env, 0, 0, 1, 1).obs;
    expect(obs[OBS.HAND + 2]).toBeCloseTo(0.5, 6);
    expect(obs[OBS.GRIPPER]).toBe(0); // shut
    obs = move(env, 0, 0, 0, 0).obs;
    expect(obs[OBS.GRIPPER]).toBeGreaterThan(0);
    for (let t = 0; t < 5; t++) obs = move(env, 0, 0, 0, 0).obs;
    expect(obs[OBS.GRIPPER]).toBeCloseTo(0.5, 6); // effort 0 = half open
  });

  it('hides the goal when goalObservable is false', () => {
    const env = createManipulationEnv(reachTask, { goalObservable: false });
    const obs = env.reset({ seed: 4 }).observations[A];
    expect(Array.from(obs.slice(OBS.GOAL))).toEqual([0, 0, 0]);
    expect(env.currentTask()!.goalPosition.every((v) => v !== 0)).toBe(true);
  });

  it('is deterministic: the same seed and actions give the same episode, in a fresh env or a reused one', () => {
    const a = makeEnv('pick-place') as ManipulationEnv;
    const b = makeEnv('pick-place') as ManipulationEnv;
    rollout(b, 99, 'other'); // b has played a different episode first
    const first = rollout(a, 5, 'actions');
    const second = rollout(b, 5, 'actions');
    expect(second.rewards).toEqual(first.rewards);
    expect(second.observations.map((o) => Array.from(o))).toEqual(first.observations.map((o) => Array.from(o)));
    const different = rollout(a, 6, 'actions');
    expect(different.observations[0]).not.toEqual(first.observations[0]);
  });

  it('truncates at the horizon and never terminates; rewards lie in [0, 10]; info has Meta-World fields', () => {
    const env = createManipulationEnv(pushTask, { horizon: 30 });
    env.reset({ seed: 1 });
    const rng = new Rng(2);
    let steps = 0;
    let last: Record<string, unknown> = {};
    while (env.agents.length) {
      const r = env.step({ [A]: env.actionSpace(A).sample(rng) });
      steps++;
      expect(r.terminations[A]).toBe(false);
      expect(r.truncations[A]).toBe(steps === 30);
      expect(r.rewards[A]).toBeGreaterThanOrEqual(0);
      expect(r.rewards[A]).toBeLessThanOrEqual(10);
      last = r.infos[A];
    }
    expect(steps).toBe(30);
    for (const key of ['success', 'episode_success', 'near_object', 'grasp_success', 'grasp_reward', 'in_place_reward', 'obj_to_target', 'unscaled_reward']) {
      expect(last).toHaveProperty(key);
    }
    expect(typeof last.episode_success).toBe('boolean');
  });

  it('reports success at the task threshold and keeps episode_success once reached', () => {
    const env = createManipulationEnv(reachTask, {});
    const params: ReachParams = { kind: 'reach', objectPosition: [0.1, 0.65, 0.02], goalPosition: [0, 0.6, 0.265] };
    env.setTask(params);
    env.reset({ seed: 0 });
    const steps = [1, 1, 1, 1, 1, 1].map(() => move(env, 0, 0, 1, 0));
    // The hand starts 7 cm below the goal and rises 1 cm per step: within 5 cm after 2 steps.
    expect(steps.map((s) => s.info.success)).toEqual([false, true, true, true, true, true]);
    expect(steps[5].reward).toBe(10);
    expect(steps[0].reward).toBeLessThan(10);
    for (let t = 0; t < 10; t++) move(env, 0, 0, -1, 0);
    const away = move(env, 0, 0, -1, 0);
    expect(away.info.success).toBe(false);
    expect(away.info.episode_success).toBe(true);
  });

  it('setTask fixes object and goal positions for every reset; null returns to sampling', () => {
    const env = createManipulationEnv(pushTask, {});
    const params: PushParams = { kind: 'push', objectPosition: [-0.08, 0.62, 0.02], goalPosition: [0.07, 0.88, 0.02] };
    env.setTask(params);
    for (const seed of [1, 2]) {
      const obs = env.reset({ seed }).observations[A];
      expect(obs[OBS.OBJ1_POS]).toBeCloseTo(-0.08, 6);
      expect(obs[OBS.GOAL]).toBeCloseTo(0.07, 6);
      expect(env.currentTask()).toEqual(params);
    }
    env.setTask(null);
    env.reset({ seed: 1 });
    expect(env.currentTask()).not.toEqual(params);
  });

  it('samples configurations from seeds (ML1 train/test sets) and draws from options.tasks per reset', () => {
    const train = sampleTaskParams('push', 50, 0);
    const again = sampleTaskParams('push', 50, 0);
    const test = sampleTaskParams('push', 50, 1);
    expect(again).toEqual(train);
    expect(test).not.toEqual(train);
    for (const p of train as PushParams[]) {
      expect(p.objectPosition[0]).toBeGreaterThanOrEqual(-0.1);
      expect(p.objectPosition[0]).toBeLessThanOrEqual(0.1);
      expect(p.goalPosition[1]).toBeGreaterThanOrEqual(0.8);
      expect(Math.hypot(p.objectPosition[0] - p.goalPosition[0], p.objectPosition[1] - p.goalPosition[1])).toBeGreaterThanOrEqual(0.15);
    }
    const tasks = train.slice(0, 3);
    // Options must survive a JSON round trip (worker threads rebuild envs from specs).
    const env = makeEnv('push', JSON.parse(JSON.stringify({ tasks }))) as ManipulationEnv;
    const seen = new Set<string>();
    env.reset({ seed: 0 });
    for (let i = 0; i < 30; i++) {
      env.reset();
      seen.add(JSON.stringify(env.currentTask()));
    }
    expect([...seen].sort()).toEqual(tasks.map((t) => JSON.stringify(t)).sort());
  });

  it('rejects bad options, params and actions with clear errors', () => {
    expect(() => makeEnv('reach', { horizon: 0 })).toThrow(/reach: invalid option 'horizon'/);
    expect(() => makeEnv('reach', { colour: 'red' })).toThrow(/unknown option 'colour'.*known options: .*horizon/);
    expect(() => makeEnv('push', { tasks: [{ kind: 'push', objectPosition: [0, 0.6, 0.02], goalPosition: [0, 9, 0.02] }] })).toThrow(
      /invalid option 'tasks\[0\]\.goalPosition\[1\]'.*y must be ≤/,
    );
    expect(() => makeEnv('push', { tasks: [{ kind: 'reach', objectPosition: [0, 0.6, 0.02], goalPosition: [0, 0.8, 0.02] }] })).toThrow(/tasks\[0\]\.kind/);
    const env = makeEnv('push') as ManipulationEnv;
    expect(() => env.setTask({ kind: 'push', objectPosition: [0, 0.6], goalPosition: [0, 0.8, 0.02] } as unknown as PushParams)).toThrow(/setTask\(params\)\.objectPosition/);
    expect(() => env.step({ [A]: new Float32Array(4) })).toThrow(/call reset\(\) before step\(\)/);
    env.reset({ seed: 0 });
    expect(() => env.step({ [A]: Float32Array.of(0, 0, 2, 0) })).toThrow(InvalidActionError);
    expect(() => env.step({ [A]: Float32Array.of(0, NaN, 0, 0) })).toThrow(/outside its action space Box\(-1, 1, \[4\]/);
    expect(() => env.step({ [A]: new Float32Array(3) })).toThrow(/arm_0/);
    expect(() => env.step({ arm_1: new Float32Array(4) } as never)).toThrow(/no action for live agent 'arm_0'/);
  });

  it.each(IDS)('%s passes the conformance checker', (id) => {
    const report = checkEnv(() => makeEnv(id, { horizon: 40 }), { seed: 0, episodes: 2 });
    if (!report.passed) throw new Error(formatCheckReport(report));
  });

  it('renders a text summary and an SVG with top and side views', () => {
    const env = makeEnv('pick-place') as ManipulationEnv;
    expect(env.render()).toMatch(/not reset/);
    env.reset({ seed: 2 });
    env.step({ [A]: Float32Array.of(0, 0, -1, 1) });
    const text = env.render();
    expect(text).toMatch(/pick-place step 1\/200/);
    expect(text).toMatch(/hand \(0\.000, 0\.600, 0\.190\)/);
    expect(text).toMatch(/puck .*goal/);
    const svg = env.render('svg');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toMatch(/top \(x→, y↑\)/);
    expect(svg).toMatch(/side \(y→, z↑\)/);
    expect((svg.match(/<rect /g) ?? []).length).toBeGreaterThan(10); // table, rims, palm, pads, puck in two views
    expect(svg).toMatch(/stroke="green"/);
    expect(() => env.render('rgb_array')).toThrow(/not supported/);
  });
});

describe('reward shaping (Meta-World v2 vocabulary)', () => {
  it('tolerance is 1 inside the bounds and 0.1 one margin outside', () => {
    expect(tolerance(0.03, 0, 0.05, 0.2, 'long_tail')).toBe(1);
    expect(tolerance(0.25, 0, 0.05, 0.2, 'long_tail')).toBeCloseTo(0.1, 12);
    expect(tolerance(0.25, 0, 0.05, 0.2, 'gaussian')).toBeCloseTo(0.1, 12);
    expect(tolerance(0.45, 0, 0.05, 0.2, 'long_tail')).toBeCloseTo(1 / (4 * 9 + 1), 12);
    expect(tolerance(0.06, 0, 0.05, 0)).toBe(0);
  });

  it('hamacher product is a soft AND', () => {
    expect(hamacherProduct(1, 1)).toBe(1);
    expect(hamacherProduct(0, 0)).toBe(0);
    expect(hamacherProduct(0.5, 0.5)).toBeCloseTo(1 / 3, 12);
    expect(hamacherProduct(1, 0.3)).toBeCloseTo(0.3, 12);
    expect(() => hamacherProduct(1.5, 0)).toThrow(/\[0, 1\]/);
  });

  it('caging pays most when the pads straddle the object and the gripper closes', () => {
    const base = {
      tcp: [0, 0.65, 0.025],
      initTcp: [0, 0.6, 0.2],
      object: [0, 0.65, 0.02],
      initObject: [0, 0.65, 0.02],
      leftPadY: 0.675,
      rightPadY: 0.625,
      objectRadius: 0.015,
      padSuccessThreshold: 0.05,
      xzThreshold: 0.005,
    };
    const closing = gripperCagingReward({ ...base, effort: 1 });
    const open = gripperCagingReward({ ...base, effort: -1 });
    const far = gripperCagingReward({ ...base, tcp: [0, 0.6, 0.2], leftPadY: 0.655, rightPadY: 0.545, effort: 1 });
    expect(closing).toBeCloseTo(1, 6);
    expect(open).toBe(0);
    expect(far).toBeLessThan(0.1);
  });
});

describe('physics set-up', () => {
  it('initPhysics is idempotent', async () => {
    await initPhysics();
    await initPhysics();
    expect(() => createManipulationEnv(reachTask, {})).not.toThrow();
  });
});
