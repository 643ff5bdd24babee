import type { VectorLayout } from '../../envs/env-shape';

/**
 * The arrays E envs read and write, indexed [env][agent][...]. Backed by SharedArrayBuffers
 * so worker threads write results in place and nothing is copied between threads.
 */
export interface VectorBuffers {
  /** Observations after the last step or reset (the next input to the policy). */
  obs: Float32Array;
  /** For envs whose episode ended this step: the last observation before the auto-reset. */
  finalObs: Float32Array;
  state: Float32Array;
  finalState: Float32Array;
  /** Actions for the next step, written by the caller. */
  actions: Float32Array;
  rewards: Float32Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  /** 1 when the agent is live and must act in the next step. */
  alive: Uint8Array;
  /** Legal discrete actions of live agents (1 = allowed). */
  masks: Uint8Array;
  /** 1 when the env's episode ended this step (and the env was reset). */
  episodeDone: Uint8Array;
  /** 1 when the episode was cut short because its worker failed and was restarted. */
  episodeAborted: Uint8Array;
  /** Team return (see `EnvMetadata.teamReward`) and length of the episode that ended this step. */
  episodeReturn: Float32Array;
  episodeLength: Int32Array;
  /** 1 / 0 for a won / lost episode, NaN when the task reports no success. */
  episodeSuccess: Float32Array;
  /** Agents taking part in each env's current episode (its live agents right after the reset). */
  teamSize: Int32Array;
}

type ArrayCtor = Float32ArrayConstructor | Uint8ArrayConstructor | Int32ArrayConstructor;

export function allocateBuffers(layout: VectorLayout, shared: boolean): VectorBuffers {
  const { numEnvs: E, numAgents: A, obsDim, actDim, numActions, stateDim } = layout;
  const make = <C extends ArrayCtor>(Ctor: C, length: number): InstanceType<C> => {
    const bytes = Math.max(1, length) * Ctor.BYTES_PER_ELEMENT;
    const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    return new Ctor(buffer as ArrayBuffer, 0, length) as InstanceType<C>;
  };
  return {
    obs: make(Float32Array, E * A * obsDim),
    finalObs: make(Float32Array, E * A * obsDim),
    state: make(Float32Array, E * stateDim),
    finalState: make(Float32Array, E * stateDim),
    actions: make(Float32Array, E * A * actDim),
    rewards: make(Float32Array, E * A),
    terminated: make(Uint8Array, E * A),
    truncated: make(Uint8Array, E * A),
    alive: make(Uint8Array, E * A),
    masks: make(Uint8Array, E * A * numActions),
    episodeDone: make(Uint8Array, E),
    episodeAborted: make(Uint8Array, E),
    episodeReturn: make(Float32Array, E),
    episodeLength: make(Int32Array, E),
    episodeSuccess: make(Float32Array, E),
    teamSize: make(Int32Array, E),
  };
}
