import fs from 'node:fs';
import YAML from 'yaml';
import { envSpecFor, isEnvModuleFile } from '../../envs/env-from-spec';
import { isRegistered as isRegisteredEnv } from '../../envs/registry';
import { parseEnvOptionFlags } from './check-env';
import { locateCheckpoint } from '../../runtime/core/checkpoint-locator';
import { parseSavedRunConfig } from '../../runtime/training/config-loader';
import { type EvalSummary, type PerTaskEvalSummary, type ScriptedPolicyChoice, evaluateCheckpoint, evaluatePerTask, evaluateScriptedPolicy } from '../../runtime/training/evaluate-policies';
import { runTasks } from '../../runtime/training/run-config';
import { evaluateTaskInferenceCheckpoint } from '../../runtime/training/task-inference-evaluation';
import { algorithmVariants, trainerFor } from '../../trainers/index';
import { TASK_INFERENCE_MODES, type TaskInferenceMode } from '../../trainers/learner';

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
  /** A multi-task run: evaluate this task only (default: every task). */
  task?: string;
  /** Env options (`--option key=value`, `--options '{…}'`) for an env id or module target, or for `--env`. */
  option: string[];
  options?: string;
  /** Meta-learner runs: the evaluation modes (required for them, refused for others). */
  mode?: string[];
  /** Vector steps after which evaluation stops with the episodes that ended (default: from the env's episode limit). */
  maxSteps?: string;
}

/** Says that the step cap cut an evaluation short, and how to lift it. */
function stepCapLine(cap: { maxSteps: number; requestedEpisodes: number }, finished: number): string {
  return `  step cap hit    stopped after ${cap.maxSteps} vector steps with ${finished} of ${cap.requestedEpisodes} episodes ended (does the env end its episodes? raise the cap with --max-steps)`;
}

function parsePositiveInt(value: string, flag: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`${flag} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got '${value}'`);
  return n;
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
    ...summary.tasks.filter((t) => t.stepCapHit).map((t) => `${t.kind}: ${stepCapLine(t.stepCapHit!, t.episodes).trim()}`),
  ].join('\n');
}

