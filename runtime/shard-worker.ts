import { ControlSlot, ShardCommand, ShardStatus, type ShardTask } from './shard-protocol';
import { EnvFailure, ShardRunner } from './shard-runner';

/**
 * Worker-thread entry (a piscina task that lives as long as its shard): owns the envs of one
 * shard, so they keep their state between steps (worker affinity), and serves commands from
 * the control array until told to close or an env fails.
 */
export default function runShard(task: ShardTask): 'closed' | 'failed' {
  const { control, errorText } = task;
  let runner: ShardRunner | undefined;
  let lastSeq = Atomics.load(control, ControlSlot.DoneSeq);
  for (;;) {
    Atomics.wait(control, ControlSlot.CommandSeq, lastSeq);
    const seq = Atomics.load(control, ControlSlot.CommandSeq);
    if (seq === lastSeq) continue;
    lastSeq = seq;
    const command = Atomics.load(control, ControlSlot.Command) as ShardCommand;
    let status = ShardStatus.Ok;
    try {
      if (command === ShardCommand.Close) {
        runner?.close();
        finish(control, seq, status);
        return 'closed';
      }
      runner ??= new ShardRunner(task.spec, task.layout, task.buffers, task.envStart, task.envEnd);
      if (command === ShardCommand.Reset) runner.reset(task.seed);
      else runner.step();
    } catch (error) {
      status = ShardStatus.Failed;
      const failure = error instanceof EnvFailure ? error : undefined;
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      const bytes = new TextEncoder().encode(text).subarray(0, errorText.length);
      errorText.set(bytes);
      Atomics.store(control, ControlSlot.ErrorLength, bytes.length);
      Atomics.store(control, ControlSlot.ErrorEnvIndex, failure?.envIndex ?? -1);
      Atomics.store(control, ControlSlot.ErrorEpisodeStep, failure?.episodeStep ?? -1);
    }
    finish(control, seq, status);
    if (status === ShardStatus.Failed) return 'failed';
  }
}

function finish(control: Int32Array, seq: number, status: ShardStatus): void {
  Atomics.store(control, ControlSlot.Status, status);
  Atomics.store(control, ControlSlot.DoneSeq, seq);
  Atomics.notify(control, ControlSlot.DoneSeq);
}
