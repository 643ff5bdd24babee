import type { VectorLayout } from '../../envs/env-shape';

/**
 * What a policy may condition on besides observations, per env. Collection and evaluation
 * always fill `taskIndex` and `teamSize`; `latent` is empty (latentDim 0) unless the caller
 * supplies one (a meta-learner's task representation, a population's strategy code, a
 * sweep over latents). Today's algorithms ignore the context.
 */
export interface PolicyContext {
  /** [E]: the index of each env's task in the run (0 in a single-task run). */
  readonly taskIndex: Int32Array;
  /** [E]: how many agents take part in each env's current episode (its live agents at the episode's start). */
  readonly teamSize: Int32Array;
  /** [E, latentDim]: a latent vector per env. */
  readonly latent: Float32Array;
  readonly latentDim: number;
}

/** A context for E envs of one task: `taskIndex` everywhere, team sizes zero, no latent. */
export function emptyContext(numEnvs: number, taskIndex = 0, latentDim = 0): PolicyContext {
  return {
    taskIndex: new Int32Array(numEnvs).fill(taskIndex),
    teamSize: new Int32Array(numEnvs),
    latent: new Float32Array(numEnvs * latentDim),
    latentDim,
  };
}

/**
 * What a policy sees for one vector step. The arrays are views of the VectorEnv's buffers,
 * valid only until `act` returns (or its promise settles): copy anything kept longer.
 * Layouts: obs [E, A, obsDim], state [E, stateDim], masks [E, A, numActions], alive [E, A].
 */
export interface PolicyBatch {
  readonly obs: Float32Array;
  readonly state: Float32Array;
  readonly masks: Uint8Array;
  readonly alive: Uint8Array;
  /**
   * [E]: 1 where `obs` is the first observation of an episode (after a reset or an automatic
   * one), so recurrent policies know when to clear their memory.
   */
  readonly episodeStart: Uint8Array;
  /**
   * [E, A]: the reward each agent received on the step that led to `obs`. Where `episodeStart`
   * is 1 it belongs to the episode that just ended (after an automatic reset) or means nothing
   * (after a reset). Absent where no env stepped (hand-made batches). Policies that condition on rewards (a decision transformer's returns-to-go,
   * a context encoder) read it; others ignore it.
   */
  readonly rewards?: Float32Array;
  readonly layout: VectorLayout;
  readonly context: PolicyContext;
}

/**
 * Per-agent side outputs of acting (log-probs, values, hidden states …), each laid out
 * [E, A, k] with k = length / (E·A). The stream copies them, so a policy may reuse the arrays.
 */
export type PolicyExtras = Record<string, Float32Array>;

export interface PolicyOutput {
  extras?: PolicyExtras;
}

/**
 * Acts for all E·A agent slots at once, in the main thread (SEED-RL style: envs step in
 * workers, inference is batched here). Writes [E, A, actDim] actions into `actions`, which
 * arrives zeroed; entries of dead agents are ignored by the env.
 *
 * A policy that remembers (a recurrent network's state, the last actions) is built for a fixed
 * number of envs and acts on batches of exactly that many.
 */
export interface Policy {
  act(batch: PolicyBatch, actions: Float32Array): PolicyOutput | void | Promise<PolicyOutput | void>;
}

/** A policy holding tensors or other resources of its own (one built by `buildPolicy`/`loadPolicy`). */
export interface DisposablePolicy extends Policy {
  dispose(): void;
}
