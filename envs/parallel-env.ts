import type { Box } from './spaces/box';
import type { Space } from './spaces/space';

/** Agents are named by strings such as `agent_0`, as in PettingZoo. */
export type AgentId = string;

/** One value per agent. */
export type PerAgent<T> = Record<AgentId, T>;

/** Free-form diagnostic information for one agent (never needed to act). */
export type AgentInfo = Record<string, unknown>;

export interface ResetArgs {
  /**
   * Seeds the env's private random stream. Omit it on later resets to continue the stream,
   * so a sequence of episodes is reproducible from the first seed alone.
   */
  seed?: number | string;
  /** Scenario options for this episode (env specific). */
  options?: Record<string, unknown>;
}

export interface ResetResult<Obs> {
  /** One observation per live agent, each inside `observationSpace(agent)`. */
  observations: PerAgent<Obs>;
  infos: PerAgent<AgentInfo>;
}

export interface StepResult<Obs> {
  /**
   * Keyed by exactly the agents that acted in this step (the live agents before the step),
   * including agents that terminated or were truncated by it: their last observation.
   */
  observations: PerAgent<Obs>;
  rewards: PerAgent<number>;
  /** The agent reached a terminal state of the task (died, finished); it leaves `agents`. */
  terminations: PerAgent<boolean>;
  /** The episode was cut short from outside the task (time limit); the agent leaves `agents`. */
  truncations: PerAgent<boolean>;
  infos: PerAgent<AgentInfo>;
}

export interface EnvMetadata {
  /** Registry id that made this env, e.g. `lbf-8x8-2p-2f-coop`. */
  id: string;
  /** Family, e.g. `gridworld/lbf`. */
  family: string;
  /** Step limit after which all agents are truncated. */
  maxEpisodeSteps: number;
  /** Whether `info.success` / `info.won` is reported at the end of an episode (win rate). */
  reportsSuccess?: boolean;
  /**
   * How a step's team reward is formed from the agents' rewards: `sum` (default) when agents earn
   * their own rewards (LBF; EPyMARL sums them), `shared` when every agent receives the same team
   * reward (SMAC-style), which then counts once.
   */
  teamReward?: 'sum' | 'shared';
  /**
   * Multi-task envs (Meta-World's MT10/MT50 style): the number of tasks, when the env appends a
   * one-hot task id as the last `numTasks` entries of every agent's observation. Multi-task
   * learners (SAC's `multi_head`, `per_task_alpha`) read the task from there. Absent: 0.
   */
  numTasks?: number;
  /**
   * Observations made of entities (MPE-style scenarios such as `resource-N`): every agent's
   * observation is a self block of `selfDim` numbers followed by k ≥ 0 blocks of `entityDim`
   * numbers, one per other entity, k = (observation length − selfDim) / entityDim. Networks that
   * read sets (permutation-invariant ones that act for any number of agents) may rely on it.
   * `troupe check-env` verifies it when present. Absent: the observation is one flat vector.
   */
  entityObservation?: EntityObservationLayout;
  description?: string;
}

/** See `EnvMetadata.entityObservation`. */
export interface EntityObservationLayout {
  /** Numbers in the agent's own block at the start of its observation (a positive integer). */
  selfDim: number;
  /** Numbers in each following entity block (a positive integer). */
  entityDim: number;
}

/**
 * The multi-agent environment contract of troupe, modelled on PettingZoo's Parallel API:
 * all live agents act at once and receive results at once.
 *
 * Rules (enforced by `troupe check-env`):
 * - `possibleAgents` never changes; `agents` is the live subset. After `reset` it lists the
 *   agents that start the episode; an agent leaves it when it is terminated or truncated and
 *   never comes back before the next `reset`. When `agents` is empty the episode is over.
 * - `step(actions)` takes exactly one action for every live agent and none for any other
 *   agent. An action outside `actionSpace(agent)` or masked out by `actionMask(agent)`, a
 *   missing action, or an action for an agent that is not live throws an error that names
 *   the agent, the action and the space (use `validateActions`).
 * - Every returned dict is keyed by the agents that acted. Observations lie in their spaces,
 *   rewards are finite numbers, terminations and truncations are booleans.
 * - The same seed and the same actions give the same episode, bit for bit. All randomness
 *   comes from a `Rng` seeded in `reset({ seed })`.
 */
export interface ParallelEnv<Obs = Float32Array, Act = number> {
  readonly metadata: EnvMetadata;
  /** Every agent that may ever take part, in a fixed order. */
  readonly possibleAgents: readonly AgentId[];
  /** The agents that are live now. */
  readonly agents: readonly AgentId[];

  observationSpace(agent: AgentId): Space<Obs>;
  actionSpace(agent: AgentId): Space<Act>;

  reset(args?: ResetArgs): ResetResult<Obs>;
  step(actions: PerAgent<Act>): StepResult<Obs>;

  /**
   * For discrete action spaces: which actions are legal now for a live agent
   * (1 = allowed, length `n`). Omit it when every action is always legal.
   */
  actionMask?(agent: AgentId): Uint8Array;

  /** The global state for centralised critics (MAPPO, QMIX), inside `stateSpace`. */
  state?(): Float32Array;
  readonly stateSpace?: Box;

  /** A text picture of the current state (`ansi`), or another mode the env supports. */
  render(mode?: string): string;

  /** Releases resources held by the env. */
  close?(): void;
}

/** Builds an env from options; what `registerEnv` stores. */
export type EnvFactory<Obs = Float32Array, Act = number> = (options: Record<string, unknown>) => ParallelEnv<Obs, Act>;
