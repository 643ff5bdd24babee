import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { Rng } from '../runtime/core/rng';
import { connectRedis } from '../runtime/core/redis-connection';
import { type RemoteRunSpec, learnerAliveKey, listRemoteRuns, registerRemoteRun, unregisterRemoteRun } from '../runtime/rollout/remote-registry';
import { RemoteLockstepRun } from '../runtime/rollout/remote-transport';
import { RolloutHost } from '../runtime/rollout/rollout-host';
import type { VectorBuffers } from '../runtime/rollout/vector-buffers';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { CLI, expectCleanFailure, runCli } from './helpers/cli-run';
import { type TestRedisServer, startRedisServer } from './helpers/redis-server';

/*
 * Lock-step remote rollouts over a private Redis: the transport gives the same buffers as
 * in-process stepping (also across a host's death), `troupe train --broker` with `troupe
 * rollout` hosts gives the same metrics as `--workers 2`, and a broker or host that goes away
 * is reported clearly instead of hanging.
 */

const ENV = { id: 'lbf-8x8-2p-2f-coop' };

function writeRandomActions(vec: VectorEnv, rng: Rng): void {
  const { numEnvs: E, numAgents: A, numActions } = vec.layout;
  const b = vec.buffers;
  for (let i = 0; i < E * A; i++) {
    let pick = rng.int(numActions);
    for (let k = 0; k < numActions; k++) {
      const action = (pick + k) % numActions;
      if (b.masks[i * numActions + action]) {
        pick = action;
        break;
      }
    }
    b.actions[i] = b.alive[i] ? pick : 0;
  }
}

const FIELDS: Array<keyof VectorBuffers> = ['obs', 'finalObs', 'state', 'finalState', 'rewards', 'terminated', 'truncated', 'alive', 'masks', 'episodeDone', 'episodeAborted', 'episodeReturn', 'episodeLength', 'episodeSuccess', 'teamSize'];

/** The first buffer whose bytes differ, or undefined. */
function firstDifference(a: VectorBuffers, b: VectorBuffers): string | undefined {
  for (const field of FIELDS) {
    const x = Buffer.from(a[field].buffer, a[field].byteOffset, a[field].byteLength);
    const y = Buffer.from(b[field].buffer, b[field].byteOffset, b[field].byteLength);
    if (!x.equals(y)) return field;
  }
  return undefined;
}

function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

describe('lock-step remote rollouts', () => {
  let server: TestRedisServer;
  const notices: string[] = [];
  beforeAll(() => {
    server = startRedisServer();
  });
  afterAll(() => server?.stop());

  test('a VectorEnv on the remote transport matches in-process bit for bit, with resets, two groups and a host dying mid-run', async () => {
    const numEnvs = 12;
    const options = { env: ENV, numEnvs, groups: 2, seed: 'remote-test' };
    const reference = await VectorEnv.create({ ...options, workers: 0 });
    const run = await RemoteLockstepRun.open({ url: server.url, runId: 'transport-test', shards: 3, leaseMs: 600, config: {}, onWaiting: (m) => notices.push(m), noticeEveryMs: 500 });
    const remote = await VectorEnv.create({ ...options, transport: run.transportFor('lbf') });
    const hostA = new RolloutHost({ url: server.url, workers: 0, maxShards: 2, hostId: 'host-a', discoverEveryMs: 100 });
    const servingA = hostA.run();
    await waitFor(() => hostA.shards.length === 2, 5000, 'host A to claim two shards');
    const hostB = new RolloutHost({ url: server.url, workers: 1, maxShards: 3, hostId: 'host-b', discoverEveryMs: 100 });
    const servingB = hostB.run();
    try {
      const rngA = new Rng('actions');
      const rngB = new Rng('actions');
      let steps = 0;
      let episodesEnded = 0;
      for (const epoch of [0, 3]) {
        await reference.reset(epoch);
        await remote.reset(epoch);
        expect(firstDifference(reference.buffers, remote.buffers)).toBeUndefined();
        for (let t = 0; t < 60; t++) {
          writeRandomActions(reference, rngA);
          writeRandomActions(remote, rngB);
          // Group by group (double buffering), as a learner overlapping groups would.
          for (let g = 0; g < 2; g++) reference.sendStep(g, t);
          for (let g = 0; g < 2; g++) remote.sendStep(g, t);
          for (let g = 0; g < 2; g++) await reference.awaitStep(g);
          for (let g = 0; g < 2; g++) await remote.awaitStep(g);
          expect(firstDifference(reference.buffers, remote.buffers)).toBeUndefined();
          steps++;
          episodesEnded += reference.buffers.episodeDone.reduce((n, d) => n + d, 0);
          // Host A dies without a word mid-segment: its leases lapse and host B replays its shards.
          if (epoch === 3 && t === 10) hostA.abandon();
        }
      }
      expect(steps).toBe(120);
      expect(episodesEnded).toBeGreaterThan(0);
      await servingA;
      expect(hostB.shards).toHaveLength(3);
    } finally {
      hostA.abandon();
      await reference.close();
      await remote.close();
      await run.close();
      hostB.stop();
      await servingB;
    }
    // The run is gone from the broker once the learner closed it.
    const redis = new Redis({ path: server.socket });
    expect(await listRemoteRuns(redis)).toEqual([]);
    redis.disconnect();
  }, 30000);
});

