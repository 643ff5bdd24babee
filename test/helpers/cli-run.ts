import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** The compiled CLI (tests run from dist/test). */
export const CLI = path.join(__dirname, '..', '..', 'scripts', 'troupe.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `troupe <args>` in a child process (default cwd: the repository root). */
export function runCli(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CliResult {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...(opts.env ?? {}), TROUPE_DEBUG: '' },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120000,
  });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** A stack frame line, as Node prints them (`    at fn (file.js:1:2)`). */
const STACK_FRAME = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

/**
 * Asserts what every refused input must give: a non-zero exit, a message matching each of
 * `patterns` (stdout and stderr together), and no stack trace.
 */
export function expectCleanFailure(result: CliResult, ...patterns: RegExp[]): void {
  const output = `${result.stdout}\n${result.stderr}`;
  if (result.status === 0 || result.status === null) {
    throw new Error(`expected a non-zero exit, got ${result.status}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  for (const pattern of patterns) {
    if (!pattern.test(output)) throw new Error(`expected the output to match ${pattern}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  if (STACK_FRAME.test(output)) throw new Error(`expected no stack trace\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
}
