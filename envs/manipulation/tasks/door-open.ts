import type { Rng } from '../../../runtime/core/rng';
import { OBS } from '../observation-layout';
import { hamacherProduct, tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Range3, type Vec3 } from '../vec3';
import { createDoor, DOOR, writeDoorObjects } from './door-fixture';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';

/**
 * door-open (Meta-World door-open-v3): pull the door of a safe open by its handle (door-fixture.ts).
 *
 * - Params: the door's position, x ∈ [0, 0.1], y ∈ [0.85, 0.95], z = 0.15 (handle height).
 * - Goal: door position + (−0.3, −0.45, 0), where the handle ends up when the door is open ~90°.
 * - Observation object block: obj1 = the handle bar's centre (3) and the handle's orientation
 *   quaternion (a turn about z by the door angle; x, y, z, w); obj2 zero.
 * - Reward (Meta-World v2): ready = hamacher(above_floor, near the grip point between bar and
 *   panel); opened = 0.2·[angle < −2°] + 0.8·tolerance(2π/3 + angle, [0, 0.5], π/3, long_tail);
 *   r = 2·hamacher(ready, (effort + 1)/2) + 8·opened; r = 10 on success.
 * - Success (Meta-World): |handle x − goal x| ≤ 0.08.
 */
export type DoorOpenParams = FixtureParams<'door-open'>;

export const DOOR_RANGE: Range3 = { low: [0, 0.85, 0.15], high: [0.1, 0.95, 0.15] };
const GOAL_OFFSET: Vec3 = [-0.3, -0.45, 0];
const SUCCESS_X = 0.08;
/** Where the closed fingers hook the handle: between the bar and the panel, in the door's frame. */
export const DOOR_GRIP: readonly [number, number] = [DOOR.handle[0], -0.1];

export const doorOpenTask: ManipulationTask<DoorOpenParams> = {
  kind: 'door-open',
  description: 'Pull a hinged door open by its handle (Meta-World door-open)',
  paramsSchema: fixtureParamsSchema('door-open', DOOR_RANGE),
  sampleParams: (rng: Rng) => sampleFixtureParams('door-open', rng, DOOR_RANGE),
  setup(scene: TabletopScene, params: DoorOpenParams): TaskEpisode {
    const p = params.fixturePosition;
    const door = createDoor(scene, p, 0);
    const goal: Vec3 = [p[0] + GOAL_OFFSET[0], p[1] + GOAL_OFFSET[1], p[2] + GOAL_OFFSET[2]];
    const [hx, hy, hz] = door.hingePoint;
    let angle = 0;
    return {
      goal,
      graspables: [],
      writeObjects(out, offset) {
        angle = door.angle();
        writeDoorObjects(door, out, offset, angle);
      },
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        const x = f[OBS.HAND];
        const y = f[OBS.HAND + 1];
        const z = f[OBS.HAND + 2];
        const handleX = f[OBS.OBJ1_POS];
        const handleY = f[OBS.OBJ1_POS + 1];
        // A funnel around the handle keeps the hand above it until it is close (Meta-World's floor).
        const radius = Math.hypot(x - handleX, y - handleY);
        const floor = radius <= 0.12 ? 0 : 0.04 * Math.log(radius - 0.12) + 0.4;
        const aboveFloor = z >= floor ? 1 : tolerance(floor - z, 0, 0.01, floor / 2, 'long_tail');
        const c = Math.cos(angle);
        const s = Math.sin(angle);
        const gripX = hx + DOOR_GRIP[0] * c - DOOR_GRIP[1] * s;
        const gripY = hy + DOOR_GRIP[0] * s + DOOR_GRIP[1] * c;
        const toGrip = distance3(x, y, z, gripX, gripY, hz);
        const inPlace = tolerance(toGrip, 0, 0.06, 0.5, 'long_tail');
        const ready = hamacherProduct(aboveFloor, inPlace);
        const opened = 0.2 * (angle < -Math.PI / 90 ? 1 : 0) + 0.8 * tolerance(Math.PI / 2 + Math.PI / 6 + angle, 0, 0.5, Math.PI / 3, 'long_tail');
        const effort = (Math.min(1, Math.max(-1, view.action[3])) + 1) / 2;
        const success = Math.abs(handleX - goal[0]) <= SUCCESS_X;
        out.reward = success ? 10 : 2 * hamacherProduct(ready, effort) + 8 * opened;
        out.success = success;
        out.nearObject = toGrip <= 0.03;
        out.graspSuccess = effort >= 0.5;
        out.graspReward = effort;
        out.inPlaceReward = opened;
        out.objToTarget = Math.abs(handleX - goal[0]);
      },
      describe: () => `door angle ${door.angle().toFixed(3)} rad, handle x → goal x ${goal[0].toFixed(3)}, hinge ${formatVec3(door.hingePoint)}`,
    };
  },
};
