import type { Redis } from 'ioredis';
import { Observable } from 'rxjs';
import type { TrajectoryChunk } from '../../agents/experience';
import type { VectorLayout } from '../../envs/env-shape';
import type { NamedTensorData } from '../core/checkpoint-format';
import { type ChunkEnvelope, LEARNER_GROUP, asyncKeys, decodeChunk, encodeWeights, weightsTag } from '../rollout/async-protocol';
import type { Delivery } from '../rollout/experience-stream';
import { RolloutBrokerError } from '../rollout/remote-transport';
import { LEARNER_HEARTBEAT_MS, type RemoteRunSpec, keepRunAlive, registerRemoteRun, unregisterRemoteRun } from '../rollout/remote-registry';

/*
 * The learner's side of an async run (`run.remote.mode: async`): it registers the run,
 * publishes versioned weights after every update, hands acting hosts their credits, and turns
 * the chunks they send into the `Delivery<TrajectoryChunk>` items the training loop consumes
 * as it consumes a local experience stream — `ack()` is XACK + XDEL + one credit back to the
 * host that sent the chunk.
 *
 * Policy lag. A host acts with the newest weights it has loaded, so a chunk may come from a
 * policy some updates older than the learner's (lag = learner version − chunk version). Chunks
 * whose lag exceeds `max_policy_lag` are dropped (their credit returned) and counted; the rest
 * are learned from as they are: PPO's ratio is taken against the acting policy's own
 * log-probabilities (the chunk's `logp` extra) and clipped at 1 ± eps_clip, which bounds how far
 * an update follows stale data (APPO's correction; no V-trace). Lag mean/max and dropped chunks
 * are logged per log interval.
 *
 * Hosts come and go. A host that appears (its heartbeat key exists) gets `credits` tokens once
 * (recorded in the `granted` set, so a restarted learner does not grant twice); a host whose
 * heartbeat expired is forgotten with its tokens, and its chunks already in the stream are still
 * learned from. A learner restart takes a new epoch: chunks its predecessor had read but not
 * acked are claimed (XAUTOCLAIM) and discarded with their credits returned, and chunks acted
 * with another epoch's weights are dropped, since versions of two learner lives do not compare.
 */

/** The broker a run talks to when its rollouts are remote: a connection and the run's id. */
export interface RunBroker {
  redis: Redis;
  runId: string;
  /** The broker's URL without its password, for notices. */
  display?: string;
}

export interface AsyncLearnerOptions {
  /** The learner's task as chunks must match it: layout (numEnvs = the hosts' envs), index, chunk length. */
  layout: VectorLayout;
  taskIndex: number;
  chunkLength: number;
  /** How long one read blocks before host bookkeeping and stop checks run again (default 250 ms). */
  pollMs?: number;
  /** How often the learner-alive key is renewed and the registration checked (default 5 s). */
  heartbeatMs?: number;
  /** Told about hosts joining and leaving, chunks refused, and (periodically) while no host has joined. */
  onNotice?: (message: string) => void;
  /** The broker as notices name it (redacted URL). */
  brokerDisplay?: string;
  /** How often the waiting-for-hosts notice repeats (default 10 s). */
  noticeEveryMs?: number;
}

/** Lag and drop statistics of one log interval (metrics.jsonl fields). */
export interface AsyncIntervalStats {
  policy_lag_mean: number | null;
  policy_lag_max: number | null;
  chunks_dropped: number;
  chunks_rejected: number;
}

/** What summary.json says of an async run's chunks. */
export interface AsyncRunTotals {
  chunks_consumed: number;
  /** Too stale (lag beyond max_policy_lag) or acted with an earlier learner's weights. */
  chunks_dropped: number;
  /** Malformed or shaped for another config. */
  chunks_rejected: number;
  /** Read but not learned from by an earlier learner of the run (restart). */
  chunks_discarded_on_start: number;
  chunks_by_host: Record<string, number>;
}

async function brokerCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    // A broker failure (connection lost, server gone), as opposed to a bad chunk or a learner error: the run checkpoints.
    throw new RolloutBrokerError(`broker: ${what} failed: ${(error as Error).message}`);
  }
}

interface StreamEntry {
  id: string;
  host: string;
  payload: Buffer | undefined;
}

