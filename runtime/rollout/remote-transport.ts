import type { Redis } from 'ioredis';
import { connectRedis, describeRedisError, parseRedisUrl } from '../core/redis-connection';
import {
  type ClaimMessage,
  type CloseMessage,
  type CommandMessage,
  type HostMessage,
  MalformedMessageError,
  RESULT_FIELDS,
  type ReplayMessage,
  type ResultMessage,
  WireCommand,
  appendMessage,
  createEmptyStream,
  decodeWire,
  readStreams,
  requireIntegers,
  shardKey,
  writeResultRows,
} from './remote-lockstep-protocol';
import { LEARNER_ALIVE_MS, LEARNER_HEARTBEAT_MS, type RemoteRunSpec, type RemoteTaskSpec, encodeMessage, keepRunAlive, learnerAliveKey, registerRemoteRun, unregisterRemoteRun } from './remote-registry';
import { ShardCommand, type ShardRestart, type ShardTransport, type ShardTransportContext, type ShardTransportFactory, VectorEnvError, shardRanges } from './shard-protocol';

/*
 * Lock-step remote rollouts, the learner's side: a third backend of the rollout seam whose
 * shards live on `troupe rollout` hosts (see `remote-lockstep-protocol.ts` for the wire).
 * Inference stays here; hosts only step envs. Results are copied in by env index, so the
 * buffers are bit-identical to in-process and worker threads for the same commands.
 */

/** The broker stopped answering for longer than the grace period: the run cannot go on (its caller checkpoints). */
export class RolloutBrokerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RolloutBrokerError';
  }
}

export interface RemoteLockstepRunOptions {
  /** Broker URL (may hold a password: only its redacted form is ever shown). */
  url: string;
  runId: string;
  /** Shards per task (`run.remote.shards`). */
  shards: number;
  leaseMs: number;
  /** The run's resolved config, as hosts in async mode would need it (recorded in the spec). */
  config: Record<string, unknown>;
  /** Told while no host serves a shard the learner waits for (first at once, then every `noticeEveryMs`). */
  onWaiting?: (message: string) => void;
  noticeEveryMs?: number;
  /** How long a lost broker may take to come back before the run stops with `RolloutBrokerError` (default 5 s). */
  brokerGraceMs?: number;
  /** Told about messages from hosts that were refused (default: `onWaiting`). */
  onNotice?: (message: string) => void;
  /** How often the learner's alive key is renewed and the run's registration checked (default 5 s). */
  heartbeatMs?: number;
}


/**
 * One lock-step run on a broker: registers the run (its spec grows by a task as each task's
 * transport is made), keeps the learner's alive key fresh, and makes the tasks' transports.
 */
export class RemoteLockstepRun {
  readonly display: string;
  private readonly tasks: RemoteTaskSpec[] = [];
  private readonly transports: RemoteShardTransport[] = [];
  private readonly registeredAt = Date.now();
  private heartbeat?: NodeJS.Timeout;
  private closed = false;

  private constructor(
    readonly options: RemoteLockstepRunOptions,
    private readonly redis: Redis,
  ) {
    this.display = parseRedisUrl(options.url).display;
  }

  /** Connects to the broker (a clear error naming it when it cannot) and starts the alive key. */
  static async open(options: RemoteLockstepRunOptions): Promise<RemoteLockstepRun> {
    const redis = await connectRedis(options.url, { purpose: 'rollout broker', reconnectForMs: options.brokerGraceMs ?? 5000 });
    const run = new RemoteLockstepRun(options, redis);
    await run.touch();
    // A failed renewal is the broker away: the transports notice it and stop the run after the grace period.
    run.heartbeat = setInterval(() => void run.touch().catch(() => undefined), options.heartbeatMs ?? LEARNER_HEARTBEAT_MS);
    run.heartbeat.unref();
    return run;
  }

  /** The transport factory of task `key` (for `VectorEnvOptions.transport`). */
  transportFor(key: string): ShardTransportFactory {
    return async (context) => {
      const task: RemoteTaskSpec = {
        key,
        env: context.spec as unknown as Record<string, unknown>,
        numEnvs: context.layout.numEnvs,
        seed: context.seed,
        groups: context.groupRanges.length,
        shards: Math.min(this.options.shards, Math.min(...context.groupRanges.map(([s, e]) => e - s))),
        checkFinite: context.checks.checkFinite,
      };
      const transport = await RemoteShardTransport.open(context, { ...this.options, taskKey: key, shards: task.shards });
      this.tasks.push(task);
      this.transports.push(transport);
      try {
        await transport.createResultStreams();
        await registerRemoteRun(this.redis, this.spec());
      } catch (error) {
        await transport.close();
        throw new RolloutBrokerError(`cannot register the run on the rollout broker at ${this.display}: ${describeRedisError(error)}`);
      }
      return transport;
    };
  }

