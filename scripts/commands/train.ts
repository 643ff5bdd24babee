import fs from 'node:fs';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { parseRedisUrl, redactRedisUrl } from '../../runtime/core/redis-connection';
import { openRemoteRollout } from '../../runtime/training/remote-setup';
import type { MetricsRecord } from '../../runtime/core/metrics-log';
import { runLabel, runTasks } from '../../runtime/training/run-config';
import { type PreparedRun, claimRunDirectory, prepareRun } from '../../runtime/training/run-setup';
import { nativeTfSettings } from '../../runtime/core/tf-native-env';
import { activateRunBackend } from '../../runtime/training/run-backend';
import { RUN_INFO_FILE } from '../../runtime/training/run-directory';
import { type TrainingSummary, runTraining } from '../../runtime/training/training-run';
import { trainerFor } from '../../trainers/index';

export interface TrainCommandOptions {
  set: string[];
  out?: string;
  workers?: string;
  seed?: string;
  resume?: string;
  backend?: string;
  progress?: boolean;
  /** Redis URL of the rollout broker: the training envs run on `troupe rollout` hosts. */
  broker?: string;
}

/** `--workers`: a whole number ≥ 0 or `auto`, checked as the flag. */
function workersFlag(value: string): string {
  return value.trim() === 'auto' ? 'auto' : nonNegativeIntFlag(value, '--workers', " or 'auto'");
}

/** A flag that must be a whole number ≥ 0, checked as the flag (the config check would name only the key it sets). */
function nonNegativeIntFlag(value: string, flag: string, orElse = ''): string {
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) throw new Error(`${flag} must be a non-negative integer${orElse}, got '${value}'`);
  return value.trim();
}

function flagOverrides(opts: TrainCommandOptions): string[] {
  const sets = [...opts.set];
  if (opts.workers !== undefined) sets.push(`run.workers=${workersFlag(opts.workers)}`);
  if (opts.seed !== undefined) sets.push(`run.seed=${nonNegativeIntFlag(opts.seed, '--seed')}`);
  if (opts.backend !== undefined) sets.push(`run.backend=${opts.backend}`);
  return sets;
}

/** The command line as the run lock records it: a broker URL's password is never written down. */
function recordedCommand(argv: readonly string[]): string {
  const args = argv.map((arg, i) => (argv[i - 1] === '--broker' ? redactRedisUrl(arg) : arg.startsWith('--broker=') ? `--broker=${redactRedisUrl(arg.slice(9))}` : arg));
  return `troupe ${args.join(' ')}`;
}

export async function runTrainCommand(configFile: string | undefined, opts: TrainCommandOptions): Promise<void> {
  // A malformed broker URL is refused before anything is set up.
  if (opts.broker !== undefined) parseRedisUrl(opts.broker);
  let lastCollectTask = '';
  const prepared = await prepareRun(configFile, flagOverrides(opts), {
    ...opts,
    log: (line) => process.stdout.write(`${line}\n`),
    onCollectProgress: (p) => {
      if (p.task !== lastCollectTask) process.stdout.write(`[collect] task ${p.task} (${p.done}/${p.total} episodes so far)\n`);
      lastCollectTask = p.task;
    },
  });
  const claimed = claimRunDirectory(prepared, { command: recordedCommand(process.argv.slice(2)), note: (message) => process.stderr.write(`${message}\n`) });
  try {
    await trainIn(prepared, opts);
  } catch (error) {
    claimed.releaseAfterFailure();
    throw error;
  }
  claimed.release();
}

