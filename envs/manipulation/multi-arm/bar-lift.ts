import type { RigidBody } from '@dimforge/rapier3d-deterministic-compat';
import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import { DEFAULT_GRIPPER_CONFIG, type GripperConfig, type Graspable } from '../gripper';
import { tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import { PLACEABLE, positionSchema, uniformIn } from '../task';
import { distance3, formatVec3, type Range3, type Vec3 } from '../vec3';
import { addHandle } from './handles';
import type { MultiArmEpisode, MultiArmEvaluation, MultiArmStepView, MultiArmTask } from './multi-arm-task';

/**
 * bar-lift (N arms, N = 2 … 6): a long bar rests on the table along x with N grasp points
 * (handles); the arms must lift it level to a target height.
 *
 * - Pivot rule: each handle is joined to the bar by a ball joint (handles.ts), so a gripper
 *   holding a handle carries that point of the bar but not its orientation: the bar turns freely
 *   about every grasp point. (The core grasp rule welds the handle to the hand; the pivot is
 *   between handle and bar.)
 * - N = 2 (`bar-lift`): one rigid bar, 50 cm long, handles 5 cm in from its ends (40 cm apart).
 *   One gripper lifting one end only tilts the bar about its other end, which stays on the table
 *   (its handle rises by at most 5 cm · sin(tilt), far below any target height).
 * - N ≥ 3 (`bar-lift-<N>arms`): the bar is N rigid segments of length ℓ = min(0.3, 1/N) m laid
 *   end to end, handle i at the centre of segment i, neighbouring ends linked by slack links
 *   (rope joints, at most 10 cm apart). A segment nobody holds hangs on its links at least ~10 cm
 *   below its held neighbours (or sinks to the table as they pivot about their grasp points), so
 *   its handle cannot be within the 3 cm band with theirs: every arm is needed. Rigid hinges would
 *   not do: a chain held at two points at full stretch is taut and is lifted whole.
 * - Workspaces: arm i's TCP x stays within ±min(0.15, spacing/2 − 0.01) m of handle i's nominal
 *   x (the bar's centre is placed within ±4 cm of x = 0), so each arm can only take its own handle.
 * - Ranges: bar centre x ∈ [−0.04, 0.04], y ∈ [0.55, 0.75] (resting, z = 0.02); target height
 *   (the goal's z) ∈ [0.12, 0.22]; the goal is (bar centre x, y, target height).
 * - Object block (K = N): handle i's position, then the quaternion of the segment it is on.
 * - Success: every handle within 3 cm of the target height (lifted, and so level).
 * - Reward (shared, in [0, 10]), with reach_i = 1 when arm i holds a handle, else
 *   tolerance(‖TCP_i − handle_i‖, [0, 0.02], margin 0.3), and lift_i = tolerance(z_i,
 *   [target − 0.03, target + 0.03], margin target − 0.02): r = 2·mean(reach) +
 *   3·mean(held_i · lift_i) + 4·min(lift), and r = 10 on success. The min term pays only for
 *   lifting the whole bar.
 */
export interface BarLiftParams {
  readonly kind: 'bar-lift';
  /** The bar's centre at the start (z 0.02 rests it on the table; higher drops it). */
  readonly barPosition: Vec3;
  /** The height every handle must reach. */
  readonly targetHeight: number;
}

export const BAR_LIFT_MAX_ARMS = 6;
/** Bar cross-section half extents (y, z). */
export const BAR_HALF_Y = 0.02;
export const BAR_HALF_Z = 0.02;
/** Longest distance between the facing ends of neighbouring segments (N ≥ 3). */
export const BAR_LINK_SLACK = 0.1;
/** How far the bar extends beyond its outermost handles (N = 2). */
export const BAR_END_OVERHANG = 0.05;
export const BAR_LIFT_BAR_RANGE: Range3 = { low: [-0.04, 0.55, BAR_HALF_Z], high: [0.04, 0.75, BAR_HALF_Z] };
export const BAR_LIFT_HEIGHT_RANGE: readonly [number, number] = [0.12, 0.22];
const HEIGHT_TOLERANCE = 0.03;

/** Distance between neighbouring handles for N arms (for N ≥ 3 also the segment length). */
export function barHandleSpacing(numArms: number): number {
  return numArms === 2 ? 0.4 : Math.min(0.3, 1 / numArms);
}

/** Handle i's x relative to the bar's centre. */
export function barHandleOffset(numArms: number, i: number): number {
  return (i - (numArms - 1) / 2) * barHandleSpacing(numArms);
}

function armConfig(numArms: number, i: number): GripperConfig {
  const x = barHandleOffset(numArms, i);
  const half = Math.min(0.15, barHandleSpacing(numArms) / 2 - 0.01);
  return { ...DEFAULT_GRIPPER_CONFIG, handLow: [x - half, 0.4, 0.025], handHigh: [x + half, 1.0, 0.5], handInit: [x, 0.5, 0.2] };
}

const tasks = new Map<number, MultiArmTask<BarLiftParams>>();

/** The bar-lift task for `numArms` arms (2 … BAR_LIFT_MAX_ARMS). */
export function barLiftTask(numArms: number): MultiArmTask<BarLiftParams> {
  if (!Number.isInteger(numArms) || numArms < 2 || numArms > BAR_LIFT_MAX_ARMS) throw new Error(`bar-lift: numArms must be an integer from 2 to ${BAR_LIFT_MAX_ARMS}, got ${numArms}`);
  let task = tasks.get(numArms);
  if (!task) {
    task = makeBarLiftTask(numArms);
    tasks.set(numArms, task);
  }
  return task;
}

function makeBarLiftTask(numArms: number): MultiArmTask<BarLiftParams> {
  const N = numArms;
  return {
    kind: 'bar-lift',
    description:
      N === 2
        ? 'Two arms lift a bar level to a target height; grasps are pivots, so one arm alone only tilts it'
        : `${N} arms lift a bar of ${N} linked segments level to a target height; an unheld segment hangs low`,
    numArms: N,
    numObjects: N,
    defaultHorizon: 150,
    grippers: Array.from({ length: N }, (_, i) => armConfig(N, i)),
    paramsSchema: z
      .object({
        kind: z.literal('bar-lift'),
        barPosition: positionSchema(PLACEABLE.low, PLACEABLE.high),
        targetHeight: z.number().finite().min(0.06, { message: 'targetHeight must be ≥ 0.06' }).max(0.45, { message: 'targetHeight must be ≤ 0.45' }),
      })
      .strict() as unknown as z.ZodType<BarLiftParams>,
    sampleParams(rng: Rng): BarLiftParams {
      const barPosition = uniformIn(rng, BAR_LIFT_BAR_RANGE);
      return { kind: 'bar-lift', barPosition, targetHeight: rng.uniform(BAR_LIFT_HEIGHT_RANGE[0], BAR_LIFT_HEIGHT_RANGE[1]) };
    },
    setup: (scene, params) => setupBar(scene, params, N),
  };
}

function setupBar(scene: TabletopScene, params: BarLiftParams, N: number): MultiArmEpisode {
  const [cx, cy, cz] = params.barPosition;
  const target = params.targetHeight;
  const xs = Array.from({ length: N }, (_, i) => cx + barHandleOffset(N, i));
  const segments: RigidBody[] = [];
  const segment = (x0: number, x1: number) =>
    scene.addBox([(x1 - x0) / 2, BAR_HALF_Y, BAR_HALF_Z], { position: [(x0 + x1) / 2, cy, cz], density: 500, friction: 1, angularDamping: 1 });
  if (N === 2) {
    segments.push(segment(xs[0] - BAR_END_OVERHANG, xs[1] + BAR_END_OVERHANG));
  } else {
    const half = barHandleSpacing(N) / 2;
    for (let i = 0; i < N; i++) segments.push(segment(xs[i] - half, xs[i] + half));
    const R = scene.rapier;
    for (let i = 1; i < N; i++) {
      const link = R.JointData.rope(BAR_LINK_SLACK, { x: half, y: 0, z: 0 }, { x: -half, y: 0, z: 0 });
      scene.world.createImpulseJoint(link, segments[i - 1], segments[i], true).setContactsEnabled(false);
    }
  }
  const segmentOf = (i: number) => segments[Math.min(i, segments.length - 1)];
  const handles: Graspable[] = xs.map((x, i) => addHandle(scene, { object: segmentOf(i), point: [x, cy, cz], joint: 'ball', gripWidth: 2 * BAR_HALF_Y, halfHeight: BAR_HALF_Z }));
  const goal: Vec3 = [cx, cy, target];
  const liftMargin = Math.max(0.01, target - BAR_HALF_Z);
  return {
    goal,
    graspables: handles,
    writeObjects(out, offset) {
      for (let i = 0; i < N; i++) {
        const t = handles[i].body.translation();
        const q = segmentOf(i).rotation();
        const sign = q.w < 0 ? -1 : 1;
        const at = offset + 7 * i;
        out[at] = t.x;
        out[at + 1] = t.y;
        out[at + 2] = t.z;
        out[at + 3] = sign * q.x;
        out[at + 4] = sign * q.y;
        out[at + 5] = sign * q.z;
        out[at + 6] = sign * q.w;
      }
    },
    evaluate(view: MultiArmStepView, out: MultiArmEvaluation) {
      let reach = 0;
      let heldLift = 0;
      let minLift = 1;
      let worst = 0;
      let holding = 0;
      let allInBand = true;
      for (let i = 0; i < N; i++) {
        const g = view.grippers[i];
        const t = handles[i].body.translation();
        const held = g.held !== null;
        if (held) holding++;
        reach += held ? 1 : tolerance(distance3(g.position[0], g.position[1], g.position[2], t.x, t.y, t.z), 0, 0.02, 0.3, 'long_tail');
        const lift = tolerance(t.z, target - HEIGHT_TOLERANCE, target + HEIGHT_TOLERANCE, liftMargin, 'long_tail');
        if (held) heldLift += lift;
        if (lift < minLift) minLift = lift;
        const error = Math.abs(t.z - target);
        if (error > worst) worst = error;
        if (error > HEIGHT_TOLERANCE) allInBand = false;
      }
      out.success = allInBand;
      out.reward = allInBand ? 10 : (2 * reach) / N + (3 * heldLift) / N + 4 * minLift;
      out.objToTarget = worst;
      out.armsHolding = holding;
    },
    describe: () =>
      `handles ${handles.map((h) => `${formatVec3(h.body.translation())}${scene.heldBodies.has(h.body.handle) ? '*' : ''}`).join(' ')} (* held), target height ${target.toFixed(3)}`,
  };
}
