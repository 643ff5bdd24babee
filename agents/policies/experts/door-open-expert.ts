import { DOOR_GRIP } from '../../../envs/manipulation/tasks/door-open';
import { doorTarget, doorView, planDoorApproach } from './door-frame';
import { WaypointExpert, type Waypoint } from './manipulation-expert';

/** How far the door is swung (rad): past the success band's start, short of the far stop. */
const OPEN_ANGLE = -1.6;
/** How far ahead of the door (rad) the hand is aimed while pulling, so it keeps pressing the bar. */
const LEAD = 0.35;

/**
 * door-open: come down into the gap between the handle bar and the panel with the gripper shut,
 * then pull the bar round the hinge (the target runs ahead of the door along the handle's circle).
 */
export class DoorOpenExpert extends WaypointExpert {
  readonly kind = 'door-open';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const { hand: [x, y, z], pose, inDoor: [dx, dy] } = doorView(obs);
    out.effort = 1;
    const hooked = Math.abs(dx - DOOR_GRIP[0]) < 0.04 && dy < -0.03 && dy > -0.135 && Math.abs(z - pose.z) < 0.02;
    if (hooked) out.target = doorTarget(pose, DOOR_GRIP[0], DOOR_GRIP[1], Math.max(OPEN_ANGLE, pose.angle - LEAD));
    else planDoorApproach(pose, x, y, DOOR_GRIP[0], DOOR_GRIP[1], 0.015, out);
  }
}
