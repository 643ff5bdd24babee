import { prepareEnvSpec } from '../../envs/env-from-spec';
import { ShardCommand, resetSeed } from './shard-protocol';
import { ControlSlot, GroupSync, RING_SIZE, RING_START, ShardStatus, type ShardTask, decodeCommand } from './worker-ring';
import { EnvFailure, ShardRunner } from './shard-runner';

/**
 * Worker-thread entry (a piscina task that lives as long as its shard): owns the envs of one
 * shard, so they keep their state between steps (worker affinity), and serves the command
 * ring until told to close or an env fails.
 */
export default async function runShard(task: ShardTask): Promise<'closed' | 'failed'> {
  const { control, errorText, groupRanges, sync } = task;
  const counters = new GroupSync(task.shards);
  /** Counts a finished command; the last shard to finish the group (or a failing one) wakes the main thread. */
  const finish = (group: number, failed: boolean): void => {
    Atomics.add(sync, counters.done(task.shardIndex, group), 1);
    if (!failed && !counters.groupFinished(sync, group)) return;
    Atomics.add(sync, counters.wake(group), 1);
    Atomics.notify(sync, counters.wake(group));
  };
  // Module loading may be asynchronous (ESM, TypeScript); after this the command loop is synchronous.
  await prepareEnvSpec(task.spec);
  let runner: ShardRunner | undefined;
  let head = 0;
  for (;;) {
    const tail = Atomics.load(control, ControlSlot.CommandTail);
    if (head === tail) {
      Atomics.wait(control, ControlSlot.CommandTail, tail);
      continue;
    }
    const { command, group } = decodeCommand(Atomics.load(control, RING_START + (head % RING_SIZE)));
    head++;
    try {
      if (command === ShardCommand.Close) {
        runner?.close();
        return 'closed';
      }
      runner ??= new ShardRunner(task.spec, task.layout, task.buffers, groupRanges, task.checks);
      const [start, end] = groupRanges[group];
      if (command === ShardCommand.Reset) runner.reset(resetSeed(task.seed, Atomics.load(control, ControlSlot.ResetEpoch)), start, end);
      else runner.step(start, end);
    } catch (error) {
      const failure = error instanceof EnvFailure ? error : undefined;
      // An EnvFailure's message is the whole story; other errors keep their stack for `details`.
      const text = failure ? failure.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
      const bytes = new TextEncoder().encode(text).subarray(0, errorText.length);
      errorText.set(bytes);
      Atomics.store(control, ControlSlot.ErrorLength, bytes.length);
      Atomics.store(control, ControlSlot.ErrorEnvIndex, failure?.envIndex ?? -1);
      Atomics.store(control, ControlSlot.ErrorEpisodeStep, failure?.episodeStep ?? -1);
      Atomics.store(control, ControlSlot.Status, ShardStatus.Failed);
      finish(group, true);
      return 'failed';
    }
    finish(group, false);
  }
}

