import { registerBuiltinEnvs } from '../../envs/builtin';
import { serveAsyncRunOnHost } from '../../runtime/rollout/async-actor';
import { RolloutHost } from '../../runtime/rollout/rollout-host';

export interface RolloutCommandOptions {
  broker: string;
  workers: string;
  maxShards?: string;
}

function positiveIntFlag(value: string, flag: string, min: number): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || !Number.isSafeInteger(Number(value))) throw new Error(`${flag} must be an integer ≥ ${min}, got '${value}'`);
  return Number(value);
}

/** `troupe rollout`: serve lock-step shards of the runs registered on a broker until Ctrl-C. */
export async function runRolloutCommand(opts: RolloutCommandOptions): Promise<void> {
  const workers = positiveIntFlag(opts.workers, '--workers', 0);
  const maxShards = opts.maxShards === undefined ? Math.max(1, workers) : positiveIntFlag(opts.maxShards, '--max-shards', 1);
  const log = (line: string) => process.stdout.write(`${line}\n`);
  registerBuiltinEnvs();
  const host = new RolloutHost({
    url: opts.broker,
    workers,
    maxShards,
    log,
    // Async runs: this host acts with the learner's newest weights (async-actor.ts) on its own connection.
    serveAsyncRun: (spec, self) => serveAsyncRunOnHost(spec, self, log),
  });
  const stop = () => {
    process.stdout.write('stopping: releasing shards\n');
    host.stop();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await host.run();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
