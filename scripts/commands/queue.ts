import os from 'node:os';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import type { Redis } from 'ioredis';
import {
  type StudyStatus,
  childProcessEvaluator,
  connectRunQueue,
  queuedRunLauncher,
  queuedStudyName,
  queuedStudyOf,
  runQueueEvaluationFiles,
  startRunWorker,
  studyBackend,
  studyIdOf,
  studyReport,
  studyStatus,
  submitStudy,
  writeReportFiles,
} from '../../runtime/training/run-queue';
import type { SweepPlan } from '../../runtime/training/sweep-study';
import type { MraPlan } from '../../runtime/training/mra-study';
import type { TransferPlan } from '../../runtime/training/transfer-study';
import { shown } from './study-runs';

/*
 * The run-queue commands: submitting a study (`troupe sweep|transfer --queue`), `troupe worker`,
 * and `troupe sweep status|report`. The queue logic lives in runtime/training/run-queue.ts.
 */

function positiveIntFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got '${value}'`);
  return n;
}

async function withQueue<T>(url: string, fn: (connection: Redis) => Promise<T>): Promise<T> {
  const connection = await connectRunQueue(url);
  try {
    return await fn(connection);
  } finally {
    connection.disconnect();
  }
}

/** `troupe sweep|transfer <study> --queue <url>`: submits the study's runs and its report job. */
export async function submitStudyCommand(plan: SweepPlan | TransferPlan | MraPlan, url: string, opts: { backend?: string; attempts?: string; dryRun?: boolean }): Promise<number> {
  const name = queuedStudyName(plan);
  const backend = studyBackend(plan, opts.backend);
  const study = queuedStudyOf(plan, name, backend);
  if (opts.dryRun) {
    process.stdout.write(`study ${study.id}: ${study.runs.length} runs on the ${backend} backend (dry run: nothing submitted)\n`);
    for (const r of study.runs) process.stdout.write(`  ${r.data.key}  job ${r.jobId.slice(0, 12)}${r.data.dependsOn.length ? `  (after ${r.data.dependsOn.map((d) => d.key).join(', ')})` : ''}\n`);
    return 0;
  }
  const attempts = positiveIntFlag(opts.attempts, '--attempts', 3);
  const outcome = await withQueue(url, (connection) => submitStudy(connection, study, { attempts, backoffMs: 5000 }));
  const what = outcome.added > 0 ? `${outcome.added} runs added${outcome.existing ? ` (${outcome.existing} already queued)` : ''}` : `already submitted: nothing added${outcome.retried ? `, ${outcome.retried} failed runs retried` : ''}`;
  process.stdout.write(`study ${study.id} (${study.runs.length} runs, ${backend} backend): ${what}\n`);
  process.stdout.write(`watch it: troupe sweep status ${study.name} --queue <url> --watch; report: troupe sweep report ${study.name} --queue <url>\n`);
  return 0;
}

/** One line per run: state, key, worker, progress or error. */
export function statusLines(status: StudyStatus): string[] {
  const lines: string[] = [];
  for (const run of status.runs) {
    const p = run.progress;
    const at = p?.env_steps !== undefined ? `  ${p.env_steps}/${p.total} env steps` : '';
    const numbers = `${p?.return_mean !== undefined ? `  return ${p.return_mean.toFixed(3)}` : ''}${p?.eval_return !== undefined ? `  eval ${p.eval_return.toFixed(3)}` : ''}`;
    if (run.state === 'running') lines.push(`  running  ${run.key}  on ${run.worker ?? '?'}${at}${numbers}`);
    else if (run.state === 'done') lines.push(`  done     ${run.key}${run.worker ? `  (${run.worker})` : ''}${numbers}`);
    else if (run.state === 'failed') lines.push(`  failed   ${run.key}  after ${run.attempts} attempts: ${run.error ?? 'no reason given'}`);
    else lines.push(`  ${run.state.padEnd(8)} ${run.key}${run.attempts > 0 ? `  (${run.attempts} failed attempt${run.attempts > 1 ? 's' : ''} so far${run.error ? `: ${run.error}` : ''})` : ''}`);
  }
  return lines;
}

export function countsLine(status: StudyStatus): string {
  const count = (s: string) => status.runs.filter((r) => r.state === s).length;
  return `study ${status.id}: ${status.runs.length} runs: ${count('done')} done, ${count('running')} running, ${count('waiting')} waiting, ${count('failed')} failed${count('missing') ? `, ${count('missing')} missing` : ''}; report ${status.report}`;
}

function settled(status: StudyStatus): boolean {
  const busy = status.runs.some((r) => r.state === 'running' || r.state === 'waiting');
  return status.report === 'done' || status.report === 'failed' || (!busy && status.runs.some((r) => r.state === 'failed'));
}

/** `troupe sweep status <study> --queue <url> [--watch]`. Exit code 1 when a run failed. */
export async function sweepStatusCommand(study: string, opts: { queue: string; watch?: boolean; interval?: string }): Promise<number> {
  const intervalMs = positiveIntFlag(opts.interval, '--interval', 2000);
  return withQueue(opts.queue, async (connection) => {
    const id = await studyIdOf(connection, study);
    let status = await studyStatus(connection, id);
    if (!opts.watch) {
      process.stdout.write(`${[countsLine(status), ...statusLines(status)].join('\n')}\n`);
      return status.runs.some((r) => r.state === 'failed') ? 1 : 0;
    }
    const tty = process.stdout.isTTY === true;
    const bar = tty ? new SingleBar({ format: '{bar} {value}/{total} runs done | running {running} | failed {failed} | report {report}', hideCursor: true }, Presets.shades_classic) : undefined;
    const done = (s: StudyStatus) => s.runs.filter((r) => r.state === 'done').length;
    const payload = (s: StudyStatus) => ({ running: s.runs.filter((r) => r.state === 'running').length, failed: s.runs.filter((r) => r.state === 'failed').length, report: s.report });
    bar?.start(status.runs.length, done(status), payload(status));
    let last = '';
    for (;;) {
      if (bar) bar.update(done(status), payload(status));
      else {
        const line = countsLine(status);
        if (line !== last) process.stdout.write(`${line}\n`);
        last = line;
      }
      if (settled(status)) break;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      status = await studyStatus(connection, id);
    }
    bar?.stop();
    process.stdout.write(`${[...(bar ? [countsLine(status)] : []), ...statusLines(status)].join('\n')}\n`);
    return status.runs.some((r) => r.state === 'failed') ? 1 : 0;
  });
}

/** `troupe sweep report <study> --queue <url> [--out dir]`: the report files from job results. */
export async function sweepReportCommand(study: string, opts: { queue: string; out?: string }): Promise<number> {
  return withQueue(opts.queue, async (connection) => {
    const id = await studyIdOf(connection, study);
    const report = await studyReport(connection, id);
    const dir = opts.out ?? path.join('runs', 'queue-reports', id);
    const files = writeReportFiles(report.files, dir);
    if (!report.complete) process.stdout.write(`the study is not finished: this report leaves out ${report.missing.length} runs (${report.missing.slice(0, 5).join(', ')}${report.missing.length > 5 ? ', …' : ''})\n`);
    process.stdout.write(`report: ${files.map(shown).join(', ')}\n`);
    return 0;
  });
}

export interface WorkerCommandOptions {
  queue: string;
  concurrency?: string;
  runsDir?: string;
  lockMs?: string;
  stalledMs?: string;
}

/** `troupe worker --queue <url>`: trains queued runs until SIGINT/SIGTERM (then checkpoints and stops). */
export async function runWorkerCommand(opts: WorkerCommandOptions): Promise<number> {
  const concurrency = positiveIntFlag(opts.concurrency, '--concurrency', 1);
  const lockDurationMs = positiveIntFlag(opts.lockMs ?? process.env.TROUPE_QUEUE_LOCK_MS, '--lock-ms', 30000);
  const stalledIntervalMs = positiveIntFlag(opts.stalledMs ?? process.env.TROUPE_QUEUE_STALLED_MS, '--stalled-ms', 30000);
  const runsDir = path.resolve(opts.runsDir ?? path.join('runs', 'queue'));
  const name = `${os.hostname()}:${process.pid}`;
  const log = (line: string) => process.stdout.write(`[worker ${name}] ${line}\n`);
  const reconnectForMs = positiveIntFlag(process.env.TROUPE_QUEUE_RECONNECT_MS, 'TROUPE_QUEUE_RECONNECT_MS', 60000);
  const evaluate = childProcessEvaluator(process.argv[1], path.join(runsDir, '.evaluations'), log);
  const worker = await startRunWorker(opts.queue, { name, concurrency, runsDir, launch: queuedRunLauncher(process.argv[1]), evaluate, lockDurationMs, stalledIntervalMs, reconnectForMs, log });
  let signals = 0;
  const stop = (signal: string) => {
    signals++;
    if (signals > 1) {
      log(`second ${signal}: exiting now`);
      process.exit(130);
    }
    log(`${signal}: taking no more jobs; running runs checkpoint and go back to the queue`);
    worker.close().catch((error: unknown) => {
      log(`stopping failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const why = await worker.closed;
  log(why === 'closed' ? 'stopped' : 'stopped: the queue is gone');
  // The queue's client may keep timers alive after a lost connection; nothing is left to wait for.
  process.exit(why === 'closed' ? 0 : 1);
}

/** `troupe queue-evaluate <request> <result>` (hidden): an evaluation or report a worker asks for. */
export async function queueEvaluateCommand(requestFile: string, resultFile: string): Promise<number> {
  await runQueueEvaluationFiles(requestFile, resultFile);
  return 0;
}