/** The `backend_choice` a run's run.json holds, if any (a missing or damaged file only loses the record). */
function recordedBackendChoice(runDir: string): Record<string, unknown> | undefined {
  try {
    const choice = (JSON.parse(fs.readFileSync(path.join(runDir, RUN_INFO_FILE), 'utf8')) as { backend_choice?: unknown }).backend_choice;
    return typeof choice === 'object' && choice !== null && !Array.isArray(choice) ? (choice as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function trainIn({ config, outDir, resume }: PreparedRun, opts: TrainCommandOptions): Promise<void> {
  const backend = await activateRunBackend(config, resume && { path: resume.path, recordedBackend: resume.data.backend, recordedChoice: recordedBackendChoice(resume.runDir) }, (message) =>
    process.stdout.write(`warning: ${message}\n`),
  );
  process.stdout.write(`backend: ${backend.name} (${backend.reason})\n`);
  if (resume && resume.data.backend !== backend.name) {
    process.stdout.write(`warning: ${resume.path} was trained on the ${resume.data.backend} backend; continuing on ${backend.name} is not bit-identical\n`);
  }
  const offline = trainerFor(config.algo.name).kind === 'offline';
  if (opts.broker !== undefined && offline) process.stdout.write(`note: --broker is ignored: ${config.algo.name} trains offline and steps no envs\n`);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const remote = opts.broker !== undefined && !offline ? await openRemoteRollout(config, outDir, opts.broker, say) : undefined;
  if (remote) say(remote.description);
  const unitName = offline ? 'gradient steps' : 'env steps';
  const total = offline ? (config.run.total_gradient_steps ?? 0) : config.run.total_env_steps;
  const tasks = runTasks(config);
  const uniform = tasks.every((t) => t.numEnvs === tasks[0].numEnvs && t.workers === tasks[0].workers);
  const envsText =
    tasks.length === 1
      ? `${tasks[0].numEnvs} envs, ${tasks[0].workers === 'auto' ? 'workers: auto' : `${tasks[0].workers} worker thread(s)`}`
      : uniform && tasks.length > 4
        ? `${tasks[0].numEnvs} envs and ${tasks[0].workers} workers per task`
        : tasks.map((t) => `${t.key}: ${t.numEnvs} envs, ${t.workers} workers`).join('; ');
  // Dozens of tasks (a task family) are named by count and range rather than one by one.
  const label = tasks.length > 6 ? `${tasks.length} tasks (${tasks[0].key} … ${tasks[tasks.length - 1].key})` : runLabel(config);
  const done = resume ? (offline ? (resume.data.counters.gradientSteps ?? 0) : resume.data.counters.envSteps) : 0;
  process.stdout.write(
    `${resume ? `resuming ${resume.path} (${done} ${unitName})` : 'training'}: ${config.algo.name} on ${label}, ` +
      `${total} ${unitName}, ${offline ? `eval ${envsText}` : envsText}, seed ${config.run.seed} → ${outDir}\n`,
  );

  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) {
      process.stderr.write('\nsecond interrupt: exiting without a checkpoint\n');
      process.exit(130);
    }
    stopRequested = true;
    process.stderr.write('\ninterrupt: saving a checkpoint at the next step boundary (Ctrl-C again to quit at once)\n');
  };
  process.on('SIGINT', onSigint);

  const useBar = opts.progress !== false && process.stderr.isTTY === true;
  const bar = useBar
    ? new SingleBar(
        { format: `{bar} {percentage}% | {value}/{total} ${unitName} | return {ret} | eval {evalRet} | {sps} steps/s | ETA {eta_formatted}`, hideCursor: true, etaBuffer: 50, barCompleteChar: '█', barIncompleteChar: '░' },
        Presets.shades_classic,
      )
    : undefined;
  const fmt = (x: number | null | undefined, digits = 3) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');
  let lastSps: number | null = null;
  const onRecord = (r: MetricsRecord) => {
    if (r.kind === 'train') lastSps = typeof r.steps_per_s === 'number' ? r.steps_per_s : lastSps;
    if (r.kind === 'eval' && typeof r.step_cap === 'number') {
      const task = typeof r.task === 'string' ? ` of task '${r.task}'` : '';
      process.stderr.write(
        `${useBar ? '\n' : ''}warning: evaluation${task} stopped at its step cap of ${r.step_cap} vector steps with ${r.episodes} of ${r.episodes_requested} episodes ended; does the env end its episodes? (raise the cap with run.eval_max_steps)\n`,
      );
    }
    if (useBar) return;
    const at = offline ? r.grad_steps : r.env_steps;
    const task = typeof r.task === 'string' ? ` ${r.task}` : '';
    if (r.kind === 'train') {
      const win = typeof r.win_rate === 'number' ? `  win ${fmt(r.win_rate, 2)}` : '';
      const losses = Object.keys(r).filter((k) => k === 'loss' || k.endsWith('_loss'));
      const body = offline ? losses.map((k) => `${k} ${fmt(r[k] as number | null)}`).join('  ') : `episodes ${r.episodes}  return ${fmt(r.return_mean as number | null)}${win}`;
      process.stdout.write(`[train]${task} ${at}/${total} ${unitName}  ${body}  ${fmt(lastSps, 0)} steps/s\n`);
    } else {
      const win = typeof r.win_rate === 'number' ? `  win ${fmt(r.win_rate, 2)}` : '';
      process.stdout.write(`[eval]${task}  ${at}/${total} ${unitName}  ${config.run.eval_greedy ? 'greedy' : 'sampled'} return ${fmt(r.return_mean as number)} ± ${fmt(r.return_std as number)}${win}  (${r.episodes} episodes)\n`);
    }
  };

  let summary: TrainingSummary;
  try {
    let barStarted = false;
    summary = await runTraining({
      ...(remote?.transportFor ? { rolloutTransport: (task) => remote.transportFor?.(task.key) } : {}),
      ...(remote?.broker ? { broker: remote.broker } : {}),
      config,
      outDir,
      backend: { ...backend, native: nativeTfSettings() },
      resume: resume ? { data: resume.data, path: resume.path } : undefined,
      shouldStop: () => stopRequested,
      onRecord,
      onNotice: (message) => process.stdout.write(`warning: ${message}\n`),
      onInfo: (message) => process.stdout.write(`${message}\n`),
      onTaskInference: (task, mode, r) => process.stdout.write(`[${mode}] ${task}: return ${fmt(r.return_mean)} ± ${fmt(r.return_std)} (${r.episodes} episodes)\n`),
      onProgress: (p) => {
        if (!bar) return;
        const payload = { ret: fmt(p.lastReturn), evalRet: fmt(p.lastEval?.meanReturn), sps: fmt(lastSps, 0) };
        if (!barStarted) {
          bar.start(p.totalSteps, p.steps, payload);
          barStarted = true;
        } else {
          bar.update(p.steps, payload);
        }
      },
    });
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
    await remote?.close();
  }
  const fe = summary.final_eval;
  const lines = [
    summary.interrupted
      ? `stopped at ${offline ? summary.grad_steps : summary.env_steps} ${unitName}; continue with: npx troupe train --resume ${outDir}`
      : offline
        ? `done: ${summary.grad_steps} gradient steps in ${summary.wall_time_s.toFixed(1)} s`
        : `done: ${summary.env_steps} env steps, ${summary.episodes} episodes, ${summary.updates} updates in ${summary.wall_time_s.toFixed(1)} s`,
  ];
  if (fe) lines.push(`final ${config.run.eval_greedy ? 'greedy' : 'sampled'} evaluation: return ${fmt(fe.return_mean)} ± ${fmt(fe.return_std)}${fe.win_rate !== null ? `, win rate ${fmt(fe.win_rate, 2)}` : ''}, length ${fmt(fe.length_mean, 1)} (${fe.episodes} episodes)`);
  for (const side of ['train', 'test'] as const) {
    const modes = Object.entries(summary.task_inference?.[side] ?? {});
    if (modes.length > 0) lines.push(`${side} tasks (${modes[0][1].tasks}): ${modes.map(([mode, m]) => `${mode} return ${fmt(m.return_mean)}`).join(', ')}`);
  }
  lines.push(`run directory: ${outDir} (metrics.jsonl, learning-curve.svg, checkpoints/, summary.json${summary.task_inference ? ', task-inference.json' : ''})`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
