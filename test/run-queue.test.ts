import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import YAML from 'yaml';
import { isProcessAlive } from '../runtime/core/run-lock';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { QUEUE_PREFIX, RUN_QUEUE, type RunJobResult, type RunJobProgress, type StudyStatus, connectRunQueue, downloadRunCheckpoint, progressFromLine, queuedStudyOf, submitterLocalFields, uploadRunCheckpoint } from '../runtime/training/run-queue';
import { loadMraStudy, planMraStudy } from '../runtime/training/mra-study';
import { loadTransferStudy, planTransferStudy } from '../runtime/training/transfer-study';
import { countsLine, statusLines } from '../scripts/commands/queue';
import { CLI, expectCleanFailure, runCli } from './helpers/cli-run';
import { type TestRedisServer, startRedisServer } from './helpers/redis-server';

/*
 * The run queue end to end: a sweep of 6 small runs submitted to a private Redis, trained by two
 * `troupe worker` processes, one SIGKILLed while it trains; the results are compared with the
 * same sweep trained locally.
 */

const QUICKSTART = path.join(__dirname, '..', '..', 'configs', 'quickstart.yaml');

let server: TestRedisServer;
let tmp: string;
let connection: Redis;
let queue: Queue;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  server = startRedisServer();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-queue-'));
  connection = await connectRunQueue(server.url);
  queue = new Queue(RUN_QUEUE, { connection, prefix: QUEUE_PREFIX });
});

afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await queue.close();
  connection.disconnect();
  server.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** 3 learning rates × 2 seeds, each run a few seconds with progress lines every 200 env steps. */
const STUDY = {
  name: 'qtest',
  base: QUICKSTART,
  set: { 'run.total_env_steps': 1600, 'run.eval_interval': 800, 'run.eval_episodes': 4, 'run.log_interval': 200, 'run.checkpoint_interval': 800, 'run.backend': 'wasm' },
  grid: { 'algo.lr': [0.0005, 0.001, 0.002] },
  seeds: 2,
};

function startWorker(runsDir: string): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [CLI, 'worker', '--queue', server.url, '--runs-dir', runsDir], {
    env: { ...process.env, TROUPE_QUEUE_LOCK_MS: '2000', TROUPE_QUEUE_STALLED_MS: '1000', TROUPE_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  workers.push(child);
  return { child, output: () => output };
}

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function withoutWallClock(rows: MetricsRecord[]): Array<Record<string, unknown>> {
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));
}

test('progress lines of troupe train become job progress', () => {
  let p: RunJobProgress = {};
  p = progressFromLine('[train] 500/3000 env steps  episodes 8  return 0.125  1660 steps/s', p)!;
  expect(p).toEqual({ env_steps: 500, total: 3000, return_mean: 0.125 });
  p = progressFromLine('[eval]  1000/3000 env steps  greedy return 0.250 ± 0.100  (4 episodes)', p)!;
  expect(p).toEqual({ env_steps: 1000, total: 3000, return_mean: 0.125, eval_return: 0.25 });
  expect(progressFromLine('[train] combat-3v3 2000/20000 env steps  episodes 8  return —  1660 steps/s', p)).toEqual({ env_steps: 2000, total: 20000, return_mean: 0.125, eval_return: 0.25 });
  expect(progressFromLine('backend: wasm', p)).toBeNull();
});

