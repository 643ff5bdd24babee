import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import type { Graspable } from '../gripper';
import { writeSoleObject } from '../objects';
import { OBS } from '../observation-layout';
import { PickPlaceReward } from '../pick-place-reward';
import { hamacherProduct, tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import { PLACEABLE, positionSchema, uniformIn, type ManipulationTask, type StepView, type TaskEpisode, type TaskEvaluation } from '../task';
import { formatVec3, type Range3, type Vec3 } from '../vec3';

/**
 * peg-insert-side (Meta-World peg-insert-side-v3): grasp a peg lying on the table and insert it
 * sideways into the hole in the side of a box fixed on the table.
 *
 * Geometry (Meta-World's peg_block, turned so the hole faces +x):
 * - Peg: a 24 × 3 × 3 cm bar lying along x; its head is 10 cm from its centre towards −x.
 * - Box: fixed, 19.2 cm deep (x) and 20 cm wide (y), built from box colliders around a 6 × 6 cm
 *   square hole whose opening is in the box's +x face at height 0.10–0.16 m, centred on the box's
 *   y; the hole is blind (a back wall 18 cm in), so an inserted peg rests in it.
 * - Goal (the hole's target): box position + (0.03, 0, 0.13), 6.6 cm inside the opening.
 *
 * Observation object block: the peg's centre and orientation (obj1); obj2 zero. Meta-World reports
 * its `pegGrasp` site, 3 cm behind the centre; here the centre is where the pads pinch it.
 *
 * Reward (Meta-World v2): head-to-target distance d = ‖(head − goal) · (1, 2, 2)‖ (y and z weigh
 * double: the peg must be level with the hole), in_place = tolerance(d, [0, 0.07], margin d₀,
 * long_tail), damped (Hamacher) by Meta-World's two "collision box" regions in front of the box
 * face below and above the hole; caging as pick-place (pads 3 cm, peg radius 7.5 mm), counted as
 * 1 once the peg is lifted by 1 cm with the TCP within 8 cm; r = hamacher(caging, in_place), plus
 * 1 + 5 · in_place while lifted; r = 10 once d ≤ 0.07.
 *
 * Success: d ≤ 0.07 (Meta-World). The held peg collides with the box (see the grasp rule in
 * gripper.ts): pushed against the face beside the hole it stops there, so it can only reach the
 * target through the opening.
 */
export interface PegInsertSideParams {
  readonly kind: 'peg-insert-side';
  /** The peg's centre; z = 0.015 rests it on the table. */
  readonly pegPosition: Vec3;
  /** The box's base centre on the table (z = 0); the goal is derived from it. */
  readonly boxPosition: Vec3;
}

export const PEG_HALF: Vec3 = [0.12, 0.015, 0.015];
/** The peg's head, from its centre along its long axis (−x). */
export const PEG_HEAD_OFFSET = -0.1;
/** The goal relative to the box's base centre. */
export const HOLE_TARGET_OFFSET: Vec3 = [0.03, 0, 0.13];
/** Hole cross-section: y within ±HOLE_HALF_WIDTH of the box's centre, z between HOLE_Z_LOW and HOLE_Z_HIGH. */
export const HOLE_HALF_WIDTH = 0.03;
export const HOLE_Z_LOW = 0.1;
export const HOLE_Z_HIGH = 0.16;
/** Half the box's depth along x: the opening is at box.x + BOX_HALF_DEPTH. */
export const BOX_HALF_DEPTH = 0.096;

export const PEG_RANGE: Range3 = { low: [0, 0.5, 0.015], high: [0.2, 0.7, 0.015] };
export const BOX_RANGE: Range3 = { low: [-0.35, 0.4, 0], high: [-0.25, 0.7, 0] };
const SUCCESS_RADIUS = 0.07;
const SCALE: Vec3 = [1, 2, 2];

export const pegInsertSideTask: ManipulationTask<PegInsertSideParams> = {
  kind: 'peg-insert-side',
  description: 'Grasp a peg and insert it sideways into the hole of a box fixed on the table (Meta-World peg-insert-side)',
  paramsSchema: z
    .object({
      kind: z.literal('peg-insert-side'),
      pegPosition: positionSchema(PLACEABLE.low, PLACEABLE.high),
      boxPosition: positionSchema([-0.55, 0.4, 0], [0.55, 1.0, 0]),
    })
    .strict() as unknown as z.ZodType<PegInsertSideParams>,
  sampleParams(rng: Rng): PegInsertSideParams {
    // Meta-World redraws until peg and box are 10 cm apart in the plane; these ranges always are.
    return { kind: 'peg-insert-side', pegPosition: uniformIn(rng, PEG_RANGE), boxPosition: uniformIn(rng, BOX_RANGE) };
  },
  setup(scene: TabletopScene, params: PegInsertSideParams): TaskEpisode {
    const pegBody = scene.addBox(PEG_HALF, { position: params.pegPosition, density: 500, friction: 1 });
    const peg: Graspable = { body: pegBody, gripWidth: 2 * PEG_HALF[1], halfHeight: PEG_HALF[2] };
    createHoleBox(scene, params.boxPosition);
    const [bx, by] = params.boxPosition;
    const goal: Vec3 = [bx + HOLE_TARGET_OFFSET[0], by + HOLE_TARGET_OFFSET[1], params.boxPosition[2] + HOLE_TARGET_OFFSET[2]];
    // Meta-World's regions in front of the box face, below and above the hole ("one" corner, "zero" corner).
    const below = { one: [bx + 0.15, by - 0.1, 0.096], zero: [bx + 0.11, by + 0.1, 0.01] } as const;
    const above = { one: [bx + 0.17, by - 0.1, 0.19], zero: [bx + 0.11, by + 0.1, 0.16] } as const;
    const initObject = Float64Array.from(params.pegPosition);
    const object = new Float64Array(3);
    const head = new Float64Array(3);
    headOf(pegBody, head);
    const inPlaceMargin = scaledDistance(head, goal);
    const shaping = new PickPlaceReward(
      { objectRadius: 0.0075, padSuccessThreshold: 0.03, xzThreshold: 0.005, highDensity: true, carryRadius: 0.08, carriedIsGrasped: true },
      object,
      initObject,
    );
    return {
      goal,
      graspables: [peg],
      writeObjects: (out, offset) => writeSoleObject(pegBody, out, offset),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        for (let i = 0; i < 3; i++) object[i] = f[OBS.OBJ1_POS + i];
        headOf(pegBody, head);
        const tcpOpened = f[OBS.GRIPPER];
        const tcp = view.gripper.position;
        const tcpToObject = Math.hypot(tcp[0] - object[0], tcp[1] - object[1], tcp[2] - object[2]);
        const headToTarget = scaledDistance(head, goal);
        let inPlace = tolerance(headToTarget, 0, SUCCESS_RADIUS, inPlaceMargin, 'long_tail');
        const inFront = hamacherProduct(rectPrismTolerance(head, above.zero, above.one), rectPrismTolerance(head, below.zero, below.one));
        inPlace = hamacherProduct(inPlace, inFront);
        const success = headToTarget <= SUCCESS_RADIUS;
        out.reward = shaping.score(view, tcpToObject, inPlace, success);
        out.success = success;
        out.nearObject = tcpToObject <= 0.03;
        out.graspSuccess = tcpToObject < 0.02 && tcpOpened > 0 && object[2] - 0.01 > initObject[2];
        out.graspReward = shaping.grasp;
        out.inPlaceReward = inPlace;
        out.objToTarget = headToTarget;
      },
      describe: () => {
        headOf(pegBody, head);
        return `peg head ${formatVec3(head)}${scene.heldBodies.has(pegBody.handle) ? ' (held)' : ''}, hole target ${formatVec3(goal)}`;
      },
    };
  },
};

