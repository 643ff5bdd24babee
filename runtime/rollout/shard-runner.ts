import type { ParallelEnv, PerAgent, ResetResult, StepResult } from '../../envs/parallel-env';
import type { Space } from '../../envs/spaces/space';
import { instantiateEnv } from '../../envs/env-from-spec';
import type { EnvSpec } from '../../envs/env-spec';
import { deriveSeed } from '../core/rng';
import type { VectorLayout } from '../../envs/env-shape';
import type { VectorBuffers } from './vector-buffers';
import type { EnvOutputChecks } from './shard-protocol';
import {
  type ObservationCheck,
  actionMaskProblem,
  doneFlagProblem,
  firstNonFinite,
  nonFiniteObservationProblem,
  observationCheckFor,
  observationProblem,
  resultShapeProblem,
  rewardProblem,
  stateProblem,
  unknownAgentKeyProblem,
} from '../../envs/env-output-check';

/** An env failure, located precisely enough to reproduce it. */
export class EnvFailure extends Error {
  constructor(
    message: string,
    readonly envId: string,
    readonly envIndex: number,
    readonly episodeStep: number,
  ) {
    super(message);
    this.name = 'EnvFailure';
  }
}

/**
 * Steps a contiguous range of the vector's envs and writes their results into the shared
 * buffers. The same code runs in-process and inside a worker thread, and each env's random
 * stream is derived from (seed, env index) alone, so results do not depend on the sharding.
 */
export class ShardRunner {
  /** Envs by global index (only this shard's indices are filled). */
  private readonly envs: Array<ParallelEnv<unknown, unknown>> = [];
  private readonly obsSpaces: Array<Space<unknown>>;
  private readonly actSpaces: Array<Space<unknown>>;
  private readonly slotOf: Map<string, number>;
  private readonly runningReturn: Float64Array;
  private readonly runningLength: Int32Array;
  private readonly obsChecks: ObservationCheck[];
  private readonly stateSpaceText: string;
  private readonly isAgent = (key: string): boolean => this.slotOf.has(key);
  private readonly checkFinite: boolean;

  /** `ranges` are the [start, end) env index ranges this shard owns (one per env group). */
  constructor(
    private readonly spec: EnvSpec,
    private readonly layout: VectorLayout,
    private readonly buffers: VectorBuffers,
    ranges: ReadonlyArray<readonly [number, number]>,
    private readonly checks: EnvOutputChecks = { checkFinite: true },
  ) {
    for (const [start, end] of ranges) for (let e = start; e < end; e++) this.envs[e] = instantiateEnv(spec);
    const probe = this.envs.find((env) => env !== undefined) ?? instantiateEnv(spec);
    this.obsSpaces = layout.agentIds.map((a) => probe.observationSpace(a));
    this.actSpaces = layout.agentIds.map((a) => probe.actionSpace(a));
    this.obsChecks = layout.agentIds.map((a, slot) => observationCheckFor(a, this.obsSpaces[slot]));
    this.stateSpaceText = probe.stateSpace?.describe() ?? `of ${layout.stateDim} numbers`;
    this.slotOf = new Map(layout.agentIds.map((a, i) => [a, i]));
    this.runningReturn = new Float64Array(layout.numEnvs);
    this.runningLength = new Int32Array(layout.numEnvs);
    this.checkFinite = checks.checkFinite;
  }

  /** Resets envs [start, end) with their own derived seeds (episode-end flags are the caller's to clear). */
  reset(seed: number | string, start: number, end: number): void {
    const b = this.buffers;
    for (let e = start; e < end; e++) {
      const env = this.envs[e];
      this.runningLength[e] = 0;
      const result = this.guard(e, 'reset()', () => env.reset({ seed: deriveSeed(seed, e) }));
      if (!isResetResult(result)) this.failResult(e, 0, 'reset()', result);
      this.clearAgentSlots(e);
      this.writeObservations(e, 0, result.observations, b.obs);
      this.writeLiveAgents(e, 0, env, result.observations);
      b.teamSize[e] = env.agents.length;
      if (this.layout.stateDim) this.writeState(e, 0, env, b.state);
      this.runningReturn[e] = 0;
    }
  }

