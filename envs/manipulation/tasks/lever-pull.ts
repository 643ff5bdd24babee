import type { Rng } from '../../../runtime/core/rng';
import { writeEmpty, writePose } from '../objects';
import { OBS } from '../observation-layout';
import { hamacherProduct, tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Range3, type Vec3 } from '../vec3';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';
import { createLever, LEVER } from './lever-fixture';

/**
 * lever-pull (Meta-World lever-pull-v3): lift a lever (lever-fixture.ts) from level, pointing at
 * the robot, until it points straight up.
 *
 * - Params: the lever's position, x ∈ [−0.1, 0.1], y ∈ [0.7, 0.8], z = 0 (Meta-World's range).
 * - Goal: where the knob is with the lever upright, position + (0.12, 0, 0.25 + 0.2).
 * - Observation object block: obj1 = the knob's centre (Meta-World's `leverStart`) and the lever's
 *   quaternion (x, y, z, w: a turn about −x by the lever angle); obj2 zero.
 * - Reward (Meta-World v2): ready = tolerance(‖(tcp + (0, 0.055, 0.07) − knob)·(4, 1, 4)‖, [0,
 *   0.02], margin its initial value, long_tail) — the hand under the knob, ready to lift it;
 *   in_place = tolerance(‖knob − goal‖, [0, 0.04], margin its initial value, long_tail);
 *   r = 10·hamacher(ready, in_place).
 * - Success (Meta-World): |lever angle − π/2| ≤ π/24. `obj_to_target` reports that angle error
 *   (rad), the quantity the success criterion thresholds (Meta-World reports the hand-to-knob term).
 * - The hand starts at Meta-World's (0, 0.4, 0.2), clear of the knob.
 */
export type LeverPullParams = FixtureParams<'lever-pull'>;

export const LEVER_RANGE: Range3 = { low: [-0.1, 0.7, 0], high: [0.1, 0.8, 0] };
const SUCCESS_ANGLE = Math.PI / 24;
const SHOULDER: Vec3 = [0, 0.055, 0.07];
const SHOULDER_SCALE: Vec3 = [4, 1, 4];

export const leverPullTask: ManipulationTask<LeverPullParams> = {
  kind: 'lever-pull',
  description: 'Lift a lever on a hinge until it points straight up (Meta-World lever-pull)',
  paramsSchema: fixtureParamsSchema('lever-pull', LEVER_RANGE),
  gripper: { handInit: [0, 0.4, 0.2] },
  sampleParams: (rng: Rng) => sampleFixtureParams('lever-pull', rng, LEVER_RANGE),
  setup(scene: TabletopScene, params: LeverPullParams): TaskEpisode {
    const p = params.fixturePosition;
    const lever = createLever(scene, p);
    const [hx, hy, hz] = lever.hingePoint;
    const goal: Vec3 = [hx, hy, hz + LEVER.radius];
    const knob0: Vec3 = [hx, hy - LEVER.radius, hz];
    const knobLocal: Vec3 = [LEVER.hinge[0], LEVER.hinge[1] - LEVER.radius, LEVER.hinge[2]];
    const inPlaceMargin = distance3(knob0[0], knob0[1], knob0[2], goal[0], goal[1], goal[2]);
    let readyMargin = -1;
    let angle = 0;
    const shoulderDistance = (tx: number, ty: number, tz: number, kx: number, ky: number, kz: number) =>
      Math.hypot((tx + SHOULDER[0] - kx) * SHOULDER_SCALE[0], (ty + SHOULDER[1] - ky) * SHOULDER_SCALE[1], (tz + SHOULDER[2] - kz) * SHOULDER_SCALE[2]);
    return {
      goal,
      graspables: [],
      writeObjects(out, offset) {
        angle = lever.angle();
        // The knob from the lever's pose (not from the angle), so the observation shows what the body does.
        writePose(lever.body, out, offset);
        rotateInto(out, offset + 3, knobLocal, out, offset);
        writeEmpty(out, offset + 7, 7);
      },
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        const t = view.initTcp;
        if (readyMargin < 0) readyMargin = shoulderDistance(t[0], t[1], t[2], knob0[0], knob0[1], knob0[2]);
        const kx = f[OBS.OBJ1_POS];
        const ky = f[OBS.OBJ1_POS + 1];
        const kz = f[OBS.OBJ1_POS + 2];
        const shoulder = shoulderDistance(f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2], kx, ky, kz);
        const ready = tolerance(shoulder, 0, 0.02, readyMargin, 'long_tail');
        const knobToGoal = distance3(kx, ky, kz, goal[0], goal[1], goal[2]);
        const inPlace = tolerance(knobToGoal, 0, 0.04, inPlaceMargin, 'long_tail');
        const error = Math.abs(angle - Math.PI / 2);
        out.reward = 10 * hamacherProduct(ready, inPlace);
        out.success = error <= SUCCESS_ANGLE;
        out.nearObject = shoulder < 0.03;
        out.graspSuccess = ready > 0.9;
        out.graspReward = ready;
        out.inPlaceReward = inPlace;
        out.objToTarget = error;
      },
      describe: () => `lever at ${lever.angle().toFixed(3)} rad (goal π/2), hinge ${formatVec3(lever.hingePoint)}`,
    };
  },
};

/** Adds the vector `v` turned by the quaternion (x, y, z, w) at `q[qi]` to the triple at `out[oi]`. */
function rotateInto(q: Float64Array, qi: number, v: Vec3, out: Float64Array, oi: number): void {
  const x = q[qi];
  const y = q[qi + 1];
  const z = q[qi + 2];
  const w = q[qi + 3];
  // v' = v + 2w (q × v) + 2 q × (q × v)
  const cx = y * v[2] - z * v[1];
  const cy = z * v[0] - x * v[2];
  const cz = x * v[1] - y * v[0];
  out[oi] += v[0] + 2 * (w * cx + y * cz - z * cy);
  out[oi + 1] += v[1] + 2 * (w * cy + z * cx - x * cz);
  out[oi + 2] += v[2] + 2 * (w * cz + x * cy - y * cx);
}