/** Parses XREADGROUP / XAUTOCLAIM entries ([id, [field, value, …]]) read with Buffer replies. */
function entriesOf(raw: unknown): StreamEntry[] {
  if (!Array.isArray(raw)) return [];
  const out: StreamEntry[] = [];
  for (const item of raw) {
    if (!Array.isArray(item) || item.length < 2) continue;
    const id = String(item[0]);
    const fields = Array.isArray(item[1]) ? (item[1] as Buffer[]) : [];
    let host = '';
    let payload: Buffer | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = String(fields[i]);
      if (name === 'host') host = String(fields[i + 1]);
      else if (name === 'chunk') payload = fields[i + 1];
    }
    out.push({ id, host, payload });
  }
  return out;
}

/** The learner end of an async run's broker: weights out, credits out, chunks in. */
export class AsyncLearnerLink {
  private epoch = 0;
  private readonly reader: Redis;
  private readonly consumer: string;
  private readonly pollMs: number;
  /** Hosts holding credits (alive, granted). */
  private readonly granted = new Set<string>();
  private lastHostCheck = 0;
  private lastPublishedVersion = -1;
  private lastWaitingNotice = 0;
  private waitingNoticed = false;
  private interval = { lagSum: 0, lagCount: 0, lagMax: -Infinity, dropped: 0, rejected: 0 };
  /** Over the run: chunks dropped for lag or epoch, refused as malformed, discarded after a restart. */
  readonly totals = { consumed: 0, dropped: 0, rejected: 0, discardedOnStart: 0 };
  /** Chunks learned from, by the host that sent them. */
  readonly consumedByHost: Record<string, number> = {};
  private closed = false;
  private heartbeat?: NodeJS.Timeout;
  /** An entry read when its stream had just been unsubscribed, for the next stream. */
  private carried?: StreamEntry;

  constructor(
    private readonly redis: Redis,
    private readonly spec: RemoteRunSpec,
    private readonly options: AsyncLearnerOptions,
  ) {
    this.reader = redis.duplicate();
    // Failures surface through the commands; an unhandled 'error' event would only be printed.
    this.reader.on('error', () => undefined);
    this.pollMs = options.pollMs ?? 250;
    this.consumer = 'learner';
  }

  private get runId(): string {
    return this.spec.runId;
  }

  /**
   * Registers the run, publishes the first weights, creates the stream and its group, grants
   * credits to hosts already waiting and discards chunks a previous learner left un-acked.
   */
  async start(models: Record<string, NamedTensorData>, version: number): Promise<void> {
    const runId = this.runId;
    this.epoch = await brokerCall('starting the run', () => this.redis.incr(asyncKeys.learnerEpoch(runId)));
    await brokerCall('registering the run', async () => {
      await keepRunAlive(this.redis, this.spec);
      await registerRemoteRun(this.redis, this.spec);
    });
    // Hosts drop (and unregister) a run whose learner-alive key lapsed: a learner that died.
    this.heartbeat = setInterval(() => void keepRunAlive(this.redis, this.spec).catch(() => undefined), this.options.heartbeatMs ?? LEARNER_HEARTBEAT_MS);
    this.heartbeat.unref();
    await this.publishWeights(models, version);
    await brokerCall('creating the chunk stream', async () => {
      try {
        await this.redis.xgroup('CREATE', asyncKeys.traj(runId), LEARNER_GROUP, '0', 'MKSTREAM');
      } catch (error) {
        if (!/BUSYGROUP/.test((error as Error).message)) throw error;
      }
    });
    await this.checkHosts(true);
    // A previous learner's read-but-unacked chunks: their learner version is gone with it.
    let cursor = '0-0';
    do {
      const reply = (await brokerCall('claiming stale chunks', () => this.redis.callBuffer('XAUTOCLAIM', asyncKeys.traj(runId), LEARNER_GROUP, this.consumer, '0', cursor, 'COUNT', '100'))) as unknown[];
      cursor = String(reply[0]);
      for (const entry of entriesOf(reply[1])) {
        await this.finish(entry);
        this.totals.discardedOnStart++;
      }
    } while (cursor !== '0-0');
    if (this.totals.discardedOnStart > 0) this.options.onNotice?.(`async run ${runId}: discarded ${this.totals.discardedOnStart} chunks an earlier learner had read but not learned from`);
  }

