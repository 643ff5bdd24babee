import { DEFAULT_GRIPPER_CONFIG } from '../../../envs/manipulation/gripper';
import { OBS } from '../../../envs/manipulation/observation-layout';
import { hand, object1, type Waypoint } from './manipulation-expert';

/**
 * The top-down grasp shared by the experts that pick up obj1 (puck, peg, ball, block, cube):
 * open, go above the object, descend around it, close. A held object shows as the opening
 * stopped at its width. Then the carry: a held object keeps its offset from the TCP, so the TCP
 * aims at the object's destination shifted by that offset.
 */

/** obs[3] while an object `gripWidth` wide is held (the pads stop at its width). */
export function heldOpening(gripWidth: number): number {
  return gripWidth / DEFAULT_GRIPPER_CONFIG.maxOpening;
}

/** Whether the observation shows obj1 held: the opening stopped at its width, the object at the TCP. */
export function objectHeld(obs: Float32Array, gripWidth: number): boolean {
  const [hx, hy, hz] = hand(obs);
  const [px, py, pz] = object1(obs);
  return Math.abs(obs[OBS.GRIPPER] - heldOpening(gripWidth)) < 0.05 && Math.hypot(hx - px, hy - py, hz - pz) < 0.03;
}

/**
 * Plans the grasp of obj1 (`gripWidth` wide). Returns false once it is held (the caller then
 * plans the carry).
 */
export function planObjectGrasp(obs: Float32Array, out: Waypoint, gripWidth: number): boolean {
  if (objectHeld(obs, gripWidth)) return false;
  const [hx, hy, hz] = hand(obs);
  const [px, py, pz] = object1(obs);
  if (obs[OBS.GRIPPER] < heldOpening(gripWidth) - 0.1) {
    // Closed on nothing (missed): open and back off upwards before trying again.
    out.target = [hx, hy, hz + 0.02];
    out.effort = -1;
  } else if (Math.hypot(hx - px, hy - py) > 0.01) {
    // Above the object first, so the pads come down on either side of it.
    out.target = [px, py, Math.max(pz + 0.1, Math.min(hz, pz + 0.15))];
    out.effort = -1;
  } else if (hz - pz > 0.012) {
    out.target = [px, py, pz];
    out.effort = -1;
  } else {
    out.target = [px, py, pz];
    out.effort = 1;
  }
  return true;
}

/** Where the TCP should go to bring the held obj1 to `c`. */
export function carryTarget(obs: Float32Array, c: readonly number[]): [number, number, number] {
  const h = hand(obs);
  const p = object1(obs);
  return [c[0] + h[0] - p[0], c[1] + h[1] - p[1], c[2] + h[2] - p[2]];
}

/** Like `carryTarget` for the plane (x, y) of `c`, with the TCP keeping its height: the held obj1 slides along the table. */
export function slideTarget(obs: Float32Array, c: readonly number[]): [number, number, number] {
  const h = hand(obs);
  const p = object1(obs);
  return [c[0] + h[0] - p[0], c[1] + h[1] - p[1], h[2]];
}
