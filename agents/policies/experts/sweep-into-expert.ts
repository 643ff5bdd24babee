import { planCubeSweep } from './cube-sweep';
import { WaypointExpert, type Waypoint } from './manipulation-expert';

/**
 * sweep-into: grasp the cube, slide it along the table until it is over the hole, let go (it
 * drops in), and hover.
 */
export class SweepIntoExpert extends WaypointExpert {
  readonly kind = 'sweep-into';

  protected plan(obs: Float32Array, out: Waypoint): void {
    // Its centre below the table's surface: in the hole.
    planCubeSweep(obs, out, 0);
  }
}
