import type { Rng } from '../../../runtime/core/rng';
import { createPuck, writeSoleObject } from '../objects';
import { OBS } from '../observation-layout';
import { PickPlaceReward } from '../pick-place-reward';
import { tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance, distance3, formatVec3, type Range3 } from '../vec3';
import { objectGoalParamsSchema, sampleObjectGoalParams, type ObjectGoalParams } from './object-goal-params';

/**
 * pick-place (Meta-World pick-place-v3): grasp the puck, lift it and bring it to a goal in the air.
 * Reward (Meta-World v2): r = hamacher(caging, in_place), in_place = tolerance(‖puck − goal‖,
 * [0, 0.05], margin ‖puck_init − goal‖, long_tail); when the TCP is within 2 cm of the puck, the
 * gripper not shut and the puck lifted by more than 1 cm, r += 1 + 5 · in_place; r = 10 once
 * ‖puck − goal‖ < 0.05. Success: ‖puck − goal‖ ≤ 0.07.
 */
export type PickPlaceParams = ObjectGoalParams<'pick-place'>;

export const PICK_PLACE_OBJECT_RANGE: Range3 = { low: [-0.1, 0.6, 0.02], high: [0.1, 0.7, 0.02] };
export const PICK_PLACE_GOAL_RANGE: Range3 = { low: [-0.1, 0.8, 0.05], high: [0.1, 0.9, 0.3] };
const TARGET_RADIUS = 0.05;
const SUCCESS_RADIUS = 0.07;

export const pickPlaceTask: ManipulationTask<PickPlaceParams> = {
  kind: 'pick-place',
  description: 'Pick a puck up and place it at a goal in the air (Meta-World pick-place)',
  paramsSchema: objectGoalParamsSchema('pick-place'),
  sampleParams: (rng: Rng) => sampleObjectGoalParams('pick-place', rng, PICK_PLACE_OBJECT_RANGE, PICK_PLACE_GOAL_RANGE),
  setup(scene: TabletopScene, params: PickPlaceParams): TaskEpisode {
    const puck = createPuck(scene, params.objectPosition);
    const goal = params.goalPosition;
    const initObject = Float64Array.from(params.objectPosition);
    const object = new Float64Array(3);
    const inPlaceMargin = distance(initObject, goal);
    const shaping = new PickPlaceReward(
      { objectRadius: 0.015, padSuccessThreshold: 0.05, xzThreshold: 0.005, highDensity: true, carryRadius: 0.02, carriedIsGrasped: false },
      object,
      initObject,
    );
    return {
      goal,
      graspables: [puck],
      writeObjects: (out, offset) => writeSoleObject(puck.body, out, offset),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        for (let i = 0; i < 3; i++) object[i] = f[OBS.OBJ1_POS + i];
        const tcpOpened = f[OBS.GRIPPER];
        const tcpToObject = distance3(f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2], object[0], object[1], object[2]);
        const objectToTarget = distance(object, goal);
        const inPlace = tolerance(objectToTarget, 0, TARGET_RADIUS, inPlaceMargin, 'long_tail');
        out.reward = shaping.score(view, tcpToObject, inPlace, objectToTarget < TARGET_RADIUS);
        out.success = objectToTarget <= SUCCESS_RADIUS;
        out.nearObject = tcpToObject <= 0.03;
        out.graspSuccess = view.gripper.isHolding(puck.body) && tcpOpened > 0 && object[2] - 0.02 > initObject[2];
        out.graspReward = shaping.grasp;
        out.inPlaceReward = inPlace;
        out.objToTarget = objectToTarget;
      },
      describe: () => `puck ${formatVec3(puck.body.translation())}${scene.heldBodies.has(puck.body.handle) ? ' (held)' : ''}, goal ${formatVec3(goal)}`,
    };
  },
};
