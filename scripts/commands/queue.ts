import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import type { Redis } from 'ioredis';
import YAML from 'yaml';
import {
  type LaunchedRun,
  type QueueBackend,
  type QueueRunLauncher,
  type StudyStatus,
  connectRunQueue,
  findStudyId,
  queuedStudyOf,
  startRunWorker,
  studyReport,
  studyStatus,
  submitStudy,
  writeReportFiles,
} from '../../runtime/training/run-queue';
import type { SweepPlan } from '../../runtime/training/sweep-study';
import { loadSweepStudy, sweepName } from '../../runtime/training/sweep-study';
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

/** One backend for the whole study: the flag, else the runs' own `run.backend` (all alike), `auto` meaning wasm. */
function studyBackend(plan: SweepPlan | TransferPlan | MraPlan, flag: string | undefined): QueueBackend {
  const chosen = flag ?? [...new Set(plan.runs.map((r) => String((r.config.run as { backend?: string } | undefined)?.backend ?? 'auto')))].join(', ');
  if (chosen.includes(', ')) throw new Error(`${plan.file}: the runs ask for different backends (${chosen}); a queued study runs on one backend (results are reproducible per backend only): set run.backend once or pass --backend`);
  // Workers differ in what loads; wasm loads everywhere and is bit-reproducible across machines.
  return chosen === 'auto' ? 'wasm' : (chosen as QueueBackend);
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
  const name = 'kind' in plan && plan.kind === 'sweep' ? plan.name : path.basename(plan.file).replace(/\.ya?ml$/i, '');
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

/** A study named by its file (its name), its name, or its id. */
async function studyIdOf(connection: Redis, study: string): Promise<string> {
  let key = study;
  if (/\.ya?ml$/i.test(study) && fs.existsSync(study)) {
    // A sweep file may name its study; a transfer study is named by its file.
    const isSweep = (YAML.parse(fs.readFileSync(study, 'utf8')) as Record<string, unknown> | null)?.grid !== undefined;
    key = isSweep ? sweepName(loadSweepStudy(study), study) : path.basename(study).replace(/\.ya?ml$/i, '');
  }
  const id = await findStudyId(connection, key);
  if (!id) throw new Error(`the queue has no study '${key}'; submit it with troupe sweep <study.yaml> --queue <url> (or troupe transfer … --queue <url>)`);
  return id;
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

/** `troupe train` as a child of this worker; it exits by itself when this process is gone. */
const launchQueuedRun: QueueRunLauncher = (how) => {
  const cli = process.argv[1];
  const args = how.resume ? ['train', '--resume', how.dir, '--no-progress', '--backend', how.backend] : ['train', how.configFile, '--out', how.dir, '--no-progress', '--backend', how.backend];
  const log = fs.createWriteStream(how.logFile, { flags: 'a' });
  // Its own process group, so a Ctrl-C at the worker's terminal reaches the child only once, through `interrupt`.
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, TROUPE_PARENT_PID: String(process.pid) } });
  let lastError: string | undefined;
  const lines = (stream: NodeJS.ReadableStream, isErr: boolean) => {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      log.write(chunk);
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        if (isErr && line.startsWith('troupe: ')) lastError = line.slice('troupe: '.length);
        how.onLine(line);
      }
    });
  };
  lines(child.stdout!, false);
  lines(child.stderr!, true);
  const exit = new Promise<{ code: number; lastError?: string }>((resolve) => {
    child.on('error', (error) => resolve({ code: -1, lastError: error.message }));
    child.on('close', (code, signal) => {
      log.end();
      resolve({ code: code ?? (signal ? 128 : 1), lastError });
    });
  });
  const launched: LaunchedRun = { exit, interrupt: () => child.kill('SIGINT') };
  return launched;
};

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
  const worker = await startRunWorker(opts.queue, { name, concurrency, runsDir, launch: launchQueuedRun, lockDurationMs, stalledIntervalMs, reconnectForMs, log });
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
