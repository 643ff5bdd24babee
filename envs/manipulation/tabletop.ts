import type { Collider, RigidBody, World } from '@dimforge/rapier3d-deterministic-compat';
import type { Rapier } from './physics';
import type { Vec3 } from './vec3';

/**
 * The tabletop world every manipulation task is built in, in Meta-World's frame: z up, the
 * table top at z = 0, the robot's base behind y = 0.3, objects and goals around y ≈ 0.6–0.9.
 *
 * A scene is a fresh Rapier world per episode. Rebuilding costs ~0.3 ms, i.e. ~1.5 µs per step
 * of a 200-step episode, and guarantees that an episode depends only on its seed and actions:
 * resetting poses in a reused world would keep the solver's contact caches and warm-start
 * impulses from the last episode.
 *
 * Low rims around the table keep pushed or dropped objects on it, so every position stays
 * inside the finite observation bounds.
 */

/** The table's top surface (z = 0) and its rims. */
export const TABLE = Object.freeze({ xMin: -0.7, xMax: 0.7, yMin: 0.3, yMax: 1.1, thickness: 0.04, rimHeight: 0.06, rimThickness: 0.02 });

/** Physics time per env step: Meta-World's frame_skip 5 × 2.5 ms. */
export const ENV_STEP_SECONDS = 0.0125;

/** Hooks into `TabletopScene.advance` (e.g. to steer a body along its path, then read its state). */
export interface SubstepController {
  /** Before each physics substep; `fraction` ∈ (0, 1]: how far through the env step the end of this substep is. */
  beforeSubstep(fraction: number): void;
  /** After the last substep of the env step. */
  afterAdvance?(): void;
}

export type BodyKind = 'dynamic' | 'fixed' | 'kinematic';

export interface BodyOptions {
  position: Vec3;
  /** Quaternion (x, y, z, w); identity by default. */
  rotation?: readonly [number, number, number, number];
  kind?: BodyKind;
  /** kg/m³ (default 500, light wood). */
  density?: number;
  friction?: number;
  restitution?: number;
  linearDamping?: number;
  angularDamping?: number;
}

const DEFAULT_DENSITY = 500;
const DEFAULT_FRICTION = 1;
/** Rapier's cylinders stand along their local y; this turns them upright in the z-up frame. */
const Y_TO_Z = { x: Math.SQRT1_2, y: 0, z: 0, w: Math.SQRT1_2 };
const Y_TO_X = { x: 0, y: 0, z: -Math.SQRT1_2, w: Math.SQRT1_2 };

/** Material and placement of an extra collider on a body. */
export interface ColliderOptions {
  density?: number;
  friction?: number;
  restitution?: number;
  /** Quaternion (x, y, z, w) of the collider in the body's frame. */
  rotation?: readonly [number, number, number, number];
}

export class TabletopScene {
  readonly world: World;
  /** The fixed table body; a parent for joints anchored to the world. */
  readonly table: RigidBody;
  /** Handles of bodies a gripper holds now (so no other gripper takes them). */
  readonly heldBodies = new Set<number>();
  /** Handles of the grippers' hand bodies (renders tell them apart from the objects). */
  readonly handBodies = new Set<number>();
  private readonly controllers: SubstepController[] = [];
  private freed = false;

  constructor(
    readonly rapier: Rapier,
    readonly substeps: number,
  ) {
    if (!Number.isInteger(substeps) || substeps < 1) throw new Error(`TabletopScene: substeps must be a positive integer, got ${substeps}`);
    this.world = new rapier.World({ x: 0, y: 0, z: -9.81 });
    this.world.timestep = ENV_STEP_SECONDS / substeps;
    const t = TABLE;
    const cx = (t.xMin + t.xMax) / 2;
    const cy = (t.yMin + t.yMax) / 2;
    const hx = (t.xMax - t.xMin) / 2;
    const hy = (t.yMax - t.yMin) / 2;
    this.table = this.world.createRigidBody(rapier.RigidBodyDesc.fixed().setTranslation(cx, cy, 0));
    const top = rapier.ColliderDesc.cuboid(hx, hy, t.thickness / 2).setTranslation(0, 0, -t.thickness / 2).setFriction(DEFAULT_FRICTION);
    this.world.createCollider(top, this.table);
    const r = t.rimThickness / 2;
    const h = t.rimHeight / 2;
    for (const [x, y, ex, ey] of [
      [0, hy + r, hx + 2 * r, r],
      [0, -hy - r, hx + 2 * r, r],
      [hx + r, 0, r, hy],
      [-hx - r, 0, r, hy],
    ] as const) {
      this.world.createCollider(rapier.ColliderDesc.cuboid(ex, ey, h).setTranslation(x, y, h), this.table);
    }
  }

