import type { Rng } from '../../../runtime/core/rng';
import { writeEmpty } from '../objects';
import { OBS } from '../observation-layout';
import { tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Range3, type Vec3 } from '../vec3';
import { createDrawer, DRAWER } from './drawer-fixture';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';

/**
 * drawer-open (Meta-World drawer-open-v3): pull a closed drawer (drawer-fixture.ts) out by its handle.
 *
 * - Params: the drawer's position, x ∈ [−0.1, 0.1], y = 0.9, z = 0 (Meta-World's range).
 * - Goal: the handle's position with the drawer pulled out 0.2 m (Meta-World's maxDist).
 * - Observation object block: obj1 = the handle bar's centre and the drawer's quaternion (it never
 *   turns: identity), obj2 zero.
 * - Reward (Meta-World v2): r = 5·(caging + opening), caging = tolerance(‖(handle − tcp)·(3, 3, 1)‖,
 *   [0, 0.01], margin its initial value, long_tail), opening = tolerance(‖handle − goal‖, [0, 0.02],
 *   0.2, long_tail).
 * - Success (Meta-World): ‖handle − goal‖ ≤ 0.03.
 */
export type DrawerOpenParams = FixtureParams<'drawer-open'>;

export const DRAWER_RANGE: Range3 = { low: [-0.1, 0.9, 0], high: [0.1, 0.9, 0] };
const SUCCESS_RADIUS = 0.03;

/** Writes the handle's centre and an identity quaternion (the drawer's pose) at `out[offset]`. */
export function writeDrawerHandle(position: Vec3, opening: number, out: Float64Array, offset: number, withQuaternion: boolean): void {
  out[offset] = position[0] + DRAWER.handle[0];
  out[offset + 1] = position[1] + DRAWER.handle[1] - opening;
  out[offset + 2] = position[2] + DRAWER.handle[2];
  out[offset + 3] = 0;
  out[offset + 4] = 0;
  out[offset + 5] = 0;
  out[offset + 6] = withQuaternion ? 1 : 0;
  writeEmpty(out, offset + 7, 7);
}

export const drawerOpenTask: ManipulationTask<DrawerOpenParams> = {
  kind: 'drawer-open',
  description: 'Pull a drawer open by its handle (Meta-World drawer-open)',
  paramsSchema: fixtureParamsSchema('drawer-open', DRAWER_RANGE),
  sampleParams: (rng: Rng) => sampleFixtureParams('drawer-open', rng, DRAWER_RANGE),
  setup(scene: TabletopScene, params: DrawerOpenParams): TaskEpisode {
    const p = params.fixturePosition;
    const drawer = createDrawer(scene, p, 0);
    const goal: Vec3 = [p[0] + DRAWER.handle[0], p[1] + DRAWER.handle[1] - DRAWER.travel, p[2] + DRAWER.handle[2]];
    let cagingMargin = -1;
    return {
      goal,
      graspables: [],
      writeObjects: (out, offset) => writeDrawerHandle(p, drawer.opening(), out, offset, true),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        const hx = f[OBS.OBJ1_POS];
        const hy = f[OBS.OBJ1_POS + 1];
        const hz = f[OBS.OBJ1_POS + 2];
        if (cagingMargin < 0) {
          const t = view.initTcp;
          cagingMargin = Math.hypot(3 * (p[0] + DRAWER.handle[0] - t[0]), 3 * (p[1] + DRAWER.handle[1] - t[1]), p[2] + DRAWER.handle[2] - t[2]);
        }
        const handleError = distance3(hx, hy, hz, goal[0], goal[1], goal[2]);
        const opening = tolerance(handleError, 0, 0.02, DRAWER.travel, 'long_tail');
        // x-y errors weigh triple so the hand is drawn over the handle before it comes down.
        const gripperError = Math.hypot(3 * (hx - f[OBS.HAND]), 3 * (hy - f[OBS.HAND + 1]), hz - f[OBS.HAND + 2]);
        const caging = tolerance(gripperError, 0, 0.01, cagingMargin, 'long_tail');
        out.reward = 5 * (caging + opening);
        out.success = handleError <= SUCCESS_RADIUS;
        out.nearObject = distance3(hx, hy, hz, f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2]) <= 0.03;
        out.graspSuccess = f[OBS.GRIPPER] > 0;
        out.graspReward = caging;
        out.inPlaceReward = opening;
        out.objToTarget = handleError;
      },
      describe: () => `drawer out ${drawer.opening().toFixed(3)} m, goal ${formatVec3(goal)}`,
    };
  },
};
