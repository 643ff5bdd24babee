import type { AgentId } from './parallel-env';
import type { Space } from './spaces/space';
import { describeValue } from './spaces/space';

/*
 * Checks of what an env returns from reset/step/actionMask/state, shared by everything that
 * takes env output in (the rollout's shared buffers, later the conformance checker). Each
 * function returns undefined when the value is fine and a one-line problem otherwise, naming the
 * agent and the field and saying what was expected; the caller adds where (env, step). Nothing
 * is allocated on the fine path: these run for every agent of every env step.
 */

/** What one agent's observations are checked against; built once per agent, not per step. */
export interface ObservationCheck {
  agent: AgentId;
  space: Space<unknown>;
  /**
   * Box spaces are checked by shape only (an array-like of exactly `flatDim` numbers): their
   * bounds are advisory for many envs and checking them per step would cost more than the rest.
   */
  isBox: boolean;
  flatDim: number;
}

export function observationCheckFor(agent: AgentId, space: Space<unknown>): ObservationCheck {
  // By declared type, not class identity: a user's module may bring its own copy of the classes.
  return { agent, space, isBox: space.toJSON().type === 'Box', flatDim: space.flatDim };
}

/** The problem with agent `check.agent`'s observation `obs` before it is flattened, if any. */
export function observationProblem(check: ObservationCheck, obs: unknown): string | undefined {
  if (!check.isBox) {
    return check.space.contains(obs) ? undefined : `observation of agent '${check.agent}' is ${describeValue(obs)}, outside its observation space ${check.space.describe()}`;
  }
  if (typeof obs !== 'object' || obs === null || typeof (obs as ArrayLike<number>).length !== 'number') {
    return `observation of agent '${check.agent}' is ${describeValue(obs)}, expected an array of ${check.flatDim} numbers (observation space ${check.space.describe()})`;
  }
  const values = obs as ArrayLike<unknown>;
  if (values.length !== check.flatDim) {
    return `observation of agent '${check.agent}' has length ${values.length}, expected ${check.flatDim} (observation space ${check.space.describe()})`;
  }
  // Typed arrays hold numbers by construction; a plain array may hold anything.
  if (!ArrayBuffer.isView(obs)) {
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== 'number') return `observation of agent '${check.agent}' has ${describeValue(values[i])} at index ${i}, expected a number (observation space ${check.space.describe()})`;
    }
  }
  return undefined;
}

/** The index of the first NaN or ±Infinity in values[start, start + length), or -1. */
export function firstNonFinite(values: ArrayLike<number>, start: number, length: number): number {
  for (let i = start; i < start + length; i++) {
    const v = values[i];
    // v - v is 0 for every finite number and NaN for NaN and ±Infinity.
    if (v - v !== 0) return i - start;
  }
  return -1;
}

/** The problem with a non-finite entry found by `firstNonFinite` in an observation (already flattened). */
export function nonFiniteObservationProblem(agent: AgentId, value: number, index: number): string {
  return `observation of agent '${agent}' has ${value} at index ${index}, expected finite numbers`;
}

/** The problem with the reward of an agent that acted, if any. */
export function rewardProblem(agent: AgentId, reward: unknown, checkFinite: boolean): string | undefined {
  if (typeof reward !== 'number') {
    if (reward === undefined) return `agent '${agent}' acted but rewards has no entry for it, expected a number`;
    return `reward of agent '${agent}' is ${describeValue(reward)} (${reward === null ? 'null' : typeof reward}), expected a number`;
  }
  if (checkFinite && reward - reward !== 0) return `reward of agent '${agent}' is ${reward}, expected a finite number`;
  return undefined;
}

/** The problem with an agent's `terminations` / `truncations` entry after it acted, if any. */
export function doneFlagProblem(agent: AgentId, field: 'terminations' | 'truncations', value: unknown): string | undefined {
  if (typeof value === 'boolean' || value === 0 || value === 1) return undefined;
  if (value === undefined) return `agent '${agent}' acted but ${field} has no entry for it, expected true or false`;
  return `${field} of agent '${agent}' is ${describeValue(value)}, expected true or false`;
}

/** The problem with a live agent's action mask, if any: it must have exactly `numActions` entries and allow one. */
export function actionMaskProblem(agent: AgentId, mask: unknown, numActions: number, actionSpace: Space<unknown>): string | undefined {
  if (typeof mask !== 'object' || mask === null || typeof (mask as ArrayLike<number>).length !== 'number') {
    return `actionMask('${agent}') returned ${describeValue(mask)}, expected a Uint8Array of ${numActions} entries (action space ${actionSpace.describe()})`;
  }
  const entries = mask as ArrayLike<number>;
  if (entries.length !== numActions) {
    return `action mask of agent '${agent}' has length ${entries.length}, expected ${numActions} (action space ${actionSpace.describe()})`;
  }
  for (let k = 0; k < numActions; k++) if (entries[k]) return undefined;
  return `action mask of agent '${agent}' allows no action, but the agent is live (it must act in the next step)`;
}

/** The problem with `env.state()`, if any: `stateDim` numbers, finite unless `checkFinite` is off. */
export function stateProblem(state: unknown, stateDim: number, checkFinite: boolean, stateSpace: string): string | undefined {
  if (typeof state !== 'object' || state === null || typeof (state as ArrayLike<number>).length !== 'number') {
    return `state() returned ${describeValue(state)}, expected a Float32Array of ${stateDim} numbers (stateSpace ${stateSpace})`;
  }
  const values = state as ArrayLike<number>;
  if (values.length !== stateDim) return `state() has length ${values.length}, expected ${stateDim} (stateSpace ${stateSpace})`;
  if (!ArrayBuffer.isView(state)) {
    for (let i = 0; i < stateDim; i++) if (typeof values[i] !== 'number') return `state() has ${describeValue(values[i])} at index ${i}, expected a number`;
  }
  if (checkFinite) {
    const bad = firstNonFinite(values, 0, stateDim);
    if (bad >= 0) return `state() has ${values[bad]} at index ${bad}, expected finite numbers`;
  }
  return undefined;
}

/** The problem with what reset() / step() returned as a whole (the dicts it must hold), if any. */
export function resultShapeProblem(call: 'reset()' | 'step()', result: unknown): string | undefined {
  const fields = call === 'reset()' ? RESET_FIELDS : STEP_FIELDS;
  if (typeof result !== 'object' || result === null) return `${call} returned ${describeValue(result)}, expected { ${fields.join(', ')} }`;
  const record = result as Record<string, unknown>;
  for (const field of fields) {
    const value = record[field];
    if (typeof value !== 'object' || value === null) return `${call} returned no '${field}' dict (got ${describeValue(value)}), expected one entry per agent`;
  }
  return undefined;
}

const RESET_FIELDS = ['observations'] as const;
const STEP_FIELDS = ['observations', 'rewards', 'terminations', 'truncations'] as const;

/**
 * Counts the keys of a per-agent dict; when there are more than `known` (the number of its keys
 * that are agents of the env), names the first key that is not an agent. Cheap enough per step:
 * a for-in loop allocates nothing.
 */
export function unknownAgentKeyProblem(field: string, dict: object, known: number, isAgent: (key: string) => boolean, possibleAgents: readonly AgentId[]): string | undefined {
  let keys = 0;
  for (const _ in dict) keys++;
  if (keys <= known) return undefined;
  for (const key in dict) {
    if (!isAgent(key)) return `${field} has an entry for '${key}', which is not one of possibleAgents [${possibleAgents.join(', ')}]`;
  }
  return undefined;
}
