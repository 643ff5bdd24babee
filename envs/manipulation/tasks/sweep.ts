import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import type { Graspable } from '../gripper';
import { cutTablePocket } from '../table-pocket';
import type { TabletopScene } from '../tabletop';
import { positionSchema, uniformIn, type ManipulationTask, type TaskEpisode } from '../task';
import type { Range3, Vec3 } from '../vec3';
import { CUBE_HALF, sweepEpisode } from './sweep-into';

/**
 * sweep (Meta-World sweep-v3): move a 4 cm cube sideways along the table and over the edge of a
 * gutter at x ≈ 0.5, level with where it started in y.
 *
 * The gutter is real: the table top is rebuilt around a 10 cm wide, 30 cm long trough centred on
 * the goal, 3 cm deep (see table-pocket.ts), so the cube drops off the edge once pushed past it.
 *
 * Observation object block: the cube's centre and orientation (obj1, as Meta-World); obj2 zero.
 * Goal: (0.5, the cube's starting y, 0.01) as Meta-World (its goal follows the cube's y).
 *
 * Reward (Meta-World v2, as sweep-into but in 3-D): in_place = tolerance(‖cube − goal‖, [0, 0.05],
 * margin ‖cube_init − goal‖, long_tail); r = 2 · caging + 6 · hamacher(caging, in_place); r = 10
 * once ‖cube − goal‖ < 0.05. Success: ‖cube − goal‖ ≤ 0.05.
 */
export interface SweepParams {
  readonly kind: 'sweep';
  readonly objectPosition: Vec3;
  /** The gutter's centre line point the cube must reach (Meta-World: x 0.5, the cube's y, z 0.01). */
  readonly goalPosition: Vec3;
}

export const SWEEP_OBJECT_RANGE: Range3 = { low: [-0.1, 0.6, 0.02], high: [0.1, 0.7, 0.02] };
export const SWEEP_GOAL_X = 0.5;
export const SWEEP_GOAL_Z = 0.01;
/** The gutter: half its width (x), half its length (y), its depth. */
export const GUTTER_HALF_WIDTH = 0.05;
export const GUTTER_HALF_LENGTH = 0.15;
export const GUTTER_DEPTH = 0.03;

export const sweepTask: ManipulationTask<SweepParams> = {
  kind: 'sweep',
  description: 'Sweep a cube sideways along the table over the edge of a gutter (Meta-World sweep)',
  paramsSchema: z
    .object({
      kind: z.literal('sweep'),
      objectPosition: positionSchema([-0.6, 0.35, 0], [0.6, 1.05, 0.3]),
      // The gutter around the goal must lie inside the table top.
      goalPosition: positionSchema([-0.6, 0.3 + GUTTER_HALF_LENGTH + 0.01, 0], [0.6, 1.1 - GUTTER_HALF_LENGTH - 0.01, 0.1]),
    })
    .strict()
    .refine((p) => Math.abs(p.objectPosition[0] - p.goalPosition[0]) > GUTTER_HALF_WIDTH + CUBE_HALF || Math.abs(p.objectPosition[1] - p.goalPosition[1]) > GUTTER_HALF_LENGTH + CUBE_HALF, {
      message: 'the cube must start outside the gutter',
      path: ['objectPosition'],
    }) as unknown as z.ZodType<SweepParams>,
  sampleParams(rng: Rng): SweepParams {
    const object = uniformIn(rng, SWEEP_OBJECT_RANGE);
    return { kind: 'sweep', objectPosition: object, goalPosition: [SWEEP_GOAL_X, object[1], SWEEP_GOAL_Z] };
  },
  setup(scene: TabletopScene, params: SweepParams): TaskEpisode {
    const goal = params.goalPosition;
    cutTablePocket(scene, {
      xMin: goal[0] - GUTTER_HALF_WIDTH,
      xMax: goal[0] + GUTTER_HALF_WIDTH,
      yMin: goal[1] - GUTTER_HALF_LENGTH,
      yMax: goal[1] + GUTTER_HALF_LENGTH,
      depth: GUTTER_DEPTH,
    });
    const body = scene.addBox([CUBE_HALF, CUBE_HALF, CUBE_HALF], { position: params.objectPosition, density: 500, friction: 1 });
    const cube: Graspable = { body, gripWidth: 2 * CUBE_HALF, halfHeight: CUBE_HALF };
    return sweepEpisode(scene, cube, params.objectPosition, goal, false);
  },
};
