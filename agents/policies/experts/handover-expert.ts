import { DEFAULT_GRIPPER_CONFIG } from '../../../envs/manipulation/gripper';
import { BATON_HALF, BATON_HANDLE_OFFSET, HANDOVER_X } from '../../../envs/manipulation/multi-arm/handover';
import { multiArmLayout } from '../../../envs/manipulation/multi-arm/multi-arm-task';
import type { ExpertOptions, Waypoint } from './manipulation-expert';
import { MultiArmWaypointExpert, dist, goalOf, holdsPoint, objectPose, otherArm, ownHand, ownOpening, planPointGrasp, pointOnBody } from './multi-arm-expert';

/** obs opening while a baton handle is held (the pads stop at the baton's width). */
const HELD_OPENING = (2 * BATON_HALF[1]) / DEFAULT_GRIPPER_CONFIG.maxOpening;
/** Where arm_0 presents the baton: its centre at the zone's middle, 15 cm up. */
const PRESENT_Z = 0.15;
/** Where arm_1 waits for the baton: above the point where handle B will be. */
const WAIT_Z = 0.27;

/**
 * handover: arm_0 grasps handle A, lifts the baton and presents it in the handover zone, then
 * holds still; arm_1 waits above the zone, and once the baton is presented and at rest comes down
 * on handle B and closes; arm_0 sees arm_1's gripper closed on B and lets go, then backs off
 * upwards; arm_1 carries the baton to the goal. Each arm decides from its own observation.
 */
export class HandoverExpert extends MultiArmWaypointExpert {
  readonly kind = 'handover';

  constructor(options: ExpertOptions = {}) {
    super(multiArmLayout(2, 1), options);
  }

  protected plan(arm: number, obs: Float32Array, out: Waypoint): void {
    const L = this.layout;
    const hand = ownHand(obs);
    const opening = ownOpening(obs);
    const other = otherArm(L, obs, arm, 1 - arm);
    const baton = objectPose(L, obs, 0);
    const before = objectPose(L, obs, 0, true);
    const A = pointOnBody(baton.position, baton.quat, -BATON_HANDLE_OFFSET, 0, 0);
    const B = pointOnBody(baton.position, baton.quat, BATON_HANDLE_OFFSET, 0, 0);
    const aHeld = arm === 0 ? holdsPoint(hand, opening, HELD_OPENING, A) : holdsPoint(other.hand, other.opening, HELD_OPENING, A);
    const bHeld = arm === 1 ? holdsPoint(hand, opening, HELD_OPENING, B) : holdsPoint(other.hand, other.opening, HELD_OPENING, B);
    const presentY = baton.position[1];
    if (arm === 0) {
      if (bHeld) {
        // arm_1 has it: let go, then back off upwards.
        out.target = aHeld ? [hand[0], hand[1], hand[2]] : [hand[0] - 0.05, hand[1], Math.max(hand[2], PRESENT_Z + 0.1)];
        out.effort = -1;
      } else if (aHeld) {
        out.effort = 1;
        // Lift before travelling so the baton does not drag on the table, then present it.
        out.target = baton.position[2] < 0.06 && A[0] < HANDOVER_X - BATON_HANDLE_OFFSET - 0.02 ? [hand[0], hand[1], hand[2] + 0.05] : [HANDOVER_X - BATON_HANDLE_OFFSET + hand[0] - A[0], presentY + hand[1] - A[1], PRESENT_Z + hand[2] - A[2]];
      } else {
        planPointGrasp(hand, opening, HELD_OPENING, A, out);
      }
      return;
    }
    if (bHeld) {
      out.effort = 1;
      // Hold still until arm_0 has let go, then bring the baton's centre onto the goal.
      const g = goalOf(L, obs);
      out.target = aHeld ? [hand[0], hand[1], hand[2]] : [g[0] + hand[0] - baton.position[0], g[1] + hand[1] - baton.position[1], g[2] + hand[2] - baton.position[2]];
      return;
    }
    const presented = aHeld && Math.abs(A[0] - (HANDOVER_X - BATON_HANDLE_OFFSET)) < 0.01 && Math.abs(A[2] - PRESENT_Z) < 0.01 && dist(baton.position, before.position) < 0.002;
    const reachableOnTable = !aHeld && B[0] > HANDOVER_X && baton.position[2] < 0.05;
    if (presented || reachableOnTable) {
      planPointGrasp(hand, opening, HELD_OPENING, B, out);
    } else {
      out.target = [HANDOVER_X + BATON_HANDLE_OFFSET, presentY, WAIT_Z];
      out.effort = -1;
    }
  }
}
