import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import type { Graspable } from '../gripper';
import { writeSoleObject } from '../objects';
import { OBS } from '../observation-layout';
import { hamacherProduct, tolerance } from '../reward-shaping';
import { cutTablePocket } from '../table-pocket';
import type { TabletopScene } from '../tabletop';
import { positionSchema, sampleObjectAndGoal, type ManipulationTask, type StepView, type TaskEpisode, type TaskEvaluation } from '../task';
import { formatVec3, type Range3, type Vec3 } from '../vec3';
import { sweepCagingReward, type SweepCagingInput } from './sweep-caging';

/**
 * sweep-into (Meta-World sweep-into-v3): move a 4 cm cube across the table into a hole in it.
 *
 * The hole is real: the table top is rebuilt around an 8 × 8 cm opening centred on the goal,
 * 5 cm deep with a floor (see table-pocket.ts), so the cube drops in once it is over it.
 *
 * Observation object block: the cube's centre and orientation (obj1, as Meta-World); obj2 zero.
 * Goal: the hole's centre at the cube's resting height (Meta-World's goal, fixed near (0, 0.84)).
 *
 * Reward (Meta-World v2): target = (goal x, goal y, cube z) (height does not count);
 * in_place = tolerance(‖cube − target‖, [0, 0.05], margin ‖cube_init − target‖, long_tail);
 * caging = sweep's caging score (sweep-caging.ts); r = 2 · caging + 6 · hamacher(caging, in_place);
 * r = 10 once ‖cube − target‖ < 0.05. Success: ‖cube − target‖ ≤ 0.05.
 */
export interface SweepIntoParams {
  readonly kind: 'sweep-into';
  readonly objectPosition: Vec3;
  /** The hole's centre (z: the cube's resting height on the table, 0.02). */
  readonly goalPosition: Vec3;
}

export const CUBE_HALF = 0.02;
export const SWEEP_INTO_OBJECT_RANGE: Range3 = { low: [-0.1, 0.6, 0.02], high: [0.1, 0.7, 0.02] };
export const SWEEP_INTO_GOAL_RANGE: Range3 = { low: [-0.001, 0.8399, 0.0199], high: [0.001, 0.8401, 0.0201] };
/** Half the hole's side (m) and its depth. */
export const HOLE_HALF = 0.04;
export const HOLE_DEPTH = 0.05;
const TARGET_RADIUS = 0.05;

export const sweepIntoTask: ManipulationTask<SweepIntoParams> = {
  kind: 'sweep-into',
  description: 'Move a cube across the table into a hole in it (Meta-World sweep-into)',
  paramsSchema: z
    .object({
      kind: z.literal('sweep-into'),
      objectPosition: positionSchema([-0.6, 0.35, 0], [0.6, 1.05, 0.3]),
      // The hole must leave table around it: its opening lies inside the table top.
      goalPosition: positionSchema([-0.6, 0.4, 0], [0.6, 1.0, 0.1]),
    })
    .strict()
    .refine(
      (p) => Math.max(Math.abs(p.objectPosition[0] - p.goalPosition[0]), Math.abs(p.objectPosition[1] - p.goalPosition[1])) > HOLE_HALF + CUBE_HALF,
      { message: 'the cube must start outside the hole (at least 6 cm from its centre along x or y)', path: ['objectPosition'] },
    ) as unknown as z.ZodType<SweepIntoParams>,
  sampleParams(rng: Rng): SweepIntoParams {
    const { object, goal } = sampleObjectAndGoal(rng, SWEEP_INTO_OBJECT_RANGE, SWEEP_INTO_GOAL_RANGE);
    return { kind: 'sweep-into', objectPosition: object, goalPosition: goal };
  },
  setup(scene: TabletopScene, params: SweepIntoParams): TaskEpisode {
    const goal = params.goalPosition;
    cutTablePocket(scene, { xMin: goal[0] - HOLE_HALF, xMax: goal[0] + HOLE_HALF, yMin: goal[1] - HOLE_HALF, yMax: goal[1] + HOLE_HALF, depth: HOLE_DEPTH });
    const body = scene.addBox([CUBE_HALF, CUBE_HALF, CUBE_HALF], { position: params.objectPosition, density: 500, friction: 1 });
    const cube: Graspable = { body, gripWidth: 2 * CUBE_HALF, halfHeight: CUBE_HALF };
    return sweepEpisode(scene, cube, params.objectPosition, goal, true);
  },
};

/**
 * The episode of sweep and sweep-into (same reward and criterion); `ignoreHeight` drops the
 * height from the distance, as sweep-into's target follows the cube's z.
 */
export function sweepEpisode(scene: TabletopScene, cube: Graspable, objectPosition: Vec3, goal: Vec3, ignoreHeight: boolean): TaskEpisode {
  const initObject = Float64Array.from(objectPosition);
  const object = new Float64Array(3);
  let caging: SweepCagingInput | undefined;
  return {
    goal,
    graspables: [cube],
    writeObjects: (out, offset) => writeSoleObject(cube.body, out, offset),
    evaluate(view: StepView, out: TaskEvaluation) {
      const g = view.gripper;
      caging ??= { gripper: g, initTcp: view.initTcp, object, initObject, objectRadius: CUBE_HALF };
      const f = view.frame;
      for (let i = 0; i < 3; i++) object[i] = f[OBS.OBJ1_POS + i];
      const targetZ = ignoreHeight ? object[2] : goal[2];
      const objectToTarget = Math.hypot(object[0] - goal[0], object[1] - goal[1], object[2] - targetZ);
      const inPlaceMargin = Math.hypot(initObject[0] - goal[0], initObject[1] - goal[1], initObject[2] - targetZ);
      const tcp = g.position;
      const tcpToObject = Math.hypot(tcp[0] - object[0], tcp[1] - object[1], tcp[2] - object[2]);
      const inPlace = tolerance(objectToTarget, 0, TARGET_RADIUS, inPlaceMargin, 'long_tail');
      const grasped = sweepCagingReward(caging);
      let reward = 2 * grasped + 6 * hamacherProduct(grasped, inPlace);
      if (objectToTarget < TARGET_RADIUS) reward = 10;
      out.reward = reward;
      out.success = objectToTarget <= TARGET_RADIUS;
      out.nearObject = tcpToObject <= 0.03;
      // Meta-World: touching the cube with the gripper not shut; here, holding it or a pad within 5 mm of its side.
      out.graspSuccess = f[OBS.GRIPPER] > 0 && (g.isHolding(cube.body) || (tcpToObject < 0.04 && Math.min(Math.abs(g.leftPadY() - object[1]), Math.abs(object[1] - g.rightPadY())) < CUBE_HALF + 0.01));
      out.graspReward = grasped;
      out.inPlaceReward = inPlace;
      out.objToTarget = objectToTarget;
    },
    describe: () => `cube ${formatVec3(cube.body.translation())}${scene.heldBodies.has(cube.body.handle) ? ' (held)' : ''}, goal ${formatVec3(goal)}`,
  };
}
