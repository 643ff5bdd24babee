/**
 * MTMA ("Multi-Task Multi-Agent Shared Layers are Universal Cognition of Multi-Agent
 * Coordination", Wang et al. 2023; reference code wangjw55/MTAPN), CleanRL style: several
 * tasks trained concurrently by one learner, read top to bottom.
 *
 *  - Per task, PERCEPTION layers: for agent i and each candidate action a,
 *    obs_i ⊕ onehot(last action_i) ⊕ onehot(i) ⊕ onehot(a) → Linear → ReLU → GRUCell
 *    (`rnn_hidden_dim`; one hidden state per agent and candidate, the chosen action's kept for
 *    the next step), or → Linear → ReLU with `use_rnn: false`.
 *  - One SHARED decision network (DecL): Linear(rnn_hidden_dim → decl_hidden_dim) → ReLU →
 *    Linear(→ 1) scores each candidate; the agent's Q-vector is the stack of the scores, illegal
 *    actions masked. The DecL sees only the hidden size, so tasks of any obs and action sizes
 *    share it (`agents/networks/action-conditioned.ts`).
 *  - Per task: its own mixer (`vdn`, or `qmix` with a state hypernetwork), target networks,
 *    ε-greedy acting on its own ε schedule (over its own env steps) and episode replay.
 *
 * The update. Each finished episode of any task adds `updates_per_episode / num_tasks`
 * gradient steps of credit, so a task takes part in as many updates as a single-task VDN run
 * on its episodes would make (a one-task MTMA run updates exactly like VDN's cadence). Once
 * every task's replay holds `batch_size` episodes, one update samples a batch from EVERY task
 * and minimises, in one backward pass (as the reference trains all tasks in one step),
 *
 *   L = Σ_k w_k L_k,   L_k = Σ filled·½(Q_tot,k − y_k)² / Σ filled
 *
 * where y_k are TD(λ) targets (λ = `td_lambda`) of the task's target networks:
 *
 *   G_t = r_t + γ (1 − term_t) [(1 − λ f_{t+1}) V_{t+1} + λ f_{t+1} G_{t+1}]
 *
 * with V_{t+1} the target mixer's value of the next step's greedy actions (double Q: argmax of
 * the online net over legal actions, valued by the target net) and f_{t+1} = 1 while the
 * episode continues, so the last real step bootstraps fully (time-limit truncations too).
 *
 * Task weights (`task_weighting`):
 *  - `win_rate` (the reference's `use_weighted_sum_loss`): w_k = (1 − wr_k) / Σ_j (1 − wr_j)
 *    for tasks below a 100% win rate, 0.01 for tasks at 100%. wr_k is the success rate of the
 *    task's last `win_rate_window` finished training episodes (0 before the first; episodes of
 *    envs that report no success count as lost, so such tasks weigh like tasks never won).
 *    When every task is at 100%, every weight is 0.01, as in the reference: all losses shrink by
 *    the same factor, which Adam's scale invariance makes nearly the same step as equal weights.
 *  - `equal`: w_k = 1 / num_tasks (the ablation).
 *
 * Two Adam optimisers (PyTorch's formulation) as in the reference: perception layers + mixers
 * at `lr`, the DecL at `lr` (or `lr / num_tasks` with `decl_small_lr`). Each optimiser's
 * gradients are clipped to `max_grad_norm` on their own (so freezing the DecL does not change
 * how perception is clipped). Target networks (every perception, the DecL and every mixer) are
 * hard copies every `target_update_interval_or_tau` episodes per task (the run's finished
 * episodes / num_tasks), else Polyak-averaged with τ after every update.
 *
 * Transfer (`transfer.mode`): `scratch`; `frozen` loads the DecL of an MTMA run
 * (`transfer.decl_from`, a run directory or .ckpt; `loadDeclWeights`) and never updates it (no
 * optimiser); `finetune` loads it and trains it at `finetune_lr_scale` × its learning rate;
 * `random_frozen` keeps the DecL's seeded random initialisation (the one `scratch` starts from)
 * frozen — the capacity control. Perception layers and mixers always start fresh.
 *
 * Checkpoints. The DecL is the model `mtma/decl` (loadable alone); each task's acting network
 * is `tasks/<key>/policy` (its perception plus a copy of the DecL under `decl/`, what
 * `loadPolicy` builds an `action-conditioned-q` policy from).
 *
 * Metrics: rows are per task. An item of task k reports the mean, over the updates since k's
 * previous item, of k's loss (`loss`, unweighted), weight (`task_weight`), window win rate
 * (`task_win_rate`), `q_taken_mean`, `target_mean`, `td_error_abs`, and the update's shared
 * `total_loss`, `grad_norm` and `decl_grad_norm`; `grad_steps` counts each update once, on the
 * item that triggered it (so a task's `task_updates` are the updates its episodes triggered).
 *
 * Defaults differ from the reference where a 2-core CPU needs it: `rnn_hidden_dim` 64 and
 * `decl_hidden_dim` 32 (reference 128 and 64).
 */
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { type QUpdateArrays, qUpdateArrays } from './q-update-arrays';
import type { Experience } from '../agents/experience';
import { DecisionNetwork, PerceptionNetwork } from '../agents/networks/action-conditioned';
import { QMixer } from '../agents/networks/qmix-mixer';
import { ActionConditionedPolicy } from '../agents/policies/action-conditioned-policy';
import { type AgentInputSpec, agentInputSpec, inputWidth } from '../agents/policies/agent-inputs';
import { DECISION_PREFIX } from '../agents/policies/build-policy';
import type { Policy } from '../agents/policies/policy';
import { type ActionConditionedPolicySpec, POLICY_SPEC_FORMAT } from '../agents/policies/policy-spec';
import { locateCheckpointFile } from '../runtime/core/checkpoint-locator';
import {
  type JsonObject,
  type NamedTensorData,
  type SerializedArray,
  assignTensors,
  captureTensors,
  decodeCheckpoint,
  deserializeArray,
  serializeArray,
  underPrefix,
  withPrefix,
} from '../runtime/core/checkpoint-format';
import { Rng, deriveSeed } from '../runtime/core/rng';
import { Adam, clipByGlobalNorm } from './adam';
import { MAX_EPISODE_BATCH, MAX_EPISODE_REPLAY, MAX_REPEATS, discount, layerWidth, nonNegativeInt, positive, positiveInt, unit } from './config-keys';
import { type EpisodeBatch, EpisodeCollector, EpisodeReplay, type StoredState, episodeShapeOf } from './episode-replay';
import type { Collection, LearnerState, OnlineLearner, TaskSpec, TrainStats, TrainerDefinition } from './learner';
import { taskPrefix } from './per-task-learner';
import { mixerFlops, mlpFlops } from '../agents/networks/flops';
import type { LearnerBenchCase } from './learner';
import { syntheticEpisode, timed } from './synthetic-experience';

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