  /** Steps envs [start, end) with the actions in `buffers.actions`, auto-resetting finished episodes. */
  step(start: number, end: number): void {
    const b = this.buffers;
    const { numAgents: A, actDim, obsDim, stateDim } = this.layout;
    for (let e = start; e < end; e++) {
      const env = this.envs[e];
      // A fresh literal per step: deleting keys from a reused object would push V8 into slow dictionary mode.
      const actions: PerAgent<unknown> = {};
      for (const agent of env.agents) {
        const slot = this.slotOf.get(agent)!;
        actions[agent] = this.actSpaces[slot].unflatten(b.actions, (e * A + slot) * actDim);
      }
      const actors = env.agents.length;
      const result = this.guard(e, 'step()', () => env.step(actions));
      const episodeStep = this.runningLength[e] + 1;
      if (!isStepResult(result)) this.failResult(e, episodeStep, 'step()', result);
      // One pass over the fixed agent slots; tiny typed-array fill/set calls cost more than these loops.
      const shared = this.layout.sharedTeamReward;
      const checkFinite = this.checkFinite;
      let teamReward = 0;
      let rewarded = false;
      let rewardKeys = 0;
      for (let slot = 0; slot < A; slot++) {
        const agent = this.layout.agentIds[slot];
        const i = e * A + slot;
        const r = result.rewards[agent];
        // The checks' fast paths are inline; the fail… methods build the messages.
        if (r === undefined) {
          b.rewards[i] = 0;
          b.terminated[i] = 0;
          b.truncated[i] = 0;
        } else {
          if (typeof r !== 'number' || (checkFinite && r - r !== 0)) this.failReward(e, episodeStep, slot, r);
          const terminated: unknown = result.terminations[agent];
          const truncated: unknown = result.truncations[agent];
          // Wherever a reward is, its flags are due: the dicts of a step share their keys (the agents that acted).
          if (typeof terminated !== 'boolean' || typeof truncated !== 'boolean') this.failDoneFlags(e, episodeStep, slot, terminated, truncated);
          rewardKeys++;
          b.rewards[i] = r;
          if (!shared) teamReward += r;
          else if (!rewarded) teamReward = r;
          rewarded = true;
          b.terminated[i] = terminated ? 1 : 0;
          b.truncated[i] = truncated ? 1 : 0;
        }
      }
      // Rewards for other agents than those that acted: is one missing? (The actions' keys are who acted.)
      if (rewardKeys !== actors) for (const agent in actions) if (result.rewards[agent] === undefined) this.failReward(e, episodeStep, this.slotOf.get(agent)!, undefined);
      if (countKeys(result.rewards) !== rewardKeys) this.failUnknownKey(e, episodeStep, 'rewards', result.rewards, rewardKeys);
      this.writeObservations(e, episodeStep, result.observations, b.obs);
      this.runningReturn[e] += teamReward;
      this.runningLength[e] += 1;

      if (env.agents.length > 0) {
        b.episodeDone[e] = 0;
        this.writeLiveAgents(e, episodeStep, env, result.observations);
        if (stateDim) this.writeState(e, episodeStep, env, b.state);
        continue;
      }
      // Episode over: keep its last observation and statistics, then start the next one.
      const base = e * A * obsDim;
      b.finalObs.set(b.obs.subarray(base, base + A * obsDim), base);
      if (stateDim) this.writeState(e, episodeStep, env, b.finalState);
      b.episodeDone[e] = 1;
      b.episodeAborted[e] = 0;
      b.episodeReturn[e] = this.runningReturn[e];
      b.episodeLength[e] = this.runningLength[e];
      b.episodeSuccess[e] = this.layout.reportsSuccess ? successOf(result.infos) : NaN;
      this.runningReturn[e] = 0;
      this.runningLength[e] = 0;
      const next = this.guard(e, 'reset()', () => env.reset());
      if (!isResetResult(next)) this.failResult(e, 0, 'reset()', next);
      this.writeObservations(e, 0, next.observations, b.obs);
      this.writeLiveAgents(e, 0, env, next.observations);
      b.teamSize[e] = env.agents.length;
      if (stateDim) this.writeState(e, 0, env, b.state);
    }
  }

  close(): void {
    for (const env of this.envs) env?.close?.();
  }

  /** Runs env e's reset() or step(), turning a throw into an EnvFailure that says which env and where. */
  private guard<T>(envIndex: number, call: 'reset()' | 'step()', run: () => T): T {
    try {
      return run();
    } catch (error) {
      const step = call === 'reset()' ? 0 : this.runningLength[envIndex] + 1;
      const message = error instanceof Error ? error.message : String(error);
      const where = call === 'reset()' ? 'failed in reset()' : `failed at episode step ${step}`;
      throw new EnvFailure(`${this.envName()} #${envIndex} ${where}: ${message}`, this.spec.id, envIndex, step);
    }
  }

