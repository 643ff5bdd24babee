import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import type { Graspable } from './gripper';
import type { TabletopScene } from './tabletop';
import type { Vec3 } from './vec3';

/** The puck of reach, push and pick-place: an upright cylinder, 4 cm across and 4 cm tall. */
export const PUCK_RADIUS = 0.02;
export const PUCK_HALF_HEIGHT = 0.02;

/** A dynamic puck standing at `position` (its centre; z = PUCK_HALF_HEIGHT rests it on the table). */
export function createPuck(scene: TabletopScene, position: Vec3): Graspable {
  const body = scene.addCylinder(PUCK_RADIUS, PUCK_HALF_HEIGHT, { position, density: 500, friction: 1 });
  return { body, gripWidth: 2 * PUCK_RADIUS, halfHeight: PUCK_HALF_HEIGHT };
}

/** Writes a body's position (3) and quaternion (x, y, z, w) (4) at `out[offset]`. */
export function writePose(body: RigidBody, out: Float64Array, offset: number): void {
  const t = body.translation();
  const q = body.rotation();
  out[offset] = t.x;
  out[offset + 1] = t.y;
  out[offset + 2] = t.z;
  // A quaternion and its negation are the same rotation; w ≥ 0 keeps the observation continuous near identity.
  const sign = q.w < 0 ? -1 : 1;
  out[offset + 3] = sign * q.x;
  out[offset + 4] = sign * q.y;
  out[offset + 5] = sign * q.z;
  out[offset + 6] = sign * q.w;
}

/** Zeros `count` numbers from `out[offset]` (an unused object slot). */
export function writeEmpty(out: Float64Array, offset: number, count: number): void {
  out.fill(0, offset, offset + count);
}

/** Writes the object block of a task with one object: its pose as obj1, obj2 zero. */
export function writeSoleObject(body: RigidBody, out: Float64Array, offset: number): void {
  writePose(body, out, offset);
  writeEmpty(out, offset + 7, 7);
}
