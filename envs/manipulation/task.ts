import { z } from 'zod';
import { Rng } from '../../runtime/core/rng';
import type { Gripper, GripperConfig, Graspable } from './gripper';
import { POSITION_HIGH, POSITION_LOW } from './observation-layout';
import type { TabletopScene } from './tabletop';
import { distance3, type Range3, type Vec3 } from './vec3';

/**
 * The task-definition interface of the manipulation family. One task = one file under
 * `envs/manipulation/tasks/` exporting a `ManipulationTask`; `ManipulationEnv` does the rest
 * (spaces, action handling, gripper, physics stepping, observation frames, success bookkeeping,
 * rendering, option validation). A task says:
 *
 * - what varies between its configurations (`TaskParams`, a plain JSON object with a `kind`,
 *   so lists of them travel through options to worker threads), how to draw them from the task's
 *   ranges with the env's `Rng` (`sampleParams`) and how to validate them (`paramsSchema`);
 * - how to build its objects in a fresh scene for given params (`setup`), returning a
 *   `TaskEpisode` that reports the goal, the graspable objects, the observation's object block
 *   and each step's reward and success.
 *
 * To add a task: write `tasks/<kind>.ts` (see `tasks/push.ts` for a template), add it to the list
 * in `register.ts`, and give it an expert in `agents/experts/` (listed in `expert-registry.ts`).
 */

/** What every task's parameters have: the task's kind (its registry id). */
export interface TaskParamsBase {
  readonly kind: string;
}

/** What a task sees of the current step when it scores it. */
export interface StepView {
  /** This step's action (dx, dy, dz, effort), already validated. */
  readonly action: Float32Array;
  readonly gripper: Gripper;
  /** TCP at the start of the episode. */
  readonly initTcp: Float64Array;
  /** The current observation frame (18 numbers, see OBS): hand, opening, object block. */
  readonly frame: Float64Array;
}

/**
 * A step's score, written by `TaskEpisode.evaluate` into an object the env reuses. Mirrors the
 * `info` of Meta-World's `evaluate_state`; the env reports the fields in each step's info as
 * `success`, `near_object`, `grasp_success`, `grasp_reward`, `in_place_reward`, `obj_to_target`,
 * `unscaled_reward` (= reward).
 */
export interface TaskEvaluation {
  /** In [0, 10]. */
  reward: number;
  /** The task's success criterion at this step (Meta-World's per-task threshold). */
  success: boolean;
  nearObject: boolean;
  graspSuccess: boolean;
  graspReward: number;
  inPlaceReward: number;
  /** The distance the success criterion thresholds (object to goal, or TCP to goal for reach). */
  objToTarget: number;
}

/** One episode of a task, built by `ManipulationTask.setup` in a fresh scene. */
export interface TaskEpisode {
  /** Goal position: the last 3 observation entries (unless hidden), and drawn in renders. */
  readonly goal: Vec3;
  /** Objects the gripper may pick up (see the grasp rule in gripper.ts); may be empty. */
  readonly graspables: readonly Graspable[];
  /** Writes the observation's 14-number object block (obj1 pos+quat, obj2 pos+quat, zero-padded) at `out[offset]`. */
  writeObjects(out: Float64Array, offset: number): void;
  // The env calls writeObjects before evaluate in every step (the frame is written first), so a
  // task may cache a joint reading in writeObjects and use it in evaluate (door-open, lever-pull do).
  /** Scores the step that just ended (physics advanced, `view.frame` up to date). Must not allocate much: it runs every step. */
  evaluate(view: StepView, out: TaskEvaluation): void;
  /** Optional: runs every step after the gripper took its action and before physics (e.g. to drive a motor). */
  beforePhysics?(action: Float32Array): void;
  /** One line for the text render, e.g. the object's and goal's positions. */
  describe(): string;
}

export interface ManipulationTask<P extends TaskParamsBase = TaskParamsBase> {
  /** Registry id and `params.kind`, e.g. `reach`. */
  readonly kind: P['kind'];
  /** One line for `troupe envs`. */
  readonly description: string;
  /** Validates params from `setTask`, `options.tasks` and `reset({ options: { task } })`; strict (unknown keys are errors). */
  readonly paramsSchema: z.ZodType<P>;
  /** Overrides of the gripper's defaults (e.g. a different `handInit` or workspace). */
  readonly gripper?: Partial<GripperConfig>;
  /** Draws one configuration from the task's ranges; all randomness from `rng`. */
  sampleParams(rng: Rng): P;
  /** Builds the task's objects in `scene` (a fresh world, the gripper already in it). */
  setup(scene: TabletopScene, params: P): TaskEpisode;
}

/** `n` configurations drawn in order from one stream seeded by `seed` (ML1: train from seed s, test from s + 1). */
export function sampleTaskParamsFor<P extends TaskParamsBase>(task: ManipulationTask<P>, n: number, seed: number | string): P[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${task.kind}: the number of task configurations must be a non-negative integer, got ${n}`);
  const rng = new Rng(`${task.kind}/tasks/${seed}`);
  return Array.from({ length: n }, () => task.sampleParams(rng));
}

/** A uniform point in `range`. */
export function uniformIn(rng: Rng, range: Range3): [number, number, number] {
  return [rng.uniform(range.low[0], range.high[0]), rng.uniform(range.low[1], range.high[1]), rng.uniform(range.low[2], range.high[2])];
}

/**
 * An object and a goal position from their ranges, redrawn together until they are at least
 * `minXyDistance` apart in the table plane (Meta-World's reset rule, 0.15 m).
 */
export function sampleObjectAndGoal(rng: Rng, objectRange: Range3, goalRange: Range3, minXyDistance = 0.15): { object: Vec3; goal: Vec3 } {
  for (;;) {
    const object = uniformIn(rng, objectRange);
    const goal = uniformIn(rng, goalRange);
    if (Math.hypot(object[0] - goal[0], object[1] - goal[1]) >= minXyDistance) return { object, goal };
  }
}

/** A zod schema for a position inside `[low, high]` (default: the observation's position bounds), with a message naming the axis. */
export function positionSchema(low: Vec3 = POSITION_LOW as unknown as Vec3, high: Vec3 = POSITION_HIGH as unknown as Vec3): z.ZodType<Vec3> {
  const axis = (i: number) =>
    z
      .number({ invalid_type_error: `expected a number (${'xyz'[i]})` })
      .finite()
      .min(low[i], { message: `${'xyz'[i]} must be ≥ ${low[i]}` })
      .max(high[i], { message: `${'xyz'[i]} must be ≤ ${high[i]}` });
  return z.tuple([axis(0), axis(1), axis(2)]) as unknown as z.ZodType<Vec3>;
}

/** Where an object may be placed by params: on the table inside its rims, at most 0.3 m up (it then drops). */
export const PLACEABLE: Range3 = Object.freeze({ low: [-0.65, 0.35, 0] as Vec3, high: [0.65, 1.05, 0.3] as Vec3 });

/** Euclidean distance between a stored triple and a Vec3. */
export function distanceTo(a: ArrayLike<number>, offset: number, b: Vec3): number {
  return distance3(a[offset], a[offset + 1], a[offset + 2], b[0], b[1], b[2]);
}
