import { bcTrainer } from './bc';
import type { OfflineDataset } from './dataset';
import type { AlgorithmVariant, Learner, TaskSpec, TrainerDefinition } from './learner';
import { mappoTrainer } from './mappo';
import { metaDtTrainer } from './meta-dt';
import { mraTrainer } from './mra';
import { mtmaTrainer } from './mtma';
import { PerTaskLearner } from './per-task-learner';
import { qLearningTrainer } from './qmix';
import { sacTrainer } from './sac';

/**
 * Every algorithm troupe trains. Adding one: a file in `trainers/` exporting a
 * `TrainerDefinition` (config schema, learner, benchmark case), and one entry here — the run
 * config schema, `troupe bench learner` and the CLI find it through this list.
 */
export const TRAINERS: readonly TrainerDefinition[] = [mappoTrainer, qLearningTrainer, sacTrainer, bcTrainer, mtmaTrainer, metaDtTrainer, mraTrainer];

/** Every algorithm name with its config schema and defaults, in list order. */
export function algorithmVariants(): AlgorithmVariant[] {
  return TRAINERS.flatMap((t) => t.algorithms);
}

/** The trainer that implements `algo`, or an error listing the known names. */
export function trainerFor(algo: string): TrainerDefinition {
  const found = TRAINERS.find((t) => t.algorithms.some((a) => a.name === algo));
  if (!found) throw new Error(`unknown algorithm '${algo}' (one of ${algorithmVariants().map((a) => a.name).join(', ')})`);
  return found;
}

/**
 * The learner a run's validated `algo` section asks for, over the run's tasks: checks that the
 * algorithm suits every task, and gives each task its own learner when the algorithm handles
 * one task at a time.
 */
export function createLearner(args: { config: { name: string }; tasks: readonly TaskSpec[]; seed: number | string; datasets?: Readonly<Record<string, OfflineDataset>> }): Learner {
  const { config, tasks, seed, datasets } = args;
  const trainer = trainerFor(config.name);
  if (tasks.length === 0) throw new Error('createLearner: a run needs at least one task');
  for (const task of tasks) trainer.checkTask?.(config.name, task);
  if (tasks.length === 1 || trainer.multiTask) return trainer.createLearner({ tasks, config, seed, datasets });
  if (trainer.kind === 'offline') throw new Error(`algo '${config.name}' learns from one task's dataset; this run has ${tasks.length} tasks`);
  return new PerTaskLearner(
    tasks,
    (task, taskSeed) => {
      const learner = trainer.createLearner({ tasks: [task], config, seed: taskSeed, datasets });
      if (learner.kind !== 'online') throw new Error(`algo '${config.name}': an online trainer made an offline learner`);
      return learner;
    },
    seed,
  );
}
