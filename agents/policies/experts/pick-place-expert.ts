import { PUCK_RADIUS } from '../../../envs/manipulation/objects';
import { WaypointExpert, goal, hand, object1, type Waypoint } from './manipulation-expert';
import { carryTarget, planObjectGrasp } from './object-grasp';

/** pick-place: grasp the puck, lift it, carry it to the goal in the air and hold it there. */
export class PickPlaceExpert extends WaypointExpert {
  readonly kind = 'pick-place';

  protected plan(obs: Float32Array, out: Waypoint): void {
    if (planObjectGrasp(obs, out, 2 * PUCK_RADIUS)) return;
    const h = hand(obs);
    const p = object1(obs);
    const g = goal(obs);
    // Lift before travelling, so the puck does not drag along the table.
    const lifting = p[2] < 0.04 && Math.hypot(g[0] - p[0], g[1] - p[1]) > 0.03;
    out.target = lifting ? [h[0], h[1], h[2] + 0.05] : carryTarget(obs, g);
    out.effort = 1;
  }
}
