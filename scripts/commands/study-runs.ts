import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type PlannedRun, type StudyOutcome, type StudyPlan, type StudyProgress, configFileOf, runTransferStudy } from '../../runtime/training/transfer-study';

/*
 * What `troupe transfer` and `troupe sweep` share when they run a study on this machine: each
 * run a `troupe train` process of its own, `--jobs` at a time, with one progress line.
 */

/** `--backend` and `--attempts` say how queued runs go; on this machine each run's config decides. */
export function refuseQueueOnlyFlags(opts: { queue?: string; backend?: string; attempts?: string }): void {
  if (opts.queue !== undefined) return;
  const given = [opts.backend !== undefined ? '--backend' : '', opts.attempts !== undefined ? '--attempts' : ''].filter(Boolean);
  if (given.length > 0) throw new Error(`${given.join(' and ')} ${given.length > 1 ? 'apply' : 'applies'} to queued studies (--queue <url>) only; on this machine each run uses its config's run.backend (set it in the study)`);
}

export function jobsOf(opts: { jobs?: string }): number {
  const jobs = opts.jobs === undefined ? os.availableParallelism() : Number(opts.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a positive integer, got '${opts.jobs}'`);
  return jobs;
}

/** Trains the plan's runs `jobs` at a time with a progress line, then says what failed and how many finished. */
export async function trainPlannedRuns(plan: StudyPlan, jobs: number, label: string): Promise<StudyOutcome> {
  let last = '';
  const outcome = await runTransferStudy(plan, {
    jobs,
    launch: launchTrainProcess,
    onProgress: (p) => {
      const line = progressLine(p, label);
      if (line !== last) process.stdout.write(`${line}\n`);
      last = line;
    },
  });
  for (const f of outcome.failed) process.stderr.write(`failed: ${f.key} (exit code ${f.exitCode}; log ${f.logFile})\n`);
  if (outcome.skipped.length > 0) process.stderr.write(`not started (a run they need failed): ${outcome.skipped.join(', ')}\n`);
  const complete = outcome.finished.length === plan.runs.length;
  process.stdout.write(`${outcome.finished.length} of ${plan.runs.length} runs finished${complete ? '' : '; run the command again to resume the rest'}\n`);
  return outcome;
}

/** A path as printed: relative to the working directory when it lies below it. */
export function shown(f: string): string {
  return path.relative(process.cwd(), f).startsWith('..') ? f : path.relative(process.cwd(), f);
}

function progressLine(p: StudyProgress, label: string): string {
  const eta = p.etaSeconds === null ? '—' : `${Math.round(p.etaSeconds)} s`;
  return `[${label}] done ${p.done} | running ${p.running.length}${p.running.length ? ` (${p.running.join(', ')})` : ''} | left ${p.left} | failed ${p.failed.length} | ETA ${eta}`;
}

/**
 * One run as its own `troupe train` process (this CLI, this Node), its output in `<dir>.log`.
 * The child is told this process's id (TROUPE_PARENT_PID) and exits when it is gone, so a study
 * killed outright leaves no orphan writing into its run directory.
 */
export function launchTrainProcess(run: PlannedRun, how: { resume: boolean; logFile: string }): Promise<number> {
  const cli = process.argv[1];
  const args = how.resume ? ['train', '--resume', run.dir, '--no-progress'] : ['train', configFileOf(run), '--out', run.dir, '--no-progress'];
  const log = fs.openSync(how.logFile, 'a');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', log, log], env: { ...process.env, TROUPE_PARENT_PID: String(process.pid) } });
    child.on('error', (error) => {
      fs.closeSync(log);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      fs.closeSync(log);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}
