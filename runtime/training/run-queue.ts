import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DelayedError, type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import YAML from 'yaml';
import { z } from 'zod';
import { LATEST_POINTER, latestCheckpointFile } from '../core/checkpoint';
import { MetricsLog, type MetricsRecord } from '../core/metrics-log';
import { connectRedis, describeRedisError, parseRedisUrl } from '../core/redis-connection';
import { type MraEvaluationSpec, type MraRunEvaluation, evaluateMraRun } from './mra-evaluation';
import { buildMraReport, writeMraReport } from './mra-report';
import { type AdaptationBudget, type MraPlan, type MraPlannedRun, type MraStudyConfig, type MraStudyResults, mraRunResult, saveMraEvaluation, savedMraEvaluation } from './mra-study';
import { type SweepCondition, type SweepPlan, type SweepStudyConfig, buildSweepReport, loadSweepStudy, sweepName, sweepReportFiles } from './sweep-study';
import { buildTransferReport, writeTransferReport } from './transfer-report';
import { type SeedResult, collectTransferResults, evaluateBest } from './transfer-results';
import { type LaunchedRun, launchTrainProcess } from './train-process';
import type { PlannedRun, TransferPlan, TransferStudyConfig } from './transfer-study';

/*
 * The run queue (`troupe sweep|transfer --queue`, `troupe worker`): a study's runs as BullMQ jobs
 * on Redis, trained by workers on any number of machines. Every run is a job whose id is a hash
 * of its resolved config, seed and output folder, so submitting a study again adds nothing; the
 * study's report is a job of its own that waits (delayed, no attempt used) until every run
 * settled, reads their results and returns the report files. Runs are shared between studies
 * that have them (a sweep given one more seed reuses the runs it had). Workers share nothing but Redis: a run returns its summary and evaluation
 * rows as its job result, and a pretraining run uploads the checkpoint its dependants load.
 */

export const RUN_QUEUE = 'troupe-runs';
export const QUEUE_PREFIX = 'troupe';
/** One backend for every run of a study: runs are bit-reproducible per backend only. */
export type QueueBackend = 'tensorflow' | 'wasm' | 'cpu';

/** A dependency of a run: the job it waits for and where that run's directory lies (relative to a worker's runs folder). */
export interface RunDependency {
  jobId: string;
  key: string;
  dir: string;
}

export interface RunJobData {
  kind: 'run';
  /** The study's id (`<name>-<hash>`). */
  study: string;
  key: string;
  /** The resolved run config; `algo.transfer.decl_from` relative to the worker's runs folder. */
  configYaml: string;
  /** The run directory, relative to the worker's runs folder. */
  dir: string;
  seed: number;
  backend: QueueBackend;
  dependsOn: RunDependency[];
  /** Transfer target and baseline runs: the best checkpoint is re-evaluated for the report. */
  evaluateBest?: Pick<TransferStudyConfig['report'], 'metric' | 'absolute_episodes_factor'>;
  /** Pretraining runs others load: upload the checkpoint they read. */
  shareCheckpoint: boolean;
  /** MRA study runs: the evaluation the report needs, made by the worker beside the run. */
  mraEvaluation?: MraEvaluationSpec;
}

export interface RunJobResult {
  summary: Record<string, unknown>;
  /** The run's evaluation rows (metrics.jsonl, kind eval), wall-clock fields included. */
  evalRows: MetricsRecord[];
  /** Its training rows (returns, losses): what shows that a run trained as it would have anywhere else. */
  trainRows: MetricsRecord[];
  absolute: SeedResult['absolute'];
  /** MRA study runs: the run's evaluation (`evaluateMraRun`). */
  mraEvaluation?: MraRunEvaluation;
  worker: string;
}

/** A run as the report job sees it: the plan's fields but its config, and its job. */
export type QueuedRunRef = Omit<PlannedRun, 'config'> & { jobId: string };

export interface ReportJobData {
  kind: 'report';
  study: string;
  name: string;
  studyKind: 'sweep' | 'transfer' | 'mra';
  config: SweepStudyConfig | TransferStudyConfig | MraStudyConfig;
  conditions?: SweepCondition[];
  /** MRA studies: what the scratch budgets are multiples of. */
  adaptationBudgets?: AdaptationBudget[];
  runs: QueuedRunRef[];
}

export interface ReportFile {
  name: string;
  encoding: 'utf8' | 'base64';
  content: string;
}

export interface ReportJobResult {
  files: ReportFile[];
  missing: string[];
}

export type QueueJobData = RunJobData | ReportJobData;

