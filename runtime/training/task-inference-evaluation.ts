import fs from 'node:fs';
import YAML from 'yaml';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { shapeOf } from '../../envs/env-shape';
import { type OfflineDataset, checkDatasetShape, readDataset } from '../../trainers/dataset';
import { createLearner, trainerFor } from '../../trainers/index';
import { type Learner, type TaskInferenceLearner, type TaskInferenceMode, type TaskSpec, isTaskInferenceLearner } from '../../trainers/learner';
import { locateCheckpoint } from '../core/checkpoint-locator';
import { deriveSeed } from '../core/rng';
import { fitLinearProbe, probeR2 } from '../core/statistics';
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
  /** How linearly the task representation holds the task's parameters; null with the reason when it cannot be measured. */
  probe: RepresentationProbe | { skipped: string };
}

/**
 * A ridge probe from z (at dataset steps with a full context window) to the task's numeric
 * parameters (e.g. Point-Robot's goal), fitted on the training tasks and scored (R²) on them and
 * on the held-out ones — from all their data, and from its lower and upper half by return, so
 * a representation that depends on the quality of the data shows up as a gap. R² is NaN where the
 * scored tasks' parameters do not vary (a single held-out task).
 */
export interface RepresentationProbe {
  target: string[];
  r2_train: number;
  r2_test: number;
  r2_test_low_return: number;
  r2_test_high_return: number;
  windows_train: number;
  windows_test: number;
}

/** Numeric leaves of a task's parameters, named (index and split excluded: they say which task, not what it is). */
function numericParameters(params: Record<string, unknown> | null): Array<[string, number]> | undefined {
  if (!params) return undefined;
  const out: Array<[string, number]> = [];
  for (const [key, value] of Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (key === 'task' || key === 'split') continue;
    if (typeof value === 'number' && Number.isFinite(value)) out.push([key, value]);
    else if (Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isFinite(v))) value.forEach((v, i) => out.push([`${key}[${i}]`, v as number]));
  }
  return out.length > 0 ? out : undefined;
}

function representationProbe(learner: TaskInferenceLearner, keys: readonly string[]): RepresentationProbe | { skipped: string } {
  if (!learner.taskRepresentations || !learner.taskParameters) return { skipped: 'the learner exposes no task representation' };
  const splits = learner.taskSplits();
  const params = new Map(keys.map((k) => [k, numericParameters(learner.taskParameters!(k))]));
  const missing = keys.filter((k) => !params.get(k));
  if (missing.length > 0) return { skipped: `tasks without numeric parameters: ${missing.join(', ')}` };
  const target = params.get(keys[0])!.map(([name]) => name);
  if (keys.some((k) => params.get(k)!.map(([n]) => n).join() !== target.join())) return { skipped: 'the tasks have parameters of different kinds' };
  const gather = (side: 'train' | 'test', half: 'all' | 'low' | 'high') => {
    const xs: number[] = [];
    const ys: number[] = [];
    let dim = 0;
    for (const k of keys.filter((key) => splits[key] === side)) {
      const z = learner.taskRepresentations!(k, half);
      if (!z) return undefined;
      dim = z.dim;
      for (const v of z.values) xs.push(v);
      for (let i = 0; i < z.count; i++) for (const [, v] of params.get(k)!) ys.push(v);
    }
    return { x: xs, y: ys, n: dim > 0 ? xs.length / dim : 0, dim };
  };
  const train = gather('train', 'all');
  if (!train) return { skipped: 'this model has no task representation (task_representation none and no world model)' };
  const test = gather('test', 'all');
  if (!test || test.n === 0) return { skipped: 'no held-out tasks to probe' };
  if (train.n === 0) return { skipped: 'no training windows' };
  const probe = fitLinearProbe(train.x, train.y, train.n, train.dim, target.length);
  const low = gather('test', 'low')!;
  const high = gather('test', 'high')!;
  return {
    target,
    r2_train: probeR2(probe, train.x, train.y, train.n),
    r2_test: probeR2(probe, test.x, test.y, test.n),
    r2_test_low_return: low.n > 0 ? probeR2(probe, low.x, low.y, low.n) : NaN,
    r2_test_high_return: high.n > 0 ? probeR2(probe, high.x, high.y, high.n) : NaN,
    windows_train: train.n,
    windows_test: test.n,
  };
}

export async function evaluateTaskInference(
  learner: TaskInferenceLearner,
  tasks: ReadonlyArray<{ key: string; vec: VectorEnv; taskIndex?: number }>,
  opts: { episodes: number; seed: string; modes?: readonly TaskInferenceMode[]; maxSteps?: number; onTask?: (task: string, mode: TaskInferenceMode, result: ModeResult) => void },
): Promise<TaskInferenceResults> {
  const modes = [...(opts.modes ?? learner.inferenceModes)];
  for (const m of modes) if (!learner.inferenceModes.includes(m)) throw new Error(`evaluation mode '${m}' is not supported by this learner (it supports ${learner.inferenceModes.join(', ')})`);
  const splits = learner.taskSplits();
  const results: TaskInferenceResults = { format: 'troupe-task-inference', version: 1, modes, episodes: opts.episodes, seed: opts.seed, tasks: {}, summary: { train: {}, test: {} }, probe: { skipped: 'not measured' } };
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
  results.probe = representationProbe(learner, tasks.map((t) => t.key));
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