describe('a learner whose only host dies', () => {
  let server: TestRedisServer;
  beforeAll(() => {
    server = startRedisServer();
  });
  afterAll(() => server?.stop());

  test('keeps waiting and says so periodically, then goes on with the next host that comes', async () => {
    const notices: string[] = [];
    const run = await RemoteLockstepRun.open({ url: server.url, runId: 'orphaned', shards: 2, leaseMs: 300, config: {}, onWaiting: (m) => notices.push(m), noticeEveryMs: 200 });
    const reference = await VectorEnv.create({ env: ENV, numEnvs: 4, seed: 1, workers: 0 });
    const remote = await VectorEnv.create({ env: ENV, numEnvs: 4, seed: 1, transport: run.transportFor('lbf') });
    const first = new RolloutHost({ url: server.url, workers: 0, maxShards: 2, hostId: 'first', discoverEveryMs: 100 });
    const serving: Array<Promise<void>> = [];
    let second: RolloutHost | undefined;
    try {
      await reference.reset();
      const resetting = remote.reset();
      await waitFor(() => notices.length > 0, 5000, 'the first notice');
      expect(notices[0]).toMatch(/^waiting for rollout hosts \(start: troupe rollout --broker unix:\/\//);
      serving.push(first.run());
      await resetting;
      first.abandon();
      await serving[0];
      const rng = [new Rng('a'), new Rng('a')];
      writeRandomActions(reference, rng[0]);
      writeRandomActions(remote, rng[1]);
      const stepping = remote.step();
      await waitFor(() => notices.filter((m) => /lost their hosts \(lease lapsed\)/.test(m)).length >= 2, 10000, 'two notices about the lost host');
      second = new RolloutHost({ url: server.url, workers: 0, maxShards: 2, hostId: 'second', discoverEveryMs: 100 });
      serving.push(second.run());
      await stepping;
      await reference.step();
      expect(firstDifference(reference.buffers, remote.buffers)).toBeUndefined();
    } finally {
      await reference.close();
      await remote.close();
      await run.close();
      first.abandon();
      second?.stop();
      await Promise.all(serving);
    }
  }, 20000);
});

describe('a rollout host and the runs it serves', () => {
  let server: TestRedisServer;
  let redis: Redis;
  beforeAll(async () => {
    server = startRedisServer();
    redis = await connectRedis(server.url, { purpose: 'test' });
  });
  afterAll(() => {
    redis?.disconnect();
    server?.stop();
  });

  const asyncSpec = (runId: string): RemoteRunSpec => ({ runId, mode: 'async', config: {}, tasks: [], leaseMs: 300, credits: 1, maxPolicyLag: 1, registeredAt: Date.now() });

  test('stop() aborts the async runs it serves and waits for them to finish before it returns', async () => {
    await redis.set(learnerAliveKey('async-stop'), '1', 'PX', 60000);
    await registerRemoteRun(redis, asyncSpec('async-stop'));
    let started = false;
    let finished = false;
    const host = new RolloutHost({
      url: server.url,
      workers: 0,
      maxShards: 1,
      discoverEveryMs: 50,
      serveAsyncRun: async (_spec, self) => {
        started = true;
        await new Promise((resolve) => self.signal.addEventListener('abort', resolve));
        await new Promise((resolve) => setTimeout(resolve, 100));
        finished = true;
      },
    });
    const serving = host.run();
    await waitFor(() => started, 5000, 'the async run to be served');
    host.stop();
    await serving;
    expect(finished).toBe(true);
    await unregisterRemoteRun(redis, 'async-stop');
  });

  test('runs whose learner-alive key lapsed are dropped and unregistered; a lock-step learner re-registers a run the broker lost', async () => {
    // A run whose learner died long ago: never served, unregistered.
    await registerRemoteRun(redis, asyncSpec('dead-learner'));
    // A served async run whose learner dies now: its serving is aborted and it is unregistered.
    await redis.set(learnerAliveKey('dying-learner'), '1', 'PX', 60000);
    await registerRemoteRun(redis, asyncSpec('dying-learner'));
    const served: string[] = [];
    const aborted: string[] = [];
    const host = new RolloutHost({
      url: server.url,
      workers: 0,
      maxShards: 1,
      discoverEveryMs: 50,
      serveAsyncRun: async (spec, self) => {
        served.push(spec.runId);
        await new Promise((resolve) => self.signal.addEventListener('abort', resolve));
        aborted.push(spec.runId);
      },
    });
    const serving = host.run();
    const run = await RemoteLockstepRun.open({ url: server.url, runId: 'lost-by-broker', shards: 1, leaseMs: 300, config: {}, heartbeatMs: 100 });
    const remote = await VectorEnv.create({ env: ENV, numEnvs: 2, seed: 1, transport: run.transportFor('lbf') });
    try {
      await waitFor(() => served.includes('dying-learner'), 5000, 'the live async run to be served');
      await redis.del(learnerAliveKey('dying-learner'));
      await waitFor(() => aborted.includes('dying-learner'), 5000, 'the async run of the dead learner to be stopped');
      const ids = async () => (await listRemoteRuns(redis)).map((r) => r.runId);
      expect(await ids()).toEqual(['lost-by-broker']);
      expect(served).not.toContain('dead-learner');
      // The broker forgets the lock-step run (as a restarted, empty Redis would): its learner registers it again.
      await unregisterRemoteRun(redis, 'lost-by-broker');
      const deadline = Date.now() + 5000;
      while (!(await ids()).includes('lost-by-broker') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await ids()).toEqual(['lost-by-broker']);
    } finally {
      await remote.close();
      await run.close();
      host.stop();
      await serving;
    }
  }, 20000);

  test('a host answering a run that was unregistered meanwhile does not bring its result stream back', async () => {
    const run = await RemoteLockstepRun.open({ url: server.url, runId: 'ended-early', shards: 1, leaseMs: 3000, config: {} });
    const remote = await VectorEnv.create({ env: ENV, numEnvs: 2, seed: 1, transport: run.transportFor('lbf') });
    // Its first discovery claims the shard; the next one (which would drop the ended run) comes too late to matter.
    const host = new RolloutHost({ url: server.url, workers: 0, maxShards: 1, hostId: 'late', discoverEveryMs: 5000 });
    const serving = host.run();
    const results = 'troupe:rollout:run:{ended-early}:task:lbf:shard:0:results';
    try {
      await remote.reset();
      expect(host.shards).toEqual(['ended-early/lbf/0']);
      await unregisterRemoteRun(redis, 'ended-early');
      writeRandomActions(remote, new Rng('late'));
      remote.sendStep(0, 0);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await redis.exists(results)).toBe(0);
    } finally {
      host.stop();
      await serving;
      await run.close();
    }
  }, 20000);

  test('a host that missed commands asks for a replay and catches up; malformed messages either way are refused and logged', async () => {
    const hostLog: string[] = [];
    const learnerNotices: string[] = [];
    const host = new RolloutHost({ url: server.url, workers: 0, maxShards: 1, hostId: 'gappy', discoverEveryMs: 100, log: (l) => hostLog.push(l) });
    const serving = host.run();
    const run = await RemoteLockstepRun.open({ url: server.url, runId: 'gaps', shards: 1, leaseMs: 3000, config: {}, onWaiting: (m) => learnerNotices.push(m) });
    const options = { env: ENV, numEnvs: 4, seed: 'gaps' };
    const reference = await VectorEnv.create({ ...options, workers: 0 });
    const remote = await VectorEnv.create({ ...options, transport: run.transportFor('lbf') });
    const commands = 'troupe:rollout:run:{gaps}:task:lbf:shard:0:commands';
    const results = 'troupe:rollout:run:{gaps}:task:lbf:shard:0:results';
    const pack = (value: unknown) => new Packr({ useRecords: false }).pack(value);
    try {
      await reference.reset();
      await remote.reset();
      // A step far ahead of what the host ran (as if it missed some), garbage, and a replay naming a group the shard lacks.
      await redis.xadd(commands, '*', 'm', pack({ kind: 'command', command: 2, group: 0, reset: 0, epoch: 0, step: 5, policyVersion: 0, actions: new Uint8Array(0) }));
      await redis.xadd(commands, '*', 'm', Buffer.from([0xc1, 0xff]));
      await redis.xadd(results, '*', 'm', pack({ kind: 'result', group: 'zero' }));
      await waitFor(() => hostLog.some((l) => /asking the learner for a replay/.test(l)), 5000, 'the host to ask for a replay');
      const claim = hostLog.find((l) => /claimed shard/.test(l));
      expect(claim).toBeDefined();
      const rng = [new Rng('gap'), new Rng('gap')];
      for (let t = 0; t < 5; t++) {
        writeRandomActions(reference, rng[0]);
        writeRandomActions(remote, rng[1]);
        await reference.step();
        await remote.step();
        expect(firstDifference(reference.buffers, remote.buffers)).toBeUndefined();
      }
      await redis.xadd(commands, '*', 'm', pack({ kind: 'replay', claimId: 'gappy#1', groups: [{ group: 7, reset: 0, epoch: 0, steps: 0, policyVersion: 0, actions: new Uint8Array(0) }] }));
      await waitFor(() => hostLog.filter((l) => /refused a message/.test(l)).length >= 2, 5000, 'the host to refuse two messages');
      writeRandomActions(reference, rng[0]);
      writeRandomActions(remote, rng[1]);
      await reference.step();
      await remote.step();
      expect(firstDifference(reference.buffers, remote.buffers)).toBeUndefined();
      expect(learnerNotices.some((m) => /refused a message from a rollout host: broker: a result .* has field 'group'/.test(m))).toBe(true);
      expect(hostLog.filter((l) => /refused a message/.test(l)).join('\n')).toMatch(/cannot decode[\s\S]*names group 7/);
    } finally {
      await reference.close();
      await remote.close();
      await run.close();
      host.stop();
      await serving;
    }
  }, 20000);

  test('leases are renewed at the shortest lease of the shards served, and a lapsed lease nobody took is taken again', async () => {
    const host = new RolloutHost({ url: server.url, workers: 0, maxShards: 2, hostId: 'renewer', discoverEveryMs: 50 });
    const serving = host.run();
    const slow = await RemoteLockstepRun.open({ url: server.url, runId: 'long-lease', shards: 1, leaseMs: 3000, config: {} });
    const slowEnv = await VectorEnv.create({ env: ENV, numEnvs: 2, seed: 1, transport: slow.transportFor('lbf') });
    const fast = await RemoteLockstepRun.open({ url: server.url, runId: 'short-lease', shards: 1, leaseMs: 150, config: {} });
    const fastEnv = await VectorEnv.create({ env: ENV, numEnvs: 2, seed: 1, transport: fast.transportFor('lbf') });
    const fastLease = 'troupe:rollout:run:{short-lease}:task:lbf:shard:0:lease';
    try {
      await slowEnv.reset();
      await fastEnv.reset();
      await waitFor(() => host.shards.length === 2, 5000, 'both shards to be claimed');
      // Renewing at a third of the first shard's 3 s lease would let this 150 ms lease lapse.
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(host.shards).toEqual(['long-lease/lbf/0', 'short-lease/lbf/0']);
      const claim = await redis.get(fastLease);
      expect(claim).toMatch(/^renewer#/);
      // The lease lapses (a stalled host) but no other host took it: the same claim takes it again.
      await redis.del(fastLease);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await redis.get(fastLease)).toBe(claim);
      expect(host.shards).toHaveLength(2);
      const rng = new Rng('x');
      writeRandomActions(fastEnv, rng);
      await fastEnv.step();
    } finally {
      await slowEnv.close();
      await fastEnv.close();
      await slow.close();
      await fast.close();
      host.stop();
      await serving;
    }
  }, 20000);
});

/** A child `troupe` process whose output is collected as it comes. */
interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves once the output matches `pattern`. */
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<void>;
}

