import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomicSync } from '../runtime/core/atomic-file';
import { MetricsLog, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { RUN_LOCK_FILE, RunLock, type RunLockHolder, isProcessAlive } from '../runtime/core/run-lock';
import { configFileHash } from '../runtime/training/run-directory';
import { CLI, runCli } from './helpers/cli-run';

/*
 * The run directory as a resource: one writer at a time (run.lock), whole-file writes through a
 * rename, a metrics file checked before a resume continues it, and a run killed at any moment
 * that resumes to exactly the numbers of a run never interrupted.
 */

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-run-safety-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let dirCount = 0;
const freshDir = () => path.join(root, `d${dirCount++}`);

/** A process that sleeps: a live pid for a lock to name. */
function sleeper(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

function writeLock(dir: string, holder: Partial<RunLockHolder>): void {
  fs.mkdirSync(dir, { recursive: true });
  const full: RunLockHolder = { pid: 1, hostname: os.hostname(), started_at: '2026-01-01T00:00:00.000Z', command: 'troupe train x.yaml', ...holder };
  fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify(full));
}

describe('RunLock', () => {
  test('acquire writes who holds the directory; release removes it (twice is harmless)', () => {
    const dir = freshDir();
    const lock = RunLock.acquire(dir, { command: 'troupe train a.yaml' });
    const holder = JSON.parse(fs.readFileSync(path.join(dir, RUN_LOCK_FILE), 'utf8')) as RunLockHolder;
    expect(holder).toMatchObject({ pid: process.pid, hostname: os.hostname(), command: 'troupe train a.yaml' });
    expect(Number.isNaN(Date.parse(holder.started_at))).toBe(false);
    lock.release();
    lock.release();
    expect(fs.existsSync(path.join(dir, RUN_LOCK_FILE))).toBe(false);
    // Free again once released.
    RunLock.acquire(dir, { command: 'again' }).release();
  });

  test('a directory this process holds is refused to a second taker, naming the pid', () => {
    const dir = freshDir();
    const lock = RunLock.acquire(dir, { command: 'first' });
    try {
      expect(() => RunLock.acquire(dir, { command: 'second' })).toThrow(new RegExp(`is in use by another troupe process: pid ${process.pid} on ${os.hostname()}, since .* \\(first\\)`));
    } finally {
      lock.release();
    }
  });

  test('a live holder is refused; once it has died its lock is taken over with a note', async () => {
    const child = sleeper();
    try {
      const dir = freshDir();
      writeLock(dir, { pid: child.pid! });
      expect(isProcessAlive(child.pid!)).toBe(true);
      expect(() => RunLock.acquire(dir, { command: 'me' })).toThrow(new RegExp(`in use by another troupe process: pid ${child.pid} on ${os.hostname()}, since 2026-01-01T00:00:00.000Z \\(troupe train x\\.yaml\\).*delete .*run\\.lock`));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.on('exit', resolve));
      const notes: string[] = [];
      const lock = RunLock.acquire(dir, { command: 'me', note: (m) => notes.push(m) });
      expect(notes).toEqual([expect.stringMatching(new RegExp(`taking over the stale lock .*run\\.lock of pid ${child.pid} .*no longer running`))]);
      expect(JSON.parse(fs.readFileSync(lock.file, 'utf8')).pid).toBe(process.pid);
      lock.release();
    } finally {
      child.kill('SIGKILL');
    }
  });

  test("another machine's lock is refused (its process cannot be checked from here)", async () => {
    const dir = freshDir();
    writeLock(dir, { pid: await deadPid(), hostname: 'some-other-host' });
    expect(() => RunLock.acquire(dir, { command: 'me' })).toThrow(/in use by pid \d+ on some-other-host.*another machine.*delete .*run\.lock/);
  });

  test('an unreadable lock is refused while it may still be being written, taken over once old', () => {
    const dir = freshDir();
    const file = path.join(dir, RUN_LOCK_FILE);
    fs.mkdirSync(dir);
    fs.writeFileSync(file, '{"pi');
    expect(() => RunLock.acquire(dir, { command: 'me' })).toThrow(/is being locked by another process/);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(file, old, old);
    const notes: string[] = [];
    RunLock.acquire(dir, { command: 'me', note: (m) => notes.push(m) }).release();
    expect(notes).toEqual([expect.stringMatching(/run\.lock was unreadable/)]);
  });

  test('release leaves alone a lock that is no longer its own', () => {
    const dir = freshDir();
    const lock = RunLock.acquire(dir, { command: 'me' });
    writeLock(dir, { pid: 4242, command: 'someone else' });
    lock.release();
    expect(JSON.parse(fs.readFileSync(path.join(dir, RUN_LOCK_FILE), 'utf8')).command).toBe('someone else');
  });

  test('a file where the run directory should be is refused by name', () => {
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    expect(() => RunLock.acquire(file, { command: 'me' })).toThrow(/cannot use .*a-file as a run directory: it, or a folder on its path, is a file/);
  });
});

