import path from 'node:path';
import { Piscina } from 'piscina';
import { ShardCommand, type ShardRestart, type ShardTransport, type ShardTransportContext, VectorEnvError, abortEpisodes, shardRanges } from './shard-protocol';
import { CONTROL_SLOTS, ControlSlot, ERROR_TEXT_BYTES, GroupSync, RING_SIZE, RING_START, type ShardTask, ShardStatus, encodeCommand } from './worker-ring';

interface Shard {
  index: number;
  ranges: Array<[number, number]>;
  control: Int32Array;
  errorText: Uint8Array;
  /** Settles when the worker's task ends; `exited` is set then, `dead` too if the worker died. */
  finished: Promise<unknown>;
  exited: boolean;
  dead?: Error;
  commandsSent: number;
}

/** How long to block synchronously for a shard before yielding to the event loop (to notice dead workers). */
const SYNC_WAIT_MS = 20;

/**
 * Shards in worker threads: each of W workers owns the w-th slice of every env group for its
 * whole life (a piscina task that lives as long as its shard, so its envs keep their state),
 * writes results straight into the SharedArrayBuffer buffers, and is woken by a command word
 * and an Atomics notify (`worker-ring.ts`). The main thread sleeps on one word per group, woken
 * once by whichever shard finishes the group last. Dead or failing workers are reported, or
 * restarted from their seed with `restartOnFailure`.
 */
export class WorkerThreadTransport implements ShardTransport {
  readonly name = 'worker-threads';
  readonly restarts: ShardRestart[] = [];
  private readonly pool: Piscina;
  private readonly shards: Shard[] = [];
  private readonly counters: GroupSync;
  private readonly sync: Int32Array;
  private resetEpoch = 0;

  constructor(private readonly context: ShardTransportContext) {
    const W = context.shards;
    this.counters = new GroupSync(W);
    this.sync = new Int32Array(new SharedArrayBuffer(GroupSync.slots(W) * 4));
    this.pool = new Piscina({
      filename: path.join(__dirname, 'shard-worker.js'),
      minThreads: W,
      maxThreads: W,
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
    });
    for (let w = 0; w < W; w++) this.shards.push(this.startShard(w, shardRanges(context.groupRanges, w, W)));
  }

  reset(group: number, epoch: number): void {
    this.resetEpoch = epoch;
    for (const shard of this.shards) Atomics.store(shard.control, ControlSlot.ResetEpoch, epoch);
    this.sendToShards(this.shards, ShardCommand.Reset, group);
  }

  step(group: number): void {
    this.sendToShards(this.shards, ShardCommand.Step, group);
  }

  async observe(group: number, command: ShardCommand, vectorStep: number): Promise<void> {
    await this.awaitShards([...this.shards], command, group, vectorStep);
  }

  async close(): Promise<void> {
    for (const shard of this.shards) if (!shard.exited) this.sendCommand(shard, ShardCommand.Close, 0);
    await Promise.allSettled(this.shards.map((s) => s.finished));
    await this.pool.destroy();
  }

  private startShard(index: number, ranges: Array<[number, number]>): Shard {
    const control = new Int32Array(new SharedArrayBuffer(CONTROL_SLOTS * 4));
    control[ControlSlot.ResetEpoch] = this.resetEpoch;
    const errorText = new Uint8Array(new SharedArrayBuffer(ERROR_TEXT_BYTES));
    // A replacement shard starts counting afresh (its predecessor has exited).
    for (let g = 0; g < this.context.groupRanges.length; g++) {
      Atomics.store(this.sync, this.counters.sent(index, g), 0);
      Atomics.store(this.sync, this.counters.done(index, g), 0);
    }
    const { spec, layout, buffers, seed, checks } = this.context;
    const task: ShardTask = { spec, layout, buffers, control, sync: this.sync, shardIndex: index, shards: this.counters.shards, errorText, groupRanges: ranges, seed, checks };
    const shard: Shard = { index, ranges, control, errorText, exited: false, commandsSent: 0, finished: Promise.resolve() };
    shard.finished = this.pool.run(task).then(
      () => {
        shard.exited = true;
      },
      (error: unknown) => {
        shard.exited = true;
        shard.dead = error instanceof Error ? error : new Error(String(error));
      },
    );
    return shard;
  }