export const TRANSFER_MODES = ['scratch', 'frozen', 'finetune', 'random_frozen'] as const;
export type TransferMode = (typeof TRANSFER_MODES)[number];

export const mtmaTransferSchema = z
  .object({
    mode: z.enum(TRANSFER_MODES).default('scratch'),
    /** A run directory or .ckpt of an MTMA run whose DecL is loaded (frozen and finetune). */
    decl_from: z.string().min(1).optional(),
    /** The loaded DecL's learning rate as a fraction of its usual one (finetune). */
    finetune_lr_scale: positive().default(0.1),
  })
  .strict();

export const mtmaConfigSchema = z
  .object({
    name: z.literal('mtma'),
    lr: positive().default(0.001),
    gamma: discount().default(0.99),
    /** EPyMARL's `grad_norm_clip`, applied to each optimiser's gradients. */
    max_grad_norm: positive().default(10),
    /** Perception hidden size, the one size the DecL knows (reference 128). */
    rnn_hidden_dim: layerWidth().default(64),
    /** The DecL's hidden layer (reference 64). */
    decl_hidden_dim: layerWidth().default(32),
    use_rnn: z.boolean().default(true),
    obs_last_action: z.boolean().default(true),
    obs_agent_id: z.boolean().default(true),
    /** Episodes sampled from each task's replay per update. */
    batch_size: positiveInt(MAX_EPISODE_BATCH).default(32),
    /** Gradient steps per finished episode of each task (1: EPyMARL's episode runner). */
    updates_per_episode: positive().lte(MAX_REPEATS).default(1),
    /** Each task's replay capacity in episodes. */
    buffer_size: positiveInt(MAX_EPISODE_REPLAY).default(5000),
    epsilon_start: unit().default(1.0),
    epsilon_finish: unit().default(0.05),
    /** Env steps of a task over which its ε falls linearly from start to finish. */
    epsilon_anneal_time: nonNegativeInt().default(100000),
    evaluation_epsilon: unit().default(0),
    double_q: z.boolean().default(true),
    td_lambda: unit().default(0.6),
    /** Episodes per task between hard target copies when ≥ 1, else the Polyak rate τ. */
    target_update_interval_or_tau: positive().default(200),
    mixer: z.enum(['vdn', 'qmix']).default('vdn'),
    mixing_embed_dim: layerWidth().default(32),
    hypernet_layers: z.union([z.literal(1), z.literal(2)]).default(2),
    hypernet_embed: layerWidth().default(64),
    task_weighting: z.enum(['win_rate', 'equal']).default('win_rate'),
    /** Recent training episodes per task whose success rate drives `win_rate` weighting. */
    win_rate_window: positiveInt(1_000_000).default(100),
    /** Train the DecL at lr / num_tasks (the reference's `use_small_lr_for_decision`). */
    decl_small_lr: z.boolean().default(false),
    transfer: mtmaTransferSchema.default({}),
  })
  .strict();
export type MtmaConfig = z.output<typeof mtmaConfigSchema>;

/** Added to illegal actions' Q: never wins a max, stays finite in float32. */
/** The checkpoint model holding the shared decision network alone. */
export const DECL_MODEL = 'mtma/decl';
const TARGET_DECL_MODEL = 'mtma/targetDecl';
/** The weight of a task already won every time (the reference's). */
export const SOLVED_TASK_WEIGHT = 0.01;

// ---------------------------------------------------------------------------------------------
// Task weighting
// ---------------------------------------------------------------------------------------------

/** Loss weights from the tasks' win rates (see the header): win_rate or equal. */
export function taskWeights(winRates: readonly number[], weighting: MtmaConfig['task_weighting']): number[] {
  const K = winRates.length;
  if (weighting === 'equal') return winRates.map(() => 1 / K);
  const losing = winRates.reduce((s, w) => s + (w < 1 ? 1 - w : 0), 0);
  return winRates.map((w) => (w < 1 ? (1 - w) / losing : SOLVED_TASK_WEIGHT));
}

// ---------------------------------------------------------------------------------------------
// Loading a DecL for transfer
// ---------------------------------------------------------------------------------------------

export interface DeclWeights {
  /** The checkpoint file read. */
  file: string;
  /** The hidden size the DecL reads (the source run's `rnn_hidden_dim`) and its own hidden layer. */
  inputDim: number;
  hiddenDim: number;
  /** Its tensors by variable name (`fc0/w`, `fc0/b`, `fc1/w`, `fc1/b`). */
  weights: NamedTensorData;
}

/**
 * Reads only the shared decision network (model `mtma/decl`) of an MTMA run, from a run
 * directory (its newest checkpoint), its checkpoints folder or a .ckpt file. Synchronous, so
 * a learner can load it while it is built.
 */
