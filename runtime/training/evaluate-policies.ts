/*
 * Evaluating policies on envs, as `troupe eval` does: a random or scripted policy on an env id,
 * a trained run's policy (inference-only) on the env it trained on or another of its shape, and
 * per member task of a benchmark split.
 */
import YAML from 'yaml';
import { loadPolicy } from '../../agents/load-policy';
import { RandomPolicy } from '../../agents/policies/random-policy';
import { expertPolicyFor } from '../../agents/policies/experts/expert-policy';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { shapeDifferences } from '../../envs/env-shape';
import type { EnvSpec } from '../../envs/env-spec';
import { splitKinds } from '../../envs/manipulation/benchmark-split';
import { parseSplitEnvId } from '../../envs/manipulation/register-splits';
import { type LocatedCheckpoint, locateCheckpoint } from '../core/checkpoint-locator';
import { deriveSeed } from '../core/rng';
import { selectBackendForRun } from '../core/tf-backend';
import { evaluatePolicy } from '../rollout/evaluation';
import { VectorEnv } from '../rollout/vector-env';
import { TRAINERS, trainerFor } from '../../trainers/index';
import { parseSavedRunConfig } from './config-loader';
import { rebuildLearner } from './learner-checkpoint';
import { runTasks } from './run-config';

export interface EvalSummary {
  env: string;
  /** 'random', 'expert (noise σ)', or the checkpoint evaluated. */
  policy: string;
  episodes: number;
  seed: string;
  meanReturn: number;
  stdReturn: number;
  meanLength: number;
  /** Win / success rate; null when the task defines none. */
  successRate: number | null;
  /** Present when the step cap stopped the evaluation early (see `EvaluationResult.stepCapHit`). */
  stepCapHit?: { maxSteps: number; requestedEpisodes: number };
  /** For checkpoints: the algorithm, the env steps it had trained for, and greedy or sampled actions. */
  algo?: string;
  mode?: 'greedy' | 'sample';
  trainedEnvSteps?: number;
  backend?: string;
}

/** `--per-task`: one evaluation per member kind of a benchmark split, and their means. */
export interface PerTaskEvalSummary {
  /** The split env, e.g. `MT10` or `ML10:test`. */
  env: string;
  policy: string;
  seed: string;
  episodesPerTask: number;
  /** One summary per member kind, evaluated on the fixed-kind env `<env>/<kind>`. */
  tasks: Array<EvalSummary & { kind: string }>;
  /** The unweighted means over tasks (Meta-World's headline number is meanSuccessRate). */
  meanSuccessRate: number;
  meanReturn: number;
}

/** A policy that needs no checkpoint: uniformly random legal actions, or a task's scripted expert. */
export interface ScriptedPolicyChoice {
  policy: 'random' | 'expert';
  /** The expert's Gaussian action noise (standard deviation). */
  noise?: number;
}

/**
 * Runs `episodes` complete episodes of uniformly random legal actions, or of the env's scripted
 * expert (manipulation tasks, point-robot; the env's options reach the expert). Episodes are counted in (step, env index) order, so the result is
 * the same for any number of workers.
 */
export async function evaluateScriptedPolicy(env: string | EnvSpec, episodes: number, seed: string, numEnvs: number, workers: number, choice: ScriptedPolicyChoice = { policy: 'random' }, maxSteps?: number): Promise<EvalSummary> {
  registerBuiltinEnvs();
  const spec = typeof env === 'string' ? { id: env } : env;
  const envId = spec.id;
  if (choice.policy === 'expert' && spec.module) throw new Error(`--policy expert: only built-in envs (the manipulation tasks, point-robot) have a scripted expert; ${spec.module} is a user env module`);
  const vec = await VectorEnv.create({ env: spec, numEnvs, workers, seed });
  try {
    const policy =
      choice.policy === 'expert'
        ? expertPolicyFor(envId, vec.layout, { noise: choice.noise ?? 0, seed: `${seed}/policy`, envOptions: spec.options })
        : new RandomPolicy(vec.layout, `${seed}/policy`);
    const result = await evaluatePolicy(vec, policy, episodes, 0, { maxSteps });
    const name = choice.policy === 'expert' ? `expert (noise ${choice.noise ?? 0})` : 'random';
    return { env: envId, policy: name, seed, ...result };
  } finally {
    await vec.close();
  }
}

