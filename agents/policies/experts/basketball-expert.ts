import { BALL_RADIUS, TARGET_RISE } from '../../../envs/manipulation/tasks/basketball';
import { WaypointExpert, goal, hand, object1, type Waypoint } from './manipulation-expert';
import { carryTarget, objectHeld, planObjectGrasp } from './object-grasp';

/** Height (m) above the ring's centre at which the ball travels, clear of the ring and the backboard's foot. */
const TRAVEL_RISE = 0.1;
/**
 * How far in front of the ring (−y) the TCP must be before rising: the palm is 12 cm wide along y
 * and the ring 11 cm across, and both collide (Rapier already acts within 2 cm of contact).
 */
const CLEAR_Y = 0.16;
/** Ball height while backing away from under the ring (just off the table). */
const LOW_CARRY_Z = 0.05;

/**
 * basketball: grasp the ball, back away from under the ring if needed, lift it well above the
 * ring, bring it over the ring's centre,
 * lower it to just above the ring (the success target), then let go: it drops through the ring.
 */
export class BasketballExpert extends WaypointExpert {
  readonly kind = 'basketball';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const h = hand(obs);
    const p = object1(obs);
    const g = goal(obs);
    const overRing = Math.hypot(p[0] - g[0], p[1] - g[1]);
    const held = objectHeld(obs, 2 * BALL_RADIUS);
    if (p[2] < g[2] && overRing < 0.06) {
      // Dropped through the ring: stay clear.
      out.target = [h[0], h[1], Math.max(h[2], g[2] + TRAVEL_RISE)];
      out.effort = -1;
      return;
    }
    if (held && overRing < 0.004 && Math.abs(p[2] - (g[2] + TARGET_RISE)) < 0.005) {
      out.target = [h[0], h[1], h[2]];
      out.effort = -1;
      return;
    }
    if (planObjectGrasp(obs, out, 2 * BALL_RADIUS)) return;
    out.effort = 1;
    const travelZ = g[2] + TRAVEL_RISE;
    let c: [number, number, number];
    if (overRing <= 0.004) c = [g[0], g[1], g[2] + TARGET_RISE];
    else if (p[2] >= travelZ - 0.01) c = [g[0], g[1], travelZ];
    else if (h[1] > g[1] - CLEAR_Y + 0.005) c = [p[0], g[1] - CLEAR_Y, Math.max(p[2], LOW_CARRY_Z)];
    else c = [p[0], p[1], travelZ];
    out.target = carryTarget(obs, c);
  }
}
