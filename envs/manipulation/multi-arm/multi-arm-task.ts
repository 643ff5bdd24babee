import type { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import { Box } from '../../spaces/box';
import type { Gripper, GripperConfig, Graspable } from '../gripper';
import { POSITION_HIGH, POSITION_LOW } from '../observation-layout';
import type { TabletopScene } from '../tabletop';
import type { TaskParamsBase } from '../task';
import type { Vec3 } from '../vec3';

/**
 * The task interface of the multi-arm manipulation family (`multi-arm-env.ts`): like the
 * single-arm `ManipulationTask` (task.ts), but a task names how many arms it needs, each arm's
 * gripper workspace, and scores a step from every arm at once (one shared team reward).
 *
 * Observation of arm i (N arms, K objects; `MultiArmLayout`), the single-arm conventions
 * extended to several hands:
 *
 *   frame (4N + 7K): own TCP xyz, own opening in [0, 1]; then every other arm in index order
 *                    (TCP xyz, opening); then K objects, each position (3) + quaternion (x, y, z, w) (4);
 *   previous frame (the frame of the step before; equal to the current one after reset);
 *   goal xyz (zeros when the goal is hidden);
 *   with presence flags only (envs whose arm count varies between episodes, team-size.ts): one
 *   flag per other arm in index order, 1 if that arm takes part in this episode. N is then the
 *   largest team; an absent arm's hand block and its object slots are zeros in both frames.
 *
 * The global state (`state()`) is arm_0's observation: every hand in index order, the objects,
 * the previous frame and the goal.
 */

/** What a task sees of the current step when it scores it. */
export interface MultiArmStepView {
  /** This step's actions, one per arm in index order (validated). */
  readonly actions: readonly Float32Array[];
  readonly grippers: readonly Gripper[];
  /** Each arm's TCP at the start of the episode. */
  readonly initTcps: readonly Float64Array[];
}

/** A step's score, written by `MultiArmEpisode.evaluate` into an object the env reuses. */
export interface MultiArmEvaluation {
  /** The shared team reward, in [0, 10]. */
  reward: number;
  /** The task's success criterion at this step. */
  success: boolean;
  /** The distance the task's criterion thresholds (object to goal, handle height error, …). */
  objToTarget: number;
  /** How many arms hold one of the task's objects now. */
  armsHolding: number;
}

/** One episode of a task, built by `MultiArmTask.setup` in a fresh scene with the grippers already in it. */
export interface MultiArmEpisode {
  readonly goal: Vec3;
  /** What every gripper may grasp (see the grasp rule in gripper.ts). */
  readonly graspables: readonly Graspable[];
  /** Writes the K object slots (7 numbers each) at `out[offset]`. */
  writeObjects(out: Float64Array, offset: number): void;
  /** Scores the step that just ended (physics advanced). Runs every step: no allocation. */
  evaluate(view: MultiArmStepView, out: MultiArmEvaluation): void;
  /** One line for the text render. */
  describe(): string;
}

export interface MultiArmTask<P extends TaskParamsBase = TaskParamsBase> {
  /** `params.kind`. */
  readonly kind: P['kind'];
  readonly description: string;
  /** N: agents `arm_0` … `arm_{N-1}`. */
  readonly numArms: number;
  /** K: object slots in the observation. */
  readonly numObjects: number;
  /** Steps per episode unless the `horizon` option says otherwise. */
  readonly defaultHorizon: number;
  /** Per-arm gripper configs (workspaces, start poses); length `numArms`. */
  readonly grippers: readonly GripperConfig[];
  /** Validates params from `setTask`, `options.tasks` and `reset({ options: { task } })`; strict. */
  readonly paramsSchema: z.ZodType<P>;
  /** Draws one configuration from the task's ranges; all randomness from `rng`. */
  sampleParams(rng: Rng): P;
  setup(scene: TabletopScene, params: P, grippers: readonly Gripper[]): MultiArmEpisode;
}

/** Offsets of the per-arm observation for N arms and K objects (see the header comment). */
export interface MultiArmLayout {
  readonly numArms: number;
  readonly numObjects: number;
  readonly HAND: 0;
  readonly GRIPPER: 3;
  /** First of the other arms' (xyz, opening) blocks. */
  readonly OTHERS: 4;
  /** First object slot; slot k's position is at OBJECTS + 7k, its quaternion at OBJECTS + 7k + 3. */
  readonly OBJECTS: number;
  readonly FRAME_SIZE: number;
  readonly PREV: number;
  readonly GOAL: number;
  /** First of the N − 1 other-arm presence flags (ordered as the other hands); equals SIZE when the layout has none. */
  readonly PRESENCE: number;
  readonly SIZE: number;
}

/** `presenceFlags`: append one flag per other arm (for envs whose arm count varies; see the header). */
export function multiArmLayout(numArms: number, numObjects: number, presenceFlags = false): MultiArmLayout {
  if (!Number.isInteger(numArms) || numArms < 1) throw new Error(`multi-arm layout: numArms must be a positive integer, got ${numArms}`);
  if (!Number.isInteger(numObjects) || numObjects < 0) throw new Error(`multi-arm layout: numObjects must be a non-negative integer, got ${numObjects}`);
  const frame = 4 * numArms + 7 * numObjects;
  const flags = presenceFlags ? numArms - 1 : 0;
  return Object.freeze({ numArms, numObjects, HAND: 0, GRIPPER: 3, OTHERS: 4, OBJECTS: 4 * numArms, FRAME_SIZE: frame, PREV: frame, GOAL: 2 * frame, PRESENCE: 2 * frame + 3, SIZE: 2 * frame + 3 + flags });
}

/** Index of arm `other` among arm `self`'s others (the order of the hand blocks and presence flags). */
function otherArmSlot(self: number, other: number): number {
  if (other === self) throw new Error(`multi-arm layout: arm ${self} is not among its own others`);
  return other < self ? other : other - 1;
}

/** Where arm `other`'s (xyz, opening) block sits in arm `self`'s frame (`self ≠ other`). */
export function otherArmOffset(layout: MultiArmLayout, self: number, other: number): number {
  return layout.OTHERS + 4 * otherArmSlot(self, other);
}

/** Where arm `other`'s presence flag sits in arm `self`'s observation; undefined when the layout has no flags. */
export function presenceFlagOffset(layout: MultiArmLayout, self: number, other: number): number | undefined {
  const slot = otherArmSlot(self, other);
  return layout.PRESENCE < layout.SIZE ? layout.PRESENCE + slot : undefined;
}

/**
 * The observation Box of a layout: positions within the single-arm bounds, openings and presence
 * flags in [0, 1], quaternions in [-1, 1]. The zeros of absent arms lie inside it.
 */
export function multiArmObservationBox(layout: MultiArmLayout): Box {
  const low = new Float32Array(layout.SIZE);
  const high = new Float32Array(layout.SIZE);
  const position = (at: number) => {
    for (let i = 0; i < 3; i++) {
      low[at + i] = POSITION_LOW[i];
      high[at + i] = POSITION_HIGH[i];
    }
  };
  for (const frame of [0, layout.PREV]) {
    for (let a = 0; a < layout.numArms; a++) {
      position(frame + 4 * a);
      low[frame + 4 * a + 3] = 0;
      high[frame + 4 * a + 3] = 1;
    }
    for (let k = 0; k < layout.numObjects; k++) {
      const at = frame + layout.OBJECTS + 7 * k;
      position(at);
      for (let i = 3; i < 7; i++) {
        low[at + i] = -1;
        high[at + i] = 1;
      }
    }
  }
  position(layout.GOAL);
  high.fill(1, layout.PRESENCE, layout.SIZE);
  return new Box(low, high, [layout.SIZE]);
}
