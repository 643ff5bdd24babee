import type { AgentId, AgentInfo, EnvMetadata, ParallelEnv, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { Box } from '../spaces/box';
import { validateActions } from '../validate-actions';
import { parseTabletopEnvOptions, TaskConfigurations, type TabletopEnvConfig } from './env-options';
import { checkRenderMode, EpisodeProgress, requireRunningEpisode } from './episode-progress';
import { Gripper } from './gripper';
import { clampIntoBox } from './observation-layout';
import { multiArmLayout, multiArmObservationBox, type MultiArmEpisode, type MultiArmEvaluation, type MultiArmLayout, type MultiArmStepView, type MultiArmTask } from './multi-arm/multi-arm-task';
import { fixedTeam, TeamSizes, type MultiArmTeam } from './multi-arm/team-size';
import { requirePhysics, type Rapier } from './physics';
import { renderManipulationSvg } from './svg-render';
import { TabletopScene } from './tabletop';
import type { TaskParamsBase } from './task';
import { formatVec3 } from './vec3';

/**
 * The multi-arm manipulation env: N agents `arm_0` … `arm_{N-1}`, each driving its own gripper
 * (gripper.ts) over one tabletop scene simulated by Rapier; the task (multi-arm/<task>.ts) says
 * how many arms, their workspaces, the objects and the score.
 *
 * - Observation per arm: Box(2·(4N + 7K) + 3), see multi-arm/multi-arm-task.ts: own hand and
 *   opening, the other hands, K object poses, the previous frame, the goal (and N − 1 presence
 *   flags when the arm count varies). Clamped into bounds.
 * - Action per arm: Box(-1, 1, [4]) = TCP delta (× 1 cm) and gripper effort (positive closes).
 *   The grippers act in index order within a step (so a release by arm_0 and a grasp by arm_1
 *   in the same step hand an object over).
 * - Reward: one team reward in [0, 10] per step, the same for every arm
 *   (`metadata.teamReward: 'shared'`). Episodes never terminate; they are truncated after
 *   `horizon` steps.
 * - Info (every arm): `success` (the criterion now), `episode_success` (at any step so far: what
 *   evaluation counts), `obj_to_target`, `arms_holding`, `holding` (this arm holds something).
 * - `state()`: arm_0's observation (every hand in index order, objects, previous frame, goal),
 *   for MAPPO's centralised critic.
 * - Varying arm count (an optional `MultiArmTeam`, team-size.ts): `possibleAgents` is the largest
 *   team; each reset picks N and only arm_0 … arm_{N−1} are in `agents` and in any returned dict.
 *   The observation keeps the largest team's size: absent arms' hands and object slots are zeros
 *   and presence flags (multi-arm-task.ts) say which other arms take part; so does `state()`.
 * - Task configurations and determinism as the single-arm env: `reset({ options: { task } })`,
 *   `setTask`, `options.tasks` or a fresh draw; a fresh physics world every reset.
 */

export type MultiArmConfig<P extends TaskParamsBase> = TabletopEnvConfig<P>;

/** Validates factory options; unknown names and bad values are errors naming the option. */
export function parseMultiArmOptions<P extends TaskParamsBase>(task: MultiArmTask<P>, raw: Record<string, unknown>): MultiArmConfig<P> {
  return parseTabletopEnvOptions(task, raw, task.defaultHorizon);
}

export class MultiArmEnv<P extends TaskParamsBase = TaskParamsBase> implements ParallelEnv<Float32Array, Float32Array> {
  readonly metadata: EnvMetadata;
  readonly possibleAgents: readonly AgentId[];
  readonly stateSpace: Box;
  readonly layout: MultiArmLayout;
  readonly config: Readonly<MultiArmConfig<P>>;
  /** The team-size range (min = max for a fixed team). */
  readonly teamSizes: TeamSizes;

  private readonly rapier: Rapier;
  private readonly observationBox: Box;
  private readonly actionBox = new Box(-1, 1, [4]);
  private readonly agentIndex = new Map<AgentId, number>();
  private readonly configurations: TaskConfigurations<P>;
  private readonly progress: EpisodeProgress;
  private live: AgentId[] = [];
  private params: P | null = null;
  /** The task the current episode's team plays. */
  private teamTask: MultiArmTask<P>;
  private scene: TabletopScene | null = null;
  private grippers: Gripper[] = [];
  private episode: MultiArmEpisode | null = null;
  /** The global frame: every hand (xyz, opening) in index order, then the objects. */
  private readonly frame: Float64Array;
  private readonly prevFrame: Float64Array;
  private readonly initTcps: Float64Array[];
  private readonly actions: Float32Array[];
  private readonly evaluation: MultiArmEvaluation = { reward: 0, success: false, objToTarget: 0, armsHolding: 0 };
  private view: MultiArmStepView | null = null;

  /**
   * `task` is the largest team's task (its params schema, description and observation size);
   * `team` gives the task of every size an episode may have (default: `task` alone).
   */
  constructor(
    readonly task: MultiArmTask<P>,
    config: MultiArmConfig<P>,
    private readonly team: MultiArmTeam<P> = fixedTeam(task),
  ) {
    this.rapier = requirePhysics(config.id);
    this.teamSizes = new TeamSizes(config.id, team.min, team.max);
    if (team.taskFor(team.max) !== task) throw new Error(`${config.id}: the env's task must be its largest team's (${team.max} arms)`);
    for (let n = team.min; n <= team.max; n++) {
      const t = team.taskFor(n);
      if (t.numArms !== n || t.grippers.length !== n) throw new Error(`${config.id}: task '${t.kind}' for ${n} arms has ${t.numArms} arms and ${t.grippers.length} gripper configs`);
      if (t.numObjects > task.numObjects) throw new Error(`${config.id}: task '${t.kind}' for ${n} arms has more object slots (${t.numObjects}) than the largest team's (${task.numObjects})`);
    }
    this.teamTask = task;
    this.config = Object.freeze({ ...config });
    this.configurations = new TaskConfigurations(task, this.config);
    this.progress = new EpisodeProgress(config.id, config.horizon);
    this.layout = multiArmLayout(task.numArms, task.numObjects, this.teamSizes.varies);
    this.observationBox = multiArmObservationBox(this.layout);
    this.stateSpace = this.observationBox;
    this.possibleAgents = Object.freeze(Array.from({ length: task.numArms }, (_, i) => `arm_${i}`));
    this.possibleAgents.forEach((a, i) => this.agentIndex.set(a, i));
    this.frame = new Float64Array(this.layout.FRAME_SIZE);
    this.prevFrame = new Float64Array(this.layout.FRAME_SIZE);
    this.initTcps = Array.from({ length: task.numArms }, () => new Float64Array(3));
    this.actions = Array.from({ length: task.numArms }, () => new Float32Array(4));
    this.metadata = {
      id: config.id,
      family: 'manipulation/multi-arm',
      maxEpisodeSteps: config.horizon,
      reportsSuccess: true,
      teamReward: 'shared',
      description: task.description,
    };
  }

  get agents(): readonly AgentId[] {
    return this.live;
  }

  observationSpace(agent: AgentId): Box {
    this.indexOf(agent);
    return this.observationBox;
  }

  actionSpace(agent: AgentId): Box {
    this.indexOf(agent);
    return this.actionBox;
  }

  /** Fixes the configuration used by every following reset; `null` returns to sampling. */
  setTask(params: P | null): void {
    this.configurations.fix(params);
  }

  currentTask(): P | undefined {
    return this.params ?? undefined;
  }

  /** The number of arms in the current episode (the last reset's draw). */
  currentTeamSize(): number {
    return this.teamTask.numArms;
  }

  /** The grippers of the current episode, in arm order (for tests and tools; do not drive them directly). */
  currentGrippers(): readonly Gripper[] {
    return this.grippers;
  }

  reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    const numArms = this.teamSizes.next(args);
    const task = this.team.taskFor(numArms);
    const params = this.configurations.next(args);
    this.disposeScene();
    const scene = new TabletopScene(this.rapier, this.config.substeps);
    try {
      const grippers = task.grippers.map((c) => new Gripper(scene, c));
      const episode = task.setup(scene, params, grippers);
      for (const g of grippers) g.setGraspables(episode.graspables);
      this.scene = scene;
      this.grippers = grippers;
      this.episode = episode;
    } catch (error) {
      scene.free();
      throw error;
    }
    this.params = params;
    this.teamTask = task;
    this.progress.start();
    this.grippers.forEach((g, i) => this.initTcps[i].set(g.position));
    this.view = { actions: this.actions.slice(0, numArms), grippers: this.grippers, initTcps: this.initTcps.slice(0, numArms) };
    // Absent arms' hands and object slots stay zero for the whole episode.
    this.frame.fill(0);
    this.writeFrame();
    this.prevFrame.set(this.frame);
    this.live = this.possibleAgents.slice(0, numArms);
    const observations: PerAgent<Float32Array> = {};
    const infos: PerAgent<AgentInfo> = {};
    for (const agent of this.live) {
      observations[agent] = this.observe(this.agentIndex.get(agent)!);
      infos[agent] = {};
    }
    return { observations, infos };
  }

  step(actions: PerAgent<Float32Array>): StepResult<Float32Array> {
    requireRunningEpisode(this.config.id, this.episode, this.live.length);
    validateActions(this, actions);
    this.prevFrame.set(this.frame);
    for (let i = 0; i < this.grippers.length; i++) {
      this.actions[i].set(actions[this.possibleAgents[i]]);
      this.grippers[i].applyAction(this.actions[i]);
    }
    this.scene!.advance();
    this.writeFrame();
    const e = this.evaluation;
    this.episode.evaluate(this.view!, e);
    const truncated = this.progress.advance(e.success);
    const out: StepResult<Float32Array> = { observations: {}, rewards: {}, terminations: {}, truncations: {}, infos: {} };
    for (let i = 0; i < this.grippers.length; i++) {
      const agent = this.possibleAgents[i];
      out.observations[agent] = this.observe(i);
      out.rewards[agent] = e.reward;
      out.terminations[agent] = false;
      out.truncations[agent] = truncated;
      out.infos[agent] = {
        success: e.success,
        episode_success: this.progress.episodeSuccess,
        obj_to_target: e.objToTarget,
        arms_holding: e.armsHolding,
        holding: this.grippers[i].held !== null,
      };
    }
    if (truncated) this.live = [];
    return out;
  }

  state(): Float32Array {
    if (!this.episode) throw new Error(`${this.config.id}: call reset() before state()`);
    return this.observe(0);
  }

  render(mode = 'ansi'): string {
    checkRenderMode(this.config.id, mode);
    if (!this.scene || !this.episode) return `${this.config.id}: not reset yet`;
    const title = this.progress.title(true);
    if (mode === 'svg') return renderManipulationSvg(this.scene, this.episode.goal, { title });
    return [
      title,
      ...this.grippers.map((g, i) => `arm_${i} hand ${formatVec3(g.position)} gripper ${g.openingFraction().toFixed(2)}${g.held ? ' holding' : ''}`),
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
    this.grippers = [];
    this.episode = null;
  }

  private writeFrame(): void {
    const f = this.frame;
    for (let i = 0; i < this.grippers.length; i++) {
      const g = this.grippers[i];
      f[4 * i] = g.position[0];
      f[4 * i + 1] = g.position[1];
      f[4 * i + 2] = g.position[2];
      f[4 * i + 3] = g.openingFraction();
    }
    this.episode!.writeObjects(f, this.layout.OBJECTS);
  }

  /** Arm `self`'s observation (a fresh array the caller may keep), clamped into the Box. */
  private observe(self: number): Float32Array {
    const L = this.layout;
    const out = new Float32Array(L.SIZE);
    for (const [src, dst] of [
      [this.frame, 0],
      [this.prevFrame, L.PREV],
    ] as const) {
      for (let k = 0; k < 4; k++) out[dst + k] = src[4 * self + k];
      let at = dst + L.OTHERS;
      for (let a = 0; a < L.numArms; a++) {
        if (a === self) continue;
        for (let k = 0; k < 4; k++) out[at + k] = src[4 * a + k];
        at += 4;
      }
      for (let k = L.OBJECTS; k < L.FRAME_SIZE; k++) out[dst + k] = src[k];
    }
    if (this.config.goalObservable) {
      const goal = this.episode!.goal;
      for (let k = 0; k < 3; k++) out[L.GOAL + k] = goal[k];
    }
    // Presence flags follow the other hands' order (self skipped); present arms are the first N.
    for (let a = 0, at = L.PRESENCE; at < L.SIZE; a++) {
      if (a === self) continue;
      out[at++] = a < this.grippers.length ? 1 : 0;
    }
    clampIntoBox(out, this.observationBox);
    return out;
  }

  private indexOf(agent: AgentId): number {
    const i = this.agentIndex.get(agent);
    if (i === undefined) throw new Error(`${this.config.id}: '${agent}' is not an agent of this env (agents: ${this.possibleAgents.join(', ')})`);
    return i;
  }
}

/**
 * Builds a multi-arm task's env from raw options (the registry factory); with `team`, the arm
 * count varies between episodes and `task` is the largest team's. Throws if physics is not initialised.
 */
export function createMultiArmEnv<P extends TaskParamsBase>(task: MultiArmTask<P>, options: Record<string, unknown>, team?: MultiArmTeam<P>): MultiArmEnv<P> {
  return new MultiArmEnv(task, parseMultiArmOptions(task, options), team);
}
