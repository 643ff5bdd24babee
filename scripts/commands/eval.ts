import fs from 'node:fs';
import YAML from 'yaml';
import { RandomPolicy } from '../../agents/random-policy';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { locateCheckpoint } from '../../runtime/checkpoint-locator';
import { parseRunConfig } from '../../runtime/config-loader';
import { type EnvSpec, instantiateEnv, prepareEnvSpec } from '../../runtime/env-spec';
import { evaluatePolicy } from '../../runtime/evaluation';
import { deriveSeed } from '../../runtime/rng';
import { type BackendPreference, selectBackend } from '../../runtime/tf-backend';
import { VectorEnv } from '../../runtime/vector-env';
import { type VectorLayout, layoutFor } from '../../runtime/vector-layout';
import { createTrainer } from '../../trainers/create-trainer';

export interface EvalSummary {
  env: string;
  /** 'random', or the checkpoint evaluated (greedy). */
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
}

function parsePositiveInt(value: string, flag: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`${flag} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got '${value}'`);
  return n;
}

/**
 * Runs `episodes` complete episodes of uniformly random legal actions. Episodes are counted in
 * (step, env index) order, so the result is the same for any number of workers.
 */
export async function evaluateRandomPolicy(envId: string, episodes: number, seed: string, numEnvs: number, workers: number): Promise<EvalSummary> {
  registerBuiltinEnvs();
  const vec = await VectorEnv.create({ env: { id: envId }, numEnvs, workers, seed });
  try {
    const result = await evaluatePolicy(vec, new RandomPolicy(vec.layout, `${seed}/policy`), episodes);
    return { env: envId, policy: 'random', seed, ...result };
  } finally {
    await vec.close();
  }
}

/** The shape facts a trained network depends on; evaluating on another env needs them equal. */
function networkShape(layout: VectorLayout): Record<string, number | string> {
  return { agents: layout.agentIds.join(','), obsDim: layout.obsDim, numActions: layout.numActions, stateDim: layout.stateDim };
}

/** Greedy evaluation of a checkpoint (a run directory or a .ckpt file), optionally on another env of the same shape. */
export async function evaluateCheckpoint(target: string, opts: { episodes: number; seed: string; numEnvs: number; workers: number; env?: string; backend?: string; sample?: boolean; log: (line: string) => void }): Promise<EvalSummary> {
  registerBuiltinEnvs();
  const located = await locateCheckpoint(target);
  const config = parseRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`);
  const trainedOn: EnvSpec = config.env;
  const evalOn: EnvSpec = opts.env && opts.env !== config.env.id ? { id: opts.env } : config.env;
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

export async function runEvalCommand(target: string, opts: EvalCommandOptions): Promise<void> {
  const episodes = parsePositiveInt(opts.episodes, '--episodes');
  const numEnvs = parsePositiveInt(opts.envs, '--envs');
  const workers = parsePositiveInt(opts.workers, '--workers', true);
  const isCheckpoint = fs.existsSync(target);
  if (!isCheckpoint && opts.policy !== 'random') throw new Error(`'${target}' is neither a run directory nor a checkpoint file`);
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  const summary = isCheckpoint
    ? await evaluateCheckpoint(target, { episodes, seed: opts.seed, numEnvs, workers, env: opts.env, backend: opts.backend, sample: opts.sample, log })
    : await evaluateRandomPolicy(opts.env ?? target, episodes, opts.seed, numEnvs, workers);
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
