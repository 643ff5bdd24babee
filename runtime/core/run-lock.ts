import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/*
 * The lock of a run directory: one process at a time may write a run's files. Two trainings
 * appending to one metrics.jsonl (or overwriting each other's checkpoints) would leave a run that
 * neither produced; the lock turns the second one away before it writes anything.
 */

/** Name of the lock file inside a run directory. */
export const RUN_LOCK_FILE = 'run.lock';

/** Who holds a run directory, as its lock file records it. */
export interface RunLockHolder {
  pid: number;
  hostname: string;
  started_at: string;
  command: string;
}

// A lock file is written right after it is created; one still unreadable after this long was
// left by a process that died in between.
const UNREADABLE_GRACE_MS = 10_000;

function isHolder(value: unknown): value is RunLockHolder {
  const h = value as Partial<RunLockHolder>;
  return typeof h === 'object' && h !== null && Number.isSafeInteger(h.pid) && typeof h.hostname === 'string' && typeof h.started_at === 'string' && typeof h.command === 'string';
}

/** Whether process `pid` exists on this machine (one of another user counts as alive). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeHolder(h: RunLockHolder): string {
  return `pid ${h.pid} on ${h.hostname}, since ${h.started_at}${h.command ? ` (${h.command})` : ''}`;
}

type LockFileState = { kind: 'missing' } | { kind: 'held'; holder: RunLockHolder; text: string } | { kind: 'unreadable'; text: string; ageMs: number };

function readLockFile(file: string): LockFileState {
  let text: string;
  let ageMs: number;
  try {
    text = fs.readFileSync(file, 'utf8');
    ageMs = Date.now() - fs.statSync(file).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw new Error(`cannot read the run lock ${file}: ${(error as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (isHolder(parsed)) return { kind: 'held', holder: parsed, text };
  } catch {
    // Falls through: not a lock this build wrote (or one cut off while being written).
  }
  return { kind: 'unreadable', text, ageMs };
}

/**
 * A held lock on a run directory (`<dir>/run.lock`, JSON naming the holder's pid, host, start
 * time and command). `acquire` refuses a directory another live process holds and takes over a
 * lock whose holder is gone (a crash or a kill), with a note; `release` removes it, and so does
 * the process's exit if nobody released it.
 */
export class RunLock {
  private released = false;
  private readonly releaseAtExit = () => {
    try {
      this.release();
    } catch {
      // Exiting anyway; a lock left behind is taken over as stale by the next run.
    }
  };

  private constructor(
    readonly file: string,
    readonly holder: RunLockHolder,
    private readonly text: string,
  ) {
    process.on('exit', this.releaseAtExit);
  }

  /**
   * Locks `dir` (creating it) for this process. `note` hears about a stale lock taken over.
   * Throws, naming the holder, when another live process holds it.
   */
  static acquire(dir: string, options: { command: string; note?: (message: string) => void }): RunLock {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') throw new Error(`cannot use ${dir} as a run directory: it, or a folder on its path, is a file`);
      throw new Error(`cannot create the run directory ${dir}: ${(error as Error).message}`);
    }
    const file = path.join(dir, RUN_LOCK_FILE);
    const holder: RunLockHolder = { pid: process.pid, hostname: os.hostname(), started_at: new Date().toISOString(), command: options.command };
    const text = `${JSON.stringify(holder, null, 2)}\n`;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (RunLock.tryCreate(file, text)) return new RunLock(file, holder, text);
      const state = readLockFile(file);
      if (state.kind === 'missing') continue;
      if (state.kind === 'unreadable') {
        if (state.ageMs < UNREADABLE_GRACE_MS) {
          throw new Error(`${dir} is being locked by another process (${file} is not complete yet); try again in a moment`);
        }
        if (RunLock.takeOver(file, state.text)) options.note?.(`note: ${file} was unreadable (left by a process that died while taking it); taking it over`);
        continue;
      }
      const h = state.holder;
      if (h.hostname !== os.hostname()) {
        throw new Error(`${dir} is in use by ${describeHolder(h)}; another machine's process cannot be checked from here — if it no longer runs, delete ${file}`);
      }
      if (isProcessAlive(h.pid)) {
        throw new Error(`${dir} is in use by another troupe process: ${describeHolder(h)}; wait for it to finish or stop it (if pid ${h.pid} is not troupe, delete ${file})`);
      }
      if (RunLock.takeOver(file, state.text)) options.note?.(`note: taking over the stale lock ${file} of ${describeHolder(h)}, which is no longer running`);
    }
    throw new Error(`cannot lock ${dir}: ${file} keeps changing hands (other processes are taking it)`);
  }

  /** Creates the lock file if there is none (atomically: `wx`); false if one exists. */
  private static tryCreate(file: string, text: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new Error(`cannot create the run lock ${file}: ${(error as Error).message}`);
    }
    try {
      fs.writeFileSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  }

  /**
   * Removes a stale lock whose contents were `staleText`. It is moved aside first and checked, so
   * of two processes taking over the same stale lock, the second cannot delete the first's new one.
   */
  private static takeOver(file: string, staleText: string): boolean {
    const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(file, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    const moved = fs.readFileSync(aside, 'utf8');
    if (moved !== staleText) {
      // Someone else's fresh lock: put it back (the next attempt will see it held).
      fs.renameSync(aside, file);
      return false;
    }
    fs.rmSync(aside, { force: true });
    return true;
  }

  /** Removes the lock if this process still holds it; safe to call more than once. */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.releaseAtExit);
    const state = readLockFile(this.file);
    if (state.kind === 'held' && state.text === this.text) fs.rmSync(this.file, { force: true });
  }
}
