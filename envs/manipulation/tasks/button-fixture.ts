import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { createSpringSlide, type JointHandle } from '../joints';
import type { TabletopScene } from '../tabletop';
import type { Vec3 } from '../vec3';

/**
 * The button box of button-press-topdown (Meta-World's stop-button box, laid out afresh): a fixed
 * box on the table with a square hole in its top, and a mushroom button (a cap on a rod that runs
 * down the hole) on a spring-returned prismatic slide along −z. The coordinate is how far the
 * button is pressed in, 0 … `travel` (hard stops at both ends); the spring's rest point lies
 * above the upper stop, so the button sits preloaded against it and springs back up when let go,
 * as Meta-World's `btnbox_joint` (springref beyond its range).
 *
 * Only pressing the cap down moves it: the slide takes no sideways motion, and the box is fixed.
 * Offsets are from the fixture position (Meta-World's `obj_init_pos`: the box's centre in x-y,
 * z = 0.115).
 */
export const BUTTON = Object.freeze({
  /** Height of the box's top above the table. */
  boxTop: 0.205,
  boxHalf: 0.12,
  holeHalf: 0.026,
  capRadius: 0.04,
  capHalfHeight: 0.012,
  rodRadius: 0.018,
  rodHalfLength: 0.045,
  travel: 0.06,
  /** Gap (m) left between the cap and the box top when the button is pressed home. */
  clearance: 0.003,
  /** N/m; with the rest point 2 cm above the upper stop the preload (2 N) beats the button's weight (~1 N). */
  stiffness: 100,
  rest: -0.02,
  damping: 1,
});

export interface ButtonFixture {
  readonly button: RigidBody;
  readonly slide: JointHandle;
  /** World z of the cap's top when released; it drops by `pressed()`. */
  readonly topZ: number;
  /** How far the button is pressed in (m). */
  pressed(): number;
}

/** The box at `position` with its button released. */
export function createButtonBox(scene: TabletopScene, position: Vec3): ButtonFixture {
  const [px, py, pz] = position;
  const b = BUTTON;
  const box = scene.createBody({ position: [px, py, pz], kind: 'fixed' });
  const halfZ = b.boxTop / 2;
  const centreZ = halfZ - pz;
  const slabY = (b.boxHalf - b.holeHalf) / 2;
  for (const s of [-1, 1]) {
    scene.addBoxCollider(box, [b.boxHalf, slabY, halfZ], [0, s * (b.holeHalf + slabY), centreZ]);
    scene.addBoxCollider(box, [slabY, b.holeHalf, halfZ], [s * (b.holeHalf + slabY), 0, centreZ]);
  }
  const capCentre = b.boxTop + b.travel + b.clearance + b.capHalfHeight - pz;
  const button = scene.createBody({ position: [px, py, pz], kind: 'dynamic' });
  scene.addCylinderCollider(button, b.capRadius, b.capHalfHeight, [0, 0, capCentre]);
  scene.addCylinderCollider(button, b.rodRadius, b.rodHalfLength, [0, 0, capCentre - b.capHalfHeight - b.rodHalfLength]);
  const slide = createSpringSlide(scene, {
    body: button,
    anchor: [px, py, pz],
    axis: [0, 0, -1],
    limits: [0, b.travel],
    stiffness: b.stiffness,
    rest: b.rest,
    damping: b.damping,
  });
  return { button, slide, topZ: pz + capCentre + b.capHalfHeight, pressed: () => slide.coordinate() };
}
