import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { createHinge, type JointHandle } from '../joints';
import type { TabletopScene } from '../tabletop';
import type { Vec3 } from '../vec3';

/**
 * The lever of lever-pull (Meta-World's lever, laid out afresh): a fixed column on the table with
 * a stub axle sticking out along +x, and a lever on a hinge about that axle: a hub, a 20 cm arm and
 * a round knob (a short cylinder along x) at its end. At rest the arm points at the robot (−y),
 * level, on its lower stop; it swings up about the axis −x (positive angles lift the knob) to its
 * upper stop 5° past vertical, so a lever pushed over the top rests there. Gravity pulls a lever
 * that is let go below vertical back down; the hinge is damped like MuJoCo's `LeverAxis`.
 *
 * The lever turns only about its hinge (the joint takes no other motion). Offsets are from the
 * fixture position (the column's foot, Meta-World's `obj_init_pos`).
 */
export const LEVER = Object.freeze({
  /** The hinge point (Meta-World's `lever_link1` offset). */
  hinge: [0.12, 0, 0.25] as Vec3,
  /** Distance from the hinge axis to the knob's centre (Meta-World's LEVER_RADIUS). */
  radius: 0.2,
  knobRadius: 0.03,
  knobHalfLength: 0.03,
  limits: [0, Math.PI / 2 + Math.PI / 36] as const,
  /** N·m·s/rad. */
  damping: 0.05,
});

export interface LeverFixture {
  readonly body: RigidBody;
  readonly hinge: JointHandle;
  /** World position of the hinge point. */
  readonly hingePoint: Vec3;
  /** The lever's angle above level (rad). */
  angle(): number;
}

export function createLever(scene: TabletopScene, position: Vec3): LeverFixture {
  const [px, py, pz] = position;
  const [hx, hy, hz] = LEVER.hinge;
  const base = scene.createBody({ position: [px, py, pz], kind: 'fixed' });
  scene.addBoxCollider(base, [0.041, 0.083, 0.125], [0, 0, 0.125]);
  scene.addBoxCollider(base, [0.05, 0.092, 0.013], [0, 0, 0.013]);
  scene.addCylinderCollider(base, 0.04, 0.041, [0, 0, hz], 'x');
  // The stub axle ends 6 mm short of the lever's hub: touching, it would brake the hinge by friction.
  scene.addCylinderCollider(base, 0.012, 0.024, [0.065, 0, hz], 'x');

  const body = scene.createBody({ position: [px, py, pz], kind: 'dynamic' });
  scene.addCylinderCollider(body, 0.02, 0.025, [hx, hy, hz], 'x');
  const armHalf = (LEVER.radius - LEVER.knobRadius - 0.015) / 2;
  scene.addBoxCollider(body, [0.008, armHalf, 0.008], [hx, hy - 0.015 - armHalf, hz]);
  scene.addCylinderCollider(body, LEVER.knobRadius, LEVER.knobHalfLength, [hx, hy - LEVER.radius, hz], 'x');
  const hingePoint: Vec3 = [px + hx, py + hy, pz + hz];
  const hinge = createHinge(scene, { body, anchor: hingePoint, axis: [-1, 0, 0], limits: LEVER.limits, damping: LEVER.damping });
  return { body, hinge, hingePoint, angle: () => hinge.coordinate() };
}
