import { WaypointExpert, goal, hand, object1, type Waypoint } from './manipulation-expert';
import { planPuckGrasp } from './puck-grasp';

/** push: grasp the puck where it stands, then slide it along the table until it sits on the goal. */
export class PushExpert extends WaypointExpert {
  readonly kind = 'push';

  protected plan(obs: Float32Array, out: Waypoint): void {
    if (planPuckGrasp(obs, out)) return;
    const h = hand(obs);
    const p = object1(obs);
    const g = goal(obs);
    // Move the TCP so that the puck (at its offset from the TCP) lands on the goal, staying at table height.
    out.target = [g[0] + h[0] - p[0], g[1] + h[1] - p[1], h[2]];
    out.effort = 1;
  }
}