  spec(): RemoteRunSpec {
    return {
      runId: this.options.runId,
      mode: 'lockstep',
      config: this.options.config,
      tasks: this.tasks,
      leaseMs: this.options.leaseMs,
      credits: 0,
      maxPolicyLag: 0,
      registeredAt: this.registeredAt,
    };
  }

  /** Unregisters the run (hosts let its shards go) and disconnects; quiet when the broker is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    try {
      await Promise.race([unregisterRemoteRun(this.redis, this.options.runId), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    } catch {
      // The broker went away; its keys went with it or expire with their leases.
    }
    this.redis.disconnect();
  }

  /** Renews the alive key; a run the broker lost (restarted empty, or hosts gave it up) is registered again. */
  private async touch(): Promise<void> {
    if (this.tasks.length === 0) {
      await this.redis.set(learnerAliveKey(this.options.runId), String(Date.now()), 'PX', LEARNER_ALIVE_MS);
      return;
    }
    if (!(await keepRunAlive(this.redis, this.spec()))) return;
    for (const transport of this.transports) await transport.createResultStreams();
    this.options.onWaiting?.(`the rollout broker at ${this.display} had lost run ${this.options.runId}; registered it again`);
  }
}

interface TransportOptions extends RemoteLockstepRunOptions {
  taskKey: string;
}

/** A group's commands since its last reset: what a new owner of a shard replays. */
interface GroupLog {
  reset: number;
  epoch: number;
  /** Action rows of the whole group, one per step since the reset. */
  steps: Float32Array[];
  policyVersion: number;
}

interface RemoteShard {
  index: number;
  /** [start, end) of the shard in each group. */
  ranges: Array<[number, number]>;
  commands: string;
  results: string;
  lease: string;
  lastResultId: string;
  /** Per group: the (reset, step) of the last result copied in. */
  doneReset: number[];
  doneStep: number[];
  host?: string;
  /** Whether a host has ever claimed it (for the waiting messages). */
  everClaimed: boolean;
}

/**
 * `ShardTransport` over a broker (see the file header). Each command goes to every shard's
 * command stream with the shard's action rows; `observe` reads the result streams until every
 * shard has answered the group's last command, copying rows in by env index.
 */
export class RemoteShardTransport implements ShardTransport {
  readonly name = 'remote-lockstep';
  readonly restarts: readonly ShardRestart[] = [];
  private readonly shards: RemoteShard[];
  private readonly logs: Array<GroupLog | undefined>;
  private readonly display: string;
  private readonly bytesPerActionRow: number;
  private readonly failures: Array<VectorEnvError | undefined>;
  /** The first broker failure of the current outage (null while it answers). */
  private lostSince: number | null = null;
  private lastNoticeAt = 0;
  private noticedOnce = false;
  /** The first failed send since the last check (sends are not awaited: results are what the learner waits for). */
  private sendError?: unknown;
  private closed = false;

  private constructor(
    private readonly context: ShardTransportContext,
    private readonly options: TransportOptions,
    private readonly writer: Redis,
    private readonly reader: Redis,
  ) {
    const { runId, taskKey, shards } = options;
    this.display = parseRedisUrl(options.url).display;
    this.shards = Array.from({ length: shards }, (_, s) => ({
      index: s,
      ranges: shardRanges(context.groupRanges, s, shards),
      commands: shardKey(runId, taskKey, s, 'commands'),
      results: shardKey(runId, taskKey, s, 'results'),
      lease: shardKey(runId, taskKey, s, 'lease'),
      lastResultId: '0-0',
      doneReset: context.groupRanges.map(() => -1),
      doneStep: context.groupRanges.map(() => -1),
      everClaimed: false,
    }));
    this.logs = context.groupRanges.map(() => undefined);
    this.failures = context.groupRanges.map(() => undefined);
    this.bytesPerActionRow = context.layout.numAgents * context.layout.actDim * 4;
  }

  static async open(context: ShardTransportContext, options: TransportOptions): Promise<RemoteShardTransport> {
    const connect = (purpose: string) => connectRedis(options.url, { purpose, reconnectForMs: options.brokerGraceMs ?? 5000 });
    const writer = await connect('rollout broker');
    let reader: Redis;
    try {
      reader = await connect('rollout broker (results)');
    } catch (error) {
      writer.disconnect();
      throw error;
    }
    return new RemoteShardTransport(context, options, writer, reader);
  }

