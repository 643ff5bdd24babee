/**
 * Meta-DT (Wang et al., NeurIPS 2024, "Offline Meta-RL as Conditional Sequence Modeling with
 * World Model Disentanglement"; reference code NJU-RL/Meta-DT): an offline meta-learner over many
 * tasks' datasets that acts in an unseen task without fine-tuning. CleanRL style: config, data,
 * the two training phases, acting and the trainer definition read top to bottom.
 *
 *  1. Context world model (`agents/networks/context-world-model.ts`). The run's first
 *     `world_model_steps` gradient steps train it: per-field encoders of the h previous (s, a, r)
 *     → GRU → task representation z_t, and a reward decoder R(s, a, s', z) (a next-state decoder
 *     too where dynamics vary) by MSE, Adam, gradient clipping. Then it is frozen; z_t of every
 *     dataset step is computed once.
 *  2. Decision transformer (`agents/networks/decision-transformer.ts`) over K-step windows of
 *     (return-to-go, state, action) with z_t in every state token, action MSE (cross-entropy for
 *     discrete actions), AdamW with linear warmup and global-norm clipping. Two phases as the
 *     reference's `warm_train`: the first `warm_train_steps` DT steps without prompts, then every
 *     sequence gets a k-step prompt segment of its task.
 *  3. Prompts. The candidates of a task are its `prompt_candidates` best trajectories by return
 *     (in training: of its dataset, as the reference's per-task prompt datasets; at test time: of
 *     the model's own rollouts). One is drawn uniformly and its segment start chosen by
 *     `prompt`: `complementary` runs the frozen world model along it and picks the segment with
 *     the largest prediction error (`prompt_selection`: the paper's argmax over k-windows, the
 *     reference training code's sampling ∝ window error, or its evaluation code's ∝ tail error;
 *     `agents/networks/prompt-selection.ts`); `random_segment` picks a uniform start (Prompt-DT's
 *     rule, and the paper's "w/o complementary" ablation).
 *
 * Variants by config (each trained by this code on the same data):
 *   Meta-DT: task_representation world_model, prompt complementary (the defaults);
 *   plain DT: none / none;  Prompt-DT: none / random_segment;
 *   ablations: no world model = none / complementary (the world model still scores prompts);
 *   random-segment prompt = world_model / random_segment.
 *
 * Evaluation modes (`TaskInferenceMode`): `zero-shot` (z from the episode's own last h
 * transitions, no prompt); `few-shot` (a prompt from the model's own earlier rollouts of the task,
 * chosen by the rule above, plus z); `demo` (a prompt from the task's dataset: Prompt-DT's
 * protocol with expert demonstrations). The target return of a task is the best return in its
 * dataset, as the reference's `return_scale[1]`; the return-to-go is decremented by r / scale.
 *
 * Multi-agent tasks: every agent is a sequence of its own (its observations, actions and
 * rewards), all agents share the weights, and each agent's z comes from its own transitions. Prompt
 * candidates are the best agent-trajectories of the task, pooled over agents (with a team reward,
 * often the agents of one episode), so an agent may be prompted with a teammate's trajectory. Tasks whose dataset header says `split: test` are never trained on; their datasets
 * serve only as demonstrations (`demo`) and for the target return.
 *
 * Departures from the reference, on purpose: the prompt candidates are the top trajectories of
 * each task's own dataset rather than separately collected prompt datasets; few-shot evaluation
 * draws its own rollouts from a fixed number of zero-shot episodes just before (the reference
 * accumulates one rollout per evaluation call across the whole training run); the world model
 * trains for a number of gradient steps rather than keeping its best-test-loss epoch.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  ContextWorldModel,
  type EpisodeArrays,
  type FlatContextWindows,
  type WorldModelBatch,
  buildContextWindows,
  contextWindowAt,
  contextWindowTensors,
} from '../agents/networks/context-world-model';
import { DecisionTransformer, type DecisionTransformerInput, type DecisionTransformerSpec } from '../agents/networks/decision-transformer';
import { PROMPT_SELECTION_VARIANTS, type PromptSelectionVariant, selectPromptStart } from '../agents/networks/prompt-selection';
import type { Policy, PolicyBatch } from '../agents/policies/policy';
import type { EnvShape } from '../envs/env-shape';
import { assignTensors, captureTensors } from '../runtime/core/checkpoint-format';
import { Rng, deriveSeed } from '../runtime/core/rng';
import { Adam, clipByGlobalNorm } from './adam';
import { decisionTransformerFlops } from '../agents/networks/flops';
import { MAX_STEP_BATCH, layerWidth, nonNegativeInt, positive, positiveInt } from './config-keys';
import { timed } from './synthetic-experience';
import type { DatasetEpisode, OfflineDataset } from './dataset';
import type { EvaluationOptions, LearnerBenchCase, LearnerState, OfflineLearner, TaskInferenceMode, TaskSpec, TrainStats, TrainerDefinition } from './learner';

// ---------------------------------------------------------------------------------------------
// Config (names as the reference's `configs/args_*.py`; defaults are its Point-Robot values)
// ---------------------------------------------------------------------------------------------

export const metaDtConfigSchema = z
  .object({
    name: z.literal('meta_dt'),
    /** `world_model`: z from the context world model enters every state token; `none`: no task representation. */
    task_representation: z.enum(['world_model', 'none']).default('world_model'),
    /** How a prompt segment is chosen from a candidate trajectory; `none` trains and acts without prompts. */
    prompt: z.enum(['complementary', 'random_segment', 'none']).default('complementary'),
    /** `complementary` prompts: the paper's argmax, or the reference code's proportional sampling (window / tail). */
    prompt_selection: z.enum(PROMPT_SELECTION_VARIANTS as unknown as [PromptSelectionVariant, ...PromptSelectionVariant[]]).default('argmax-window'),
    /** k: prompt steps. */
    prompt_length: positiveInt(1000).default(5),
    /** Candidate trajectories a prompt is drawn from: a task's best by return. */
    prompt_candidates: positiveInt(1000).default(3),
    /** What the run's periodic evaluations use (few-shot needs own rollouts, so it runs at the end: see `troupe eval --mode`). */
    eval_mode: z.enum(['zero-shot', 'demo']).default('zero-shot'),
    /** Zero-shot episodes per env whose trajectories become few-shot prompt candidates. */
    few_shot_rollouts: positiveInt(1000).default(3),

    /** Gradient steps of the world model at the start of the run (when z or complementary prompts need it). */
    world_model_steps: nonNegativeInt().default(2000),
    world_model_lr: positive().default(1e-3),
    world_model_batch_size: positiveInt(MAX_STEP_BATCH).default(128),
    world_model_max_grad_norm: positive().default(1),
    /** h: transitions before step t that z_t is computed from. */
    context_horizon: positiveInt(1000).default(4),
    context_dim: layerWidth().default(16),
    /** Width of each field's embedding in the world model. */
    field_embed_dim: layerWidth().default(16),
    /** The encoder GRU's hidden size. */
    context_hidden_dim: layerWidth().default(128),
    decoder_hidden_dims: z.array(layerWidth()).max(16).default([128, 128]),
    /** `reward` where tasks differ in reward, `state` where they differ in dynamics, or both. */
    world_model_decoders: z.array(z.enum(['reward', 'state'])).min(1).max(2).default(['reward']),

    /** K: steps per sequence (`dt_horizon`). */
    horizon: positiveInt(1000).default(20),
    embed_dim: layerWidth().default(128),
    num_layers: positiveInt(48).default(3),
    num_heads: positiveInt(64).default(1),
    /** MLP width; 4 · embed_dim unless given. */
    inner_dim: layerWidth().optional(),
    activation: z.enum(['relu', 'gelu']).default('relu'),
    dropout: z.number().gte(0).lt(1).default(0.1),
    /** The state's own encoding width before z is appended. */
    state_embed_dim: layerWidth().default(16),
    lr: positive().default(1e-4),
    weight_decay: z.number().finite().gte(0).default(1e-4),
    /** DT steps of linear learning-rate warmup. */
    warmup_steps: positiveInt().default(10_000),
    max_grad_norm: positive().default(0.25),
    /** Sequences per DT step. */
    batch_size: positiveInt(MAX_STEP_BATCH).default(128),
    /** DT steps without prompts before prompts are used (`warm_train`). */
    warm_train_steps: nonNegativeInt().default(20_000),
    /** Returns-to-go are divided by this. */
    return_scale: positive().default(10),
  })
  .strict();
