import os from 'node:os';
import type { Redis } from 'ioredis';
import type { Experience, TrajectoryChunk } from '../../agents/experience';
import { shapeOf } from '../../envs/env-shape';
import type { EnvSpec } from '../../envs/env-spec';
import { algorithmVariants, createLearner } from '../../trainers/index';
import type { OnlineLearner, TaskSpec } from '../../trainers/learner';
import { connectRedis } from '../core/redis-connection';
import { deriveSeed } from '../core/rng';
import { selectBackend } from '../core/tf-backend';
import { ASYNC_ALGORITHMS, asyncKeys, decodeWeights, encodeChunk, weightsTag } from './async-protocol';
import { type Delivery, collectionSettled, taskExperienceStream } from './experience-stream';
import { type RemoteRunSpec, learnerAliveKey } from './remote-registry';
import { VectorEnv } from './vector-env';

/*
 * An acting rollout host of an async run (IMPALA/APPO style): it runs the run's envs and the
 * run's collection policy itself, with the newest weights the learner published, and sends
 * trajectory chunks tagged with the weights' version. Before each chunk it takes one credit
 * from its list, so it never runs ahead of the learner by more than the run's `credits`.
 *
 * The policy is the trainer's own collection policy (a learner of the run's algorithm built
 * here, fed only weights): PPO's update needs the log-probabilities and values the acting
 * policy produced (`logp`, `value`, `h` extras), which an inference-only policy does not give.
 *
 * Seeds: the host claims the lowest free host index of the run (SET NX, kept for the run's
 * life, so no two hosts ever share one) and derives its env and acting seeds from the run's
 * seed and that index. Hosts' chunks still interleave by arrival, so async runs are not
 * bit-reproducible.
 */

export interface AsyncActorOptions {
  /** Worker threads stepping this host's envs (0 = in this thread). */
  workers: number;
  /** Names this host in Redis and in the learner's messages (default `<hostname>-<pid>`). */
  hostId?: string;
  /** Stops the host: the chunk being collected is dropped, its heartbeat removed. */
  signal?: AbortSignal;
  /** Stop after sending this many chunks (tests, benchmarks). */
  maxChunks?: number;
  /** How long one wait for a credit blocks before checking that the run still exists (default 1000 ms). */
  pollMs?: number;
  /** What the host does, in sentences (claimed index, first weights, run ended). */
  onEvent?: (message: string) => void;
  /** Told after every chunk the stream accepted (chunks sent so far, and that chunk's weights version). */
  onChunk?: (sent: number, version: number) => void;
}

export interface AsyncActorReport {
  hostId: string;
  index: number;
  chunks: number;
  envSteps: number;
  /** Weights versions loaded (the first included). */
  weightLoads: number;
  /** Why it stopped. */
  stopped: 'run-ended' | 'aborted' | 'max-chunks';
}

/** The run's `algo` section and seed as the learner resolved them, checked so a bad spec names its field. */
function runParts(spec: RemoteRunSpec): { algo: { name: string }; seed: number | string } {
  const config = spec.config as { algo?: unknown; run?: { seed?: unknown } };
  const algo = config.algo as { name?: unknown } | undefined;
  if (typeof algo !== 'object' || algo === null || typeof algo.name !== 'string') throw new Error(`run ${spec.runId}: its spec has no 'config.algo.name'`);
  if (!ASYNC_ALGORITHMS.includes(algo.name)) throw new Error(`run ${spec.runId}: run.remote.mode 'async' needs one of ${ASYNC_ALGORITHMS.join(', ')}, but its algo.name is '${algo.name}'`);
  const variant = algorithmVariants().find((v) => v.name === algo.name)!;
  const parsed = variant.schema.safeParse(algo);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`run ${spec.runId}: its spec's 'config.algo.${issue.path.join('.')}' is invalid: ${issue.message}`);
  }
  const seed = config.run?.seed;
  if (typeof seed !== 'number' && typeof seed !== 'string') throw new Error(`run ${spec.runId}: its spec has no 'config.run.seed'`);
  return { algo: parsed.data as { name: string }, seed };
}

/** Claims the lowest host index no host of this run has claimed yet. */
async function claimHostIndex(redis: Redis, runId: string, hostId: string): Promise<number> {
  for (let index = 0; ; index++) {
    if ((await redis.set(asyncKeys.hostIndex(runId, index), hostId, 'NX')) === 'OK') return index;
  }
}

/**
 * Serves one async run until it ends (its spec disappears), `signal` aborts, or `maxChunks`
 * chunks were sent. `redis` is used for commands; a duplicate connection blocks on credits.
 */
