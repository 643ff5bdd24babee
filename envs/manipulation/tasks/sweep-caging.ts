import type { Gripper } from '../gripper';
import { hamacherProduct, tolerance } from '../reward-shaping';

/**
 * The caging score of Meta-World's sweep and sweep-into (their own `_gripper_caging_reward`):
 * pads on either side of the cube (y, margins from the pads' start), the TCP level with it (x-z),
 * and the pads closing to its width; (caging + gripping) / 2, in [0, 1]. The effort does not
 * enter, so a sweeping (not squeezing) gripper is paid for caging alone. Kept apart from
 * `gripperCagingReward` (reward-shaping.ts) because Meta-World's sweep tasks override that
 * function with different margins and no effort term; a flag there would hide which formula runs.
 */
export interface SweepCagingInput {
  gripper: Gripper;
  initTcp: ArrayLike<number>;
  object: ArrayLike<number>;
  initObject: ArrayLike<number>;
  /** Half the cube's width (m). */
  objectRadius: number;
}

const PAD_SUCCESS_MARGIN = 0.05;
const XZ_SUCCESS_MARGIN = 0.01;

export function sweepCagingReward(c: SweepCagingInput): number {
  const g = c.gripper;
  const o = c.object;
  const r = c.objectRadius;
  const leftDelta = g.leftPadY() - o[1];
  const rightDelta = o[1] - g.rightPadY();
  const rightMargin = Math.abs(Math.abs(o[1] - g.initRightPadY) - PAD_SUCCESS_MARGIN);
  const leftMargin = Math.abs(Math.abs(o[1] - g.initLeftPadY) - PAD_SUCCESS_MARGIN);
  const yCaging = hamacherProduct(
    tolerance(rightDelta, r, PAD_SUCCESS_MARGIN, rightMargin, 'long_tail'),
    tolerance(leftDelta, r, PAD_SUCCESS_MARGIN, leftMargin, 'long_tail'),
  );
  const yGripping = hamacherProduct(
    tolerance(rightDelta, r, r + 0.005, rightMargin, 'long_tail'),
    tolerance(leftDelta, r, r + 0.005, leftMargin, 'long_tail'),
  );
  const tcp = g.position;
  const xzDistance = Math.hypot(tcp[0] - o[0], tcp[2] - o[2]);
  const xzMargin = Math.max(0, Math.hypot(c.initObject[0] - c.initTcp[0], c.initObject[2] - c.initTcp[2]) - XZ_SUCCESS_MARGIN);
  const xzCaging = tolerance(xzDistance, 0, XZ_SUCCESS_MARGIN, xzMargin, 'long_tail');
  const caging = hamacherProduct(yCaging, xzCaging);
  const gripping = caging > 0.95 ? yGripping : 0;
  return (caging + gripping) / 2;
}
