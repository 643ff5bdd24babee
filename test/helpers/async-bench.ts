import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { connectRedis } from '../../runtime/core/redis-connection';
import { selectBackend } from '../../runtime/core/tf-backend';
import { parseRunConfig } from '../../runtime/training/config-loader';
import { type TrainingSummary, runTraining } from '../../runtime/training/training-run';
import { startRedisServer } from './redis-server';

/*
 * Async-mode throughput: `node dist/test/helpers/async-bench.js <hosts> [env-steps]` trains
 * configs/benchmarks/lbf-8x8-2p-2f-coop-mappo.yaml for `env-steps` (default 60000) with a private
 * redis-server and <hosts> acting hosts, each its own process with its own tfjs wasm
 * (`async-host.js`); <hosts> = 0 trains the same config locally (in-process envs) for comparison.
 * Prints env steps/s measured from the first consumed chunk to the last (host start-up excluded).
 */
async function main(): Promise<void> {
  const hosts = Number(process.argv[2] ?? '1');
  const steps = Number(process.argv[3] ?? '60000');
  registerBuiltinEnvs();
  await selectBackend('wasm');
  const file = path.join(__dirname, '..', '..', '..', 'configs', 'benchmarks', 'lbf-8x8-2p-2f-coop-mappo.yaml');
  const cfg = parseRunConfig(fs.readFileSync(file, 'utf8'), file);
  cfg.run.total_env_steps = steps;
  cfg.run.eval_interval = 10 * steps;
  cfg.run.eval_episodes = 5;
  cfg.run.log_interval = steps / 10;
  cfg.run.remote = { mode: 'async', shards: 1, lease_ms: 10000, credits: 2, max_policy_lag: 4 };
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-async-bench-'));
  const server = hosts > 0 ? startRedisServer() : undefined;
  const children: ChildProcess[] = [];
  let first: { t: number; steps: number } | undefined;
  let last = { t: 0, steps: 0 };
  try {
    const broker = server ? { redis: await connectRedis(server.url, { purpose: 'bench' }), runId: 'bench' } : undefined;
    for (let h = 0; h < hosts; h++) children.push(spawn(process.execPath, [path.join(__dirname, 'async-host.js'), server!.url, `host-${h}`, '0'], { stdio: 'ignore' }));
    const summary: TrainingSummary = await runTraining({
      config: hosts > 0 ? cfg : { ...cfg, run: { ...cfg.run, remote: undefined } },
      outDir,
      backend: { name: 'wasm', reason: 'bench' },
      ...(broker ? { broker } : {}),
      onProgress: (p) => {
        const now = performance.now();
        first ??= { t: now, steps: p.envSteps };
        last = { t: now, steps: p.envSteps };
      },
    });
    const rate = (last.steps - first!.steps) / ((last.t - first!.t) / 1000);
    const train = fs.readFileSync(path.join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | null>).filter((r) => r.kind === ('train' as unknown));
    const lags = train.map((r) => r.policy_lag_mean).filter((v): v is number => typeof v === 'number');
    const lagMean = lags.length > 0 ? lags.reduce((a, b) => a + b, 0) / lags.length : null;
    const lagMax = lags.length > 0 ? Math.max(...train.map((r) => r.policy_lag_max ?? 0)) : null;
    console.log(JSON.stringify({ hosts, env_steps: summary.env_steps, env_steps_per_s: Math.round(rate), updates: summary.updates, policy_lag_mean: lagMean, policy_lag_max: lagMax, load_average: os.loadavg()[0].toFixed(1), async: summary.async ?? null }));
    broker?.redis.disconnect();
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    server?.stop();
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : String(error));
  process.exit(1);
});
