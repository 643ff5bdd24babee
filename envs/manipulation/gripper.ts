import type { Collider, ImpulseJoint, RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { ENV_STEP_SECONDS, type SubstepController, type TabletopScene } from './tabletop';
import { clamp, type Vec3 } from './vec3';

/**
 * A two-finger parallel gripper whose end-effector is moved by position deltas, as Meta-World's
 * mocap-driven Sawyer hand. There is no arm: the hand is a free-floating dynamic body (1 kg, no
 * gravity, rotations locked) whose velocity is set every substep to reach this step's waypoint,
 * like the mocap weld's stiff spring. Being dynamic, it is stopped by fixed geometry and by
 * fixtures at their joint limits (a drawer pushed shut, a button pressed home), while light
 * objects (the 25 g puck) are pushed aside. The next step starts from where the hand really is,
 * so a blocked hand does not wind up.
 *
 * Geometry (hand frame = world axes; the hand never rotates):
 * - The tool centre point (TCP) is the hand body's origin, midway between the finger pads; the
 *   observation reports it.
 * - Two finger pads (boxes, 2 × 1 × 4 cm, colliders of the hand body moved along y every substep)
 *   close along y; `opening` is the gap between their inner faces, 0 … `maxOpening`. A palm
 *   (4 × 12 × 2 cm) sits just above the pads.
 *
 * Action a ∈ [-1, 1]⁴ per env step:
 * - a[0..2]: the TCP's waypoint is its position plus a · `actionScale` (1 cm in Meta-World), clipped
 *   to [handLow, handHigh]; the motion is spread evenly over the physics substeps.
 * - a[3]: gripper effort, positive closes. It commands the opening `maxOpening · (1 − a[3]) / 2`
 *   (fully open at −1, half open at 0, shut at +1); the fingers move towards it by at most
 *   `fingerSpeed` per step.
 *
 * Grasp rule (instead of simulating finger friction, which needs far finer time steps):
 * - An object offered by the task (`Graspable`) is *between the pads* when its centre lies within
 *   the current opening along y (|dy| ≤ opening/2), within ±`PINCH_X` of the TCP along x, and its
 *   height overlaps the pads by at least 5 mm.
 * - When the fingers close on such an object and the commanded opening is narrower than the
 *   object's `gripWidth`, both pads touch it: the opening stops at `gripWidth` (so obs[3] shows a
 *   held object as a partly open gripper) and the object is attached to the hand by a fixed joint
 *   (contacts between the two disabled) at its offset at the moment of the grasp, re-centred
 *   between the pads along y, keeping its orientation. A held object still collides with
 *   everything else, so it can be blocked (a peg against a wall) and then holds the hand back.
 * - It is released when the commanded opening is at least `gripWidth` again (the gripper opens):
 *   the joint is removed and the object moves on with the hand's velocity under physics.
 * - One object at a time per gripper, and an object held by one gripper of a scene cannot be
 *   taken by another (two-arm tasks).
 */

export interface GripperConfig {
  /** TCP workspace (Meta-World's mocap bounds). */
  handLow: Vec3;
  handHigh: Vec3;
  /** TCP at the start of an episode. */
  handInit: Vec3;
  /** Metres per unit of action per step (Meta-World: 1/100). */
  actionScale: number;
  /** Gap between the pads when fully open (m); obs[3] = opening / maxOpening. */
  maxOpening: number;
  /** Largest change of the opening per env step (m). */
  fingerSpeed: number;
  /** Opening at the start of an episode (default: fully open, as Meta-World's reset). */
  initialOpening?: number;
}

/** Meta-World's single-arm workspace, lowered so the pads reach objects resting on the table. */
export const DEFAULT_GRIPPER_CONFIG: Readonly<GripperConfig> = Object.freeze({
  handLow: [-0.5, 0.4, 0.025] as Vec3,
  handHigh: [0.5, 1.0, 0.5] as Vec3,
  handInit: [0, 0.6, 0.2] as Vec3,
  actionScale: 0.01,
  maxOpening: 0.1,
  fingerSpeed: 0.025,
});

/** An object the gripper may pick up; tasks list theirs in `TaskEpisode.graspables`. */
export interface Graspable {
  readonly body: RigidBody;
  /** The object's width along y, where the pads close on it (m); the opening while it is held. */
  readonly gripWidth: number;
  /** Half the object's height (m), for the pads' vertical overlap test. */
  readonly halfHeight: number;
}

/** Pad half extents (x, y, z), m. */
export const PAD_HALF: Vec3 = [0.01, 0.005, 0.02];
/** How far (m) along x an object's centre may be from the TCP and still be between the pads. */
export const PINCH_X = 0.02;
const MIN_PAD_OVERLAP = 0.005;
const PALM_HALF: Vec3 = [0.02, 0.06, 0.01];
/** kg: heavy next to the objects it pushes, light enough for fixtures' joint limits to stop it. */
const HAND_MASS = 1;

export class Gripper implements SubstepController {
  /** TCP now (read after each step). */
  readonly position = new Float64Array(3);
  /** Gap between the pads now (m). */
  opening: number;
  /** The object held now, if any. */
  held: Graspable | null = null;
  /** The hand body; its origin is the TCP. */
  readonly hand: RigidBody;
  /** The pad at larger y ("left" in Meta-World's caging reward) and the one at smaller y. */
  readonly leftPad: Collider;
  readonly rightPad: Collider;
  /** The pads' y at the start of the episode. */
  readonly initLeftPadY: number;
  readonly initRightPadY: number;

  private readonly start = new Float64Array(3);
  private readonly target = new Float64Array(3);
  private startOpening: number;
  private targetOpening: number;
  private heldJoint: ImpulseJoint | null = null;
  private readonly scratch = { x: 0, y: 0, z: 0 };
  private readonly substepSeconds: number;
  private graspables: readonly Graspable[] = [];

  constructor(
    private readonly scene: TabletopScene,
    readonly config: Readonly<GripperConfig>,
  ) {
    const [x, y, z] = config.handInit;
    for (let i = 0; i < 3; i++) {
      if (!(config.handLow[i] <= config.handInit[i] && config.handInit[i] <= config.handHigh[i])) {
        throw new Error(`Gripper: handInit [${config.handInit.join(', ')}] lies outside the workspace [${config.handLow.join(', ')}]..[${config.handHigh.join(', ')}]`);
      }
    }
    this.opening = clamp(config.initialOpening ?? config.maxOpening, 0, config.maxOpening);
    this.startOpening = this.opening;
    this.targetOpening = this.opening;
    this.position.set(config.handInit);
    this.start.set(config.handInit);
    this.target.set(config.handInit);
    const R = scene.rapier;
    this.hand = scene.world.createRigidBody(
      R.RigidBodyDesc.dynamic().setTranslation(x, y, z).setGravityScale(0).lockRotations().setAdditionalMass(HAND_MASS).setCanSleep(false),
    );
    scene.handBodies.add(this.hand.handle);
    scene.addBoxCollider(this.hand, PALM_HALF, [0, 0, PAD_HALF[2] + PALM_HALF[2]], { density: 0 });
    const padY = this.opening / 2 + PAD_HALF[1];
    this.initLeftPadY = y + padY;
    this.initRightPadY = y - padY;
    this.leftPad = scene.addBoxCollider(this.hand, PAD_HALF, [0, padY, 0], { density: 0 });
    this.rightPad = scene.addBoxCollider(this.hand, PAD_HALF, [0, -padY, 0], { density: 0 });
    this.substepSeconds = ENV_STEP_SECONDS / scene.substeps;
    scene.addController(this);
  }

  /** The objects this gripper may grasp (the task's `graspables`). */
  setGraspables(graspables: readonly Graspable[]): void {
    this.graspables = graspables;
  }

  /** obs[3]: the opening as a fraction of `maxOpening`, in [0, 1]. */
  openingFraction(): number {
    return clamp(this.opening / this.config.maxOpening, 0, 1);
  }

  /** y of the left (larger y) and right pad centres, for Meta-World's caging reward. */
  leftPadY(): number {
    return this.position[1] + this.opening / 2 + PAD_HALF[1];
  }

  rightPadY(): number {
    return this.position[1] - this.opening / 2 - PAD_HALF[1];
  }

  isHolding(body: RigidBody): boolean {
    return this.held !== null && this.held.body.handle === body.handle;
  }

  /** Reads the hand's position after physics (called by the scene at the end of `advance`). */
  afterAdvance(): void {
    const t = this.hand.translation();
    this.position[0] = t.x;
    this.position[1] = t.y;
    this.position[2] = t.z;
    this.opening = this.targetOpening;
  }

  /**
   * Reads one step's action (4 numbers at `offset`, already validated to lie in [-1, 1]) and
   * decides this step's hand path, finger opening, grasp and release. Call before `scene.advance()`.
   */
  applyAction(action: ArrayLike<number>, offset = 0): void {
    const c = this.config;
    for (let i = 0; i < 3; i++) {
      this.start[i] = this.position[i];
      this.target[i] = clamp(this.position[i] + clamp(action[offset + i], -1, 1) * c.actionScale, c.handLow[i], c.handHigh[i]);
    }
    const effort = clamp(action[offset + 3], -1, 1);
    const commanded = (c.maxOpening * (1 - effort)) / 2;
    this.startOpening = this.opening;
    if (this.held && commanded >= this.held.gripWidth) this.release();
    let next = this.opening + clamp(commanded - this.opening, -c.fingerSpeed, c.fingerSpeed);
    if (this.held) {
      next = this.held.gripWidth;
    } else if (next < this.opening) {
      const between = this.objectBetweenPads();
      if (between && next <= between.gripWidth) {
        next = Math.min(this.opening, between.gripWidth);
        if (commanded < between.gripWidth) this.attach(between);
      }
    }
    this.targetOpening = next;
  }

  /** Steers the hand towards this substep's waypoint and moves the pads (called by the scene). */
  beforeSubstep(fraction: number): void {
    const now = this.hand.translation();
    const v = this.scratch;
    const dt = this.substepSeconds;
    v.x = (this.start[0] + (this.target[0] - this.start[0]) * fraction - now.x) / dt;
    v.y = (this.start[1] + (this.target[1] - this.start[1]) * fraction - now.y) / dt;
    v.z = (this.start[2] + (this.target[2] - this.start[2]) * fraction - now.z) / dt;
    this.hand.setLinvel(v, true);
    const padY = (this.startOpening + (this.targetOpening - this.startOpening) * fraction) / 2 + PAD_HALF[1];
    v.x = 0;
    v.z = 0;
    v.y = padY;
    this.leftPad.setTranslationWrtParent(v);
    v.y = -padY;
    this.rightPad.setTranslationWrtParent(v);
  }

  private objectBetweenPads(): Graspable | null {
    const [x, y, z] = this.position;
    for (const g of this.graspables) {
      if (this.scene.heldBodies.has(g.body.handle)) continue;
      const t = g.body.translation();
      if (Math.abs(t.x - x) <= PINCH_X && Math.abs(t.y - y) <= this.opening / 2 && Math.abs(t.z - z) <= PAD_HALF[2] + g.halfHeight - MIN_PAD_OVERLAP) return g;
    }
    return null;
  }

  private attach(g: Graspable): void {
    const R = this.scene.rapier;
    const t = g.body.translation();
    // The hand never rotates, so its frame is the world's: keep the object's current orientation.
    const anchor = { x: t.x - this.position[0], y: 0, z: t.z - this.position[2] };
    const data = R.JointData.fixed(anchor, g.body.rotation(), { x: 0, y: 0, z: 0 }, { x: 0, y: 0, z: 0, w: 1 });
    const joint = this.scene.world.createImpulseJoint(data, this.hand, g.body, true);
    joint.setContactsEnabled(false);
    this.heldJoint = joint;
    this.held = g;
    this.scene.heldBodies.add(g.body.handle);
  }

  private release(): void {
    const g = this.held!;
    this.scene.world.removeImpulseJoint(this.heldJoint!, true);
    this.heldJoint = null;
    this.scene.heldBodies.delete(g.body.handle);
    this.held = null;
  }
}