test('status lines say where a run trains and how far, and why a run failed', () => {
  const status: StudyStatus = {
    id: 's-0123456789ab',
    name: 's',
    report: 'waiting',
    runs: [
      { key: 'lr=1/seed0', jobId: 'a', state: 'running', worker: 'host:12', progress: { env_steps: 500, total: 2000, return_mean: 0.25 }, attempts: 0 },
      { key: 'lr=1/seed1', jobId: 'b', state: 'failed', error: 'run lr=1/seed1: troupe train exited with code 1', attempts: 3 },
      { key: 'lr=2/seed0', jobId: 'c', state: 'done', worker: 'host:13', progress: { eval_return: 0.5 }, attempts: 0 },
      { key: 'lr=2/seed1', jobId: 'd', state: 'waiting', attempts: 0 },
      { key: 'lr=3/seed0', jobId: 'e', state: 'waiting', attempts: 1, error: "tfjs backend 'tensorflow' unavailable" },
    ],
  };
  expect(countsLine(status)).toBe('study s-0123456789ab: 5 runs: 1 done, 1 running, 2 waiting, 1 failed; report waiting');
  expect(statusLines(status)).toEqual([
    '  running  lr=1/seed0  on host:12  500/2000 env steps  return 0.250',
    '  failed   lr=1/seed1  after 3 attempts: run lr=1/seed1: troupe train exited with code 1',
    '  done     lr=2/seed0  (host:13)  eval 0.500',
    '  waiting  lr=2/seed1',
    "  waiting  lr=3/seed0  (1 failed attempt so far: tfjs backend 'tensorflow' unavailable)",
  ]);
});

