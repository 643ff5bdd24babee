import * as fsp from 'node:fs/promises';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { type CheckpointData, decodeCheckpoint, encodeCheckpoint } from './checkpoint-format';

export * from './checkpoint-format';

/*
 * Checkpoint files: atomic writes, the `latest` pointer of a checkpoint directory, and reading
 * with errors that name the file. The format itself is in checkpoint-format.ts.
 */

export const CHECKPOINT_EXTENSION = '.ckpt';
/** Name of the pointer file naming the newest checkpoint in a directory. */
export const LATEST_POINTER = 'latest';

// --- writing ---------------------------------------------------------------------------------

/** The file-system calls writing uses; replaceable so tests can simulate a crash mid-write. */
export interface CheckpointFs {
  open: typeof fsp.open;
  rename: typeof fsp.rename;
  unlink: typeof fsp.unlink;
  mkdir: typeof fsp.mkdir;
}

export interface WriteCheckpointOptions {
  /** Delete older checkpoints (tracked by the latest pointer) beyond this many. */
  keepLast?: number;
  fs?: CheckpointFs;
}

/** Contents of the `latest` pointer: newest first. */
interface LatestPointer {
  latest: string;
  history: string[];
}

const defaultFs: CheckpointFs = { open: fsp.open, rename: fsp.rename, unlink: fsp.unlink, mkdir: fsp.mkdir };

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name === LATEST_POINTER) {
    throw new Error(`invalid checkpoint name '${name}': use letters, digits, '.', '_' or '-', not '${LATEST_POINTER}'`);
  }
}

async function fsyncDir(fs: CheckpointFs, dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some platforms (Windows) cannot open or fsync a directory; the rename is then as durable as the OS makes it.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw err;
  } finally {
    await handle?.close();
  }
}

/** Write-to-temp, fsync, rename, fsync-dir: the target is either the old file or the complete new one. */
async function writeAtomic(fs: CheckpointFs, dir: string, fileName: string, bytes: Uint8Array): Promise<void> {
  const target = path.join(dir, fileName);
  const temp = path.join(dir, `.${fileName}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await fs.open(temp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  } catch (err) {
    await fs.unlink(temp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(fs, dir);
}

function readPointer(dir: string): LatestPointer | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dir, LATEST_POINTER), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const file = path.join(dir, LATEST_POINTER);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not a valid checkpoint pointer (not JSON)`);
  }
  const p = parsed as Partial<LatestPointer>;
  if (typeof p !== 'object' || p === null || typeof p.latest !== 'string' || !Array.isArray(p.history) || !p.history.every((h) => typeof h === 'string')) {
    throw new Error(`${file} is not a valid checkpoint pointer (needs 'latest' and 'history')`);
  }
  // The pointer may only name files in its own directory; anything else is tampering or damage.
  for (const name of [p.latest, ...p.history]) {
    if (path.basename(name) !== name) throw new Error(`${file} names '${name}', which is outside its directory`);
  }
  return { latest: p.latest, history: p.history };
}

/**
 * Writes `<dir>/<name>.ckpt` atomically, then points `<dir>/latest` at it, then (with keepLast)
 * deletes checkpoints that fell out of the window. A crash at any point leaves the previous
 * checkpoint and pointer readable. Returns the checkpoint's path.
 */
export async function writeCheckpoint(dir: string, name: string, data: CheckpointData, options: WriteCheckpointOptions = {}): Promise<string> {
  checkName(name);
  const { keepLast } = options;
  if (keepLast !== undefined && (!Number.isInteger(keepLast) || keepLast < 1)) throw new Error(`keepLast must be a positive integer, got ${keepLast}`);
  const fs = options.fs ?? defaultFs;
  await fs.mkdir(dir, { recursive: true });
  const fileName = name + CHECKPOINT_EXTENSION;
  await writeAtomic(fs, dir, fileName, encodeCheckpoint(data));

  let previous: LatestPointer | undefined;
  try {
    previous = readPointer(dir);
  } catch {
    // A damaged pointer is replaced by the new one.
  }
  const history = [fileName, ...(previous?.history ?? []).filter((h) => h !== fileName)];
  const kept = keepLast === undefined ? history : history.slice(0, keepLast);
  const pointer: LatestPointer = { latest: fileName, history: kept };
  await writeAtomic(fs, dir, LATEST_POINTER, Buffer.from(JSON.stringify(pointer, null, 2) + '\n'));

  // Deleted only after the pointer names the new file, so a crash never leaves it dangling.
  for (const old of history.slice(kept.length)) {
    await fs.unlink(path.join(dir, old)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  return path.join(dir, fileName);
}

// --- reading ---------------------------------------------------------------------------------

/**
 * The bytes of a file a reader is about to decode; a missing file, a directory or an unreadable
 * one is an error naming the file and what it was meant to be (`checkpoint`, `dataset`, …).
 */
export async function readFileAs(what: string, file: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${what} ${file} does not exist`);
    if (code === 'EISDIR') throw new Error(`${what} ${file} is a directory, not a file`);
    throw new Error(`cannot read ${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Reads and validates one checkpoint file; every failure is an error naming the file (and field). */
export async function readCheckpoint(file: string): Promise<CheckpointData> {
  return decodeCheckpoint(await readFileAs('checkpoint', file), file);
}

/** Reads the checkpoint the directory's `latest` pointer names. */
export async function readLatestCheckpoint(dir: string): Promise<{ path: string; data: CheckpointData }> {
  const file = latestCheckpointFile(dir);
  return { path: file, data: await readCheckpoint(file) };
}

/** The file `<dir>/latest` points at, checked to exist; errors name the pointer and what is left. */
export function latestCheckpointFile(dir: string): string {
  const pointer = readPointer(dir);
  if (!pointer) throw new Error(`no checkpoint in ${dir} (no '${LATEST_POINTER}' pointer)`);
  const file = path.join(dir, pointer.latest);
  if (!existsSync(file)) {
    let others: string[] = [];
    try {
      others = readdirSync(dir).filter((f) => f.endsWith(CHECKPOINT_EXTENSION)).sort();
    } catch {
      // nothing to suggest
    }
    const hint = others.length > 0 ? `; the folder still has ${others.join(', ')} — resume or evaluate one of them by path` : '';
    throw new Error(`${path.join(dir, LATEST_POINTER)} names the checkpoint ${pointer.latest}, but ${file} does not exist (deleted or moved?)${hint}`);
  }
  return file;
}
