import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { connectRedis, parseRedisUrl } from '../core/redis-connection';
import type { ShardTransportFactory } from '../rollout/shard-protocol';
import { RemoteLockstepRun } from '../rollout/remote-transport';
import type { RunBroker } from './async-learner';
import { type RunConfig, remoteSettings } from './run-config';

/*
 * `troupe train --broker`: what the learner opens on the broker before training — a lock-step
 * run whose tasks' transports step envs on `troupe rollout` hosts, or the connection an async
 * run's learner link registers on. The CLI only prints what it is told.
 */

export interface RemoteRollout {
  /** One line for the user: the mode, the run id and the broker (without its password). */
  description: string;
  /** Lock-step: the transport factory of each task. */
  transportFor?: (taskKey: string) => ShardTransportFactory;
  /** Async: the broker the learner link uses. */
  broker?: RunBroker;
  close(): Promise<void>;
}

/** The run's id on the broker: its folder's name (readable in `troupe rollout`'s logs) and a random tail (two runs may share a name). */
export function remoteRunId(outDir: string): string {
  return `${path.basename(outDir).replace(/[^A-Za-z0-9_.-]/g, '_')}-${randomBytes(4).toString('hex')}`;
}

/** Connects to the broker and sets the run up in the mode `run.remote.mode` names (lock-step by default). */
export async function openRemoteRollout(config: RunConfig, outDir: string, url: string, onNotice: (message: string) => void): Promise<RemoteRollout> {
  const remote = remoteSettings(config.run);
  const runId = remoteRunId(outDir);
  if (remote.mode === 'async') {
    const redis = await connectRedis(url, { purpose: 'rollout broker' });
    const display = parseRedisUrl(url).display;
    return {
      description: `rollout: async mode on remote hosts, run ${runId} on broker ${display}`,
      broker: { redis, runId, display },
      close: async () => redis.disconnect(),
    };
  }
  const run = await RemoteLockstepRun.open({
    url,
    runId,
    shards: remote.shards,
    leaseMs: remote.lease_ms,
    config: JSON.parse(JSON.stringify(config)) as Record<string, unknown>,
    onWaiting: onNotice,
  });
  return {
    description: `rollout: lock-step on remote hosts, run ${runId} on broker ${run.display} (${remote.shards} shards per task)`,
    transportFor: (taskKey) => run.transportFor(taskKey),
    close: () => run.close(),
  };
}