test('a sweep on two workers, one SIGKILLed mid-run: every run completes once, with the results of local runs; status, report and resubmission', async () => {
  const file = path.join(tmp, 'qtest.yaml');
  fs.writeFileSync(file, YAML.stringify(STUDY));
  const local = path.join(tmp, 'local');
  const reference = runCli(['sweep', file, '--out', local, '--jobs', '2'], { timeoutMs: 60000 });
  expect([reference.status, reference.stderr]).toEqual([0, '']);

  const submitted = runCli(['sweep', file, '--queue', server.url]);
  expect([submitted.status, submitted.stderr]).toEqual([0, '']);
  expect(submitted.stdout).toMatch(/study qtest-[0-9a-f]{12} \(6 runs, wasm backend\): 6 runs added/);
  expect(await queue.getJobCountByTypes('waiting', 'waiting-children', 'active', 'completed', 'delayed', 'failed', 'prioritized')).toBe(7);

  const a = startWorker(path.join(tmp, 'worker-a'));
  const b = startWorker(path.join(tmp, 'worker-b'));
  const nameA = `${os.hostname()}:${a.child.pid}`;
  const nameB = `${os.hostname()}:${b.child.pid}`;

  // Kill worker A while it trains a run that has reported progress.
  const victim = await until(
    'worker A to report progress',
    async () => (await queue.getJobs(['active'])).find((j) => j.processedBy === nameA && ((j.progress as RunJobProgress).env_steps ?? 0) > 0),
    30000,
  );
  const victimDir = path.join(tmp, 'worker-a', (victim.data as { dir: string }).dir);
  const trainPid = (JSON.parse(fs.readFileSync(path.join(victimDir, 'run.lock'), 'utf8')) as { pid: number }).pid;
  a.child.kill('SIGKILL');
  // Its `troupe train` child notices and stops writing the run directory.
  await until('the orphaned train process to exit', async () => !isProcessAlive(trainPid), 5000);

  const reportJob = await until('the report job', async () => {
    const job = await queue.getJob(`report-${/study (qtest-[0-9a-f]{12})/.exec(submitted.stdout)![1]}`);
    return job && (await job.getState()) === 'completed' ? job : undefined;
  }, 45000);
  expect(reportJob.returnvalue.missing).toEqual([]);

  const runs = (await queue.getJobs(['completed'])).filter((j) => j.name === 'run');
  expect(runs).toHaveLength(6);
  expect(await queue.getJobCountByTypes('failed', 'waiting', 'active', 'delayed')).toBe(0);
  const recovered = runs.find((j) => j.id === victim.id)!;
  expect((recovered.returnvalue as RunJobResult).worker).toBe(nameB);
  // Completed once: one "done" per run over both workers' logs.
  const logs = a.output() + b.output();
  for (const job of runs) expect(logs.split('\n').filter((l) => l.endsWith(`] ${(job.data as { key: string }).key}: done`))).toHaveLength(1);

  for (const job of runs) {
    const key = (job.data as { key: string }).key;
    const result = job.returnvalue as RunJobResult;
    const localRun = path.join(local, 'runs', ...key.split('/'));
    const localRows = MetricsLog.read(path.join(localRun, 'metrics.jsonl'));
    expect(withoutWallClock(result.evalRows)).toEqual(withoutWallClock(localRows.filter((r) => r.kind === 'eval')));
    // The training rows carry the losses: equal to the bit only if the run trained exactly as the local one did.
    expect(result.trainRows.length).toBeGreaterThan(0);
    expect(withoutWallClock(result.trainRows)).toEqual(withoutWallClock(localRows.filter((r) => r.kind === 'train')));
    const localSummary = JSON.parse(fs.readFileSync(path.join(localRun, 'summary.json'), 'utf8')) as Record<string, unknown>;
    for (const field of ['env_steps', 'episodes', 'updates', 'final_eval', 'best_eval', 'interrupted']) expect([key, field, result.summary[field]]).toEqual([key, field, localSummary[field]]);
  }

  // By name, watching (plain lines without a terminal): the counts, then one line per run.
  const status = runCli(['sweep', 'status', 'qtest', '--queue', server.url, '--watch']);
  expect(status.status).toBe(0);
  expect(status.stdout).toMatch(/6 runs: 6 done, 0 running, 0 waiting, 0 failed; report done/);
  expect(status.stdout).toContain(`done     ${(recovered.data as { key: string }).key}  (${nameB})`);

  // The report from job results is the local report, byte for byte.
  const out = path.join(tmp, 'queued-report');
  const report = runCli(['sweep', 'report', file, '--queue', server.url, '--out', out]);
  expect([report.status, report.stderr]).toEqual([0, '']);
  for (const name of ['report.md', 'results.json']) expect(fs.readFileSync(path.join(out, name), 'utf8')).toBe(fs.readFileSync(path.join(local, name), 'utf8'));

  // Submitting the same study again adds nothing.
  expect(runCli(['sweep', file, '--queue', server.url]).stdout).toMatch(/already submitted: nothing added/);
  expect(await queue.getJobCountByTypes('waiting', 'waiting-children', 'active', 'completed', 'delayed', 'failed', 'prioritized')).toBe(7);

  // One condition of the study with one more seed: a new study sharing two finished runs; its report covers all three.
  const more = path.join(tmp, 'qtest-more.yaml');
  fs.writeFileSync(more, YAML.stringify({ ...STUDY, grid: { 'algo.lr': [0.0005] }, seeds: 3 }));
  const moreSubmitted = runCli(['sweep', more, '--queue', server.url]);
  expect(moreSubmitted.stdout).toMatch(/1 runs added \(2 already queued\)/);
  const moreId = /study (qtest-[0-9a-f]{12})/.exec(moreSubmitted.stdout)![1];
  const moreReport = await until('the second report job', async () => {
    const job = await queue.getJob(`report-${moreId}`);
    return job && (await job.getState()) === 'completed' ? job : undefined;
  }, 30000);
  expect(moreReport.returnvalue.missing).toEqual([]);
  const moreResults = JSON.parse((moreReport.returnvalue as { files: Array<{ name: string; content: string }> }).files.find((f) => f.name === 'results.json')!.content) as { conditions: Array<{ seeds: unknown[] }> };
  expect(moreResults.conditions.map((c) => c.seeds.length)).toEqual([3]);

  // SIGTERM: an idle worker stops cleanly.
  b.child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => (b.child.exitCode !== null ? resolve(b.child.exitCode) : b.child.on('exit', (c) => resolve(c))));
  expect(code).toBe(0);
}, 120000);

