import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { createSlide, type JointHandle } from '../joints';
import type { TabletopScene } from '../tabletop';
import type { Vec3 } from '../vec3';

/**
 * The sliding window of window-open and window-close (Meta-World's horizontal window, laid out
 * afresh): a fixed frame standing upright on the table in the x-z plane, facing the robot (−y),
 * with two panes. The right pane is fixed in the back track; the left pane runs in the front track
 * on a prismatic slide along +x (coordinate = how far it is slid open, 0 … 0.2 m, hard stops at
 * both ends, damped like MuJoCo's `window_slide`).
 *
 * A handle stands off the sliding pane's front on two arms: a vertical bar 10 cm in front of the
 * pane, with room between the arms for the shut gripper's pads and palm. The window moves only when
 * that handle (or the pane's edge, reachable only through the open gap) is pushed along x: the
 * slide takes no motion along y or z, the frame is fixed, and the glass is frictionless, so
 * pressing or rubbing the pane's face does nothing.
 *
 * Offsets are from the fixture position (the frame's centre in x-y, z = the handle's height):
 * x along the window, y out of its back (the front faces −y).
 */
export const WINDOW = Object.freeze({
  /** Centre of the handle bar on the closed pane. */
  handleBar: [-0.014, -0.1, 0] as Vec3,
  barHalf: [0.008, 0.008, 0.065] as Vec3,
  /** Where window-open observes the handle: on the bar's left (pushing) side, Meta-World's `handleOpenStart`. */
  openPoint: [-0.04, -0.1, 0] as Vec3,
  /** Where window-close observes it: on the bar's right side, Meta-World's `handleCloseStart`. */
  closePoint: [0.01, -0.1, 0] as Vec3,
  /** Height of the handle's arms above and below its centre; the hand fits between them. */
  armZ: 0.057,
  paneHalf: [0.1, 0.012, 0.15] as Vec3,
  travel: 0.2,
  /** N·s/m: the pane stops soon after the hand lets go (Meta-World's joint damping). */
  damping: 2,
});

export interface WindowFixture {
  readonly pane: RigidBody;
  readonly slide: JointHandle;
  /** How far the pane is slid open (m). */
  opening(): number;
}

/** The frame and panes at `position`, the sliding pane opened by `initialOpening`. */
export function createWindow(scene: TabletopScene, position: Vec3, initialOpening: number): WindowFixture {
  const [px, py, pz] = position;
  const top = 0.183;
  const frame = scene.createBody({ position: [px, py, pz], kind: 'fixed' });
  // Posts and sill reach down to the table; 3 mm of play all round keeps the pane off the frame.
  scene.addBoxCollider(frame, [0.015, 0.03, (top + pz) / 2], [-0.218, 0, (top - pz) / 2]);
  scene.addBoxCollider(frame, [0.015, 0.03, (top + pz) / 2], [0.218, 0, (top - pz) / 2]);
  scene.addBoxCollider(frame, [0.233, 0.03, 0.015], [0, 0, top - 0.015]);
  const sillTop = -WINDOW.paneHalf[2] - 0.003;
  if (pz + sillTop > 0) scene.addBoxCollider(frame, [0.233, 0.03, (pz + sillTop) / 2], [0, 0, (sillTop - pz) / 2]);
  const glass = [scene.addBoxCollider(frame, WINDOW.paneHalf, [0.1, 0.013, 0], { friction: 0 })];

  const pane = scene.createBody({ position: [px, py, pz], kind: 'dynamic' });
  glass.push(scene.addBoxCollider(pane, WINDOW.paneHalf, [-0.1, -0.013, 0], { friction: 0 }));
  // Rapier averages the two frictions of a contact by default; the lesser keeps the glass slippery against the hand.
  for (const c of glass) c.setFrictionCombineRule(scene.rapier.CoefficientCombineRule.Min);
  const [bx, by, bz] = WINDOW.handleBar;
  scene.addBoxCollider(pane, WINDOW.barHalf, [bx, by, bz]);
  const armHalfY = (-0.025 - by) / 2;
  for (const z of [-WINDOW.armZ, WINDOW.armZ]) scene.addBoxCollider(pane, [WINDOW.barHalf[0], armHalfY, 0.008], [bx, by + armHalfY, z]);
  const slide = createSlide(scene, { body: pane, anchor: [px, py, pz], axis: [1, 0, 0], limits: [0, WINDOW.travel], damping: WINDOW.damping });
  if (initialOpening !== 0) pane.setTranslation({ x: px + initialOpening, y: py, z: pz }, true);
  return { pane, slide, opening: () => slide.coordinate() };
}

/** Writes the observed handle point (`WINDOW.openPoint` or `closePoint` on the pane, from its pose) and a zero quaternion (Meta-World reports none). */
export function writeWindowHandle(pane: RigidBody, point: Vec3, out: Float64Array, offset: number): void {
  const t = pane.translation();
  out[offset] = t.x + point[0];
  out[offset + 1] = t.y + point[1];
  out[offset + 2] = t.z + point[2];
  out.fill(0, offset + 3, offset + 14);
}
