import type { AgentId, AgentInfo, EnvMetadata, ParallelEnv, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { Box } from '../spaces/box';
import { validateActions } from '../validate-actions';
import { parseTabletopEnvOptions, TaskConfigurations, type TabletopEnvConfig } from './env-options';
import { checkRenderMode, EpisodeProgress, requireRunningEpisode } from './episode-progress';
import { DEFAULT_GRIPPER_CONFIG, Gripper, type GripperConfig } from './gripper';
import { OBS, clampIntoBox, manipulationObservationBox } from './observation-layout';
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

/** The validated options of a task's env (see `parseManipulationOptions`). */
export type ManipulationConfig<P extends TaskParamsBase> = TabletopEnvConfig<P>;

export const DEFAULT_HORIZON = 200;

/** Validates factory options; unknown names and bad values are errors naming the option (and list index). */
export function parseManipulationOptions<P extends TaskParamsBase>(task: ManipulationTask<P>, raw: Record<string, unknown>): ManipulationConfig<P> {
  return parseTabletopEnvOptions(task, raw, DEFAULT_HORIZON);
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
  private readonly configurations: TaskConfigurations<P>;
  private readonly progress: EpisodeProgress;
  private live: AgentId[] = [];
  private params: P | null = null;
  private scene: TabletopScene | null = null;
  private gripper: Gripper | null = null;
  private episode: TaskEpisode | null = null;
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
    this.configurations = new TaskConfigurations(task, this.config);
    this.progress = new EpisodeProgress(config.id, config.horizon);
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
    this.configurations.fix(params);
  }

  /** The configuration of the current episode (undefined before the first reset). */
  currentTask(): P | undefined {
    return this.params ?? undefined;
  }

  reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    // A misspelt option would otherwise silently give a random configuration.
    const unknown = Object.keys(args.options ?? {}).filter((k) => k !== 'task');
    if (unknown.length) throw new Error(`${this.config.id}: unknown reset option ${unknown.map((k) => `'${k}'`).join(', ')} (known: task)`);
    const params = this.configurations.next(args);
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
    this.progress.start();
    this.initTcp.set(this.gripper.position);
    this.view = { action: new Float32Array(4), gripper: this.gripper, initTcp: this.initTcp, frame: this.frame };
    this.writeFrame();
    this.prevFrame.set(this.frame);
    this.live = [ARM_AGENT];
    const observation = this.observe();
    return { observations: { [ARM_AGENT]: observation }, infos: { [ARM_AGENT]: {} } };
  }

  step(actions: PerAgent<Float32Array>): StepResult<Float32Array> {
    requireRunningEpisode(this.config.id, this.episode, this.live.length);
    validateActions(this, actions);
    const action = actions[ARM_AGENT];
    const gripper = this.gripper!;
    const view = this.view!;
    view.action = action;
    this.prevFrame.set(this.frame);
    gripper.applyAction(action);
    this.episode.beforePhysics?.(action);
    this.scene!.advance();
    this.writeFrame();
    const e = this.evaluation;
    this.episode.evaluate(view, e);
    const truncated = this.progress.advance(e.success);
    const info: AgentInfo = {
      success: e.success,
      episode_success: this.progress.episodeSuccess,
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
    checkRenderMode(this.config.id, mode);
    if (!this.scene || !this.gripper || !this.episode) return `${this.config.id}: not reset yet`;
    if (mode === 'svg') return renderManipulationSvg(this.scene, this.episode.goal, { title: this.progress.title(true) });
    const g = this.gripper;
    return [
      this.progress.title(false),
      `hand ${formatVec3(g.position)} gripper ${g.openingFraction().toFixed(2)}${g.held ? ' holding' : ''}`,
      this.episode.describe(),
      this.progress.scoreLine(this.evaluation),
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
    clampIntoBox(out, this.observationBox);
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
