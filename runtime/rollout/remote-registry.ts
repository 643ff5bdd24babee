import type { Redis } from 'ioredis';
import { Packr } from 'msgpackr';

/*
 * How rollout hosts find the runs that want them. A learner started with `--broker` registers
 * its run (a spec: mode, env layout of each task, shards, lease); `troupe rollout` hosts list
 * the registered runs and serve them — lock-step shards (`remote-transport.ts` /
 * `rollout-host.ts`) or acting hosts in async mode. Everything of one run lives under
 * `troupe:rollout:run:{runId}:…`, so several runs can share one Redis.
 */

export const REMOTE_PREFIX = 'troupe:rollout';

/** Keys of one run; transports add their own under `runKey(runId, …)`. */
export function runKey(runId: string, ...parts: Array<string | number>): string {
  return [`${REMOTE_PREFIX}:run:{${runId}}`, ...parts].join(':');
}

/**
 * Set (with a time to live) while a run's learner is alive, in either mode; hosts drop and
 * unregister runs without it. Generous, since a long update blocks the learner's event loop.
 */
export function learnerAliveKey(runId: string): string {
  return runKey(runId, 'learner-alive');
}

export const LEARNER_ALIVE_MS = 120000;
/** How often a learner renews its alive key (and re-registers a run the broker lost). */
export const LEARNER_HEARTBEAT_MS = 5000;

/** The set of registered run ids. */
export const RUNS_KEY = `${REMOTE_PREFIX}:runs`;

/** One task's envs as a host needs them (its resolved env section and how its envs are sharded). */
export interface RemoteTaskSpec {
  key: string;
  /** The task's EnvSpec (id, options, module path) exactly as the learner resolved it. */
  env: Record<string, unknown>;
  numEnvs: number;
  /** The vector's seed (env e resets with deriveSeed(resetSeed(seed, epoch), e)). */
  seed: number | string;
  /** Env groups of the vector (double buffering); shards slice every group. */
  groups: number;
  shards: number;
  checkFinite: boolean;
}

export interface RemoteRunSpec {
  runId: string;
  mode: 'lockstep' | 'async';
  /** The run's resolved config (as config.yaml holds it), for hosts that act (async). */
  config: Record<string, unknown>;
  tasks: RemoteTaskSpec[];
  leaseMs: number;
  /** async: un-consumed chunks allowed per host, and the largest policy lag kept. */
  credits: number;
  maxPolicyLag: number;
  /** Wall-clock ms when the learner registered the run (for `troupe rollout` to say how old it is). */
  registeredAt: number;
}

const packr = new Packr({ useRecords: false });

export function encodeMessage(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeMessage<T>(bytes: Buffer | Uint8Array, what: string): T {
  try {
    return packr.unpack(bytes) as T;
  } catch (error) {
    throw new Error(`broker: cannot decode ${what}: ${(error as Error).message}`);
  }
}

/** Registers (or re-registers) a run so hosts find it. */
export async function registerRemoteRun(redis: Redis, spec: RemoteRunSpec): Promise<void> {
  await redis.multi().set(runKey(spec.runId, 'spec'), encodeMessage(spec)).sadd(RUNS_KEY, spec.runId).exec();
}

/**
 * A learner's heartbeat: renews its alive key and re-registers the run when its spec is gone
 * (a broker restarted empty, or hosts unregistered it after the key lapsed during a long stall).
 * True when it had to re-register.
 */
export async function keepRunAlive(redis: Redis, spec: RemoteRunSpec): Promise<boolean> {
  const replies = await redis.multi().set(learnerAliveKey(spec.runId), String(Date.now()), 'PX', LEARNER_ALIVE_MS).exists(runKey(spec.runId, 'spec')).exec();
  if (replies?.[1]?.[1] === 1) return false;
  await registerRemoteRun(redis, spec);
  return true;
}

/** Removes a run and every key under it (the run ended, or its learner gave up). */
export async function unregisterRemoteRun(redis: Redis, runId: string): Promise<void> {
  await redis.srem(RUNS_KEY, runId);
  const pattern = `${REMOTE_PREFIX}:run:{${runId}}:*`;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** The registered runs' specs; ids whose spec vanished are dropped from the set. */
export async function listRemoteRuns(redis: Redis): Promise<RemoteRunSpec[]> {
  const ids = await redis.smembers(RUNS_KEY);
  const specs: RemoteRunSpec[] = [];
  for (const id of ids.sort()) {
    const bytes = await redis.getBuffer(runKey(id, 'spec'));
    if (!bytes) {
      await redis.srem(RUNS_KEY, id);
      continue;
    }
    specs.push(decodeMessage<RemoteRunSpec>(bytes, `the spec of run ${id}`));
  }
  return specs;
}
