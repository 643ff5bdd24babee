import { z } from 'zod';
import { Rng } from '../../runtime/core/rng';
import type { AgentId, EnvMetadata, ParallelEnv, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { Box } from '../spaces/box';
import { parseTaskParams } from './env-options';
import { ARM_AGENT, DEFAULT_HORIZON, createManipulationEnv, type ManipulationEnv } from './manipulation-env';
import { OBS, manipulationObservationBox } from './observation-layout';
import { MANIPULATION_TASKS, sampleTaskParams } from './register';
import type { TaskParamsBase } from './task';

/**
 * One env over several manipulation task kinds (Meta-World's MT/ML benchmark envs). Each reset
 * picks a kind, uniformly with the env's Rng unless `kind` fixes it, then one of that kind's
 * `configurations` placements (drawn once, at construction, from `seed`: the same lists in every
 * thread), and builds that task's scene.
 *
 * - Observation: the 39 numbers of the single-task envs (goal zeroed unless `goalObservable`),
 *   then, with `oneHot`, a one-hot id of the kind over `kinds` (`metadata.numTasks` = kinds.length).
 *   The one-hot layout depends on `kinds` only, so an env fixed to one kind feeds the same network.
 * - Action, reward, truncation and infos are those of the kind's env; every info (reset and step)
 *   also names the kind as `task` (and its index in `kinds` as `task_index`).
 * - Reset options: `kind` (this episode's kind) or `task` (exact params, whose `kind` selects it);
 *   `setTask(params)` fixes kind and configuration for every following episode.
 * - Option `configuration` (an index into the fixed kind's list) pins every episode to that one
 *   configuration, as a task of a meta-RL task family (`ML1-<kind>`'s members): unlike `setTask`,
 *   it travels with the options, so every thread's copy and anyone who reads the options (the
 *   hidden-goal expert) agree on the configuration. `setTask` and reset options still override it.
 * - Determinism: the kind and configuration come from the env's Rng, the episode from its fresh
 *   physics world, so the same seed and actions replay the same episodes in any thread.
 */

export interface MultiTaskEnvOptions {
  id: string;
  /** The member kinds, in one-hot order. */
  kinds: string[];
  /** Play only this member kind (per-task evaluation). */
  kind?: string;
  /** Placements drawn per kind from `seed`. */
  configurations: number;
  /** Play only this configuration (index into the list of `kind`, or of the only kind) in every episode. */
  configuration?: number;
  /** Seed of the configuration lists (`sampleTaskParams(kind, configurations, seed)`). */
  seed: number | string;
  goalObservable: boolean;
  oneHot: boolean;
  horizon: number;
}

export const MULTI_TASK_FAMILY = 'manipulation/benchmarks';

const knownKind = (where: string) =>
  z.string().superRefine((kind, ctx) => {
    if (!MANIPULATION_TASKS.some((t) => t.kind === kind)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `unknown manipulation task '${kind}' (known: ${MANIPULATION_TASKS.map((t) => t.kind).join(', ')})${where}` });
    }
  });

const optionsSchema = z
  .object({
    id: z.string().default('manipulation-multi-task'),
    kinds: z
      .array(knownKind(''))
      .min(1, { message: 'expected at least one task kind' })
      .refine((kinds) => new Set(kinds).size === kinds.length, { message: 'task kinds must be distinct' }),
    kind: knownKind('').optional(),
    configurations: z.number().int().min(1).max(100_000).default(50),
    configuration: z.number().int().min(0).optional(),
    seed: z.union([z.number().finite(), z.string()]).default(0),
    goalObservable: z.boolean().default(true),
    oneHot: z.boolean().default(true),
    horizon: z.number().int().min(1).max(1_000_000).default(DEFAULT_HORIZON),
  })
  .strict();

/** The option names `createMultiTaskEnv` accepts. */
export const MULTI_TASK_OPTION_KEYS: readonly string[] = Object.keys(optionsSchema.shape);

/** Validates raw options; errors name the env and the option (with its list index). */
export function parseMultiTaskOptions(raw: Record<string, unknown>): MultiTaskEnvOptions {
  const label = typeof raw.id === 'string' ? raw.id : 'manipulation-multi-task';
  const parsed = optionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${Object.keys(optionsSchema.shape).join(', ')})`);
    }
    const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
    throw new Error(`${label}: invalid option '${path}': ${issue.message}`);
  }
  const options = parsed.data as MultiTaskEnvOptions;
  if (options.kind !== undefined && !options.kinds.includes(options.kind)) {
    throw new Error(`${label}: option 'kind' is '${options.kind}', which is not one of its tasks (${options.kinds.join(', ')})`);
  }
  if (options.configuration !== undefined) {
    if (options.kind === undefined && options.kinds.length > 1) {
      throw new Error(`${label}: option 'configuration' = ${options.configuration} indexes one kind's configurations, so it needs option 'kind' (one of ${options.kinds.join(', ')})`);
    }
    if (options.configuration >= options.configurations) {
      throw new Error(`${label}: invalid option 'configuration' = ${options.configuration}: configurations are indexed 0 to ${options.configurations - 1}`);
    }
  }
  return options;
}

