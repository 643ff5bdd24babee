import type { LearnerState } from '../../trainers/learner';
import { type CheckpointData, underPrefix } from '../core/checkpoint';

/** Where a training checkpoint keeps the learner's arrays (beside the loop's own). */
export const TRAINER_ARRAY_PREFIX = 'trainer/';

/** The learner's part of a training checkpoint (what `Learner.restoreState` takes). */
export function learnerStateOf(data: CheckpointData, file: string): LearnerState {
  const learnerJson = data.metadata.trainer;
  if (typeof learnerJson !== 'object' || learnerJson === null || Array.isArray(learnerJson)) throw new Error(`${file}: field 'metadata.trainer' must be a map`);
  return { models: data.models, optimizers: data.optimizers, rngs: data.rngs, arrays: underPrefix(TRAINER_ARRAY_PREFIX, data.arrays), json: learnerJson };
}