export async function runEvalCommand(target: string, opts: EvalCommandOptions): Promise<void> {
  const episodes = parsePositiveInt(opts.episodes, '--episodes');
  const numEnvs = parsePositiveInt(opts.envs, '--envs');
  const workers = parsePositiveInt(opts.workers, '--workers', true);
  if (workers > numEnvs) throw new Error(`--workers ${workers} exceeds --envs ${numEnvs}: each worker thread steps at least one env, so at most ${numEnvs} can be used`);
  // A run directory or checkpoint file; anything else names an env: an id, or an env module's path.
  const exists = fs.existsSync(target);
  const isCheckpoint = exists && (fs.statSync(target).isDirectory() || !isEnvModuleFile(target));
  // A missing path that cannot be an env module or a split id such as MT10/reach was meant as a run.
  if (!exists && (/\.ckpt$/i.test(target) || (/[\\/]/.test(target) && !isEnvModuleFile(target) && !isRegisteredEnv(target)))) {
    throw new Error(`'${target}' does not exist: expected a run directory, a .ckpt checkpoint file, an env id (see troupe envs) or an env module`);
  }
  const maxSteps = opts.maxSteps === undefined ? undefined : parsePositiveInt(opts.maxSteps, '--max-steps');
  const noise = opts.noise === undefined ? 0 : Number(opts.noise);
  if (!(Number.isFinite(noise) && noise >= 0)) throw new Error(`--noise must be a number ≥ 0, got '${opts.noise}'`);
  const scripted: ScriptedPolicyChoice = { policy: opts.policy === 'expert' ? 'expert' : 'random', noise };
  const envOptions = parseEnvOptionFlags(opts.options, opts.option);
  if (isCheckpoint && opts.env === undefined && Object.keys(envOptions).length > 0) throw new Error('--option/--options: a checkpoint is evaluated on the env it was trained on; give --env <id> to evaluate on another env with options');
  const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);
  const modes = opts.mode === undefined ? undefined : opts.mode.map((m) => m.trim());
  for (const m of modes ?? []) {
    if (!(TASK_INFERENCE_MODES as readonly string[]).includes(m)) throw new Error(`--mode must be one of ${TASK_INFERENCE_MODES.join(', ')}, got '${m}'`);
  }
  if (modes !== undefined && !isCheckpoint) throw new Error('--mode evaluates a trained meta-learner run; give its run directory or checkpoint');
  if (isCheckpoint && !opts.perTask) {
    const located = await locateCheckpoint(target);
    const algo = (located.data.config as { algo?: { name?: unknown } }).algo?.name;
    const meta = typeof algo === 'string' && algorithmVariants().some((a) => a.name === algo) && trainerFor(algo).taskInference === true;
    if (meta && modes === undefined) throw new Error(`${located.path} is a ${algo} run, which infers its task at test time: say how with --mode zero-shot, few-shot or demo (several: --mode zero-shot,few-shot)`);
    if (meta) {
      if (opts.env !== undefined || opts.sample || workers > 0) throw new Error(`--env, --sample and --workers do not apply to a ${algo} run (it acts on its own tasks, greedily, in-process)`);
      const results = await evaluateTaskInferenceCheckpoint(located.path, {
        modes: modes as TaskInferenceMode[],
        episodes,
        seed: opts.seed,
        numEnvs,
        task: opts.task,
        maxSteps,
        backend: opts.backend,
        log,
        onTask: opts.json ? undefined : (task, mode, r) => log(`  ${task.padEnd(10)} ${mode.padEnd(9)} return ${r.return_mean.toFixed(3)} ± ${r.return_std.toFixed(3)} (${r.episodes} episodes)`),
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
        return;
      }
      for (const side of ['train', 'test'] as const) {
        const rows = Object.entries(results.summary[side]);
        if (rows.length > 0) log(`${side} tasks (${rows[0][1]!.tasks}): ${rows.map(([mode, m]) => `${mode} ${m!.return_mean.toFixed(3)}`).join(', ')}`);
      }
      return;
    }
    if (modes !== undefined) throw new Error(`--mode: ${located.path} is a '${String(algo)}' run, which does not infer its task at test time; evaluate it without --mode`);
  }
  if (opts.perTask) {
    const perTask = await evaluatePerTask(target, { isCheckpoint, episodes, seed: opts.seed, numEnvs, workers, env: opts.env, task: opts.task, backend: opts.backend, sample: opts.sample, scripted, maxSteps, log });
    process.stdout.write(`${opts.json ? JSON.stringify(perTask, null, 2) : formatPerTask(perTask)}\n`);
    return;
  }
  if (!isCheckpoint) {
    if (opts.task !== undefined) throw new Error('--task names a task of a trained run; give a run directory or checkpoint');
    printSummary(await evaluateScriptedPolicy(envSpecFor(opts.env ?? target, envOptions), episodes, opts.seed, numEnvs, workers, scripted, maxSteps), opts);
    return;
  }
  // A multi-task run is evaluated task by task unless --task picks one.
  const located = await locateCheckpoint(target);
  const keys = opts.task !== undefined ? [opts.task] : runTasks(parseSavedRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`)).map((t) => t.key);
  const summaries: Array<EvalSummary & { task: string }> = [];
  for (const [i, task] of keys.entries()) {
    summaries.push(await evaluateCheckpoint(located.path, { episodes, seed: opts.seed, numEnvs, workers, env: opts.env, ...(Object.keys(envOptions).length > 0 ? { envOptions } : {}), task, backend: opts.backend, sample: opts.sample, maxSteps, log: i === 0 ? log : () => undefined }));
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(keys.length === 1 && opts.task === undefined ? summaries[0] : { tasks: summaries }, null, 2)}\n`);
    return;
  }
  for (const summary of summaries) printSummary(summary, { ...opts, json: false }, keys.length > 1 ? summary.task : undefined);
}

function printSummary(summary: EvalSummary, opts: EvalCommandOptions, task?: string): void {
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const what = summary.algo ? `${summary.algo} checkpoint ${summary.policy} (${summary.trainedEnvSteps} env steps), ${opts.sample ? 'sampling' : 'greedy'}` : `policy ${summary.policy}`;
  const lines = [
    `${task !== undefined ? `task ${task}: ` : ''}env ${summary.env}, ${what}, ${summary.episodes} episodes, seed ${summary.seed}`,
    ...(summary.episodes === 0
      ? ['  team return     — (no episode ended)']
      : [`  team return     ${summary.meanReturn.toFixed(4)} ± ${summary.stdReturn.toFixed(4)} (mean ± std)`, `  episode length  ${summary.meanLength.toFixed(2)}`]),
  ];
  if (summary.successRate !== null) lines.push(`  win/success     ${(summary.successRate * 100).toFixed(1)}%`);
  if (summary.stepCapHit) lines.push(stepCapLine(summary.stepCapHit, summary.episodes));
  process.stdout.write(`${lines.join('\n')}\n`);
}
