import type { Rng } from '../../../runtime/core/rng';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, TaskEpisode } from '../task';
import type { Range3, Vec3 } from '../vec3';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';
import { createWindow, WINDOW } from './window-fixture';
import { WINDOW_HAND_INIT, WINDOW_TARGET_RADIUS, windowEpisode } from './window-episode';

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
    return windowEpisode({ window, handlePoint: WINDOW.openPoint, handleStart: h0, goal, inPlaceMargin, reachSigmoid: 'long_tail' });
  },
};
