import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { type RunLauncher, configFileOf } from './transfer-study';

/*
 * `troupe train` as a child process: how local studies (`troupe sweep|transfer`) and queue
 * workers start their runs. The CLI's path is given by the caller (scripts know where they are).
 */

/** A `troupe train` child. */
export interface LaunchedRun {
  /** Resolves with the exit code; `lastError` is the child's last `troupe: …` line, if any. */
  exit: Promise<{ code: number; lastError?: string }>;
  /** Asks the run to checkpoint and stop (SIGINT). */
  interrupt(): void;
}

export interface TrainProcessOptions {
  /** The troupe CLI script this Node runs. */
  cli: string;
  /** `--out <dir>` with the config file, or `--resume <dir>`. */
  configFile: string;
  dir: string;
  resume: boolean;
  /** Overrides the config's `run.backend`. */
  backend?: string;
  /** The child's stdout and stderr are appended here. */
  logFile: string;
  onLine?: (line: string) => void;
  /**
   * Its own process group: a Ctrl-C at the starter's terminal then reaches the child only through
   * `interrupt` (a queue worker decides what its runs do on shutdown).
   */
  detached?: boolean;
}

/**
 * Starts one run. The child is told this process's id (TROUPE_PARENT_PID) and exits when it is
 * gone, so a starter killed outright leaves no orphan writing into its run directory.
 */
export function launchTrainProcess(how: TrainProcessOptions): LaunchedRun {
  const args = how.resume ? ['train', '--resume', how.dir, '--no-progress'] : ['train', how.configFile, '--out', how.dir, '--no-progress'];
  if (how.backend !== undefined) args.push('--backend', how.backend);
  const log = fs.createWriteStream(how.logFile, { flags: 'a' });
  const child = spawn(process.execPath, [how.cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: how.detached === true, env: { ...process.env, TROUPE_PARENT_PID: String(process.pid) } });
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
        how.onLine?.(line);
      }
    });
  };
  lines(child.stdout!, false);
  lines(child.stderr!, true);
  const exit = new Promise<{ code: number; lastError?: string }>((resolve) => {
    child.on('error', (error) => {
      log.end();
      resolve({ code: -1, lastError: error.message });
    });
    child.on('close', (code, signal) => {
      log.end(() => resolve({ code: code ?? (signal ? 128 : 1), lastError }));
    });
  });
  return { exit, interrupt: () => child.kill('SIGINT') };
}

/** A local study's launcher (`runTransferStudy`): each run a `troupe train` of `cli`, its output in `<dir>.log`. */
export function studyRunLauncher(cli: string): RunLauncher {
  return async (run, how) => {
    const { code, lastError } = await launchTrainProcess({ cli, configFile: configFileOf(run), dir: run.dir, resume: how.resume, logFile: how.logFile }).exit;
    if (code === -1) throw new Error(`cannot start troupe train for ${run.key}: ${lastError ?? 'spawn failed'}`);
    return code;
  };
}
