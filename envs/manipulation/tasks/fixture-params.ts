import { z } from 'zod';
import type { Rng } from '../../../runtime/core/rng';
import { positionSchema, uniformIn } from '../task';
import type { Range3, Vec3 } from '../vec3';

/**
 * Parameters shared by the articulated-fixture tasks (doors, drawers, windows, buttons, levers):
 * as in Meta-World, only the fixture's placement varies and the goal follows from it, so one
 * position describes a configuration.
 */
export interface FixtureParams<K extends string> {
  readonly kind: K;
  /** Where the fixture stands (Meta-World's `obj_init_pos` for the task). */
  readonly fixturePosition: Vec3;
}

/** Strict schema: `fixturePosition` must lie in the task's range (the fixture's geometry is laid out for it). */
export function fixtureParamsSchema<K extends string>(kind: K, range: Range3): z.ZodType<FixtureParams<K>> {
  return z.object({ kind: z.literal(kind), fixturePosition: positionSchema(range.low, range.high) }).strict() as unknown as z.ZodType<FixtureParams<K>>;
}

export function sampleFixtureParams<K extends string>(kind: K, rng: Rng, range: Range3): FixtureParams<K> {
  return { kind, fixturePosition: uniformIn(rng, range) };
}
