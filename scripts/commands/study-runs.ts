import os from 'node:os';
import path from 'node:path';
import { studyRunLauncher } from '../../runtime/training/train-process';
import { type StudyOutcome, type StudyPlan, type StudyProgress, runTransferStudy } from '../../runtime/training/transfer-study';

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
    launch: studyRunLauncher(process.argv[1]),
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
