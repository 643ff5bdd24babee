import { OBS } from '../../../envs/manipulation/observation-layout';
import { parseBarLiftId, parseBarLiftRangeId } from '../../../envs/manipulation/register-multi-arm';
import { parseSplitEnvId } from '../../../envs/manipulation/register-splits';
import { splitKinds } from '../../../envs/manipulation/benchmark-split';
import type { Policy, PolicyBatch } from '../policy';
import { deriveSeed } from '../../../runtime/core/rng';
import type { VectorLayout } from '../../../envs/env-shape';
import { BarLiftExpert } from './bar-lift-expert';
import { expertFor, expertKinds } from './expert-registry';
import { HandoverExpert } from './handover-expert';
import type { ExpertOptions, ManipulationExpert } from './manipulation-expert';
import type { MultiArmExpert } from './multi-arm-expert';
import { POINT_ROBOT_ID } from '../../../envs/navigation/point-robot';
import { PointRobotExpertPolicy } from './point-robot-expert';
import { parseSpreadHiddenId } from '../../../envs/gridworld/spread-hidden';
import { SpreadHiddenExpertPolicy } from './spread-hidden-expert';
import { HiddenGoalExpertPolicy, hiddenGoalExpertKinds } from './hidden-goal-expert';

/** What `expertPolicyFor` takes besides the env id and layout. */
export interface ExpertPolicyOptions extends ExpertOptions {
  /**
   * The options the envs were built with (an `EnvSpec`'s `options`). Only experts whose task is
   * not in the observation read them: `point-robot`'s goal is hidden, so its expert takes the goal
   * from the options that fix it (`task`, `goal`, and the goal set's `numTasks`, `goalRange`, `goalSeed`);
   * likewise an ML1 env pinned to one configuration (`configuration`, `side`, `seed`).
   */
  envOptions?: Record<string, unknown>;
}

/**
 * The scripted experts as a vectorised `Policy`, so they run wherever a trained policy runs
 * (`troupe eval <env-id> --policy expert`, dataset collection): single-arm manipulation tasks
 * (`push`), multi-task split envs whose observation ends with the task one-hot (`MT10`,
 * `MT10/push`: the one-hot names the expert, which sees the first 39 numbers), the multi-arm
 * tasks (`handover`, `bar-lift`, `bar-lift-<N>arms`, `bar-lift-<A>to<B>arms`: one scripted team),
 * `point-robot` (its goal comes from `options.envOptions`, see `PointRobotExpertPolicy`) and
 * `spread-hidden-N` (its landmarks likewise; `noise` is there a random-action probability) and
 * `ML1-reach`, `ML1-push` and `ML1-pick-place` pinned to one configuration, as the members of
 * their task families are (the goal from the options too, see `HiddenGoalExpertPolicy`).
 *
 * Every env slot has its own expert whose noise stream is seeded from (seed, env index), so env
 * e's actions never depend on how many envs run beside it. Manipulation experts otherwise need the
 * goal in the observation: the meta-learning splits (ML1, ML10), which hide it, are refused.
 */
