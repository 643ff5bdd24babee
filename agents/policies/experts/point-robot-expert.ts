import { POINT_ROBOT_MAX_STEP, type Point2, parsePointRobotOptions } from '../../../envs/navigation/point-robot';
import type { VectorLayout } from '../../../envs/env-shape';
import { Rng, deriveSeed } from '../../../runtime/core/rng';
import type { Policy, PolicyBatch } from '../policy';

/**
 * The scripted expert of `point-robot`: each step it moves as far toward the goal as the action box
 * allows, i.e. it clips (goal − position) into [−0.1, 0.1]² per axis. That is the point of the box
 * nearest the goal, so every step ends as close to the goal as any action could bring it, and the
 * return (minus the sum of those distances) is the best possible. Optional Gaussian noise of
 * standard deviation `noise` (in action units, the box is ±0.1) is added before the clip, drawn from
 * the expert's own seeded stream, for datasets of mixed quality. (Meta-DT's own point-robot data
 * came from SAC agents, not from a scripted expert.)
 *
 * The goal is not in the observation (that is the task: a meta-learner must infer it from
 * rewards), so the expert cannot act from observations alone like the manipulation experts. It is
 * given the goal instead, read from the env options the env was built with: the env's goal is
 * fixed by those options (`task` or `goal`), and they travel as data to every thread, so the
 * expert knows each env's goal without any side channel from the envs to the policy.
 */
export class PointRobotExpert {
  private readonly rng: Rng;

  constructor(
    readonly goal: Readonly<Point2>,
    readonly noise = 0,
    seed: number | string = 0,
  ) {
    if (!(noise >= 0 && Number.isFinite(noise))) throw new Error(`point-robot expert: noise must be a finite number ≥ 0, got ${noise}`);
    this.rng = new Rng(`point-robot-expert/${seed}`);
  }

  /** The action at `position`, written into `out` at `offset`. */
  actInto(position: ArrayLike<number>, out: Float32Array, offset = 0): void {
    for (let axis = 0; axis < 2; axis++) {
      const toward = this.goal[axis] - position[axis];
      const noisy = this.noise > 0 ? toward + this.noise * this.rng.normal() : toward;
      out[offset + axis] = Math.min(POINT_ROBOT_MAX_STEP, Math.max(-POINT_ROBOT_MAX_STEP, noisy));
    }
  }
}

/**
 * The expert as a vectorised `Policy` for `numEnvs` copies of the env that `envOptions` build.
 * Every env slot has its own expert whose noise stream is seeded from (seed, env index), so env
 * e's actions never depend on how many envs run beside it.
 */
export class PointRobotExpertPolicy implements Policy {
  private readonly experts: PointRobotExpert[];

  constructor(
    private readonly layout: VectorLayout,
    envOptions: Record<string, unknown>,
    options: { noise?: number; seed?: number | string } = {},
  ) {
    if (layout.numAgents !== 1 || layout.actDim !== 2 || layout.obsDim !== 2) {
      throw new Error(`point-robot expert: expected one agent with a 2-number observation and action, the env has ${layout.numAgents} agent(s), obsDim ${layout.obsDim}, actDim ${layout.actDim}`);
    }
    const { goal } = parsePointRobotOptions(envOptions);
    this.experts = Array.from({ length: layout.numEnvs }, (_, e) => new PointRobotExpert(goal, options.noise ?? 0, deriveSeed(options.seed ?? 0, e)));
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    for (let e = 0; e < this.layout.numEnvs; e++) {
      if (!batch.alive[e]) continue;
      this.experts[e].actInto(batch.obs.subarray(2 * e, 2 * e + 2), actions, 2 * e);
    }
  }
}
