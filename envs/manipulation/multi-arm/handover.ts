import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import { DEFAULT_GRIPPER_CONFIG, type GripperConfig, type Graspable } from '../gripper';
import { writePose } from '../objects';
import { tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import { PLACEABLE, positionSchema, sampleObjectAndGoal } from '../task';
import { distance3, formatVec3, type Range3, type Vec3 } from '../vec3';
import { addHandle, rotateInto } from './handles';
import type { MultiArmEpisode, MultiArmEvaluation, MultiArmStepView, MultiArmTask } from './multi-arm-task';

/**
 * handover (two arms): a baton (a 18 × 4 × 4 cm block along x) lies on arm_0's side of the table;
 * arm_1 must hold it at a goal in the air on its own side.
 *
 * - Workspaces (TCP x): arm_0 reaches only x ≤ 0.05, arm_1 only x ≥ −0.05; the handover zone is
 *   their overlap. The baton starts at x ∈ [−0.35, −0.2] (out of arm_1's reach), the goal is at
 *   x ∈ [0.25, 0.4] (arm_0 can bring the baton's centre to x ≤ 0.1 at most).
 * - Grasp points: two handles 5 cm either side of the baton's centre (A at −x, B at +x), welded to
 *   it (`fixed`, see handles.ts), so each arm holds it at its own handle and carries it level.
 *   The intended solution: arm_0 grasps A and brings the baton to the zone; arm_1 grasps B; arm_0
 *   lets go; arm_1 carries the baton to the goal.
 * - Object block (K = 1): the baton's centre and quaternion.
 * - Success: arm_1 holds the baton (at either handle), arm_0 does not, and the baton's centre is
 *   within 7 cm of the goal (Meta-World pick-place's threshold).
 * - Reward (shared, in [0, 10]; staged Meta-World-like shaping with `tolerance`):
 *     reach0 = 1 if arm_0 or arm_1 holds a handle, else tolerance(‖TCP₀ − A‖, [0, 0.02], margin 0.3)
 *     zone   = tolerance(baton x, [HANDOVER_X, ∞), margin 0.3), 1 once arm_1 holds it
 *     reach1 = 1 if arm_1 holds a handle, else tolerance(‖TCP₁ − B‖, [0, 0.02], margin 0.3)
 *     place  = tolerance(‖baton − goal‖, [0, 0.05], margin ‖handover point − goal‖) while arm_1 holds it, else 0
 *     r = reach0 + 2·zone + 2·reach1 + 5·place, and r = 10 on success.
 *   reach0 and zone stay at 1 while arm_1 holds the baton: arm_0 must let go and arm_1 carries
 *   the baton away, so paying for arm_0's distance to A or the baton's x then would punish the
 *   release the task requires.
 */
export interface HandoverParams {
  readonly kind: 'handover';
  /** The baton's centre at the start (it rests on the table, or drops onto it). */
  readonly objectPosition: Vec3;
  readonly goalPosition: Vec3;
}

export const HANDOVER_OBJECT_RANGE: Range3 = { low: [-0.35, 0.55, 0.02], high: [-0.2, 0.75, 0.02] };
export const HANDOVER_GOAL_RANGE: Range3 = { low: [0.25, 0.55, 0.1], high: [0.4, 0.8, 0.25] };
/** Baton half extents (x, y, z). */
export const BATON_HALF: Vec3 = [0.09, 0.02, 0.02];
/** Handles A and B sit at ∓ this along the baton's x axis. */
export const BATON_HANDLE_OFFSET = 0.05;
/** arm_0's largest and arm_1's smallest TCP x. */
export const ARM0_X_MAX = 0.05;
export const ARM1_X_MIN = -0.05;
/** The baton's centre x at which both arms reach their handles (the middle of the zone). */
export const HANDOVER_X = 0;
const SUCCESS_RADIUS = 0.07;
const TARGET_RADIUS = 0.05;

const ARM0: GripperConfig = { ...DEFAULT_GRIPPER_CONFIG, handLow: [-0.5, 0.4, 0.025], handHigh: [ARM0_X_MAX, 1.0, 0.5], handInit: [-0.25, 0.55, 0.2] };
const ARM1: GripperConfig = { ...DEFAULT_GRIPPER_CONFIG, handLow: [ARM1_X_MIN, 0.4, 0.025], handHigh: [0.5, 1.0, 0.5], handInit: [0.25, 0.55, 0.2] };

export const handoverTask: MultiArmTask<HandoverParams> = {
  kind: 'handover',
  description: 'Two arms: arm_0 picks a baton up on its side and hands it to arm_1, which holds it at a goal beyond arm_0’s reach',
  numArms: 2,
  numObjects: 1,
  defaultHorizon: 200,
  grippers: [ARM0, ARM1],
  paramsSchema: z
    .object({ kind: z.literal('handover'), objectPosition: positionSchema(PLACEABLE.low, PLACEABLE.high), goalPosition: positionSchema() })
    .strict() as unknown as z.ZodType<HandoverParams>,
  sampleParams(rng: Rng): HandoverParams {
    const { object, goal } = sampleObjectAndGoal(rng, HANDOVER_OBJECT_RANGE, HANDOVER_GOAL_RANGE);
    return { kind: 'handover', objectPosition: object, goalPosition: goal };
  },
  setup(scene: TabletopScene, params: HandoverParams): MultiArmEpisode {
    const [x, y, z] = params.objectPosition;
    const baton = scene.addBox(BATON_HALF, { position: [x, y, z], density: 500, friction: 1, angularDamping: 1 });
    const handle = (dx: number): Graspable =>
      addHandle(scene, { object: baton, point: [x + dx, y, z], joint: 'fixed', gripWidth: 2 * BATON_HALF[1], halfHeight: BATON_HALF[2] });
    const handleA = handle(-BATON_HANDLE_OFFSET);
    const handleB = handle(BATON_HANDLE_OFFSET);
    const goal = params.goalPosition;
    const placeMargin = distance3(HANDOVER_X, goal[1], 0.15, goal[0], goal[1], goal[2]);
    const offset = new Float64Array(3);
    const pointOf = (h: Graspable) => h.body.translation();
    const holds = (armHolds: Graspable | null) => armHolds === handleA || armHolds === handleB;
    return {
      goal,
      graspables: [handleA, handleB],
      writeObjects(out, at) {
        writePose(baton, out, at);
      },
      evaluate(view: MultiArmStepView, out: MultiArmEvaluation) {
        const [g0, g1] = view.grippers;
        const t = baton.translation();
        const held0 = holds(g0.held);
        const held1 = holds(g1.held);
        // Handle points from the baton's pose, so the reward reads the same geometry as the observation.
        const q = baton.rotation();
        rotateInto(q, -BATON_HANDLE_OFFSET, 0, 0, offset);
        const reach0 = held0 || held1 ? 1 : tolerance(distance3(g0.position[0], g0.position[1], g0.position[2], t.x + offset[0], t.y + offset[1], t.z + offset[2]), 0, 0.02, 0.3, 'long_tail');
        const reach1 = held1 ? 1 : tolerance(distance3(g1.position[0], g1.position[1], g1.position[2], t.x - offset[0], t.y - offset[1], t.z - offset[2]), 0, 0.02, 0.3, 'long_tail');
        const zone = held1 ? 1 : tolerance(t.x, HANDOVER_X, 10, 0.3, 'long_tail');
        const toGoal = distance3(t.x, t.y, t.z, goal[0], goal[1], goal[2]);
        const place = held1 ? tolerance(toGoal, 0, TARGET_RADIUS, placeMargin, 'long_tail') : 0;
        const success = held1 && !held0 && toGoal <= SUCCESS_RADIUS;
        out.reward = success ? 10 : reach0 + 2 * zone + 2 * reach1 + 5 * place;
        out.success = success;
        out.objToTarget = toGoal;
        out.armsHolding = (held0 ? 1 : 0) + (held1 ? 1 : 0);
      },
      describe: () => {
        const holders = [scene.heldBodies.has(handleA.body.handle) ? 'A' : '', scene.heldBodies.has(handleB.body.handle) ? 'B' : ''].filter(Boolean).join('+');
        return `baton ${formatVec3(baton.translation())}${holders ? ` (held at ${holders})` : ''}, handles A ${formatVec3(pointOf(handleA))} B ${formatVec3(pointOf(handleB))}, goal ${formatVec3(goal)}`;
      },
    };
  },
};
