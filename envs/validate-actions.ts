import type { AgentId, ParallelEnv, PerAgent } from './parallel-env';
import { describeValue } from './spaces/space';

/** Thrown for an action the env cannot accept; names the agent, the action and the space. */
export class InvalidActionError extends Error {
  constructor(
    message: string,
    readonly agent: AgentId,
    readonly action: unknown,
  ) {
    super(message);
    this.name = 'InvalidActionError';
  }
}

/**
 * Checks a step's actions against the env's live agents, action spaces and masks. Built-in
 * envs call it at the top of `step`; user envs should too, so that bad actions fail loudly
 * at the boundary instead of corrupting state.
 */
export function validateActions<Obs, Act>(env: ParallelEnv<Obs, Act>, actions: PerAgent<Act>): void {
  if (typeof actions !== 'object' || actions === null) {
    throw new InvalidActionError(`${env.metadata.id}: step() expects an object of actions keyed by agent, got ${describeValue(actions)}`, '', actions);
  }
  const live = env.agents;
  for (const agent of live) {
    if (!(agent in actions)) {
      throw new InvalidActionError(`${env.metadata.id}: no action for live agent '${agent}' (live agents: ${live.join(', ')})`, agent, undefined);
    }
  }
  // Every live agent has an action, so any extra key is an agent that may not act (counting avoids a per-step search).
  let keys = 0;
  for (const _ in actions) keys++;
  if (keys !== live.length) {
    const agent = Object.keys(actions).find((a) => !live.includes(a))!;
    const why = env.possibleAgents.includes(agent) ? 'is not live (terminated or truncated)' : 'is not an agent of this env';
    throw new InvalidActionError(`${env.metadata.id}: action ${describeValue(actions[agent])} given for agent '${agent}', which ${why}`, agent, actions[agent]);
  }
  for (const agent of live) {
    const action = actions[agent];
    const space = env.actionSpace(agent);
    if (!space.contains(action)) {
      throw new InvalidActionError(
        `${env.metadata.id}: action ${describeValue(action)} for agent '${agent}' is outside its action space ${space.describe()}`,
        agent,
        action,
      );
    }
    if (env.actionMask && typeof action === 'number') {
      const mask = env.actionMask(agent);
      // Masks are indexed from the space's first action (Discrete start).
      const start = 'start' in space && typeof space.start === 'number' ? space.start : 0;
      if (!mask[action - start]) {
        throw new InvalidActionError(
          `${env.metadata.id}: action ${action} for agent '${agent}' is masked out (mask [${Array.from(mask).join('')}] over ${space.describe()})`,
          agent,
          action,
        );
      }
    }
  }
}