export function expertPolicyFor(envId: string, layout: VectorLayout, options: ExpertPolicyOptions = {}): Policy {
  const { envOptions, ...expertOptions } = options;
  const seedFor = (e: number) => deriveSeed(options.seed ?? 0, e);
  const withSeed = (e: number): ExpertOptions => ({ ...expertOptions, seed: seedFor(e) });

  if (envId === POINT_ROBOT_ID) return new PointRobotExpertPolicy(layout, { ...envOptions, id: envId }, { noise: options.noise, seed: options.seed });
  const hidden = parseSpreadHiddenId(envId);
  if (hidden) return new SpreadHiddenExpertPolicy(layout, { ...hidden, ...envOptions, id: envId }, { noise: options.noise, seed: options.seed });

  if (expertKinds().includes(envId)) {
    const experts = Array.from({ length: layout.numEnvs }, (_, e) => expertFor(envId, withSeed(e)));
    return new SingleArmExpertPolicy(layout, () => 0, [experts]);
  }

  const multiArm = multiArmExpertMaker(envId);
  if (multiArm) {
    const experts = Array.from({ length: layout.numEnvs }, (_, e) => multiArm(withSeed(e)));
    return new MultiArmExpertPolicy(layout, experts);
  }

  const split = parseSplitEnvId(envId);
  if (split) {
    if (!split.split.goalObservable) {
      if (split.split.name.startsWith('ML1-') && envOptions?.configuration !== undefined) {
        return new HiddenGoalExpertPolicy(layout, envId, envOptions, { ...expertOptions, seedOf: seedFor });
      }
      throw new Error(
        `${envId}: the scripted experts need the goal, which ${split.split.name} hides; use the MT split or the plain task id instead, ` +
          `or an ML1 env pinned to one configuration (option 'configuration', as the members of the ML1-<kind> task family are; kinds: ${hiddenGoalExpertKinds().join(', ')})`,
      );
    }
    const kinds = splitKinds(split.split, split.role);
    const numTasks = layout.numTasks ?? 0;
    if (numTasks !== kinds.length) throw new Error(`${envId}: expected a ${kinds.length}-task one-hot at the end of each observation, the env reports ${numTasks}`);
    const perKind = kinds.map((kind) => Array.from({ length: layout.numEnvs }, (_, e) => expertFor(kind, withSeed(e))));
    const oneHotStart = layout.agentObsDims[0] - numTasks;
    const kindOf = (obs: Float32Array, at: number): number => {
      for (let k = 0; k < numTasks; k++) if (obs[at + oneHotStart + k] > 0.5) return k;
      throw new Error(`${envId}: an observation has no task one-hot`);
    };
    return new SingleArmExpertPolicy(layout, kindOf, perKind);
  }

  throw new Error(`no scripted expert for env '${envId}' (experts: ${[...expertKinds(), 'handover', 'bar-lift', 'bar-lift-<N>arms', 'bar-lift-<A>to<B>arms', 'MT10', 'MT10/<kind>', POINT_ROBOT_ID, 'spread-hidden-<N>', ...hiddenGoalExpertKinds().map((k) => `ML1-${k} (option configuration)`)].join(', ')})`);
}

function multiArmExpertMaker(envId: string): ((options: ExpertOptions) => MultiArmExpert) | undefined {
  if (envId === 'handover') return (o) => new HandoverExpert(o);
  if (envId === 'bar-lift') return (o) => new BarLiftExpert(2, o);
  const arms = parseBarLiftId(envId);
  if (arms !== undefined) return (o) => new BarLiftExpert(arms, o);
  const range = parseBarLiftRangeId(envId);
  return range === undefined ? undefined : (o) => new BarLiftExpert(range, o);
}

/** One 39-number expert per env slot, chosen per step by `kindOf` (always 0 for a plain task). */
class SingleArmExpertPolicy implements Policy {
  private readonly view = new Float32Array(OBS.SIZE);

  constructor(
    private readonly layout: VectorLayout,
    private readonly kindOf: (obs: Float32Array, at: number) => number,
    private readonly experts: ManipulationExpert[][],
  ) {}

  act(batch: PolicyBatch, actions: Float32Array): void {
    const { numEnvs, numAgents, obsDim, actDim } = this.layout;
    for (let e = 0; e < numEnvs; e++) {
      for (let a = 0; a < numAgents; a++) {
        const slot = e * numAgents + a;
        if (!batch.alive[slot]) continue;
        const at = slot * obsDim;
        this.view.set(batch.obs.subarray(at, at + OBS.SIZE));
        actions.set(this.experts[this.kindOf(batch.obs, at)][e].act(this.view), slot * actDim);
      }
    }
  }
}

/** One scripted team per env slot; each arm acts from its own observation. */
class MultiArmExpertPolicy implements Policy {
  constructor(
    private readonly layout: VectorLayout,
    private readonly experts: MultiArmExpert[],
  ) {}

  act(batch: PolicyBatch, actions: Float32Array): void {
    const { numEnvs, numAgents, obsDim, actDim, agentObsDims } = this.layout;
    for (let e = 0; e < numEnvs; e++) {
      for (let a = 0; a < numAgents; a++) {
        const slot = e * numAgents + a;
        if (!batch.alive[slot]) continue;
        const at = slot * obsDim;
        const obs = batch.obs.slice(at, at + agentObsDims[a]);
        actions.set(this.experts[e].actArm(a, obs), slot * actDim);
      }
    }
  }
}
