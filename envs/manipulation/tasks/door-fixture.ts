import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { createHinge, type JointHandle } from '../joints';
import { writeEmpty } from '../objects';
import type { TabletopScene } from '../tabletop';
import type { Vec3 } from '../vec3';

/**
 * The hinged door of door-open and door-close (Meta-World's door in a safe, laid out afresh):
 * a safe (fixed walls, open at the front, the robot's side −y) closed by a door panel hinged
 * about a vertical axis at its left edge. Closed, the panel runs along +x from the hinge; it
 * swings open towards the robot (negative angles, down to −2 rad), as Meta-World's `doorjoint`.
 *
 * A handle bar stands off the panel's front face on two posts, far enough out that the closed
 * gripper fits between bar and panel with the palm clear of both. The door can only be opened by
 * pulling that bar: the safe's walls keep the hand away from the panel's back, and pushing the
 * front face drives the door against its closed stop.
 *
 * All offsets are in the door's frame: origin on the hinge axis at the handle's height, x along
 * the closed panel, y out of its front face negated (the front faces −y).
 */
export const DOOR = Object.freeze({
  /** Hinge axis relative to the fixture position (Meta-World's `door_link` offset). */
  hingeOffset: [-0.185, -0.1, 0] as Vec3,
  /** Centre of the handle bar (the observed handle position). */
  handle: [0.325, -0.15] as const,
  panelHalf: [0.18, 0.01, 0.123] as Vec3,
  panelCentreX: 0.185,
  barHalf: [0.075, 0.015, 0.015] as Vec3,
  postHalf: [0.01, 0.0625, 0.012] as Vec3,
  postY: -0.0725,
  postX: [0.26, 0.39] as const,
  limits: [-2, 0] as const,
  /** N·m·s/rad: the door stops soon after the hand lets go (MuJoCo's joint damping). */
  damping: 1,
});

export interface DoorFixture {
  readonly body: RigidBody;
  readonly hinge: JointHandle;
  /** The hinge axis point at handle height (world). */
  readonly hingePoint: Vec3;
  /** The door angle (rad, 0 closed, negative open). */
  angle(): number;
  /** Writes the handle bar's centre (world) at `out[offset]`, from `angle`. */
  writeHandle(out: Float64Array, offset: number, angle: number): void;
}

/** The door and its safe at `position` (Meta-World's door body position, z = handle height), opened to `initialAngle`. */
export function createDoor(scene: TabletopScene, position: Vec3, initialAngle: number): DoorFixture {
  const [px, py, pz] = position;
  const hingePoint: Vec3 = [px + DOOR.hingeOffset[0], py + DOOR.hingeOffset[1], pz + DOOR.hingeOffset[2]];
  const safe = scene.createBody({ position: [px, py, pz], kind: 'fixed' });
  // Walls start 1.5 cm behind the hinge line so the panel never rubs them.
  const depth = 0.09;
  const wallY = DOOR.hingeOffset[1] + 0.015 + depth;
  scene.addBoxCollider(safe, [0.016, depth, pz], [-0.204, wallY, 0]);
  scene.addBoxCollider(safe, [0.016, depth, pz], [0.204, wallY, 0]);
  scene.addBoxCollider(safe, [0.22, depth, 0.012], [0, wallY, pz - 0.012]);
  scene.addBoxCollider(safe, [0.188, 0.012, pz], [0, wallY + depth - 0.012, 0]);

  const body = scene.createBody({ position: hingePoint, kind: 'dynamic', angularDamping: 0, linearDamping: 0 });
  scene.addBoxCollider(body, DOOR.panelHalf, [DOOR.panelCentreX, 0, 0]);
  for (const x of DOOR.postX) scene.addBoxCollider(body, DOOR.postHalf, [x, DOOR.postY, 0]);
  scene.addBoxCollider(body, DOOR.barHalf, [DOOR.handle[0], DOOR.handle[1], 0]);
  const hinge = createHinge(scene, { body, anchor: hingePoint, axis: [0, 0, 1], limits: DOOR.limits, damping: DOOR.damping });
  if (initialAngle !== 0) {
    body.setRotation({ x: 0, y: 0, z: Math.sin(initialAngle / 2), w: Math.cos(initialAngle / 2) }, true);
  }
  const [hx, hy, hz] = hingePoint;
  const [ox, oy] = DOOR.handle;
  return {
    body,
    hinge,
    hingePoint,
    angle: () => hinge.coordinate(),
    writeHandle(out, offset, angle) {
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      out[offset] = hx + ox * c - oy * s;
      out[offset + 1] = hy + ox * s + oy * c;
      out[offset + 2] = hz;
    },
  };
}

/**
 * Writes the door tasks' observation object block at `out[offset]`: obj1 = the handle bar's centre
 * and the handle's orientation (a turn about z by the door `angle`; x, y, z, w); obj2 zero.
 */
export function writeDoorObjects(door: DoorFixture, out: Float64Array, offset: number, angle: number): void {
  door.writeHandle(out, offset, angle);
  out[offset + 3] = 0;
  out[offset + 4] = 0;
  out[offset + 5] = Math.sin(angle / 2);
  out[offset + 6] = Math.cos(angle / 2);
  writeEmpty(out, offset + 7, 7);
}
