import { BasketballExpert } from '../agents/policies/experts/basketball-expert';
import type { ManipulationExpert } from '../agents/policies/experts/manipulation-expert';
import { PegInsertSideExpert } from '../agents/policies/experts/peg-insert-side-expert';
import { ShelfPlaceExpert } from '../agents/policies/experts/shelf-place-expert';
import { SweepExpert } from '../agents/policies/experts/sweep-expert';
import { SweepIntoExpert } from '../agents/policies/experts/sweep-into-expert';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { createManipulationEnv, type ManipulationEnv } from '../envs/manipulation/manipulation-env';
import { OBS } from '../envs/manipulation/observation-layout';
import { initPhysics } from '../envs/manipulation/physics';
import { basketballTask, RING_OFFSET, RING_RADIUS, type BasketballParams } from '../envs/manipulation/tasks/basketball';
import { BOX_HALF_DEPTH, PEG_HALF, PEG_HEAD_OFFSET, pegInsertSideTask, type PegInsertSideParams } from '../envs/manipulation/tasks/peg-insert-side';
import { BOARD_FRONT, BOARD_TOP, BLOCK_HALF, shelfPlaceTask, type ShelfPlaceParams } from '../envs/manipulation/tasks/shelf-place';
import { sweepTask } from '../envs/manipulation/tasks/sweep';
import { CUBE_HALF, sweepIntoTask } from '../envs/manipulation/tasks/sweep-into';
import type { ManipulationTask, TaskParamsBase } from '../envs/manipulation/task';
import { Rng } from '../runtime/core/rng';

const A = 'arm_0';
const EXPERT_EPISODES = 20;
const RANDOM_EPISODES = 10;

beforeAll(async () => {
  await initPhysics();
});

interface Outcome {
  success: boolean;
  observations: Float32Array[];
  rewards: number[];
}

function play(env: ManipulationEnv, seed: number, act: (obs: Float32Array) => Float32Array): Outcome {
  let obs = env.reset({ seed }).observations[A];
  const observations = [obs];
  const rewards: number[] = [];
  let success = false;
  while (env.agents.length) {
    const r = env.step({ [A]: act(obs) });
    obs = r.observations[A];
    observations.push(obs);
    rewards.push(r.rewards[A]);
    success = r.infos[A].episode_success as boolean;
  }
  return { success, observations, rewards };
}

type AnyTask = ManipulationTask<TaskParamsBase>;
const TASKS: Array<[string, AnyTask, () => ManipulationExpert]> = [
  ['peg-insert-side', pegInsertSideTask as unknown as AnyTask, () => new PegInsertSideExpert()],
  ['sweep-into', sweepIntoTask as unknown as AnyTask, () => new SweepIntoExpert()],
  ['sweep', sweepTask as unknown as AnyTask, () => new SweepExpert()],
  ['basketball', basketballTask as unknown as AnyTask, () => new BasketballExpert()],
  ['shelf-place', shelfPlaceTask as unknown as AnyTask, () => new ShelfPlaceExpert()],
];

describe.each(TASKS)('%s', (kind, task, makeExpert) => {
  it('the expert succeeds in ≥ 90% of seeded episodes with rewards in [0, 10]; a random policy fails', () => {
    const env = createManipulationEnv(task, {});
    const expert = makeExpert();
    expect(expert.kind).toBe(kind);
    let wins = 0;
    for (let ep = 0; ep < EXPERT_EPISODES; ep++) {
      const outcome = play(env, ep, (o) => expert.act(o));
      if (outcome.success) wins++;
      expect(outcome.rewards.every((r) => r >= 0 && r <= 10)).toBe(true);
    }
    expect(wins / EXPERT_EPISODES).toBeGreaterThanOrEqual(0.9);
    const rng = new Rng(`random/${kind}`);
    let randomWins = 0;
    for (let ep = 0; ep < RANDOM_EPISODES; ep++) if (play(env, 1000 + ep, () => env.actionSpace(A).sample(rng)).success) randomWins++;
    expect(randomWins / RANDOM_EPISODES).toBeLessThanOrEqual(0.2);
  });

  it('passes the conformance checker', () => {
    const report = checkEnv(() => createManipulationEnv(task, { horizon: 40 }), { seed: 0, episodes: 2 });
    if (!report.passed) throw new Error(formatCheckReport(report));
  });

  it('is deterministic under a seed, and configurations differ between seeds', () => {
    const run = (seed: number) => {
      const env = createManipulationEnv(task, { horizon: 60 });
      const rng = new Rng('same actions');
      return play(env, seed, () => env.actionSpace(A).sample(rng));
    };
    const a = run(5);
    const b = run(5);
    expect(b.observations.map((o) => Array.from(o))).toEqual(a.observations.map((o) => Array.from(o)));
    expect(b.rewards).toEqual(a.rewards);
    expect(Array.from(run(6).observations[0])).not.toEqual(Array.from(a.observations[0]));
  });

  it('draws configurations that its params schema accepts, and rejects unknown keys', () => {
    const rng = new Rng('params');
    for (let i = 0; i < 20; i++) expect(task.paramsSchema.safeParse(task.sampleParams(rng)).success).toBe(true);
    const env = createManipulationEnv(task, {});
    expect(() => env.setTask({ ...task.sampleParams(rng), colour: 'red' } as TaskParamsBase)).toThrow(/colour/);
  });

  it('renders its fixtures and objects as text and SVG', () => {
    const env = createManipulationEnv(task, {});
    env.reset({ seed: 0 });
    env.step({ [A]: Float32Array.of(0, 0, 0, 0) });
    expect(env.render()).toMatch(new RegExp(`^${kind} step 1/200`));
    const svg = env.render('svg');
    expect(svg.startsWith('<svg')).toBe(true);
    expect((svg.match(/<rect /g) ?? []).length).toBeGreaterThan(20);
  });
});

