import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import type { TrajectoryChunk } from '../agents/experience';
import { registerBuiltinEnvs } from '../envs/builtin';
import { shapeOf } from '../envs/env-shape';
import { connectRedis } from '../runtime/core/redis-connection';
import { selectBackend } from '../runtime/core/tf-backend';
import { type AsyncActorReport, serveAsyncRun } from '../runtime/rollout/async-actor';
import { asyncKeys } from '../runtime/rollout/async-protocol';
import { consumeEach } from '../runtime/rollout/experience-stream';
import { REMOTE_PREFIX, type RemoteRunSpec, listRemoteRuns } from '../runtime/rollout/remote-registry';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { AsyncLearnerLink } from '../runtime/training/async-learner';
import { parseRunConfig } from '../runtime/training/config-loader';
import type { RunConfig } from '../runtime/training/run-config';
import { runTraining } from '../runtime/training/training-run';
import { createLearner } from '../trainers/index';
import type { OnlineLearner } from '../trainers/learner';
import { type TestRedisServer, startRedisServer } from './helpers/redis-server';

/*
 * Async mode of remote rollouts (`run.remote.mode: async`): acting hosts send trajectory chunks
 * under credits, the learner drops chunks beyond max_policy_lag, a dead host loses at most the
 * chunk it was collecting, and a tiny MAPPO run learns through it end to end. Every test runs
 * against its own redis-server on a unix socket.
 */

const T = 10;
const E = 4;