  /** Publishes the learner's weights as version `version` (once per version). */
  async publishWeights(models: Record<string, NamedTensorData>, version: number): Promise<void> {
    if (version === this.lastPublishedVersion) return;
    const runId = this.runId;
    const blob = encodeWeights({ epoch: this.epoch, version, models });
    const tag = weightsTag(this.epoch, version);
    await brokerCall('publishing weights', () => this.redis.multi().set(asyncKeys.weights(runId), blob).set(asyncKeys.weightsVersion(runId), tag).publish(asyncKeys.weightsVersion(runId), tag).exec());
    this.lastPublishedVersion = version;
  }

  /**
   * Grants credits to hosts that appeared and forgets hosts whose heartbeat expired (at most
   * every poll interval unless `force`).
   */
  private async checkHosts(force = false): Promise<void> {
    const now = Date.now();
    if (!force && now - this.lastHostCheck < this.pollMs) return;
    this.lastHostCheck = now;
    const runId = this.runId;
    const [known, granted] = await brokerCall('listing rollout hosts', () => Promise.all([this.redis.smembers(asyncKeys.hosts(runId)), this.redis.smembers(asyncKeys.granted(runId))]));
    const hosts = [...new Set([...known, ...granted])].sort();
    if (hosts.length === 0) return;
    const alive = await brokerCall('reading heartbeats', () => Promise.all(hosts.map((h) => this.redis.exists(asyncKeys.heartbeat(runId, h)))));
    const grantedSet = new Set(granted);
    for (const [i, host] of hosts.entries()) {
      const credits = asyncKeys.credits(runId, host);
      if (alive[i] === 1) {
        if (!grantedSet.has(host)) {
          const tokens = Array.from({ length: this.spec.credits }, () => '1');
          await brokerCall('granting credits', () => this.redis.multi().sadd(asyncKeys.granted(runId), host).del(credits).rpush(credits, ...tokens).exec());
          this.options.onNotice?.(`async run ${runId}: rollout host ${host} joined (${this.spec.credits} credits)`);
        }
        this.granted.add(host);
      } else {
        await brokerCall('forgetting a host', () => this.redis.multi().srem(asyncKeys.granted(runId), host).srem(asyncKeys.hosts(runId), host).del(credits).exec());
        if (this.granted.delete(host) || grantedSet.has(host)) this.options.onNotice?.(`async run ${runId}: rollout host ${host} left (heartbeat gone); its credits are forgotten, its chunks in the stream are still used`);
      }
    }
  }

  /** XACK + XDEL the entry and give its host one credit back (if the host is still alive and granted). */
  private async finish(entry: StreamEntry): Promise<void> {
    const runId = this.runId;
    const traj = asyncKeys.traj(runId);
    const tx = this.redis.multi().xack(traj, LEARNER_GROUP, entry.id).xdel(traj, entry.id);
    if (this.granted.has(entry.host)) tx.rpush(asyncKeys.credits(runId, entry.host), '1');
    await brokerCall('acknowledging a chunk', () => tx.exec());
  }

  private async readOne(): Promise<StreamEntry | undefined> {
    const reply = (await brokerCall('reading chunks', () =>
      this.reader.callBuffer('XREADGROUP', 'GROUP', LEARNER_GROUP, this.consumer, 'COUNT', '1', 'BLOCK', String(this.pollMs), 'STREAMS', asyncKeys.traj(this.runId), '>'),
    )) as unknown;
    if (!Array.isArray(reply) || reply.length === 0) return undefined;
    const [, entries] = reply[0] as [unknown, unknown];
    return entriesOf(entries)[0];
  }

