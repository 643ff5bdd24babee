import fs from 'node:fs';
import YAML from 'yaml';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { shapeOf } from '../../envs/env-shape';
import { type OfflineDataset, checkDatasetShape, readDataset } from '../../trainers/dataset';
import { createLearner, trainerFor } from '../../trainers/index';
import { type Learner, type TaskInferenceLearner, type TaskInferenceMode, type TaskSpec, isTaskInferenceLearner } from '../../trainers/learner';
import { locateCheckpoint } from '../core/checkpoint-locator';
import { deriveSeed } from '../core/rng';
import { type BackendPreference, selectBackend } from '../core/tf-backend';
import { collectEpisodes } from '../rollout/collect-episodes';
import { evaluatePolicy } from '../rollout/evaluation';
import { VectorEnv } from '../rollout/vector-env';
import { parseSavedRunConfig } from './config-loader';
import { runTasks } from './run-config';
import { learnerStateOf } from './learner-checkpoint';

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

/**
 * `troupe eval <run> --mode …` for a meta-learner: rebuilds the learner of the run (its saved
 * config, its datasets, the checkpoint's weights) and evaluates every task (or `task`) in each
 * mode, on `numEnvs` envs seeded from `seed`.
 */
export async function evaluateTaskInferenceCheckpoint(
  target: string,
  opts: { modes: readonly TaskInferenceMode[]; episodes: number; seed: string; numEnvs: number; task?: string; maxSteps?: number; backend?: string; log?: (line: string) => void; onTask?: (task: string, mode: TaskInferenceMode, result: ModeResult) => void },
): Promise<TaskInferenceResults & { checkpoint: string; algo: string; gradSteps: number }> {
  registerBuiltinEnvs();
  const located = await locateCheckpoint(target);
  const config = parseSavedRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`);
  const trainer = trainerFor(config.algo.name);
  // The run's own backend by default: results are bit-identical within a backend, not across.
  const backend = await selectBackend((opts.backend ?? located.data.backend ?? config.run.backend) as BackendPreference);
  opts.log?.(`backend: ${backend.backend} (${backend.reason})`);
  if (!trainer.taskInference) throw new Error(`--mode: ${located.path} is a '${config.algo.name}' run, which does not infer its task at test time; evaluate it without --mode`);
  const all = runTasks(config);
  if (opts.task !== undefined && !all.some((t) => t.key === opts.task)) throw new Error(`--task: '${opts.task}' is not a task of ${located.path} (its tasks: ${all.map((t) => t.key).join(', ')})`);
  const datasets: Record<string, OfflineDataset> = {};
  const vecs: Array<{ key: string; vec: VectorEnv; taskIndex: number }> = [];
  let learner: Learner | undefined;
  try {
    const specs: TaskSpec[] = [];
    for (const [index, t] of all.entries()) {
      if (!t.dataset || !fs.existsSync(t.dataset)) {
        throw new Error(`task '${t.key}': its dataset ${t.dataset ?? '(none)'} is missing; a ${config.algo.name} model acts with its datasets (target returns, demonstrations) — run from the folder it was trained in`);
      }
      const vec = await VectorEnv.create({ env: t.env, numEnvs: opts.numEnvs, workers: 0, seed: deriveSeed(opts.seed, 'eval', t.key) });
      vecs.push({ key: t.key, vec, taskIndex: index });
      const spec: TaskSpec = { key: t.key, index, env: t.env, shape: shapeOf(vec.layout), numEnvs: opts.numEnvs };
      const data = await readDataset(t.dataset);
      checkDatasetShape(data, spec.shape, t.dataset, t.env.id);
      datasets[t.key] = data;
      specs.push(spec);
    }
    learner = createLearner({ config: config.algo, tasks: specs, seed: config.run.seed, datasets });
    await learner.restoreState(learnerStateOf(located.data, located.path));
    if (!isTaskInferenceLearner(learner)) throw new Error(`${config.algo.name}: its learner does not evaluate by mode`);
    const chosen = opts.task === undefined ? vecs : vecs.filter((v) => v.key === opts.task);
    const results = await evaluateTaskInference(learner, chosen, { episodes: opts.episodes, seed: opts.seed, modes: opts.modes, maxSteps: opts.maxSteps, onTask: opts.onTask });
    return { ...results, checkpoint: located.path, algo: config.algo.name, gradSteps: located.data.counters.gradientSteps ?? 0 };
  } finally {
    for (const v of vecs) await v.vec.close();
    learner?.dispose();
  }
}
