import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { createSlide, type JointHandle } from '../joints';
import type { TabletopScene } from '../tabletop';
import type { Vec3 } from '../vec3';

/**
 * The drawer of drawer-open and drawer-close: a fixed case (sides, back, top; the table is its
 * floor) open towards the robot (−y), and a drawer on a prismatic slide along −y (coordinate =
 * how far it is pulled out, 0 … 0.2 m, hard stops at both ends; damped like MuJoCo's slide).
 *
 * The handle bar stands 3.3 cm off the drawer's front on two posts, at the top edge, with the case
 * kept lower than the hand's palm: the shut gripper fits down between bar and front and hooks the
 * bar to pull, and pushing the bar or the front shuts the drawer. Offsets are from the fixture
 * position (the closed drawer's centre on the table).
 */
export const DRAWER = Object.freeze({
  /** Centre of the handle bar when closed (the observed handle position). */
  handle: [0, -0.145, 0.075] as Vec3,
  /** Where the shut gripper hooks the bar: between bar and drawer front. */
  hook: [0, -0.1225, 0.072] as Vec3,
  travel: 0.2,
  damping: 2,
});

export interface DrawerFixture {
  readonly body: RigidBody;
  readonly slide: JointHandle;
  /** How far the drawer is pulled out (m). */
  opening(): number;
}

/** The case and drawer at `position`, the drawer pulled out by `initialOpening`. */
export function createDrawer(scene: TabletopScene, position: Vec3, initialOpening: number): DrawerFixture {
  const [px, py, pz] = position;
  const caseBody = scene.createBody({ position: [px, py, pz], kind: 'fixed' });
  scene.addBoxCollider(caseBody, [0.01, 0.1, 0.045], [-0.11, 0, 0.045]);
  scene.addBoxCollider(caseBody, [0.01, 0.1, 0.045], [0.11, 0, 0.045]);
  scene.addBoxCollider(caseBody, [0.1, 0.005, 0.045], [0, 0.095, 0.045]);
  scene.addBoxCollider(caseBody, [0.12, 0.1, 0.0025], [0, 0, 0.0875]);

  const body = scene.createBody({ position: [px, py, pz], kind: 'dynamic' });
  scene.addBoxCollider(body, [0.098, 0.006, 0.039], [0, -0.1, 0.044]);
  scene.addBoxCollider(body, [0.095, 0.09, 0.003], [0, -0.005, 0.009]);
  scene.addBoxCollider(body, [0.004, 0.085, 0.028], [-0.092, -0.005, 0.04]);
  scene.addBoxCollider(body, [0.004, 0.085, 0.028], [0.092, -0.005, 0.04]);
  scene.addBoxCollider(body, [0.09, 0.004, 0.028], [0, 0.08, 0.04]);
  const [hx, hy, hz] = DRAWER.handle;
  for (const x of [-0.045, 0.045]) scene.addBoxCollider(body, [0.006, 0.0175, 0.006], [x, -0.1235, hz]);
  scene.addBoxCollider(body, [0.06, 0.006, 0.007], [hx, hy, hz]);
  const slide = createSlide(scene, { body, anchor: [px, py, pz], axis: [0, -1, 0], limits: [0, DRAWER.travel], damping: DRAWER.damping });
  if (initialOpening !== 0) body.setTranslation({ x: px, y: py - initialOpening, z: pz }, true);
  return { body, slide, opening: () => slide.coordinate() };
}
