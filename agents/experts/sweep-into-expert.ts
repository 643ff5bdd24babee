import { CUBE_HALF } from '../../envs/manipulation/tasks/sweep-into';
import { WaypointExpert, goal, hand, object1, type Waypoint } from './manipulation-expert';
import { objectHeld, planObjectGrasp } from './object-grasp';

/**
 * sweep-into: grasp the cube, slide it along the table until it is over the hole, let go (it
 * drops in), and hover.
 */
export class SweepIntoExpert extends WaypointExpert {
  readonly kind = 'sweep-into';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const h = hand(obs);
    const p = object1(obs);
    const g = goal(obs);
    if (p[2] < 0 || (objectHeld(obs, 2 * CUBE_HALF) && Math.hypot(p[0] - g[0], p[1] - g[1]) < 0.008)) {
      // Over the hole (or already in it): open and rise.
      out.target = [h[0], h[1], 0.1];
      out.effort = -1;
      return;
    }
    if (planObjectGrasp(obs, out, 2 * CUBE_HALF)) return;
    out.target = [g[0] + h[0] - p[0], g[1] + h[1] - p[1], h[2]];
    out.effort = 1;
  }
}
