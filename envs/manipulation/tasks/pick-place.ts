import { z } from 'zod';
import type { Rng } from '../../../runtime/rng';
import { createPuck, writeEmpty, writePose } from '../objects';
import { OBS } from '../observation-layout';
import { gripperCagingReward, hamacherProduct, tolerance, type CagingInput } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import { PLACEABLE, positionSchema, sampleObjectAndGoal, type ManipulationTask, type StepView, type TaskEpisode, type TaskEvaluation } from '../task';
import { distance, distance3, formatVec3, type Range3, type Vec3 } from '../vec3';

/**
 * pick-place (Meta-World pick-place-v3): grasp the puck, lift it and bring it to a goal in the air.
 * Reward (Meta-World v2): r = hamacher(caging, in_place), in_place = tolerance(‖puck − goal‖,
 * [0, 0.05], margin ‖puck_init − goal‖, long_tail); when the TCP is within 2 cm of the puck, the
 * gripper not shut and the puck lifted by more than 1 cm, r += 1 + 5 · in_place; r = 10 once
 * ‖puck − goal‖ < 0.05. Success: ‖puck − goal‖ ≤ 0.07.
 */
export interface PickPlaceParams {
  readonly kind: 'pick-place';
  readonly objectPosition: Vec3;
  readonly goalPosition: Vec3;
}

export const PICK_PLACE_OBJECT_RANGE: Range3 = { low: [-0.1, 0.6, 0.02], high: [0.1, 0.7, 0.02] };
export const PICK_PLACE_GOAL_RANGE: Range3 = { low: [-0.1, 0.8, 0.05], high: [0.1, 0.9, 0.3] };
const TARGET_RADIUS = 0.05;
const SUCCESS_RADIUS = 0.07;

export const pickPlaceTask: ManipulationTask<PickPlaceParams> = {
  kind: 'pick-place',
  description: 'Pick a puck up and place it at a goal in the air (Meta-World pick-place)',
  paramsSchema: z
    .object({ kind: z.literal('pick-place'), objectPosition: positionSchema(PLACEABLE.low, PLACEABLE.high), goalPosition: positionSchema() })
    .strict() as unknown as z.ZodType<PickPlaceParams>,
  sampleParams(rng: Rng): PickPlaceParams {
    const { object, goal } = sampleObjectAndGoal(rng, PICK_PLACE_OBJECT_RANGE, PICK_PLACE_GOAL_RANGE);
    return { kind: 'pick-place', objectPosition: object, goalPosition: goal };
  },
  setup(scene: TabletopScene, params: PickPlaceParams): TaskEpisode {
    const puck = createPuck(scene, params.objectPosition);
    const goal = params.goalPosition;
    const initObject = Float64Array.from(params.objectPosition);
    const object = new Float64Array(3);
    const inPlaceMargin = distance(initObject, goal);
    let caging: CagingInput | undefined;
    return {
      goal,
      graspables: [puck],
      writeObjects(out, offset) {
        writePose(puck.body, out, offset);
        writeEmpty(out, offset + 7, 7);
      },
      evaluate(view: StepView, out: TaskEvaluation) {
        const g = view.gripper;
        // The gripper is made by the env, so the caging input is completed at the first evaluation.
        caging ??= {
          tcp: g.position,
          initTcp: view.initTcp,
          object,
          initObject,
          leftPadY: 0,
          rightPadY: 0,
          initLeftPadY: g.initLeftPadY,
          initRightPadY: g.initRightPadY,
          effort: 0,
          objectRadius: 0.015,
          padSuccessThreshold: 0.05,
          xzThreshold: 0.005,
          highDensity: true,
        };
        const f = view.frame;
        for (let i = 0; i < 3; i++) object[i] = f[OBS.OBJ1_POS + i];
        const tcpOpened = f[OBS.GRIPPER];
        const tcpToObject = distance3(f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2], object[0], object[1], object[2]);
        const objectToTarget = distance(object, goal);
        const inPlace = tolerance(objectToTarget, 0, TARGET_RADIUS, inPlaceMargin, 'long_tail');
        caging.leftPadY = g.leftPadY();
        caging.rightPadY = g.rightPadY();
        caging.effort = view.action[3];
        const grasped = gripperCagingReward(caging);
        let reward = hamacherProduct(grasped, inPlace);
        if (tcpToObject < 0.02 && tcpOpened > 0 && object[2] - 0.01 > initObject[2]) reward += 1 + 5 * inPlace;
        if (objectToTarget < TARGET_RADIUS) reward = 10;
        out.reward = reward;
        out.success = objectToTarget <= SUCCESS_RADIUS;
        out.nearObject = tcpToObject <= 0.03;
        out.graspSuccess = g.isHolding(puck.body) && tcpOpened > 0 && object[2] - 0.02 > initObject[2];
        out.graspReward = grasped;
        out.inPlaceReward = inPlace;
        out.objToTarget = objectToTarget;
      },
      describe: () => `puck ${formatVec3(puck.body.translation())}${scene.heldBodies.has(puck.body.handle) ? ' (held)' : ''}, goal ${formatVec3(goal)}`,
    };
  },
};