export function loadDeclWeights(target: string): DeclWeights {
  const file = locateCheckpointFile(target).path;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read checkpoint ${file}: ${(error as Error).message}`);
  }
  const data = decodeCheckpoint(bytes, file);
  const weights = data.models[DECL_MODEL];
  if (!weights) {
    const algo = data.config.algo;
    const name = typeof algo === 'object' && algo !== null && !Array.isArray(algo) ? algo.name : undefined;
    throw new Error(`${file} holds no MTMA decision network (model '${DECL_MODEL}')${typeof name === 'string' ? `: it is a checkpoint of a '${name}' run` : ''}; transfer.decl_from must name an mtma run`);
  }
  const first = weights['fc0/w'];
  const last = weights['fc1/w'];
  if (!first || !last || first.shape.length !== 2 || last.shape.length !== 2 || last.shape[0] !== first.shape[1] || last.shape[1] !== 1) {
    throw new Error(`${file}: model '${DECL_MODEL}' is not a decision network (expected fc0/w [H, D] and fc1/w [D, 1])`);
  }
  return { file, inputDim: first.shape[0], hiddenDim: first.shape[1], weights };
}

// ---------------------------------------------------------------------------------------------
// One task's part of the learner
// ---------------------------------------------------------------------------------------------

/** Per-task statistics waiting for the task's next item (sums and counts, by name). */
interface PendingStats {
  sums: Record<string, number>;
  counts: Record<string, number>;
}

class TaskPart {
  readonly inputs: AgentInputSpec;
  readonly inputWidth: number;
  readonly perception: PerceptionNetwork;
  readonly targetPerception: PerceptionNetwork;
  readonly mixer?: QMixer;
  readonly targetMixer?: QMixer;
  /** The QMIX mixer's state width: the env's state, else all agents' observations. */
  readonly mixerStateDim: number;
  readonly replay: EpisodeReplay;
  readonly collector: EpisodeCollector;
  readonly acting: ActionConditionedPolicy;
  readonly actingMode: { kind: 'epsilon-greedy'; epsilon: () => number; rng: Rng };
  envSteps = 0;
  /** Success (1/0) of the task's last finished training episodes, oldest first. */
  recentWins: number[] = [];
  pending: PendingStats = { sums: {}, counts: {} };

  constructor(
    readonly task: TaskSpec,
    config: MtmaConfig,
    seed: number | string,
    decl: DecisionNetwork,
  ) {
    const shape = task.shape;
    this.inputs = agentInputSpec(shape, { obsLastAction: config.obs_last_action, obsAgentId: config.obs_agent_id });
    this.inputWidth = inputWidth(this.inputs);
    const initSeed = deriveSeed(seed, 'mtma', 'init', 'task', task.key);
    const spec = { inputDim: this.inputWidth, numActions: shape.numActions, hiddenDim: config.rnn_hidden_dim, recurrent: config.use_rnn, seed: initSeed, role: 'perception' };
    this.perception = new PerceptionNetwork(spec);
    this.targetPerception = new PerceptionNetwork({ ...spec, init: 'zeros' });
    this.targetPerception.copyFrom(this.perception);
    this.mixerStateDim = shape.stateDim > 0 ? shape.stateDim : shape.numAgents * shape.obsDim;
    if (config.mixer === 'qmix') {
      const mixerSpec = { numAgents: shape.numAgents, stateDim: this.mixerStateDim, embedDim: config.mixing_embed_dim, hypernetLayers: config.hypernet_layers, hypernetEmbed: config.hypernet_embed, seed: deriveSeed(initSeed, 'mixer') };
      this.mixer = new QMixer(mixerSpec);
      this.targetMixer = new QMixer(mixerSpec);
      this.targetMixer.copyFrom(this.mixer);
    }
    this.replay = new EpisodeReplay(episodeShapeOf(shape), config.buffer_size);
    this.collector = new EpisodeCollector({ ...shape, numEnvs: task.numEnvs });
    const { epsilon_start: start, epsilon_finish: finish, epsilon_anneal_time: T } = config;
    // Each task's ε runs on its own env steps, as in a run of that task alone.
    const epsilon = () => start + (finish - start) * (T > 0 ? Math.min(1, this.envSteps / T) : 1);
    this.actingMode = { kind: 'epsilon-greedy', epsilon, rng: new Rng(deriveSeed(seed, 'mtma', 'act', task.key)) };
    this.acting = new ActionConditionedPolicy(this.perception, decl, this.inputs, shape, task.numEnvs, this.actingMode);
  }

  winRate(): number {
    return this.recentWins.length === 0 ? 0 : this.recentWins.reduce((a, b) => a + b, 0) / this.recentWins.length;
  }

  addPending(stats: TrainStats): void {
    for (const [k, v] of Object.entries(stats)) {
      this.pending.sums[k] = (this.pending.sums[k] ?? 0) + v;
      this.pending.counts[k] = (this.pending.counts[k] ?? 0) + 1;
    }
  }

  takePending(): TrainStats | undefined {
    const keys = Object.keys(this.pending.sums);
    if (keys.length === 0) return undefined;
    const out: TrainStats = {};
    for (const k of keys) out[k] = this.pending.sums[k] / this.pending.counts[k];
    this.pending = { sums: {}, counts: {} };
    return out;
  }

  /** Perception and (QMIX) mixer variables under this task's prefix: what the perception optimiser trains. */
  trainedVariables(): Record<string, tf.Variable> {
    const prefix = taskPrefix(this.task.key);
    return { ...withPrefix(`${prefix}perception/`, this.perception.namedVariables()), ...(this.mixer ? withPrefix(`${prefix}mixer/`, this.mixer.namedVariables()) : {}) };
  }

  dispose(): void {
    this.perception.dispose();
    this.targetPerception.dispose();
    this.mixer?.dispose();
    this.targetMixer?.dispose();
  }
}

/** One task's batch in the layouts the update's tensors take (time-major, like the batch). */
interface TaskArrays extends QUpdateArrays {
  B: number;
  T: number;
  /** [T, B] */
  reward: Float32Array;
  /** QMIX mixer states [T+1, B, S] (empty for VDN). */
  states: Float32Array;
}

function taskArrays(part: TaskPart, batch: EpisodeBatch): TaskArrays {
  return {
    B: batch.size,
    T: batch.steps,
    // The taken action's one-hot also selects the hidden state carried on, so it has a row T too.
    ...qUpdateArrays(batch, part.task.shape, part.inputs, part.inputWidth, { takenRowAfterEnd: true }),
    reward: Float32Array.from(batch.reward),
    states: part.mixer ? (part.task.shape.stateDim > 0 ? batch.state : batch.obs) : new Float32Array(0),
  };
}

/**
 * TD(λ) returns over [T, B] (time-major): `nextValue[t]` is the bootstrap value of the
 * observation after step t, `filled` marks real steps (see the header's formula).
 */
export function tdLambdaTargets(reward: Float32Array, notDone: Float32Array, filled: Float32Array, nextValue: ArrayLike<number>, B: number, T: number, gamma: number, lambda: number): Float32Array {
  const out = new Float32Array(T * B);
  for (let b = 0; b < B; b++) {
    let after = 0;
    for (let t = T - 1; t >= 0; t--) {
      const i = t * B + b;
      const continues = t + 1 < T ? filled[i + B] : 0;
      const v = nextValue[i];
      out[i] = reward[i] + gamma * notDone[i] * ((1 - lambda * continues) * v + lambda * continues * after);
      after = out[i];
    }
  }
  return out;
}

/** `scale`/(number of filled steps) on filled steps, else 0: a weighted sum with these is a mean over filled steps. */
function filledWeights(filled: Float32Array, scale: number): Float32Array {
  let count = 0;
  for (const f of filled) count += f;
  const w = scale / Math.max(count, 1);
  return Float32Array.from(filled, (f) => f * w);
}

/**
 * The shared DecL's scores for every task's candidate features ([..., K_k, H] each → [..., K_k]):
 * all tasks' rows in one pass (one matmul per layer instead of one per task).
 */
function scoreTasks(decl: DecisionNetwork, features: tf.Tensor[]): tf.Tensor[] {
  if (features.length === 1) return [decl.score(features[0])];
  const H = decl.decision.inputDim;
  const rows = features.map((f) => f.size / H);
  const q = tf.reshape(decl.score(tf.concat(features.map((f) => tf.reshape(f, [-1, H])))), [-1]);
  return tf.split(q, rows).map((qk, k) => tf.reshape(qk, features[k].shape.slice(0, -1)));
}

// ---------------------------------------------------------------------------------------------
// The learner
// ---------------------------------------------------------------------------------------------

export interface MtmaLearnerOptions {
  tasks: readonly TaskSpec[];
  config: MtmaConfig;
  seed: number | string;
}

export class MtmaLearner implements OnlineLearner {
  readonly kind = 'online';
  readonly tasks: readonly TaskSpec[];
  readonly config: MtmaConfig;
  readonly decl: DecisionNetwork;
  readonly targetDecl: DecisionNetwork;
  readonly parts: TaskPart[] = [];
  /** The DecL is trained (scratch, finetune) or fixed (frozen, random_frozen). */
  readonly declTrained: boolean;
  /** Where a transferred DecL came from. */
  readonly declSource?: string;
  private readonly perceptionAdam: Adam;
  private readonly declAdam?: Adam;
  private readonly perceptionParams: Record<string, tf.Variable>;
  private readonly declParams: Record<string, tf.Variable>;
  private sampleRng: Rng;

  /** Finished episodes of all tasks. */
  private episodes = 0;
  private updateCredit = 0;
  private lastTargetUpdateEpisode = 0;
  private updates = 0;

  get updateCount(): number {
    return this.updates;
  }

  constructor(options: MtmaLearnerOptions) {
    const { config, seed } = options;
    this.config = config;
    this.tasks = options.tasks;
    if (this.tasks.length === 0) throw new Error('mtma: needs at least one task');
    for (const t of this.tasks) {
      if (!t.shape.discreteActions || t.shape.numActions < 1) throw new Error(`mtma: task '${t.key}' (env '${t.env.id}') has no discrete actions`);
    }
    const H = config.rnn_hidden_dim;
    const mode = config.transfer.mode;
    const declSpec = { inputDim: H, hiddenDim: config.decl_hidden_dim, seed: deriveSeed(seed, 'mtma', 'init', 'decl') };
    this.decl = new DecisionNetwork(declSpec);
    this.targetDecl = new DecisionNetwork({ ...declSpec, init: 'zeros' });
    try {
      if (mode === 'frozen' || mode === 'finetune') {
        const from = config.transfer.decl_from;
        if (!from) throw new Error(`algo.transfer.decl_from: required with transfer.mode '${mode}' (a run directory or .ckpt of an mtma run)`);
        let loaded: DeclWeights;
        try {
          loaded = loadDeclWeights(from);
        } catch (error) {
          throw new Error(`algo.transfer.decl_from: ${(error as Error).message}`);
        }
        if (loaded.inputDim !== H) throw new Error(`algo.transfer.decl_from: the decision network in ${loaded.file} reads hidden size ${loaded.inputDim}, but this run's algo.rnn_hidden_dim is ${H}; set rnn_hidden_dim: ${loaded.inputDim}`);
        if (loaded.hiddenDim !== config.decl_hidden_dim) throw new Error(`algo.transfer.decl_from: the decision network in ${loaded.file} has decl_hidden_dim ${loaded.hiddenDim}, but this run's algo.decl_hidden_dim is ${config.decl_hidden_dim}`);
        assignTensors(this.decl.namedVariables(), loaded.weights);
        this.declSource = loaded.file;
      }
      this.targetDecl.copyFrom(this.decl);
      for (const task of this.tasks) this.parts.push(new TaskPart(task, config, seed, this.decl));
    } catch (error) {
      this.decl.dispose();
      this.targetDecl.dispose();
      for (const p of this.parts) p.dispose();
      throw error;
    }
    this.declTrained = mode === 'scratch' || mode === 'finetune';
    this.perceptionParams = Object.assign({}, ...this.parts.map((p) => p.trainedVariables())) as Record<string, tf.Variable>;
    this.declParams = withPrefix('decl/', this.decl.namedVariables());
    this.perceptionAdam = new Adam({ lr: config.lr, epsilon: 1e-8 }, this.perceptionParams);
    if (this.declTrained) this.declAdam = new Adam({ lr: this.declLearningRate(), epsilon: 1e-8 }, this.declParams);
    this.sampleRng = new Rng(deriveSeed(seed, 'mtma', 'sample'));
  }

  /** The DecL's learning rate: lr (÷ num_tasks with `decl_small_lr`), × finetune_lr_scale when fine-tuning. */
  declLearningRate(): number {
    const { lr, decl_small_lr: small, transfer } = this.config;
    const base = small ? lr / this.tasks.length : lr;
    return transfer.mode === 'finetune' ? base * transfer.finetune_lr_scale : base;
  }

  private part(task: string): TaskPart {
    const p = this.parts.find((x) => x.task.key === task);
    if (!p) throw new Error(`mtma: no task '${task}' in this run (tasks: ${this.tasks.map((t) => t.key).join(', ')})`);
    return p;
  }

  collection(task: string): Collection {
    this.part(task);
    return { mode: 'transition' };
  }

  collectionPolicy(task: string): Policy {
    return this.part(task).acting;
  }

  policyVersion(): number {
    return this.updates;
  }

  /** ε of `task` for its env steps so far. */
  epsilon(task: string): number {
    return this.part(task).actingMode.epsilon();
  }

  /** The tasks' loss weights now (in task order). */
  currentWeights(): number[] {
    return taskWeights(
      this.parts.map((p) => p.winRate()),
      this.config.task_weighting,
    );
  }

  // --- the stream -----------------------------------------------------------------------------

  observe(item: Experience, envSteps: number): TrainStats | undefined {
    if (item.kind !== 'transition') throw new Error(`mtma: observe expects transitions (collection mode 'transition'), got a chunk`);
    const part = this.part(item.task);
    part.envSteps = envSteps;
    for (const ep of item.episodes) {
      if (ep.aborted) continue;
      part.recentWins.push(Number.isNaN(ep.success) ? 0 : ep.success);
      if (part.recentWins.length > this.config.win_rate_window) part.recentWins.shift();
    }
    let gradSteps = 0;
    for (const episode of part.collector.add(item)) {
      part.replay.insert(episode);
      this.episodes++;
      // Shared over tasks: each task takes part in about `updates_per_episode` updates per episode of its own.
      this.updateCredit += this.config.updates_per_episode / this.tasks.length;
      for (; this.updateCredit >= 1; this.updateCredit -= 1) {
        if (this.parts.every((p) => p.replay.size >= this.config.batch_size)) {
          this.update();
          gradSteps++;
        }
      }
    }
    const stats = part.takePending();
    if (!stats && gradSteps === 0) return undefined;
    return { ...stats, epsilon: part.actingMode.epsilon(), grad_steps: gradSteps };
  }

  episodesReset(task: string): void {
    const part = this.part(task);
    part.collector.reset();
    part.acting.reset();
  }

  /** Greedy (ε = `evaluation_epsilon`) acting for `numEnvs` envs of `task`, with memory of its own. */
  evaluationPolicy(task: string, numEnvs: number, seed: string): Policy {
    const part = this.part(task);
    const eps = this.config.evaluation_epsilon;
    return new ActionConditionedPolicy(part.perception, this.decl, part.inputs, part.task.shape, numEnvs, { kind: 'epsilon-greedy', epsilon: () => eps, rng: new Rng(deriveSeed(seed, 'mtma', 'evaluate')) });
  }

  policySpecs(): Record<string, ActionConditionedPolicySpec> {
    const cfg = this.config;
    return Object.fromEntries(
      this.parts.map((p) => [
        p.task.key,
        {
          format: POLICY_SPEC_FORMAT,
          kind: 'action-conditioned-q',
          model: `${taskPrefix(p.task.key)}policy`,
          seedPath: ['mtma', 'evaluate'],
          shape: p.task.shape,
          network: { inputDim: p.inputWidth, hiddenDim: cfg.rnn_hidden_dim, declHiddenDim: cfg.decl_hidden_dim, recurrent: cfg.use_rnn },
          inputs: { obsLastAction: cfg.obs_last_action, obsAgentId: cfg.obs_agent_id },
          epsilon: cfg.evaluation_epsilon,
        },
      ]),
    );
  }

  // --- the update -----------------------------------------------------------------------------

  /**
   * One gradient step on a batch of `batch_size` episodes from every task's replay (the weighted
   * sum of the tasks' losses), then the target update. Each task's statistics wait for its next item.
   * `weights` replaces the configured weighting for this step (tests: a step on one task's loss alone).
   */
  update(weights: readonly number[] = this.currentWeights()): void {
    const cfg = this.config;
    if (weights.length !== this.parts.length) throw new Error(`mtma.update: ${weights.length} task weights for ${this.parts.length} tasks`);
    const winRates = this.parts.map((p) => p.winRate());
    const arrays = this.parts.map((p) => taskArrays(p, p.replay.sample(cfg.batch_size, this.sampleRng)));
    const perceptionNames = Object.keys(this.perceptionParams);
    const declNames = Object.keys(this.declParams);
    const trained = [...perceptionNames.map((n) => this.perceptionParams[n]), ...(this.declTrained ? declNames.map((n) => this.declParams[n]) : [])];

    const out = tf.tidy(() => {
      const inputs = this.parts.map((part, k) => {
        const { numAgents: A, numActions: K } = part.task.shape;
        const a = arrays[k];
        const { B, T } = a;
        const D = part.inputWidth;
        const xs = tf.tensor3d(a.inputs, [T + 1, B * A, D]);
        const taken = tf.tensor3d(a.taken, [T + 1, B * A, K]);
        const h0 = tf.zeros([B * A, cfg.rnn_hidden_dim]) as tf.Tensor2D;
        return { xs, taken, h0 };
      });
      // The target nets' Q on every row, illegal next actions masked; outside the tape.
      const targetFeatures = this.parts.map((part, k) => part.targetPerception.unroll(inputs[k].xs, inputs[k].taken, inputs[k].h0));
      const targetQ = scoreTasks(this.targetDecl, targetFeatures).map((q, k) => {
        const { numAgents: A, numActions: K } = this.parts[k].task.shape;
        const { B, T } = arrays[k];
        return tf.add(tf.reshape(tf.slice(q, 1, T), [T, B, A, K]), tf.tensor4d(arrays[k].illegalNext, [T, B, A, K]));
      });

      const kept: { loss: tf.Scalar; chosen: tf.Tensor1D; y: tf.Tensor1D }[] = [];
      const { value: total, grads } = tf.variableGrads(() => {
        const features = this.parts.map((part, k) => part.perception.unroll(inputs[k].xs, inputs[k].taken, inputs[k].h0));
        const q = scoreTasks(this.decl, features).map((qk, k) => {
          const { numAgents: A, numActions: K } = this.parts[k].task.shape;
          const { B, T } = arrays[k];
          return tf.reshape(qk, [T + 1, B, A, K]);
        });
        const next = q.map((qk, k) => tf.slice(qk, 1, arrays[k].T));
        // TD(λ) needs a backward recursion over time: done on the (gradient-free) values in JS,
        // after one read of every task's bootstrap values.
        const nextValues = this.bootstrapValues(next, targetQ, arrays).dataSync();
        let at = 0;
        const losses = this.parts.map((part, k) => {
          const { numAgents: A, numActions: K } = part.task.shape;
          const a = arrays[k];
          const { B, T } = a;
          const N = T * B;
          const nextValue = nextValues.subarray(at, at + N);
          at += N;
          const now = tf.slice(q[k], 0, T);
          const takenNow = tf.reshape(tf.slice(inputs[k].taken, 0, T), [T, B, A, K]);
          // Q of the taken actions; dead agents count 0.
          const qTaken = tf.mul(tf.sum(tf.mul(now, takenNow), 3), tf.tensor3d(a.aliveNow, [T, B, A]));
          const chosen =
            part.mixer && part.targetMixer
              ? part.mixer.mix(tf.reshape(qTaken, [N, A]), tf.reshape(tf.slice(tf.tensor3d(a.states, [T + 1, B, part.mixerStateDim]), 0, T), [N, part.mixerStateDim]))
              : (tf.reshape(tf.sum(qTaken, 2), [N]) as tf.Tensor1D);
          const y = tf.tensor1d(tdLambdaTargets(a.reward, a.notDone, a.filled, nextValue, B, T, cfg.gamma, cfg.td_lambda));
          // ½·mean over filled steps of the squared TD error, as one weighted sum.
          const halfOverFilled = tf.tensor1d(filledWeights(a.filled, 0.5));
          const loss = tf.sum(tf.mul(tf.square(tf.sub(chosen, y)), halfOverFilled)) as tf.Scalar;
          kept.push({ loss: tf.keep(loss), chosen: tf.keep(chosen), y: tf.keep(y) });
          return tf.mul(loss, weights[k]);
        });
        return (losses.length === 1 ? losses[0] : tf.addN(losses)) as tf.Scalar;
      }, trained);

      // Each optimiser's gradients clipped to max_grad_norm on their own (torch's clip_grad_norm_).
      const clipped = (names: string[], params: Record<string, tf.Variable>) => {
        const byName: Record<string, tf.Tensor> = {};
        for (const n of names) byName[n] = grads[params[n].name];
        const { norm, scale } = clipByGlobalNorm(names.map((n) => byName[n]), cfg.max_grad_norm);
        return { byName, norm, scale };
      };
      const perception = clipped(perceptionNames, this.perceptionParams);
      this.perceptionAdam.apply(perception.byName, perception.scale);
      const shared: tf.Tensor[] = [total, perception.norm];
      if (this.declAdam) {
        const decl = clipped(declNames, this.declParams);
        this.declAdam.apply(decl.byName, decl.scale);
        shared.push(decl.norm);
      }
      // Per task: loss, then the filled-step means of Q_tot, the target and |TD error| (off the tape).
      const perTask = kept.map(({ loss, chosen, y }, k) => {
        const means = tf.sum(tf.mul(tf.stack([chosen, y, tf.abs(tf.sub(chosen, y))]), tf.tensor1d(filledWeights(arrays[k].filled, 1))), 1);
        return tf.concat([tf.reshape(loss, [1]), means]);
      });
      const result = tf.concat([tf.stack(shared), ...perTask]);
      tf.dispose(kept.flatMap((t) => [t.loss, t.chosen, t.y]));
      return result;
    });
    const s = out.dataSync();
    out.dispose();

    const sharedCount = this.declAdam ? 3 : 2;
    const shared: TrainStats = { total_loss: s[0], grad_norm: s[1], ...(this.declAdam ? { decl_grad_norm: s[2] } : {}) };
    this.parts.forEach((part, k) => {
      const at = sharedCount + 4 * k;
      part.addPending({ ...shared, loss: s[at], q_taken_mean: s[at + 1], target_mean: s[at + 2], td_error_abs: s[at + 3], task_weight: weights[k], task_win_rate: winRates[k] });
    });
    this.updates++;
    this.updateTargets();
  }

  /**
   * Every task's bootstrap values V_{t+1} [T·B], concatenated over tasks: the target mixer's
   * value of the next step's greedy actions (double Q: the online net's argmax over legal
   * actions, valued by the target net). Gradient-free, so computed inside one custom op: its
   * ops stay off the gradient tape (no saved-tensor copies), and nothing flows back through it.
   */
  private bootstrapValues(next: tf.Tensor[], targetQ: tf.Tensor[], arrays: TaskArrays[]): tf.Tensor1D {
    const cfg = this.config;
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const online = args.slice(0, next.length) as tf.Tensor[];
      const values = this.parts.map((part, k) => {
        const { numAgents: A, numActions: K } = part.task.shape;
        const a = arrays[k];
        const { B, T } = a;
        const N = T * B;
        const illegal = tf.tensor4d(a.illegalNext, [T, B, A, K]);
        const greedy = cfg.double_q ? tf.sum(tf.mul(targetQ[k], tf.oneHot(tf.argMax(tf.add(online[k], illegal), 3), K)), 3) : tf.max(targetQ[k], 3);
        const qNext = tf.mul(greedy, tf.tensor3d(a.usableNext, [T, B, A]));
        if (!part.targetMixer) return tf.reshape(tf.sum(qNext, 2), [N]);
        const S = part.mixerStateDim;
        return part.targetMixer.mix(tf.reshape(qNext, [N, A]), tf.reshape(tf.slice(tf.tensor3d(a.states, [T + 1, B, S]), 1, T), [N, S]));
      });
      return { value: values.length === 1 ? values[0] : tf.concat(values), gradFunc: () => online.map((x) => tf.zerosLike(x)) };
    });
    return op(...next) as tf.Tensor1D;
  }

  /** Hard copies every `target_update_interval_or_tau` episodes per task when that is ≥ 1, else Polyak with τ. */
  private updateTargets(): void {
    const interval = this.config.target_update_interval_or_tau;
    const tau = interval >= 1 ? 1 : interval;
    if (interval >= 1) {
      if (this.episodes - this.lastTargetUpdateEpisode < interval * this.tasks.length) return;
      this.lastTargetUpdateEpisode = this.episodes;
    }
    if (this.declTrained) this.targetDecl.copyFrom(this.decl, tau);
    for (const p of this.parts) {
      p.targetPerception.copyFrom(p.perception, tau);
      if (p.mixer && p.targetMixer) p.targetMixer.copyFrom(p.mixer, tau);
    }
  }

  // --- checkpoints ----------------------------------------------------------------------------

  async captureState(): Promise<LearnerState> {
    const decl = await captureTensors(this.decl.namedVariables());
    const models: Record<string, NamedTensorData> = { [DECL_MODEL]: decl, [TARGET_DECL_MODEL]: await captureTensors(this.targetDecl.namedVariables()) };
    const rngs: LearnerState['rngs'] = { sample: this.sampleRng.state() };
    const arrays: Record<string, SerializedArray> = {};
    const tasks: JsonObject = {};
    for (const p of this.parts) {
      const prefix = taskPrefix(p.task.key);
      // The acting network whole (perception + the DecL under `decl/`): what loadPolicy reads.
      models[`${prefix}policy`] = { ...(await captureTensors(p.perception.namedVariables())), ...withPrefix(DECISION_PREFIX, decl) };
      models[`${prefix}targetPerception`] = await captureTensors(p.targetPerception.namedVariables());
      if (p.mixer && p.targetMixer) {
        models[`${prefix}mixer`] = await captureTensors(p.mixer.namedVariables());
        models[`${prefix}targetMixer`] = await captureTensors(p.targetMixer.namedVariables());
      }
      rngs[`${prefix}act`] = p.actingMode.rng.state();
      const replay = p.replay.capture();
      const episodes = p.collector.capture();
      Object.assign(arrays, {
        [`${prefix}acting/hidden`]: serializeArray(p.acting.hidden),
        [`${prefix}acting/lastActions`]: serializeArray(p.acting.lastAction),
        ...withPrefix(`${prefix}replay/`, replay.arrays),
        ...withPrefix(`${prefix}episodes/`, episodes.arrays),
      });
      tasks[p.task.key] = { envSteps: p.envSteps, recentWins: p.recentWins, pending: p.pending as unknown as JsonObject, replay: replay.json, episodeCollector: episodes.json };
    }
    const optimizers: LearnerState['optimizers'] = { perception: await this.perceptionAdam.capture() };
    if (this.declAdam) optimizers.decl = await this.declAdam.capture();
    return {
      models,
      optimizers,
      rngs,
      arrays,
      json: {
        algo: 'mtma',
        transfer: this.config.transfer.mode,
        episodes: this.episodes,
        updateCredit: this.updateCredit,
        lastTargetUpdateEpisode: this.lastTargetUpdateEpisode,
        updates: this.updates,
        tasks,
      },
    };
  }

  async restoreState(state: LearnerState): Promise<void> {
    const who = 'mtma.restoreState';
    const { json } = state;
    if (json.algo !== 'mtma') throw new Error(`${who}: state was captured by '${String(json.algo)}'`);
    if (json.transfer !== this.config.transfer.mode) throw new Error(`${who}: state was captured with transfer.mode '${String(json.transfer)}', this run uses '${this.config.transfer.mode}'`);
    const model = (name: string): NamedTensorData => {
      const m = state.models[name];
      if (!m) throw new Error(`${who}: no model '${name}'`);
      return m;
    };
    const num = (from: JsonObject, key: string, where: string): number => {
      const v = from[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${who}: json '${where}${key}' is missing or not a number`);
      return v;
    };
    const object = (from: JsonObject, key: string, where: string): JsonObject => {
      const v = from[key];
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${who}: json '${where}${key}' is missing`);
      return v;
    };
    const array = (key: string, type: string) => {
      const s = state.arrays[key];
      if (!s) throw new Error(`${who}: no array '${key}'`);
      const a = deserializeArray(s);
      if (a.constructor.name !== type) throw new Error(`${who}: array '${key}' is a ${a.constructor.name}, expected ${type}`);
      return a;
    };
    if (!state.optimizers.perception) throw new Error(`${who}: no optimizer 'perception'`);
    if (this.declAdam && !state.optimizers.decl) throw new Error(`${who}: no optimizer 'decl'`);
    if (!state.rngs.sample) throw new Error(`${who}: no RNG state 'sample'`);
    const tasks = object(json, 'tasks', '');
    // Everything is read and checked before anything is assigned, so a failed restore changes nothing.
    const perTask = this.parts.map((p) => {
      const prefix = taskPrefix(p.task.key);
      const t = object(tasks, p.task.key, 'tasks.');
      const where = `tasks.${p.task.key}.`;
      const act = state.rngs[`${prefix}act`];
      if (!act) throw new Error(`${who}: no RNG state '${prefix}act'`);
      const hidden = array(`${prefix}acting/hidden`, 'Float32Array');
      const lastActions = array(`${prefix}acting/lastActions`, 'Int32Array');
      if (hidden.length !== p.acting.hidden.length || lastActions.length !== p.acting.lastAction.length) {
        throw new Error(`${who}: task '${p.task.key}' acting state has ${hidden.length} hidden / ${lastActions.length} action values, expected ${p.acting.hidden.length} / ${p.acting.lastAction.length}`);
      }
      const wins = t.recentWins;
      if (!Array.isArray(wins) || !wins.every((w) => typeof w === 'number')) throw new Error(`${who}: json '${where}recentWins' must be a list of numbers`);
      const pending = object(t, 'pending', where) as unknown as PendingStats;
      const sub = (arraysPrefix: string, jsonKey: string): StoredState => ({ arrays: underPrefix(`${prefix}${arraysPrefix}`, state.arrays), json: object(t, jsonKey, where) });
      return {
        p,
        act,
        hidden,
        lastActions,
        wins: wins as number[],
        pending,
        envSteps: num(t, 'envSteps', where),
        replay: sub('replay/', 'replay'),
        episodes: sub('episodes/', 'episodeCollector'),
        policy: model(`${prefix}policy`),
        target: model(`${prefix}targetPerception`),
        mixer: p.mixer ? model(`${prefix}mixer`) : undefined,
        targetMixer: p.mixer ? model(`${prefix}targetMixer`) : undefined,
      };
    });
    const counters = { episodes: num(json, 'episodes', ''), updateCredit: num(json, 'updateCredit', ''), lastTargetUpdateEpisode: num(json, 'lastTargetUpdateEpisode', ''), updates: num(json, 'updates', '') };

    assignTensors(this.decl.namedVariables(), model(DECL_MODEL));
    assignTensors(this.targetDecl.namedVariables(), model(TARGET_DECL_MODEL));
    this.perceptionAdam.restore(state.optimizers.perception, `${who}: optimizer 'perception'`);
    if (this.declAdam) this.declAdam.restore(state.optimizers.decl, `${who}: optimizer 'decl'`);
    for (const t of perTask) {
      const { p } = t;
      assignTensors(p.perception.namedVariables(), t.policy);
      assignTensors(p.targetPerception.namedVariables(), t.target);
      if (p.mixer && p.targetMixer && t.mixer && t.targetMixer) {
        assignTensors(p.mixer.namedVariables(), t.mixer);
        assignTensors(p.targetMixer.namedVariables(), t.targetMixer);
      }
      p.replay.restore(t.replay);
      p.collector.restore(t.episodes);
      p.acting.hidden.set(t.hidden);
      p.acting.lastAction.set(t.lastActions);
      p.actingMode.rng = Rng.fromState(t.act);
      p.recentWins = [...t.wins];
      p.pending = { sums: { ...t.pending.sums }, counts: { ...t.pending.counts } };
      p.envSteps = t.envSteps;
    }
    this.sampleRng = Rng.fromState(state.rngs.sample);
    this.episodes = counters.episodes;
    this.updateCredit = counters.updateCredit;
    this.lastTargetUpdateEpisode = counters.lastTargetUpdateEpisode;
    this.updates = counters.updates;
  }

  dispose(): void {
    this.decl.dispose();
    this.targetDecl.dispose();
    for (const p of this.parts) p.dispose();
    this.perceptionAdam.dispose();
    this.declAdam?.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer definition (what `trainers/index.ts` lists)
// ---------------------------------------------------------------------------------------------

export const mtmaTrainer: TrainerDefinition = {
  algorithms: [{ name: 'mtma', schema: mtmaConfigSchema, defaultNumEnvs: 1 }],
  kind: 'online',
  multiTask: true,
  valueBased: true,
  configIssues(raw) {
    const config = raw as MtmaConfig;
    const issues = [];
    const { batch_size: batch, buffer_size: buffer, transfer } = config;
    // Updates wait for `batch_size` episodes in every task's replay, which never holds more than `buffer_size`.
    if (batch > buffer) issues.push({ key: 'batch_size', message: `${batch} episodes per update exceed algo.buffer_size ${buffer} (each task's replay capacity), so no update would ever run; lower batch_size or raise buffer_size` });
    const loads = transfer.mode === 'frozen' || transfer.mode === 'finetune';
    if (loads && !transfer.decl_from) issues.push({ key: 'transfer', message: `mode '${transfer.mode}' loads a pretrained decision network: give transfer.decl_from (a run directory or .ckpt of an mtma run)` });
    if (!loads && transfer.decl_from) issues.push({ key: 'transfer', message: `decl_from is only read by modes 'frozen' and 'finetune', but mode is '${transfer.mode}'; remove decl_from or change the mode` });
    return issues;
  },
  checkTask(algo, task) {
    if (!task.shape.discreteActions) throw new Error(`algo '${algo}' needs discrete actions, but env '${task.env.id}' has continuous (Box) action spaces`);
  },
  createLearner({ tasks, config, seed }) {
    return new MtmaLearner({ tasks, config: config as MtmaConfig, seed });
  },
  /**
   * `troupe bench learner`: one update on a batch of every task (one backward pass, both Adams)
   * from twice `batch_size` synthetic episodes per task; hard target copies (the default) wait
   * for finished episodes, which the bench never reports. Tasks: `tasks`, else `task` alone.
   */
  async benchmark({ task, tasks, settings, useRnn, sampler, config: overrides }): Promise<LearnerBenchCase> {
    const all = tasks ?? [{ task, sampler }];
    const config = mtmaConfigSchema.parse({ name: 'mtma', rnn_hidden_dim: settings.hiddenDim, use_rnn: useRnn, ...overrides });
    const learner = new MtmaLearner({ tasks: all.map((t) => t.task), config, seed: settings.seed });
    const B = config.batch_size;
    let samples = 0;
    for (const [k, { task: t, sampler: s }] of all.entries()) {
      for (let i = 0; i < 2 * B; i++) learner.parts[k].replay.insert(syntheticEpisode(t.shape, s));
      samples += B * t.shape.maxEpisodeSteps * t.shape.numAgents;
    }
    return {
      samplesPerUpdate: samples,
      gradientSteps: learner.declTrained ? 2 : 1,
      samplePasses: samples,
      flopsPerUpdate: mtmaUpdateFlops(learner),
      update: async () => timed(() => learner.update()),
      dispose: () => learner.dispose(),
    };
  },
};

/**
 * Matmul FLOPs of one MTMA update with every task's episodes padded to its step limit (see
 * `agents/networks/flops.ts`), as `agents/networks/action-conditioned.ts` computes them: per task,
 * fc1 once per row (the candidate's one-hot adds a weight row), fc2 or the GRU's input gates and
 * the DecL once per candidate, the GRU's hidden gates once per row and step; online networks
 * forward and backward, targets forward.
 */
export function mtmaUpdateFlops(learner: MtmaLearner): number {
  const cfg = learner.config;
  const H = cfg.rnn_hidden_dim;
  const B = cfg.batch_size;
  let total = 0;
  for (const part of learner.parts) {
    const { numAgents: A, numActions: K, maxEpisodeSteps: T } = part.task.shape;
    const rows = (T + 1) * B * A;
    const candidates = rows * K;
    // fc1 reads data: weight gradients only.
    const fc1 = 2 * part.inputWidth * H * rows;
    let forward = fc1;
    let backward = fc1;
    if (cfg.use_rnn) {
      const inputGates = 2 * H * 3 * H * candidates;
      const hiddenGates = 2 * H * 3 * H * rows;
      forward += inputGates + hiddenGates;
      // The hidden gates' input gradient stops at h0, the data each sequence starts from.
      backward += 2 * inputGates + hiddenGates + 2 * H * 3 * H * (rows - B * A);
    } else {
      const fc2 = 2 * H * H * candidates;
      forward += fc2;
      backward += 2 * fc2;
    }
    const decl = mlpFlops(H, [cfg.decl_hidden_dim], 1, candidates);
    // The DecL's input is the perception's output: its first layer needs the input gradient too.
    backward += decl.backward + 2 * H * cfg.decl_hidden_dim * candidates;
    forward += decl.forward;
    total += 2 * forward + backward;
    if (part.mixer) {
      const mix = mixerFlops(part.mixer.spec, T * B);
      total += 2 * mix.forward + mix.backward;
    }
  }
  return total;
}