/**
 * Evaluation of a trained run's policy (a run directory or a .ckpt file) for `numEnvs` envs —
 * greedy, or sampling with `sample` — on the env it trained on or on another env of the same
 * shape. Only the policy is loaded (`loadPolicy`): no learner, optimiser or replay. A multi-task
 * run's task is named by `task` (its only task by default).
 */
export async function evaluateCheckpoint(target: string, opts: { episodes: number; seed: string; numEnvs: number; workers: number; env?: string; envOptions?: Record<string, unknown>; task?: string; backend?: string; sample?: boolean; maxSteps?: number; log: (line: string) => void }): Promise<EvalSummary & { task: string }> {
  registerBuiltinEnvs();
  const located = await locateCheckpoint(target);
  const config = parseSavedRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`);
  if (opts.sample && trainerFor(config.algo.name).valueBased) {
    const sampling = TRAINERS.filter((t) => !t.valueBased && !t.taskInference).flatMap((t) => t.algorithms.map((a) => a.name));
    throw new Error(`${located.path}: cannot sample actions: ${config.algo.name} is value-based and acts greedily (the argmax of its Q-values); sampling applies to policy-gradient runs (${sampling.join(', ')})`);
  }
  // The run's recorded backend unless --backend says otherwise: results are bit-identical within a backend, not across.
  const backend = await selectBackendForRun(opts.backend, located.data.backend, config.run.backend, located.path);
  opts.log(`backend: ${backend.backend} (${backend.reason})`);
  if (trainerFor(config.algo.name).evaluatesRebuilt) return evaluateRebuiltLearner(located, opts, backend.backend);
  const policy = await loadPolicy(located.path, { numEnvs: opts.numEnvs, task: opts.task, mode: opts.sample ? 'sample' : 'greedy', seed: deriveSeed(opts.seed, 'eval-policy') });
  try {
    const trainedOn = runTasks(config).find((t) => t.key === policy.task);
    if (!trainedOn) throw new Error(`${located.path}: its saved config has no task '${policy.task}'`);
    const evalOn: EnvSpec = opts.env && opts.env !== trainedOn.env.id ? { id: opts.env, ...(opts.envOptions ? { options: opts.envOptions } : {}) } : trainedOn.env;
    const vec = await VectorEnv.create({ env: evalOn, numEnvs: opts.numEnvs, workers: opts.workers, seed: opts.seed });
    try {
      const differences = shapeDifferences(policy.spec.shape, vec.layout);
      if (differences.length > 0) {
        throw new Error(`${located.path} was trained on '${trainedOn.env.id}', whose networks do not fit '${evalOn.id}': ${differences.join('; ')}`);
      }
      const result = await evaluatePolicy(vec, policy, opts.episodes, 0, { taskIndex: runTasks(config).indexOf(trainedOn), maxSteps: opts.maxSteps });
      return {
        env: evalOn.id,
        task: policy.task,
        policy: located.path,
        seed: opts.seed,
        ...result,
        algo: config.algo.name,
        mode: opts.sample ? 'sample' : 'greedy',
        trainedEnvSteps: located.data.counters.envSteps,
        backend: backend.backend,
      };
    } finally {
      await vec.close();
    }
  } finally {
    policy.dispose();
  }
}

/**
 * Evaluates a policy on each member kind of a benchmark split env separately (`<env>/<kind>`: the
 * split's env fixed to that kind, same observation layout), `episodes` episodes each. For a
 * checkpoint, the split is the env it was trained on unless `env` names another.
 */
export async function evaluatePerTask(target: string, opts: { isCheckpoint: boolean; episodes: number; seed: string; numEnvs: number; workers: number; env?: string; task?: string; backend?: string; sample?: boolean; scripted?: ScriptedPolicyChoice; maxSteps?: number; log: (line: string) => void }): Promise<PerTaskEvalSummary> {
  registerBuiltinEnvs();
  let splitEnv: string;
  let envOptions: Record<string, unknown> | undefined;
  if (opts.isCheckpoint) {
    const located = await locateCheckpoint(target);
    const tasks = runTasks(parseSavedRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`));
    const trainedOn = (opts.task ? tasks.find((t) => t.key === opts.task) : tasks[0])?.env;
    if (!trainedOn) throw new Error(`${located.path}: no task '${opts.task}' (tasks: ${tasks.map((t) => t.key).join(', ')})`);
    splitEnv = opts.env ?? trainedOn.id;
    // The trained-on env's options (seed, horizon) carry over to its per-task envs.
    if (splitEnv === trainedOn.id) envOptions = trainedOn.options;
  } else {
    splitEnv = opts.env ?? target;
  }
  const parsed = parseSplitEnvId(splitEnv);
  if (!parsed) throw new Error(`--per-task needs a benchmark split env (MT10, ML10, ML10:test, ML1-<kind>, ML1-<kind>:test), got '${splitEnv}'`);
  if (parsed.kind !== undefined) throw new Error(`--per-task: '${splitEnv}' is already fixed to one task; give the split itself ('${splitEnv.slice(0, splitEnv.lastIndexOf('/'))}')`);
  const tasks: PerTaskEvalSummary['tasks'] = [];
  let policy = 'random';
  for (const kind of splitKinds(parsed.split, parsed.role)) {
    const env = `${splitEnv}/${kind}`;
    // The backend line once, not once per task.
    const log = tasks.length === 0 ? opts.log : () => undefined;
    const summary = opts.isCheckpoint
      ? await evaluateCheckpoint(target, { episodes: opts.episodes, seed: opts.seed, numEnvs: opts.numEnvs, workers: opts.workers, env, envOptions, task: opts.task, backend: opts.backend, sample: opts.sample, maxSteps: opts.maxSteps, log })
      : await evaluateScriptedPolicy(env, opts.episodes, opts.seed, opts.numEnvs, opts.workers, opts.scripted, opts.maxSteps);
    policy = summary.policy;
    tasks.push({ kind, ...summary });
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    env: splitEnv,
    policy,
    seed: opts.seed,
    episodesPerTask: opts.episodes,
    tasks,
    meanSuccessRate: mean(tasks.map((t) => t.successRate ?? 0)),
    meanReturn: mean(tasks.map((t) => t.meanReturn)),
  };
}

