import fs from 'node:fs';
import YAML from 'yaml';
import { RandomPolicy } from '../../agents/policies/random-policy';
import { expertPolicyFor } from '../../agents/policies/experts/expert-policy';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { splitKinds } from '../../envs/manipulation/benchmark-split';
import { parseSplitEnvId } from '../../envs/manipulation/register-splits';
import { locateCheckpoint } from '../../runtime/core/checkpoint-locator';
import { parseRunConfig } from '../../runtime/training/config-loader';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import type { EnvSpec } from '../../envs/env-spec';
import { evaluatePolicy } from '../../runtime/rollout/evaluation';
import { deriveSeed } from '../../runtime/core/rng';
import { type BackendPreference, selectBackend } from '../../runtime/core/tf-backend';
import { VectorEnv } from '../../runtime/rollout/vector-env';
import { type VectorLayout, layoutFor } from '../../runtime/rollout/vector-layout';
import { createTrainer } from '../../trainers/create-trainer';

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
  /** For checkpoints: the algorithm, the env steps it had trained for, and greedy or sampled actions. */
  algo?: string;
  mode?: 'greedy' | 'sample';
  trainedEnvSteps?: number;
  backend?: string;
}

export interface EvalCommandOptions {
  policy: string;
  episodes: string;
  seed: string;
  envs: string;
  workers: string;
  env?: string;
  backend?: string;
  sample?: boolean;
  json?: boolean;
  /** Benchmark split envs: evaluate each member kind separately. */
  perTask?: boolean;
  /** `--policy expert`: standard deviation of the expert's action noise. */
  noise?: string;
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

function parsePositiveInt(value: string, flag: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`${flag} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got '${value}'`);
  return n;
}

/** A policy that needs no checkpoint: uniformly random legal actions, or a task's scripted expert. */
export interface ScriptedPolicyChoice {
  policy: 'random' | 'expert';
  /** The expert's Gaussian action noise (standard deviation). */
  noise?: number;
}

/**
 * Runs `episodes` complete episodes of uniformly random legal actions, or of the env's scripted
 * expert (manipulation tasks). Episodes are counted in (step, env index) order, so the result is
 * the same for any number of workers.
 */
export async function evaluateScriptedPolicy(envId: string, episodes: number, seed: string, numEnvs: number, workers: number, choice: ScriptedPolicyChoice = { policy: 'random' }): Promise<EvalSummary> {
  registerBuiltinEnvs();
  const vec = await VectorEnv.create({ env: { id: envId }, numEnvs, workers, seed });
  try {
    const policy =
      choice.policy === 'expert'
        ? expertPolicyFor(envId, vec.layout, { noise: choice.noise ?? 0, seed: `${seed}/policy` })
        : new RandomPolicy(vec.layout, `${seed}/policy`);
    const result = await evaluatePolicy(vec, policy, episodes);
    const name = choice.policy === 'expert' ? `expert (noise ${choice.noise ?? 0})` : 'random';
    return { env: envId, policy: name, seed, ...result };
  } finally {
    await vec.close();
  }
}

/** The shape facts a trained network depends on; evaluating on another env needs them equal. */
function networkShape(layout: VectorLayout): Record<string, number | string> {
  return { agents: layout.agentIds.join(','), obsDim: layout.obsDim, numActions: layout.numActions, stateDim: layout.stateDim };
}

/** Greedy evaluation of a checkpoint (a run directory or a .ckpt file), optionally on another env of the same shape. */
export async function evaluateCheckpoint(target: string, opts: { episodes: number; seed: string; numEnvs: number; workers: number; env?: string; envOptions?: Record<string, unknown>; backend?: string; sample?: boolean; log: (line: string) => void }): Promise<EvalSummary> {
  registerBuiltinEnvs();
  const located = await locateCheckpoint(target);
  const config = parseRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`);
  const trainedOn: EnvSpec = config.env;
  const evalOn: EnvSpec = opts.env && opts.env !== config.env.id ? { id: opts.env, ...(opts.envOptions ? { options: opts.envOptions } : {}) } : config.env;
  const backend = await selectBackend((opts.backend ?? config.run.backend) as BackendPreference);
  opts.log(`backend: ${backend.backend} (${backend.reason})`);
  if (evalOn !== trainedOn) {
    await prepareEnvSpec(trainedOn);
    const probe = instantiateEnv(trainedOn);
    const trained = networkShape(layoutFor(probe, 1));
    probe.close?.();
    await prepareEnvSpec(evalOn);
    const probe2 = instantiateEnv(evalOn);
    const other = networkShape(layoutFor(probe2, 1));
    probe2.close?.();
    const differences = Object.keys(trained).filter((k) => trained[k] !== other[k]).map((k) => `${k} ${trained[k]} vs ${other[k]}`);
    if (differences.length > 0) {
      throw new Error(`${located.path} was trained on '${trainedOn.id}', whose networks do not fit '${evalOn.id}': ${differences.join('; ')}`);
    }
  }
  const vec = await VectorEnv.create({ env: evalOn, numEnvs: opts.numEnvs, workers: opts.workers, seed: opts.seed });
  const trainer = createTrainer(vec.layout, config);
  try {
    const data = located.data;
    const trainerArrays = Object.fromEntries(Object.entries(data.arrays).filter(([k]) => k.startsWith('trainer/')).map(([k, v]) => [k.slice('trainer/'.length), v]));
    const json = data.metadata.trainer;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${located.path}: field 'metadata.trainer' must be a map (not a training checkpoint?)`);
    try {
      await trainer.restoreState({ models: data.models, optimizers: data.optimizers, rngs: data.rngs, arrays: trainerArrays, json });
    } catch (error) {
      throw new Error(`${located.path}: cannot restore the trainer: ${(error as Error).message}`);
    }
    const policy = trainer.evaluationPolicy(vec.layout, deriveSeed(opts.seed, 'eval-policy'), { sample: opts.sample });
    const result = await evaluatePolicy(vec, policy, opts.episodes);
    return {
      env: evalOn.id,
      policy: located.path,
      seed: opts.seed,
      ...result,
      algo: config.algo.name,
      mode: opts.sample ? 'sample' : 'greedy',
      trainedEnvSteps: data.counters.envSteps,
      backend: backend.backend,
    };
  } finally {
    trainer.dispose();
    await vec.close();
  }
}