test('SIGTERM: the worker takes no more jobs, its run checkpoints and goes back to the queue without using an attempt, and the worker exits 0', async () => {
  const file = path.join(tmp, 'long.yaml');
  fs.writeFileSync(file, YAML.stringify({ ...STUDY, name: 'long', set: { ...STUDY.set, 'run.total_env_steps': 1000000, 'run.checkpoint_interval': 500000 }, grid: { 'algo.lr': [0.003] }, seeds: 1 }));
  expect(runCli(['sweep', file, '--queue', server.url]).stdout).toMatch(/1 runs added/);
  const worker = startWorker(path.join(tmp, 'worker-g'));
  const job = await until('the long run to report progress', async () => (await queue.getJobs(['active'])).find((j) => (j.data as { key: string }).key === 'lr=0.003/seed0' && ((j.progress as RunJobProgress).env_steps ?? 0) > 0), 30000);
  worker.child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => worker.child.on('exit', (c) => resolve(c)));
  expect(code).toBe(0);
  const after = (await queue.getJob(job.id!))!;
  expect(['delayed', 'waiting']).toContain(await after.getState());
  expect(after.attemptsMade).toBe(0);
  const dir = path.join(tmp, 'worker-g', 'long', 'runs', 'lr=0.003', 'seed0');
  expect(JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'))).toMatchObject({ interrupted: true });
  expect(fs.readdirSync(path.join(dir, 'checkpoints')).some((f) => f.endsWith('-interrupted.ckpt'))).toBe(true);
  await after.remove();
});

