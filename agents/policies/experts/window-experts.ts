import { OBS } from '../../../envs/manipulation/observation-layout';
import { WINDOW } from '../../../envs/manipulation/tasks/window-fixture';
import { WaypointExpert, goal, hand, type Waypoint } from './manipulation-expert';

/**
 * Where the TCP comes down beside the handle bar, as an x offset from the bar's centre: far enough
 * that the palm (±2 cm) passes the handle's arms 2 cm clear on the way down (Rapier's speculative
 * contacts hold back bodies that merely pass close); pushing then closes the remaining 3.2 cm
 * to the contact (pad half-width 1 cm + bar half-width 0.8 cm).
 */
const BESIDE_BAR = 0.05;
const HOVER = 0.12;
/** TCP-to-bar distance along x when a pad touches the bar. */
const CONTACT = 0.018;

/**
 * Both window experts: come down beside the handle bar on the side the window must move away from
 * (the gripper shut, between the handle's arms), then push the bar along x, aiming 1 cm past where
 * it stands at the stop (the stop holds the hand back).
 * `side` = −1 pushes right (open), +1 pushes left (close).
 */
function planWindowPush(obs: Float32Array, out: Waypoint, side: -1 | 1, observedToBar: number, pushTo: number): void {
  const [x, y, z] = hand(obs);
  const barX = obs[OBS.OBJ1_POS] + observedToBar;
  const hy = obs[OBS.OBJ1_POS + 1];
  const hz = obs[OBS.OBJ1_POS + 2];
  out.effort = 1;
  const startX = barX + side * BESIDE_BAR;
  const level = Math.abs(z - hz) < 0.015 && Math.abs(y - hy) < 0.01 && side * (x - barX) > 0.01;
  if (level) {
    out.target = [pushTo, hy, hz];
    return;
  }
  const above = Math.abs(x - startX) < 0.01 && Math.abs(y - hy) < 0.006;
  out.target = [startX, hy, above ? hz : hz + HOVER];
}

/** window-open: push the handle right until the pane is at its open stop. */
export class WindowOpenExpert extends WaypointExpert {
  readonly kind = 'window-open';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const toBar = WINDOW.handleBar[0] - WINDOW.openPoint[0];
    planWindowPush(obs, out, -1, toBar, goal(obs)[0] + WINDOW.handleBar[0] - CONTACT + 0.01);
  }
}

/** window-close: push the handle left until the pane is at its closed stop. */
export class WindowCloseExpert extends WaypointExpert {
  readonly kind = 'window-close';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const toBar = WINDOW.handleBar[0] - WINDOW.closePoint[0];
    planWindowPush(obs, out, 1, toBar, goal(obs)[0] + WINDOW.handleBar[0] + CONTACT - 0.01);
  }
}
