import { PUCK_RADIUS } from '../../../envs/manipulation/objects';
import { WaypointExpert, goal, type Waypoint } from './manipulation-expert';
import { planObjectGrasp, slideTarget } from './object-grasp';

/** push: grasp the puck where it stands, then slide it along the table until it sits on the goal. */
export class PushExpert extends WaypointExpert {
  readonly kind = 'push';

  protected plan(obs: Float32Array, out: Waypoint): void {
    if (planObjectGrasp(obs, out, 2 * PUCK_RADIUS)) return;
    out.target = slideTarget(obs, goal(obs));
    out.effort = 1;
  }
}