/** Drives `env` with `expert`, showing it a goal moved by `goalShift`, until `stop` holds or `steps` run out. */
function runShifted(env: ManipulationEnv, expert: ManipulationExpert, obs: Float32Array, goalShift: [number, number, number], steps: number, stop: (o: Float32Array) => boolean): Float32Array {
  for (let t = 0; t < steps && !stop(obs); t++) {
    const seen = Float32Array.from(obs);
    for (let i = 0; i < 3; i++) seen[OBS.GOAL + i] += goalShift[i];
    obs = env.step({ [A]: expert.act(seen) }).observations[A];
  }
  return obs;
}

describe('peg-insert-side: the hole is a real opening in a solid box', () => {
  const params: PegInsertSideParams = { kind: 'peg-insert-side', pegPosition: [0.1, 0.6, 0.015], boxPosition: [-0.3, 0.6, 0] };
  const opening = params.boxPosition[0] + BOX_HALF_DEPTH;

  /** Lines the held peg up with the hole shifted sideways by `dy`, then pushes it along −x at full effort. */
  function shove(dy: number): { obs: Float32Array; info: Record<string, unknown> } {
    const env = createManipulationEnv(pegInsertSideTask, {});
    env.setTask(params);
    let obs = env.reset({ seed: 0 }).observations[A];
    const lineY = params.boxPosition[1] + dy;
    obs = runShifted(env, new PegInsertSideExpert(), obs, [0, dy, 0], 150, (o) => o[OBS.OBJ1_POS + 2] > 0.125 && Math.abs(o[OBS.OBJ1_POS + 1] - lineY) < 0.004 && o[OBS.OBJ1_POS] + PEG_HEAD_OFFSET < opening + 0.07);
    expect(obs[OBS.GRIPPER]).toBeCloseTo((2 * PEG_HALF[1]) / 0.1, 5); // still holding the peg
    let info: Record<string, unknown> = {};
    for (let t = 0; t < 50; t++) {
      const r = env.step({ [A]: Float32Array.of(-1, 0, 0, 1) });
      obs = r.observations[A];
      info = r.infos[A];
    }
    return { obs, info };
  }

  it('pushed at the face beside the hole, the held peg stops at the box (and does not succeed)', () => {
    const { obs, info } = shove(0.06);
    const tip = obs[OBS.OBJ1_POS] - PEG_HALF[0];
    expect(tip).toBeGreaterThan(opening - 0.005);
    expect(info.episode_success).toBe(false);
  });

  it('pushed in line with the hole, it slides in past the target', () => {
    const { obs, info } = shove(0);
    const head = obs[OBS.OBJ1_POS] + PEG_HEAD_OFFSET;
    expect(head).toBeLessThan(opening - 0.05);
    expect(info.success).toBe(true);
  });
});

