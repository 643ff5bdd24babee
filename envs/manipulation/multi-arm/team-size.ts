import { deriveSeed, Rng } from '../../../runtime/core/rng';
import type { ResetArgs } from '../../parallel-env';
import type { TaskParamsBase } from '../task';
import type { MultiArmTask } from './multi-arm-task';

/**
 * How many arms take part in each episode of a multi-arm env (PettingZoo's Parallel API with a
 * varying agent set): `possibleAgents` is always arm_0 … arm_{max−1}; each reset picks a size N in
 * [min, max] and `agents` is arm_0 … arm_{N−1}, playing `taskFor(N)`. A fixed-size env is the
 * range [N, N] and draws nothing.
 */
export interface MultiArmTeam<P extends TaskParamsBase> {
  readonly min: number;
  readonly max: number;
  /** The task a team of `numArms` arms plays (its `numArms` is that size). */
  taskFor(numArms: number): MultiArmTask<P>;
}

/** The one-size team of a fixed task. */
export function fixedTeam<P extends TaskParamsBase>(task: MultiArmTask<P>): MultiArmTeam<P> {
  return { min: task.numArms, max: task.numArms, taskFor: () => task };
}

/**
 * Chooses each episode's team size: `reset({ options: { numArms } })` if given (validated against
 * the range), else a uniform draw from [min, max]. The draw has its own stream, seeded from the
 * reset seed (`<seed>/team-size`), so an episode's task configuration, drawn from the seed's main
 * stream, is the same whatever size comes up, and a fixed-size env's episodes are untouched.
 */
export class TeamSizes {
  private rng = new Rng(deriveSeed(0, 'team-size'));

  constructor(
    private readonly envId: string,
    readonly min: number,
    readonly max: number,
  ) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min) {
      throw new Error(`${envId}: the team size range must be integers 1 ≤ min ≤ max, got [${min}, ${max}]`);
    }
  }

  get varies(): boolean {
    return this.min < this.max;
  }

  next(args: ResetArgs): number {
    if (args.seed !== undefined) this.rng = new Rng(deriveSeed(args.seed, 'team-size'));
    const asked = args.options?.numArms;
    if (asked !== undefined) {
      if (typeof asked !== 'number' || !Number.isInteger(asked) || asked < this.min || asked > this.max) {
        throw new Error(`${this.envId}: invalid reset option 'numArms': expected an integer from ${this.min} to ${this.max}, got ${JSON.stringify(asked)}`);
      }
      return asked;
    }
    return this.varies ? this.min + this.rng.int(this.max - this.min + 1) : this.min;
  }
}