function startCli(args: string[]): Child {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TROUPE_DEBUG: '' } });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    process: child,
    output: () => text,
    exited,
    waitFor: (pattern, timeoutMs) => waitFor(() => pattern.test(text), timeoutMs, `${pattern} in the output of troupe ${args[0]}:\n${text}`),
  };
}

async function stopAll(children: Child[]): Promise<void> {
  for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGTERM');
  await Promise.all(children.map((c) => Promise.race([c.exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())])));
  for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
}

/** metrics.jsonl without its wall-clock fields. */
function metricsOf(runDir: string): Array<Record<string, unknown>> {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const record = JSON.parse(line) as Record<string, unknown>;
      for (const k of ['time_s', 'steps_per_s', 'eval_time_s']) delete record[k];
      return record;
    });
}

describe('troupe train --broker with troupe rollout hosts', () => {
  const config = path.join(__dirname, '..', '..', 'configs', 'quickstart.yaml');
  // 300 vector steps of 8 envs in one segment; lease 1 s so a dead host is replaced quickly.
  const tiny = [
    config,
    ...['run.total_env_steps=2400', 'run.log_interval=400', 'run.eval_interval=1200', 'run.eval_episodes=4', 'run.checkpoint_interval=2400', 'algo.rollout_length=25', 'algo.hidden_dim=16'].flatMap((s) => ['--set', s]),
    '--backend',
    'cpu',
    '--no-progress',
  ];
  const remoteSettings = ['--set', 'run.remote.lease_ms=1000'];
  let server: TestRedisServer;
  let dir: string;
  let baseline: Array<Record<string, unknown>>;
  const children: Child[] = [];
  const host = (url: string, ...args: string[]) => {
    const child = startCli(['rollout', '--broker', url, ...args]);
    children.push(child);
    return child;
  };

  beforeAll(() => {
    server = startRedisServer();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-remote-'));
    const result = runCli(['train', ...tiny, '--workers', '2', '--out', path.join(dir, 'workers')]);
    expect(result.status).toBe(0);
    baseline = metricsOf(path.join(dir, 'workers'));
  }, 60000);
  afterEach(async () => {
    await stopAll(children.splice(0));
  });
  afterAll(() => {
    server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('two hosts give metrics identical to --workers 2; a host SIGKILLed mid-segment is replaced and the metrics stay identical', async () => {
    // Both runs at once (on two brokers), so their start-ups and the lease wait overlap.
    const failOverBroker = startRedisServer();
    try {
      // Uninterrupted: two hosts with one shard each.
      host(server.url, '--workers', '1', '--max-shards', '1');
      host(server.url, '--workers', '1', '--max-shards', '1');
      const twoHosts = startCli(['train', ...tiny, ...remoteSettings, '--broker', server.url, '--out', path.join(dir, 'two-hosts')]);
      children.push(twoHosts);
      // Fail-over: host A serves one shard, host B the other; A dies, B takes A's over after its lease.
      const learner = startCli(['train', ...tiny, ...remoteSettings, '--broker', failOverBroker.url, '--out', path.join(dir, 'fail-over')]);
      children.push(learner);
      const hostA = host(failOverBroker.url, '--workers', '0', '--max-shards', '1');
      await hostA.waitFor(/claimed shard/, 20000);
      const hostB = host(failOverBroker.url, '--workers', '1', '--max-shards', '2');
      await learner.waitFor(/\[train\] 800\//, 20000);
      hostA.process.kill('SIGKILL');
      expect(await twoHosts.exited).toBe(0);
      expect(await learner.exited).toBe(0);
      expect(learner.output()).toMatch(/waiting for rollout hosts \(start: troupe rollout --broker unix:\/\//);
      expect(hostB.output().match(/claimed shard/g)).toHaveLength(2);
      expect(metricsOf(path.join(dir, 'two-hosts'))).toEqual(baseline);
      expect(metricsOf(path.join(dir, 'fail-over'))).toEqual(baseline);
      // The hosts still serving must not bring back streams or leases of the runs that ended.
      for (const url of [server.url, failOverBroker.url]) {
        const redis = await connectRedis(url, { purpose: 'test' });
        try {
          await new Promise((resolve) => setTimeout(resolve, 1500));
          expect(await redis.keys('troupe:rollout:*')).toEqual([]);
        } finally {
          redis.disconnect();
        }
      }
      expect(baseline.filter((r) => r.kind === 'train').length).toBe(6);
    } finally {
      await stopAll(children.splice(0));
      failOverBroker.stop();
    }
  }, 60000);

  test('a broker that goes away mid-run stops the run with a clear error and a checkpoint it resumes from', async () => {
    const broker = startRedisServer();
    try {
      const out = path.join(dir, 'broker-lost');
      host(broker.url, '--workers', '0', '--max-shards', '2');
      const learner = startCli(['train', ...tiny, '--broker', broker.url, '--out', out]);
      children.push(learner);
      await learner.waitFor(/\[train\] 800\//, 20000);
      process.kill(broker.pid, 'SIGKILL');
      const code = await Promise.race([learner.exited, new Promise((resolve) => setTimeout(() => resolve('hung'), 20000).unref())]);
      expect(code).toBe(1);
      const output = learner.output();
      expect(output).toMatch(/lost the rollout broker at unix:\/\/\/.*redis\.sock/);
      expect(output).toMatch(/continue with: troupe train --resume/);
      expect(output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
      expect(fs.readFileSync(path.join(out, 'checkpoints', 'latest'), 'utf8')).toMatch(/interrupted\.ckpt/);
      const resumed = runCli(['train', '--resume', out, '--backend', 'cpu', '--no-progress']);
      expect(resumed.status).toBe(0);
      const metrics = metricsOf(out);
      expect(metrics[metrics.length - 1]).toMatchObject({ kind: 'eval', env_steps: 2400 });
    } finally {
      broker.stop();
    }
  }, 60000);

  test('a bad or unreachable broker URL fails cleanly, naming the broker without its password', () => {
    const unreachable = runCli(['train', ...tiny, '--broker', 'redis://user:s3cret@127.0.0.1:1', '--out', path.join(dir, 'no-broker')]);
    expectCleanFailure(unreachable, /cannot reach Redis for the rollout broker at redis:\/\/user:\*\*\*@127\.0\.0\.1:1/);
    expect(`${unreachable.stdout}${unreachable.stderr}`).not.toMatch(/s3cret/);
    expect(fs.existsSync(path.join(dir, 'no-broker'))).toBe(false);
    const hostless = runCli(['rollout', '--broker', 'redis://:s3cret@127.0.0.1:1']);
    expectCleanFailure(hostless, /cannot reach Redis for the rollout host at redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    expect(`${hostless.stdout}${hostless.stderr}`).not.toMatch(/s3cret/);
  }, 30000);
});
