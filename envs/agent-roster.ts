import type { AgentId } from './parallel-env';

/**
 * The fixed list of an env's agents and the slot of each name. Every lookup of an agent name
 * goes through here, so an unknown name fails the same way in every env: with the env id and
 * the list of real agents.
 */
export class AgentRoster {
  readonly names: readonly AgentId[];
  // A prototype-less object: faster than a Map for a few short string keys on the step path.
  private readonly slots: Record<AgentId, number> = Object.create(null) as Record<AgentId, number>;

  constructor(
    private readonly envId: string,
    names: readonly AgentId[],
  ) {
    this.names = Object.freeze([...names]);
    this.names.forEach((name, i) => (this.slots[name] = i));
  }

  /** `agent_0 … agent_{count-1}`, PettingZoo's usual names. */
  static numbered(envId: string, count: number): AgentRoster {
    return new AgentRoster(envId, Array.from({ length: count }, (_, i) => `agent_${i}`));
  }

  /** The agent's slot; throws for a name that is not one of this env's agents. */
  indexOf(agent: AgentId): number {
    const i = this.slots[agent];
    if (i === undefined) throw new Error(`${this.envId}: '${agent}' is not an agent of this env (agents: ${this.names.join(', ')})`);
    return i;
  }
}
