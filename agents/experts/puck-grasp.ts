import { OBS } from '../../envs/manipulation/observation-layout';
import { PUCK_RADIUS } from '../../envs/manipulation/objects';
import { DEFAULT_GRIPPER_CONFIG } from '../../envs/manipulation/gripper';
import { hand, object1, type Waypoint } from './manipulation-expert';

/** obs[3] while the puck is held: the pads stop at its width (see the grasp rule in gripper.ts). */
const HELD_OPENING = (2 * PUCK_RADIUS) / DEFAULT_GRIPPER_CONFIG.maxOpening;

/** Whether the observation shows the puck held: the opening stopped at the puck's width, the puck at the TCP. */
export function puckHeld(obs: Float32Array): boolean {
  const [hx, hy, hz] = hand(obs);
  const [px, py, pz] = object1(obs);
  const opening = obs[OBS.GRIPPER];
  return Math.abs(opening - HELD_OPENING) < 0.05 && Math.hypot(hx - px, hy - py, hz - pz) < 0.03;
}

/**
 * The shared approach of push and pick-place: open, go above the puck, descend around it, close.
 * Returns false once the puck is held (the caller then plans the carry).
 */
export function planPuckGrasp(obs: Float32Array, out: Waypoint): boolean {
  if (puckHeld(obs)) return false;
  const [hx, hy, hz] = hand(obs);
  const [px, py, pz] = object1(obs);
  const opening = obs[OBS.GRIPPER];
  if (opening < HELD_OPENING - 0.1) {
    // Closed on nothing (missed): open and back off upwards before trying again.
    out.target = [hx, hy, hz + 0.02];
    out.effort = -1;
  } else if (Math.hypot(hx - px, hy - py) > 0.01) {
    // Above the puck first, so the pads come down on either side of it.
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
