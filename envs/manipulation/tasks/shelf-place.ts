import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import type { Graspable } from '../gripper';
import { writeSoleObject } from '../objects';
import { OBS } from '../observation-layout';
import { PickPlaceReward } from '../pick-place-reward';
import { hamacherProduct, tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import { positionSchema, uniformIn, type ManipulationTask, type StepView, type TaskEpisode, type TaskEvaluation } from '../task';
import { formatVec3, type Range3, type Vec3 } from '../vec3';

/**
 * shelf-place (Meta-World shelf-place-v3): pick a 4 cm block up off the table and place it on a
 * shelf standing further back.
 *
 * The shelf is a fixed fixture of box colliders (Meta-World's layout): two side walls 22 cm apart,
 * a back wall, a base, a low board and the board at 0.24–0.26 m that the block goes on, open
 * towards the robot (−y), with a roof at 0.45 m. The hand, the block and the boards collide: the
 * block must be lifted above the board's front edge and carried in.
 *
 * Observation object block: the block's centre and orientation (obj1, as Meta-World); obj2 zero.
 * Goal: shelf position + (0, 0, 0.3), just above the middle of the board (a block resting there is
 * 3 cm below it).
 *
 * Reward (Meta-World v2): in_place = tolerance(‖block − goal‖, [0, 0.05], margin ‖block_init −
 * goal‖, long_tail), reduced while the block is below the board in front of the shelf and zero
 * while below it inside/behind it; caging as pick-place (block radius 2 cm, pads 5 cm, x-z 1 cm);
 * r = hamacher(caging, in_place), plus 1 + 5 · in_place while the block is lifted by 1 cm with the
 * TCP within 2.5 cm; r = 10 once ‖block − goal‖ < 0.05. Success: ‖block − goal‖ ≤ 0.07.
 */
export interface ShelfPlaceParams {
  readonly kind: 'shelf-place';
  /** The block's centre; z = 0.02 rests it on the table. */
  readonly objectPosition: Vec3;
  /** The shelf's base centre on the table (z = 0); the goal is derived from it. */
  readonly shelfPosition: Vec3;
}

export const BLOCK_HALF = 0.02;
/** The goal above the shelf's base centre. */
export const SHELF_GOAL_RISE = 0.3;
/** The board's upper face and its front edge (y relative to the shelf). */
export const BOARD_TOP = 0.25;
export const BOARD_FRONT = -0.11;
export const BLOCK_RANGE: Range3 = { low: [-0.1, 0.5, BLOCK_HALF], high: [0.1, 0.6, BLOCK_HALF] };
export const SHELF_RANGE: Range3 = { low: [-0.1, 0.8, 0], high: [0.1, 0.9, 0] };
const TARGET_RADIUS = 0.05;
const SUCCESS_RADIUS = 0.07;

export const shelfPlaceTask: ManipulationTask<ShelfPlaceParams> = {
  kind: 'shelf-place',
  description: 'Pick a block up and place it on a shelf (Meta-World shelf-place)',
  paramsSchema: z
    .object({
      kind: z.literal('shelf-place'),
      objectPosition: positionSchema([-0.6, 0.35, 0], [0.6, 1.05, 0.3]),
      shelfPosition: positionSchema([-0.55, 0.45, 0], [0.55, 0.98, 0]),
    })
    .strict() as unknown as z.ZodType<ShelfPlaceParams>,
  sampleParams(rng: Rng): ShelfPlaceParams {
    // Meta-World redraws until block and goal are 10 cm apart in the plane; these ranges always are.
    return { kind: 'shelf-place', objectPosition: uniformIn(rng, BLOCK_RANGE), shelfPosition: uniformIn(rng, SHELF_RANGE) };
  },
  setup(scene: TabletopScene, params: ShelfPlaceParams): TaskEpisode {
    const body = scene.addBox([BLOCK_HALF, BLOCK_HALF, BLOCK_HALF], { position: params.objectPosition, density: 500, friction: 1 });
    const block: Graspable = { body, gripWidth: 2 * BLOCK_HALF, halfHeight: BLOCK_HALF };
    createShelf(scene, params.shelfPosition);
    const [sx, sy, sz] = params.shelfPosition;
    const goal: Vec3 = [sx, sy, sz + SHELF_GOAL_RISE];
    const initObject = Float64Array.from(params.objectPosition);
    const object = new Float64Array(3);
    const inPlaceMargin = Math.hypot(initObject[0] - goal[0], initObject[1] - goal[1], initObject[2] - goal[2]);
    const shaping = new PickPlaceReward(
      { objectRadius: BLOCK_HALF, padSuccessThreshold: 0.05, xzThreshold: 0.01, highDensity: false, carryRadius: 0.025, carriedIsGrasped: false },
      object,
      initObject,
    );
    return {
      goal,
      graspables: [block],
      writeObjects: (out, offset) => writeSoleObject(body, out, offset),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        for (let i = 0; i < 3; i++) object[i] = f[OBS.OBJ1_POS + i];
        const tcp = view.gripper.position;
        const tcpToObject = Math.hypot(tcp[0] - object[0], tcp[1] - object[1], tcp[2] - object[2]);
        const objectToTarget = Math.hypot(object[0] - goal[0], object[1] - goal[1], object[2] - goal[2]);
        let inPlace = tolerance(objectToTarget, 0, TARGET_RADIUS, inPlaceMargin, 'long_tail');
        // Meta-World's shaping against the block lying below the board: less in front of the shelf, nothing under or behind it.
        const belowBoard = object[2] > 0 && object[2] < 0.24 && Math.abs(object[0] - goal[0]) < 0.15;
        if (belowBoard && object[1] > goal[1] - 3 * TARGET_RADIUS && object[1] < goal[1]) {
          const zScaling = (0.24 - object[2]) / 0.24;
          const yScaling = (object[1] - (goal[1] - 3 * TARGET_RADIUS)) / (3 * TARGET_RADIUS);
          inPlace = Math.min(1, Math.max(0, inPlace - hamacherProduct(yScaling, zScaling)));
        }
        if (belowBoard && object[1] > goal[1]) inPlace = 0;
        out.reward = shaping.score(view, tcpToObject, inPlace, objectToTarget < TARGET_RADIUS);
        out.success = objectToTarget <= SUCCESS_RADIUS;
        out.nearObject = tcpToObject <= 0.03;
        out.graspSuccess = shaping.carried;
        out.graspReward = shaping.grasp;
        out.inPlaceReward = inPlace;
        out.objToTarget = objectToTarget;
      },
      describe: () => `block ${formatVec3(body.translation())}${scene.heldBodies.has(body.handle) ? ' (held)' : ''}, goal ${formatVec3(goal)}`,
    };
  },
};

/** The fixed shelf (see the header), its colliders relative to the base centre. */
function createShelf(scene: TabletopScene, base: Vec3): void {
  const shelf = scene.createBody({ position: base, kind: 'fixed' });
  const wallHalfZ = 0.22;
  scene.addBoxCollider(shelf, [0.01, 0.1, wallHalfZ], [-0.11, 0, wallHalfZ]);
  scene.addBoxCollider(shelf, [0.01, 0.1, wallHalfZ], [0.11, 0, wallHalfZ]);
  scene.addBoxCollider(shelf, [0.1, 0.01, wallHalfZ], [0, 0.09, wallHalfZ]);
  scene.addBoxCollider(shelf, [0.1, 0.088, 0.021], [0, -0.008, 0.021]);
  scene.addBoxCollider(shelf, [0.1, 0.095, 0.01], [0, -0.015, 0.05]);
  scene.addBoxCollider(shelf, [0.1, 0.095, 0.01], [0, -0.015, BOARD_TOP - 0.01]);
  scene.addBoxCollider(shelf, [0.12, 0.1, 0.01], [0, 0, 2 * wallHalfZ + 0.01]);
}
