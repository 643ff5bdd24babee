import { DEFAULT_GRIPPER_CONFIG } from '../../../envs/manipulation/gripper';
import { BAR_HALF_Y, BAR_HALF_Z, barLiftTask } from '../../../envs/manipulation/multi-arm/bar-lift';
import { multiArmLayout } from '../../../envs/manipulation/multi-arm/multi-arm-task';
import type { ExpertOptions, Waypoint } from './manipulation-expert';
import { MultiArmWaypointExpert, goalOf, holdsPoint, objectPose, otherArm, otherArmPresent, ownHand, ownOpening, planPointGrasp } from './multi-arm-expert';

/** obs opening while a bar handle is held. */
const HELD_OPENING = (2 * BAR_HALF_Y) / DEFAULT_GRIPPER_CONFIG.maxOpening;

/**
 * bar-lift (any N): arm i grasps handle i; when it sees every arm holding its handle it lifts
 * to the target height, otherwise it keeps its end down. All arms see the same frame, so they
 * start lifting at the same step and rise at the same speed, keeping the bar level.
 *
 * `numArms` as a range [min, max] plays the varying-team env (`bar-lift-<min>to<max>arms`): the
 * observation has the largest team's layout and "every arm" means every arm whose presence flag
 * is set.
 */
export class BarLiftExpert extends MultiArmWaypointExpert {
  readonly kind: string;

  constructor(numArms: number | readonly [number, number] = 2, options: ExpertOptions = {}) {
    const range = typeof numArms !== 'number';
    const task = barLiftTask(range ? numArms[1] : numArms);
    super(multiArmLayout(task.numArms, task.numObjects, range), options);
    this.kind = range ? `bar-lift-${numArms[0]}to${numArms[1]}arms` : numArms === 2 ? 'bar-lift' : `bar-lift-${numArms}arms`;
  }

  protected plan(arm: number, obs: Float32Array, out: Waypoint): void {
    const L = this.layout;
    const hand = ownHand(obs);
    const opening = ownOpening(obs);
    const handle = objectPose(L, obs, arm).position;
    if (!holdsPoint(hand, opening, HELD_OPENING, handle)) {
      planPointGrasp(hand, opening, HELD_OPENING, handle, out);
      return;
    }
    let everyone = true;
    for (let j = 0; j < L.numArms && everyone; j++) {
      if (j === arm || !otherArmPresent(L, obs, arm, j)) continue;
      const other = otherArm(L, obs, arm, j);
      everyone = holdsPoint(other.hand, other.opening, HELD_OPENING, objectPose(L, obs, j).position);
    }
    const height = everyone ? goalOf(L, obs)[2] : BAR_HALF_Z;
    out.target = [hand[0], hand[1], height + hand[2] - handle[2]];
    out.effort = 1;
  }
}