export type MetaDtConfig = z.output<typeof metaDtConfigSchema>;

// ---------------------------------------------------------------------------------------------
// Data: one trajectory per (episode, agent), grouped by task
// ---------------------------------------------------------------------------------------------

/** One agent's side of one episode, with what training reads of it. */
interface Trajectory extends EpisodeArrays {
  steps: number;
  /** [T] returns-to-go, undivided. */
  returnsToGo: Float32Array;
  /** Σ r of this agent. */
  return: number;
}

interface TaskData {
  spec: TaskSpec;
  split: 'train' | 'test';
  trajectories: Trajectory[];
  /** Indices of the best trajectories (prompt candidates), best first. */
  candidates: number[];
  /** The best return in the dataset: the return-to-go every episode starts from. */
  targetReturn: number;
  /** What defines the task (its dataset header's), for probes; never seen by the networks. */
  parameters: Record<string, unknown> | null;
}

/** Action rows as the networks read them: a Box action as is, a discrete one as a one-hot. */
function actionWidth(shape: EnvShape): number {
  return shape.discreteActions ? shape.numActions : shape.actDim;
}

function agentTrajectory(ep: DatasetEpisode, shape: EnvShape, agent: number): Trajectory | undefined {
  const { numAgents: A, obsDim: D, actDim } = shape;
  const W = actionWidth(shape);
  const T = ep.rewards.length / A;
  let acted = false;
  for (let t = 0; t < T && !acted; t++) acted = ep.alive[t * A + agent] === 1;
  if (!acted) return undefined;
  const obs = new Float32Array((T + 1) * D);
  for (let t = 0; t <= T; t++) obs.set(ep.obs.subarray((t * A + agent) * D, (t * A + agent + 1) * D), t * D);
  const actions = new Float32Array(T * W);
  const rewards = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    const at = (t * A + agent) * actDim;
    if (shape.discreteActions) {
      if (ep.alive[t * A + agent]) actions[t * W + ep.actions[at]] = 1;
    } else {
      actions.set(ep.actions.subarray(at, at + actDim), t * W);
    }
    rewards[t] = ep.rewards[t * A + agent];
  }
  const returnsToGo = new Float32Array(T);
  let sum = 0;
  for (let t = T - 1; t >= 0; t--) returnsToGo[t] = sum += rewards[t];
  return { obs, actions, rewards, steps: T, returnsToGo, return: sum };
}

/** Every agent's trajectory of every episode. */
function datasetTrajectories(dataset: OfflineDataset, shape: EnvShape): Trajectory[] {
  const out: Trajectory[] = [];
  for (const ep of dataset.episodes) {
    for (let a = 0; a < shape.numAgents; a++) {
      const traj = agentTrajectory(ep, shape, a);
      if (traj && traj.steps > 0) out.push(traj);
    }
  }
  return out;
}

/** Indices of the `count` best trajectories by return, best first (ties: earlier first). */
function bestTrajectories(trajectories: readonly Trajectory[], count: number): number[] {
  return trajectories
    .map((t, i) => ({ i, r: t.return }))
    .sort((a, b) => b.r - a.r || a.i - b.i)
    .slice(0, count)
    .map((x) => x.i);
}

// ---------------------------------------------------------------------------------------------
// Sequences as the decision transformer reads them
// ---------------------------------------------------------------------------------------------

/** Where acting draws its prompts: candidate trajectories (dataset ones, or the model's own rollouts). */
interface PromptSource {
  trajectories: EpisodeArrays[];
  candidates: number[];
  fromDataset: boolean;
}

/** B rows of K steps, left-padded. */
interface SequenceArrays {
  rows: number;
  steps: number;
  returnsToGo: Float32Array;
  states: Float32Array;
  actions: Float32Array;
  timesteps: Int32Array;
  mask: Float32Array;
  contexts?: Float32Array;
}

function sequenceArrays(rows: number, steps: number, D: number, W: number, Z: number): SequenceArrays {
  return {
    rows,
    steps,
    returnsToGo: new Float32Array(rows * steps),
    states: new Float32Array(rows * steps * D),
    actions: new Float32Array(rows * steps * W),
    timesteps: new Int32Array(rows * steps),
    mask: new Float32Array(rows * steps),
    ...(Z > 0 ? { contexts: new Float32Array(rows * steps * Z) } : {}),
  };
}

/** What a sequence is cut from: a dataset trajectory or an episode being acted. */
interface SequenceSource {
  obs: Float32Array;
  actions: Float32Array;
  /** Returns-to-go, already divided by the return scale. */
  scaledReturnsToGo: (t: number) => number;
  contexts?: Float32Array;
}

/** Steps first … last of `src` into row `row`, right-aligned (padding on the left). */
function writeSequence(out: SequenceArrays, row: number, src: SequenceSource, first: number, last: number, D: number, W: number, Z: number, maxTimestep: number): void {
  const n = last - first + 1;
  const K = out.steps;
  for (let i = 0; i < n; i++) {
    const t = first + i;
    const p = row * K + (K - n + i);
    out.returnsToGo[p] = src.scaledReturnsToGo(t);
    out.states.set(src.obs.subarray(t * D, (t + 1) * D), p * D);
    out.actions.set(src.actions.subarray(t * W, (t + 1) * W), p * W);
    out.timesteps[p] = Math.min(t, maxTimestep);
    out.mask[p] = 1;
    if (Z > 0 && src.contexts && out.contexts) out.contexts.set(src.contexts.subarray(t * Z, (t + 1) * Z), p * Z);
  }
}

