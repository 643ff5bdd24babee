import type { Rng } from '../../../runtime/rng';
import { OBS } from '../observation-layout';
import { hamacherProduct, tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Range3, type Vec3 } from '../vec3';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';
import { createWindow, WINDOW, writeWindowHandle } from './window-fixture';

/**
 * window-open (Meta-World window-open-v3): slide a closed window (window-fixture.ts) open by
 * pushing its handle to the right (+x).
 *
 * - Params: the window's position, x ∈ [−0.1, 0.1], y ∈ [0.7, 0.9], z = 0.16 (handle height).
 * - Goal: window position + (0.2, 0, 0) (Meta-World's target).
 * - Observation object block: obj1 = the handle point on the bar's pushing side (Meta-World's
 *   `handleOpenStart`, 2.6 cm left of the bar), quaternion slots zero as Meta-World reports; obj2 zero.
 * - Reward (Meta-World v2): in_place = tolerance(|handle x − goal x|, [0, 0.05], margin
 *   |window x − goal x| − 0.05, long_tail); reach = tolerance(‖handle − tcp‖, [0, 0.02], margin its
 *   initial value − 0.02, long_tail); r = 10·hamacher(reach, in_place).
 * - Success (Meta-World): |handle x − goal x| ≤ 0.05 (TARGET_RADIUS), i.e. slid ≥ 0.19 of 0.2 m.
 * - The hand starts at Meta-World's (0, 0.4, 0.2), clear of the handle wherever the window stands.
 */
export type WindowOpenParams = FixtureParams<'window-open'>;

export const WINDOW_OPEN_RANGE: Range3 = { low: [-0.1, 0.7, 0.16], high: [0.1, 0.9, 0.16] };
/** Meta-World's TARGET_RADIUS for both window tasks. */
export const WINDOW_TARGET_RADIUS = 0.05;
/** Meta-World's hand start for the window tasks. */
export const WINDOW_HAND_INIT: Vec3 = [0, 0.4, 0.2];
const HANDLE_RADIUS = 0.02;

export const windowOpenTask: ManipulationTask<WindowOpenParams> = {
  kind: 'window-open',
  description: 'Slide a window open by pushing its handle sideways (Meta-World window-open)',
  paramsSchema: fixtureParamsSchema('window-open', WINDOW_OPEN_RANGE),
  gripper: { handInit: WINDOW_HAND_INIT },
  sampleParams: (rng: Rng) => sampleFixtureParams('window-open', rng, WINDOW_OPEN_RANGE),
  setup(scene: TabletopScene, params: WindowOpenParams): TaskEpisode {
    const p = params.fixturePosition;
    const window = createWindow(scene, p, 0);
    const goal: Vec3 = [p[0] + WINDOW.travel, p[1], p[2]];
    const inPlaceMargin = Math.abs(WINDOW.travel - WINDOW_TARGET_RADIUS);
    const h0: Vec3 = [p[0] + WINDOW.openPoint[0], p[1] + WINDOW.openPoint[1], p[2] + WINDOW.openPoint[2]];
    let reachMargin = -1;
    return {
      goal,
      graspables: [],
      writeObjects: (out, offset) => writeWindowHandle(window.pane, WINDOW.openPoint, out, offset),
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        if (reachMargin < 0) reachMargin = Math.abs(distance3(h0[0], h0[1], h0[2], view.initTcp[0], view.initTcp[1], view.initTcp[2]) - HANDLE_RADIUS);
        const hx = f[OBS.OBJ1_POS];
        const toTarget = Math.abs(hx - goal[0]);
        const inPlace = tolerance(toTarget, 0, WINDOW_TARGET_RADIUS, inPlaceMargin, 'long_tail');
        const tcpToHandle = distance3(hx, f[OBS.OBJ1_POS + 1], f[OBS.OBJ1_POS + 2], f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2]);
        const reach = tolerance(tcpToHandle, 0, HANDLE_RADIUS, reachMargin, 'long_tail');
        out.reward = 10 * hamacherProduct(reach, inPlace);
        out.success = toTarget <= WINDOW_TARGET_RADIUS;
        out.nearObject = tcpToHandle <= 0.05;
        out.graspSuccess = true;
        out.graspReward = reach;
        out.inPlaceReward = inPlace;
        out.objToTarget = toTarget;
      },
      describe: () => `window open ${window.opening().toFixed(3)} m, goal ${formatVec3(goal)}`,
    };
  },
};