  /** Stops on a problem found in env e's output at `episodeStep` (0: the reset), naming env, task and step. */
  private check(e: number, episodeStep: number, problem: string | undefined): void {
    if (problem === undefined) return;
    const when = episodeStep === 0 ? 'at reset (episode step 0)' : `at episode step ${episodeStep}`;
    throw new EnvFailure(`${this.envName()} #${e} ${when}: ${problem}`, this.spec.id, e, episodeStep);
  }

  private envName(): string {
    return `env '${this.spec.id}'${this.checks.task !== undefined ? ` (task '${this.checks.task}')` : ''}`;
  }

  private clearAgentSlots(e: number): void {
    const A = this.layout.numAgents;
    const b = this.buffers;
    for (let i = e * A; i < (e + 1) * A; i++) {
      b.rewards[i] = 0;
      b.terminated[i] = 0;
      b.truncated[i] = 0;
    }
  }

  /*
   * The write methods below run for every env step, so their checks are inline fast paths
   * (a compare or two) and everything that builds a message lives in the `fail…` methods: small
   * hot methods stay small enough for V8 to inline them into `step`.
   */

  /** Writes every slot of env e: the agent's observation (checked), or zeros when it has none. */
  private writeObservations(e: number, episodeStep: number, observations: PerAgent<unknown>, into: Float32Array): void {
    const { numAgents: A, obsDim, agentIds } = this.layout;
    let keys = 0;
    // The sum of every number written: NaN and ±Infinity make it non-finite (float32 values cannot overflow a float64 sum).
    let sum = 0;
    for (let slot = 0; slot < A; slot++) {
      const at = (e * A + slot) * obsDim;
      const obs = observations[agentIds[slot]];
      if (obs === undefined) {
        for (let k = 0; k < obsDim; k++) into[at + k] = 0;
        continue;
      }
      keys++;
      const check = this.obsChecks[slot];
      const n = check.flatDim;
      if (check.isBox && isTypedArrayOf(obs, n)) {
        // A Box's flattening is a copy; a loop beats TypedArray.set's call for a few dozen numbers,
        // and sums what it stored (as float32) on the way.
        const values = obs as Float32Array;
        for (let k = 0; k < n; k++) sum += into[at + k] = values[k];
      } else {
        // Plain arrays and other spaces: checked entry by entry, then flattened by their space.
        this.failObservation(e, episodeStep, slot, obs);
        this.obsSpaces[slot].flattenInto(obs, into, at);
        for (let k = 0; k < n; k++) sum += into[at + k];
      }
      for (let k = n; k < obsDim; k++) into[at + k] = 0;
    }
    if (countKeys(observations) !== keys) this.failUnknownKey(e, episodeStep, 'observations', observations, keys);
    if (this.checkFinite && sum - sum !== 0) this.failNonFiniteObservation(e, episodeStep, into);
  }

  /** Marks env e's live agents, checking each has an observation, and writes their action masks (checked). */
  private writeLiveAgents(e: number, episodeStep: number, env: ParallelEnv<unknown, unknown>, observations: PerAgent<unknown>): void {
    const { numAgents: A, numActions, agentNumActions } = this.layout;
    const b = this.buffers;
    for (let i = e * A; i < (e + 1) * A; i++) b.alive[i] = 0;
    for (const agent of env.agents) {
      const slot = this.slotOf.get(agent);
      if (slot === undefined || observations[agent] === undefined) this.failLiveAgent(e, episodeStep, agent);
      b.alive[e * A + slot!] = 1;
    }
    if (!numActions) return;
    for (let slot = 0; slot < A; slot++) {
      const at = (e * A + slot) * numActions;
      if (!b.alive[e * A + slot]) {
        for (let k = 0; k < numActions; k++) b.masks[at + k] = 0;
        continue;
      }
      const n = agentNumActions[slot];
      if (!env.actionMask) {
        for (let k = 0; k < numActions; k++) b.masks[at + k] = k >= n ? 0 : 1;
        continue;
      }
      const mask: Uint8Array | undefined = env.actionMask(this.layout.agentIds[slot]);
      if (mask == null || mask.length !== n) this.failMask(e, episodeStep, slot, mask);
      let legal = 0;
      for (let k = 0; k < numActions; k++) legal |= b.masks[at + k] = k >= n ? 0 : mask![k];
      if (!legal) this.failMask(e, episodeStep, slot, mask);
    }
  }

