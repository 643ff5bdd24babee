import { OBS } from '../../../envs/manipulation/observation-layout';
import { LEVER } from '../../../envs/manipulation/tasks/lever-fixture';
import { WaypointExpert, hand, object1, type Waypoint } from './manipulation-expert';

/** How far ahead of the lever (rad) the hand is aimed, so it keeps pressing the knob round. */
const LEAD = 0.3;
/** The highest angle aimed for: past vertical, so the lever tips onto its upper stop. */
const AIM = Math.PI / 2 + 0.12;

/**
 * lever-pull: come up under the knob (the palm's top face, 4 cm above the TCP, below it), then
 * push the knob round the hinge: the target runs ahead of the lever along the knob's circle,
 * offset so that the palm's top face pushes while the lever is low and its front face (6 cm ahead
 * of the TCP) once the lever stands up.
 */
export class LeverPullExpert extends WaypointExpert {
  readonly kind = 'lever-pull';

  protected plan(obs: Float32Array, out: Waypoint): void {
    const [x, y, z] = hand(obs);
    const [kx, ky, kz] = object1(obs);
    const angle = 2 * Math.atan2(-obs[OBS.OBJ1_QUAT], obs[OBS.OBJ1_QUAT + 3]);
    const hingeY = ky + LEVER.radius * Math.cos(angle);
    const hingeZ = kz - LEVER.radius * Math.sin(angle);
    out.effort = 1;
    const [oy, oz] = handOffset(angle);
    const under = Math.abs(x - kx) < 0.01 && Math.abs(y - (ky + oy)) < 0.015 && z < kz + oz + 0.01;
    if (!under) {
      out.target = [kx, ky + oy, kz + oz - 0.03];
      return;
    }
    const a = Math.min(AIM, angle + LEAD);
    const [ay, az] = handOffset(a);
    out.target = [kx, hingeY - LEVER.radius * Math.cos(a) + ay, hingeZ + LEVER.radius * Math.sin(a) + az];
  }
}

/** Where the TCP sits relative to the knob (y, z) to push it at lever angle `a`. */
function handOffset(a: number): [number, number] {
  const s = Math.sin(Math.max(0, Math.min(Math.PI / 2, a)));
  return [-0.03 - 0.06 * s, -0.07 + 0.04 * s];
}
