import { PAD_HALF } from '../../../envs/manipulation/gripper';
import { WaypointExpert, goal, hand, object1, type Waypoint } from './manipulation-expert';

/** How high above the cap the hand lines up before coming down. */
const HOVER = 0.08;

/**
 * button-press-topdown: shut the gripper, line up above the button, then press down with the
 * fingertips, aiming 1 cm below the pressed-home position (the stop holds the hand).
 */
export class ButtonPressTopdownExpert extends WaypointExpert {
  readonly kind = 'button-press-topdown';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const [x, y] = hand(obs);
    const [bx, by, bz] = object1(obs);
    out.effort = 1;
    const above = Math.hypot(x - bx, y - by) < 0.01;
    out.target = above ? [bx, by, goal(obs)[2] + PAD_HALF[2] - 0.01] : [bx, by, bz + PAD_HALF[2] + HOVER];
  }
}