  /** Makes the shards' result streams, which hosts only append to (never create). */
  async createResultStreams(): Promise<void> {
    for (const shard of this.shards) await createEmptyStream(this.writer, shard.results);
  }

  reset(group: number, epoch: number): void {
    const previous = this.logs[group];
    const log: GroupLog = { reset: (previous?.reset ?? -1) + 1, epoch, steps: [], policyVersion: 0 };
    this.logs[group] = log;
    this.failures[group] = undefined;
    for (const shard of this.shards) this.send(shard, { kind: 'command', command: WireCommand.Reset, group, reset: log.reset, epoch, step: 0, policyVersion: 0, actions: new Uint8Array(0) });
  }

  step(group: number, policyVersion: number): void {
    const log = this.logs[group];
    if (!log) throw new Error(`remote rollout: group ${group} stepped before its first reset`);
    const [start, end] = this.context.groupRanges[group];
    const { numAgents: A, actDim } = this.context.layout;
    const rows = this.context.buffers.actions.slice(start * A * actDim, end * A * actDim);
    log.steps.push(rows);
    log.policyVersion = policyVersion;
    for (const shard of this.shards) {
      const [s, e] = shard.ranges[group];
      const actions = new Uint8Array(rows.buffer, (s - start) * this.bytesPerActionRow, (e - s) * this.bytesPerActionRow);
      this.send(shard, { kind: 'command', command: WireCommand.Step, group, reset: log.reset, epoch: log.epoch, step: log.steps.length, policyVersion, actions });
    }
  }

