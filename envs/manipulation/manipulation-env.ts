import { z } from 'zod';
import { Rng } from '../../runtime/rng';
import type { AgentId, AgentInfo, EnvMetadata, ParallelEnv, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { Box } from '../spaces/box';
import { validateActions } from '../validate-actions';
import { DEFAULT_GRIPPER_CONFIG, Gripper, type GripperConfig } from './gripper';
import { OBS, manipulationObservationBox } from './observation-layout';
import { requirePhysics, type Rapier } from './physics';
import { renderManipulationSvg } from './svg-render';
import { TabletopScene } from './tabletop';
import type { ManipulationTask, StepView, TaskEpisode, TaskEvaluation, TaskParamsBase } from './task';
import { formatVec3 } from './vec3';

/**
 * The single-arm manipulation env shared by every task of the family (Meta-World's SawyerXYZEnv
 * in spirit): one agent, `arm_0`, drives a gripper over a tabletop simulated by Rapier.
 *
 * - Observation: Box(39), Meta-World's layout (see observation-layout.ts): current frame, previous
 *   frame, goal (zeros when `goalObservable` is false). Values are clamped into the Box's finite
 *   bounds (the table's rims keep objects well inside them).
 * - Action: Box(-1, 1, [4]) = TCP delta (× 1 cm) and gripper effort (positive closes); see
 *   gripper.ts for the motion and the grasp rule. Out-of-space or NaN actions throw (trainers clip).
 * - Reward in [0, 10] from the task (Meta-World v2 shaping). Episodes never terminate; they are
 *   truncated after `horizon` steps (default 200).
 * - Each step's info: `success` (the task's criterion now), `episode_success` (success at any step
 *   so far: the episode's success for evaluation), `near_object`, `grasp_success`, `grasp_reward`,
 *   `in_place_reward`, `obj_to_target`, `unscaled_reward`.
 * - Task configurations: each reset uses, in this order of precedence, `reset({ options: { task } })`,
 *   the params fixed by `setTask(params)`, one drawn uniformly from `options.tasks` with the env's
 *   Rng, or a fresh draw from the task's ranges (`task.sampleParams`).
 * - Determinism: each reset builds a fresh physics world, so an episode depends only on the seed
 *   stream and the actions.
 * - `state()`: the observation (a single agent's critic needs nothing more).
 * - `render()`: a text summary; `render('svg')`: top-down and side views.
 */

export const ARM_AGENT: AgentId = 'arm_0';

export interface ManipulationConfig<P extends TaskParamsBase> {
  id: string;
  horizon: number;
  goalObservable: boolean;
  substeps: number;
  /** Configurations to draw from at each reset (ML-style task sets); absent: sample from the task's ranges. */
  tasks?: P[];
}

export const DEFAULT_HORIZON = 200;

/** The options schema of a task's env (validated by `parseManipulationOptions`). */
function optionsSchema<P extends TaskParamsBase>(task: ManipulationTask<P>) {
  return z
    .object({
      id: z.string().default(task.kind),
      horizon: z.number().int().min(1).max(1_000_000).default(DEFAULT_HORIZON),
      goalObservable: z.boolean().default(true),
      substeps: z.number().int().min(1).max(20).default(1),
      tasks: z.array(task.paramsSchema).min(1).optional(),
    })
    .strict();
}

/** Validates factory options; unknown names and bad values are errors naming the option (and list index). */
export function parseManipulationOptions<P extends TaskParamsBase>(task: ManipulationTask<P>, raw: Record<string, unknown>): ManipulationConfig<P> {
  const schema = optionsSchema(task);
  const label = typeof raw.id === 'string' ? raw.id : task.kind;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${Object.keys(schema.shape).join(', ')})`);
    }
    throw new Error(`${label}: invalid option '${formatPath(issue.path)}': ${issue.message}`);
  }
  return parsed.data as ManipulationConfig<P>;
}

/** Validates one task configuration with the task's schema; `where` names it in errors. */
export function parseTaskParams<P extends TaskParamsBase>(task: ManipulationTask<P>, raw: unknown, where: string): P {
  const parsed = task.paramsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const at = issue.path.length ? `${where}.${formatPath(issue.path)}` : where;
  const keys = issue.code === 'unrecognized_keys' ? ` (unknown key ${issue.keys.map((k) => `'${k}'`).join(', ')})` : '';
  throw new Error(`${at}: ${issue.message}${keys}; expected ${task.kind} params such as ${JSON.stringify(task.sampleParams(new Rng(0)))}`);
}

function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export class ManipulationEnv<P extends TaskParamsBase = TaskParamsBase> implements ParallelEnv<Float32Array, Float32Array> {
  readonly metadata: EnvMetadata;
  readonly possibleAgents: readonly AgentId[] = Object.freeze([ARM_AGENT]);
  readonly stateSpace: Box;
  readonly config: Readonly<ManipulationConfig<P>>;

  private readonly rapier: Rapier;
  private readonly observationBox = manipulationObservationBox();
  private readonly actionBox = new Box(-1, 1, [4]);
  private readonly gripperConfig: GripperConfig;
  private rng = new Rng(0);
  private live: AgentId[] = [];
  private fixedParams: P | null = null;
  private params: P | null = null;
  private scene: TabletopScene | null = null;
  private gripper: Gripper | null = null;
  private episode: TaskEpisode | null = null;
  private stepCount = 0;
  private episodeSuccess = false;
  private readonly frame = new Float64Array(OBS.FRAME_SIZE);
  private readonly prevFrame = new Float64Array(OBS.FRAME_SIZE);
  private readonly initTcp = new Float64Array(3);
  private readonly evaluation: TaskEvaluation = { reward: 0, success: false, nearObject: false, graspSuccess: false, graspReward: 0, inPlaceReward: 0, objToTarget: 0 };
  private lastObservation: Float32Array | null = null;
  private view: { action: Float32Array; gripper: Gripper; initTcp: Float64Array; frame: Float64Array } | null = null;

  constructor(
    readonly task: ManipulationTask<P>,
    config: ManipulationConfig<P>,
  ) {
    this.rapier = requirePhysics(config.id);
    this.config = Object.freeze({ ...config });
    this.gripperConfig = { ...DEFAULT_GRIPPER_CONFIG, ...(task.gripper ?? {}) };
    this.stateSpace = this.observationBox;
    this.metadata = {
      id: config.id,
      family: 'manipulation',
      maxEpisodeSteps: config.horizon,
      reportsSuccess: true,
      description: task.description,
    };
  }

  get agents(): readonly AgentId[] {
    return this.live;
  }

  observationSpace(agent: AgentId): Box {
    this.checkAgent(agent);
    return this.observationBox;
  }

  actionSpace(agent: AgentId): Box {
    this.checkAgent(agent);
    return this.actionBox;
  }

  /**
   * Fixes the configuration (object and goal positions, …) used by every following reset, as
   * Meta-World's `set_task`; `null` returns to sampling. Takes effect at the next reset.
   */
  setTask(params: P | null): void {
    this.fixedParams = params === null ? null : parseTaskParams(this.task, params, `${this.config.id}: setTask(params)`);
  }

  /** The configuration of the current episode (undefined before the first reset). */
  currentTask(): P | undefined {
    return this.params ?? undefined;
  }

  reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    if (args.seed !== undefined) this.rng = new Rng(args.seed);
    const fromOptions = args.options?.task;
    const params =
      fromOptions !== undefined
        ? parseTaskParams(this.task, fromOptions, `${this.config.id}: reset option 'task'`)
        : (this.fixedParams ?? (this.config.tasks ? this.config.tasks[this.rng.int(this.config.tasks.length)] : this.task.sampleParams(this.rng)));
    this.disposeScene();
    const scene = new TabletopScene(this.rapier, this.config.substeps);
    try {
      const gripper = new Gripper(scene, this.gripperConfig);
      const episode = this.task.setup(scene, params);
      gripper.setGraspables(episode.graspables);
      this.scene = scene;
      this.gripper = gripper;
      this.episode = episode;
    } catch (error) {
      scene.free();
      throw error;
    }
    this.params = params;
    this.stepCount = 0;
    this.episodeSuccess = false;
    this.initTcp.set(this.gripper.position);
    this.view = { action: new Float32Array(4), gripper: this.gripper, initTcp: this.initTcp, frame: this.frame };
    this.writeFrame();
    this.prevFrame.set(this.frame);
    this.live = [ARM_AGENT];
    const observation = this.observe();
    return { observations: { [ARM_AGENT]: observation }, infos: { [ARM_AGENT]: {} } };
  }

  step(actions: PerAgent<Float32Array>): StepResult<Float32Array> {
    if (!this.episode) throw new Error(`${this.config.id}: call reset() before step()`);
    if (this.live.length === 0) throw new Error(`${this.config.id}: the episode is over; call reset() before step()`);
    validateActions(this, actions);
    const action = actions[ARM_AGENT];
    const gripper = this.gripper!;
    const view = this.view!;
    view.action = action;
    this.prevFrame.set(this.frame);
    gripper.applyAction(action);
    this.episode.beforePhysics?.(action);
    this.scene!.advance();
    this.stepCount++;
    this.writeFrame();
    const e = this.evaluation;
    this.episode.evaluate(view, e);
    if (e.success) this.episodeSuccess = true;
    const truncated = this.stepCount >= this.config.horizon;
    const info: AgentInfo = {
      success: e.success,
      episode_success: this.episodeSuccess,
      near_object: e.nearObject,
      grasp_success: e.graspSuccess,
      grasp_reward: e.graspReward,
      in_place_reward: e.inPlaceReward,
      obj_to_target: e.objToTarget,
      unscaled_reward: e.reward,
    };
    if (truncated) this.live = [];
    return {
      observations: { [ARM_AGENT]: this.observe() },
      rewards: { [ARM_AGENT]: e.reward },
      terminations: { [ARM_AGENT]: false },
      truncations: { [ARM_AGENT]: truncated },
      infos: { [ARM_AGENT]: info },
    };
  }

  state(): Float32Array {
    if (!this.lastObservation) throw new Error(`${this.config.id}: call reset() before state()`);
    return Float32Array.from(this.lastObservation);
  }

  render(mode = 'ansi'): string {
    if (mode !== 'ansi' && mode !== 'text' && mode !== 'svg') throw new Error(`${this.config.id}: render mode '${mode}' is not supported (use 'ansi'/'text' or 'svg')`);
    if (!this.scene || !this.gripper || !this.episode) return `${this.config.id}: not reset yet`;
    if (mode === 'svg') {
      return renderManipulationSvg(this.scene, this.episode.goal, {
        title: `${this.config.id} step ${this.stepCount}/${this.config.horizon}${this.episodeSuccess ? ' (success)' : ''}`,
      });
    }
    const g = this.gripper;
    const e = this.evaluation;
    return [
      `${this.config.id} step ${this.stepCount}/${this.config.horizon}`,
      `hand ${formatVec3(g.position)} gripper ${g.openingFraction().toFixed(2)}${g.held ? ' holding' : ''}`,
      this.episode.describe(),
      `reward ${this.stepCount ? e.reward.toFixed(3) : '-'}  obj_to_target ${this.stepCount ? e.objToTarget.toFixed(3) : '-'}  success ${this.stepCount ? e.success : '-'}  episode_success ${this.episodeSuccess}`,
    ].join('\n');
  }

  close(): void {
    this.disposeScene();
    this.live = [];
  }

  private disposeScene(): void {
    this.scene?.free();
    this.scene = null;
    this.gripper = null;
    this.episode = null;
  }

  private writeFrame(): void {
    const g = this.gripper!;
    const f = this.frame;
    f[OBS.HAND] = g.position[0];
    f[OBS.HAND + 1] = g.position[1];
    f[OBS.HAND + 2] = g.position[2];
    f[OBS.GRIPPER] = g.openingFraction();
    this.episode!.writeObjects(f, OBS.OBJECTS);
  }

  /** A fresh observation (callers may keep it), clamped into the Box. */
  private observe(): Float32Array {
    const out = new Float32Array(OBS.SIZE);
    const low = this.observationBox.low;
    const high = this.observationBox.high;
    for (let i = 0; i < OBS.FRAME_SIZE; i++) {
      out[i] = this.frame[i];
      out[OBS.PREV + i] = this.prevFrame[i];
    }
    if (this.config.goalObservable) {
      const goal = this.episode!.goal;
      out[OBS.GOAL] = goal[0];
      out[OBS.GOAL + 1] = goal[1];
      out[OBS.GOAL + 2] = goal[2];
    }
    // Float32 rounding and a rare escaped object must not put an observation outside its space.
    for (let i = 0; i < OBS.SIZE; i++) {
      const v = out[i];
      if (v < low[i]) out[i] = low[i];
      else if (v > high[i]) out[i] = high[i];
    }
    this.lastObservation = out;
    return out;
  }

  private checkAgent(agent: AgentId): void {
    if (agent !== ARM_AGENT) throw new Error(`${this.config.id}: '${agent}' is not an agent of this env (agents: ${ARM_AGENT})`);
  }
}

/** Builds a task's env from raw options (the registry factory); throws if physics is not initialised. */
export function createManipulationEnv<P extends TaskParamsBase>(task: ManipulationTask<P>, options: Record<string, unknown>): ManipulationEnv<P> {
  const config = parseManipulationOptions(task, options);
  return new ManipulationEnv(task, config);
}
