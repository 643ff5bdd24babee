import { DOOR_GRIP } from '../../envs/manipulation/tasks/door-open';
import { doorPose, doorToWorld, worldToDoor } from './door-frame';
import { WaypointExpert, hand, type Waypoint } from './manipulation-expert';

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
    const [x, y, z] = hand(obs);
    const pose = doorPose(obs);
    const [dx, dy] = worldToDoor(pose, x, y);
    out.effort = 1;
    const hooked = Math.abs(dx - DOOR_GRIP[0]) < 0.04 && dy < -0.03 && dy > -0.135 && Math.abs(z - pose.z) < 0.02;
    if (hooked) {
      const [tx, ty] = doorToWorld(pose, DOOR_GRIP[0], DOOR_GRIP[1], Math.max(OPEN_ANGLE, pose.angle - LEAD));
      out.target = [tx, ty, pose.z];
      return;
    }
    const [gx, gy] = doorToWorld(pose, DOOR_GRIP[0], DOOR_GRIP[1]);
    const above = Math.hypot(x - gx, y - gy) < 0.015;
    out.target = [gx, gy, above ? pose.z : pose.z + 0.08];
  }
}
