import type { Rng } from '../../../runtime/core/rng';
import { OBS } from '../observation-layout';
import { hamacherProduct, tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Vec3 } from '../vec3';
import { createDrawer, DRAWER } from './drawer-fixture';
import { DRAWER_RANGE, writeDrawerHandle } from './drawer-open';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';

/**
 * drawer-close (Meta-World drawer-close-v3): the drawer (drawer-fixture.ts) starts pulled out by
 * 0.15 m; push it shut.
 *
 * - Params: the drawer's position, as drawer-open (x ∈ [−0.1, 0.1], y = 0.9, z = 0).
 * - Goal: the handle's position with the drawer shut.
 * - Observation object block: obj1 = the handle bar's centre, quaternion slots zero (as Meta-World
 *   reports for this task); obj2 zero.
 * - Reward (Meta-World v2): in_place = tolerance(‖handle − goal‖, [0, 0.04], margin |initial
 *   distance − 0.04|, long_tail); reach = hamacher(tolerance(‖handle − tcp‖, [0, 0.005], margin,
 *   gaussian), clip(effort, 0, 1)); r = 10·hamacher(reach, in_place), 10 on success.
 * - Success (Meta-World): ‖handle − goal‖ ≤ 0.04 + 0.015.
 */
export type DrawerCloseParams = FixtureParams<'drawer-close'>;

const TARGET_RADIUS = 0.04;
const INITIAL_OPENING = 0.15;

export const drawerCloseTask: ManipulationTask<DrawerCloseParams> = {
  kind: 'drawer-close',
  description: 'Push an open drawer shut (Meta-World drawer-close)',
  paramsSchema: fixtureParamsSchema('drawer-close', DRAWER_RANGE),
  sampleParams: (rng: Rng) => sampleFixtureParams('drawer-close', rng, DRAWER_RANGE),
  setup(scene: TabletopScene, params: DrawerCloseParams): TaskEpisode {
    const p = params.fixturePosition;
    const drawer = createDrawer(scene, p, INITIAL_OPENING);
    const goal: Vec3 = [p[0] + DRAWER.handle[0], p[1] + DRAWER.handle[1], p[2] + DRAWER.handle[2]];
    const initHandle: Vec3 = [goal[0], goal[1] - INITIAL_OPENING, goal[2]];
    const inPlaceMargin = Math.abs(INITIAL_OPENING - TARGET_RADIUS);
    let reachMargin = -1;
    return {
      goal,
      graspables: [],
      writeObjects: (out, offset) => writeDrawerHandle(p, drawer.opening(), out, offset, false),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        if (reachMargin < 0) reachMargin = Math.abs(distance3(initHandle[0], initHandle[1], initHandle[2], view.initTcp[0], view.initTcp[1], view.initTcp[2]) - 0.005);
        const hx = f[OBS.OBJ1_POS];
        const hy = f[OBS.OBJ1_POS + 1];
        const hz = f[OBS.OBJ1_POS + 2];
        const targetToObj = distance3(hx, hy, hz, goal[0], goal[1], goal[2]);
        const inPlace = tolerance(targetToObj, 0, TARGET_RADIUS, inPlaceMargin, 'long_tail');
        const tcpToObj = distance3(hx, hy, hz, f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2]);
        const closed = Math.min(Math.max(0, view.action[3]), 1);
        const reach = hamacherProduct(tolerance(tcpToObj, 0, 0.005, reachMargin, 'gaussian'), closed);
        const success = targetToObj <= TARGET_RADIUS + 0.015;
        out.reward = success ? 10 : 10 * hamacherProduct(reach, inPlace);
        out.success = success;
        out.nearObject = tcpToObj <= 0.01;
        out.graspSuccess = true;
        out.graspReward = reach;
        out.inPlaceReward = inPlace;
        out.objToTarget = targetToObj;
      },
      describe: () => `drawer out ${drawer.opening().toFixed(3)} m, goal ${formatVec3(goal)}`,
    };
  },
};
