import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import type { Graspable } from '../gripper';
import { writeSoleObject } from '../objects';
import { OBS } from '../observation-layout';
import { PickPlaceReward } from '../pick-place-reward';
import { tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import { positionSchema, sampleObjectAndGoal, type ManipulationTask, type StepView, type TaskEpisode, type TaskEvaluation } from '../task';
import { formatVec3, type Range3, type Vec3 } from '../vec3';

/**
 * basketball (Meta-World basketball-v3): pick a ball up off the table and bring it to the hoop.
 *
 * The hoop is a fixed fixture standing on the table: a pole, a backboard (20 × 2 × 14 cm, centred
 * 0.29 m up) and, 8.3 cm in front of it (−y) at 0.25 m, a ring of 12 box colliders (inner radius
 * 4.7 cm) that a 5 cm ball dropped over its centre falls through, and that stops one dropped
 * off-centre.
 *
 * Observation object block: the ball's centre and orientation (obj1, as Meta-World); obj2 zero.
 * Goal: the ring's centre (as Meta-World observes it).
 *
 * Reward (Meta-World v2): target = ring centre raised to z = 0.3 (just above the ring);
 * d = ‖(ball − target) · (1, 1, 2)‖; in_place = tolerance(d, [0, 0.08], margin d₀, long_tail);
 * caging (ball radius 2.5 cm, pads 6 cm), counted as 1 once the ball is lifted by 1 cm with the
 * TCP within 3.5 cm; r = hamacher(caging, in_place), plus 1 + 5 · in_place while lifted; r = 10
 * once d < 0.08. Success: d ≤ 0.08 (Meta-World). The ball and the hand collide with the hoop (a
 * held ball too, see gripper.ts): the ball reaches the target only from above the ring.
 */
export interface BasketballParams {
  readonly kind: 'basketball';
  /** The ball's centre; z = 0.025 rests it on the table. */
  readonly ballPosition: Vec3;
  /** Where the hoop's pole stands on the table (z = 0). */
  readonly hoopPosition: Vec3;
}

export const BALL_RADIUS = 0.025;
/** The ring's centre relative to the pole's foot. */
export const RING_OFFSET: Vec3 = [0, -0.083, 0.25];
/** Centre line of the ring; its inner edge is 5 mm less. Rapier acts on contacts up to 2 cm away (its default prediction distance), so the ball gets 2 cm of clearance to fall through cleanly. */
export const RING_RADIUS = 0.052;
/** Success target height above the ring's centre. */
export const TARGET_RISE = 0.05;
export const BALL_RANGE: Range3 = { low: [-0.1, 0.6, BALL_RADIUS], high: [0.1, 0.7, BALL_RADIUS] };
export const HOOP_RANGE: Range3 = { low: [-0.1, 0.85, 0], high: [0.1, 0.9, 0] };
const TARGET_RADIUS = 0.08;
const RING_SEGMENTS = 12;

export const basketballTask: ManipulationTask<BasketballParams> = {
  kind: 'basketball',
  description: 'Pick up a ball and bring it into a basketball hoop (Meta-World basketball)',
  paramsSchema: z
    .object({
      kind: z.literal('basketball'),
      ballPosition: positionSchema([-0.6, 0.35, 0], [0.6, 1.05, 0.3]),
      hoopPosition: positionSchema([-0.55, 0.45, 0], [0.55, 1.05, 0]),
    })
    .strict() as unknown as z.ZodType<BasketballParams>,
  sampleParams(rng: Rng): BasketballParams {
    const { object, goal } = sampleObjectAndGoal(rng, BALL_RANGE, HOOP_RANGE);
    return { kind: 'basketball', ballPosition: object, hoopPosition: goal };
  },
  setup(scene: TabletopScene, params: BasketballParams): TaskEpisode {
    const ballBody = scene.createBody({ position: params.ballPosition, angularDamping: 0.5 });
    scene.world.createCollider(scene.rapier.ColliderDesc.ball(BALL_RADIUS).setDensity(300).setFriction(1), ballBody);
    const ball: Graspable = { body: ballBody, gripWidth: 2 * BALL_RADIUS, halfHeight: BALL_RADIUS };
    createHoop(scene, params.hoopPosition);
    const [hx, hy, hz] = params.hoopPosition;
    const goal: Vec3 = [hx + RING_OFFSET[0], hy + RING_OFFSET[1], hz + RING_OFFSET[2]];
    const target: Vec3 = [goal[0], goal[1], goal[2] + TARGET_RISE];
    const initObject = Float64Array.from(params.ballPosition);
    const object = new Float64Array(3);
    const inPlaceMargin = scaledDistance(initObject, target);
    const shaping = new PickPlaceReward(
      { objectRadius: BALL_RADIUS, padSuccessThreshold: 0.06, xzThreshold: 0.005, highDensity: true, carryRadius: 0.035, carriedIsGrasped: true },
      object,
      initObject,
    );
    return {
      goal,
      graspables: [ball],
      writeObjects: (out, offset) => writeSoleObject(ballBody, out, offset),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        for (let i = 0; i < 3; i++) object[i] = f[OBS.OBJ1_POS + i];
        const tcpOpened = f[OBS.GRIPPER];
        const tcp = view.gripper.position;
        const tcpToObject = Math.hypot(tcp[0] - object[0], tcp[1] - object[1], tcp[2] - object[2]);
        const toTarget = scaledDistance(object, target);
        const inPlace = tolerance(toTarget, 0, TARGET_RADIUS, inPlaceMargin, 'long_tail');
        const success = toTarget <= TARGET_RADIUS;
        out.reward = shaping.score(view, tcpToObject, inPlace, success);
        out.success = success;
        out.nearObject = tcpToObject <= 0.05;
        out.graspSuccess = tcpOpened > 0 && object[2] - 0.03 > initObject[2];
        out.graspReward = shaping.grasp;
        out.inPlaceReward = inPlace;
        out.objToTarget = toTarget;
      },
      describe: () => `ball ${formatVec3(ballBody.translation())}${scene.heldBodies.has(ballBody.handle) ? ' (held)' : ''}, ring ${formatVec3(goal)}`,
    };
  },
};