test('the queue goes away mid-run: the worker checkpoints its run and exits with a clear message, not a hang', async () => {
  const doomed = startRedisServer();
  try {
    const file = path.join(tmp, 'doomed.yaml');
    fs.writeFileSync(file, YAML.stringify({ ...STUDY, name: 'doomed', set: { ...STUDY.set, 'run.total_env_steps': 1000000, 'run.checkpoint_interval': 500000 }, grid: { 'algo.lr': [0.004] }, seeds: 1 }));
    expect(runCli(['sweep', file, '--queue', doomed.url]).status).toBe(0);
    const runsDir = path.join(tmp, 'worker-d');
    let output = '';
    const child = spawn(process.execPath, [CLI, 'worker', '--queue', doomed.url, '--runs-dir', runsDir], { env: { ...process.env, TROUPE_QUEUE_RECONNECT_MS: '1000', TROUPE_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    workers.push(child);
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const dir = path.join(runsDir, 'doomed', 'runs', 'lr=0.004', 'seed0');
    await until('the run to train', async () => fs.existsSync(path.join(dir, 'metrics.jsonl')) && fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').length > 0, 30000);
    process.kill(doomed.pid, 'SIGKILL');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(output).toMatch(/lost the connection to the queue at unix:\/\/\S+ for good; stopping/);
    expect(output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'))).toMatchObject({ interrupted: true });
  } finally {
    doomed.stop();
  }
});

test('a troupe train whose starter (TROUPE_PARENT_PID) is SIGKILLed stops by itself, even with its output going to a file', async () => {
  const dir = path.join(tmp, 'orphan');
  // sh starts the run in the background and waits; the run is told sh's pid, as a worker tells its runs.
  const starter = spawn('sh', ['-c', `TROUPE_PARENT_PID=$$ "${process.execPath}" "${CLI}" train "${QUICKSTART}" --out "${dir}" --no-progress --backend wasm --set run.log_interval=1000000 > "${dir}.log" 2>&1 & echo $!; wait`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const trainPid = Number(await new Promise<string>((resolve) => starter.stdout!.once('data', (c: Buffer) => resolve(c.toString().trim()))));
  await until('the run to start training', async () => fs.existsSync(path.join(dir, 'metrics.jsonl')), 20000);
  starter.kill('SIGKILL');
  try {
    await until('the orphaned run to stop', async () => !isProcessAlive(trainPid), 3000);
  } finally {
    if (isProcessAlive(trainPid)) process.kill(trainPid, 'SIGKILL');
  }
  expect(fs.readFileSync(`${dir}.log`, 'utf8')).toMatch(/the process that started this one \(pid \d+\) is gone; stopping/);
});

test('a pretraining checkpoint travels through the queue to a worker that lacks it', async () => {
  // Any finished run with checkpoints stands in for a pretraining run here.
  const source = path.join(tmp, 'local', 'runs', 'lr=0.001', 'seed0');
  await uploadRunCheckpoint(connection, 'job-x', source);
  const dep = { jobId: 'job-x', key: 'pretrain/seed0', dir: 'study/runs/pretrain/seed0' };
  const elsewhere = path.join(tmp, 'other-worker');
  expect(await downloadRunCheckpoint(connection, dep, elsewhere)).toBe(true);
  const copied = path.join(elsewhere, dep.dir, 'checkpoints');
  const pointer = JSON.parse(fs.readFileSync(path.join(copied, 'latest'), 'utf8')) as { latest: string };
  expect(fs.readFileSync(path.join(copied, pointer.latest))).toEqual(fs.readFileSync(path.join(source, 'checkpoints', pointer.latest)));
  // Already there: nothing downloaded again; a folder of that name from another job is replaced.
  expect(await downloadRunCheckpoint(connection, dep, elsewhere)).toBe(false);
  fs.rmSync(path.join(elsewhere, `${dep.dir}.download`));
  fs.writeFileSync(path.join(copied, pointer.latest), 'stale');
  expect(await downloadRunCheckpoint(connection, dep, elsewhere)).toBe(true);
  expect(fs.readFileSync(path.join(copied, pointer.latest))).toEqual(fs.readFileSync(path.join(source, 'checkpoints', pointer.latest)));
  // A copy this worker trained for that job but stopped halfway (finished elsewhere) is not the finished one.
  const halfway = path.join(tmp, 'half-worker');
  const halfDir = path.join(halfway, dep.dir);
  fs.mkdirSync(path.join(halfDir, 'checkpoints'), { recursive: true });
  fs.writeFileSync(path.join(halfDir, 'checkpoints', 'latest'), fs.readFileSync(path.join(copied, 'latest')));
  fs.writeFileSync(path.join(halfDir, 'checkpoints', pointer.latest), 'half-trained');
  fs.writeFileSync(path.join(halfDir, 'summary.json'), JSON.stringify({ interrupted: true }));
  fs.writeFileSync(`${halfDir}.job`, 'job-x');
  // Two runs on one worker asking at once share one download.
  expect(await Promise.all([downloadRunCheckpoint(connection, dep, halfway), downloadRunCheckpoint(connection, dep, halfway)])).toEqual([true, true]);
  expect(fs.readFileSync(path.join(halfDir, 'checkpoints', pointer.latest))).toEqual(fs.readFileSync(path.join(source, 'checkpoints', pointer.latest)));
  expect(fs.readdirSync(path.dirname(halfDir)).filter((f) => f.includes('.partial-'))).toEqual([]);
  expect(await downloadRunCheckpoint(connection, dep, halfway)).toBe(false);
  await expect(downloadRunCheckpoint(connection, { ...dep, jobId: 'job-y' }, path.join(tmp, 'third'))).rejects.toThrow(/pretrain\/seed0 \(job job-y\) completed but its checkpoint is not on the queue/);
});

test('an unreachable queue: a clear error naming the URL without its password, no stack trace, no hang', () => {
  const file = path.join(tmp, 'qtest.yaml');
  const url = 'redis://troupe:hunter2@127.0.0.1:1';
  for (const args of [['sweep', file, '--queue', url], ['worker', '--queue', url]]) {
    const result = runCli(args, { timeoutMs: 20000 });
    expectCleanFailure(result, /cannot reach Redis for the run queue at redis:\/\/troupe:\*\*\*@127\.0\.0\.1:1/);
    expect(result.stdout + result.stderr).not.toContain('hunter2');
  }
  expectCleanFailure(runCli(['sweep', 'status', 'nothing-like-it', '--queue', server.url]), /the queue has no study 'nothing-like-it'/);
});

test('a transfer study through the queue: the target that loads a pretraining run waits for it (delayed, not failed), and its numbers reach the report', async () => {
  const file = path.join(tmp, 'tiny-transfer.yaml');
  fs.writeFileSync(
    file,
    YAML.stringify({
      base: {
        algo: { name: 'mtma', use_rnn: false, rnn_hidden_dim: 16, decl_hidden_dim: 8, batch_size: 4, buffer_size: 100, epsilon_anneal_time: 500, target_update_interval_or_tau: 50 },
        run: { num_envs: 2, log_interval: 200, eval_interval: 400, eval_episodes: 2, checkpoint_interval: 400, backend: 'wasm' },
      },
      sources: [{ id: 'combat-3v3' }],
      targets: [{ id: 'combat-2a3b' }],
      conditions: ['scratch', 'frozen'],
      pretrain: { seeds: 1, total_env_steps: 800 },
      target: { seeds: 1, total_env_steps: 400 },
      report: { metric: 'win_rate', threshold: 0.5, absolute_episodes_factor: 2, bootstrap_reps: 100 },
    }),
  );
  const submitted = runCli(['transfer', file, '--queue', server.url]);
  expect(submitted.stdout).toMatch(/study tiny-transfer-[0-9a-f]{12} \(3 runs, wasm backend\): 3 runs added/);
  // One worker taking all three runs at once: the frozen target must wait for the pretraining run.
  const worker = spawn(process.execPath, [CLI, 'worker', '--queue', server.url, '--runs-dir', path.join(tmp, 'worker-t'), '--concurrency', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
  workers.push(worker);
  let output = '';
  worker.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  const id = /study (tiny-transfer-[0-9a-f]{12})/.exec(submitted.stdout)![1];
  // A job this worker cannot make sense of (here: a folder outside its runs folder) fails at once, not three times.
  await queue.add('run', { kind: 'run', key: 'evil', dir: '../../outside' }, { jobId: 'not-a-run', attempts: 3 });
  // A run whose dependency is gone from the queue fails at once, naming it.
  await queue.add('run', { kind: 'run', study: 'x', key: 'loads-nothing', configYaml: 'run: {}\n', dir: 'x/loads-nothing', seed: 0, backend: 'wasm', dependsOn: [{ jobId: 'gone-job', key: 'pretrain/gone', dir: 'x/gone' }], shareCheckpoint: false }, { jobId: 'loads-gone', attempts: 3 });
  await until('the transfer report job', async () => (await queue.getJobState(`report-${id}`)) === 'completed', 60000);
  const orphan = (await queue.getJob('loads-gone'))!;
  expect([await orphan.getState(), orphan.attemptsMade]).toEqual(['failed', 1]);
  expect(orphan.failedReason).toMatch(/run loads-nothing loads pretrain\/gone \(job gone-job\), which is not on the queue/);
  const bad = await until('the bad job to fail', async () => {
    const job = await queue.getJob('not-a-run');
    return job && (await job.getState()) === 'failed' ? job : undefined;
  }, 10000);
  expect(bad.failedReason).toMatch(/job not-a-run is not a troupe run job this worker understands: .*dir: a folder inside the runs folder \(relative, no \.\.\)/);
  expect(bad.attemptsMade).toBe(1);
  worker.kill('SIGTERM');
  expect(output).toMatch(/target\/combat-2a3b\/frozen\/seed0: waits for pretrain\/seed0 \(active\)/);
  expect(output.split('\n').filter((l) => l.includes('frozen/seed0: waits for'))).toHaveLength(1);
  // Its evaluations and the report ran in child processes (their scratch folder), not on the worker's event loop.
  expect(fs.existsSync(path.join(tmp, 'worker-t', '.evaluations'))).toBe(true);
  expect(output.indexOf('pretrain/seed0: done')).toBeLessThan(output.indexOf('target/combat-2a3b/frozen/seed0: starting'));
  const out = path.join(tmp, 'tiny-transfer-queued');
  expect(runCli(['sweep', 'report', 'tiny-transfer', '--queue', server.url, '--out', out]).status).toBe(0);
  // The frozen run's numbers reached the report (its absolute score was re-evaluated by the worker).
  const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as { missing: string[]; targets: Record<string, Record<string, { seeds: number; measures: Record<string, unknown> }>> };
  expect(report.missing).toEqual([]);
  expect(Object.keys(report.targets['combat-2a3b'])).toEqual(['scratch', 'frozen']);
  expect(report.targets['combat-2a3b'].frozen.measures.absolute).toMatchObject({ values: [expect.any(Number)] });
  expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/^# Transfer report: tiny-transfer/);
}, 90000);

test('a transfer study as jobs: target runs wait for the pretraining run they load (its path relative to the runs folder); MRA runs carry their evaluation; mixed backends are refused', () => {
  const configs = path.join(__dirname, '..', '..', 'configs');
  const dry = runCli(['transfer', path.join(configs, 'transfer', 'smoke.yaml'), '--queue', server.url, '--dry-run']);
  expect([dry.status, dry.stderr]).toEqual([0, '']);
  expect(dry.stdout).toMatch(/study smoke-[0-9a-f]{12}: 10 runs on the wasm backend \(dry run: nothing submitted\)/);
  expect(dry.stdout).toMatch(/target\/combat-4v5\/frozen\/seed1 {2}job [0-9a-f]{12} {2}\(after pretrain\/seed1\)/);
  const file = path.join(configs, 'transfer', 'smoke.yaml');
  const study = queuedStudyOf(planTransferStudy(loadTransferStudy(file), file, path.join(tmp, 'anywhere')), 'smoke', 'wasm');
  const frozen = study.runs.find((r) => r.data.key === 'target/combat-4v5/frozen/seed1')!.data;
  expect(frozen).toMatchObject({ dir: 'smoke/runs/combat-4v5/frozen/seed1', dependsOn: [{ key: 'pretrain/seed1', dir: 'smoke/runs/pretrain/seed1' }], evaluateBest: { metric: 'win_rate', absolute_episodes_factor: 10 }, backend: 'wasm' });
  expect(YAML.parse(frozen.configYaml)).toMatchObject({ algo: { transfer: { mode: 'frozen', decl_from: 'smoke/runs/pretrain/seed1' } }, run: { backend: 'wasm', seed: 1 } });
  expect(study.runs.filter((r) => r.data.shareCheckpoint).map((r) => r.data.key)).toEqual(['pretrain/seed0', 'pretrain/seed1']);
  // Where the submitter keeps the study does not change its jobs.
  expect(queuedStudyOf(planTransferStudy(loadTransferStudy(file), file, path.join(tmp, 'elsewhere')), 'smoke', 'wasm').runs.map((r) => r.jobId)).toEqual(study.runs.map((r) => r.jobId));
  // MRA studies: each run's job carries the evaluation its worker makes for the report.
  const mraFile = path.join(configs, 'mra', 'smoke.yaml');
  const mraPlan = planMraStudy(loadMraStudy(mraFile), mraFile, path.join(tmp, 'mra'), { validate: false, episodeLength: () => ({ steps: 20, from: 'default' }) });
  const mra = queuedStudyOf(mraPlan, 'smoke', 'wasm');
  expect(mra.report).toMatchObject({ studyKind: 'mra', adaptationBudgets: mraPlan.adaptationBudgets });
  expect(mra.runs.map((r) => r.data.mraEvaluation)).toEqual(mraPlan.runs.map((r) => r.evaluation));
  expect(runCli(['transfer', mraFile, '--queue', server.url, '--dry-run']).stdout).toMatch(/study smoke-[0-9a-f]{12}: 8 runs on the wasm backend/);
  const mixed = path.join(tmp, 'mixed.yaml');
  fs.writeFileSync(mixed, YAML.stringify({ ...STUDY, grid: { 'run.backend': ['wasm', 'cpu'] } }));
  expectCleanFailure(runCli(['sweep', mixed, '--queue', server.url]), /the runs ask for different backends \(wasm, cpu\); a queued study runs on one backend/);
  // Files on the submitter's machine: workers elsewhere cannot read them, so the study is refused, naming the field.
  const localEnv = path.join(tmp, 'local-env.yaml');
  fs.writeFileSync(localEnv, YAML.stringify({ ...STUDY, set: { ...STUDY.set, 'env.module': './my-env.js' } }));
  expectCleanFailure(runCli(['sweep', localEnv, '--queue', server.url, '--dry-run']), /run lr=0\.0005\/seed0: env\.module \('[^']*my-env\.js'\) names a file on this machine, which workers on other machines cannot read/);
  expect(submitterLocalFields({ tasks: [{ id: 'a' }, { id: 'b', module: 'b.js', dataset: 'b.msgpack' }], datasets: { dir: 'd' } }).map((f) => f.field)).toEqual(['datasets.dir', 'tasks.1.module', 'tasks.1.dataset']);
});
