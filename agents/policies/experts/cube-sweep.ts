import { CUBE_HALF } from '../../../envs/manipulation/tasks/sweep-into';
import { goal, hand, object1, type Waypoint } from './manipulation-expert';
import { objectHeld, planObjectGrasp, slideTarget } from './object-grasp';

/**
 * Both sweep experts: grasp the cube, slide it along the table until it is over the goal, let go
 * (it drops off the table: into sweep's gutter or sweep-into's hole), then open and rise.
 * `droppedBelow` is the cube-centre height (m) under which it has dropped.
 */
export function planCubeSweep(obs: Float32Array, out: Waypoint, droppedBelow: number): void {
  const h = hand(obs);
  const p = object1(obs);
  const g = goal(obs);
  if (p[2] < droppedBelow || (objectHeld(obs, 2 * CUBE_HALF) && Math.hypot(p[0] - g[0], p[1] - g[1]) < 0.008)) {
    out.target = [h[0], h[1], 0.1];
    out.effort = -1;
    return;
  }
  if (planObjectGrasp(obs, out, 2 * CUBE_HALF)) return;
  out.target = slideTarget(obs, g);
  out.effort = 1;
}