function config(remote: string, totalEnvSteps = 800): RunConfig {
  return parseRunConfig(
    `env: { id: lbf-8x8-2p-2f-coop }
algo: { name: mappo, hidden_dim: 16, use_rnn: false, rollout_length: ${T} }
run: { seed: 3, total_env_steps: ${totalEnvSteps}, num_envs: ${E}, log_interval: 160, eval_interval: 100000, eval_episodes: 1, eval_max_steps: 200, checkpoint_interval: 400, remote: { mode: async, ${remote} } }
`,
    'test',
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('async rollout mode', () => {
  let server: TestRedisServer;
  const clients: Redis[] = [];
  const children: ChildProcessWithoutNullStreams[] = [];
  const dirs: string[] = [];
  /** Hosts served in this process, stopped after the tests even when one failed. */
  const stops: AbortController[] = [];
  const stopper = (): AbortController => {
    const stop = new AbortController();
    stops.push(stop);
    return stop;
  };
  const connect = async () => {
    const c = await connectRedis(server.url, { purpose: 'test' });
    clients.push(c);
    return c;
  };
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-async-'));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    server = startRedisServer();
    registerBuiltinEnvs();
    await selectBackend('wasm');
  });
  afterAll(async () => {
    for (const stop of stops) stop.abort();
    await sleep(300);
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const c of clients) c.disconnect();
    server.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  /** A real MAPPO learner for the test config, and the spec hosts serve. */
  async function learnerAndSpec(runId: string, cfg: RunConfig): Promise<{ learner: OnlineLearner; spec: RemoteRunSpec; link: (redis: Redis) => AsyncLearnerLink }> {
    const env = cfg.env!;
    const probe = await VectorEnv.create({ env, numEnvs: E });
    const layout = probe.layout;
    await probe.close();
    const learner = createLearner({ config: cfg.algo, tasks: [{ key: env.id, index: 0, env, shape: shapeOf(layout), numEnvs: E }], seed: 1 }) as OnlineLearner;
    const remote = cfg.run.remote!;
    const spec: RemoteRunSpec = {
      runId,
      mode: 'async',
      config: JSON.parse(JSON.stringify(cfg)) as Record<string, unknown>,
      tasks: [{ key: env.id, env: env as unknown as Record<string, unknown>, numEnvs: E, seed: 'env-seed', groups: 1, shards: 1, checkFinite: true }],
      leaseMs: remote.lease_ms,
      credits: remote.credits,
      maxPolicyLag: remote.max_policy_lag,
      registeredAt: Date.now(),
    };
    return { learner, spec, link: (redis) => new AsyncLearnerLink(redis, spec, { layout, taskIndex: 0, chunkLength: T, pollMs: 50 }) };
  }

  /**
   * Two in-process hosts and a consumer that takes `consumeMs` per chunk (then a real MAPPO
   * update and a weights publish): returns what the consumer saw and the stream's largest length.
   */
  async function slowConsumer(runId: string, cfg: RunConfig, items: number, consumeMs: number) {
    const { learner, spec, link: makeLink } = await learnerAndSpec(runId, cfg);
    const redis = await connect();
    const link = makeLink(redis);
    await link.start((await learner.captureState()).models, learner.policyVersion(spec.tasks[0].key));
    const stop = stopper();
    const hosts: Array<Promise<AsyncActorReport>> = [];
    for (const hostId of ['h0', 'h1']) hosts.push(serveAsyncRun(await connect(), spec, { workers: 0, hostId, signal: stop.signal, pollMs: 100 }));
    const monitor = await connect();
    let maxLength = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxLength = Math.max(maxLength, await monitor.xlen(asyncKeys.traj(runId)));
        await sleep(3);
      }
    })();
    const lags: number[] = [];
    const key = spec.tasks[0].key;
    await new Promise<void>((resolve, reject) => {
      link
        .chunks({ items, learnerVersion: () => learner.policyVersion(key) })
        .pipe(
          consumeEach(async (chunk: TrajectoryChunk) => {
            const version = chunk.policyVersions[0];
            expect(chunk.policyVersions.every((v) => v === version)).toBe(true);
            lags.push(learner.policyVersion(key) - version);
            await sleep(consumeMs);
            learner.observe(chunk, 0);
            await link.publishWeights((await learner.captureState()).models, learner.policyVersion(key));
          }),
        )
        .subscribe({ complete: resolve, error: reject });
    });
    const stats = link.takeIntervalStats();
    stop.abort();
    const reports = await Promise.all(hosts);
    sampling = false;
    await sampler;
    const totals = { ...link.totals };
    await link.close(true);
    learner.dispose();
    return { lags, stats, maxLength, reports, totals };
  }

  test('never more un-consumed chunks than credits × hosts; chunks carry their weights version and the lag is logged', async () => {
    const cfg = config('credits: 2, max_policy_lag: 100');
    const { lags, stats, maxLength, reports, totals } = await slowConsumer('credits', cfg, 12, 60);
    // Two hosts × two credits: the stream (read or not, un-acked) never holds more than 4 chunks,
    // and with a slow consumer it does fill up to that bound.
    expect(maxLength).toBeLessThanOrEqual(4);
    expect(maxLength).toBeGreaterThanOrEqual(3);
    expect(lags).toHaveLength(12);
    expect(Math.max(...lags)).toBeGreaterThanOrEqual(1);
    expect(stats.policy_lag_max).toBe(Math.max(...lags));
    expect(stats.policy_lag_mean).toBeCloseTo(lags.reduce((a, b) => a + b, 0) / lags.length, 10);
    expect(stats.chunks_dropped).toBe(0);
    expect(totals.dropped).toBe(0);
    for (const r of reports) {
      expect(r.stopped).toBe('aborted');
      expect(r.chunks).toBeGreaterThan(0);
      expect(r.weightLoads).toBeGreaterThan(1);
    }
    expect(reports.map((r) => r.index).sort()).toEqual([0, 1]);
  }, 30000);

  test('while no host has joined, the learner says so periodically with the command that starts one', async () => {
    const { learner, spec } = await learnerAndSpec('no-hosts', config('credits: 1, max_policy_lag: 1'));
    const notices: string[] = [];
    const probe = await VectorEnv.create({ env: config('credits: 1, max_policy_lag: 1').env!, numEnvs: E });
    const layout = probe.layout;
    await probe.close();
    const link = new AsyncLearnerLink(await connect(), spec, { layout, taskIndex: 0, chunkLength: T, pollMs: 50, noticeEveryMs: 150, brokerDisplay: 'redis://host:6379', onNotice: (m) => notices.push(m) });
    await link.start((await learner.captureState()).models, 0);
    await new Promise<void>((resolve, reject) => {
      link.chunks({ items: 1, learnerVersion: () => 0, shouldStop: () => notices.length >= 2 }).subscribe({ complete: resolve, error: reject });
    });
    expect(notices[0]).toBe('waiting for rollout hosts (start: troupe rollout --broker redis://host:6379)');
    expect(notices[1]).toMatch(/^async run no-hosts: still waiting for rollout hosts \(start: troupe rollout --broker redis:\/\/host:6379\)$/);
    await link.close(true);
  }, 30000);

  test('chunks beyond max_policy_lag are dropped and counted; the rest are learned from', async () => {
    const cfg = config('credits: 2, max_policy_lag: 0');
    const { lags, stats, totals } = await slowConsumer('lag', cfg, 6, 40);
    expect(lags).toEqual([0, 0, 0, 0, 0, 0]);
    expect(totals.dropped).toBeGreaterThan(0);
    expect(stats.chunks_dropped).toBe(totals.dropped);
  }, 30000);

  test('a restarted learner discards the chunk its predecessor read but did not learn from, and goes on', async () => {
    const cfg = config('credits: 1, max_policy_lag: 100');
    const { learner, spec, link: makeLink } = await learnerAndSpec('restart', cfg);
    const redis = await connect();
    const models = (await learner.captureState()).models;
    const first = makeLink(redis);
    await first.start(models, 0);
    const stop = stopper();
    const host = serveAsyncRun(await connect(), spec, { workers: 0, hostId: 'h0', signal: stop.signal, pollMs: 100 });
    // Read one chunk and "crash": never ack it, leave the run registered.
    await firstValueFrom(first.chunks({ items: 5, learnerVersion: () => 0 }));
    await first.close(false);
    expect(((await redis.xpending(asyncKeys.traj('restart'), 'learner')) as unknown[])[0]).toBe(1);
    const second = makeLink(redis);
    await second.start(models, 0);
    expect(second.totals.discardedOnStart).toBe(1);
    // With credits: 1 the host could only go on because the discarded chunk's credit came back.
    const consumed: TrajectoryChunk[] = [];
    await new Promise<void>((resolve, reject) => {
      second.chunks({ items: 2, learnerVersion: () => 0 }).pipe(consumeEach((c: TrajectoryChunk) => void consumed.push(c))).subscribe({ complete: resolve, error: reject });
    });
    expect(consumed).toHaveLength(2);
    stop.abort();
    await host;
    await second.close(true);
    learner.dispose();
    expect(await redis.exists(asyncKeys.spec('restart'))).toBe(0);
  }, 30000);

  test('a tiny MAPPO run in async mode with one host learns, counts env steps from consumed chunks and logs lag', async () => {
    const cfg = config('credits: 2, max_policy_lag: 50');
    const redis = await connect();
    const outDir = path.join(tmp(), 'run');
    const notices: string[] = [];
    const host = (async () => {
      const hostRedis = await connect();
      for (;;) {
        const spec = (await listRemoteRuns(hostRedis)).find((s) => s.runId === 'one');
        if (spec) return serveAsyncRun(hostRedis, spec, { workers: 0, hostId: 'solo', pollMs: 100, signal: stopper().signal });
        await sleep(20);
      }
    })();
    const summary = await runTraining({ config: cfg, outDir, backend: { name: 'wasm', reason: 'test' }, broker: { redis, runId: 'one' }, onNotice: (m) => notices.push(m) });
    const report = await host;
    expect(summary.interrupted).toBe(false);
    expect(summary.env_steps).toBe(800);
    expect(summary.updates).toBe(800 / (T * E));
    expect(summary.async).toMatchObject({ chunks_consumed: 20, chunks_dropped: 0, chunks_rejected: 0, chunks_by_host: { solo: 20 } });
    expect(report.stopped).toBe('run-ended');
    expect(report.chunks).toBeGreaterThanOrEqual(20);
    const records = fs.readFileSync(path.join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const train = records.filter((r) => r.kind === 'train');
    expect(train.length).toBeGreaterThanOrEqual(5);
    expect(train.at(-1)!.env_steps).toBe(800);
    for (const r of train) {
      expect(typeof r.policy_lag_mean).toBe('number');
      expect(r.policy_lag_max as number).toBeLessThanOrEqual(50);
      expect(r.chunks_dropped).toBe(0);
      expect(Number.isFinite(r.policy_loss)).toBe(true);
    }
    expect(records.some((r) => r.kind === 'eval')).toBe(true);
    const info = JSON.parse(fs.readFileSync(path.join(outDir, 'run.json'), 'utf8')) as { notices: string[] };
    expect(info.notices.join('\n')).toMatch(/not bit-reproducible/);
    expect(notices.join('\n')).toMatch(/rollout host solo joined/);
    // The run unregistered itself: nothing of it is left in Redis.
    expect(await redis.keys(`${REMOTE_PREFIX}:run:{one}:*`)).toEqual([]);
  }, 40000);

  test('a SIGKILLed host loses at most the chunk it was collecting; the run completes with the other host', async () => {
    // A short lease, so the dead host is noticed well before the run ends (a fast run outlived 1 s).
    const cfg = config('credits: 2, max_policy_lag: 50, lease_ms: 400', 1600);
    const redis = await connect();
    const script = path.join(__dirname, 'helpers', 'async-host.js');
    const sent: Record<string, number> = { a: 0, b: 0 };
    const output: Record<string, string> = { a: '', b: '' };
    for (const id of ['a', 'b']) {
      const child = spawn(process.execPath, [script, server.url, id, '0']);
      children.push(child);
      child.stdout.on('data', (data: Buffer) => {
        output[id] += data.toString();
        for (const m of data.toString().matchAll(/^sent (\d+)$/gm)) sent[id] = Number(m[1]);
      });
      child.stderr.on('data', (data: Buffer) => (output[id] += data.toString()));
    }
    const [, victim] = children.slice(-2);
    let sentBeforeKill = -1;
    const notices: string[] = [];
    const summary = await runTraining({
      config: cfg,
      outDir: path.join(tmp(), 'run'),
      backend: { name: 'wasm', reason: 'test' },
      broker: { redis, runId: 'kill' },
      onNotice: (m) => notices.push(m),
      onProgress: (p) => {
        if (sentBeforeKill < 0 && p.envSteps >= 400 && sent.b > 0) {
          victim.kill('SIGKILL');
          sentBeforeKill = sent.b;
        }
      },
    });
    const survivor = children.at(-2)!;
    const exit = await new Promise<number | null>((resolve) => (survivor.exitCode !== null ? resolve(survivor.exitCode) : survivor.on('exit', resolve)));
    expect({ exit, output: output.a }).toMatchObject({ exit: 0 });
    expect(sentBeforeKill).toBeGreaterThan(0);
    expect(summary.interrupted).toBe(false);
    expect(summary.env_steps).toBe(1600);
    expect(notices.join('\n')).toMatch(/rollout host b left/);
    // Every chunk the killed host had sent was still learned from: only its chunk in progress was lost.
    expect(summary.async!.chunks_by_host.b).toBeGreaterThanOrEqual(sentBeforeKill);
    expect(summary.async!.chunks_dropped).toBe(0);
    expect(summary.async!.chunks_by_host.a + summary.async!.chunks_by_host.b).toBe(40);
    expect(output.a).toMatch(/report .*"stopped":"run-ended"/);
  }, 60000);

  test('a broker that goes away stops the learner with a clear error and a checkpoint, not a hang', async () => {
    const own = startRedisServer();
    try {
      const redis = await connectRedis(own.url, { purpose: 'test' });
      clients.push(redis);
      const hostRedis = await connectRedis(own.url, { purpose: 'test' });
      clients.push(hostRedis);
      const host = (async () => {
        for (;;) {
          const spec = (await listRemoteRuns(hostRedis)).find((s) => s.runId === 'gone');
          if (spec) return serveAsyncRun(hostRedis, spec, { workers: 0, hostId: 'h', pollMs: 100, signal: stopper().signal });
          await sleep(20);
        }
      })();
      // Handled at once: the host may fail (its broker is killed) before the learner does.
      const hostOutcome = host.then(
        () => null,
        (error: unknown) => error,
      );
      let killed = false;
      const started = Date.now();
      const failure = await runTraining({
        config: config('credits: 2, max_policy_lag: 50', 1600),
        outDir: path.join(tmp(), 'run'),
        backend: { name: 'wasm', reason: 'test' },
        broker: { redis, runId: 'gone' },
        onProgress: (p) => {
          if (!killed && p.envSteps >= 200) {
            killed = true;
            process.kill(own.pid, 'SIGKILL');
          }
        },
      }).then(
        () => new Error('the run finished without its broker'),
        (error: Error) => error,
      );
      expect(Date.now() - started).toBeLessThan(20000);
      const match = /^broker: [a-z ]+ failed: .+\. The run stopped at \d+ env steps with a checkpoint, (\S+); continue with: troupe train --resume /.exec(failure.message);
      expect({ message: failure.message, matched: match !== null }).toMatchObject({ matched: true });
      expect(fs.existsSync(match![1])).toBe(true);
      expect(await hostOutcome).toBeInstanceOf(Error);
    } finally {
      own.stop();
    }
  }, 30000);

  test('async mode with an algorithm that does not learn from on-policy chunks is a config error naming run.remote.mode', async () => {
    const cfg = parseRunConfig(
      `env: { id: lbf-8x8-2p-2f-coop }
algo: { name: qmix }
run: { total_env_steps: 1000, remote: { mode: async } }
`,
      'test',
    );
    await expect(runTraining({ config: cfg, outDir: path.join(tmp(), 'q'), backend: { name: 'wasm', reason: 'test' } })).rejects.toThrow(
      /^run\.remote\.mode: 'async' needs an on-policy algorithm that learns from trajectory chunks \(mappo, ippo\), but algo\.name is 'qmix'/,
    );
  });
});