/**
 * `evaluateCheckpoint` for a learner that acts only as a whole (MRA): rebuilt from its run, it
 * plays its task (`opts.task`, else the first) or, with `opts.env`, any env its networks fit.
 */
async function evaluateRebuiltLearner(
  located: LocatedCheckpoint,
  opts: { episodes: number; seed: string; numEnvs: number; workers: number; env?: string; envOptions?: Record<string, unknown>; task?: string; sample?: boolean; maxSteps?: number },
  backend: string,
): Promise<EvalSummary & { task: string }> {
  const { learner, config, tasks } = await rebuildLearner(located);
  try {
    const task = opts.task === undefined ? tasks[0] : tasks.find((t) => t.key === opts.task);
    if (!task) throw new Error(`${located.path}: no task '${opts.task}' (tasks: ${tasks.map((t) => t.key).join(', ')})`);
    const evalOn: EnvSpec = opts.env && opts.env !== task.env.id ? { id: opts.env, ...(opts.envOptions ? { options: opts.envOptions } : {}) } : task.env;
    const vec = await VectorEnv.create({ env: evalOn, numEnvs: opts.numEnvs, workers: opts.workers, seed: opts.seed });
    try {
      const seed = deriveSeed(opts.seed, 'eval-policy');
      const options = { sample: opts.sample };
      let policy;
      if (evalOn === task.env) policy = learner.evaluationPolicy(task.key, opts.numEnvs, seed, options);
      else if (learner.evaluationPolicyForShape) {
        try {
          policy = learner.evaluationPolicyForShape(vec.layout, opts.numEnvs, seed, options);
        } catch (error) {
          throw new Error(`${located.path} cannot act in '${evalOn.id}': ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      else throw new Error(`${located.path}: a ${config.algo.name} run acts only on its own tasks, not '${evalOn.id}'`);
      const result = await evaluatePolicy(vec, policy, opts.episodes, 0, { taskIndex: task.index, maxSteps: opts.maxSteps });
      return { env: evalOn.id, task: task.key, policy: located.path, seed: opts.seed, ...result, algo: config.algo.name, mode: opts.sample ? 'sample' : 'greedy', trainedEnvSteps: located.data.counters.envSteps, backend };
    } finally {
      await vec.close();
    }
  } finally {
    learner.dispose();
  }
}
