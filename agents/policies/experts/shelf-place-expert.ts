import { BLOCK_HALF, BOARD_FRONT } from '../../../envs/manipulation/tasks/shelf-place';
import { WaypointExpert, goal, hand, object1, type Waypoint } from './manipulation-expert';
import { carryTarget, objectHeld, planObjectGrasp } from './object-grasp';

/**
 * shelf-place: grasp the block, lift it to the goal's height in front of the shelf and line it
 * up with the goal's x (the walls and the board's front edge collide), carry it straight in, let
 * go over the board, and back out above it.
 */
export class ShelfPlaceExpert extends WaypointExpert {
  readonly kind = 'shelf-place';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const h = hand(obs);
    const p = object1(obs);
    const g = goal(obs);
    const held = objectHeld(obs, 2 * BLOCK_HALF);
    const shelfFront = g[1] + BOARD_FRONT;
    if (!held && p[2] > g[2] - 0.1) {
      // On the shelf: open, lift the pads clear of the block (backing out with them beside it would drag it), then back out.
      const clearZ = p[2] + 0.08;
      out.target = h[2] < clearZ - 0.01 ? [h[0], h[1], clearZ] : [h[0], shelfFront - 0.1, clearZ];
      out.effort = -1;
      return;
    }
    if (held && Math.abs(p[1] - g[1]) < 0.01 && Math.abs(p[0] - g[0]) < 0.01) {
      out.target = [h[0], h[1], h[2]];
      out.effort = -1;
      return;
    }
    if (planObjectGrasp(obs, out, 2 * BLOCK_HALF)) return;
    out.effort = 1;
    const aligned = Math.abs(p[0] - g[0]) < 0.005 && Math.abs(p[2] - g[2]) < 0.008;
    const c: [number, number, number] = aligned ? [g[0], g[1], g[2]] : [g[0], Math.min(p[1], shelfFront - 0.05), g[2]];
    out.target = carryTarget(obs, c);
  }
}
