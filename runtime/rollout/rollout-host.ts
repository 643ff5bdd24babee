import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Redis } from 'ioredis';
import { layoutFor } from '../../envs/env-shape';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import type { EnvSpec } from '../../envs/env-spec';
import { connectRedis, describeRedisError, parseRedisUrl } from '../core/redis-connection';
import { InProcessTransport } from './in-process-transport';
import {
  type CommandMessage,
  type LearnerMessage,
  MalformedMessageError,
  RELEASE_LEASE_SCRIPT,
  RENEW_LEASE_SCRIPT,
  RESULT_FIELDS,
  type ReplayMessage,
  type ResultMessage,
  WireCommand,
  appendToExistingStream,
  decodeWire,
  learnerAliveKey,
  readStreams,
  requireIntegers,
  resultRows,
  rowBytes,
  shardKey,
  writeRows,
} from './remote-lockstep-protocol';
import { type RemoteRunSpec, type RemoteTaskSpec, encodeMessage, listRemoteRuns, runKey, unregisterRemoteRun } from './remote-registry';
import { ShardCommand, type ShardTransport, type ShardTransportContext, VectorEnvError, shardRanges } from './shard-protocol';
import { type VectorBuffers, allocateBuffers } from './vector-buffers';
import { WorkerThreadTransport } from './worker-transport';

/*
 * A rollout host (`troupe rollout`): finds lock-step runs on the broker, claims shards with
 * leases and steps their envs with today's machinery — a local transport (worker threads, or
 * in-process with 0 workers) over just the shard's env ranges, at their global indices, so env e
 * resets with deriveSeed(resetSeed(seed, epoch), e) as it would on the learner's machine.
 * A lease is renewed every lease/3 while this host holds it; a host that dies lets it lapse and
 * another host claims the shard and is brought up to date by the learner's replay.
 */

export interface RolloutHostOptions {
  url: string;
  /** Worker threads of the host, shared out over its shards (each gets workers / maxShards, at least 1); 0 = in the host's main thread. */
  workers: number;
  /** Shards served at once, over all runs and tasks. */
  maxShards: number;
  /** Named in logs and in the learner's messages (default: hostname:pid:random). */
  hostId?: string;
  log?: (line: string) => void;
  /** How often the registered runs are listed for shards to claim (default 500 ms). */
  discoverEveryMs?: number;
  /**
   * Async-mode runs (hosts that act with the policy themselves) are served by this hook, called
   * once per async run this host sees; the async rollout module provides it. Without it such
   * runs are named once and skipped. `signal` aborts when the host stops; the host awaits the
   * returned promise before it shuts down.
   */
  serveAsyncRun?: (spec: RemoteRunSpec, host: { url: string; hostId: string; workers: number; signal: AbortSignal }) => Promise<void>;
  /** How long the broker may be unreachable before the host gives up (default 10 s). */
  brokerGraceMs?: number;
}

/** One claimed shard: its envs, its local transport and where it reads commands from. */
interface ServedShard {
  id: string;
  run: RemoteRunSpec;
  task: RemoteTaskSpec;
  index: number;
  claimId: string;
  ranges: Array<[number, number]>;
  commands: string;
  results: string;
  lease: string;
  lastCommandId: string;
  /** Commands before the learner's replay for this claim are for an earlier owner. */
  replayed: boolean;
  layout: ReturnType<typeof layoutFor>;
  buffers: VectorBuffers;
  transport: ShardTransport;
  /** Per group: the reset counter and step since it of the last command run. */
  reset: number[];
  epoch: number[];
  step: number[];
  failed: boolean;
  /** When its lease was last renewed (long replays renew inline). */
  renewedAt: number;
}

export class RolloutHost {
  readonly hostId: string;
  readonly display: string;
  private control?: Redis;
  private reader?: Redis;
  private readonly served = new Map<string, ServedShard>();
  private readonly asyncRuns = new Set<string>();
  /** Async runs being served: each one's stop switch and its end, awaited on shutdown. */
  private readonly asyncServing = new Map<string, { stop: AbortController; done: Promise<void> }>();
  private renewTimer?: NodeJS.Timeout;
  private renewEvery = 0;
  private stopping = false;
  private claims = 0;
  private lostSince: number | null = null;
  private sendError?: unknown;
  /** Shards whose claim failed to set up (bad env spec): not retried by this host. */
  private readonly refused = new Set<string>();