/** A study ready to submit: its runs as job data and the report job's data. */
export interface QueuedStudy {
  id: string;
  name: string;
  runs: Array<{ jobId: string; data: RunJobData }>;
  report: ReportJobData;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The job id of a run: the same resolved config, seed, output folder and evaluation made beside
 * the run (which changes its job result) give the same job.
 */
export function runJobId(configYaml: string, seed: number, dir: string, evaluation: unknown = null): string {
  return sha256(`${configYaml}\0${seed}\0${dir}${evaluation === null ? '' : `\0${JSON.stringify(evaluation)}`}`);
}

export function reportJobId(studyId: string): string {
  return `report-${studyId}`;
}

/**
 * The plan's runs as jobs. Paths become relative to a worker's runs folder (`<name>/runs/…`),
 * including the pretraining run a transfer run loads, and `run.backend` is set to `backend` in
 * every config so no worker picks another.
 */
export function queuedStudyOf(plan: SweepPlan | TransferPlan | MraPlan, name: string, backend: QueueBackend): QueuedStudy {
  const sweep = isSweepPlan(plan) ? plan : undefined;
  const mra = isMraPlan(plan) ? plan : undefined;
  const relative = (dir: string, what: string): string => {
    const rel = path.relative(plan.outDir, dir);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${plan.file}: ${what} ${dir} lies outside the study folder ${plan.outDir}; a queued study's runs must stay inside it`);
    return path.posix.join(name, ...rel.split(path.sep));
  };
  const byKey = new Map<string, { jobId: string; dir: string }>();
  const loaded = new Set(plan.runs.flatMap((r) => r.dependsOn));
  const runs: QueuedStudy['runs'] = [];
  for (const run of plan.runs) {
    const local = submitterLocalFields(run.config);
    if (local.length > 0) {
      throw new Error(
        `${plan.file}: run ${run.key}: ${local.map((f) => `${f.field} ('${f.value}')`).join(', ')} ${local.length > 1 ? 'name files' : 'names a file'} on this machine, which workers on other machines cannot read; a queued study's runs may use registry envs only (run this study without --queue)`,
      );
    }
    const config = structuredClone(run.config) as { algo?: { transfer?: { decl_from?: string } }; run?: Record<string, unknown> };
    config.run = { ...(config.run ?? {}), backend };
    const transfer = config.algo?.transfer;
    if (transfer?.decl_from) transfer.decl_from = relative(transfer.decl_from, `run ${run.key}: algo.transfer.decl_from`);
    const dir = relative(run.dir, `run ${run.key}:`);
    const configYaml = YAML.stringify(config);
    const transferReport = sweep || mra ? undefined : (plan as TransferPlan).study.report;
    const evaluate = transferReport && (run.phase === 'target' || run.phase === 'baseline') ? { metric: transferReport.metric, absolute_episodes_factor: transferReport.absolute_episodes_factor } : undefined;
    const mraEvaluation = mra ? (run as MraPlannedRun).evaluation : undefined;
    const jobId = runJobId(configYaml, run.seed, dir, evaluate || mraEvaluation ? { evaluate: evaluate ?? null, mra: mraEvaluation ?? null } : null);
    byKey.set(run.key, { jobId, dir });
    const dependsOn = run.dependsOn.map((key) => {
      const dep = byKey.get(key);
      if (!dep) throw new Error(`${plan.file}: run ${run.key} waits for ${key}, which is not planned before it`);
      return { jobId: dep.jobId, key, dir: dep.dir };
    });
    runs.push({
      jobId,
      data: { kind: 'run', study: '', key: run.key, configYaml, dir, seed: run.seed, backend, dependsOn, ...(evaluate ? { evaluateBest: evaluate } : {}), shareCheckpoint: loaded.has(run.key), ...(mraEvaluation ? { mraEvaluation } : {}) },
    });
  }
  const refs: QueuedRunRef[] = plan.runs.map(({ config: _config, ...fields }, i) => ({ ...fields, dir: runs[i].data.dir, jobId: runs[i].jobId }));
  const report: ReportJobData = sweep
    ? { kind: 'report', study: '', name, studyKind: 'sweep', config: sweep.study, conditions: sweep.conditions, runs: refs }
    : mra
      ? { kind: 'report', study: '', name, studyKind: 'mra', config: mra.study, adaptationBudgets: mra.adaptationBudgets, runs: refs }
      : { kind: 'report', study: '', name, studyKind: 'transfer', config: (plan as TransferPlan).study, runs: refs };
  // The report settings count too: the same runs reported otherwise are another report.
  const id = `${name}-${sha256(`${runs.map((r) => r.jobId).sort().join('\n')}\0${JSON.stringify(report)}`).slice(0, 12)}`;
  for (const r of runs) r.data.study = id;
  report.study = id;
  return { id, name, runs, report };
}

/** The fields of a run config that name files on the submitter's machine (env modules, datasets). */
export function submitterLocalFields(config: Record<string, unknown>): Array<{ field: string; value: string }> {
  const found: Array<{ field: string; value: string }> = [];
  const check = (owner: unknown, prefix: string, names: readonly string[]) => {
    if (typeof owner !== 'object' || owner === null) return;
    for (const name of names) {
      const value = (owner as Record<string, unknown>)[name];
      if (value !== undefined && value !== null) found.push({ field: `${prefix}${name}`, value: String(value) });
    }
  };
  check(config.env, 'env.', ['module']);
  check(config, '', ['dataset']);
  check(config.datasets, 'datasets.', ['dir', 'collect']);
  if (Array.isArray(config.tasks)) config.tasks.forEach((task, i) => check(task, `tasks.${i}.`, ['module', 'dataset']));
  return found;
}

function isSweepPlan(plan: SweepPlan | TransferPlan | MraPlan): plan is SweepPlan {
  return 'kind' in plan && plan.kind === 'sweep';
}

function isMraPlan(plan: SweepPlan | TransferPlan | MraPlan): plan is MraPlan {
  return 'adaptationBudgets' in plan;
}

// ---------------------------------------------------------------------------------------------
// Connections

/** The queue's Redis connection; errors name the URL (password hidden), never a stack. */
export async function connectRunQueue(url: string, options: { reconnectForMs?: number } = {}): Promise<Redis> {
  return connectRedis(url, { purpose: 'run queue', maxRetriesPerRequest: null, reconnectForMs: options.reconnectForMs ?? 10000 });
}

export function openQueue(connection: Redis): Queue<QueueJobData> {
  const queue = new Queue<QueueJobData>(RUN_QUEUE, { connection, prefix: QUEUE_PREFIX });
  queue.on('error', () => undefined);
  return queue;
}

const STUDIES_KEY = `${QUEUE_PREFIX}:${RUN_QUEUE}:studies`;
const blobKey = (jobId: string) => `${QUEUE_PREFIX}:${RUN_QUEUE}:blob:${jobId}`;

export interface SubmitOutcome {
  id: string;
  added: number;
  /** Runs already queued (by this study or another with the same run). */
  existing: number;
  /** Failed runs of an earlier submission, retried. */
  retried: number;
}

/**
 * Adds the study's runs and report job, unless the study was submitted before: then nothing is
 * added, and runs that failed for good are retried.
 */
export async function submitStudy(connection: Redis, study: QueuedStudy, options: { attempts: number; backoffMs: number }): Promise<SubmitOutcome> {
  const queue = openQueue(connection);
  try {
    await connection.hset(STUDIES_KEY, study.name, study.id);
    const existingReport = await queue.getJob(reportJobId(study.id));
    if (existingReport) {
      let retried = 0;
      for (const run of study.runs) {
        const job = await queue.getJob(run.jobId);
        if (job && (await job.getState()) === 'failed') {
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          retried++;
        }
      }
      // A report made while runs had failed is made again once the retried runs finish.
      const reportState = await existingReport.getState();
      if (retried > 0 && reportState === 'completed') await existingReport.retry('completed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      if (reportState === 'failed') await existingReport.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return { id: study.id, added: 0, existing: study.runs.length, retried };
    }
    const jobOpts = { attempts: options.attempts, backoff: { type: 'exponential', delay: options.backoffMs }, removeOnComplete: false, removeOnFail: false };
    // Runs are plain jobs, shared by every study that has them (a job id already queued adds
    // nothing); the report is a plain job too, which waits until its runs settled (a BullMQ flow
    // cannot adopt a run another study queued first).
    let existing = 0;
    for (const run of study.runs) {
      if (await queue.getJob(run.jobId)) existing++;
      else await queue.add('run', run.data, { ...jobOpts, jobId: run.jobId });
    }
    await queue.add('report', study.report, { ...jobOpts, jobId: reportJobId(study.id) });
    return { id: study.id, added: study.runs.length - existing, existing, retried: 0 };
  } finally {
    await queue.close();
  }
}

/** One backend for the whole study: the flag, else the runs' own `run.backend` (all alike), `auto` meaning wasm. */
export function studyBackend(plan: SweepPlan | TransferPlan | MraPlan, flag: string | undefined): QueueBackend {
  const chosen = flag ?? [...new Set(plan.runs.map((r) => String((r.config.run as { backend?: string } | undefined)?.backend ?? 'auto')))].join(', ');
  if (chosen.includes(', ')) throw new Error(`${plan.file}: the runs ask for different backends (${chosen}); a queued study runs on one backend (results are reproducible per backend only): set run.backend once or pass --backend`);
  // Workers differ in what loads; wasm loads everywhere and is bit-reproducible across machines.
  return chosen === 'auto' ? 'wasm' : (chosen as QueueBackend);
}

/** The name a study is queued under: a sweep's own name, else its file's name. */
export function queuedStudyName(plan: SweepPlan | TransferPlan | MraPlan): string {
  return isSweepPlan(plan) ? plan.name : path.basename(plan.file).replace(/\.ya?ml$/i, '');
}

/** A study named by its file (its name), its name, or its id; a clear error when the queue has none such. */
export async function studyIdOf(connection: Redis, study: string): Promise<string> {
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

/** A study id from a name or id given on the command line; null when the queue has no such study. */
export async function findStudyId(connection: Redis, nameOrId: string): Promise<string | null> {
  const byName = await connection.hget(STUDIES_KEY, nameOrId);
  if (byName) return byName;
  const queue = openQueue(connection);
  try {
    return (await queue.getJob(reportJobId(nameOrId))) ? nameOrId : null;
  } finally {
    await queue.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Status and report

export interface RunJobProgress {
  env_steps?: number;
  total?: number;
  return_mean?: number;
  eval_return?: number;
}

export interface RunJobStatus {
  key: string;
  jobId: string;
  state: 'waiting' | 'running' | 'done' | 'failed' | 'missing';
  worker?: string;
  progress?: RunJobProgress;
  error?: string;
  attempts: number;
}

export interface StudyStatus {
  id: string;
  name: string;
  runs: RunJobStatus[];
  report: 'waiting' | 'running' | 'done' | 'failed';
}

function stateOf(state: string): RunJobStatus['state'] {
  if (state === 'completed') return 'done';
  if (state === 'active') return 'running';
  if (state === 'failed') return 'failed';
  if (state === 'unknown') return 'missing';
  return 'waiting';
}

export async function studyStatus(connection: Redis, studyId: string): Promise<StudyStatus> {
  const queue = openQueue(connection);
  try {
    const parent = await queue.getJob(reportJobId(studyId));
    if (!parent) throw new Error(`no study '${studyId}' on the queue`);
    const data = parent.data as ReportJobData;
    const runs: RunJobStatus[] = [];
    for (const ref of data.runs) {
      const job = await queue.getJob(ref.jobId);
      if (!job) {
        runs.push({ key: ref.key, jobId: ref.jobId, state: 'missing', attempts: 0 });
        continue;
      }
      const state = stateOf(await job.getState());
      const progress = typeof job.progress === 'object' && job.progress !== null ? (job.progress as RunJobProgress) : undefined;
      runs.push({
        key: ref.key,
        jobId: ref.jobId,
        state,
        ...(state === 'running' || state === 'done' ? { worker: job.processedBy ?? (job.returnvalue as RunJobResult | null)?.worker } : {}),
        ...(progress ? { progress } : {}),
        // A waiting run that failed before says why, as a failed one does.
        ...(state === 'failed' || (state === 'waiting' && job.attemptsMade > 0 && job.failedReason) ? { error: job.failedReason } : {}),
        attempts: job.attemptsMade,
      });
    }
    const parentState = stateOf(await parent.getState());
    return { id: studyId, name: data.name, runs, report: parentState === 'missing' ? 'waiting' : parentState };
  } finally {
    await queue.close();
  }
}

/**
 * The report files: the report job's result once it ran, else built now from the runs that
 * completed (the others listed as missing).
 */
export async function studyReport(connection: Redis, studyId: string): Promise<ReportJobResult & { complete: boolean }> {
  const queue = openQueue(connection);
  try {
    const parent = await queue.getJob(reportJobId(studyId));
    if (!parent) throw new Error(`no study '${studyId}' on the queue`);
    if ((await parent.getState()) === 'completed') return { ...(parent.returnvalue as ReportJobResult), complete: true };
    const data = parent.data as ReportJobData;
    const results = new Map<string, RunJobResult>();
    for (const ref of data.runs) {
      const job = await queue.getJob(ref.jobId);
      if (job && (await job.getState()) === 'completed') results.set(ref.jobId, job.returnvalue as RunJobResult);
    }
    return { ...(await buildStudyReport(data, results)), complete: false };
  } finally {
    await queue.close();
  }
}

/** The report of a queued study from its runs' job results (no run directory is read). */
export async function buildStudyReport(data: ReportJobData, results: ReadonlyMap<string, RunJobResult>): Promise<ReportJobResult> {
  const runs = data.runs.map((r) => ({ ...r, config: {} }) as PlannedRun & { jobId: string });
  const resultOf = (run: PlannedRun) => results.get((run as PlannedRun & { jobId: string }).jobId);
  if (data.studyKind === 'sweep') {
    const report = buildSweepReport({ name: data.name, study: data.config as SweepStudyConfig, runs, conditions: data.conditions ?? [] }, (run) => {
      const r = resultOf(run);
      return r ? { evalRows: r.evalRows } : null;
    });
    return { files: Object.entries(sweepReportFiles(report)).map(([name, content]) => ({ name, encoding: 'utf8', content })), missing: report.missing };
  }
  if (data.studyKind === 'mra') return buildMraStudyReport(data, results);
  const study = data.config as TransferStudyConfig;
  const transferResults = await collectTransferResults(
    { study, runs },
    { source: { rows: (run) => resultOf(run)?.evalRows ?? null, absolute: async (run) => resultOf(run)?.absolute ?? null } },
  );
  const report = buildTransferReport(transferResults, study);
  return { files: await reportFilesOf((dir) => writeTransferReport(report, transferResults, study, dir, data.name)), missing: report.missing };
}

/** An MRA study's report from the evaluations its workers made beside the runs. */
async function buildMraStudyReport(data: ReportJobData, results: ReadonlyMap<string, RunJobResult>): Promise<ReportJobResult> {
  const runs = data.runs as unknown as Array<Omit<MraPlannedRun, 'config'> & { jobId: string }>;
  const mraResults: MraStudyResults = { runs: [], missing: [], failed: [] };
  for (const run of runs) {
    const evaluation = results.get(run.jobId)?.mraEvaluation;
    if (!evaluation) {
      mraResults.missing.push(run.key);
      continue;
    }
    mraResults.runs.push(mraRunResult(run, evaluation, false));
  }
  const plan: MraPlan = { study: data.config as MraStudyConfig, adaptationBudgets: data.adaptationBudgets ?? [], file: data.name, outDir: '.', runs: runs.map((r) => ({ ...r, config: {} })) };
  const report = buildMraReport(mraResults, plan);
  return { files: await reportFilesOf((dir) => writeMraReport(report, dir, data.name)), missing: mraResults.missing };
}

/** Writes a report into a scratch folder and returns its files' contents (PNG plots as base64). */
async function reportFilesOf(write: (dir: string) => Promise<string[]>): Promise<ReportFile[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-report-'));
  try {
    return (await write(dir)).map((file) => {
      const binary = file.endsWith('.png');
      return { name: path.basename(file), encoding: binary ? 'base64' : 'utf8', content: fs.readFileSync(file).toString(binary ? 'base64' : 'utf8') };
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function writeReportFiles(files: readonly ReportFile[], dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return files.map((f) => {
    const file = path.join(dir, path.basename(f.name));
    fs.writeFileSync(file, Buffer.from(f.content, f.encoding));
    return file;
  });
}

// ---------------------------------------------------------------------------------------------
// Workers

export type { LaunchedRun };

export type QueueRunLauncher = (how: { configFile: string; dir: string; resume: boolean; backend: QueueBackend; logFile: string; onLine: (line: string) => void }) => LaunchedRun;

/** A worker's runs: `troupe train` children of `cli` in process groups of their own (the worker decides when they stop). */
export function queuedRunLauncher(cli: string): QueueRunLauncher {
  return (how) => launchTrainProcess({ cli, ...how, detached: true });
}

export interface RunWorkerOptions {
  name: string;
  concurrency: number;
  /** Where this worker keeps run directories (paths in jobs are relative to it). */
  runsDir: string;
  launch: QueueRunLauncher;
  /** A job whose worker stops renewing its lock for this long is given to another worker. */
  lockDurationMs: number;
  /** How long to keep trying to reach a lost Redis before stopping (default 60 s). */
  reconnectForMs?: number;
  stalledIntervalMs: number;
  /** How soon a run waiting for another one looks again. */
  dependencyPollMs?: number;
  /** How soon a report waiting for its runs looks again. */
  reportPollMs?: number;
  /**
   * Runs the evaluations and reports jobs need (default: in this process). Give a child-process
   * evaluator (`childProcessEvaluator`) so they never hold up this process's lock renewals.
   */
  evaluate?: QueueEvaluator;
  log: (line: string) => void;
}

/** Why a worker stopped: closed on request, or its Redis connection was lost for good. */
export type WorkerStop = 'closed' | 'connection lost';

export interface RunWorkerHandle {
  /** Stops taking jobs, asks running children to checkpoint and stop, and waits for them. */
  close(): Promise<void>;
  /** Resolves when the worker stopped, saying why. */
  closed: Promise<WorkerStop>;
}

const TRAIN_LINE = /^\[train\](?: \S+)? (\d+)\/(\d+) env steps .*?return (-?[\d.]+|—)/;
const EVAL_LINE = /^\[eval\](?: \S+)?\s+(\d+)\/(\d+) env steps\s+\S+ return (-?[\d.]+|—)/;

/** The progress a `[train]`/`[eval]` line of `troupe train` tells, merged into `previous`. */
export function progressFromLine(line: string, previous: RunJobProgress): RunJobProgress | null {
  const train = TRAIN_LINE.exec(line);
  const num = (text: string) => (text === '—' ? undefined : Number(text));
  if (train) return { ...previous, env_steps: Number(train[1]), total: Number(train[2]), ...(num(train[3]) !== undefined ? { return_mean: num(train[3]) } : {}) };
  const evaluation = EVAL_LINE.exec(line);
  if (evaluation) return { ...previous, env_steps: Number(evaluation[1]), total: Number(evaluation[2]), ...(num(evaluation[3]) !== undefined ? { eval_return: num(evaluation[3]) } : {}) };
  return null;
}

function readSummary(dir: string): Record<string, unknown> | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** The files a run that loads `dir` reads: the checkpoint pointer and the checkpoint it names. */
function sharedCheckpointFiles(dir: string): string[] {
  const checkpoints = path.join(dir, 'checkpoints');
  return [path.join(checkpoints, LATEST_POINTER), latestCheckpointFile(checkpoints)];
}

const relativeDir = z
  .string()
  .min(1)
  .refine((d) => !path.isAbsolute(d) && !d.split(/[\\/]/).includes('..'), 'a folder inside the runs folder (relative, no ..)');

const runJobDataSchema = z.object({
  kind: z.literal('run'),
  study: z.string(),
  key: z.string().min(1),
  configYaml: z.string().min(1),
  dir: relativeDir,
  seed: z.number().int().gte(0),
  backend: z.enum(['tensorflow', 'wasm', 'cpu']),
  dependsOn: z.array(z.object({ jobId: z.string().min(1), key: z.string(), dir: relativeDir })),
  evaluateBest: z.object({ metric: z.enum(['win_rate', 'return_mean']), absolute_episodes_factor: z.number().int().gt(0) }).optional(),
  shareCheckpoint: z.boolean(),
  mraEvaluation: z.object({ populations: z.array(z.number().int()), episodes: z.number(), seed: z.string() }).passthrough().optional(),
});

/**
 * A run job's data as read from the broker, checked: a job written by another troupe version,
 * or by hand, fails at once (no retries) with what is wrong, never half-runs.
 */
function checkedRunJobData(data: unknown, jobId: string): RunJobData {
  const result = runJobDataSchema.safeParse(data);
  if (result.success) return result.data as RunJobData;
  const issues = result.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ');
  throw new UnrecoverableError(`job ${jobId} is not a troupe run job this worker understands: ${issues}`);
}

/** Stores the files a run loading `dir` reads (`algo.transfer.decl_from`) on the queue, under the run's job id. */
export async function uploadRunCheckpoint(connection: Redis, jobId: string, dir: string): Promise<void> {
  const fields: Record<string, Buffer> = {};
  for (const file of sharedCheckpointFiles(dir)) fields[path.relative(dir, file)] = fs.readFileSync(file);
  await connection.multi().del(blobKey(jobId)).hset(blobKey(jobId), fields).exec();
}

/** Downloads under way in this process, by local folder: runs that load the same one wait for one download. */
const downloads = new Map<string, Promise<boolean>>();
let downloadCount = 0;

/**
 * Puts the checkpoint of the run `dep` names where this worker's copy of that run would be,
 * unless the finished run is there already (this worker trained it to the end, or downloaded
 * it before); returns whether it downloaded.
 */
export function downloadRunCheckpoint(connection: Redis, dep: RunDependency, runsDir: string, log: (line: string) => void = () => undefined): Promise<boolean> {
  const local = path.resolve(runsDir, dep.dir);
  const pending = downloads.get(local);
  if (pending) return pending;
  const download = downloadOnce(connection, dep, local, log).finally(() => downloads.delete(local));
  downloads.set(local, download);
  return download;
}

async function downloadOnce(connection: Redis, dep: RunDependency, local: string, log: (line: string) => void): Promise<boolean> {
  const marks = (file: string) => fs.existsSync(file) && fs.readFileSync(file, 'utf8') === dep.jobId;
  if (fs.existsSync(path.join(local, 'checkpoints', LATEST_POINTER))) {
    // A folder of the same name from another job does not count, nor a copy this worker stopped halfway (finished elsewhere).
    const trainedHere = marks(`${local}.job`) && readSummary(local)?.interrupted === false;
    if (trainedHere || marks(`${local}.download`)) return false;
  }
  const blob = await connection.hgetallBuffer(blobKey(dep.jobId));
  const names = Object.keys(blob);
  if (names.length === 0) throw new Error(`run ${dep.key} (job ${dep.jobId}) completed but its checkpoint is not on the queue (was its blob removed?); cannot load it`);
  // Written beside the folder and renamed into place, so no run ever loads a half-written copy.
  const scratch = `${local}.partial-${process.pid}-${downloadCount++}`;
  fs.rmSync(scratch, { recursive: true, force: true });
  try {
    for (const name of names) {
      const file = path.resolve(scratch, name);
      if (!file.startsWith(scratch + path.sep)) throw new Error(`the checkpoint blob of ${dep.key} names a file outside its run directory: '${name}'`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, blob[name]);
    }
    fs.rmSync(`${local}.download`, { force: true });
    fs.rmSync(local, { recursive: true, force: true });
    fs.renameSync(scratch, local);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  fs.writeFileSync(`${local}.download`, dep.jobId);
  log(`${dep.key}: downloaded its checkpoint (${names.length} files) to ${local}`);
  return true;
}

/** Work a job needs beside its run: evaluations that load checkpoints, and building a report. */
export type QueueEvaluationRequest =
  | { kind: 'best'; dir: string; seed: number; config: Record<string, unknown>; settings: NonNullable<RunJobData['evaluateBest']> }
  | { kind: 'mra'; key: string; dir: string; spec: MraEvaluationSpec }
  | { kind: 'report'; data: ReportJobData; results: Array<[string, RunJobResult]> };

export type QueueEvaluator = (request: QueueEvaluationRequest) => Promise<unknown>;

/** Does what the request asks, in this process; its result is plain JSON. */
export async function runQueueEvaluation(request: QueueEvaluationRequest, log: (line: string) => void = () => undefined): Promise<unknown> {
  if (request.kind === 'best') return evaluateBest({ dir: request.dir, seed: request.seed, config: request.config }, request.settings);
  if (request.kind === 'mra') return evaluateMraRun(request.dir, request.spec, (line) => log(`${request.key}: ${line}`));
  return buildStudyReport(request.data, new Map(request.results));
}

/**
 * Runs each request in a child process (`<cli> queue-evaluate <request> <result>`, this Node), so
 * the worker's event loop stays free to renew its job locks while checkpoints are evaluated.
 */
export function childProcessEvaluator(cli: string, scratchDir: string, log: (line: string) => void): QueueEvaluator {
  let count = 0;
  return async (request) => {
    fs.mkdirSync(scratchDir, { recursive: true });
    const base = path.join(scratchDir, `evaluation-${process.pid}-${count++}`);
    fs.writeFileSync(`${base}.request.json`, JSON.stringify(request));
    try {
      const { code, lastError } = await new Promise<{ code: number; lastError?: string }>((resolve) => {
        const child = spawn(process.execPath, [cli, 'queue-evaluate', `${base}.request.json`, `${base}.result.json`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_PARENT_PID: String(process.pid) } });
        let lastError: string | undefined;
        let stderr = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) log(line);
        });
        child.stderr!.on('data', (chunk: Buffer) => {
          stderr += chunk.toString('utf8');
          const errors = stderr.split('\n').filter((l) => l.startsWith('troupe: '));
          if (errors.length > 0) lastError = errors[errors.length - 1].slice('troupe: '.length);
        });
        child.on('error', (error) => resolve({ code: -1, lastError: error.message }));
        child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), lastError }));
      });
      if (code !== 0) throw new Error(`the ${request.kind === 'report' ? 'report' : 'evaluation'} process exited with code ${code}${lastError ? `: ${lastError}` : ''}`);
      return JSON.parse(fs.readFileSync(`${base}.result.json`, 'utf8')) as unknown;
    } finally {
      fs.rmSync(`${base}.request.json`, { force: true });
      fs.rmSync(`${base}.result.json`, { force: true });
    }
  };
}

/** `troupe queue-evaluate <request> <result>`: what a child-process evaluator's child does. */
export async function runQueueEvaluationFiles(requestFile: string, resultFile: string): Promise<void> {
  const request = JSON.parse(fs.readFileSync(requestFile, 'utf8')) as QueueEvaluationRequest;
  const result = await runQueueEvaluation(request, (line) => process.stdout.write(`${line}\n`));
  fs.writeFileSync(resultFile, JSON.stringify(result ?? null));
}

export async function startRunWorker(url: string, options: RunWorkerOptions): Promise<RunWorkerHandle> {
  const connection = await connectRunQueue(url, { reconnectForMs: options.reconnectForMs ?? 60000 });
  const queue = openQueue(connection);
  const active = new Map<string, LaunchedRun>();
  const evaluate: QueueEvaluator = options.evaluate ?? ((request) => runQueueEvaluation(request, options.log));
  let closing = false;
  /** Run jobs (and what they wait for) already said to wait: one line each, not one per poll. */
  const announcedWaits = new Set<string>();

  const runJob = async (job: Job<QueueJobData>, token: string | undefined): Promise<RunJobResult | ReportJobResult> => {
    if (job.data.kind === 'report') {
      const data = job.data;
      const results = new Map<string, RunJobResult>();
      for (const ref of data.runs) {
        const run = await queue.getJob(ref.jobId);
        const state = run ? await run.getState() : 'unknown';
        if (state === 'completed') results.set(ref.jobId, run!.returnvalue as RunJobResult);
        else if (state !== 'failed' && state !== 'unknown') {
          // Not an attempt: the report comes back once its runs had time to finish.
          await job.moveToDelayed(Date.now() + (options.reportPollMs ?? 2000), token);
          throw new DelayedError(`report of ${data.study} waits for ${ref.key}`);
        }
      }
      options.log(`report of ${data.study}: building from ${results.size} of ${data.runs.length} run results`);
      return (await evaluate({ kind: 'report', data, results: [...results] })) as ReportJobResult;
    }
    const data = checkedRunJobData(job.data, job.id ?? '?');
    for (const dep of data.dependsOn) {
      const state = await queue.getJobState(dep.jobId);
      if (state === 'failed') throw new Error(`run ${data.key} loads ${dep.key}, which failed; retry that run first`);
      if (state === 'unknown') throw new UnrecoverableError(`run ${data.key} loads ${dep.key} (job ${dep.jobId}), which is not on the queue (removed?); submit its study again`);
      if (state !== 'completed') {
        // Not an attempt: the job comes back once the run it loads had time to finish.
        if (!announcedWaits.has(`${job.id}\0${dep.jobId}`)) options.log(`${data.key}: waits for ${dep.key} (${state})`);
        announcedWaits.add(`${job.id}\0${dep.jobId}`);
        await job.moveToDelayed(Date.now() + (options.dependencyPollMs ?? 2000), token);
        throw new DelayedError(`waiting for ${dep.key}`);
      }
    }
    for (const dep of data.dependsOn) await downloadRunCheckpoint(connection, dep, options.runsDir, options.log);

    const dir = path.resolve(options.runsDir, data.dir);
    const config = YAML.parse(data.configYaml) as { algo?: { transfer?: { decl_from?: string } } };
    const transfer = config.algo?.transfer;
    if (transfer?.decl_from && !path.isAbsolute(transfer.decl_from)) transfer.decl_from = path.resolve(options.runsDir, transfer.decl_from);
    const configFile = `${dir}.yaml`;
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.writeFileSync(configFile, YAML.stringify(config));

    // A folder left by another job (an earlier study of the same name, other settings) is not this run's.
    const owner = `${dir}.job`;
    if (fs.existsSync(dir) && (!fs.existsSync(owner) || fs.readFileSync(owner, 'utf8') !== job.id)) fs.rmSync(dir, { recursive: true, force: true });
    fs.writeFileSync(owner, job.id!);
    // Trained here from now on: an earlier downloaded copy no longer describes this folder.
    fs.rmSync(`${dir}.download`, { force: true });
    const finished = readSummary(dir)?.interrupted === false;
    if (!finished) {
      const resume = fs.existsSync(path.join(dir, 'checkpoints', LATEST_POINTER));
      // Killed before its first checkpoint: nothing to continue from, start over.
      if (!resume && fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
      if (closing) {
        // Closed while this job checked its dependencies or downloaded: back to the queue, no run started.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError(`${data.key} not started: the worker is closing`);
      }
      options.log(`${data.key}: ${resume ? 'resuming' : 'starting'} (job ${job.id?.slice(0, 12)}, attempt ${job.attemptsMade + 1})`);
      let progress: RunJobProgress = {};
      const launched = options.launch({
        configFile,
        dir,
        resume,
        backend: data.backend,
        logFile: `${dir}.log`,
        onLine: (line) => {
          const next = progressFromLine(line, progress);
          if (!next) return;
          progress = next;
          job.updateProgress({ ...progress }).catch(() => undefined);
        },
      });
      active.set(job.id!, launched);
      let outcome: Awaited<LaunchedRun['exit']>;
      try {
        outcome = await launched.exit;
      } finally {
        active.delete(job.id!);
      }
      if (outcome.code !== 0) {
        throw new Error(`run ${data.key}: troupe train exited with code ${outcome.code} on ${options.name}${outcome.lastError ? `: ${outcome.lastError}` : ''} (log ${dir}.log)`);
      }
      if (readSummary(dir)?.interrupted !== false) {
        // Stopped by this worker's shutdown after a checkpoint: back to the queue, no attempt used.
        if (closing) {
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError(`${data.key} interrupted by the worker's shutdown`);
        }
        // Stopped by anyone else (a signal from outside): a failure like any other.
        throw new Error(`run ${data.key}: troupe train stopped before the end (interrupted) on ${options.name} while the worker was not closing (log ${dir}.log)`);
      }
    }
    const summary = readSummary(dir)!;
    const rows = MetricsLog.read(path.join(dir, 'metrics.jsonl'));
    const evalRows = rows.filter((r) => r.kind === 'eval');
    const trainRows = rows.filter((r) => r.kind === 'train');
    if (data.shareCheckpoint) await uploadRunCheckpoint(connection, job.id!, dir);
    const absolute = data.evaluateBest ? ((await evaluate({ kind: 'best', dir, seed: data.seed, config: config as Record<string, unknown>, settings: data.evaluateBest })) as SeedResult['absolute']) : null;
    let mraEvaluation: MraRunEvaluation | undefined;
    if (data.mraEvaluation) {
      const spec = data.mraEvaluation;
      mraEvaluation = savedMraEvaluation({ dir, evaluation: spec }) ?? ((await evaluate({ kind: 'mra', key: data.key, dir, spec })) as MraRunEvaluation);
      saveMraEvaluation({ key: data.key, dir, evaluation: spec }, mraEvaluation);
    }
    options.log(`${data.key}: done`);
    return { summary, evalRows, trainRows, absolute, ...(mraEvaluation ? { mraEvaluation } : {}), worker: options.name };
  };

  const worker = new Worker<QueueJobData, RunJobResult | ReportJobResult>(RUN_QUEUE, runJob, {
    connection,
    prefix: QUEUE_PREFIX,
    name: options.name,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    // A job whose worker died twice is not a poison pill yet: a third worker may try.
    maxStalledCount: 2,
    autorun: false,
  });
  let resolveClosed!: (why: WorkerStop) => void;
  const closed = new Promise<WorkerStop>((resolve) => (resolveClosed = resolve));
  // While Redis is away the client retries every 200 ms; one line per distinct error (or per 10 s) says so.
  let lastError = { text: '', at: 0 };
  worker.on('error', (error) => {
    const text = describeRedisError(error);
    if (text === lastError.text && Date.now() - lastError.at < 10000) return;
    lastError = { text, at: Date.now() };
    options.log(`queue error (${parseRedisUrl(url).display}): ${text}`);
  });
  worker.on('failed', (job, error) => {
    if (job && !(error instanceof DelayedError) && error.name !== 'DelayedError') options.log(`${(job.data as RunJobData).key ?? job.name}: failed (attempt ${job.attemptsMade}): ${error.message}`);
  });
  connection.on('end', () => {
    if (closing) return;
    closing = true;
    options.log(`lost the connection to the queue at ${parseRedisUrl(url).display} for good; stopping (running runs checkpoint; their jobs go to another worker once their locks expire)`);
    // Training on without a queue would only produce results nobody can collect.
    const exits = [...active.values()].map((run) => {
      run.interrupt();
      return run.exit;
    });
    void Promise.all(exits).then(() => resolveClosed('connection lost'));
  });
  await worker.waitUntilReady();
  options.log(`ready: ${options.concurrency} job(s) at a time, runs in ${options.runsDir}`);
  worker.run().catch((error: unknown) => {
    options.log(`stopped: ${describeRedisError(error)}`);
    resolveClosed('connection lost');
  });

  return {
    closed,
    close: async () => {
      if (closing) {
        await closed;
        return;
      }
      closing = true;
      for (const run of active.values()) run.interrupt();
      await worker.close();
      await queue.close();
      connection.disconnect();
      resolveClosed('closed');
      await closed;
    },
  };
}
