import type { Rng } from '../../../runtime/core/rng';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, TaskEpisode } from '../task';
import type { Range3, Vec3 } from '../vec3';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';
import { createWindow, WINDOW } from './window-fixture';
import { WINDOW_HAND_INIT, WINDOW_TARGET_RADIUS, windowEpisode } from './window-episode';

/**
 * window-close (Meta-World window-close-v3): the window (window-fixture.ts) starts slid fully open
 * (0.2 m); push its handle to the left (−x) to shut it.
 *
 * - Params: the window's position, x = 0, y ∈ [0.75, 0.9], z = 0.2 (handle height) — Meta-World's range.
 * - Goal: the window's position (Meta-World's target).
 * - Observation object block: obj1 = the handle point on the bar's pushing side (Meta-World's
 *   `handleCloseStart`, 2.4 cm right of the bar), quaternion slots zero as Meta-World reports; obj2 zero.
 * - Reward (Meta-World v2): in_place = tolerance(|handle x − goal x|, [0, 0.05], margin its initial
 *   value − 0.05, long_tail); reach = tolerance(‖handle − tcp‖, [0, 0.02], margin its initial value
 *   − 0.02, gaussian); r = 10·hamacher(reach, in_place).
 * - Success (Meta-World): |handle x − goal x| ≤ 0.05 (TARGET_RADIUS), i.e. open ≤ 0.04 m.
 * - The hand starts at Meta-World's (0, 0.4, 0.2).
 */
export type WindowCloseParams = FixtureParams<'window-close'>;

export const WINDOW_CLOSE_RANGE: Range3 = { low: [0, 0.75, 0.2], high: [0, 0.9, 0.2] };

export const windowCloseTask: ManipulationTask<WindowCloseParams> = {
  kind: 'window-close',
  description: 'Slide an open window shut by pushing its handle sideways (Meta-World window-close)',
  paramsSchema: fixtureParamsSchema('window-close', WINDOW_CLOSE_RANGE),
  gripper: { handInit: WINDOW_HAND_INIT },
  sampleParams: (rng: Rng) => sampleFixtureParams('window-close', rng, WINDOW_CLOSE_RANGE),
  setup(scene: TabletopScene, params: WindowCloseParams): TaskEpisode {
    const p = params.fixturePosition;
    const window = createWindow(scene, p, WINDOW.travel);
    const goal: Vec3 = [p[0], p[1], p[2]];
    const h0: Vec3 = [p[0] + WINDOW.closePoint[0] + WINDOW.travel, p[1] + WINDOW.closePoint[1], p[2] + WINDOW.closePoint[2]];
    const inPlaceMargin = Math.abs(Math.abs(h0[0] - goal[0]) - WINDOW_TARGET_RADIUS);
    return windowEpisode({ window, handlePoint: WINDOW.closePoint, handleStart: h0, goal, inPlaceMargin, reachSigmoid: 'gaussian' });
  },
};