  private writeState(e: number, episodeStep: number, env: ParallelEnv<unknown, unknown>, into: Float32Array): void {
    const { stateDim } = this.layout;
    const state: unknown = env.state!();
    if (!isTypedArrayOf(state, stateDim)) this.check(e, episodeStep, stateProblem(state, stateDim, false, this.stateSpaceText));
    const at = e * stateDim;
    const values = state as Float32Array;
    let sum = 0;
    // Summed as stored (float32), where a finite float64 too large for float32 has become Infinity.
    for (let k = 0; k < stateDim; k++) sum += into[at + k] = values[k];
    if (this.checkFinite && sum - sum !== 0) this.check(e, episodeStep, stateProblem(into.subarray(at, at + stateDim), stateDim, true, this.stateSpaceText));
  }

  private failResult(e: number, episodeStep: number, call: 'reset()' | 'step()', result: unknown): void {
    this.check(e, episodeStep, resultShapeProblem(call, result));
  }

  private failReward(e: number, episodeStep: number, slot: number, reward: unknown): void {
    this.check(e, episodeStep, rewardProblem(this.layout.agentIds[slot], reward, this.checkFinite));
  }

  private failDoneFlags(e: number, episodeStep: number, slot: number, terminated: unknown, truncated: unknown): void {
    const agent = this.layout.agentIds[slot];
    this.check(e, episodeStep, doneFlagProblem(agent, 'terminations', terminated) ?? doneFlagProblem(agent, 'truncations', truncated));
  }

  private failObservation(e: number, episodeStep: number, slot: number, obs: unknown): void {
    this.check(e, episodeStep, observationProblem(this.obsChecks[slot], obs));
  }

  private failUnknownKey(e: number, episodeStep: number, field: string, dict: object, known: number): void {
    this.check(e, episodeStep, unknownAgentKeyProblem(field, dict, known, this.isAgent, this.layout.agentIds));
  }

  private failNonFiniteObservation(e: number, episodeStep: number, into: Float32Array): void {
    const { numAgents: A, obsDim } = this.layout;
    for (let slot = 0; slot < A; slot++) {
      const check = this.obsChecks[slot];
      const at = (e * A + slot) * obsDim;
      const bad = firstNonFinite(into, at, check.flatDim);
      if (bad >= 0) this.check(e, episodeStep, nonFiniteObservationProblem(check.agent, into[at + bad], bad));
    }
  }

  private failLiveAgent(e: number, episodeStep: number, agent: string): void {
    if (!this.slotOf.has(agent)) this.check(e, episodeStep, `env.agents contains '${agent}', which is not one of possibleAgents [${this.layout.agentIds.join(', ')}]`);
    this.check(e, episodeStep, `agent '${agent}' is live (in env.agents) but observations has no entry for it`);
  }

  private failMask(e: number, episodeStep: number, slot: number, mask: unknown): void {
    this.check(e, episodeStep, actionMaskProblem(this.layout.agentIds[slot], mask, this.layout.agentNumActions[slot], this.actSpaces[slot]));
  }
}

/**
 * Whether the episode that ended with these infos succeeded. `episode_success` (success at any
 * step, Meta-World's criterion) wins over `success` / `won`, which describe the final step.
 */
function successOf(infos: PerAgent<Record<string, unknown>>): number {
  for (const agent in infos) {
    const info = infos[agent];
    if (typeof info.episode_success === 'boolean') {
      if (info.episode_success) return 1;
      continue;
    }
    if (info.success === true || info.won === true) return 1;
  }
  return 0;
}

/**
 * Whether `value` is a typed array of `length` numbers, as cheaply as possible: an object with
 * that length that is not a plain array (ArrayBuffer.isView is a call V8 does not inline). The
 * few other objects with a numeric length it lets through leave NaN behind, which the finiteness
 * check reports.
 */
function isTypedArrayOf(value: unknown, length: number): boolean {
  return typeof value === 'object' && value !== null && (value as ArrayLike<number>).length === length && !Array.isArray(value);
}

/** The number of keys of a per-agent dict (a for-in loop allocates nothing). */
function countKeys(dict: object): number {
  let n = 0;
  for (const _ in dict) n++;
  return n;
}

/** The fast path of `resultShapeProblem('reset()', …)`: true when reset() returned its observations dict. */
function isResetResult(result: unknown): boolean {
  return typeof result === 'object' && result !== null && isDict((result as ResetResult<unknown>).observations);
}

/** The fast path of `resultShapeProblem('step()', …)`: true when step() returned all four per-agent dicts. */
function isStepResult(result: unknown): boolean {
  if (typeof result !== 'object' || result === null) return false;
  const r = result as StepResult<unknown>;
  return isDict(r.observations) && isDict(r.rewards) && isDict(r.terminations) && isDict(r.truncations);
}

function isDict(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}
