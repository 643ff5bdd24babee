import { BOX_HALF_DEPTH, HOLE_TARGET_OFFSET, PEG_HALF, PEG_HEAD_OFFSET } from '../../../envs/manipulation/tasks/peg-insert-side';
import { WaypointExpert, goal, object1, type Waypoint } from './manipulation-expert';
import { carryTarget, planObjectGrasp } from './object-grasp';

/** How far outside the opening the head waits while the peg is lined up with the hole (m). */
const STANDOFF = 0.05;
/** Alignment (m) in y and z needed before pushing in: the hole leaves 1.5 cm around the peg. */
const ALIGNED = 0.004;

/**
 * peg-insert-side: grasp the peg at its centre, lift it to the hole's height, line its head up
 * in front of the opening (the goal is 6.6 cm inside it), then push it straight in along −x.
 */
export class PegInsertSideExpert extends WaypointExpert {
  readonly kind = 'peg-insert-side';

  protected plan(obs: Float32Array, out: Waypoint): void {
    if (planObjectGrasp(obs, out, 2 * PEG_HALF[1])) return;
    const p = object1(obs);
    const g = goal(obs);
    out.effort = 1;
    // The peg keeps its offset from the TCP while held; plan where its centre should be and shift by the offset.
    const opening = g[0] - HOLE_TARGET_OFFSET[0] + BOX_HALF_DEPTH;
    const headX = p[0] + PEG_HEAD_OFFSET;
    let cx: number;
    let cy = g[1];
    const cz = g[2];
    if (p[2] < g[2] - 0.03 && headX > opening) {
      // Lift first, where it lies, so the peg does not sweep along the table or into the box.
      cx = p[0];
      cy = p[1];
    } else if (Math.abs(p[1] - g[1]) > ALIGNED || Math.abs(p[2] - g[2]) > ALIGNED) {
      // Line up in front of the opening; a head already in it stays where it is while the peg is centred.
      cx = headX > opening + 0.01 ? opening + STANDOFF - PEG_HEAD_OFFSET : p[0];
    } else {
      cx = g[0] - PEG_HEAD_OFFSET;
    }
    out.target = carryTarget(obs, [cx, cy, cz]);
  }
}
