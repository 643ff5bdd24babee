import type { ParallelEnv, PerAgent } from '../envs/parallel-env';
import type { Space } from '../envs/spaces/space';
import { type EnvSpec, instantiateEnv } from './env-spec';
import { deriveSeed } from './rng';
import type { VectorBuffers, VectorLayout } from './vector-layout';

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
  private readonly envs: Array<ParallelEnv<unknown, unknown>>;
  private readonly obsSpaces: Array<Space<unknown>>;
  private readonly actSpaces: Array<Space<unknown>>;
  private readonly slotOf: Map<string, number>;
  private readonly runningReturn: Float64Array;
  private readonly runningLength: Int32Array;
  private readonly actionsDict: Array<PerAgent<unknown>>;

  constructor(
    private readonly spec: EnvSpec,
    private readonly layout: VectorLayout,
    private readonly buffers: VectorBuffers,
    readonly envStart: number,
    readonly envEnd: number,
  ) {
    const count = envEnd - envStart;
    this.envs = [];
    for (let i = 0; i < count; i++) this.envs.push(instantiateEnv(spec));
    const probe = this.envs[0];
    this.obsSpaces = layout.agentIds.map((a) => probe.observationSpace(a));
    this.actSpaces = layout.agentIds.map((a) => probe.actionSpace(a));
    this.slotOf = new Map(layout.agentIds.map((a, i) => [a, i]));
    this.runningReturn = new Float64Array(count);
    this.runningLength = new Int32Array(count);
    this.actionsDict = this.envs.map(() => ({}));
  }

  /** Resets every env with its own derived seed (episode-end flags are the caller's to clear). */
  reset(seed: number | string): void {
    const b = this.buffers;
    for (let i = 0; i < this.envs.length; i++) {
      const e = this.envStart + i;
      const env = this.envs[i];
      const result = this.guard(e, () => env.reset({ seed: deriveSeed(seed, e) }));
      this.clearAgentSlots(e);
      this.writeObservations(e, result.observations, b.obs);
      this.writeLiveAgents(e, env);
      if (this.layout.stateDim) this.writeState(e, env, b.state);
      this.runningReturn[i] = 0;
      this.runningLength[i] = 0;
    }
  }

  /** Steps every env with the actions in `buffers.actions`, auto-resetting finished episodes. */
  step(): void {
    const b = this.buffers;
    const { numAgents: A, actDim, obsDim, stateDim } = this.layout;
    for (let i = 0; i < this.envs.length; i++) {
      const e = this.envStart + i;
      const env = this.envs[i];
      const actions = this.actionsDict[i];
      for (const key in actions) delete actions[key];
      for (const agent of env.agents) {
        const slot = this.slotOf.get(agent)!;
        actions[agent] = this.actSpaces[slot].unflatten(b.actions, (e * A + slot) * actDim);
      }
      const result = this.guard(e, () => env.step(actions));
      this.clearAgentSlots(e);
      b.obs.fill(0, e * A * obsDim, (e + 1) * A * obsDim);
      let teamReward = 0;
      for (const agent in result.rewards) {
        const slot = this.slotOf.get(agent)!;
        const r = result.rewards[agent];
        b.rewards[e * A + slot] = r;
        teamReward += r;
        b.terminated[e * A + slot] = result.terminations[agent] ? 1 : 0;
        b.truncated[e * A + slot] = result.truncations[agent] ? 1 : 0;
      }
      this.writeObservations(e, result.observations, b.obs);
      this.runningReturn[i] += teamReward;
      this.runningLength[i] += 1;

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
      b.episodeReturn[e] = this.runningReturn[i];
      b.episodeLength[e] = this.runningLength[i];
      b.episodeSuccess[e] = this.layout.reportsSuccess ? successOf(result.infos) : NaN;
      this.runningReturn[i] = 0;
      this.runningLength[i] = 0;
      const next = this.guard(e, () => env.reset());
      b.obs.fill(0, base, base + A * obsDim);
      this.writeObservations(e, next.observations, b.obs);
      this.writeLiveAgents(e, env);
      if (stateDim) this.writeState(e, env, b.state);
    }
  }

  close(): void {
    for (const env of this.envs) env.close?.();
  }

  private guard<T>(envIndex: number, run: () => T): T {
    try {
      return run();
    } catch (error) {
      const step = this.runningLength[envIndex - this.envStart];
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
    b.rewards.fill(0, e * A, (e + 1) * A);
    b.terminated.fill(0, e * A, (e + 1) * A);
    b.truncated.fill(0, e * A, (e + 1) * A);
  }

  private writeObservations(e: number, observations: PerAgent<unknown>, into: Float32Array): void {
    const { numAgents: A, obsDim } = this.layout;
    for (const agent in observations) {
      const slot = this.slotOf.get(agent)!;
      this.obsSpaces[slot].flattenInto(observations[agent], into, (e * A + slot) * obsDim);
    }
  }

  private writeLiveAgents(e: number, env: ParallelEnv<unknown, unknown>): void {
    const { numAgents: A, numActions } = this.layout;
    const b = this.buffers;
    b.alive.fill(0, e * A, (e + 1) * A);
    if (numActions) b.masks.fill(0, e * A * numActions, (e + 1) * A * numActions);
    for (const agent of env.agents) {
      const slot = this.slotOf.get(agent)!;
      b.alive[e * A + slot] = 1;
      if (!numActions) continue;
      const at = (e * A + slot) * numActions;
      if (env.actionMask) b.masks.set(env.actionMask(agent), at);
      else b.masks.fill(1, at, at + this.layout.agentNumActions[slot]);
    }
  }

  private writeState(e: number, env: ParallelEnv<unknown, unknown>, into: Float32Array): void {
    into.set(env.state!(), e * this.layout.stateDim);
  }
}

function successOf(infos: PerAgent<Record<string, unknown>>): number {
  for (const agent in infos) {
    const info = infos[agent];
    if (info.success === true || info.won === true) return 1;
  }
  return 0;
}
