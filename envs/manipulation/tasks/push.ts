import type { Rng } from '../../../runtime/core/rng';
import { createPuck, writeSoleObject } from '../objects';
import { OBS } from '../observation-layout';
import { gripperCagingReward, tolerance, type CagingInput } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance, distance3, formatVec3, type Range3 } from '../vec3';
import { objectGoalParamsSchema, sampleObjectGoalParams, type ObjectGoalParams } from './object-goal-params';

/**
 * push (Meta-World push-v3): move the puck along the table to a goal on the table.
 * Reward (Meta-World v2): r = 2 · caging (high density); when the TCP is within 2 cm of the puck
 * and the gripper is not shut, r += 1 + r + 5 · in_place, in_place = tolerance(‖puck − goal‖,
 * [0, 0.05], margin ‖puck_init − goal‖, long_tail); r = 10 once ‖puck − goal‖ < 0.05.
 * Success: ‖puck − goal‖ ≤ 0.05.
 *
 * This file is the template for new tasks: params type + ranges + schema, `sampleParams`, and a
 * `setup` that builds the objects and returns the episode's observation writer and scorer.
 */
/** The goal's z is the puck's resting height (0.02). */
export type PushParams = ObjectGoalParams<'push'>;

export const PUSH_OBJECT_RANGE: Range3 = { low: [-0.1, 0.6, 0.02], high: [0.1, 0.7, 0.02] };
export const PUSH_GOAL_RANGE: Range3 = { low: [-0.1, 0.8, 0.02], high: [0.1, 0.9, 0.02] };
const TARGET_RADIUS = 0.05;

export const pushTask: ManipulationTask<PushParams> = {
  kind: 'push',
  description: 'Push a puck across the table to a goal (Meta-World push)',
  paramsSchema: objectGoalParamsSchema('push'),
  sampleParams: (rng: Rng) => sampleObjectGoalParams('push', rng, PUSH_OBJECT_RANGE, PUSH_GOAL_RANGE),
  setup(scene: TabletopScene, params: PushParams): TaskEpisode {
    const puck = createPuck(scene, params.objectPosition);
    const goal = params.goalPosition;
    const initObject = Float64Array.from(params.objectPosition);
    const object = new Float64Array(3);
    const inPlaceMargin = distance(initObject, goal);
    const caging: CagingInput = {
      tcp: object, // replaced every step
      initTcp: object,
      object,
      initObject,
      leftPadY: 0,
      rightPadY: 0,
      effort: 0,
      objectRadius: 0.015,
      padSuccessThreshold: 0.05,
      xzThreshold: 0.005,
      highDensity: true,
    };
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
        caging.tcp = view.gripper.position;
        caging.initTcp = view.initTcp;
        caging.leftPadY = view.gripper.leftPadY();
        caging.rightPadY = view.gripper.rightPadY();
        caging.effort = view.action[3];
        const grasped = gripperCagingReward(caging);
        let reward = 2 * grasped;
        if (tcpToObject < 0.02 && tcpOpened > 0) reward += 1 + reward + 5 * inPlace;
        if (objectToTarget < TARGET_RADIUS) reward = 10;
        out.reward = reward;
        out.success = objectToTarget <= TARGET_RADIUS;
        out.nearObject = tcpToObject <= 0.03;
        out.graspSuccess = view.gripper.isHolding(puck.body) && tcpOpened > 0 && object[2] - 0.02 > initObject[2];
        out.graspReward = grasped;
        out.inPlaceReward = inPlace;
        out.objToTarget = objectToTarget;
      },
      describe: () => `puck ${formatVec3(puck.body.translation())}, goal ${formatVec3(goal)}`,
    };
  },
};