  /**
   * `items` chunks fit to learn from, one at a time: the next one is read only after the
   * previous was acked, so `learnerVersion()` at read time is the version that learns from it.
   * Completes early (fewer items) when `shouldStop()` turns true while waiting.
   */
  chunks(args: { items: number; learnerVersion: () => number; shouldStop?: () => boolean }): Observable<Delivery<TrajectoryChunk>> {
    const { layout, taskIndex, chunkLength } = this.options;
    return new Observable<Delivery<TrajectoryChunk>>((subscriber) => {
      let stopped = false;
      let wakeAck: (() => void) | undefined;
      const produce = async () => {
        let emitted = 0;
        while (!stopped && emitted < args.items) {
          await this.checkHosts();
          if (args.shouldStop?.()) break;
          const entry = this.carried ?? (await this.readOne());
          this.carried = undefined;
          if (!entry) {
            this.noticeWaiting();
            continue;
          }
          if (stopped) {
            // Read after the consumer let go: the next stream starts with it, so its credit is not lost.
            this.carried = entry;
            break;
          }
          let decoded: ChunkEnvelope;
          try {
            if (!entry.payload) throw new Error("the entry has no 'chunk' field");
            decoded = decodeChunk(entry.payload, layout, taskIndex, chunkLength);
          } catch (error) {
            this.interval.rejected++;
            this.totals.rejected++;
            this.options.onNotice?.(`async run ${this.runId}: refused chunk ${entry.id} of host '${entry.host}': ${(error as Error).message}`);
            await this.finish(entry);
            continue;
          }
          const lag = args.learnerVersion() - decoded.version;
          if (decoded.epoch !== this.epoch || lag < 0 || lag > this.spec.maxPolicyLag) {
            this.interval.dropped++;
            this.totals.dropped++;
            await this.finish(entry);
            continue;
          }
          this.interval.lagSum += lag;
          this.interval.lagCount++;
          this.interval.lagMax = Math.max(this.interval.lagMax, lag);
          let finishing: Promise<void> | undefined;
          const acked = new Promise<void>((resolve) => (wakeAck = resolve));
          subscriber.next({
            item: decoded.chunk,
            ack: () => {
              if (finishing) return;
              finishing = this.finish(entry);
              wakeAck?.();
            },
          });
          emitted++;
          this.totals.consumed++;
          this.consumedByHost[decoded.host] = (this.consumedByHost[decoded.host] ?? 0) + 1;
          await acked;
          wakeAck = undefined;
          if (finishing) await finishing;
        }
        if (!stopped) subscriber.complete();
      };
      produce().catch((error: unknown) => {
        if (!stopped) subscriber.error(error);
      });
      return () => {
        stopped = true;
        wakeAck?.();
      };
    });
  }

  /** While no host has joined, says so (at once, then every `noticeEveryMs`) with the command that starts one. */
  private noticeWaiting(): void {
    if (this.granted.size > 0 || !this.options.onNotice) return;
    const now = Date.now();
    if (this.waitingNoticed && now - this.lastWaitingNotice < (this.options.noticeEveryMs ?? 10000)) return;
    const start = `troupe rollout --broker ${this.options.brokerDisplay ?? '<broker URL>'}`;
    this.options.onNotice(this.waitingNoticed ? `async run ${this.runId}: still waiting for rollout hosts (start: ${start})` : `waiting for rollout hosts (start: ${start})`);
    this.waitingNoticed = true;
    this.lastWaitingNotice = now;
  }

  /** The current log interval's lag and drop statistics, then a fresh interval. */
  takeIntervalStats(): AsyncIntervalStats {
    const iv = this.interval;
    const out = {
      policy_lag_mean: iv.lagCount > 0 ? iv.lagSum / iv.lagCount : null,
      policy_lag_max: iv.lagCount > 0 ? iv.lagMax : null,
      chunks_dropped: iv.dropped,
      chunks_rejected: iv.rejected,
    };
    this.interval = { lagSum: 0, lagCount: 0, lagMax: -Infinity, dropped: 0, rejected: 0 };
    return out;
  }

  /** Totals over this learner's life, for summary.json. */
  summary(): AsyncRunTotals {
    return {
      chunks_consumed: this.totals.consumed,
      chunks_dropped: this.totals.dropped,
      chunks_rejected: this.totals.rejected,
      chunks_discarded_on_start: this.totals.discardedOnStart,
      chunks_by_host: { ...this.consumedByHost },
    };
  }

  /** Ends the link; with `unregister` the run's keys go too, which tells its hosts to stop. */
  async close(unregister: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.reader.disconnect();
    if (unregister) await brokerCall('unregistering the run', () => unregisterRemoteRun(this.redis, this.runId));
  }
}