/**
 * Evaluates a policy on each member kind of a benchmark split env separately (`<env>/<kind>`: the
 * split's env fixed to that kind, same observation layout), `episodes` episodes each. For a
 * checkpoint, the split is the env it was trained on unless `env` names another.
 */
export async function evaluatePerTask(target: string, opts: { isCheckpoint: boolean; episodes: number; seed: string; numEnvs: number; workers: number; env?: string; backend?: string; sample?: boolean; scripted?: ScriptedPolicyChoice; log: (line: string) => void }): Promise<PerTaskEvalSummary> {
  registerBuiltinEnvs();
  let splitEnv: string;
  let envOptions: Record<string, unknown> | undefined;
  if (opts.isCheckpoint) {
    const located = await locateCheckpoint(target);
    const trainedOn = parseRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`).env;
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
      ? await evaluateCheckpoint(target, { episodes: opts.episodes, seed: opts.seed, numEnvs: opts.numEnvs, workers: opts.workers, env, envOptions, backend: opts.backend, sample: opts.sample, log })
      : await evaluateScriptedPolicy(env, opts.episodes, opts.seed, opts.numEnvs, opts.workers, opts.scripted);
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

function formatPerTask(summary: PerTaskEvalSummary): string {
  const width = Math.max(4, ...summary.tasks.map((t) => t.kind.length));
  const row = (name: string, success: string, ret: string, length: string) => `  ${name.padEnd(width)}  ${success.padStart(8)}  ${ret.padStart(20)}  ${length.padStart(7)}`;
  const first = summary.tasks[0];
  const what = first?.algo ? `${first.algo} checkpoint ${summary.policy} (${first.trainedEnvSteps} env steps), ${first.mode === 'sample' ? 'sampling' : 'greedy'}` : `policy ${summary.policy}`;
  return [
    `env ${summary.env} per task, ${what}, ${summary.episodesPerTask} episodes per task, seed ${summary.seed}`,
    row('task', 'success', 'return (mean ± std)', 'length'),
    ...summary.tasks.map((t) =>
      row(t.kind, t.successRate === null ? '-' : `${(t.successRate * 100).toFixed(1)}%`, `${t.meanReturn.toFixed(2)} ± ${t.stdReturn.toFixed(2)}`, t.meanLength.toFixed(1)),
    ),
    row('mean', `${(summary.meanSuccessRate * 100).toFixed(1)}%`, summary.meanReturn.toFixed(2), ''),
  ].join('\n');
}

export async function runEvalCommand(target: string, opts: EvalCommandOptions): Promise<void> {
  const episodes = parsePositiveInt(opts.episodes, '--episodes');
  const numEnvs = parsePositiveInt(opts.envs, '--envs');
  const workers = parsePositiveInt(opts.workers, '--workers', true);
  const isCheckpoint = fs.existsSync(target);
  if (!isCheckpoint && opts.policy !== 'random' && opts.policy !== 'expert') throw new Error(`'${target}' is neither a run directory nor a checkpoint file`);
  const noise = opts.noise === undefined ? 0 : Number(opts.noise);
  if (!(Number.isFinite(noise) && noise >= 0)) throw new Error(`--noise must be a number ≥ 0, got '${opts.noise}'`);
  const scripted: ScriptedPolicyChoice = { policy: opts.policy === 'expert' ? 'expert' : 'random', noise };
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  if (opts.perTask) {
    const perTask = await evaluatePerTask(target, { isCheckpoint, episodes, seed: opts.seed, numEnvs, workers, env: opts.env, backend: opts.backend, sample: opts.sample, scripted, log });
    process.stdout.write(`${opts.json ? JSON.stringify(perTask, null, 2) : formatPerTask(perTask)}\n`);
    return;
  }
  const summary = isCheckpoint
    ? await evaluateCheckpoint(target, { episodes, seed: opts.seed, numEnvs, workers, env: opts.env, backend: opts.backend, sample: opts.sample, log })
    : await evaluateScriptedPolicy(opts.env ?? target, episodes, opts.seed, numEnvs, workers, scripted);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const what = isCheckpoint ? `${summary.algo} checkpoint ${summary.policy} (${summary.trainedEnvSteps} env steps), ${opts.sample ? 'sampling' : 'greedy'}` : `policy ${summary.policy}`;
  const lines = [
    `env ${summary.env}, ${what}, ${summary.episodes} episodes, seed ${summary.seed}`,
    `  team return     ${summary.meanReturn.toFixed(4)} ± ${summary.stdReturn.toFixed(4)} (mean ± std)`,
    `  episode length  ${summary.meanLength.toFixed(2)}`,
  ];
  if (summary.successRate !== null) lines.push(`  win/success     ${(summary.successRate * 100).toFixed(1)}%`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
