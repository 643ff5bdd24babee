import type { Rng } from '../../../runtime/core/rng';
import { OBS } from '../observation-layout';
import { tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Vec3 } from '../vec3';
import { createDoor, DOOR, writeDoorObjects } from './door-fixture';
import { DOOR_RANGE } from './door-open';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';

/**
 * door-close (Meta-World door-close-v3): the safe's door (door-fixture.ts) starts swung open by
 * 90° towards the robot; push it shut. The hand starts on the handle's side, at (−0.5, 0.6, 0.2).
 *
 * - Params: the door's position, as door-open (x ∈ [0, 0.1], y ∈ [0.85, 0.95], z = 0.15).
 * - Goal: where the closed door's handle is, shifted by (0.06, −0.03, 0) to a point in front of
 *   the bar where the hand can rest (Meta-World's goal is likewise beside the closed handle).
 * - Observation object block: obj1 = the handle bar's centre and the handle's quaternion (a turn
 *   about z by the door angle); obj2 zero.
 * - Reward (Meta-World v2): in_place = tolerance(‖handle − goal‖, [0, 0.05], margin its initial
 *   value, gaussian); hand = tolerance(‖tcp − goal‖, [0, 0.0125], margin ‖hand_init − handle_init‖
 *   + 0.1, gaussian); r = 3·hand + 6·in_place, 10 once ‖handle − goal‖ < 0.05.
 * - Success (Meta-World): ‖handle − goal‖ ≤ 0.08.
 */
export type DoorCloseParams = FixtureParams<'door-close'>;

const TARGET_RADIUS = 0.05;
const SUCCESS_RADIUS = 0.08;
export const DOOR_CLOSE_HAND_INIT: Vec3 = [-0.5, 0.6, 0.2];

export const doorCloseTask: ManipulationTask<DoorCloseParams> = {
  kind: 'door-close',
  description: 'Push an open hinged door shut (Meta-World door-close)',
  paramsSchema: fixtureParamsSchema('door-close', DOOR_RANGE),
  gripper: { handInit: DOOR_CLOSE_HAND_INIT },
  sampleParams: (rng: Rng) => sampleFixtureParams('door-close', rng, DOOR_RANGE),
  setup(scene: TabletopScene, params: DoorCloseParams): TaskEpisode {
    const p = params.fixturePosition;
    const door = createDoor(scene, p, -Math.PI / 2);
    const [hx, hy, hz] = door.hingePoint;
    const goal: Vec3 = [hx + DOOR.handle[0] + 0.06, hy + DOOR.handle[1] - 0.03, hz];
    const handle = new Float64Array(3);
    door.writeHandle(handle, 0, -Math.PI / 2);
    const inPlaceMargin = distance3(handle[0], handle[1], handle[2], goal[0], goal[1], goal[2]);
    const handMargin = distance3(DOOR_CLOSE_HAND_INIT[0], DOOR_CLOSE_HAND_INIT[1], DOOR_CLOSE_HAND_INIT[2], handle[0], handle[1], handle[2]) + 0.1;
    return {
      goal,
      graspables: [],
      writeObjects: (out, offset) => writeDoorObjects(door, out, offset, door.angle()),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        const objToTarget = distance3(f[OBS.OBJ1_POS], f[OBS.OBJ1_POS + 1], f[OBS.OBJ1_POS + 2], goal[0], goal[1], goal[2]);
        const tcpToTarget = distance3(f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2], goal[0], goal[1], goal[2]);
        const inPlace = tolerance(objToTarget, 0, TARGET_RADIUS, inPlaceMargin, 'gaussian');
        const handInPlace = tolerance(tcpToTarget, 0, 0.25 * TARGET_RADIUS, handMargin, 'gaussian');
        out.reward = objToTarget < TARGET_RADIUS ? 10 : 3 * handInPlace + 6 * inPlace;
        out.success = objToTarget <= SUCCESS_RADIUS;
        out.nearObject = false;
        out.graspSuccess = true;
        out.graspReward = 1;
        out.inPlaceReward = handInPlace;
        out.objToTarget = objToTarget;
      },
      describe: () => `door angle ${door.angle().toFixed(3)} rad, goal ${formatVec3(goal)}, hinge ${formatVec3(door.hingePoint)}`,
    };
  },
};
