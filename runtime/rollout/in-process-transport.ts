import { ShardCommand, type ShardRestart, type ShardTransport, type ShardTransportContext, VectorEnvError, resetSeed } from './shard-protocol';
import { EnvFailure, ShardRunner } from './shard-runner';

/**
 * The serial, reproducible runner: every env steps in the calling thread, inside `observe`
 * (on the caller's await), so there is nothing to wait for and nothing to restart.
 */
export class InProcessTransport implements ShardTransport {
  readonly name = 'in-process';
  readonly restarts: readonly ShardRestart[] = [];
  private readonly runner: ShardRunner;
  private readonly pendingEpoch: number[];

  constructor(private readonly context: ShardTransportContext) {
    this.runner = new ShardRunner(context.spec, context.layout, context.buffers, context.groupRanges, context.checks);
    this.pendingEpoch = context.groupRanges.map(() => 0);
  }

  reset(group: number, epoch: number): void {
    this.pendingEpoch[group] = epoch;
  }

  step(): void {
    // The work happens in observe(), on the caller's await.
  }

  async observe(group: number, command: ShardCommand, vectorStep: number): Promise<void> {
    const [start, end] = this.context.groupRanges[group];
    try {
      if (command === ShardCommand.Reset) this.runner.reset(resetSeed(this.context.seed, this.pendingEpoch[group]), start, end);
      else this.runner.step(start, end);
    } catch (error) {
      const failure = error instanceof EnvFailure ? error : undefined;
      throw new VectorEnvError(`${failure ? failure.message : String(error)} (vector step ${vectorStep})`, failure?.envIndex ?? -1, vectorStep);
    }
  }

  async close(): Promise<void> {
    this.runner.close();
  }
}
