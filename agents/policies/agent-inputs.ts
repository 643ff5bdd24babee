import type { EnvShape } from '../../envs/env-shape';

/**
 * The input row of a per-agent network: the agent's (padded) observation, then optionally the
 * one-hot of its last action (EPyMARL's `obs_last_action`) and the one-hot of its slot
 * (`obs_agent_id`, what lets one shared network tell agents apart).
 */
export interface AgentInputSpec {
  obsDim: number;
  /** Length of the last-action one-hot (the action count), 0 without it. */
  lastActionDim: number;
  /** Length of the agent-id one-hot (the agent count), 0 without it. */
  agentIdDim: number;
}

/** No action yet (an episode's first step): the last-action one-hot stays zero. */
export const NO_ACTION = -1;

export function agentInputSpec(shape: EnvShape, options: { obsLastAction: boolean; obsAgentId: boolean }): AgentInputSpec {
  return {
    obsDim: shape.obsDim,
    lastActionDim: options.obsLastAction ? shape.numActions : 0,
    agentIdDim: options.obsAgentId ? shape.numAgents : 0,
  };
}

export function inputWidth(spec: AgentInputSpec): number {
  return spec.obsDim + spec.lastActionDim + spec.agentIdDim;
}

/**
 * Writes agent `agent`'s row at `at` of `out`, which must be zero there: its observation from
 * `obs` at `obsAt`, the one-hot of `lastAction` (none for NO_ACTION) and of its slot.
 */
export function writeAgentInput(out: Float32Array, at: number, spec: AgentInputSpec, obs: Float32Array, obsAt: number, lastAction: number, agent: number): void {
  out.set(obs.subarray(obsAt, obsAt + spec.obsDim), at);
  if (spec.lastActionDim > 0 && lastAction >= 0) out[at + spec.obsDim + lastAction] = 1;
  if (spec.agentIdDim > 0) out[at + spec.obsDim + spec.lastActionDim + agent] = 1;
}

/**
 * Rows [n·A, width] for n env-rows of observations [n, A, obsDim] and last actions [n·A]
 * (row r is agent r mod A).
 */
export function agentInputs(spec: AgentInputSpec, obs: Float32Array, lastActions: ArrayLike<number>, n: number, numAgents: number): Float32Array {
  const D = inputWidth(spec);
  const out = new Float32Array(n * numAgents * D);
  for (let r = 0; r < n * numAgents; r++) writeAgentInput(out, r * D, spec, obs, r * spec.obsDim, lastActions[r], r % numAgents);
  return out;
}
