import { OBS } from '../../../envs/manipulation/observation-layout';
import { ml1PinnedConfiguration } from '../../../envs/manipulation/register-splits';
import type { VectorLayout } from '../../../envs/env-shape';
import type { Policy, PolicyBatch } from '../policy';
import { expertFor } from './expert-registry';
import type { ExpertOptions, ManipulationExpert } from './manipulation-expert';

/**
 * The scripted expert of an ML1 env pinned to one configuration (a member of the `ML1-<kind>`
 * task family), whose goal the observation hides. It is the kind's ordinary expert, shown the
 * observation with the goal slots filled in from the configuration that the env options pin: the
 * options travel as data to every thread, so the expert knows each env's goal without any side
 * channel from the envs to the policy (as the point-robot expert). The env itself, and whatever
 * learns from the recorded data, still sees zeros there.
 *
 * Only kinds whose expert needs nothing hidden but the goal, and whose configuration holds the
 * goal the episode scores against, are listed: reach, push and pick-place (their goal is
 * `goalPosition`; the object they move is observed).
 */
const GOAL_OF: Readonly<Record<string, (params: Record<string, unknown>) => readonly number[]>> = {
  reach: (params) => params.goalPosition as readonly number[],
  push: (params) => params.goalPosition as readonly number[],
  'pick-place': (params) => params.goalPosition as readonly number[],
};

/** The kinds whose ML1 task-family members have a scripted expert. */
export function hiddenGoalExpertKinds(): string[] {
  return Object.keys(GOAL_OF);
}

/**
 * One expert per env slot, each with its own noise stream from `seedOf(e)`, so env e's actions
 * never depend on how many envs run beside it.
 */
export class HiddenGoalExpertPolicy implements Policy {
  private readonly goal: Float32Array;
  private readonly experts: ManipulationExpert[];
  private readonly view = new Float32Array(OBS.SIZE);

  constructor(
    private readonly layout: VectorLayout,
    envId: string,
    envOptions: Record<string, unknown>,
    options: Omit<ExpertOptions, 'seed'> & { seedOf: (env: number) => number | string },
  ) {
    const pinned = ml1PinnedConfiguration(envId, envOptions);
    const goalOf = GOAL_OF[pinned.kind];
    if (!goalOf) throw new Error(`${envId}: no scripted expert for a hidden ${pinned.kind} goal (hidden-goal experts: ${hiddenGoalExpertKinds().join(', ')})`);
    if (layout.numAgents !== 1 || layout.obsDim !== OBS.SIZE || layout.actDim !== 4) {
      throw new Error(`${envId}: the ${pinned.kind} expert expects one arm with a ${OBS.SIZE}-number observation and 4 action numbers, the env has ${layout.numAgents} agent(s), obsDim ${layout.obsDim}, actDim ${layout.actDim}`);
    }
    this.goal = Float32Array.from(goalOf(pinned.params as unknown as Record<string, unknown>));
    const { seedOf, ...expertOptions } = options;
    this.experts = Array.from({ length: layout.numEnvs }, (_, e) => expertFor(pinned.kind, { ...expertOptions, seed: seedOf(e) }));
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    for (let e = 0; e < this.layout.numEnvs; e++) {
      if (!batch.alive[e]) continue;
      this.view.set(batch.obs.subarray(e * OBS.SIZE, (e + 1) * OBS.SIZE));
      this.view.set(this.goal, OBS.GOAL);
      actions.set(this.experts[e].act(this.view), e * 4);
    }
  }
}
