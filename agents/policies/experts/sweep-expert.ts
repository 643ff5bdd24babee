import { planCubeSweep } from './cube-sweep';
import { WaypointExpert, type Waypoint } from './manipulation-expert';

/** sweep: grasp the cube, slide it sideways to the goal over the gutter, let go (it drops in), and hover. */
export class SweepExpert extends WaypointExpert {
  readonly kind = 'sweep';

  protected plan(obs: Float32Array, out: Waypoint): void {
    // Sunk 5 mm below its resting height (0.02): falling into the gutter.
    planCubeSweep(obs, out, 0.015);
  }
}
