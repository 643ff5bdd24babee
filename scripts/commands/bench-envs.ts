import os from 'node:os';
import { DEFAULT_BENCH_IDS, type EnvBenchResult, type Throughput, benchEnvs } from '../../runtime/rollout/env-benchmark';

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

function formatRow(r: EnvBenchResult): string {
  const cell = (t: Throughput) => `${fmt(t.envStepsPerSec).padStart(11)} / ${fmt(t.agentStepsPerSec).padStart(11)}`;
  return `${r.id.padEnd(24)} ${cell(r.single)} ${cell(r.vectorInProcess)} ${cell(r.vectorWorkers1)} ${cell(r.vectorWorkers2)} ${cell(r.vectorWorkers2LockStep)}   ×${r.speedup2Workers.toFixed(2)}  ${`auto→${r.auto.workers}`.padStart(7)} ${fmt(r.vectorAuto.envStepsPerSec).padStart(11)}  ×${r.speedupAuto.toFixed(2)}`;
}

export async function runBenchEnvsCommand(opts: { ids?: string; envs: string; seconds: string; repeats: string; json?: boolean }): Promise<void> {
  const ids = opts.ids ? opts.ids.split(',').map((s) => s.trim()).filter(Boolean) : DEFAULT_BENCH_IDS;
  const numEnvs = Number(opts.envs);
  const seconds = Number(opts.seconds);
  const repeats = Number(opts.repeats);
  for (const [name, v] of [['--envs', numEnvs], ['--seconds', seconds], ['--repeats', repeats]] as const) {
    if (!(v > 0)) throw new Error(`bench envs: ${name} must be a positive number`);
  }
  const log = opts.json ? () => undefined : (line: string) => process.stdout.write(`${line}\n`);
  log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; medians of ${repeats} × ${seconds}s; vectors of ${numEnvs} envs`);
  log(`${'env'.padEnd(24)} ${'single env: env/s / agent/s'.padStart(25)} ${'vector in-process'.padStart(25)} ${'1 worker, 2 groups'.padStart(25)} ${'2 workers, 2 groups'.padStart(25)} ${'2 workers, lock-step'.padStart(25)}   2w/in-proc  ${'auto'.padStart(7)} ${'env/s'.padStart(11)}  auto/in-proc`);
  const results = await benchEnvs(ids, numEnvs, seconds, repeats, (r) => log(formatRow(r)));
  for (const r of results) log(`auto, ${r.id}: ${r.auto.reason}`);
  if (opts.json) {
    const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, date: new Date().toISOString() };
    process.stdout.write(`${JSON.stringify({ machine, numEnvs, seconds, repeats, results }, null, 2)}\n`);
  }
}
