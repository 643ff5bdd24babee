import type { Rng } from '../../../runtime/core/rng';
import { PAD_HALF } from '../gripper';
import { writeEmpty, writePose } from '../objects';
import { OBS } from '../observation-layout';
import { hamacherProduct, tolerance } from '../reward-shaping';
import type { TabletopScene } from '../tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation } from '../task';
import { distance3, formatVec3, type Range3, type Vec3 } from '../vec3';
import { BUTTON, createButtonBox } from './button-fixture';
import { fixtureParamsSchema, sampleFixtureParams, type FixtureParams } from './fixture-params';

/**
 * button-press-topdown (Meta-World button-press-topdown-v3): press a spring-loaded button
 * (button-fixture.ts) down from above.
 *
 * - Params: the box's position, x ∈ [−0.1, 0.1], y ∈ [0.8, 0.9], z = 0.115 (Meta-World's range).
 * - Goal: the cap's top centre with the button pressed home (6 cm down; Meta-World's `hole` site
 *   lies somewhat deeper, past its soft joint limit — with a hard stop the goal is the stop).
 * - Observation object block: obj1 = the cap's top centre (Meta-World's `buttonStart`) and the
 *   button's quaternion (it never turns: identity); obj2 zero.
 * - Reward (Meta-World v2), with the hand measured at its fingertips (the pads' lower faces, 2 cm
 *   below the TCP, which is where Meta-World's TCP sits): near = tolerance(‖button − tips‖, [0,
 *   0.01], margin its initial value, long_tail); pressed = tolerance(|button z − goal z|, [0, 0.005],
 *   margin the initial value, long_tail); r = 5·hamacher(1 − opening, near) + 5·pressed when the
 *   tips are within 3 cm of the button.
 * - Success (Meta-World): |button z − goal z| ≤ 0.024, i.e. pressed ≥ 3.6 of 6 cm.
 */
export type ButtonPressTopdownParams = FixtureParams<'button-press-topdown'>;

export const BUTTON_TOPDOWN_RANGE: Range3 = { low: [-0.1, 0.8, 0.115], high: [0.1, 0.9, 0.115] };
const SUCCESS_DISTANCE = 0.024;

export const buttonPressTopdownTask: ManipulationTask<ButtonPressTopdownParams> = {
  kind: 'button-press-topdown',
  description: 'Press a spring-loaded button down from above (Meta-World button-press-topdown)',
  paramsSchema: fixtureParamsSchema('button-press-topdown', BUTTON_TOPDOWN_RANGE),
  sampleParams: (rng: Rng) => sampleFixtureParams('button-press-topdown', rng, BUTTON_TOPDOWN_RANGE),
  setup(scene: TabletopScene, params: ButtonPressTopdownParams): TaskEpisode {
    const p = params.fixturePosition;
    const box = createButtonBox(scene, p);
    const goal: Vec3 = [p[0], p[1], box.topZ - BUTTON.travel];
    const pressMargin = BUTTON.travel;
    let nearMargin = -1;
    return {
      goal,
      graspables: [],
      writeObjects(out, offset) {
        writePose(box.button, out, offset);
        out[offset + 2] += box.topZ - p[2];
        writeEmpty(out, offset + 7, 7);
      },
      evaluate(view: StepView, out: TaskEvaluation) {
        const f = view.frame;
        const bx = f[OBS.OBJ1_POS];
        const by = f[OBS.OBJ1_POS + 1];
        const bz = f[OBS.OBJ1_POS + 2];
        if (nearMargin < 0) nearMargin = distance3(bx, by, bz, view.initTcp[0], view.initTcp[1], view.initTcp[2] - PAD_HALF[2]);
        const tipsToButton = distance3(bx, by, bz, f[OBS.HAND], f[OBS.HAND + 1], f[OBS.HAND + 2] - PAD_HALF[2]);
        const toGoal = Math.abs(bz - goal[2]);
        const closed = 1 - f[OBS.GRIPPER];
        const near = tolerance(tipsToButton, 0, 0.01, nearMargin, 'long_tail');
        const pressed = tolerance(toGoal, 0, 0.005, pressMargin, 'long_tail');
        out.reward = 5 * hamacherProduct(closed, near) + (tipsToButton <= 0.03 ? 5 * pressed : 0);
        out.success = toGoal <= SUCCESS_DISTANCE;
        out.nearObject = tipsToButton <= 0.05;
        out.graspSuccess = f[OBS.GRIPPER] > 0;
        out.graspReward = near;
        out.inPlaceReward = pressed;
        out.objToTarget = toGoal;
      },
      describe: () => `button pressed ${box.pressed().toFixed(3)} m of ${BUTTON.travel}, goal ${formatVec3(goal)}`,
    };
  },
};