  /** Counts the command as sent to every shard first, so no worker takes the group for finished while the others are still being told. */
  private sendToShards(shards: readonly Shard[], command: ShardCommand.Reset | ShardCommand.Step, group: number): void {
    for (const shard of shards) Atomics.add(this.sync, this.counters.sent(shard.index, group), 1);
    for (const shard of shards) this.sendCommand(shard, command, group);
  }

  private sendCommand(shard: Shard, command: ShardCommand, group: number): void {
    Atomics.store(shard.control, RING_START + (shard.commandsSent % RING_SIZE), encodeCommand(command, group));
    shard.commandsSent++;
    Atomics.store(shard.control, ControlSlot.CommandTail, shard.commandsSent);
    Atomics.notify(shard.control, ControlSlot.CommandTail);
  }

  private finished(shards: readonly Shard[], group: number): boolean {
    const { sync, counters } = this;
    for (const shard of shards) if (Atomics.load(sync, counters.done(shard.index, group)) < Atomics.load(sync, counters.sent(shard.index, group))) return false;
    return true;
  }

  private async awaitShards(shards: readonly Shard[], command: ShardCommand, group: number, vectorStep: number): Promise<void> {
    const { sync } = this;
    const wake = this.counters.wake(group);
    // Fast path: block this thread (env steps take microseconds to milliseconds); the shard that
    // finishes the group last bumps the wake word, so one wake-up serves every shard.
    const deadline = performance.now() + SYNC_WAIT_MS;
    for (;;) {
      const seen = Atomics.load(sync, wake);
      if (this.finished(shards, group)) break;
      const left = deadline - performance.now();
      if (left <= 0) break;
      Atomics.wait(sync, wake, seen, left);
    }
    // Slow path: wait on the event loop too, so a worker's death (reported there) is seen.
    while (!this.finished(shards, group) && !shards.some((s) => s.exited)) {
      const waiting = Atomics.waitAsync(sync, wake, Atomics.load(sync, wake), 100);
      if (this.finished(shards, group)) break;
      await Promise.race([waiting.async ? waiting.value : Promise.resolve(), ...shards.map((s) => s.finished)]);
    }
    for (const shard of shards) {
      const done = Atomics.load(sync, this.counters.done(shard.index, group)) >= Atomics.load(sync, this.counters.sent(shard.index, group));
      if (done && Atomics.load(shard.control, ControlSlot.Status) === ShardStatus.Ok) continue;
      // A shard that failed or died; the others of the group may still be running.
      if (done || shard.exited) await this.handleFailure(shard, command, group, vectorStep);
      else await this.awaitShards([shard], command, group, vectorStep);
    }
  }

  private async handleFailure(shard: Shard, command: ShardCommand, group: number, vectorStep: number): Promise<void> {
    const { control } = shard;
    const reported = Atomics.load(control, ControlSlot.Status) === ShardStatus.Failed;
    const envIndex = reported ? Atomics.load(control, ControlSlot.ErrorEnvIndex) : -1;
    const detail = reported
      ? new TextDecoder().decode(shard.errorText.slice(0, Atomics.load(control, ControlSlot.ErrorLength)))
      : `worker thread died: ${shard.dead?.message ?? 'its task ended unexpectedly'}`;
    const envs = shard.ranges.map(([s, e]) => `#${s}–${e - 1}`).join(', ');
    const where = envIndex >= 0 ? '' : `env '${this.context.spec.id}' ${envs} (shard ${shard.index}): `;
    const message = `${where}${detail.split('\n')[0]} (vector step ${vectorStep})`;
    const canRestart = this.context.restartOnFailure && this.restarts.length < this.context.maxRestarts && command === ShardCommand.Step;
    if (!canRestart) {
      throw Object.assign(new VectorEnvError(message, envIndex >= 0 ? envIndex : shard.ranges[0][0], vectorStep), { details: detail });
    }
    await shard.finished;
    this.restarts.push({ shard: shard.index, envRanges: shard.ranges, vectorStep, error: message });
    for (const [s, e] of shard.ranges) abortEpisodes(this.context.buffers, this.context.layout, s, e);
    const replacement = this.startShard(shard.index, shard.ranges);
    this.shards[shard.index] = replacement;
    // Every group of the new shard starts fresh episodes; flags and final observations set above stay for the consumer.
    const groups = this.context.groupRanges.length;
    for (let g = 0; g < groups; g++) this.sendToShards([replacement], ShardCommand.Reset, g);
    for (let g = 0; g < groups; g++) await this.awaitShards([replacement], ShardCommand.Reset, g, vectorStep);
  }
}
