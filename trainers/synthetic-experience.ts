import * as tf from '@tensorflow/tfjs';
import type { EpisodeFinal, TrajectoryChunk } from '../agents/experience';
import { type Policy, type PolicyOutput, emptyContext } from '../agents/policies/policy';
import { type EnvShape, vectorLayout } from '../envs/env-shape';
import type { ParallelEnv } from '../envs/parallel-env';
import { flatten } from '../envs/spaces/flatten';
import type { Rng } from '../runtime/core/rng';
import type { Episode } from './episode-replay';
import type { ExperienceSampler } from './learner';

/*
 * Synthetic but valid experience for `troupe bench learner`: observations, states and actions
 * sampled from a task's own spaces with a seeded Rng, every action legal, so learners can be
 * timed on exactly the arrays a run would feed them without stepping envs.
 */

/** Samples observations, states, legal-action masks and actions from an env's own spaces. */
export class SpaceSampler implements ExperienceSampler {
  constructor(
    private readonly env: ParallelEnv<unknown, unknown>,
    private readonly shape: EnvShape,
    private readonly rng: Rng,
  ) {}

  /** [n, A, obsDim]: each agent's observation padded to the shape's width, as VectorEnv does. */
  obs(n: number): Float32Array {
    const { numAgents: A, obsDim, agentIds } = this.shape;
    const out = new Float32Array(n * A * obsDim);
    for (let r = 0; r < n; r++) {
      for (let a = 0; a < A; a++) {
        const space = this.env.observationSpace(agentIds[a]);
        out.set(flatten(space, space.sample(this.rng)), (r * A + a) * obsDim);
      }
    }
    return out;
  }

  /** [n, stateDim] */
  state(n: number): Float32Array {
    const { stateDim } = this.shape;
    const out = new Float32Array(n * stateDim);
    const space = this.env.stateSpace;
    if (stateDim === 0 || !space) return out;
    for (let r = 0; r < n; r++) out.set(space.sample(this.rng), r * stateDim);
    return out;
  }

  /** [n, A, numActions]: every action of each agent's own space legal, padding illegal. */
  masks(n: number): Uint8Array {
    const { numAgents: A, numActions: K, agentNumActions } = this.shape;
    const out = new Uint8Array(n * A * K);
    for (let r = 0; r < n; r++) for (let a = 0; a < A; a++) out.fill(1, (r * A + a) * K, (r * A + a) * K + agentNumActions[a]);
    return out;
  }

  reward(): number {
    // Sparse small rewards, as in foraging tasks; the values only matter for being finite.
    return this.rng.next() < 0.05 ? this.rng.next() : 0;
  }

  /** A uniform discrete action of `agent`. */
  discreteAction(agent: number): number {
    return this.rng.int(this.shape.agentNumActions[agent]);
  }
}

/**
 * Trajectory chunks as the experience stream would deliver them, acted by a learner's own
 * collection policy so its extras (log-probs, values, hidden states) match the chunk. Every
 * env's episode is truncated at the step limit; the envs' episodes are staggered so ends (and
 * their final-observation bootstraps) spread over chunks as in a real run.
 */
export class SyntheticChunks {
  private readonly remaining: Int32Array;
  private started: Uint8Array;
  private obs: Float32Array;
  private state: Float32Array;
  private index = 0;
  private step = 0;

  constructor(
    private readonly shape: EnvShape,
    private readonly numEnvs: number,
    private readonly policy: Policy,
    private readonly sampler: ExperienceSampler,
    private readonly task = 'default',
  ) {
    const E = numEnvs;
    const L = shape.maxEpisodeSteps;
    this.remaining = Int32Array.from({ length: E }, (_, e) => L - Math.floor((e * L) / E));
    this.started = new Uint8Array(E).fill(1);
    this.obs = sampler.obs(E);
    this.state = sampler.state(E);
  }

