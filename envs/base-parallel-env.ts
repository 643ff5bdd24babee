import { Rng } from '../runtime/core/rng';
import { AgentRoster } from './agent-roster';
import type { AgentId, EnvMetadata, ParallelEnv, PerAgent, ResetArgs, ResetResult, StepResult } from './parallel-env';
import type { Space } from './spaces/space';
import { validateActions } from './validate-actions';

/** What every env built on `BaseParallelEnv` states up front. */
export interface BaseParallelEnvSetup<ObsSpace, ActSpace> {
  metadata: EnvMetadata;
  /** The possible agents in their fixed order, or a count for PettingZoo's `agent_0 … agent_{n-1}`. */
  agents: readonly AgentId[] | number;
  /** The observation space of every agent. */
  observationSpace: ObsSpace;
  /** The action space of every agent. */
  actionSpace: ActSpace;
}

// Frozen and shared, so ending an episode allocates nothing and nobody can add to it.
const NO_AGENTS: readonly AgentId[] = Object.freeze([]);

/**
 * The bookkeeping every `ParallelEnv` repeats, so that an env only writes its rules.
 *
 * The base owns `metadata`, `possibleAgents`, the live `agents`, the per-agent space lookups
 * (one observation and one action space shared by all agents; an unknown name throws, naming
 * the env's agents) and the random stream `rng`, which starts from seed 0 so that an unseeded
 * first reset is reproducible too.
 *
 * A subclass passes its metadata, agents and spaces to `super`, and implements:
 * - `reset(args)`: call `seedRng(args)` first, set up the episode drawing only from `this.rng`,
 *   call `startEpisode()` (every possible agent is live), return the first observations.
 * - `step(actions)`: `const acting = this.beginStep(actions)` (refuses a step outside an episode
 *   and validates the actions), advance the task, build the result dicts keyed by `acting`, and
 *   `return this.finishStep(result)`, which removes the agents the result terminates or truncates.
 * - `render(mode)`, and optionally `actionMask`, `state` with `stateSpace`, and `close`.
 * A reset that can throw half-way (bad options) calls `abandonEpisode()` before it changes
 * anything, so that a failed reset leaves no half-built episode to step. Envs whose agents have
 * different spaces override `observationSpace` / `actionSpace`.
 */
export abstract class BaseParallelEnv<Obs = Float32Array, Act = number, ObsSpace extends Space<Obs> = Space<Obs>, ActSpace extends Space<Act> = Space<Act>>
  implements ParallelEnv<Obs, Act>
{
  readonly metadata: EnvMetadata;
  readonly possibleAgents: readonly AgentId[];
  /** The env's only source of randomness; replaced by `seedRng`, so do not keep a reference to it. */
  protected rng = new Rng(0);

  private readonly roster: AgentRoster;
  private readonly agentObservationSpace: ObsSpace;
  private readonly agentActionSpace: ActSpace;
  private live: readonly AgentId[] = NO_AGENTS;
  /** Whether an episode was started since construction or the last `abandonEpisode`: tells "reset first" from "episode over". */
  private started = false;

  constructor(setup: BaseParallelEnvSetup<ObsSpace, ActSpace>) {
    this.metadata = setup.metadata;
    const id = setup.metadata.id;
    this.roster = typeof setup.agents === 'number' ? AgentRoster.numbered(id, setup.agents) : new AgentRoster(id, setup.agents);
    this.possibleAgents = this.roster.names;
    this.agentObservationSpace = setup.observationSpace;
    this.agentActionSpace = setup.actionSpace;
  }

  get agents(): readonly AgentId[] {
    return this.live;
  }

  observationSpace(agent: AgentId): ObsSpace {
    this.roster.indexOf(agent);
    return this.agentObservationSpace;
  }

  actionSpace(agent: AgentId): ActSpace {
    this.roster.indexOf(agent);
    return this.agentActionSpace;
  }

  abstract reset(args?: ResetArgs): ResetResult<Obs>;
  abstract step(actions: PerAgent<Act>): StepResult<Obs>;
  abstract render(mode?: string): string;

  /** The agent's position in `possibleAgents`; throws for a name that is not one of them. */
  protected indexOf(agent: AgentId): number {
    return this.roster.indexOf(agent);
  }

  /** A new stream from `args.seed`; without a seed the stream continues, so a run of episodes replays from its first seed. */
  protected seedRng(args: ResetArgs): void {
    if (args.seed !== undefined) this.rng = new Rng(args.seed);
  }

  /** Every possible agent is live. */
  protected startEpisode(): void {
    // A plain copy, not the frozen `possibleAgents`: V8 iterates frozen arrays more slowly, and every step iterates this one.
    this.live = [...this.possibleAgents];
    this.started = true;
  }

  /** No agent is live and `step` asks for a reset, as before the first one: a reset that throws half-way leaves no half-built episode to step. */
  protected abandonEpisode(): void {
    this.live = NO_AGENTS;
    this.started = false;
  }

  /** Refuses a step outside an episode (`rejectStep`), validates the actions and returns the agents that act now. */
  protected beginStep(actions: PerAgent<Act>): readonly AgentId[] {
    if (this.live.length === 0) this.rejectStep(actions);
    validateActions(this, actions);
    return this.live;
  }

  /** Throws for a step when no agent is live; override it to report that differently. */
  protected rejectStep(_actions: PerAgent<Act>): never {
    const id = this.metadata.id;
    throw new Error(this.started ? `${id}: the episode is over; call reset() before step()` : `${id}: call reset() before step()`);
  }

  /**
   * Removes from `agents` every acting agent that `result` terminates or truncates; returns `result`.
   * That reads two flags per agent, which costs a few percent of a fast env's step, so an env that
   * knows no agent leaves in this step passes `agentsLeave` false to skip it.
   */
  protected finishStep(result: StepResult<Obs>, agentsLeave = true): StepResult<Obs> {
    if (!agentsLeave) return result;
    const { terminations, truncations } = result;
    const acted = this.live;
    let leaving = 0;
    for (let k = 0; k < acted.length; k++) if (terminations[acted[k]] || truncations[acted[k]]) leaving++;
    // Agents usually all stay or all leave together; only a partial exit needs a new list.
    if (leaving === acted.length) this.live = NO_AGENTS;
    else if (leaving > 0) this.live = acted.filter((agent) => !terminations[agent] && !truncations[agent]);
    return result;
  }
}
