import { doorTarget, doorView, planDoorApproach } from './door-frame';
import { WaypointExpert, type Waypoint } from './manipulation-expert';

/** The door-frame point the hand pushes at: on the front face, between the hinge and the handle's posts. */
const PUSH_X = 0.18;
const PUSH_Y = -0.03;
/** How far ahead of the door (rad) the hand is aimed while pushing. */
const LEAD = 0.35;

/**
 * door-close: come round in front of the open door's face (high, then down), then push the face
 * round the hinge until the door is shut; the target never runs past the closed pose, so the hand
 * does not lean on the door at its stop.
 */
export class DoorCloseExpert extends WaypointExpert {
  readonly kind = 'door-close';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const { hand: [x, y, z], pose, inDoor: [dx, dy] } = doorView(obs);
    out.effort = 1;
    const atFace = dx > 0.08 && dx < 0.24 && dy > -0.09 && dy < 0 && Math.abs(z - pose.z) < 0.02;
    if (atFace) out.target = doorTarget(pose, PUSH_X, PUSH_Y + 0.01, Math.min(0, pose.angle + LEAD));
    else planDoorApproach(pose, x, y, PUSH_X, PUSH_Y - 0.03, 0.02, out);
  }
}
