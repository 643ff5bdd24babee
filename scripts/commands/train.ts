import fs from 'node:fs';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import YAML from 'yaml';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { locateCheckpoint } from '../../runtime/core/checkpoint-locator';
import { RunConfigError, loadRunConfig, parseRunConfig } from '../../runtime/training/config-loader';
import type { MetricsRecord } from '../../runtime/core/metrics-log';
import type { RunConfig } from '../../runtime/training/run-config';
import { type BackendPreference, selectBackend } from '../../runtime/core/tf-backend';
import { type TrainingSummary, runTraining } from '../../runtime/training/training-run';
import { createTrainer } from '../../trainers/create-trainer';

export interface TrainCommandOptions {
  set: string[];
  out?: string;
  workers?: string;
  seed?: string;
  resume?: string;
  backend?: string;
  progress?: boolean;
}

/**
 * Run settings a resume may change: the worker count and the budget leave the numbers as they
 * would have been; another backend is allowed with a warning that results stop being bit-identical.
 */
const RESUME_MAY_CHANGE = new Set(['run.workers', 'run.total_env_steps', 'run.backend']);

function flagOverrides(opts: TrainCommandOptions): string[] {
  const sets = [...opts.set];
  if (opts.workers !== undefined) sets.push(`run.workers=${opts.workers}`);
  if (opts.seed !== undefined) sets.push(`run.seed=${opts.seed}`);
  if (opts.backend !== undefined) sets.push(`run.backend=${opts.backend}`);
  return sets;
}

/** Leaf key paths whose values differ between two configs. */
function differingKeys(a: unknown, b: unknown, prefix = ''): string[] {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isMap(a) && isMap(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differingKeys(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

function defaultOutDir(config: RunConfig): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return path.join('runs', `${config.env.id}_${config.algo.name}_seed${config.run.seed}_${stamp}`);
}

export async function runTrainCommand(configFile: string | undefined, opts: TrainCommandOptions): Promise<void> {
  registerBuiltinEnvs();
  const overrides = flagOverrides(opts);
  let config: RunConfig;
  let resume: Awaited<ReturnType<typeof locateCheckpoint>> | undefined;
  if (opts.resume) {
    resume = await locateCheckpoint(opts.resume);
    const source = `${resume.path} (saved config)`;
    const saved = parseRunConfig(YAML.stringify(resume.data.config), source);
    config = configFile ? loadRunConfig(configFile, overrides) : parseRunConfig(YAML.stringify(resume.data.config), source, overrides);
    const changed = differingKeys(saved, config).filter((k) => !RESUME_MAY_CHANGE.has(k));
    if (changed.length > 0) {
      throw new RunConfigError(
        `cannot resume ${resume.path} with a different config: ${changed.map((k) => `${k}`).join(', ')} differ from the saved run ` +
          `(a resume may only change ${[...RESUME_MAY_CHANGE].join(', ')})`,
      );
    }
  } else {
    if (!configFile) throw new Error('train needs a config file (e.g. configs/quickstart.yaml) or --resume <run-dir>');
    config = loadRunConfig(configFile, overrides);
  }

  const outDir = opts.out ?? resume?.runDir ?? defaultOutDir(config);
  if (!resume && fs.existsSync(path.join(outDir, 'metrics.jsonl'))) {
    throw new Error(`${outDir} already holds a run; continue it with --resume ${outDir} or choose another --out`);
  }
  if (resume && path.resolve(outDir) !== path.resolve(resume.runDir)) {
    // Resuming into a new directory: carry the metrics so far along, so the file is complete.
    fs.mkdirSync(outDir, { recursive: true });
    const from = path.join(resume.runDir, 'metrics.jsonl');
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(outDir, 'metrics.jsonl'));
  }

  const backend = await selectBackend(config.run.backend as BackendPreference);
  process.stdout.write(`backend: ${backend.backend} (${backend.reason})\n`);
  if (resume && resume.data.backend !== backend.backend) {
    process.stdout.write(`warning: ${resume.path} was trained on the ${resume.data.backend} backend; continuing on ${backend.backend} is not bit-identical\n`);
  }
  process.stdout.write(
    `${resume ? `resuming ${resume.path} (${resume.data.counters.envSteps} env steps)` : 'training'}: ${config.algo.name} on ${config.env.id}, ` +
      `${config.run.total_env_steps} env steps, ${config.run.num_envs} envs, ${config.run.workers} worker thread(s), seed ${config.run.seed} → ${outDir}\n`,
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
        { format: '{bar} {percentage}% | {value}/{total} env steps | return {ret} | eval {evalRet} | {sps} steps/s | ETA {eta_formatted}', hideCursor: true, etaBuffer: 50, barCompleteChar: '█', barIncompleteChar: '░' },
        Presets.shades_classic,
      )
    : undefined;
  const fmt = (x: number | null | undefined, digits = 3) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');
  let lastSps: number | null = null;
  const onRecord = (r: MetricsRecord) => {
    if (r.kind === 'train') lastSps = typeof r.steps_per_s === 'number' ? r.steps_per_s : lastSps;
    if (useBar) return;
    const total = config.run.total_env_steps;
    if (r.kind === 'train') {
      const win = typeof r.win_rate === 'number' ? `  win ${fmt(r.win_rate, 2)}` : '';
      process.stdout.write(`[train] ${r.env_steps}/${total} env steps  episodes ${r.episodes}  return ${fmt(r.return_mean as number | null)}${win}  ${fmt(lastSps, 0)} steps/s\n`);
    } else {
      const win = typeof r.win_rate === 'number' ? `  win ${fmt(r.win_rate, 2)}` : '';
      process.stdout.write(`[eval]  ${r.env_steps}/${total} env steps  ${config.run.eval_greedy ? 'greedy' : 'sampled'} return ${fmt(r.return_mean as number)} ± ${fmt(r.return_std as number)}${win}  (${r.episodes} episodes)\n`);
    }
  };

  let summary: TrainingSummary;
  try {
    let barStarted = false;
    summary = await runTraining({
      config,
      outDir,
      backend: { name: backend.backend, reason: backend.reason },
      createTrainer,
      resume: resume ? { data: resume.data, path: resume.path } : undefined,
      shouldStop: () => stopRequested,
      onRecord,
      onProgress: (p) => {
        if (!bar) return;
        const payload = { ret: fmt(p.lastReturn), evalRet: fmt(p.lastEval?.meanReturn), sps: fmt(lastSps, 0) };
        if (!barStarted) {
          bar.start(p.totalEnvSteps, p.envSteps, payload);
          barStarted = true;
        } else {
          bar.update(p.envSteps, payload);
        }
      },
    });
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
  }
  const fe = summary.final_eval;
  const lines = [
    summary.interrupted ? `stopped at ${summary.env_steps} env steps; continue with: npx troupe train --resume ${outDir}` : `done: ${summary.env_steps} env steps, ${summary.episodes} episodes, ${summary.updates} updates in ${summary.wall_time_s.toFixed(1)} s`,
  ];
  if (fe) lines.push(`final ${config.run.eval_greedy ? 'greedy' : 'sampled'} evaluation: return ${fmt(fe.return_mean)} ± ${fmt(fe.return_std)}${fe.win_rate !== null ? `, win rate ${fmt(fe.win_rate, 2)}` : ''}, length ${fmt(fe.length_mean, 1)} (${fe.episodes} episodes)`);
  lines.push(`run directory: ${outDir} (metrics.jsonl, learning-curve.svg, checkpoints/, summary.json)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
