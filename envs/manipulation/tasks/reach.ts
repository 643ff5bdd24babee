import type { Rng } from '../../../runtime/core/rng';
import { createPuck, writeSoleObject } from '../objects';
import { OBS } from '../observation-layout';
import { tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import { distanceTo, type ManipulationTask, type StepView, type TaskEpisode, type TaskEvaluation } from '../task';
import { formatVec3, type Range3 } from '../vec3';
import { objectGoalParamsSchema, sampleObjectGoalParams, type ObjectGoalParams } from './object-goal-params';

/**
 * reach (Meta-World reach-v3): move the TCP to a goal in the air. A puck stands on the table as a
 * distractor (it is in the observation, as in Meta-World, and can be knocked over).
 * Reward 10 · tolerance(‖tcp − goal‖, [0, 0.05], margin ‖hand_init − goal‖, long_tail).
 * Success: ‖tcp − goal‖ ≤ 0.05.
 */
/** `objectPosition`: the puck's centre. */
export type ReachParams = ObjectGoalParams<'reach'>;

export const REACH_OBJECT_RANGE: Range3 = { low: [-0.1, 0.6, 0.02], high: [0.1, 0.7, 0.02] };
export const REACH_GOAL_RANGE: Range3 = { low: [-0.1, 0.8, 0.05], high: [0.1, 0.9, 0.3] };
const TARGET_RADIUS = 0.05;

export const reachTask: ManipulationTask<ReachParams> = {
  kind: 'reach',
  description: 'Move the gripper to a goal in the air (Meta-World reach); a puck stands by',
  paramsSchema: objectGoalParamsSchema('reach'),
  sampleParams: (rng: Rng) => sampleObjectGoalParams('reach', rng, REACH_OBJECT_RANGE, REACH_GOAL_RANGE),
  setup(scene: TabletopScene, params: ReachParams): TaskEpisode {
    const puck = createPuck(scene, params.objectPosition);
    const goal = params.goalPosition;
    let margin = -1;
    return {
      goal,
      graspables: [puck],
      writeObjects: (out, offset) => writeSoleObject(puck.body, out, offset),
      evaluate(view: StepView, out: TaskEvaluation) {
        if (margin < 0) margin = distanceTo(view.initTcp, 0, goal);
        const tcpToTarget = distanceTo(view.frame, OBS.HAND, goal);
        const inPlace = tolerance(tcpToTarget, 0, TARGET_RADIUS, margin, 'long_tail');
        out.reward = 10 * inPlace;
        out.success = tcpToTarget <= TARGET_RADIUS;
        out.nearObject = tcpToTarget <= TARGET_RADIUS;
        out.graspSuccess = true;
        // Meta-World's reach reports the TCP-to-target distance in its `grasp_reward` info slot; kept for parity.
        out.graspReward = tcpToTarget;
        out.inPlaceReward = inPlace;
        out.objToTarget = tcpToTarget;
      },
      describe: () => `puck ${formatVec3(puck.body.translation())}, goal ${formatVec3(goal)}`,
    };
  },
};