  /** Runs `controller.beforeSubstep` before every physics substep until the scene is freed. */
  addController(controller: SubstepController): void {
    this.controllers.push(controller);
  }

  /** Advances physics by one env step (`substeps` world steps). */
  advance(): void {
    const n = this.substeps;
    const controllers = this.controllers;
    for (let k = 1; k <= n; k++) {
      const fraction = k / n;
      for (let c = 0; c < controllers.length; c++) controllers[c].beforeSubstep(fraction);
      this.world.step();
    }
    for (let c = 0; c < controllers.length; c++) controllers[c].afterAdvance?.();
  }

  /** A body with one box collider (half extents in metres). */
  addBox(halfExtents: Vec3, options: BodyOptions): RigidBody {
    const body = this.createBody(options);
    const desc = this.rapier.ColliderDesc.cuboid(halfExtents[0], halfExtents[1], halfExtents[2]);
    this.attachCollider(desc, body, options);
    return body;
  }

  /** A body with one upright cylinder collider (axis along z). */
  addCylinder(radius: number, halfHeight: number, options: BodyOptions): RigidBody {
    const body = this.createBody(options);
    const desc = this.rapier.ColliderDesc.cylinder(halfHeight, radius).setRotation(Y_TO_Z);
    this.attachCollider(desc, body, options);
    return body;
  }

  /** A bare body; add colliders with `addBoxCollider` (compound objects: a door with its handle). */
  createBody(options: BodyOptions): RigidBody {
    const R = this.rapier;
    const kind = options.kind ?? 'dynamic';
    const desc = kind === 'fixed' ? R.RigidBodyDesc.fixed() : kind === 'kinematic' ? R.RigidBodyDesc.kinematicPositionBased() : R.RigidBodyDesc.dynamic();
    desc.setTranslation(options.position[0], options.position[1], options.position[2]);
    if (options.rotation) desc.setRotation({ x: options.rotation[0], y: options.rotation[1], z: options.rotation[2], w: options.rotation[3] });
    if (options.linearDamping !== undefined) desc.setLinearDamping(options.linearDamping);
    if (options.angularDamping !== undefined) desc.setAngularDamping(options.angularDamping);
    return this.world.createRigidBody(desc);
  }

  /** Adds a box collider to `body`, offset by `offset` (and optionally turned by `rotation`, x y z w) in the body's frame. */
  addBoxCollider(body: RigidBody, halfExtents: Vec3, offset: Vec3, options: ColliderOptions = {}): Collider {
    const desc = this.rapier.ColliderDesc.cuboid(halfExtents[0], halfExtents[1], halfExtents[2]).setTranslation(offset[0], offset[1], offset[2]);
    if (options.rotation) desc.setRotation({ x: options.rotation[0], y: options.rotation[1], z: options.rotation[2], w: options.rotation[3] });
    return this.attachCollider(desc, body, options);
  }

  /** Adds a cylinder collider (a handle, a peg) to `body` with its axis along `axis`, offset by `offset` in the body's frame. */
  addCylinderCollider(body: RigidBody, radius: number, halfHeight: number, offset: Vec3, axis: 'x' | 'y' | 'z' = 'z', options: ColliderOptions = {}): Collider {
    const desc = this.rapier.ColliderDesc.cylinder(halfHeight, radius).setTranslation(offset[0], offset[1], offset[2]);
    if (axis === 'z') desc.setRotation(Y_TO_Z);
    else if (axis === 'x') desc.setRotation(Y_TO_X);
    return this.attachCollider(desc, body, options);
  }

  private attachCollider(desc: ReturnType<Rapier['ColliderDesc']['cuboid']>, body: RigidBody, options: ColliderOptions): Collider {
    desc.setDensity(options.density ?? DEFAULT_DENSITY).setFriction(options.friction ?? DEFAULT_FRICTION);
    if (options.restitution !== undefined) desc.setRestitution(options.restitution);
    return this.world.createCollider(desc, body);
  }

  /** Releases the world's WebAssembly memory; the scene is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.controllers.length = 0;
    this.world.free();
  }
}
