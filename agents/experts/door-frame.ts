import { OBS } from '../../envs/manipulation/observation-layout';
import { DOOR } from '../../envs/manipulation/tasks/door-fixture';

/**
 * The door's pose as the door tasks' observation shows it (handle centre and handle quaternion, a
 * turn about z): its angle and hinge point, and conversions between world points and points in
 * the door's frame (see door-fixture.ts), for the door experts.
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