  async next(T: number): Promise<TrajectoryChunk> {
    const L = vectorLayout(this.shape, this.numEnvs);
    const { numEnvs: E, numAgents: A, obsDim, stateDim, numActions: K, actDim } = L;
    const rows = E * A;
    const context = emptyContext(E);
    const chunk: TrajectoryChunk = {
      kind: 'chunk', task: this.task, taskIndex: 0, layout: L, index: this.index++, startStep: this.step, length: T, policyVersions: new Int32Array(T),
      obs: new Float32Array(T * rows * obsDim), state: new Float32Array(T * E * stateDim), masks: this.sampler.masks(T * E),
      alive: new Uint8Array(T * rows).fill(1), episodeStart: new Uint8Array(T * E), teamSize: new Int32Array(T * E).fill(A), latent: new Float32Array(0),
      actions: new Float32Array(T * rows * actDim), extras: {}, rewards: new Float32Array(T * rows), terminated: new Uint8Array(T * rows), truncated: new Uint8Array(T * rows),
      episodeDone: new Uint8Array(T * E), episodeAborted: new Uint8Array(T * E), finals: [],
      bootstrap: { obs: new Float32Array(0), state: new Float32Array(0), alive: new Uint8Array(rows).fill(1), masks: this.sampler.masks(E), episodeStart: new Uint8Array(E), teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0) },
      episodes: [],
    };
    const finals: EpisodeFinal[] = [];
    for (let t = 0; t < T; t++) {
      chunk.obs.set(this.obs, t * rows * obsDim);
      chunk.state.set(this.state, t * E * stateDim);
      chunk.episodeStart.set(this.started, t * E);
      const actions = new Float32Array(rows * actDim);
      const out = (await this.policy.act(
        {
          obs: this.obs, state: this.state, masks: chunk.masks.subarray(t * rows * K, (t + 1) * rows * K),
          alive: chunk.alive.subarray(t * rows, (t + 1) * rows), episodeStart: this.started, layout: L, context,
        },
        actions,
      )) as PolicyOutput | undefined;
      chunk.actions.set(actions, t * rows * actDim);
      for (const [key, value] of Object.entries(out?.extras ?? {})) {
        chunk.extras[key] ??= new Float32Array(T * value.length);
        chunk.extras[key].set(value, t * value.length);
      }
      for (let i = 0; i < rows; i++) chunk.rewards[t * rows + i] = this.sampler.reward();
      this.obs = this.sampler.obs(E);
      this.state = this.sampler.state(E);
      this.started = new Uint8Array(E);
      for (let e = 0; e < E; e++) {
        if (--this.remaining[e] > 0) continue;
        // Step limit: a truncation, so GAE bootstraps from the episode's final observation.
        chunk.truncated.fill(1, (t * E + e) * A, (t * E + e + 1) * A);
        chunk.episodeDone[t * E + e] = 1;
        finals.push({ t, env: e, obs: this.sampler.obs(1), state: this.sampler.state(1) });
        this.remaining[e] = L.maxEpisodeSteps;
        this.started[e] = 1;
      }
    }
    chunk.finals = finals;
    chunk.bootstrap.obs = this.obs;
    chunk.bootstrap.state = this.state;
    chunk.bootstrap.episodeStart = this.started.slice();
    this.step += T;
    return chunk;
  }
}

/** A whole episode of discrete actions that runs to the step limit (the longest, so the costliest to learn from). */
export function syntheticEpisode(shape: EnvShape, sampler: ExperienceSampler): Episode {
  const { numAgents: A, maxEpisodeSteps: T } = shape;
  const actions = new Int32Array(T * A);
  for (let i = 0; i < T * A; i++) actions[i] = sampler.discreteAction(i % A);
  return {
    length: T,
    obs: sampler.obs(T + 1),
    state: sampler.state(T + 1),
    avail: sampler.masks(T + 1),
    alive: new Uint8Array((T + 1) * A).fill(1),
    actions,
    reward: Float32Array.from({ length: T }, () => sampler.reward()),
    terminated: new Uint8Array(T),
  };
}

/** What tf.profile reports (tfjs does not export the type by name). */
export type KernelProfile = Awaited<ReturnType<typeof tf.profile>>;

/** Set by `profileNextTimed`: where the next `timed` call hands its kernel profile. */
let profileRequest: ((profile: Promise<KernelProfile>) => void) | undefined;

/**
 * The kernels of the next `timed` call only (tf.profile around exactly the update, so a case's
 * untimed input preparation, such as acting a chunk, is not counted). The time that call
 * returns includes the profiler's overhead: callers profile outside their timed loop.
 */
export function profileNextTimed(): Promise<KernelProfile> {
  if (profileRequest) throw new Error('profileNextTimed: a profile is already waiting for its timed call');
  return new Promise((resolve) => {
    profileRequest = resolve;
  });
}

/** True while a `profileNextTimed` request has not been served (the case never called `timed`). */
export function profileRequestPending(): boolean {
  return profileRequest !== undefined;
}

/** Drops an unserved `profileNextTimed` request. */
export function cancelProfileRequest(): void {
  profileRequest = undefined;
}

/** Timing helper for bench cases: runs `fn` and returns its duration in ms. */
export function timed(fn: () => void): number {
  const start = performance.now();
  const serve = profileRequest;
  if (serve) {
    profileRequest = undefined;
    // tf.profile calls fn synchronously but records until its next microtask, which may include
    // the caller's work right after `timed`: keep only the kernels recorded by then.
    const profile = tf.profile(fn);
    const recorded = tf.engine().state.activeProfile.kernels.length;
    serve(profile.then((info) => ({ ...info, kernels: info.kernels.slice(0, recorded) })));
  } else {
    fn();
  }
  return performance.now() - start;
}