describe('writeFileAtomicSync', () => {
  test('replaces the whole file and leaves no temporary file behind', () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    const file = path.join(dir, 'summary.json');
    fs.writeFileSync(file, 'old contents that are longer than the new ones');
    writeFileAtomicSync(file, '{"new":1}\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('{"new":1}\n');
    expect(fs.readdirSync(dir)).toEqual(['summary.json']);
  });

  test('a failed write leaves the old file and no temporary file', () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, 'old');
    // A directory in the target's place: the rename fails after the temporary file was written.
    const target = path.join(dir, 'taken');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    expect(() => writeFileAtomicSync(target, 'new')).toThrow();
    expect(fs.readdirSync(dir).sort()).toEqual(['config.yaml', 'taken']);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
  });
});

describe('MetricsLog at resume', () => {
  const line = (n: number) => JSON.stringify({ kind: 'train', env_steps: n });

  test('keeps the records the checkpoint counted and drops a torn line after them', () => {
    const file = path.join(root, 'torn.jsonl');
    fs.writeFileSync(file, `${line(1)}\n${line(2)}\n${line(3)}\n{"kind":"tr`);
    const log = MetricsLog.resume(file, 2);
    expect(log.records).toBe(2);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${line(1)}\n${line(2)}\n`);
  });

  test.each([
    ['not JSON', '{"kind":"train", garbage'],
    ['JSON but not an object', '[1, 2]'],
    ['JSON null', 'null'],
  ])('a damaged line (%s) before the checkpoint is named by file and line, and the file is left as it was', (_what, bad) => {
    const file = path.join(root, `damaged-${dirCount++}.jsonl`);
    // A blank line before it: the line number is the file's, not the record's.
    const text = `${line(1)}\n\n${bad}\n${line(3)}\n`;
    fs.writeFileSync(file, text);
    expect(() => MetricsLog.resume(file, 3)).toThrow(new RegExp(`damaged-\\d+\\.jsonl:3: damaged metrics record \\(expected a JSON object on each line; the checkpoint counts 3 records`));
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    // The same damage after the checkpoint's records is what a crash leaves: dropped.
    expect(MetricsLog.resume(file, 1).records).toBe(1);
  });

  test('fewer records than the checkpoint counted is refused with both counts', () => {
    const file = path.join(root, 'short.jsonl');
    fs.writeFileSync(file, `${line(1)}\n`);
    expect(() => MetricsLog.checkResumable(file, 4)).toThrow(/short\.jsonl: the checkpoint had seen 4 records but the file has 1/);
  });
});

describe('troupe train on a run directory', () => {
  const config = path.join(__dirname, '..', '..', 'configs', 'quickstart.yaml');
  const small = [
    '--set', 'run.num_envs=2', '--set', 'run.total_env_steps=4000', '--set', 'run.log_interval=500', '--set', 'run.eval_interval=1000',
    '--set', 'run.eval_episodes=2', '--set', 'run.checkpoint_interval=1000', '--backend', 'cpu', '--no-progress',
  ];
  const metrics = (dir: string) =>
    fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      for (const k of WALL_CLOCK_FIELDS) delete r[k];
      return r;
    });

  /** Runs the CLI until its output shows `marker`, then sends `signal`; resolves with the exit code and output. */
  function runUntil(args: string[], marker: string, signal: NodeJS.Signals): Promise<{ code: number | null; stdout: string; stderr: string; sent: boolean }> {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && stdout.includes(marker)) {
        sent = true;
        child.kill(signal);
      }
    });
    return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr, sent })));
  }

  test('Ctrl-C, then SIGKILL of the resumed run, then resume: the metrics of an uninterrupted run; the lock is released or taken over', async () => {
    const full = path.join(root, 'full');
    expect(runCli(['train', config, ...small, '--out', full]).status).toBe(0);
    expect(fs.existsSync(path.join(full, RUN_LOCK_FILE))).toBe(false);
    const info = JSON.parse(fs.readFileSync(path.join(full, 'run.json'), 'utf8')) as { config_sha256: string };
    expect(info.config_sha256).toBe(configFileHash(fs.readFileSync(path.join(full, 'config.yaml'))));

    const cut = path.join(root, 'cut');
    const first = await runUntil(['train', config, ...small, '--out', cut], '[train] 1000/', 'SIGINT');
    expect(first.sent).toBe(true);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/stopped at \d+ env steps/);
    expect(fs.existsSync(path.join(cut, RUN_LOCK_FILE))).toBe(false);

    const second = await runUntil(['train', '--resume', cut, '--backend', 'cpu', '--no-progress'], '[train] 3000/', 'SIGKILL');
    expect(second.sent).toBe(true);
    expect(second.code).toBe(null);
    // The killed process could not release its lock.
    expect(fs.existsSync(path.join(cut, RUN_LOCK_FILE))).toBe(true);

    const last = runCli(['train', '--resume', cut, '--backend', 'cpu', '--no-progress']);
    expect(last.status).toBe(0);
    expect(last.stderr).toMatch(/note: taking over the stale lock .*run\.lock of pid \d+/);
    expect(fs.existsSync(path.join(cut, RUN_LOCK_FILE))).toBe(false);
    expect(metrics(cut)).toEqual(metrics(full));
  }, 240000);
});