  constructor(private readonly options: RolloutHostOptions) {
    if (!Number.isInteger(options.workers) || options.workers < 0) throw new Error(`--workers must be a non-negative integer, got ${options.workers}`);
    if (!Number.isInteger(options.maxShards) || options.maxShards < 1) throw new Error(`--max-shards must be a positive integer, got ${options.maxShards}`);
    this.display = parseRedisUrl(options.url).display;
    this.hostId = options.hostId ?? `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  /** Worker threads that step one shard's envs (0: in the main thread). */
  get threadsPerShard(): number {
    return this.options.workers === 0 ? 0 : Math.max(1, Math.floor(this.options.workers / this.options.maxShards));
  }

  /** Shards served now, as `run/task/shard`. */
  get shards(): string[] {
    return [...this.served.keys()];
  }

  /** Serves until `stop()` (or `abandon()`); rejects when the broker stays unreachable. */
  async run(): Promise<void> {
    this.control = await connectRedis(this.options.url, { purpose: 'rollout host', reconnectForMs: this.options.brokerGraceMs ?? 10000 });
    this.reader = await connectRedis(this.options.url, { purpose: 'rollout host (commands)', reconnectForMs: this.options.brokerGraceMs ?? 10000 });
    const threads = this.threadsPerShard === 0 ? 'in its main thread' : `in ${this.threadsPerShard} worker thread(s) each`;
    this.log(`rollout host ${this.hostId}: serving runs on ${this.display}, at most ${this.options.maxShards} shard(s) at once, ${threads}; Ctrl-C to stop`);
    try {
      let nextDiscovery = 0;
      while (!this.stopping) {
        try {
          if (Date.now() >= nextDiscovery) {
            await this.discover();
            nextDiscovery = Date.now() + (this.options.discoverEveryMs ?? 500);
          }
          if (this.served.size === 0) {
            await sleep(Math.min(200, this.options.discoverEveryMs ?? 500));
            continue;
          }
          await this.serveOnce();
          this.lostSince = null;
        } catch (error) {
          if (this.stopping) break;
          if (!isBrokerFailure(error)) throw error;
          this.lostSince ??= Date.now();
          if (Date.now() - this.lostSince > (this.options.brokerGraceMs ?? 10000)) {
            throw new Error(`rollout host ${this.hostId}: lost the broker at ${this.display}: ${describeRedisError(error)}`);
          }
          await sleep(250);
        }
      }
    } finally {
      await this.shutDown(!this.stopping || this.releaseOnStop);
    }
  }

  private releaseOnStop = true;

  /** Stops serving: leases are released, so other hosts take the shards over at once. */
  stop(): void {
    this.releaseOnStop = true;
    this.stopping = true;
    for (const serving of this.asyncServing.values()) serving.stop.abort();
  }

  /** Stops without releasing leases, as a host that died would (tests of fail-over). */
  abandon(): void {
    this.releaseOnStop = false;
    this.stopping = true;
    for (const serving of this.asyncServing.values()) serving.stop.abort();
  }

  private async discover(): Promise<void> {
    const redis = this.control!;
    const runs = await listRemoteRuns(redis);
    // A learner that died without unregistering leaves its run behind; its alive key lapses.
    const alive = runs.length === 0 ? [] : await redis.mget(...runs.map((r) => learnerAliveKey(r.runId)));
    const orphaned = new Set(runs.filter((_, i) => alive[i] === null).map((r) => r.runId));
    const live = new Set(runs.map((r) => r.runId).filter((id) => !orphaned.has(id)));
    for (const shard of [...this.served.values()]) if (!live.has(shard.run.runId)) await this.drop(shard, orphaned.has(shard.run.runId) ? 'its learner is gone' : 'its run ended');
    for (const [runId, serving] of this.asyncServing) if (!live.has(runId)) serving.stop.abort();
    for (const runId of orphaned) {
      this.log(`run ${runId}: its learner is gone (no heartbeat); unregistering it`);
      await unregisterRemoteRun(redis, runId);
    }
    for (const run of runs) {
      if (!live.has(run.runId)) continue;
      if (run.mode === 'async') {
        this.serveAsync(run);
        continue;
      }
      if (this.served.size >= this.options.maxShards) continue;
      for (const task of run.tasks) {
        for (let s = 0; s < task.shards && this.served.size < this.options.maxShards; s++) {
          const id = `${run.runId}/${task.key}/${s}`;
          if (this.served.has(id) || this.refused.has(id)) continue;
          const lease = shardKey(run.runId, task.key, s, 'lease');
          const claimId = `${this.hostId}#${++this.claims}`;
          if ((await redis.set(lease, claimId, 'PX', run.leaseMs, 'NX')) !== 'OK') continue;
          await this.claim(id, run, task, s, claimId);
        }
      }
    }
    this.scheduleRenewals();
  }

  private serveAsync(run: RemoteRunSpec): void {
    if (this.asyncRuns.has(run.runId)) return;
    this.asyncRuns.add(run.runId);
    const hook = this.options.serveAsyncRun;
    if (!hook) {
      this.log(`run ${run.runId} is in async mode; this host serves lock-step runs only (no async rollout support loaded)`);
      return;
    }
    const stop = new AbortController();
    const done = hook(run, { url: this.options.url, hostId: this.hostId, workers: this.options.workers, signal: stop.signal })
      .catch((error: unknown) => {
        this.log(`async run ${run.runId}: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => this.asyncServing.delete(run.runId));
    this.asyncServing.set(run.runId, { stop, done });
  }

  private async claim(id: string, run: RemoteRunSpec, task: RemoteTaskSpec, index: number, claimId: string): Promise<void> {
    const redis = this.control!;
    const lease = shardKey(run.runId, task.key, index, 'lease');
    let shard: ServedShard;
    try {
      shard = await this.buildShard(id, run, task, index, claimId);
    } catch (error) {
      this.refused.add(id);
      await redis.eval(RELEASE_LEASE_SCRIPT, 1, lease, claimId);
      this.log(`cannot serve shard ${index} of task '${task.key}' of run ${run.runId}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    // Read commands from after the newest one now: the learner's replay for this claim comes later.
    const newest = (await redis.xrevrange(shard.commands, '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    shard.lastCommandId = newest.length > 0 ? newest[0][0] : '0-0';
    this.served.set(id, shard);
    if (!(await appendToExistingStream(redis, shard.results, encodeMessage({ kind: 'claim', claimId, host: this.hostId })))) {
      await this.drop(shard, 'its run ended');
      return;
    }
    const envs = shard.ranges.map(([s, e]) => `#${s}–${e - 1}`).join(', ');
    this.log(`claimed shard ${index} of task '${task.key}' (envs ${envs}) of run ${run.runId}`);
  }

  private async buildShard(id: string, run: RemoteRunSpec, task: RemoteTaskSpec, index: number, claimId: string): Promise<ServedShard> {
    const spec = task.env as unknown as EnvSpec;
    await prepareEnvSpec(spec);
    const probe = instantiateEnv(spec);
    const layout = layoutFor(probe, task.numEnvs);
    probe.close?.();
    const groupRanges = Array.from({ length: task.groups }, (_, g): [number, number] => [Math.floor((g * task.numEnvs) / task.groups), Math.floor(((g + 1) * task.numEnvs) / task.groups)]);
    const ranges = shardRanges(groupRanges, index, task.shards);
    const threads = Math.min(this.threadsPerShard, ...ranges.map(([s, e]) => e - s));
    const buffers = allocateBuffers(layout, threads > 0);
    const context: ShardTransportContext = {
      spec,
      layout,
      buffers,
      groupRanges: ranges,
      seed: task.seed,
      shards: Math.max(1, threads),
      restartOnFailure: false,
      maxRestarts: 0,
      checks: { checkFinite: task.checkFinite, ...(run.tasks.length > 1 ? { task: task.key } : {}) },
    };
    const transport = threads > 0 ? new WorkerThreadTransport(context) : new InProcessTransport(context);
    return {
      id,
      run,
      task,
      index,
      claimId,
      ranges,
      commands: shardKey(run.runId, task.key, index, 'commands'),
      results: shardKey(run.runId, task.key, index, 'results'),
      lease: shardKey(run.runId, task.key, index, 'lease'),
      lastCommandId: '0-0',
      replayed: false,
      layout,
      buffers,
      transport,
      reset: groupRanges.map(() => -1),
      epoch: groupRanges.map(() => 0),
      step: groupRanges.map(() => 0),
      failed: false,
      renewedAt: Date.now(),
    };
  }

  /** Renews every lease at a third of the shortest lease served now (rescheduled as shards come and go). */
  private scheduleRenewals(): void {
    if (this.served.size === 0) return;
    const every = renewalPeriod(Math.min(...[...this.served.values()].map((s) => s.run.leaseMs)));
    if (this.renewTimer && this.renewEvery === every) return;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewEvery = every;
    this.renewTimer = setInterval(() => void this.renew(), every);
  }

  private async renew(): Promise<void> {
    if (this.stopping) return;
    for (const shard of [...this.served.values()]) {
      try {
        await this.renewLease(shard);
      } catch {
        // The broker is away: the main loop notices and gives up after its grace period.
      }
    }
  }

  /** Renews one shard's lease; a lease another host took drops the shard. */
  private async renewLease(shard: ServedShard): Promise<void> {
    const kept = await this.control!.eval(RENEW_LEASE_SCRIPT, 2, shard.lease, runKey(shard.run.runId, 'spec'), shard.claimId, shard.run.leaseMs);
    if (this.served.get(shard.id) !== shard) return;
    if (kept === 0) await this.drop(shard, 'its lease lapsed and another host took it (or its run ended)');
    else shard.renewedAt = Date.now();
  }

  /** Reads the claimed shards' commands (up to 200 ms) and runs them, shards side by side. */
  private async serveOnce(): Promise<void> {
    if (this.sendError !== undefined) {
      const error = this.sendError;
      this.sendError = undefined;
      throw error;
    }
    const shards = [...this.served.values()];
    const entries = await readStreams(
      this.reader!,
      shards.map((s) => s.commands),
      shards.map((s) => s.lastCommandId),
      200,
    );
    const byKey = new Map(shards.map((s) => [s.commands, s]));
    const queues = new Map<ServedShard, LearnerMessage[]>();
    for (const entry of entries) {
      const shard = byKey.get(entry.key);
      if (!shard || this.served.get(shard.id) !== shard) continue;
      shard.lastCommandId = entry.id;
      let message: LearnerMessage;
      try {
        message = decodeWire<LearnerMessage>(entry.message, entry.key, ['command', 'replay', 'close']);
      } catch (error) {
        if (!(error instanceof MalformedMessageError)) throw error;
        this.log(`refused a message: ${error.message}`);
        continue;
      }
      if (message.kind === 'replay' && message.claimId === shard.claimId) shard.replayed = true;
      if (!shard.replayed) continue;
      if (!queues.has(shard)) queues.set(shard, []);
      queues.get(shard)!.push(message);
    }
    // Round by round: every shard's next command starts before any is awaited, so shards overlap.
    const pending: Array<Promise<void>> = [];
    for (let round = 0; queues.size > 0; round++) {
      const started: Array<{ shard: ServedShard; finish: () => Promise<void> }> = [];
      for (const [shard, queue] of queues) {
        if (round >= queue.length || shard.failed || this.served.get(shard.id) !== shard) {
          queues.delete(shard);
          continue;
        }
        const message = queue[round];
        if (message.kind === 'close') {
          await this.drop(shard, 'the learner closed it');
          queues.delete(shard);
          continue;
        }
        try {
          if (message.kind === 'replay') {
            if (message.claimId !== shard.claimId) continue;
            shard.replayed = true;
            await this.replay(shard, message, pending);
            continue;
          }
          // Waiting for the replay asked for after a gap: it covers these commands.
          if (!shard.replayed) continue;
          const finish = this.start(shard, message);
          if (finish) started.push({ shard, finish });
        } catch (error) {
          if (!(error instanceof MalformedMessageError)) throw error;
          this.log(`refused a message: ${error.message}`);
          await this.askForReplay(shard, 'after a malformed command');
        }
      }
      for (const { finish } of started) pending.push(finish());
    }
    await Promise.all(pending);
  }

  /** Starts one command on the shard's local transport; the returned function awaits it and sends the result. */
  private start(shard: ServedShard, message: CommandMessage): (() => Promise<void>) | undefined {
    requireIntegers(message, shard.commands, ['command', 'group', 'reset', 'epoch', 'step', 'policyVersion']);
    const group = message.group;
    if (group < 0 || group >= shard.ranges.length) throw new MalformedMessageError(`broker: a command on ${shard.commands} names group ${group}, expected 0–${shard.ranges.length - 1}`);
    // A command for an older reset, or one this shard's envs have already run, is not run (again).
    if (message.reset < shard.reset[group]) return undefined;
    if (message.command === WireCommand.Reset) {
      if (message.reset === shard.reset[group]) return undefined;
      this.beginReset(shard, group, message.reset, message.epoch);
    } else {
      if (message.reset === shard.reset[group] && message.step <= shard.step[group]) return undefined;
      if (message.reset !== shard.reset[group] || message.step !== shard.step[group] + 1) {
        // A command this host never saw (trimmed, or read past): its envs are behind; the learner waits for them.
        void this.askForReplay(shard, `it missed commands (got reset ${message.reset} step ${message.step} of group ${group}, was at reset ${shard.reset[group]} step ${shard.step[group]})`);
        return undefined;
      }
      this.beginStep(shard, group, message.actions, message.policyVersion);
    }
    const command = message.command === WireCommand.Reset ? ShardCommand.Reset : ShardCommand.Step;
    return async () => this.finish(shard, group, command, message.policyVersion, true);
  }

  /** Claims the shard again under the same claim: the learner answers with a replay up to its newest command. */
  private async askForReplay(shard: ServedShard, why: string): Promise<void> {
    if (!shard.replayed) return;
    shard.replayed = false;
    this.log(`shard ${shard.index} of task '${shard.task.key}' of run ${shard.run.runId}: asking the learner for a replay, ${why}`);
    try {
      if (!(await appendToExistingStream(this.control!, shard.results, encodeMessage({ kind: 'claim', claimId: shard.claimId, host: this.hostId })))) await this.drop(shard, 'its run ended');
    } catch (error) {
      this.sendError ??= error;
    }
  }

  private beginReset(shard: ServedShard, group: number, reset: number, epoch: number): void {
    const [start, end] = shard.ranges[group];
    shard.buffers.episodeDone.fill(0, start, end);
    shard.buffers.episodeAborted.fill(0, start, end);
    shard.reset[group] = reset;
    shard.epoch[group] = epoch;
    shard.step[group] = 0;
    shard.transport.reset(group, epoch);
  }

  private beginStep(shard: ServedShard, group: number, actions: Uint8Array, policyVersion: number): boolean {
    const [start, end] = shard.ranges[group];
    if (!writeRows(shard.buffers, shard.layout, 'actions', start, end, actions)) {
      throw new MalformedMessageError(`broker: a step on ${shard.commands} carries ${actions?.length} bytes of actions for envs #${start}–${end - 1}, expected ${rowBytes(shard.buffers, shard.layout, 'actions', start, end).length}`);
    }
    shard.step[group]++;
    shard.transport.step(group, policyVersion);
    return true;
  }

  /**
   * Awaits the shard's local command; sends its rows when `reply`, and a failure always — tagged
   * as step `failureStep` (a replay's last step: the one the learner waits for) when given.
   */
  private async finish(shard: ServedShard, group: number, command: ShardCommand, policyVersion: number, reply: boolean, failureStep?: number): Promise<void> {
    const base = { kind: 'result' as const, shard: shard.index, group, reset: shard.reset[group], epoch: shard.epoch[group], step: shard.step[group], policyVersion, host: this.hostId };
    let result: ResultMessage;
    try {
      await shard.transport.observe(group, command, shard.step[group] - (command === ShardCommand.Step ? 1 : 0));
      if (!reply) return;
      const [start, end] = shard.ranges[group];
      result = { ...base, rows: RESULT_FIELDS.map((field) => resultRows(shard.buffers, shard.layout, field, start, end)) };
    } catch (error) {
      // A shard dropped meanwhile (lease lost, run ended) had its envs closed under it: nothing to report.
      if (this.served.get(shard.id) !== shard) return;
      if (!(error instanceof VectorEnvError)) throw error;
      shard.failed = true;
      // This host will not take the shard again: its envs fail the same way wherever they run.
      this.refused.add(shard.id);
      result = { ...base, ...(failureStep !== undefined ? { step: failureStep } : {}), error: error.message, envIndex: error.envIndex };
    }
    if (this.served.get(shard.id) !== shard) return;
    // Not awaited: the next command is read meanwhile; a failed send is raised by the next serveOnce.
    // A result for a run that ended meanwhile finds no stream (false): the next discovery drops the shard.
    appendToExistingStream(this.control!, shard.results, encodeMessage(result)).catch((error: unknown) => {
      this.sendError ??= error;
    });
    if (shard.failed) await this.drop(shard, `an env failed: ${result.error}`);
  }

  /** Runs the learner's replay for this claim; only each group's last command is answered. */
  private async replay(shard: ServedShard, message: ReplayMessage, pending: Array<Promise<void>>): Promise<void> {
    if (!Array.isArray(message.groups)) throw new MalformedMessageError(`broker: a replay on ${shard.commands} has no 'groups' list`);
    // Checked whole before any group runs, so a malformed replay leaves the envs as they were.
    for (const g of message.groups) {
      if (typeof g !== 'object' || g === null) throw new MalformedMessageError(`broker: a replay on ${shard.commands} has a group entry ${JSON.stringify(g)}, expected an object`);
      requireIntegers(g, shard.commands, ['group', 'reset', 'epoch', 'steps', 'policyVersion']);
      if (g.group < 0 || g.group >= shard.ranges.length || g.steps < 0) {
        throw new MalformedMessageError(`broker: a replay on ${shard.commands} names group ${g.group} with ${g.steps} steps, expected a group 0–${shard.ranges.length - 1} and steps ≥ 0`);
      }
      const [start, end] = shard.ranges[g.group];
      const rowLength = rowBytes(shard.buffers, shard.layout, 'actions', start, end).length;
      if (!(g.actions instanceof Uint8Array) || g.actions.length !== rowLength * g.steps) {
        throw new MalformedMessageError(`broker: the replay on ${shard.commands} for group ${g.group} has ${g.actions?.length} bytes of actions, expected ${g.steps} steps × ${rowLength}`);
      }
    }
    for (const g of message.groups) {
      const [start, end] = shard.ranges[g.group];
      const rowLength = rowBytes(shard.buffers, shard.layout, 'actions', start, end).length;
      this.beginReset(shard, g.group, g.reset, g.epoch);
      await this.finish(shard, g.group, ShardCommand.Reset, 0, g.steps === 0, g.steps);
      for (let i = 0; i < g.steps && !shard.failed; i++) {
        // In-process envs run a replay as one chain of microtasks: let timers and replies in, and keep the lease.
        if (i > 0 && i % REPLAY_YIELD_EVERY === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          if (Date.now() - shard.renewedAt >= renewalPeriod(shard.run.leaseMs)) await this.renewLease(shard);
          if (this.served.get(shard.id) !== shard) return;
        }
        this.beginStep(shard, g.group, g.actions.subarray(i * rowLength, (i + 1) * rowLength), g.policyVersion);
        const last = i === g.steps - 1;
        if (last) pending.push(this.finish(shard, g.group, ShardCommand.Step, g.policyVersion, true));
        else await this.finish(shard, g.group, ShardCommand.Step, g.policyVersion, false, g.steps);
      }
    }
  }

  private async drop(shard: ServedShard, why: string): Promise<void> {
    if (this.served.get(shard.id) !== shard) return;
    this.served.delete(shard.id);
    this.log(`released shard ${shard.index} of task '${shard.task.key}' of run ${shard.run.runId}: ${why}`);
    await this.closeShard(shard, true);
    if (this.renewTimer) {
      clearInterval(this.renewTimer);
      this.renewTimer = undefined;
    }
    this.scheduleRenewals();
  }

  private async closeShard(shard: ServedShard, release: boolean): Promise<void> {
    if (release) await this.control!.eval(RELEASE_LEASE_SCRIPT, 1, shard.lease, shard.claimId).catch(() => undefined);
    await shard.transport.close().catch(() => undefined);
  }

  private async shutDown(release: boolean): Promise<void> {
    const asyncRuns = [...this.asyncServing.values()];
    for (const serving of asyncRuns) serving.stop.abort();
    await Promise.all(asyncRuns.map((serving) => serving.done));
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    const shards = [...this.served.values()];
    this.served.clear();
    for (const shard of shards) await this.closeShard(shard, release);
    this.control?.disconnect();
    this.reader?.disconnect();
  }

  private log(line: string): void {
    this.options.log?.(line);
  }
}

/** Replay steps between yields to the event loop (and inline lease renewals). */
const REPLAY_YIELD_EVERY = 16;

function renewalPeriod(leaseMs: number): number {
  return Math.max(50, Math.floor(leaseMs / 3));
}

/** ioredis' own failures (connection closed, retries exhausted) as opposed to bugs or bad messages. */
function isBrokerFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const text = `${error.name} ${error.message}`;
  return /Connection is closed|ECONNREFUSED|ENOENT|ECONNRESET|EPIPE|MaxRetriesPerRequest|Stream isn't writeable|connect ETIMEDOUT|ETIMEDOUT/i.test(text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
