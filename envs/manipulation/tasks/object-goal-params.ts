import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import { PLACEABLE, positionSchema, sampleObjectAndGoal } from '../task';
import type { Range3, Vec3 } from '../vec3';

/**
 * Parameters shared by the tasks with one free object and a free goal (reach, push, pick-place):
 * a configuration is where the object starts and where the goal is, drawn together by Meta-World's
 * reset rule (at least 15 cm apart in the table plane).
 */
export interface ObjectGoalParams<K extends string> {
  readonly kind: K;
  /** The object's centre. */
  readonly objectPosition: Vec3;
  readonly goalPosition: Vec3;
}

/** Strict schema: the object anywhere it can be placed on the table, the goal anywhere within the observation's bounds. */
export function objectGoalParamsSchema<K extends string>(kind: K): z.ZodType<ObjectGoalParams<K>> {
  return z
    .object({ kind: z.literal(kind), objectPosition: positionSchema(PLACEABLE.low, PLACEABLE.high), goalPosition: positionSchema() })
    .strict() as unknown as z.ZodType<ObjectGoalParams<K>>;
}

export function sampleObjectGoalParams<K extends string>(kind: K, rng: Rng, objectRange: Range3, goalRange: Range3): ObjectGoalParams<K> {
  const { object, goal } = sampleObjectAndGoal(rng, objectRange, goalRange);
  return { kind, objectPosition: object, goalPosition: goal };
}
