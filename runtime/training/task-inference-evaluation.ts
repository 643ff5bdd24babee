import { type TaskInferenceLearner, type TaskInferenceMode } from '../../trainers/learner';
import { deriveSeed } from '../core/rng';
import { collectEpisodes } from '../rollout/collect-episodes';
import { evaluatePolicy } from '../rollout/evaluation';
import type { VectorEnv } from '../rollout/vector-env';

/*
 * Evaluation of a meta-learner that infers its task at test time (Meta-DT), per task and mode:
 *
 *  - zero-shot: the policy conditions only on its own transitions of the current episode;
 *  - few-shot: first `few_shot_rollouts` zero-shot episodes per env are the model's own
 *    rollouts of the task (reset epoch OWN_ROLLOUT_EPOCH); prompts come from the best of them;
 *  - demo: prompts come from the task's dataset (Prompt-DT's demonstrations).
 *
 * Every mode's scored episodes start from the same resets (epoch SCORED_EPOCH), so the modes are
 * compared on identical episodes. Results depend only on the weights, the datasets and `seed`.
 */

const SCORED_EPOCH = 1_000_000;
const OWN_ROLLOUT_EPOCH = 1_000_001;

export interface ModeResult {
  return_mean: number;
  return_std: number;
  success_rate: number | null;
  episodes: number;
  /** few-shot: own zero-shot episodes its prompts were drawn from, and their mean return. */
  own_rollouts?: number;
  own_rollout_return_mean?: number;
}

export interface TaskInferenceResults {
  format: 'troupe-task-inference';
  version: 1;
  modes: TaskInferenceMode[];
  episodes: number;
  seed: string;
  tasks: Record<string, { split: 'train' | 'test' } & Partial<Record<TaskInferenceMode, ModeResult>>>;
  /** Mean over tasks of each side of the split, per mode. */
  summary: Record<'train' | 'test', Partial<Record<TaskInferenceMode, { return_mean: number; tasks: number }>>>;
}

export async function evaluateTaskInference(
  learner: TaskInferenceLearner,
  tasks: ReadonlyArray<{ key: string; vec: VectorEnv; taskIndex?: number }>,
  opts: { episodes: number; seed: string; modes?: readonly TaskInferenceMode[]; maxSteps?: number; onTask?: (task: string, mode: TaskInferenceMode, result: ModeResult) => void },
): Promise<TaskInferenceResults> {
  const modes = [...(opts.modes ?? learner.inferenceModes)];
  for (const m of modes) if (!learner.inferenceModes.includes(m)) throw new Error(`evaluation mode '${m}' is not supported by this learner (it supports ${learner.inferenceModes.join(', ')})`);
  const splits = learner.taskSplits();
  const results: TaskInferenceResults = { format: 'troupe-task-inference', version: 1, modes, episodes: opts.episodes, seed: opts.seed, tasks: {}, summary: { train: {}, test: {} } };
  for (const { key, vec, taskIndex } of tasks) {
    const E = vec.numEnvs;
    const entry: TaskInferenceResults['tasks'][string] = { split: splits[key] ?? 'train' };
    for (const mode of modes) {
      const seed = deriveSeed(opts.seed, 'task-inference', key, mode);
      let own: Awaited<ReturnType<typeof collectEpisodes>> | undefined;
      if (mode === 'few-shot') {
        const rollouts = learner.config.few_shot_rollouts * E;
        own = await collectEpisodes(vec, learner.inferencePolicy(key, E, deriveSeed(seed, 'own-rollouts'), 'zero-shot'), rollouts, OWN_ROLLOUT_EPOCH);
      }
      const policy = learner.inferencePolicy(key, E, seed, mode, own);
      const r = await evaluatePolicy(vec, policy, opts.episodes, SCORED_EPOCH, { taskIndex: taskIndex ?? 0, maxSteps: opts.maxSteps });
      const result: ModeResult = {
        return_mean: r.meanReturn,
        return_std: r.stdReturn,
        success_rate: r.successRate,
        episodes: r.episodes,
        ...(own ? { own_rollouts: own.length, own_rollout_return_mean: own.reduce((s, ep) => s + ep.return, 0) / own.length } : {}),
      };
      entry[mode] = result;
      opts.onTask?.(key, mode, result);
    }
    results.tasks[key] = entry;
  }
  for (const side of ['train', 'test'] as const) {
    for (const mode of modes) {
      const values = Object.values(results.tasks)
        .filter((t) => t.split === side)
        .map((t) => t[mode]!.return_mean);
      if (values.length > 0) results.summary[side][mode] = { return_mean: values.reduce((a, b) => a + b, 0) / values.length, tasks: values.length };
    }
  }
  return results;
}
