import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/*
 * A real Redis server for one test file: `redis-server` on a unix socket in a temporary folder
 * (no TCP port, no persistence), started by the test and stopped after it. No test depends on
 * a server someone started by hand; `.ci/run` installs the Debian package when it is missing.
 */

export interface TestRedisServer {
  /** `unix:///tmp/…/redis.sock` */
  url: string;
  socket: string;
  dir: string;
  /** The server's process id (a test may SIGKILL it to see what a vanished broker does). */
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes the folder; safe to call twice. */
  stop(): void;
}

function redisServerBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const binary = found.stdout.trim();
  if (found.status !== 0 || binary === '') {
    throw new Error('redis-server is not installed: the run-queue and remote-rollout tests start their own Redis. Install it (Debian: apt-get install -y redis-server), as .ci/run does');
  }
  return binary;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Starts a private Redis on a unix socket and waits until it accepts connections (< 0.5 s usually). */
export function startRedisServer(): TestRedisServer {
  const binary = redisServerBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-redis-'));
  const socket = path.join(dir, 'redis.sock');
  const pidFile = path.join(dir, 'redis.pid');
  const logFile = path.join(dir, 'redis.log');
  execFileSync(binary, [
    '--port', '0',
    '--unixsocket', socket,
    '--unixsocketperm', '700',
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'yes',
    '--pidfile', pidFile,
    '--logfile', logFile,
    '--dir', dir,
  ]);
  const deadline = Date.now() + 10000;
  while (!(fs.existsSync(socket) && fs.existsSync(pidFile))) {
    if (Date.now() > deadline) {
      const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '(no log)';
      throw new Error(`redis-server did not start within 10 s; its log:\n${log}`);
    }
    sleepSync(20);
  }
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  let stopped = false;
  return {
    url: `unix://${socket}`,
    socket,
    dir,
    pid,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        process.kill(pid, 'SIGTERM');
        const until = Date.now() + 3000;
        while (Date.now() < until && alive(pid)) sleepSync(20);
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
