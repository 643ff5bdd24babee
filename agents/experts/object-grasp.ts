import { DEFAULT_GRIPPER_CONFIG } from '../../envs/manipulation/gripper';
import { OBS } from '../../envs/manipulation/observation-layout';
import { hand, object1, type Waypoint } from './manipulation-expert';

/**
 * The top-down grasp shared by the experts of objects other than the puck (peg, ball, block,
 * sweep's puck): open, go above the object, descend around it, close. Generalises puck-grasp.ts
 * to any object width: a held object shows as the opening stopped at its width.
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
