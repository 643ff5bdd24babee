import YAML from 'yaml';
import { envShape } from '../../envs/env-shape';
import { makeEnv } from '../../envs/registry';
import { createLearner } from '../../trainers/index';
import type { Learner, LearnerState, TaskSpec } from '../../trainers/learner';
import { type CheckpointData, underPrefix } from '../core/checkpoint';
import type { LocatedCheckpoint } from '../core/checkpoint-locator';
import { parseSavedRunConfig } from './config-loader';
import { type RunConfig, runTasks } from './run-config';

/** Where a training checkpoint keeps the learner's arrays (beside the loop's own). */
export const TRAINER_ARRAY_PREFIX = 'trainer/';

/** The learner's part of a training checkpoint (what `Learner.restoreState` takes). */
export function learnerStateOf(data: CheckpointData, file: string): LearnerState {
  const learnerJson = data.metadata.trainer;
  if (typeof learnerJson !== 'object' || learnerJson === null || Array.isArray(learnerJson)) throw new Error(`${file}: field 'metadata.trainer' must be a map`);
  return { models: data.models, optimizers: data.optimizers, rngs: data.rngs, arrays: underPrefix(TRAINER_ARRAY_PREFIX, data.arrays), json: learnerJson };
}

/**
 * The learner of an online run, rebuilt from a checkpoint: its saved config's tasks (shapes read
 * from fresh envs, `numEnvs` envs each as in the run), then the checkpoint's weights and state.
 * For learners whose acting needs more than an inference-only policy (MRA's relation net and
 * p(z | N)). The caller disposes it.
 */
export async function rebuildLearner(located: LocatedCheckpoint): Promise<{ learner: Learner; config: RunConfig; tasks: TaskSpec[] }> {
  const config = parseSavedRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`);
  const tasks: TaskSpec[] = runTasks(config).map((t, index) => {
    const env = makeEnv(t.env.id, t.env.options ?? {});
    try {
      return { key: t.key, index, env: t.env, shape: envShape(env), numEnvs: t.numEnvs };
    } finally {
      env.close?.();
    }
  });
  const learner = createLearner({ config: config.algo, tasks, seed: config.run.seed });
  try {
    await learner.restoreState(learnerStateOf(located.data, located.path));
  } catch (error) {
    learner.dispose();
    throw error;
  }
  return { learner, config, tasks };
}
