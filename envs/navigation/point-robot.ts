import { z } from 'zod';
import { Rng, deriveSeed } from '../../runtime/core/rng';
import { BaseParallelEnv } from '../base-parallel-env';
import type { AgentId, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { type TaskFamilyMember, registerEnv } from '../registry';
import { Box } from '../spaces/box';

/**
 * Point-Robot (`point-robot`, family `navigation/point-robot`): the 2-D goal-reaching task family
 * of Meta-DT (NJU-RL/Meta-DT, `PointEnv`), itself from PEARL's point robot. A meta-RL benchmark:
 * the tasks differ only in a goal the agent never observes, so it must infer the task from rewards.
 *
 * - One agent, `agent_0` (PettingZoo's numbering, what `BaseParallelEnv` gives a one-agent env).
 * - Each episode starts at the origin (0, 0). An action is a displacement in Box(-0.1, 0.1, [2]),
 *   added to the position. The reference clips actions into that box; here, as every troupe env
 *   must (`troupe check-env`), an action outside the box is an error instead, and whoever acts
 *   clips (trainers' policies do; the scripted expert does).
 * - Reward −‖s' − g‖₂: the distance to the goal after the move (the reference's semantics).
 * - Observation: the position only, Box(-2, 2, [2]) (20 steps of at most 0.1 per axis cannot
 *   leave it). The goal is NOT observed. `state()` is the same position: a centralised critic that
 *   saw the goal would learn from information the task is meant to hide.
 * - Never terminates; truncated after 20 steps (the reference's `max_episode_steps`). No success
 *   criterion (`metadata.reportsSuccess` false): the return is the metric.
 * - Nothing is random inside an episode; the seed only matters through the tasks below.
 *
 * Tasks: `numTasks` goals (default 50) drawn uniformly from [−goalRange, goalRange]² by a stream
 * seeded from `goalSeed` (default 0), x then y per goal. The first `numTrainTasks` (default 90%,
 * i.e. 45 of 50 as in the reference) are the training tasks, the rest are held out (the reference
 * tests on ids numTrainTasks … numTasks − 1). Option `task` picks the goal by index (default 0);
 * option `goal: [x, y]` sets it directly instead. `goalRange` defaults to 1.0, the range of the
 * reference's env class. The reference's published numbers used goals loaded from a saved file
 * (`datasets/PointRobot-v0/task_goals.npy`, not in its repository) drawn from [−0.5, 0.5]², so
 * pass `goalRange: 0.5` to compare with them. A range scales the same goals: for one seed, range
 * r gives r × the unit-range goals.
 *
 * Each reset's info carries the goal and the task index (`infos.agent_0.goal`, `.task`): infos are
 * diagnostics that no learner reads, so a dataset collector can record the task without leaking it.
 */

export const POINT_ROBOT_ID = 'point-robot';
export const POINT_ROBOT_FAMILY = 'navigation/point-robot';
export const POINT_ROBOT_AGENT: AgentId = 'agent_0';
/** The largest displacement per axis and step. */
export const POINT_ROBOT_MAX_STEP = 0.1;
export const POINT_ROBOT_EPISODE_STEPS = 20;

/** How far a position can get from the origin on each axis within one episode. */
const REACHABLE = POINT_ROBOT_MAX_STEP * POINT_ROBOT_EPISODE_STEPS;

export type Point2 = [number, number];

const finiteNumber = z.number().finite();

const PointRobotOptionsSchema = z
  .object({
    id: z.string().default(POINT_ROBOT_ID),
    numTasks: z.number().int().min(1).max(1_000_000).default(50),
    numTrainTasks: z.number().int().min(0).optional(),
    goalRange: finiteNumber.positive().max(1_000_000).default(1),
    goalSeed: z.union([z.number().int(), z.string()]).default(0),
    task: z.number().int().min(0).optional(),
    goal: z.tuple([finiteNumber, finiteNumber]).optional(),
  })
  .strict();

/** The option names `point-robot` accepts (the registry refuses others by name). */
export const POINT_ROBOT_OPTION_KEYS: readonly string[] = Object.keys(PointRobotOptionsSchema.shape);

/** The validated options of a point-robot env, with its goal resolved. */
export interface PointRobotConfig {
  id: string;
  numTasks: number;
  numTrainTasks: number;
  goalRange: number;
  goalSeed: number | string;
  /** The task index the goal came from; null when the `goal` option set it directly. */
  task: number | null;
  goal: Point2;
}

/** The task family a set of options describes: every goal, and which indices train and test. */
export interface PointRobotTasks {
  goals: Point2[];
  train: number[];
  test: number[];
}

/** What identifies one env's task, for a dataset to store beside its episodes. */
export interface PointRobotTaskParameters {
  goal: Point2;
  /** Index into `pointRobotTasks(options).goals`; null for a goal set by the `goal` option. */
  task: number | null;
  /** Which side of the split the task is on; null for a goal set directly. */
  split: 'train' | 'test' | null;
}

/** Validates factory options; unknown names and bad values are errors naming the option. */
export function parsePointRobotOptions(raw: Record<string, unknown>): PointRobotConfig {
  const label = typeof raw.id === 'string' ? raw.id : POINT_ROBOT_ID;
  const parsed = PointRobotOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${POINT_ROBOT_OPTION_KEYS.join(', ')})`);
    }
    const name = String(issue.path[0]);
    throw new Error(`${label}: invalid option '${name}' = ${JSON.stringify(raw[name])}: ${issue.message}`);
  }
  const o = parsed.data;
  const numTrainTasks = o.numTrainTasks ?? Math.round(0.9 * o.numTasks);
  if (numTrainTasks > o.numTasks) {
    throw new Error(`${label}: invalid option 'numTrainTasks' = ${numTrainTasks}: at most numTasks (${o.numTasks}) tasks can be training tasks`);
  }
  if (o.task !== undefined && o.goal !== undefined) {
    throw new Error(`${label}: options 'task' = ${o.task} and 'goal' = ${JSON.stringify(o.goal)} both choose the goal; give one of them`);
  }
  if (o.task !== undefined && o.task >= o.numTasks) {
    throw new Error(`${label}: invalid option 'task' = ${o.task}: task indices run from 0 to numTasks − 1 = ${o.numTasks - 1}`);
  }
  const task = o.goal === undefined ? (o.task ?? 0) : null;
  const goal: Point2 = task === null ? [o.goal![0], o.goal![1]] : drawGoals(o.numTasks, o.goalRange, o.goalSeed)[task];
  return { id: o.id, numTasks: o.numTasks, numTrainTasks, goalRange: o.goalRange, goalSeed: o.goalSeed, task, goal };
}

/**
 * The goals and the train/test split that `options` (the env's own options; `task` and `goal` play
 * no part) describe, e.g. for a dataset collector to record beside its episodes.
 */
export function pointRobotTasks(options: Record<string, unknown> = {}): PointRobotTasks {
  const config = parsePointRobotOptions(options);
  const indices = Array.from({ length: config.numTasks }, (_, i) => i);
  return {
    goals: drawGoals(config.numTasks, config.goalRange, config.goalSeed),
    train: indices.slice(0, config.numTrainTasks),
    test: indices.slice(config.numTrainTasks),
  };
}

/** The task of an env built with `options`: its goal, task index and side of the split. */
export function pointRobotTaskParameters(options: Record<string, unknown> = {}): PointRobotTaskParameters {
  return taskParametersOf(parsePointRobotOptions(options));
}

function taskParametersOf(config: PointRobotConfig): PointRobotTaskParameters {
  const split = config.task === null ? null : config.task < config.numTrainTasks ? 'train' : 'test';
  return { goal: [config.goal[0], config.goal[1]], task: config.task, split };
}

/** `n` goals uniform in [−range, range]², x then y each, from a stream that depends only on `seed`. */
function drawGoals(n: number, range: number, seed: number | string): Point2[] {
  // A stream of its own (not the env's reset stream): the task set must not depend on episode seeds.
  const rng = new Rng(deriveSeed('point-robot-goals', seed));
  return Array.from({ length: n }, (): Point2 => {
    const x = rng.uniform(-range, range);
    const y = rng.uniform(-range, range);
    return [x, y];
  });
}

export class PointRobotEnv extends BaseParallelEnv<Float32Array, Float32Array, Box, Box> {
  readonly stateSpace: Box;
  readonly config: Readonly<PointRobotConfig>;

  /** In float64, as the reference's numpy state, so the 20 additions round only when observed. */
  private readonly position = new Float64Array(2);
  private stepCount = 0;

  constructor(config: PointRobotConfig) {
    const observationSpace = new Box(-REACHABLE, REACHABLE, [2]);
    super({
      metadata: {
        id: config.id,
        family: POINT_ROBOT_FAMILY,
        maxEpisodeSteps: POINT_ROBOT_EPISODE_STEPS,
        reportsSuccess: false,
        description: `a 2-D point moves from the origin toward a hidden goal (${config.task === null ? 'set directly' : `task ${config.task} of ${config.numTasks}`})`,
      },
      agents: [POINT_ROBOT_AGENT],
      observationSpace,
      actionSpace: new Box(-POINT_ROBOT_MAX_STEP, POINT_ROBOT_MAX_STEP, [2]),
    });
    this.config = Object.freeze({ ...config, goal: [config.goal[0], config.goal[1]] as Point2 });
    this.stateSpace = observationSpace;
  }

  /** This env's task: its goal, task index and side of the train/test split. */
  taskParameters(): PointRobotTaskParameters {
    return taskParametersOf(this.config);
  }

  override reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    // The goal is fixed by the factory options, so that a policy built from the same options (the
    // scripted expert) knows it too; a reset option would silently be ignored, so it is refused.
    const given = Object.keys(args.options ?? {});
    if (given.length > 0) {
      throw new Error(`${this.metadata.id}: reset takes no options (got ${given.map((k) => `'${k}'`).join(', ')}); choose the goal with the env options 'task' or 'goal'`);
    }
    this.seedRng(args);
    this.position.fill(0);
    this.stepCount = 0;
    this.startEpisode();
    const { goal, task } = this.taskParameters();
    return { observations: { [POINT_ROBOT_AGENT]: this.observe() }, infos: { [POINT_ROBOT_AGENT]: { goal, task } } };
  }

  override step(actions: PerAgent<Float32Array>): StepResult<Float32Array> {
    this.beginStep(actions);
    const action = actions[POINT_ROBOT_AGENT];
    this.position[0] += action[0];
    this.position[1] += action[1];
    this.stepCount++;
    const distance = this.distanceToGoal();
    const truncated = this.stepCount >= POINT_ROBOT_EPISODE_STEPS;
    return this.finishStep(
      {
        observations: { [POINT_ROBOT_AGENT]: this.observe() },
        rewards: { [POINT_ROBOT_AGENT]: 0 - distance }, // 0 - … never yields -0
        terminations: { [POINT_ROBOT_AGENT]: false },
        truncations: { [POINT_ROBOT_AGENT]: truncated },
        infos: { [POINT_ROBOT_AGENT]: { distance } },
      },
      truncated,
    );
  }

  state(): Float32Array {
    return this.observe();
  }

  override render(mode = 'ansi'): string {
    if (mode !== 'ansi') throw new Error(`${this.metadata.id}: render mode '${mode}' is not supported (only 'ansi')`);
    const [x, y] = this.position;
    const [gx, gy] = this.config.goal;
    const f = (v: number) => v.toFixed(3);
    return `step ${this.stepCount}/${POINT_ROBOT_EPISODE_STEPS}: position (${f(x)}, ${f(y)}), goal (${f(gx)}, ${f(gy)}), distance ${f(this.distanceToGoal())}`;
  }

  private distanceToGoal(): number {
    const dx = this.position[0] - this.config.goal[0];
    const dy = this.position[1] - this.config.goal[1];
    return Math.sqrt(dx * dx + dy * dy);
  }

  /** A fresh array (callers may keep it). */
  private observe(): Float32Array {
    return Float32Array.of(this.position[0], this.position[1]);
  }
}

/**
 * The family's tasks for `options` (which may not pick one with `task` or `goal`), keyed
 * `task00` … `task49`, each built by the family's options plus its `task` index.
 */
export function pointRobotTaskFamily(options: Record<string, unknown>): TaskFamilyMember[] {
  const { task, goal, id: _id, ...family } = options;
  // They pick one task; a family lists every task, and silently listing all would hide the mistake.
  for (const [name, value] of [['task', task], ['goal', goal]] as const) {
    if (value !== undefined) throw new Error(`${POINT_ROBOT_ID}: option '${name}' picks one task, but the task family lists them all; choose tasks by key instead (e.g. tasks: [task03])`);
  }
  const { goals, train } = pointRobotTasks(family);
  const width = String(goals.length - 1).length;
  return goals.map((goal, i) => ({
    key: `task${String(i).padStart(width, '0')}`,
    options: { ...family, task: i },
    split: i < train.length ? 'train' : 'test',
    parameters: { goal: [goal[0], goal[1]], task: i },
  }));
}

export function createPointRobot(options: Record<string, unknown>): PointRobotEnv {
  return new PointRobotEnv(parsePointRobotOptions(options));
}

let registered = false;

/** Registers `point-robot` (family `navigation/point-robot`). Idempotent. */
export function registerPointRobot(): void {
  if (registered) return;
  registered = true;
  registerEnv(POINT_ROBOT_ID, createPointRobot, {
    family: POINT_ROBOT_FAMILY,
    optionKeys: POINT_ROBOT_OPTION_KEYS,
    taskFamily: pointRobotTaskFamily,
    description: 'Meta-DT point robot: reach a hidden goal from the origin; Box(2) position obs, Box(-0.1, 0.1, [2]) actions, reward −distance, 20 steps; 50 goals (45 train / 5 test), option task picks one',
  });
}
