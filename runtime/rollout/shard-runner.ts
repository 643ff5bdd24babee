import type { ParallelEnv, PerAgent } from '../../envs/parallel-env';
import type { Space } from '../../envs/spaces/space';
import { instantiateEnv } from '../../envs/env-from-spec';
import type { EnvSpec } from '../../envs/env-spec';
import { deriveSeed } from '../core/rng';
import type { VectorLayout } from '../../envs/env-shape';
import type { VectorBuffers } from './vector-buffers';

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

  /** `ranges` are the [start, end) env index ranges this shard owns (one per env group). */
  constructor(
    private readonly spec: EnvSpec,
    private readonly layout: VectorLayout,
    private readonly buffers: VectorBuffers,
    ranges: ReadonlyArray<readonly [number, number]>,
  ) {
    for (const [start, end] of ranges) for (let e = start; e < end; e++) this.envs[e] = instantiateEnv(spec);
    const probe = this.envs.find((env) => env !== undefined) ?? instantiateEnv(spec);
    this.obsSpaces = layout.agentIds.map((a) => probe.observationSpace(a));
    this.actSpaces = layout.agentIds.map((a) => probe.actionSpace(a));
    this.slotOf = new Map(layout.agentIds.map((a, i) => [a, i]));
    this.runningReturn = new Float64Array(layout.numEnvs);
    this.runningLength = new Int32Array(layout.numEnvs);
  }

  /** Resets envs [start, end) with their own derived seeds (episode-end flags are the caller's to clear). */
  reset(seed: number | string, start: number, end: number): void {
    const b = this.buffers;
    for (let e = start; e < end; e++) {
      const env = this.envs[e];
      const result = this.guard(e, () => env.reset({ seed: deriveSeed(seed, e) }));
      this.clearAgentSlots(e);
      this.writeObservations(e, result.observations, b.obs);
      this.writeLiveAgents(e, env);
      b.teamSize[e] = env.agents.length;
      if (this.layout.stateDim) this.writeState(e, env, b.state);
      this.runningReturn[e] = 0;
      this.runningLength[e] = 0;
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
      const result = this.guard(e, () => env.step(actions));
      // One pass over the fixed agent slots; tiny typed-array fill/set calls cost more than these loops.
      const shared = this.layout.sharedTeamReward;
      let teamReward = 0;
      let rewarded = false;
      for (let slot = 0; slot < A; slot++) {
        const agent = this.layout.agentIds[slot];
        const i = e * A + slot;
        const r = result.rewards[agent];
        if (r === undefined) {
          b.rewards[i] = 0;
          b.terminated[i] = 0;
          b.truncated[i] = 0;
        } else {
          b.rewards[i] = r;
          if (!shared) teamReward += r;
          else if (!rewarded) teamReward = r;
          rewarded = true;
          b.terminated[i] = result.terminations[agent] ? 1 : 0;
          b.truncated[i] = result.truncations[agent] ? 1 : 0;
        }
      }
      this.writeObservations(e, result.observations, b.obs);
      this.runningReturn[e] += teamReward;
      this.runningLength[e] += 1;

      if (env.agents.length > 0) {
        b.episodeDone[e] = 0;
        this.writeLiveAgents(e, env);
        if (stateDim) this.writeState(e, env, b.state);
        continue;
      }
      // Episode over: keep its last observation and statistics, then start the next one.
      const base = e * A * obsDim;
      b.finalObs.set(b.obs.subarray(base, base + A * obsDim), base);
      if (stateDim) this.writeState(e, env, b.finalState);
      b.episodeDone[e] = 1;
      b.episodeAborted[e] = 0;
      b.episodeReturn[e] = this.runningReturn[e];
      b.episodeLength[e] = this.runningLength[e];
      b.episodeSuccess[e] = this.layout.reportsSuccess ? successOf(result.infos) : NaN;
      this.runningReturn[e] = 0;
      this.runningLength[e] = 0;
      const next = this.guard(e, () => env.reset());
      this.writeObservations(e, next.observations, b.obs);
      this.writeLiveAgents(e, env);
      b.teamSize[e] = env.agents.length;
      if (stateDim) this.writeState(e, env, b.state);
    }
  }

  close(): void {
    for (const env of this.envs) env?.close?.();
  }

  private guard<T>(envIndex: number, run: () => T): T {
    try {
      return run();
    } catch (error) {
      const step = this.runningLength[envIndex];
      const message = error instanceof Error ? error.message : String(error);
      throw new EnvFailure(
        `env '${this.spec.id}' #${envIndex} failed at episode step ${step}: ${message}`,
        this.spec.id,
        envIndex,
        step,
      );
    }
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

  /** Writes every slot of env e: the agent's observation, or zeros when it has none. */
  private writeObservations(e: number, observations: PerAgent<unknown>, into: Float32Array): void {
    const { numAgents: A, obsDim, agentIds } = this.layout;
    for (let slot = 0; slot < A; slot++) {
      const at = (e * A + slot) * obsDim;
      const obs = observations[agentIds[slot]];
      if (obs === undefined) {
        for (let k = 0; k < obsDim; k++) into[at + k] = 0;
        continue;
      }
      const space = this.obsSpaces[slot];
      space.flattenInto(obs, into, at);
      for (let k = space.flatDim; k < obsDim; k++) into[at + k] = 0;
    }
  }

  private writeLiveAgents(e: number, env: ParallelEnv<unknown, unknown>): void {
    const { numAgents: A, numActions, agentNumActions } = this.layout;
    const b = this.buffers;
    for (let i = e * A; i < (e + 1) * A; i++) b.alive[i] = 0;
    for (const agent of env.agents) b.alive[e * A + this.slotOf.get(agent)!] = 1;
    if (!numActions) return;
    for (let slot = 0; slot < A; slot++) {
      const at = (e * A + slot) * numActions;
      if (!b.alive[e * A + slot]) {
        for (let k = 0; k < numActions; k++) b.masks[at + k] = 0;
        continue;
      }
      const mask = env.actionMask?.(this.layout.agentIds[slot]);
      const n = agentNumActions[slot];
      for (let k = 0; k < numActions; k++) b.masks[at + k] = k >= n ? 0 : mask ? mask[k] : 1;
    }
  }

  private writeState(e: number, env: ParallelEnv<unknown, unknown>, into: Float32Array): void {
    into.set(env.state!(), e * this.layout.stateDim);
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