function sequenceTensors(seq: SequenceArrays, D: number, W: number, Z: number): DecisionTransformerInput {
  const { rows: B, steps: K } = seq;
  return {
    returnsToGo: tf.tensor2d(seq.returnsToGo, [B, K]),
    states: tf.tensor3d(seq.states, [B, K, D]),
    actions: tf.tensor3d(seq.actions, [B, K, W]),
    timesteps: tf.tensor2d(seq.timesteps, [B, K], 'int32'),
    mask: tf.tensor2d(seq.mask, [B, K]),
    ...(Z > 0 && seq.contexts ? { contexts: tf.tensor3d(seq.contexts, [B, K, Z]) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The learner
// ---------------------------------------------------------------------------------------------

export class MetaDecisionTransformer implements OfflineLearner {
  readonly kind = 'offline';
  readonly tasks: readonly TaskSpec[];
  readonly config: MetaDtConfig;
  readonly worldModel?: ContextWorldModel;
  readonly dt: DecisionTransformer;
  private readonly shape: EnvShape;
  private readonly data: TaskData[];
  private readonly trainTasks: TaskData[];
  private readonly D: number;
  private readonly W: number;
  /** Width of z in the DT's state tokens (0 without a task representation). */
  private readonly Z: number;
  private readonly maxTimestep: number;
  private readonly worldModelAdam?: Adam;
  private readonly dtAdam: Adam;
  private readonly promptAdam?: Adam;
  private readonly seed: string;
  private sampleRng: Rng;
  /** Gradient steps taken: world model first, then DT. */
  private worldModelSteps = 0;
  private dtSteps = 0;
  /** After the world model froze: z_t of every training trajectory ([T, Z]), and prediction errors of prompt candidates (by trajectory). */
  private contexts?: Map<Trajectory, Float32Array>;
  private readonly errorCache = new Map<Trajectory, Float32Array>();

  constructor(tasks: readonly TaskSpec[], config: MetaDtConfig, datasets: Readonly<Record<string, OfflineDataset>>, seed: number | string) {
    if (tasks.length === 0) throw new Error('meta_dt: a run needs at least one task');
    this.tasks = tasks;
    this.config = config;
    this.seed = String(seed);
    this.shape = tasks[0].shape;
    for (const t of tasks.slice(1)) checkSameShape(this.shape, t, tasks[0].key);
    const shape = this.shape;
    this.D = shape.obsDim;
    this.W = actionWidth(shape);
    this.maxTimestep = shape.maxEpisodeSteps - 1;
    this.data = tasks.map((spec) => {
      const dataset = datasets[spec.key];
      if (!dataset) throw new Error(`meta_dt: no dataset for task '${spec.key}'`);
      const trajectories = datasetTrajectories(dataset, shape);
      if (trajectories.length === 0) throw new Error(`meta_dt: the dataset of task '${spec.key}' has no steps`);
      const targetReturn = Math.max(...trajectories.map((t) => t.return));
      const split: 'train' | 'test' = dataset.header.split === 'test' ? 'test' : 'train';
      return { spec, split, trajectories, candidates: bestTrajectories(trajectories, config.prompt_candidates), targetReturn, parameters: dataset.header.taskParameters ?? null };
    });
    this.trainTasks = this.data.filter((d) => d.split === 'train');
    if (this.trainTasks.length === 0) throw new Error(`meta_dt: every task's dataset is on the test side of its split (${tasks.map((t) => t.key).join(', ')}); at least one training task is needed`);

    const needsWorldModel = config.task_representation === 'world_model' || config.prompt === 'complementary';
    if (needsWorldModel && config.world_model_steps === 0) {
      throw new Error(`meta_dt: world_model_steps is 0, but ${config.task_representation === 'world_model' ? "task_representation 'world_model'" : "prompt 'complementary'"} needs a trained world model`);
    }
    if (needsWorldModel) {
      this.worldModel = new ContextWorldModel({
        obsDim: this.D,
        actDim: this.W,
        contextHorizon: config.context_horizon,
        fieldEmbedDim: config.field_embed_dim,
        gruHiddenDim: config.context_hidden_dim,
        contextDim: config.context_dim,
        decoderHiddenDims: config.decoder_hidden_dims,
        decoders: config.world_model_decoders,
        seed: this.seed,
        role: 'world_model',
      });
      this.worldModelAdam = new Adam({ lr: config.world_model_lr }, this.worldModel.namedVariables());
    }
    this.Z = config.task_representation === 'world_model' ? config.context_dim : 0;
    this.dt = new DecisionTransformer(this.dtSpec());
    // The prompt embeddings get gradients only once prompts are used: an optimiser of their own,
    // so (as PyTorch, which skips parameters without a gradient) they are neither decayed nor
    // moved before, and their bias correction counts their own steps.
    const { main, prompt } = splitPromptVariables(this.dt.namedVariables());
    this.dtAdam = new Adam({ lr: config.lr, weightDecay: config.weight_decay }, main);
    if (Object.keys(prompt).length > 0) this.promptAdam = new Adam({ lr: config.lr, weightDecay: config.weight_decay }, prompt);
    this.sampleRng = new Rng(deriveSeed(this.seed, 'meta_dt', 'sample'));
  }

  private dtSpec(): DecisionTransformerSpec {
    const cfg = this.config;
    const shape = this.shape;
    const action: DecisionTransformerSpec['action'] = shape.discreteActions
      ? { kind: 'discrete', numActions: shape.numActions }
      : { kind: 'continuous', low: shape.actionLow!.slice(0, shape.actDim), high: shape.actionHigh!.slice(0, shape.actDim) };
    return {
      stateDim: this.D,
      action,
      embedDim: cfg.embed_dim,
      numLayers: cfg.num_layers,
      numHeads: cfg.num_heads,
      ...(cfg.inner_dim !== undefined ? { innerDim: cfg.inner_dim } : {}),
      activation: cfg.activation,
      dropout: cfg.dropout,
      maxEpisodeLength: this.shape.maxEpisodeSteps,
      contextDim: this.Z,
      stateEmbedDim: cfg.state_embed_dim,
      prompt: cfg.prompt !== 'none',
      seed: this.seed,
      role: 'decision_transformer',
    };
  }

  /** The world model trains first, for `world_model_steps` gradient steps, when anything needs it. */
  private get inWorldModelPhase(): boolean {
    return this.worldModel !== undefined && this.worldModelSteps < this.config.world_model_steps;
  }

  trainStep(): TrainStats {
    return this.inWorldModelPhase ? this.trainWorldModel() : this.trainDecisionTransformer();
  }

  // --- phase 1: the context world model ------------------------------------------------------

  private trainWorldModel(): TrainStats {
    const cfg = this.config;
    const wm = this.worldModel!;
    const { D, W } = this;
    const h = cfg.context_horizon;
    const N = cfg.world_model_batch_size;
    const obs = new Float32Array(N * D);
    const actions = new Float32Array(N * W);
    const rewards = new Float32Array(N);
    const nextObs = new Float32Array(N * D);
    const windows: FlatContextWindows = { count: N, obs: new Float32Array(N * h * D), actions: new Float32Array(N * h * W), rewards: new Float32Array(N * h) };
    for (let n = 0; n < N; n++) {
      const task = this.trainTasks[this.sampleRng.int(this.trainTasks.length)];
      const traj = task.trajectories[this.sampleRng.int(task.trajectories.length)];
      const t = this.sampleRng.int(traj.steps);
      obs.set(traj.obs.subarray(t * D, (t + 1) * D), n * D);
      nextObs.set(traj.obs.subarray((t + 1) * D, (t + 2) * D), n * D);
      actions.set(traj.actions.subarray(t * W, (t + 1) * W), n * W);
      rewards[n] = traj.rewards[t];
      const w = contextWindowAt(traj, wm.spec, t);
      windows.obs.set(w.obs, n * h * D);
      windows.actions.set(w.actions, n * h * W);
      windows.rewards.set(w.rewards, n * h);
    }
    const params = wm.namedVariables();
    const names = Object.keys(params);
    const list = names.map((n) => params[n]);
    const stats = tf.tidy(() => {
      const batch: WorldModelBatch = {
        obs: tf.tensor2d(obs, [N, D]),
        actions: tf.tensor2d(actions, [N, W]),
        rewards: tf.tensor1d(rewards),
        nextObs: tf.tensor2d(nextObs, [N, D]),
        windows: contextWindowTensors(windows, wm.spec),
      };
      const { value, grads } = tf.variableGrads(() => wm.loss(batch), list);
      const byName: Record<string, tf.Tensor> = {};
      names.forEach((n, i) => (byName[n] = grads[list[i].name]));
      const { norm: gnorm, scale } = clipByGlobalNorm(names.map((n) => byName[n]), cfg.world_model_max_grad_norm);
      this.worldModelAdam!.apply(byName, scale);
      return tf.stack([value, gnorm]);
    });
    const [loss, gradNorm] = stats.dataSync();
    stats.dispose();
    this.worldModelSteps++;
    if (!this.inWorldModelPhase) {
      // Frozen from here: anything derived from it during phase 1 (an evaluation's prompt scores) is stale.
      this.contexts = undefined;
      this.errorCache.clear();
    }
    return { world_model_loss: loss, world_model_grad_norm: gradNorm };
  }

  /** z_t of every step of `traj` under the frozen world model, [T, Z]. */
  private trajectoryContexts(traj: EpisodeArrays): Float32Array {
    const wm = this.worldModel!;
    return tf.tidy(() => {
      const windows = contextWindowTensors(buildContextWindows(traj, wm.spec), wm.spec);
      return wm.encode(windows).dataSync() as Float32Array;
    });
  }

  /** z for every training trajectory, computed once the world model is frozen (again after a restore). */
  private ensureContexts(): Map<Trajectory, Float32Array> | undefined {
    if (this.Z === 0) return undefined;
    if (!this.contexts) {
      this.contexts = new Map();
      for (const task of this.trainTasks) for (const traj of task.trajectories) this.contexts.set(traj, this.trajectoryContexts(traj));
    }
    return this.contexts;
  }

  /** The world model's per-step errors along a trajectory (cached for dataset trajectories). */
  private predictionErrors(traj: EpisodeArrays, cacheable: boolean): Float32Array {
    const key = traj as Trajectory;
    const cached = cacheable ? this.errorCache.get(key) : undefined;
    if (cached) return cached;
    const errors = this.worldModel!.predictionErrors(traj);
    // Only the frozen world model's errors of dataset trajectories are kept (a model still
    // training would leave stale ones; own rollouts are new every evaluation).
    if (cacheable && !this.inWorldModelPhase) this.errorCache.set(key, errors);
    return errors;
  }

  // --- phase 2: the decision transformer -----------------------------------------------------

  private trainDecisionTransformer(): TrainStats {
    const cfg = this.config;
    const { D, W, Z } = this;
    const contexts = this.ensureContexts();
    const B = cfg.batch_size;
    const K = cfg.horizon;
    const withPrompt = cfg.prompt !== 'none' && this.dtSteps >= cfg.warm_train_steps;
    const seq = sequenceArrays(B, K, D, W, Z);
    const prompt = withPrompt ? sequenceArrays(B, cfg.prompt_length, D, W, 0) : undefined;
    const scale = cfg.return_scale;
    for (let b = 0; b < B; b++) {
      const task = this.trainTasks[this.sampleRng.int(this.trainTasks.length)];
      const traj = task.trajectories[this.sampleRng.int(task.trajectories.length)];
      // As the reference: a uniform start, up to K steps from it, padded on the left.
      const first = this.sampleRng.int(traj.steps);
      const last = Math.min(first + K, traj.steps) - 1;
      const src: SequenceSource = { obs: traj.obs, actions: traj.actions, scaledReturnsToGo: (t) => traj.returnsToGo[t] / scale, contexts: contexts?.get(traj) };
      writeSequence(seq, b, src, first, last, D, W, Z, this.maxTimestep);
      if (prompt) this.writePrompt(prompt, b, task.trajectories, task.candidates, this.sampleRng);
    }
    const { main, prompt: promptParams } = splitPromptVariables(this.dt.namedVariables());
    const params = withPrompt ? { ...main, ...promptParams } : main;
    const names = Object.keys(params);
    const list = names.map((n) => params[n]);
    const lrFactor = Math.min((this.dtSteps + 1) / cfg.warmup_steps, 1);
    const dropoutSeed = deriveSeed(this.seed, 'meta_dt', 'dropout', this.dtSteps);
    const stats = tf.tidy(() => {
      const input = sequenceTensors(seq, D, W, Z);
      if (prompt) {
        const p = sequenceTensors(prompt, D, W, 0);
        input.prompt = { returnsToGo: p.returnsToGo, states: p.states, actions: p.actions, timesteps: p.timesteps, mask: p.mask };
      }
      const mask = input.mask!;
      const count = tf.maximum(tf.sum(mask), 1);
      const { value, grads } = tf.variableGrads(() => {
        const predictions = this.dt.forward(input, true, dropoutSeed);
        if (this.shape.discreteActions) {
          const logProbs = tf.logSoftmax(predictions);
          const nll = tf.neg(tf.sum(tf.mul(logProbs, input.actions), 2));
          return tf.div(tf.sum(tf.mul(nll, mask)), count) as tf.Scalar;
        }
        const squared = tf.sum(tf.square(tf.sub(predictions, input.actions)), 2);
        // The reference's MSE: the mean over real steps and action dimensions.
        return tf.div(tf.sum(tf.mul(squared, mask)), tf.mul(count, W)) as tf.Scalar;
      }, list);
      const byName: Record<string, tf.Tensor> = {};
      names.forEach((n, i) => (byName[n] = grads[list[i].name]));
      const { norm: gnorm, scale: clip } = clipByGlobalNorm(names.map((n) => byName[n]), cfg.max_grad_norm);
      this.dtAdam.apply(pick(byName, main), clip, lrFactor);
      if (withPrompt) this.promptAdam!.apply(pick(byName, promptParams), clip, lrFactor);
      return tf.stack([value, gnorm]);
    });
    const [loss, gradNorm] = stats.dataSync();
    stats.dispose();
    this.dtSteps++;
    return { action_loss: loss, grad_norm: gradNorm, lr: cfg.lr * lrFactor, prompted: withPrompt ? 1 : 0 };
  }

  /**
   * A prompt segment into row `row`: a candidate drawn uniformly, its start chosen by the
   * config's rule (the world model's largest error, or uniform), k steps padded on the left when
   * the trajectory is shorter.
   */
  private writePrompt(out: SequenceArrays, row: number, trajectories: readonly EpisodeArrays[], candidates: readonly number[], rng: Rng, datasetTrajectories = true): void {
    const cfg = this.config;
    const k = cfg.prompt_length;
    const h = cfg.context_horizon;
    const pick = candidates[rng.int(candidates.length)];
    const traj = trajectories[pick];
    const T = traj.rewards.length;
    let start: number;
    if (T < k + h) {
      // Too short for a segment after a full context window: its last k steps (or all of it).
      start = Math.max(0, T - k);
    } else if (cfg.prompt === 'complementary') {
      const errors = this.predictionErrors(traj, datasetTrajectories);
      start = cfg.prompt_selection === 'argmax-window'
        ? selectPromptStart(errors, { variant: 'argmax-window', contextHorizon: h, promptLength: k })
        : selectPromptStart(errors, { variant: cfg.prompt_selection, contextHorizon: h, promptLength: k, rng });
    } else {
      // Uniform over the same starts the complementary rule chooses from, [h, T − k], so the
      // ablation differs from it only in the rule (Prompt-DT's own range starts at 0).
      start = h + rng.int(T - k - h + 1);
    }
    const last = Math.min(start + k, T) - 1;
    const rtg = returnsToGo(traj.rewards);
    const scale = cfg.return_scale;
    writeSequence(out, row, { obs: traj.obs, actions: traj.actions, scaledReturnsToGo: (t) => rtg[t] / scale }, start, last, this.D, this.W, 0, this.maxTimestep);
  }

  // --- acting ----------------------------------------------------------------------------------

  private taskData(task: string): TaskData {
    const found = this.data.find((d) => d.spec.key === task);
    if (!found) throw new Error(`meta_dt: unknown task '${task}' (tasks: ${this.tasks.map((t) => t.key).join(', ')})`);
    return found;
  }

  /** The split of each task (from its dataset's header): which ones the learner never trained on. */
  taskSplits(): Record<string, 'train' | 'test'> {
    return Object.fromEntries(this.data.map((d) => [d.spec.key, d.split]));
  }

  /** Every mode with prompts; only zero-shot for a model trained without them. */
  get inferenceModes(): readonly TaskInferenceMode[] {
    return this.config.prompt === 'none' ? ['zero-shot'] : ['zero-shot', 'few-shot', 'demo'];
  }

  /** The periodic evaluations' policy (`eval_mode`); always greedy (continuous actions are the DT's output; discrete ones its argmax), so `eval_greedy: false` changes nothing. */
  evaluationPolicy(task: string, numEnvs: number, seed: string, _options: EvaluationOptions = {}): Policy {
    return this.inferencePolicy(task, numEnvs, seed, this.config.eval_mode);
  }

  /**
   * A policy for `numEnvs` envs of `task` in `mode`. `few-shot` draws its prompts from
   * `ownEpisodes` (the model's own rollouts of the task, e.g. zero-shot ones); `demo` from the
   * task's dataset. Prompts are redrawn at every episode start, from a stream seeded by `seed`.
   */
  inferencePolicy(task: string, numEnvs: number, seed: string, mode: TaskInferenceMode, ownEpisodes?: readonly DatasetEpisode[]): Policy {
    const data = this.taskData(task);
    const cfg = this.config;
    if (mode !== 'zero-shot' && cfg.prompt === 'none') throw new Error(`meta_dt: ${mode} evaluation needs prompts, but this model was trained with prompt 'none'`);
    let prompts: PromptSource | undefined;
    if (mode === 'demo') {
      prompts = { trajectories: data.trajectories, candidates: data.candidates, fromDataset: true };
    } else if (mode === 'few-shot') {
      if (!ownEpisodes || ownEpisodes.length === 0) throw new Error(`meta_dt: few-shot evaluation of task '${task}' needs the model's own rollouts of it (none given)`);
      const own = ownEpisodes.flatMap((ep) => Array.from({ length: this.shape.numAgents }, (_, a) => agentTrajectory(ep, this.shape, a))).filter((t): t is Trajectory => t !== undefined && t.steps > 0);
      if (own.length === 0) throw new Error(`meta_dt: the own rollouts given for task '${task}' have no steps`);
      prompts = { trajectories: own, candidates: bestTrajectories(own, cfg.prompt_candidates), fromDataset: false };
    } else if (mode !== 'zero-shot') {
      throw new Error(`meta_dt: unknown evaluation mode '${String(mode)}' (zero-shot, few-shot or demo)`);
    }
    return new DecisionTransformerPolicy(this, numEnvs, data.targetReturn, new Rng(seed), prompts);
  }

  /**
   * The model's action output (a Box action, or a discrete action's logits) at every step of one
   * agent's side of `episode` played in `task`, without a prompt: the sequence up to step t is cut
   * as training cuts dataset trajectories (its z_t from the frozen world model over the episode,
   * the last K steps), with returns-to-go counted down from the task's target return as acting
   * does. On the model's own zero-shot episode it gives back the actions taken, which checks that
   * acting feeds the network what training does; on dataset episodes it shows what the model
   * would do in their place. [T, W]
   */
  actionsAlong(task: string, episode: DatasetEpisode, agent = 0): Float32Array {
    const data = this.taskData(task);
    const traj = agentTrajectory(episode, this.shape, agent);
    if (!traj || traj.steps === 0) throw new Error(`meta_dt: agent ${agent} takes no step in the episode given for task '${task}'`);
    const { D, W, Z } = this;
    const T = traj.steps;
    const K = this.config.horizon;
    const scale = this.config.return_scale;
    const contexts = Z > 0 ? this.trajectoryContexts(traj) : undefined;
    const toGo = new Float32Array(T);
    toGo[0] = data.targetReturn / scale;
    for (let t = 1; t < T; t++) toGo[t] = toGo[t - 1] - traj.rewards[t - 1] / scale;
    const seq = sequenceArrays(T, K, D, W, Z);
    for (let t = 0; t < T; t++) writeSequence(seq, t, { obs: traj.obs, actions: traj.actions, scaledReturnsToGo: (i) => toGo[i], contexts }, Math.max(0, t - K + 1), t, D, W, Z, this.maxTimestep);
    return tf.tidy(() => this.dt.predictLastAction(sequenceTensors(seq, D, W, Z)).dataSync() as Float32Array);
  }

  /** For DecisionTransformerPolicy: shapes and the pieces acting needs. */
  actingParts() {
    return { shape: this.shape, D: this.D, W: this.W, Z: this.Z, maxTimestep: this.maxTimestep, config: this.config, dt: this.dt, worldModel: this.Z > 0 ? this.worldModel : undefined };
  }

  /** A prompt for one acting row (called by the policy at every episode start). */
  promptFor(prompts: PromptSource, rng: Rng): SequenceArrays {
    const out = sequenceArrays(1, this.config.prompt_length, this.D, this.W, 0);
    this.writePrompt(out, 0, prompts.trajectories, prompts.candidates, rng, prompts.fromDataset);
    return out;
  }

  /** z of a window of the frozen world model, for the probe and the analyses: [N, Z]. */
  encodeWindows(windows: FlatContextWindows): Float32Array {
    const wm = this.worldModel;
    if (!wm) throw new Error('meta_dt: this model has no world model (task_representation none and no complementary prompts)');
    return tf.tidy(() => wm.encode(contextWindowTensors(windows, wm.spec)).dataSync() as Float32Array);
  }

  /**
   * z of the frozen world model at every dataset step of `task` whose context window is full
   * (t ≥ h), from all its trajectories or the lower / upper half by return (the data-quality
   * check); undefined without a world model.
   */
  taskRepresentations(task: string, half: 'all' | 'low' | 'high' = 'all'): { values: Float32Array; count: number; dim: number } | undefined {
    const wm = this.worldModel;
    if (!wm) return undefined;
    const data = this.taskData(task);
    const byReturn = data.trajectories.map((t, i) => ({ t, i })).sort((a, b) => a.t.return - b.t.return || a.i - b.i).map((x) => x.t);
    const cut = Math.floor(byReturn.length / 2);
    const chosen = half === 'all' ? data.trajectories : half === 'low' ? byReturn.slice(0, cut) : byReturn.slice(byReturn.length - cut);
    const h = wm.spec.contextHorizon;
    const Z = wm.spec.contextDim;
    const parts: Float32Array[] = [];
    for (const traj of chosen) {
      if (traj.steps <= h) continue;
      parts.push(this.trajectoryContexts(traj).subarray(h * Z));
    }
    const count = parts.reduce((n, p) => n + p.length / Z, 0);
    const values = new Float32Array(count * Z);
    let at = 0;
    for (const p of parts) {
      values.set(p, at);
      at += p.length;
    }
    return { values, count, dim: Z };
  }

  /** The task's parameters from its dataset header (null when its env defines none). */
  taskParameters(task: string): Record<string, unknown> | null {
    return this.taskData(task).parameters;
  }

  policySpecs(): Record<string, never> {
    // Acting needs the datasets (target returns, demonstrations) and the world model: evaluation
    // rebuilds the learner from its run (`troupe eval` does), so there is no inference-only spec.
    return {};
  }

  // --- checkpoints -----------------------------------------------------------------------------

  async captureState(): Promise<LearnerState> {
    return {
      models: {
        decision_transformer: await captureTensors(this.dt.namedVariables()),
        ...(this.worldModel ? { world_model: await captureTensors(this.worldModel.namedVariables()) } : {}),
      },
      optimizers: {
        dt: await this.dtAdam.capture(),
        ...(this.promptAdam ? { dt_prompt: await this.promptAdam.capture() } : {}),
        ...(this.worldModelAdam ? { world_model: await this.worldModelAdam.capture() } : {}) },
      rngs: { sample: this.sampleRng.state() },
      arrays: {},
      json: { algo: 'meta_dt', world_model_steps: this.worldModelSteps, dt_steps: this.dtSteps },
    };
  }

  async restoreState(state: LearnerState): Promise<void> {
    const who = 'meta_dt.restoreState';
    if (state.json.algo !== 'meta_dt') throw new Error(`${who}: state was captured by '${String(state.json.algo)}'`);
    const counters = [state.json.world_model_steps, state.json.dt_steps];
    if (!counters.every((c) => typeof c === 'number' && Number.isSafeInteger(c) && c >= 0)) throw new Error(`${who}: json.world_model_steps and json.dt_steps must be integers ≥ 0`);
    const dtModel = state.models.decision_transformer;
    if (!dtModel) throw new Error(`${who}: no model 'decision_transformer'`);
    if (!state.optimizers.dt) throw new Error(`${who}: no optimizer 'dt'`);
    if (!state.rngs.sample) throw new Error(`${who}: no rng 'sample'`);
    if (this.promptAdam && !state.optimizers.dt_prompt) throw new Error(`${who}: no optimizer 'dt_prompt', which this configuration trains`);
    if (this.worldModel && (!state.models.world_model || !state.optimizers.world_model)) throw new Error(`${who}: no model or optimizer 'world_model', which this configuration trains`);
    try {
      assignTensors(this.dt.namedVariables(), dtModel);
      if (this.worldModel) assignTensors(this.worldModel.namedVariables(), state.models.world_model);
    } catch (error) {
      throw new Error(`${who}: ${(error as Error).message}`);
    }
    this.dtAdam.restore(state.optimizers.dt, `${who}: optimizer 'dt'`);
    if (this.promptAdam) this.promptAdam.restore(state.optimizers.dt_prompt, `${who}: optimizer 'dt_prompt'`);
    if (this.worldModelAdam) this.worldModelAdam.restore(state.optimizers.world_model, `${who}: optimizer 'world_model'`);
    this.sampleRng = Rng.fromState(state.rngs.sample);
    this.worldModelSteps = counters[0] as number;
    this.dtSteps = counters[1] as number;
    // Derived from the world model's weights: recomputed on demand.
    this.contexts = undefined;
    this.errorCache.clear();
  }

  dispose(): void {
    this.dt.dispose();
    this.worldModel?.dispose();
    this.dtAdam.dispose();
    this.promptAdam?.dispose();
    this.worldModelAdam?.dispose();
  }
}

/** The DT's variables without and with the `prompt/` embedding layers. */
function splitPromptVariables(all: Record<string, tf.Variable>): { main: Record<string, tf.Variable>; prompt: Record<string, tf.Variable> } {
  const main: Record<string, tf.Variable> = {};
  const prompt: Record<string, tf.Variable> = {};
  for (const [name, v] of Object.entries(all)) (name.startsWith('prompt/') ? prompt : main)[name] = v;
  return { main, prompt };
}

function pick<T>(from: Record<string, T>, keys: Record<string, unknown>): Record<string, T> {
  return Object.fromEntries(Object.keys(keys).map((k) => [k, from[k]]));
}

function returnsToGo(rewards: Float32Array): Float32Array {
  const out = new Float32Array(rewards.length);
  let sum = 0;
  for (let t = rewards.length - 1; t >= 0; t--) out[t] = sum += rewards[t];
  return out;
}

function checkSameShape(shape: EnvShape, task: TaskSpec, firstKey: string): void {
  const s = task.shape;
  const same = s.obsDim === shape.obsDim && s.actDim === shape.actDim && s.numActions === shape.numActions && s.numAgents === shape.numAgents && s.discreteActions === shape.discreteActions && s.maxEpisodeSteps === shape.maxEpisodeSteps;
  if (!same) {
    throw new Error(
      `meta_dt: task '${task.key}' has another shape than '${firstKey}' (obs ${s.obsDim} vs ${shape.obsDim}, actions ${s.actDim}/${s.numActions} vs ${shape.actDim}/${shape.numActions}, ` +
        `agents ${s.numAgents} vs ${shape.numAgents}, episode ${s.maxEpisodeSteps} vs ${shape.maxEpisodeSteps} steps); one decision transformer needs one shape`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Acting: every (env, agent) row keeps its episode so far and acts on its last K steps
// ---------------------------------------------------------------------------------------------

class DecisionTransformerPolicy implements Policy {
  private readonly rows: number;
  private readonly T: number;
  private readonly obs: Float32Array[];
  private readonly actions: Float32Array[];
  private readonly rewards: Float32Array[];
  private readonly rtg: Float32Array[];
  private readonly contexts: Float32Array[];
  private readonly prompt: Array<SequenceArrays | undefined>;
  /** The step each row is about to take. */
  private readonly step: Int32Array;

  constructor(
    private readonly learner: MetaDecisionTransformer,
    private readonly numEnvs: number,
    private readonly targetReturn: number,
    private readonly rng: Rng,
    private readonly prompts?: PromptSource,
  ) {
    const { shape, D, W, Z } = learner.actingParts();
    this.rows = numEnvs * shape.numAgents;
    this.T = shape.maxEpisodeSteps;
    const each = <A>(f: () => A) => Array.from({ length: this.rows }, f);
    this.obs = each(() => new Float32Array((this.T + 1) * D));
    this.actions = each(() => new Float32Array(this.T * W));
    this.rewards = each(() => new Float32Array(this.T));
    this.rtg = each(() => new Float32Array(this.T + 1));
    this.contexts = each(() => new Float32Array((this.T + 1) * Z));
    this.prompt = new Array(this.rows).fill(undefined);
    this.step = new Int32Array(this.rows);
  }

  act(batch: PolicyBatch, out: Float32Array): void {
    const { shape, D, W, Z, maxTimestep, config, dt, worldModel } = this.learner.actingParts();
    const A = shape.numAgents;
    const E = this.numEnvs;
    if (batch.layout.numEnvs !== E) throw new Error(`meta_dt policy: built for ${E} envs, got a batch of ${batch.layout.numEnvs}`);
    const scale = config.return_scale;
    for (let e = 0; e < E; e++) {
      for (let a = 0; a < A; a++) {
        const r = e * A + a;
        if (batch.episodeStart[e]) {
          this.step[r] = 0;
          this.rtg[r][0] = this.targetReturn / scale;
          this.actions[r].fill(0);
          this.prompt[r] = this.prompts ? this.learner.promptFor(this.prompts, this.rng) : undefined;
        } else {
          if (!batch.rewards) throw new Error('meta_dt policy: the batch carries no rewards; a decision transformer needs the reward of every step (act through a VectorEnv)');
          const t = this.step[r];
          if (t >= this.T) throw new Error(`meta_dt policy: env ${e} ran past the ${this.T} steps its episodes last`);
          const reward = batch.rewards[r];
          this.rewards[r][t - 1] = reward;
          this.rtg[r][t] = this.rtg[r][t - 1] - reward / scale;
        }
        const t = this.step[r];
        this.obs[r].set(batch.obs.subarray(r * D, (r + 1) * D), t * D);
      }
    }
    // z_t of every row from its last h transitions, in one encoder call.
    if (Z > 0 && worldModel) {
      const windows: FlatContextWindows[] = [];
      for (let r = 0; r < this.rows; r++) {
        const t = this.step[r];
        windows.push(contextWindowAt({ obs: this.obs[r].subarray(0, (t + 1) * D), actions: this.actions[r].subarray(0, t * W), rewards: this.rewards[r].subarray(0, t) }, worldModel.spec, t));
      }
      const h = worldModel.spec.contextHorizon;
      const merged: FlatContextWindows = { count: this.rows, obs: new Float32Array(this.rows * h * D), actions: new Float32Array(this.rows * h * W), rewards: new Float32Array(this.rows * h) };
      windows.forEach((w, r) => {
        merged.obs.set(w.obs, r * h * D);
        merged.actions.set(w.actions, r * h * W);
        merged.rewards.set(w.rewards, r * h);
      });
      const zs = this.learner.encodeWindows(merged);
      for (let r = 0; r < this.rows; r++) this.contexts[r].set(zs.subarray(r * Z, (r + 1) * Z), this.step[r] * Z);
    }
    const K = config.horizon;
    const seq = sequenceArrays(this.rows, K, D, W, Z);
    for (let r = 0; r < this.rows; r++) {
      const t = this.step[r];
      const rtg = this.rtg[r];
      writeSequence(seq, r, { obs: this.obs[r], actions: this.actions[r], scaledReturnsToGo: (i) => rtg[i], contexts: this.contexts[r] }, Math.max(0, t - K + 1), t, D, W, Z, maxTimestep);
    }
    const usePrompt = this.prompt.some((p) => p !== undefined);
    const predicted = tf.tidy(() => {
      const input = sequenceTensors(seq, D, W, Z);
      if (usePrompt) {
        const k = config.prompt_length;
        const joined = sequenceArrays(this.rows, k, D, W, 0);
        this.prompt.forEach((p, r) => {
          if (!p) return;
          joined.returnsToGo.set(p.returnsToGo, r * k);
          joined.states.set(p.states, r * k * D);
          joined.actions.set(p.actions, r * k * W);
          joined.timesteps.set(p.timesteps, r * k);
          joined.mask.set(p.mask, r * k);
        });
        const p = sequenceTensors(joined, D, W, 0);
        input.prompt = { returnsToGo: p.returnsToGo, states: p.states, actions: p.actions, timesteps: p.timesteps, mask: p.mask };
      }
      return dt.predictLastAction(input).dataSync() as Float32Array;
    });
    for (let r = 0; r < this.rows; r++) {
      const t = this.step[r];
      const row = predicted.subarray(r * W, (r + 1) * W);
      if (shape.discreteActions) {
        // The most likely legal action.
        let best = -1;
        let bestLogit = -Infinity;
        for (let k = 0; k < shape.numActions; k++) {
          if (!batch.masks[r * shape.numActions + k]) continue;
          if (row[k] > bestLogit || best < 0) {
            best = k;
            bestLogit = row[k];
          }
        }
        const chosen = best < 0 ? 0 : best;
        out[r * shape.actDim] = chosen;
        this.actions[r][t * W + chosen] = 1;
      } else {
        out.set(row, r * shape.actDim);
        this.actions[r].set(row, t * W);
      }
      this.step[r] = t + 1;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer definition (what `trainers/index.ts` lists)
// ---------------------------------------------------------------------------------------------

export const metaDtTrainer: TrainerDefinition = {
  algorithms: [{ name: 'meta_dt', schema: metaDtConfigSchema, defaultNumEnvs: 10 }],
  kind: 'offline',
  multiTask: true,
  taskInference: true,
  checkTask(algo, task) {
    const s = task.shape;
    if (!Number.isFinite(s.maxEpisodeSteps) || s.maxEpisodeSteps < 1) throw new Error(`${algo}: task '${task.key}' has no finite episode length (maxEpisodeSteps ${s.maxEpisodeSteps}); the decision transformer's timestep embedding needs one`);
    if (!s.discreteActions) {
      if (!s.actionLow || !s.actionHigh) throw new Error(`${algo}: task '${task.key}' has continuous actions that are not Boxes; the decision transformer squashes onto Box bounds`);
      for (let a = 1; a < s.numAgents; a++) {
        for (let d = 0; d < s.actDim; d++) {
          if (s.actionLow[a * s.actDim + d] !== s.actionLow[d] || s.actionHigh[a * s.actDim + d] !== s.actionHigh[d]) {
            throw new Error(`${algo}: task '${task.key}': agent ${s.agentIds[a]}'s action bounds differ from ${s.agentIds[0]}'s; agents share one decision transformer`);
          }
        }
      }
    }
  },
  createLearner({ tasks, config, seed, datasets }) {
    return new MetaDecisionTransformer(tasks, config as MetaDtConfig, datasets ?? {}, seed);
  },
  /**
   * `troupe bench learner`: decision-transformer steps with prompts (the second phase, where
   * training spends most of its steps) at the Point-Robot benchmark's sizes (K 10, batch 32,
   * 2 layers; width = the bench's hidden size), on 20 synthetic episodes of the env's shape; a
   * named case's `config` may change any key (the `dt` case: the plain decision transformer of
   * PyTorch's reference, no prompt and no task representation). One update = one gradient step;
   * samples = B·K sequence steps; tokens = 3·B·(K + k), all that pass through the transformer.
   */
  async benchmark({ task, settings, sampler, useRnn, config: overrides }): Promise<LearnerBenchCase | undefined> {
    if (useRnn) return undefined;
    const { numAgents: A, obsDim, actDim, numActions, discreteActions, stateDim } = task.shape;
    const T = Math.min(task.shape.maxEpisodeSteps, 50);
    if (!Number.isFinite(T) || T < 1) return undefined;
    const rng = new Rng(deriveSeed(settings.seed, 'bench-meta-dt'));
    const episodes: DatasetEpisode[] = Array.from({ length: 20 }, () => {
      const actions = new Float32Array(T * A * actDim);
      for (let i = 0; i < T * A; i++) {
        if (discreteActions) actions[i] = sampler.discreteAction(i % A);
        else for (let d = 0; d < actDim; d++) actions[i * actDim + d] = rng.uniform(task.shape.actionLow![(i % A) * actDim + d], task.shape.actionHigh![(i % A) * actDim + d]);
      }
      const rewards = Float32Array.from({ length: T * A }, () => sampler.reward());
      return {
        obs: sampler.obs(T + 1),
        state: new Float32Array((T + 1) * stateDim),
        actions,
        rewards,
        alive: new Uint8Array(T * A).fill(1),
        masks: discreteActions ? sampler.masks(T) : new Uint8Array(0),
        terminated: 0,
        return: rewards.reduce((a, b) => a + b, 0),
        success: NaN,
      };
    });
    const dataset: OfflineDataset = { header: { env: task.env, shape: task.shape, task: task.key, policy: 'synthetic', quality: 'synthetic', seed: '0', split: 'train' }, episodes };
    const config = metaDtConfigSchema.parse({
      name: 'meta_dt',
      world_model_steps: 1,
      context_hidden_dim: 64,
      decoder_hidden_dims: [64, 64],
      horizon: 10,
      embed_dim: settings.hiddenDim,
      num_layers: 2,
      batch_size: 32,
      warm_train_steps: 0,
      warmup_steps: 100,
      ...overrides,
    });
    const learner = new MetaDecisionTransformer([task], config, { [task.key]: dataset }, settings.seed);
    learner.trainStep(); // the world model's one step; everything after is the DT
    learner.trainStep(); // the first DT step computes every trajectory's z once
    const width = discreteActions ? numActions : actDim;
    const promptSteps = config.prompt === 'none' ? 0 : config.prompt_length;
    const contextDim = config.task_representation === 'none' ? 0 : config.context_dim;
    const flops = decisionTransformerFlops(
      { stateDim: obsDim, actionDim: width, embedDim: config.embed_dim, innerDim: config.inner_dim ?? 4 * config.embed_dim, numLayers: config.num_layers, contextDim, stateEmbedDim: config.state_embed_dim },
      config.batch_size,
      config.horizon,
      promptSteps,
    );
    const samples = config.batch_size * config.horizon;
    return {
      samplesPerUpdate: samples,
      tokensPerUpdate: 3 * config.batch_size * (config.horizon + promptSteps),
      gradientSteps: 1,
      samplePasses: samples,
      flopsPerUpdate: flops.forward + flops.backward,
      update: async () => timed(() => learner.trainStep()),
      dispose: () => learner.dispose(),
    };
  },
};