describe('sweep-into and sweep: the hole and the gutter are cut into the table', () => {
  it('the expert drops the cube into the hole, below the table surface', () => {
    const env = createManipulationEnv(sweepIntoTask, {});
    const expert = new SweepIntoExpert();
    const last = play(env, 3, (o) => expert.act(o)).observations.at(-1)!;
    expect(last[OBS.OBJ1_POS + 2]).toBeLessThan(-0.02);
    expect(Math.hypot(last[OBS.OBJ1_POS] - last[OBS.GOAL], last[OBS.OBJ1_POS + 1] - last[OBS.GOAL + 1])).toBeLessThan(0.03);
  });

  it('elsewhere the table is solid: a cube left alone rests on it', () => {
    const env = createManipulationEnv(sweepIntoTask, { horizon: 30 });
    const last = play(env, 4, () => Float32Array.of(0, 0, 0, -1)).observations.at(-1)!;
    expect(last[OBS.OBJ1_POS + 2]).toBeCloseTo(CUBE_HALF, 2);
  });

  it('the sweep expert slides the cube over the gutter edge and it drops in', () => {
    const env = createManipulationEnv(sweepTask, {});
    const expert = new SweepExpert();
    const outcome = play(env, 2, (o) => expert.act(o));
    const last = outcome.observations.at(-1)!;
    expect(outcome.success).toBe(true);
    expect(last[OBS.OBJ1_POS + 2]).toBeLessThan(0);
  });

  it('rejects a cube that would start inside the hole', () => {
    const env = createManipulationEnv(sweepIntoTask, {});
    expect(() => env.setTask({ kind: 'sweep-into', objectPosition: [0.01, 0.85, 0.02], goalPosition: [0, 0.84, 0.02] })).toThrow(/objectPosition.*outside the hole/);
  });
});

describe('basketball: the ring is a real hoop', () => {
  const hoop: [number, number, number] = [0, 0.9, 0];
  const ring = [hoop[0] + RING_OFFSET[0], hoop[1] + RING_OFFSET[1], RING_OFFSET[2]];

  /** Starts the ball in the air at `dx` beside the ring's centre and lets it fall while the hand backs away. */
  function drop(dx: number): Float32Array[] {
    const env = createManipulationEnv(basketballTask, { horizon: 40 });
    const params: BasketballParams = { kind: 'basketball', ballPosition: [ring[0] + dx, ring[1], 0.3], hoopPosition: hoop };
    env.setTask(params);
    return play(env, 0, () => Float32Array.of(0, -1, 0, -1)).observations;
  }

  it('a ball dropped over the centre falls through the ring onto the table below it', () => {
    const last = drop(0).at(-1)!;
    expect(last[OBS.OBJ1_POS + 2]).toBeLessThan(0.03);
    expect(Math.hypot(last[OBS.OBJ1_POS] - ring[0], last[OBS.OBJ1_POS + 1] - ring[1])).toBeLessThan(0.02);
  });

  it('a ball dropped onto the rim stays up on it', () => {
    const last = drop(RING_RADIUS).at(-1)!;
    expect(last[OBS.OBJ1_POS + 2]).toBeGreaterThan(ring[2]);
  });

  it('the expert lets the ball go over the ring and it ends on the table under the hoop', () => {
    const env = createManipulationEnv(basketballTask, {});
    const expert = new BasketballExpert();
    const outcome = play(env, 1, (o) => expert.act(o));
    const last = outcome.observations.at(-1)!;
    expect(outcome.success).toBe(true);
    expect(last[OBS.OBJ1_POS + 2]).toBeLessThan(0.03);
    expect(Math.hypot(last[OBS.OBJ1_POS] - last[OBS.GOAL], last[OBS.OBJ1_POS + 1] - last[OBS.GOAL + 1])).toBeLessThan(0.03);
  });
});

describe('shelf-place: the shelf is solid', () => {
  const params: ShelfPlaceParams = { kind: 'shelf-place', objectPosition: [0, 0.55, BLOCK_HALF], shelfPosition: [0, 0.85, 0] };

  it('a block carried in at the height of the board stops at its front edge', () => {
    const env = createManipulationEnv(shelfPlaceTask, {});
    env.setTask(params);
    let obs = env.reset({ seed: 0 }).observations[A];
    // Aim the expert 6 cm low: the block's centre then travels level with the board.
    obs = runShifted(env, new ShelfPlaceExpert(), obs, [0, 0, BOARD_TOP - 0.01 - 0.3], 160, () => false);
    const front = params.shelfPosition[1] + BOARD_FRONT;
    expect(obs[OBS.OBJ1_POS + 1]).toBeLessThan(front);
    expect(obs[OBS.OBJ1_POS + 2]).toBeLessThan(BOARD_TOP);
  });

  it('the expert leaves the block resting on the board', () => {
    const env = createManipulationEnv(shelfPlaceTask, {});
    env.setTask(params);
    const expert = new ShelfPlaceExpert();
    const outcome = play(env, 0, (o) => expert.act(o));
    const last = outcome.observations.at(-1)!;
    expect(outcome.success).toBe(true);
    expect(last[OBS.OBJ1_POS + 2]).toBeCloseTo(BOARD_TOP + BLOCK_HALF, 2);
    expect(last[OBS.GRIPPER]).toBe(1); // released
  });
});
