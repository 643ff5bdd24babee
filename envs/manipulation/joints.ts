import type { ImpulseJoint, RigidBody, UnitImpulseJoint } from '@dimforge/rapier3d-deterministic-compat';
import type { TabletopScene } from './tabletop';
import type { Vec3 } from './vec3';

/**
 * Small helpers for the articulated fixtures of later tasks: hinges (doors, levers, faucets),
 * slides (drawers, windows) and spring-returned slides (buttons). Each returns a handle that
 * reads the joint's coordinate cheaply (from the two bodies' poses, no allocation beyond
 * Rapier's own getters), which tasks put in the observation's object block and use for reward.
 *
 * Anchors are given in world coordinates at creation time and converted to each body's frame,
 * so task files can place everything in one frame. `parent` defaults to the table (fixed).
 * Joint limits are hard stops; `damping` (N·s/m or N·m·s/rad) is a velocity motor towards
 * zero, which stands in for MuJoCo's joint damping and keeps doors from swinging on after a push.
 */

export interface JointOptions {
  /** The moving body (create it with `scene.createBody` / `addBox`, kind 'dynamic'). */
  body: RigidBody;
  /** The body it hangs on; default: the table (fixed to the world). */
  parent?: RigidBody;
  /** The joint's anchor point in world coordinates. */
  anchor: Vec3;
  /** Unit axis in world coordinates: the hinge axis, or the slide direction. */
  axis: Vec3;
  /** [min, max] of the coordinate (rad for hinges, m for slides), measured from the creation pose. */
  limits?: readonly [number, number];
  /** Viscous damping of the coordinate; 0 for none. */
  damping?: number;
}

export interface SpringSlideOptions extends JointOptions {
  /** Spring constant pulling the coordinate back to `rest` (N/m). */
  stiffness: number;
  /** Coordinate the spring returns to (default 0, the creation pose). */
  rest?: number;
}

/** A one-degree-of-freedom joint; `coordinate()` is its angle (rad) or displacement (m). */
export interface JointHandle {
  readonly joint: UnitImpulseJoint;
  coordinate(): number;
}

/** A hinge about `axis` through `anchor`; the coordinate is the rotation angle from the creation pose (right-handed about `axis`). */
export function createHinge(scene: TabletopScene, options: JointOptions): JointHandle {
  const R = scene.rapier;
  const parent = options.parent ?? scene.table;
  requireSameOrientation(parent, options.body, 'createHinge');
  const data = R.JointData.revolute(toLocal(parent, options.anchor), toLocal(options.body, options.anchor), unit(options.axis));
  const joint = configure(scene, scene.world.createImpulseJoint(data, parent, options.body, true), options);
  const axis = unit(options.axis);
  const rel0Inverse = quatConj(quatMul(quatConj(parent.rotation()), options.body.rotation()));
  return {
    joint,
    coordinate(): number {
      // The rotation since creation, relative to the parent, is a turn about the axis: read its angle.
      const turn = quatMul(rel0Inverse, quatMul(quatConj(parent.rotation()), options.body.rotation()));
      return 2 * Math.atan2(turn.x * axis.x + turn.y * axis.y + turn.z * axis.z, turn.w);
    },
  };
}

/** A slide along `axis`; the coordinate is the body's displacement along it from the creation pose (m). */
export function createSlide(scene: TabletopScene, options: JointOptions): JointHandle {
  const R = scene.rapier;
  const parent = options.parent ?? scene.table;
  const axis = unit(options.axis);
  requireSameOrientation(parent, options.body, 'createSlide');
  const data = R.JointData.prismatic(toLocal(parent, options.anchor), toLocal(options.body, options.anchor), axis);
  const joint = configure(scene, scene.world.createImpulseJoint(data, parent, options.body, true), options);
  const b0 = options.body.translation();
  const p0 = parent.translation();
  const ox = b0.x - p0.x;
  const oy = b0.y - p0.y;
  const oz = b0.z - p0.z;
  return {
    joint,
    coordinate(): number {
      const b = options.body.translation();
      const p = parent.translation();
      return (b.x - p.x - ox) * axis.x + (b.y - p.y - oy) * axis.y + (b.z - p.z - oz) * axis.z;
    },
  };
}

/** A slide with a spring back to `rest` (buttons): the coordinate returns there when released. */
export function createSpringSlide(scene: TabletopScene, options: SpringSlideOptions): JointHandle {
  const handle = createSlide(scene, { ...options, damping: 0 });
  handle.joint.configureMotorModel(scene.rapier.MotorModel.ForceBased);
  handle.joint.configureMotorPosition(options.rest ?? 0, options.stiffness, options.damping ?? 0);
  return handle;
}

/**
 * Rapier takes the joint axis in each body's local frame; with equal orientations at creation
 * the world axis serves for both, which keeps the helpers' world-frame API honest.
 */
function requireSameOrientation(parent: RigidBody, body: RigidBody, who: string): void {
  const a = parent.rotation();
  const b = body.rotation();
  const dot = Math.abs(a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w);
  if (dot < 1 - 1e-9) throw new Error(`${who}: create the body with the same orientation as its parent (rotate the fixture's colliders instead)`);
}

function configure(scene: TabletopScene, joint: ImpulseJoint, options: JointOptions): UnitImpulseJoint {
  const unitJoint = joint as UnitImpulseJoint;
  if (options.limits) {
    const [lo, hi] = options.limits;
    if (!(lo <= hi)) throw new Error(`joint limits must satisfy min ≤ max, got [${lo}, ${hi}]`);
    unitJoint.setLimits(lo, hi);
  }
  if (options.damping && options.damping > 0) {
    unitJoint.configureMotorModel(scene.rapier.MotorModel.ForceBased);
    unitJoint.configureMotorVelocity(0, options.damping);
  }
  return unitJoint;
}

type Quat = { x: number; y: number; z: number; w: number };

function quatConj(q: Quat): Quat {
  return { x: -q.x, y: -q.y, z: -q.z, w: q.w };
}

function quatMul(a: Quat, b: Quat): Quat {
  return {
    w: a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
    x: a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
    y: a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
    z: a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
  };
}

/** A world point in `body`'s frame. */
function toLocal(body: RigidBody, point: Vec3): { x: number; y: number; z: number } {
  const t = body.translation();
  const q = quatConj(body.rotation());
  const v = { x: point[0] - t.x, y: point[1] - t.y, z: point[2] - t.z, w: 0 };
  const r = quatMul(quatMul(q, v), quatConj(q));
  return { x: r.x, y: r.y, z: r.z };
}

function unit(v: Vec3): { x: number; y: number; z: number } {
  const n = Math.hypot(v[0], v[1], v[2]);
  if (!(n > 0)) throw new Error(`joint axis must be a non-zero vector, got [${v.join(', ')}]`);
  return { x: v[0] / n, y: v[1] / n, z: v[2] / n };
}
