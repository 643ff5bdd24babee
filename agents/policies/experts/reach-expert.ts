import { WaypointExpert, goal, type Waypoint } from './manipulation-expert';

/** reach: straight to the goal, gripper relaxed. */
export class ReachExpert extends WaypointExpert {
  readonly kind = 'reach';

  protected plan(obs: Float32Array, out: Waypoint): void {
    out.target = goal(obs);
    out.effort = 0;
  }
}
