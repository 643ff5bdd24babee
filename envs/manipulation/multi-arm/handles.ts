import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import type { Graspable } from '../gripper';
import type { TabletopScene } from '../tabletop';
import type { Vec3 } from '../vec3';

/**
 * Grasp points on a larger object, so that several grippers can hold one object at different
 * places with the core grasp rule (gripper.ts) unchanged.
 *
 * The core rule grasps an object at its centre and attaches it rigidly to the TCP. A handle is a
 * small separate body at a point of the object, joined to it by a joint, and it is what a gripper
 * grasps: the held handle follows the TCP (rigidly, by the core rule) and the object hangs on the
 * handle's joint:
 *
 * - `ball`: a spherical joint: the object may turn freely about the grasp point (a pivot). One
 *   gripper lifting one end of a bar only tilts it; the other end stays on the table.
 * - `fixed`: a rigid weld: the object keeps its pose relative to the held handle (a handover
 *   object, carried level by either of its handles).
 *
 * A handle's collider interacts with nothing (collision and solver groups 0): it only gives the
 * handle a little mass and inertia so the joint solver is well posed; the object's own colliders
 * are what the pads and the table touch. An object held by one gripper's handle may be grasped at
 * another handle by another gripper (each handle is its own Graspable; the scene's held-set rule
 * keeps one gripper per handle).
 */

export type HandleJoint = 'ball' | 'fixed';

export interface HandleOptions {
  /** The object the handle is a point of (dynamic). */
  object: RigidBody;
  /** The grasp point, in world coordinates at creation. */
  point: Vec3;
  joint: HandleJoint;
  /** The object's width along y at the handle (where the pads close), m. */
  gripWidth: number;
  /** Half the object's height at the handle, m (for the pads' vertical overlap test). */
  halfHeight: number;
}

const HANDLE_RADIUS = 0.01;
/** ~20 g: light next to the objects it is a point of, heavy enough for a well-conditioned joint. */
const HANDLE_DENSITY = 5000;

export function addHandle(scene: TabletopScene, options: HandleOptions): Graspable {
  const R = scene.rapier;
  const { object, point } = options;
  const q = object.rotation();
  const body = scene.world.createRigidBody(R.RigidBodyDesc.dynamic().setTranslation(point[0], point[1], point[2]).setRotation(q));
  scene.world.createCollider(R.ColliderDesc.ball(HANDLE_RADIUS).setDensity(HANDLE_DENSITY).setCollisionGroups(0).setSolverGroups(0), body);
  const local = toLocal(object, point);
  const origin = { x: 0, y: 0, z: 0 };
  const identity = { x: 0, y: 0, z: 0, w: 1 };
  const data = options.joint === 'ball' ? R.JointData.spherical(local, origin) : R.JointData.fixed(local, identity, origin, identity);
  scene.world.createImpulseJoint(data, object, body, true).setContactsEnabled(false);
  return { body, gripWidth: options.gripWidth, halfHeight: options.halfHeight };
}

/** A world point in `body`'s frame. */
function toLocal(body: RigidBody, point: Vec3): { x: number; y: number; z: number } {
  const t = body.translation();
  const q = body.rotation();
  // Rotate (point − t) by the conjugate of q: v' = v + 2w(u × v) + 2u × (u × v) with u = −q.xyz.
  const vx = point[0] - t.x;
  const vy = point[1] - t.y;
  const vz = point[2] - t.z;
  const ux = -q.x;
  const uy = -q.y;
  const uz = -q.z;
  const cx = uy * vz - uz * vy;
  const cy = uz * vx - ux * vz;
  const cz = ux * vy - uy * vx;
  return {
    x: vx + 2 * (q.w * cx + uy * cz - uz * cy),
    y: vy + 2 * (q.w * cy + uz * cx - ux * cz),
    z: vz + 2 * (q.w * cz + ux * cy - uy * cx),
  };
}

/** Rotates the local vector (lx, ly, lz) by quaternion q into `out` (no allocation). */
export function rotateInto(q: { x: number; y: number; z: number; w: number }, lx: number, ly: number, lz: number, out: Float64Array, offset = 0): void {
  const cx = q.y * lz - q.z * ly;
  const cy = q.z * lx - q.x * lz;
  const cz = q.x * ly - q.y * lx;
  out[offset] = lx + 2 * (q.w * cx + q.y * cz - q.z * cy);
  out[offset + 1] = ly + 2 * (q.w * cy + q.z * cx - q.x * cz);
  out[offset + 2] = lz + 2 * (q.w * cz + q.x * cy - q.y * cx);
}
