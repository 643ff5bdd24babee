import { OBS } from '../../../envs/manipulation/observation-layout';
import { DRAWER } from '../../../envs/manipulation/tasks/drawer-fixture';
import { WaypointExpert, goal, hand, type Waypoint } from './manipulation-expert';

/** The hook point (between bar and drawer front) relative to the observed handle centre. */
const HOOK_DY = DRAWER.hook[1] - DRAWER.handle[1];
const HOOK_DZ = DRAWER.hook[2] - DRAWER.handle[2];

/** drawer-open: shut the gripper, come down between the handle bar and the drawer front, pull to the goal. */
export class DrawerOpenExpert extends WaypointExpert {
  readonly kind = 'drawer-open';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const [x, y, z] = hand(obs);
    const hx = obs[OBS.OBJ1_POS];
    const hy = obs[OBS.OBJ1_POS + 1] + HOOK_DY;
    const hz = obs[OBS.OBJ1_POS + 2] + HOOK_DZ;
    out.effort = 1;
    const hooked = Math.abs(x - hx) < 0.02 && Math.abs(y - hy) < 0.012 && Math.abs(z - hz) < 0.01;
    if (hooked) {
      // Aim 1 cm past the goal: the bar holds the hand back, and the open stop ends the pull.
      out.target = [hx, goal(obs)[1] + HOOK_DY - 0.01, hz];
      return;
    }
    const above = Math.abs(x - hx) < 0.006 && Math.abs(y - hy) < 0.004;
    out.target = [hx, hy, above ? hz : hz + 0.06];
  }
}

/** drawer-close: come down in front of the handle bar and push it in to the goal (the closed stop). */
export class DrawerCloseExpert extends WaypointExpert {
  readonly kind = 'drawer-close';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const [x, y, z] = hand(obs);
    const hx = obs[OBS.OBJ1_POS];
    const hy = obs[OBS.OBJ1_POS + 1];
    const hz = obs[OBS.OBJ1_POS + 2];
    const g = goal(obs);
    out.effort = 1;
    // In front of the bar: pads (1 cm) and bar (6 mm) half-widths apart, plus a little play.
    const frontY = hy - 0.02;
    const level = Math.abs(z - hz) < 0.01 && Math.abs(x - hx) < 0.02 && y < hy;
    if (level) {
      out.target = [hx, g[1] - 0.016, hz];
      return;
    }
    const above = Math.abs(x - hx) < 0.01 && Math.abs(y - frontY) < 0.01;
    out.target = [hx, frontY, above ? hz : hz + 0.06];
  }
}
