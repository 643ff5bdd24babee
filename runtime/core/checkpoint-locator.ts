import fs from 'node:fs';
import path from 'node:path';
import { type CheckpointData, LATEST_POINTER, latestCheckpointFile, readCheckpoint } from './checkpoint';

export interface LocatedCheckpoint {
  path: string;
  data: CheckpointData;
  /** The run directory the checkpoint belongs to (where its metrics.jsonl lives). */
  runDir: string;
}

/**
 * Finds the checkpoint a user means by `target`: a `.ckpt` file, a run directory (its newest
 * checkpoint), or a run's `checkpoints/` directory. Errors say what was looked for where.
 */
export async function locateCheckpoint(target: string): Promise<LocatedCheckpoint> {
  const { path: file, runDir } = locateCheckpointFile(target);
  return { path: file, data: await readCheckpoint(file), runDir };
}

/** As `locateCheckpoint`, without reading the file: which file `target` means and its run directory. */
export function locateCheckpointFile(target: string): { path: string; runDir: string } {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    throw new Error(`${target} does not exist (expected a run directory or a .ckpt checkpoint file)`);
  }
  if (stat.isFile()) {
    const dir = path.dirname(path.resolve(target));
    return { path: target, runDir: path.basename(dir) === 'checkpoints' ? path.dirname(dir) : dir };
  }
  const inRun = path.join(target, 'checkpoints');
  if (fs.existsSync(path.join(inRun, LATEST_POINTER))) return { path: latestCheckpointFile(inRun), runDir: target };
  if (fs.existsSync(path.join(target, LATEST_POINTER))) return { path: latestCheckpointFile(target), runDir: path.dirname(path.resolve(target)) };
  const runFiles = ['metrics.jsonl', 'config.yaml', 'run.json'].filter((f) => fs.existsSync(path.join(target, f)));
  if (runFiles.length > 0) {
    throw new Error(
      `${target} is a run directory without a checkpoint (it has ${runFiles.join(', ')} but no ${path.join(inRun, LATEST_POINTER)}): ` +
        `the run stopped before its first checkpoint (run.checkpoint_interval), or its checkpoints were removed`,
    );
  }
  throw new Error(`no checkpoint in ${target} (looked for ${path.join(inRun, LATEST_POINTER)} and ${path.join(target, LATEST_POINTER)}): expected a run directory written by troupe train, or a .ckpt file`);
}
