import type { ParallelEnv } from '../../envs/parallel-env';

/**
 * Fixed-size description of one env's agents, so E copies can live in flat typed arrays:
 * agent slot i is `possibleAgents[i]`; every observation is padded to the largest one.
 */
export interface VectorLayout {
  numEnvs: number;
  agentIds: string[];
  numAgents: number;
  /** Padded per-agent observation length. */
  obsDim: number;
  /** Each agent's own observation length (≤ obsDim). */
  agentObsDims: number[];
  /** Numbers per agent action: 1 for Discrete, flatDim for Box/MultiDiscrete. */
  actDim: number;
  /** Discrete action count (the mask length); 0 for continuous actions. */
  numActions: number;
  /** Each agent's own action count for discrete spaces (≤ numActions). */
  agentNumActions: number[];
  discreteActions: boolean;
  /**
   * Box action bounds when every agent's action space is a Box, flat [numAgents · actDim]
   * (agent-major; a smaller agent's padding is 0), so continuous policies can clip what they
   * send. Absent for other action spaces.
   */
  actionLow?: number[];
  actionHigh?: number[];
  /** Global state length; 0 when the env has no `state()`. */
  stateDim: number;
  maxEpisodeSteps: number;
  reportsSuccess: boolean;
  /** Team reward per step: the sum of agents' rewards, or the one reward they all share. */
  sharedTeamReward: boolean;
  /**
   * Tasks of a multi-task env (`EnvMetadata.numTasks`): each agent's own observation ends with a
   * one-hot task id of this length, i.e. at [agentObsDims[a] − numTasks, agentObsDims[a]).
   * 0 or absent: a single-task env.
   */
  numTasks?: number;
}

export function layoutFor(env: ParallelEnv<unknown, unknown>, numEnvs: number): VectorLayout {
  const agentIds = [...env.possibleAgents];
  const obsSpaces = agentIds.map((a) => env.observationSpace(a));
  const actSpaces = agentIds.map((a) => env.actionSpace(a));
  // Spaces are recognised by their declared type, not by class identity: a user's module may
  // bring its own copy of troupe's classes (e.g. TypeScript sources next to the compiled package).
  const actJSON = actSpaces.map((s) => s.toJSON());
  const discreteActions = actJSON.every((j) => j.type === 'Discrete');
  if (!discreteActions && actJSON.some((j) => j.type === 'Discrete')) {
    throw new Error(`${env.metadata.id}: vector envs need all agents' action spaces to be all Discrete or all continuous`);
  }
  const agentNumActions = actJSON.map((j) => (j.type === 'Discrete' ? j.n : 0));
  const actDim = Math.max(...actSpaces.map((s) => s.flatDim));
  const boxBounds = (side: 'low' | 'high'): number[] | undefined => {
    const flat = new Array<number>(agentIds.length * actDim).fill(0);
    for (const [a, j] of actJSON.entries()) {
      if (j.type !== 'Box') return undefined;
      j[side].forEach((v, d) => (flat[a * actDim + d] = v));
    }
    return flat;
  };
  return {
    numEnvs,
    agentIds,
    numAgents: agentIds.length,
    obsDim: Math.max(...obsSpaces.map((s) => s.flatDim)),
    agentObsDims: obsSpaces.map((s) => s.flatDim),
    actDim: Math.max(...actSpaces.map((s) => s.flatDim)),
    numActions: Math.max(...agentNumActions),
    agentNumActions,
    discreteActions,
    ...(discreteActions ? {} : { actionLow: boxBounds('low'), actionHigh: boxBounds('high') }),
    stateDim: env.state && env.stateSpace?.toJSON().type === 'Box' ? env.stateSpace.flatDim : 0,
    maxEpisodeSteps: env.metadata.maxEpisodeSteps,
    reportsSuccess: env.metadata.reportsSuccess === true,
    sharedTeamReward: env.metadata.teamReward === 'shared',
    numTasks: env.metadata.numTasks ?? 0,
  };
}

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
  };
}