  async observe(group: number, _command: ShardCommand, vectorStep: number): Promise<void> {
    const log = this.logs[group];
    if (!log) throw new Error(`remote rollout: group ${group} observed before its first reset`);
    for (;;) {
      this.checkSends();
      const failure = this.failures[group];
      if (failure) throw failure;
      const waiting = this.shards.filter((s) => s.doneReset[group] !== log.reset || s.doneStep[group] !== log.steps.length);
      if (waiting.length === 0) return;
      await this.pump(waiting, vectorStep);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const close: CloseMessage = { kind: 'close' };
    try {
      await Promise.race([Promise.all(this.shards.map((s) => appendMessage(this.writer, s.commands, encodeMessage(close)))), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    } catch {
      // A broker that went away has nobody left to tell.
    }
    this.writer.disconnect();
    this.reader.disconnect();
  }

  private send(shard: RemoteShard, message: CommandMessage | ReplayMessage): void {
    appendMessage(this.writer, shard.commands, encodeMessage(message)).catch((error: unknown) => {
      this.sendError ??= error;
    });
  }

  /** A failed send is a broker failure (a lost command would leave the learner waiting for its result). */
  private checkSends(): void {
    if (this.sendError !== undefined) {
      const error = this.sendError;
      this.sendError = undefined;
      throw new RolloutBrokerError(`lost the rollout broker at ${this.display} (task '${this.options.taskKey}'): a command did not reach it (${brokerFailureText(error)})`);
    }
  }

  /** Reads what the hosts sent (claims, results) for up to a second. */
  private async pump(waiting: RemoteShard[], vectorStep: number): Promise<void> {
    let entries;
    try {
      entries = await readStreams(
        this.reader,
        this.shards.map((s) => s.results),
        this.shards.map((s) => s.lastResultId),
        1000,
      );
      this.lostSince = null;
    } catch (error) {
      await this.brokerFailed(error);
      return;
    }
    if (entries.length === 0) {
      await this.noticeWaiting(waiting);
      return;
    }
    const byKey = new Map(this.shards.map((s) => [s.results, s]));
    for (const entry of entries) {
      const shard = byKey.get(entry.key)!;
      shard.lastResultId = entry.id;
      try {
        const message = decodeWire<HostMessage>(entry.message, entry.key, ['claim', 'result']);
        if (message.kind === 'claim') this.replayTo(shard, message, entry.key);
        else this.accept(shard, message, entry.key, vectorStep);
      } catch (error) {
        if (!(error instanceof MalformedMessageError)) throw error;
        // A bad message (a host of another version, a stray writer) does not stop the run; the shard's host is asked again by its next claim.
        (this.options.onNotice ?? this.options.onWaiting)?.(`refused a message from a rollout host: ${error.message}`);
      }
    }
  }

  /** A broker that stopped answering: wait out the grace period (ioredis reconnects), then stop the run. */
  private async brokerFailed(error: unknown): Promise<void> {
    const now = Date.now();
    this.lostSince ??= now;
    const grace = this.options.brokerGraceMs ?? 5000;
    if (now - this.lostSince >= grace) {
      throw new RolloutBrokerError(`lost the rollout broker at ${this.display} (task '${this.options.taskKey}'): ${brokerFailureText(error)}, no answer for ${((now - this.lostSince) / 1000).toFixed(1)} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  private async noticeWaiting(waiting: RemoteShard[]): Promise<void> {
    const notify = this.options.onWaiting;
    if (!notify) return;
    const every = this.options.noticeEveryMs ?? 10000;
    const now = Date.now();
    if (this.noticedOnce && now - this.lastNoticeAt < every) return;
    let owners: Array<string | null>;
    try {
      owners = await this.writer.mget(...waiting.map((s) => s.lease));
    } catch (error) {
      await this.brokerFailed(error);
      return;
    }
    const orphans = waiting.filter((_, i) => owners[i] === null);
    if (orphans.length === 0) return;
    const start = `troupe rollout --broker ${this.display}`;
    const task = `task '${this.options.taskKey}'`;
    const lost = orphans.filter((s) => s.everClaimed);
    const message =
      lost.length > 0
        ? `still waiting: shard${lost.length > 1 ? 's' : ''} ${lost.map((s) => s.index).join(', ')} of ${task} lost ${lost.length > 1 ? 'their hosts' : 'its host'} (lease lapsed) and no other host has taken over; start one with: ${start}`
        : !this.noticedOnce
          ? `waiting for rollout hosts (start: ${start})`
          : `still waiting for rollout hosts: ${orphans.length} of ${this.shards.length} shards of ${task} have none (start: ${start})`;
    this.noticedOnce = true;
    this.lastNoticeAt = now;
    notify(message);
  }

  /** A host claimed `shard`: send it every group's commands since the group's reset. */
  private replayTo(shard: RemoteShard, claim: ClaimMessage, key: string): void {
    if (typeof claim.claimId !== 'string' || typeof claim.host !== 'string') throw new MalformedMessageError(`broker: a claim message on ${key} needs string fields 'claimId' and 'host'`);
    shard.host = claim.host;
    shard.everClaimed = true;
    const groups: ReplayMessage['groups'] = [];
    for (const [group, log] of this.logs.entries()) {
      if (!log) continue;
      const [start] = this.context.groupRanges[group];
      const [s, e] = shard.ranges[group];
      const rowBytesLength = (e - s) * this.bytesPerActionRow;
      const actions = new Uint8Array(rowBytesLength * log.steps.length);
      log.steps.forEach((rows, i) => actions.set(new Uint8Array(rows.buffer, (s - start) * this.bytesPerActionRow, rowBytesLength), i * rowBytesLength));
      groups.push({ group, reset: log.reset, epoch: log.epoch, steps: log.steps.length, policyVersion: log.policyVersion, actions });
    }
    this.send(shard, { kind: 'replay', claimId: claim.claimId, groups });
  }

  /** Copies a result in if it is the one the group waits for; anything else is a duplicate or stale. */
  private accept(shard: RemoteShard, result: ResultMessage, key: string, vectorStep: number): void {
    requireIntegers(result, key, ['group', 'reset', 'step']);
    const log = this.logs[result.group];
    if (!log || result.reset !== log.reset || result.step !== log.steps.length) return;
    if (shard.doneReset[result.group] === result.reset && shard.doneStep[result.group] === result.step) return;
    const [start, end] = shard.ranges[result.group];
    if (result.error !== undefined) {
      const envIndex = Number.isSafeInteger(result.envIndex) && result.envIndex! >= 0 ? result.envIndex! : start;
      this.failures[result.group] = new VectorEnvError(`${String(result.error).split('\n')[0]} (on rollout host ${String(result.host)}, vector step ${vectorStep})`, envIndex, vectorStep);
    } else {
      const rows = result.rows;
      if (!Array.isArray(rows) || rows.length !== RESULT_FIELDS.length) throw new MalformedMessageError(`broker: a result on ${key} has ${Array.isArray(rows) ? rows.length : 'no'} row arrays, expected ${RESULT_FIELDS.length}`);
      RESULT_FIELDS.forEach((field, i) => {
        if (!writeResultRows(this.context.buffers, this.context.layout, field, start, end, rows[i])) {
          throw new MalformedMessageError(`broker: a result on ${key} has ${rows[i]?.length} bytes of '${field}' for envs #${start}–${end - 1}, not what their rows take`);
        }
      });
    }
    shard.doneReset[result.group] = result.reset;
    shard.doneStep[result.group] = result.step;
  }
}

/** A lost connection in a few words (ioredis' own texts name its options, which mean nothing to a user). */
function brokerFailureText(error: unknown): string {
  const text = describeRedisError(error);
  if (/max retries per request|Connection is closed/i.test(text)) return 'the connection was lost and could not be re-established';
  return text.replace(/\.$/, '');
}
