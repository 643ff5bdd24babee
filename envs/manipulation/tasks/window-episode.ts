import { OBS } from '../observation-layout';
import { hamacherProduct, tolerance, type Sigmoid } from '../reward-shaping';
import type { StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Vec3 } from '../vec3';
import { writeWindowHandle, type WindowFixture } from './window-fixture';

/**
 * The episode of window-open and window-close (Meta-World v2's shared window reward): the task
 * pushes the observed handle point along x to the goal's x.
 *
 * in_place = tolerance(|handle x − goal x|, [0, 0.05], `inPlaceMargin`, long_tail);
 * reach = tolerance(‖handle − tcp‖, [0, 0.02], margin ‖handle_init − hand_init‖ − 0.02, `reachSigmoid`);
 * r = 10·hamacher(reach, in_place). Success: |handle x − goal x| ≤ 0.05.
 */

/** Meta-World's TARGET_RADIUS for both window tasks. */
export const WINDOW_TARGET_RADIUS = 0.05;
/** Meta-World's hand start for the window tasks. */
export const WINDOW_HAND_INIT: Vec3 = [0, 0.4, 0.2];
const HANDLE_RADIUS = 0.02;

export interface WindowEpisodeSpec {
  readonly window: WindowFixture;
  /** The observed handle point on the pane (`WINDOW.openPoint` or `WINDOW.closePoint`). */
  readonly handlePoint: Vec3;
  /** Where that point starts. */
  readonly handleStart: Vec3;
  readonly goal: Vec3;
  readonly inPlaceMargin: number;
  /** The shape of the reach score (Meta-World: long_tail to open, gaussian to close). */
  readonly reachSigmoid: Sigmoid;
}

export function windowEpisode(spec: WindowEpisodeSpec): TaskEpisode {
  const { window, handlePoint, handleStart: h0, goal, inPlaceMargin, reachSigmoid } = spec;
  let reachMargin = -1;
  return {
    goal,
    graspables: [],
    writeObjects: (out, offset) => writeWindowHandle(window.pane, handlePoint, out, offset),
    evaluate(view: StepView, out: TaskEvaluation) {
      const f = view.frame;
      if (reachMargin < 0) reachMargin = Math.abs(distance3(h0[0], h0[1], h0[2], view.initTcp[0], view.initTcp[1], view.initTcp[2]) - HANDLE_RADIUS);
      const hx = f[OBS.OBJ1_POS];
      const toTarget = Math.abs(hx - goal[0]);
      const inPlace = tolerance(toTarget, 0, WINDOW_TARGET_RADIUS, inPlaceMargin, 'long_tail');
      const tcpToHandle = distance3(hx, f[OBS.OBJ1_POS + 1], f[OBS.OBJ1_POS + 2], f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2]);
      const reach = tolerance(tcpToHandle, 0, HANDLE_RADIUS, reachMargin, reachSigmoid);
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
}