/** The fixed hoop: pole, backboard and a ring of box segments (see the header). */
function createHoop(scene: TabletopScene, foot: Vec3): void {
  const R = scene.rapier;
  const hoop = scene.createBody({ position: foot, kind: 'fixed' });
  scene.addBoxCollider(hoop, [0.007, 0.007, 0.11], [0, 0, 0.11]);
  scene.addBoxCollider(hoop, [0.1, 0.01, 0.07], [0, 0, 0.29]);
  const [rx, ry, rz] = RING_OFFSET;
  // The bracket from the backboard to the ring's back.
  scene.addBoxCollider(hoop, [0.01, (-ry - RING_RADIUS - 0.01) / 2, 0.004], [rx, (ry + RING_RADIUS - 0.01) / 2, rz]);
  const segmentHalfLength = RING_RADIUS * Math.tan(Math.PI / RING_SEGMENTS) + 0.002;
  for (let k = 0; k < RING_SEGMENTS; k++) {
    const angle = (2 * Math.PI * k) / RING_SEGMENTS;
    // Each segment lies tangent to the ring: its long (x) axis turned to angle + 90°.
    const turn = angle + Math.PI / 2;
    const desc = R.ColliderDesc.cuboid(segmentHalfLength, 0.005, 0.004)
      .setTranslation(rx + RING_RADIUS * Math.cos(angle), ry + RING_RADIUS * Math.sin(angle), rz)
      .setRotation({ x: 0, y: 0, z: Math.sin(turn / 2), w: Math.cos(turn / 2) })
      .setFriction(0.5);
    scene.world.createCollider(desc, hoop);
  }
}

function scaledDistance(a: ArrayLike<number>, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], 2 * (a[2] - b[2]));
}