interface Member {
  readonly kind: string;
  readonly env: ManipulationEnv;
  readonly configurations: readonly TaskParamsBase[];
}

export class MultiTaskManipulationEnv implements ParallelEnv<Float32Array, Float32Array> {
  readonly metadata: EnvMetadata;
  readonly possibleAgents: readonly AgentId[] = Object.freeze([ARM_AGENT]);
  readonly stateSpace: Box;
  readonly config: Readonly<MultiTaskEnvOptions>;

  private readonly observationBox: Box;
  private readonly members: Member[];
  /** Entries after the 39 single-task numbers: the one-hot (0 without `oneHot`). */
  private readonly numTasks: number;
  private rng = new Rng(0);
  private active: Member | null = null;
  /** Set by `setTask`: the kind and configuration of every episode until cleared. */
  private fixedTask: TaskParamsBase | null = null;
  /** Set by option `configuration`: what episodes play when neither `setTask` nor a reset option says otherwise. */
  private readonly pinnedTask: TaskParamsBase | null;
  private activeIndex = -1;
  private lastObservation: Float32Array | null = null;

  constructor(options: MultiTaskEnvOptions) {
    this.config = Object.freeze({ ...options, kinds: Object.freeze([...options.kinds]) as string[] });
    const { id, kinds, configurations, seed, goalObservable, horizon } = this.config;
    this.members = kinds.map((kind) => {
      const env = createManipulationEnv(MANIPULATION_TASKS.find((t) => t.kind === kind)!, { id, horizon, goalObservable });
      return { kind, env, configurations: Object.freeze(sampleTaskParams(kind, configurations, seed)) };
    });
    this.pinnedTask = this.config.configuration === undefined ? null : this.member(this.config.kind ?? kinds[0]).configurations[this.config.configuration];
    this.numTasks = options.oneHot ? kinds.length : 0;
    const base = manipulationObservationBox();
    const low = new Float32Array(OBS.SIZE + this.numTasks);
    const high = new Float32Array(OBS.SIZE + this.numTasks).fill(1);
    low.set(base.low);
    high.set(base.high);
    this.observationBox = new Box(low, high, [low.length]);
    this.stateSpace = this.observationBox;
    const fixed = options.kind === undefined ? '' : `, fixed to ${options.kind}`;
    const pinned = options.configuration === undefined ? '' : `, configuration ${options.configuration} of ${configurations}`;
    this.metadata = {
      id,
      family: MULTI_TASK_FAMILY,
      maxEpisodeSteps: horizon,
      reportsSuccess: true,
      ...(this.numTasks > 0 ? { numTasks: this.numTasks } : {}),
      description: `${kinds.length} manipulation tasks (${kinds.join(', ')})${fixed}${pinned}; goal ${goalObservable ? 'visible' : 'hidden'}${this.numTasks ? ', one-hot task id' : ''}`,
    };
  }

  get agents(): readonly AgentId[] {
    return this.active ? this.active.env.agents : [];
  }

  observationSpace(agent: AgentId): Box {
    this.checkAgent(agent);
    return this.observationBox;
  }

  actionSpace(agent: AgentId): Box {
    return this.members[0].env.actionSpace(agent);
  }

  /** The configuration list of a member kind (what resets choose from). */
  configurations(kind: string): readonly TaskParamsBase[] {
    return this.member(kind).configurations;
  }

  /** The kind of the current episode (undefined before the first reset). */
  currentKind(): string | undefined {
    return this.active?.kind;
  }

  /** The configuration of the current episode. */
  currentTask(): TaskParamsBase | undefined {
    return this.active?.env.currentTask();
  }

  /**
   * Fixes the kind and configuration of every following episode (Meta-World's `set_task`): the
   * params' `kind` must be a member. `null` returns to drawing a kind and configuration per reset
   * (or to the configuration that option `configuration` pins).
   * Reset options (`kind`, `task`) still override it for one episode.
   */
  setTask(params: TaskParamsBase | null): void {
    if (params === null) {
      this.fixedTask = null;
      return;
    }
    const kind = (params as { kind?: unknown } | undefined)?.kind;
    if (typeof kind !== 'string') throw new Error(`${this.config.id}: setTask expects task params with a 'kind' (one of ${this.config.kinds.join(', ')})`);
    this.member(kind, "setTask's 'kind'");
    this.fixedTask = parseTaskParams(MANIPULATION_TASKS.find((t) => t.kind === kind)!, params, `${this.config.id}: setTask`);
  }

  reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    if (args.seed !== undefined) this.rng = new Rng(args.seed);
    const { kind: kindOption, task: taskOption, ...rest } = args.options ?? {};
    const unknown = Object.keys(rest);
    if (unknown.length) throw new Error(`${this.config.id}: unknown reset option ${unknown.map((k) => `'${k}'`).join(', ')} (known: kind, task)`);
    let member: Member;
    let params: TaskParamsBase;
    if (taskOption !== undefined) {
      const kind = (taskOption as { kind?: unknown } | null)?.kind;
      if (typeof kind !== 'string') throw new Error(`${this.config.id}: reset option 'task' must be task params with a 'kind' (one of ${this.config.kinds.join(', ')})`);
      member = this.member(kind, "reset option 'task.kind'");
      params = parseTaskParams(MANIPULATION_TASKS.find((t) => t.kind === kind)!, taskOption, `${this.config.id}: reset option 'task'`);
    } else if (kindOption === undefined && (this.fixedTask ?? this.pinnedTask)) {
      params = (this.fixedTask ?? this.pinnedTask)!;
      member = this.member(params.kind);
    } else {
      if (kindOption !== undefined && typeof kindOption !== 'string') throw new Error(`${this.config.id}: reset option 'kind' must be a task kind (one of ${this.config.kinds.join(', ')})`);
      const kind = kindOption ?? this.config.kind;
      member = kind === undefined ? this.members[this.rng.int(this.members.length)] : this.member(kind, "reset option 'kind'");
      params = member.configurations[this.rng.int(member.configurations.length)];
    }
    // Only one physics world lives at a time: free the previous kind's before building the next.
    if (this.active && this.active !== member) this.active.env.close();
    this.active = member;
    this.activeIndex = this.members.indexOf(member);
    const result = member.env.reset({ options: { task: params } });
    const observation = this.extend(result.observations[ARM_AGENT]);
    return { observations: { [ARM_AGENT]: observation }, infos: { [ARM_AGENT]: { ...result.infos[ARM_AGENT], task: member.kind, task_index: this.activeIndex } } };
  }

  step(actions: PerAgent<Float32Array>): StepResult<Float32Array> {
    if (!this.active) throw new Error(`${this.config.id}: call reset() before step()`);
    const result = this.active.env.step(actions);
    const info = result.infos[ARM_AGENT];
    info.task = this.active.kind;
    info.task_index = this.activeIndex;
    result.observations[ARM_AGENT] = this.extend(result.observations[ARM_AGENT]);
    return result;
  }

  state(): Float32Array {
    if (!this.lastObservation) throw new Error(`${this.config.id}: call reset() before state()`);
    return Float32Array.from(this.lastObservation);
  }

  render(mode = 'ansi'): string {
    if (!this.active) return `${this.config.id}: not reset yet`;
    const inner = this.active.env.render(mode);
    return mode === 'svg' ? inner : `task ${this.active.kind} (${this.activeIndex + 1}/${this.members.length})\n${inner}`;
  }

  close(): void {
    for (const m of this.members) m.env.close();
    this.active = null;
    this.activeIndex = -1;
  }

  private extend(observation: Float32Array): Float32Array {
    let out = observation;
    if (this.numTasks > 0) {
      out = new Float32Array(OBS.SIZE + this.numTasks);
      out.set(observation);
      out[OBS.SIZE + this.activeIndex] = 1;
    }
    this.lastObservation = out;
    return out;
  }

  private member(kind: string, where = 'kind'): Member {
    const found = this.members.find((m) => m.kind === kind);
    if (!found) throw new Error(`${this.config.id}: ${where} '${kind}' is not one of its tasks (${this.config.kinds.join(', ')})`);
    return found;
  }

  private checkAgent(agent: AgentId): void {
    if (agent !== ARM_AGENT) throw new Error(`${this.config.id}: '${agent}' is not an agent of this env (agents: ${ARM_AGENT})`);
  }
}

/** Builds a multi-task env from raw options (the registry factory); needs `initPhysics()` in this thread. */
export function createMultiTaskEnv(options: Record<string, unknown>): MultiTaskManipulationEnv {
  return new MultiTaskManipulationEnv(parseMultiTaskOptions(options));
}
