import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { prepareEnv } from '../../envs/registry';
import { RemoteLockstepRun } from '../../runtime/rollout/remote-transport';
import { type Throughput, benchVectorEnv } from '../../runtime/rollout/env-benchmark';

/*
 * `troupe bench remote`: what lock-step remote rollouts cost per vector step against worker
 * threads on this machine. The same random policy steps E envs in-process, over W worker
 * threads, and on one `troupe rollout` host (a child process with W workers, W shards) through
 * the broker; the difference between the last two is the broker's overhead per step.
 */

export interface BenchRemoteCommandOptions {
  broker: string;
  ids: string;
  envs: string;
  workers: string;
  seconds: string;
  json?: boolean;
}

interface StepTiming {
  msPerStep: number;
  envStepsPerSec: number;
}

function timing(numEnvs: number, t: Throughput): StepTiming {
  return { msPerStep: (1000 * numEnvs) / t.envStepsPerSec, envStepsPerSec: t.envStepsPerSec };
}

function startHost(cli: string, broker: string, workers: number): ChildProcess {
  return spawn(process.execPath, [cli, 'rollout', '--broker', broker, '--workers', String(workers), '--max-shards', String(Math.max(1, workers))], { stdio: 'ignore' });
}

export async function runBenchRemoteCommand(opts: BenchRemoteCommandOptions): Promise<void> {
  const ids = opts.ids.split(',').map((s) => s.trim()).filter(Boolean);
  const numEnvs = Number(opts.envs);
  const workers = Number(opts.workers);
  const seconds = Number(opts.seconds);
  if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new Error(`--envs must be a positive integer, got '${opts.envs}'`);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer, got '${opts.workers}'`);
  if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got '${opts.seconds}'`);
  registerBuiltinEnvs();
  const host = startHost(process.argv[1], opts.broker, workers);
  const rows: Array<{ id: string; inProcess: StepTiming; workerThreads: StepTiming; remote: StepTiming; overheadMs: number }> = [];
  try {
    for (const id of ids) {
      await prepareEnv(id);
      const inProcess = timing(numEnvs, await benchVectorEnv(id, numEnvs, 0, 1, seconds));
      const workerThreads = timing(numEnvs, await benchVectorEnv(id, numEnvs, workers, 1, seconds));
      const run = await RemoteLockstepRun.open({ url: opts.broker, runId: `bench-${randomBytes(4).toString('hex')}`, shards: workers, leaseMs: 10000, config: {} });
      let remote: StepTiming;
      try {
        remote = timing(numEnvs, await benchVectorEnv(id, numEnvs, workers, 1, seconds, run.transportFor(id)));
      } finally {
        await run.close();
      }
      const row = { id, inProcess, workerThreads, remote, overheadMs: remote.msPerStep - workerThreads.msPerStep };
      rows.push(row);
      if (!opts.json) {
        const f = (t: StepTiming) => `${t.msPerStep.toFixed(3)} ms/step (${Math.round(t.envStepsPerSec)} env steps/s)`;
        process.stdout.write(`${id} (${numEnvs} envs): in-process ${f(inProcess)}; ${workers} worker threads ${f(workerThreads)}; remote, 1 host × ${workers} workers ${f(remote)}; overhead ${row.overheadMs.toFixed(3)} ms/step\n`);
      }
    }
  } finally {
    host.kill('SIGTERM');
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
}