export async function serveAsyncRun(redis: Redis, spec: RemoteRunSpec, options: AsyncActorOptions): Promise<AsyncActorReport> {
  if (spec.mode !== 'async') throw new Error(`run ${spec.runId} is in ${spec.mode} mode; serveAsyncRun serves async runs`);
  if (spec.tasks.length !== 1) throw new Error(`run ${spec.runId}: async mode runs one task, its spec has ${spec.tasks.length}`);
  const { algo, seed } = runParts(spec);
  const runId = spec.runId;
  const hostId = options.hostId ?? `${os.hostname()}-${process.pid}`;
  const pollMs = options.pollMs ?? 1000;
  const say = options.onEvent ?? (() => {});
  const task = spec.tasks[0];
  const keys = {
    heartbeat: asyncKeys.heartbeat(runId, hostId),
    credits: asyncKeys.credits(runId, hostId),
    hosts: asyncKeys.hosts(runId),
    traj: asyncKeys.traj(runId),
    spec: asyncKeys.spec(runId),
  };
  const index = await claimHostIndex(redis, runId, hostId);
  const info = JSON.stringify({ index, hostname: os.hostname(), pid: process.pid, workers: options.workers });
  say(`host ${hostId} serves run ${runId} as host index ${index}`);

  // Registration: a heartbeat that expires `leaseMs` after its last renewal. A renewal that
  // finds it gone (the host stalled longer than the lease, and the learner forgot its credits)
  // registers anew; the chunk collected under the old registration is then not sent.
  let generation = 0;
  let heartbeatError: unknown;
  const register = async () => {
    await redis.multi().set(keys.heartbeat, info, 'PX', spec.leaseMs).sadd(keys.hosts, hostId).exec();
  };
  await register();
  const renew = async () => {
    const kept = await redis.set(keys.heartbeat, info, 'PX', spec.leaseMs, 'XX');
    if (kept === null && (await redis.exists(keys.spec)) === 1) {
      generation++;
      await register();
    }
  };
  const heartbeat = setInterval(() => renew().catch((error: unknown) => (heartbeatError = error)), Math.max(20, Math.floor(spec.leaseMs / 3)));

  const blocking = redis.duplicate();
  blocking.on('error', () => undefined);
  let vec: VectorEnv | undefined;
  let learner: OnlineLearner | undefined;
  const report: AsyncActorReport = { hostId, index, chunks: 0, envSteps: 0, weightLoads: 0, stopped: 'run-ended' };
  try {
    const env = task.env as unknown as EnvSpec;
    vec = await VectorEnv.create({ env, numEnvs: task.numEnvs, workers: options.workers, seed: deriveSeed(task.seed, 'async-host', index), checkFinite: task.checkFinite });
    const taskSpec: TaskSpec = { key: task.key, index: 0, env, shape: shapeOf(vec.layout), numEnvs: task.numEnvs };
    const built = createLearner({ config: algo, tasks: [taskSpec], seed: deriveSeed(seed, 'async-host', index) });
    if (built.kind !== 'online') throw new Error(`run ${runId}: algo '${algo.name}' is not an online learner`);
    learner = built;
    const collection = learner.collection(task.key);
    if (collection.mode !== 'chunk') throw new Error(`run ${runId}: algo '${algo.name}' does not collect trajectory chunks`);

    let loadedTag = '';
    let epoch = 0;
    let version = 0;
    /** Loads the newest weights when they changed since the last load; waits for the first ones. */
    const refreshWeights = async (): Promise<boolean> => {
      for (;;) {
        const tag = await redis.get(asyncKeys.weightsVersion(runId));
        if (tag !== null && tag === loadedTag) return true;
        if (tag !== null) {
          const bytes = await redis.getBuffer(asyncKeys.weights(runId));
          if (bytes) {
            const blob = decodeWeights(bytes);
            const current = await learner!.captureState();
            try {
              // Only the weights change: the acting RNG and recurrent state go on as they were.
              await learner!.restoreState({ ...current, models: blob.models });
            } catch (error) {
              throw new Error(`run ${runId}: weights version ${blob.version} do not fit this host's ${algo.name} learner: ${(error as Error).message}`);
            }
            if (report.weightLoads === 0) say(`host ${hostId}: acting with weights version ${blob.version}`);
            report.weightLoads++;
            loadedTag = weightsTag(blob.epoch, blob.version);
            epoch = blob.epoch;
            version = blob.version;
            return true;
          }
        }
        if (!(await runGoesOn())) return false;
        await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, 200)));
      }
    };
    const runGoesOn = async (): Promise<boolean> => {
      if (heartbeatError) throw heartbeatError;
      if (options.signal?.aborted) {
        report.stopped = 'aborted';
        return false;
      }
      // A run whose learner died (alive key lapsed) ends here too, not only one unregistered.
      if ((await redis.exists(keys.spec, learnerAliveKey(runId))) < 2) {
        report.stopped = 'run-ended';
        return false;
      }
      return true;
    };
    /** Blocks until a credit arrives (true) or the run ended / the host was stopped (false). */
    let creditGeneration = 0;
    const takeCredit = async (): Promise<boolean> => {
      for (;;) {
        if (!(await runGoesOn())) return false;
        const got = await blocking.blpop(keys.credits, pollMs / 1000);
        if (got !== null) {
          creditGeneration = generation;
          return true;
        }
      }
    };
    const send = async (chunk: TrajectoryChunk): Promise<boolean> => {
      if (creditGeneration !== generation) {
        say(`host ${hostId}: its registration lapsed while collecting; the chunk is dropped`);
        return true;
      }
      // NOMKSTREAM: a run that ended meanwhile (its stream deleted) must not be recreated by a late chunk.
      const id = await redis.xaddBuffer(keys.traj, 'NOMKSTREAM', '*', 'host', hostId, 'chunk', encodeChunk({ host: hostId, epoch, version, chunk }));
      if (id === null) {
        report.stopped = 'run-ended';
        return false;
      }
      report.chunks++;
      report.envSteps += chunk.length * chunk.layout.numEnvs;
      options.onChunk?.(report.chunks, version);
      if (options.maxChunks !== undefined && report.chunks >= options.maxChunks) {
        report.stopped = 'max-chunks';
        return false;
      }
      return true;
    };

    if (!(await refreshWeights()) || !(await takeCredit()) || !(await refreshWeights())) return report;
    const stream = taskExperienceStream([{ vec, policy: learner.collectionPolicy(task.key), collection, task: task.key, policyVersion: () => version }], { bufferSize: 1, reset: true });
    // The next chunk is collected only after this one is acked: send it, take the next credit
    // and load newer weights first, so every chunk acts with one weights version throughout.
    const handle = async (delivery: Delivery<Experience>): Promise<boolean> => {
      const chunk = delivery.item;
      if (chunk.kind !== 'chunk') throw new Error(`run ${runId}: the collection stream gave a ${chunk.kind}, expected chunks`);
      return (await send(chunk)) && (await takeCredit()) && (await refreshWeights());
    };
    await new Promise<void>((resolve, reject) => {
      let finished = false;
      const finish = (error?: unknown) => {
        if (finished) return;
        finished = true;
        subscription.unsubscribe();
        options.signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = () => {
        report.stopped = 'aborted';
        finish();
      };
      const subscription = stream.subscribe({
        next: (delivery) => {
          handle(delivery).then(
            (goOn) => (goOn && !finished ? delivery.ack() : finish()),
            (error: unknown) => finish(error),
          );
        },
        error: (error: unknown) => finish(error),
        complete: () => finish(),
      });
      options.signal?.addEventListener('abort', onAbort);
      if (options.signal?.aborted) onAbort();
    });
    await collectionSettled(vec);
    return report;
  } finally {
    clearInterval(heartbeat);
    // Leaving on purpose: the learner forgets this host's credits at once instead of after the lease.
    await redis.multi().del(keys.heartbeat).srem(keys.hosts, hostId).exec().catch(() => undefined);
    blocking.disconnect();
    await vec?.close();
    learner?.dispose();
    say(`host ${hostId} stopped (${report.stopped}) after ${report.chunks} chunks, ${report.envSteps} env steps`);
  }
}

/**
 * What a `troupe rollout` host (`RolloutHost`'s `serveAsyncRun`) does with an async run: acts
 * in it on a connection of its own until the run ends or the host stops (`signal`).
 */
export async function serveAsyncRunOnHost(spec: RemoteRunSpec, host: { url: string; hostId: string; workers: number; signal: AbortSignal }, log: (line: string) => void): Promise<void> {
  await selectBackend('auto');
  const redis = await connectRedis(host.url, { purpose: 'async rollout host' });
  try {
    log(`serving async run ${spec.runId}`);
    const report = await serveAsyncRun(redis, spec, { workers: host.workers, hostId: host.hostId, onEvent: log, signal: host.signal });
    log(`async run ${spec.runId} done: ${JSON.stringify(report)}`);
  } finally {
    redis.disconnect();
  }
}
