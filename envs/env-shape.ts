import type { EntityObservationLayout, ParallelEnv } from './parallel-env';

/**
 * A task's fixed shape, independent of how many copies of it run: its agents, the widths of
 * their observations and actions, its global state and episode facts. Agent slot i is
 * `agentIds[i]` (`possibleAgents[i]`); every observation is padded to the widest one, so all
 * agents' inputs fit one array. Networks and policies are built from a shape; acting state
 * (recurrent memory, last actions) is sized later, for the number of envs a policy acts in.
 */
export interface EnvShape {
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
  /**
   * The env's `metadata.entityObservation`: each agent's own observation is a self block of
   * `selfDim` followed by blocks of `entityDim`, one per other entity. Absent when the env does not
   * declare it. Not a fact a policy's shape must match (`shapeDifferences`): a set network reads
   * any number of blocks.
   */
  entityObservation?: EntityObservationLayout;
}

/** A shape run as `numEnvs` copies in flat arrays [env][agent][...] (a VectorEnv's buffers, a policy batch). */
export interface VectorLayout extends EnvShape {
  numEnvs: number;
}

/** The shape of `env`'s task, read from its spaces and metadata. */
export function envShape(env: ParallelEnv<unknown, unknown>): EnvShape {
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
  const entity = env.metadata.entityObservation;
  return {
    agentIds,
    numAgents: agentIds.length,
    obsDim: Math.max(...obsSpaces.map((s) => s.flatDim)),
    agentObsDims: obsSpaces.map((s) => s.flatDim),
    actDim,
    numActions: Math.max(...agentNumActions),
    agentNumActions,
    discreteActions,
    ...(discreteActions ? {} : { actionLow: boxBounds('low'), actionHigh: boxBounds('high') }),
    stateDim: env.state && env.stateSpace?.toJSON().type === 'Box' ? env.stateSpace.flatDim : 0,
    maxEpisodeSteps: env.metadata.maxEpisodeSteps,
    reportsSuccess: env.metadata.reportsSuccess === true,
    sharedTeamReward: env.metadata.teamReward === 'shared',
    numTasks: env.metadata.numTasks ?? 0,
    // Only when declared: shapes are compared and stored, and every other env's stays as it was.
    ...(entity ? { entityObservation: { selfDim: entity.selfDim, entityDim: entity.entityDim } } : {}),
  };
}

export function vectorLayout(shape: EnvShape, numEnvs: number): VectorLayout {
  if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new Error(`vectorLayout: numEnvs must be a positive integer, got ${numEnvs}`);
  return { numEnvs, ...shape };
}

/** `envShape(env)` run as `numEnvs` copies. */
export function layoutFor(env: ParallelEnv<unknown, unknown>, numEnvs: number): VectorLayout {
  return vectorLayout(envShape(env), numEnvs);
}

/** The shape part of a layout (drops `numEnvs`). */
export function shapeOf(layout: EnvShape): EnvShape {
  const { numEnvs: _numEnvs, ...shape } = layout as VectorLayout;
  return shape;
}

/**
 * The facts a network trained on one shape depends on: a policy can act in another env only
 * when all of them agree. Returns one "name a vs b" line per difference.
 */
export function shapeDifferences(trained: EnvShape, other: EnvShape): string[] {
  const facts = (s: EnvShape): Record<string, string | number | boolean> => ({
    agents: s.agentIds.join(','),
    obsDim: s.obsDim,
    numActions: s.numActions,
    actDim: s.actDim,
    discreteActions: s.discreteActions,
    stateDim: s.stateDim,
    numTasks: s.numTasks ?? 0,
  });
  const a = facts(trained);
  const b = facts(other);
  return Object.keys(a).filter((k) => a[k] !== b[k]).map((k) => `${k} ${a[k]} vs ${b[k]}`);
}