/** The fixed box with the side hole, its colliders laid out around the opening (see the header). */
function createHoleBox(scene: TabletopScene, base: Vec3): void {
  const [x, y, z0] = base;
  const box = scene.createBody({ position: [x, y, z0], kind: 'fixed' });
  const d = BOX_HALF_DEPTH;
  const w = HOLE_HALF_WIDTH;
  const sideHalfWidth = 0.03;
  // Below the hole, beside it (left and right), above it, and the box's two outer side walls.
  scene.addBoxCollider(box, [d, 0.09, HOLE_Z_LOW / 2], [0, 0, HOLE_Z_LOW / 2]);
  const midHalfZ = (HOLE_Z_HIGH - HOLE_Z_LOW) / 2;
  const midZ = (HOLE_Z_HIGH + HOLE_Z_LOW) / 2;
  scene.addBoxCollider(box, [d, sideHalfWidth, midHalfZ], [0, w + sideHalfWidth, midZ]);
  scene.addBoxCollider(box, [d, sideHalfWidth, midHalfZ], [0, -w - sideHalfWidth, midZ]);
  scene.addBoxCollider(box, [d, 0.09, 0.02], [0, 0, HOLE_Z_HIGH + 0.02]);
  scene.addBoxCollider(box, [0.1, 0.005, 0.1], [0, 0.095, 0.1]);
  scene.addBoxCollider(box, [0.1, 0.005, 0.1], [0, -0.095, 0.1]);
  // The blind end of the hole.
  scene.addBoxCollider(box, [0.006, w, midHalfZ], [-d + 0.006, 0, midZ]);
}

/** The peg's head: its centre plus the body's rotation applied to (PEG_HEAD_OFFSET, 0, 0). */
function headOf(peg: RigidBody, out: Float64Array): void {
  const t = peg.translation();
  const q = peg.rotation();
  const a = PEG_HEAD_OFFSET;
  out[0] = t.x + a * (1 - 2 * (q.y * q.y + q.z * q.z));
  out[1] = t.y + a * 2 * (q.x * q.y + q.w * q.z);
  out[2] = t.z + a * 2 * (q.x * q.z - q.w * q.y);
}

function scaledDistance(a: ArrayLike<number>, b: Vec3): number {
  return Math.hypot((a[0] - b[0]) * SCALE[0], (a[1] - b[1]) * SCALE[1], (a[2] - b[2]) * SCALE[2]);
}

/**
 * Meta-World's `rect_prism_tolerance`: inside the box spanned by corners `zero` and `one`, the
 * product of the point's fractions of the way from `zero` to `one` on each axis; outside, 1.
 */
export function rectPrismTolerance(p: ArrayLike<number>, zero: readonly number[], one: readonly number[]): number {
  let product = 1;
  for (let i = 0; i < 3; i++) {
    const lo = Math.min(zero[i], one[i]);
    const hi = Math.max(zero[i], one[i]);
    if (p[i] < lo || p[i] > hi) return 1;
    product *= (p[i] - zero[i]) / (one[i] - zero[i]);
  }
  return product;
}
