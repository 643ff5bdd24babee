import { OBS } from '../../../envs/manipulation/observation-layout';
import { DOOR } from '../../../envs/manipulation/tasks/door-fixture';
import { hand, type Waypoint } from './manipulation-expert';

/**
 * The door's pose as the door tasks' observation shows it (handle centre and handle quaternion, a
 * turn about z): its angle and hinge point, and conversions between world points and points in
 * the door's frame (see door-fixture.ts), and the moves both door experts make.
 */
export interface DoorPose {
  angle: number;
  hingeX: number;
  hingeY: number;
  z: number;
}

export function doorPose(obs: Float32Array): DoorPose {
  const angle = 2 * Math.atan2(obs[OBS.OBJ1_QUAT + 2], obs[OBS.OBJ1_QUAT + 3]);
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const [ox, oy] = DOOR.handle;
  return { angle, hingeX: obs[OBS.OBJ1_POS] - (ox * c - oy * s), hingeY: obs[OBS.OBJ1_POS + 1] - (ox * s + oy * c), z: obs[OBS.OBJ1_POS + 2] };
}

/** What both door experts read first: the TCP, the door's pose, and the TCP's (x, y) in the door's frame. */
export function doorView(obs: Float32Array): { hand: [number, number, number]; pose: DoorPose; inDoor: [number, number] } {
  const tcp = hand(obs);
  const pose = doorPose(obs);
  return { hand: tcp, pose, inDoor: worldToDoor(pose, tcp[0], tcp[1]) };
}

/** A door-frame point (x, y) at angle `angle`, in world coordinates (x, y). */
export function doorToWorld(pose: DoorPose, x: number, y: number, angle = pose.angle): [number, number] {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return [pose.hingeX + x * c - y * s, pose.hingeY + x * s + y * c];
}

/** A world point (x, y) in the door's current frame. */
export function worldToDoor(pose: DoorPose, x: number, y: number): [number, number] {
  const c = Math.cos(pose.angle);
  const s = Math.sin(pose.angle);
  const dx = x - pose.hingeX;
  const dy = y - pose.hingeY;
  return [dx * c + dy * s, -dx * s + dy * c];
}

/** How high (m) above the handle's height the hand comes over its approach point. */
const APPROACH_HOVER = 0.08;

/** The TCP target at door-frame point (x, y) with the door at `angle`, at the handle's height. */
export function doorTarget(pose: DoorPose, x: number, y: number, angle = pose.angle): [number, number, number] {
  const [tx, ty] = doorToWorld(pose, x, y, angle);
  return [tx, ty, pose.z];
}

/**
 * Come over door-frame point (x, y) high, then straight down to the handle's height once the
 * TCP (hx, hy) is within `within` (m) of it in the plane, so the hand does not sweep into the door.
 */
export function planDoorApproach(pose: DoorPose, hx: number, hy: number, x: number, y: number, within: number, out: Waypoint): void {
  const [ax, ay] = doorToWorld(pose, x, y);
  const above = Math.hypot(hx - ax, hy - ay) < within;
  out.target = [ax, ay, above ? pose.z : pose.z + APPROACH_HOVER];
}
