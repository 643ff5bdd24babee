/**
 * Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications",
 * with automatic entropy tuning) for continuous actions, CleanRL style (`sac_continuous_action.py`):
 * config, networks, acting, the replay and the update read top to bottom, with CleanRL's key
 * names (`sacConfigSchema`).
 *
 *  - Actor: MLP (ReLU, `hidden_dims`) → mean and log-std per action dimension; the log-std is
 *    squashed into [log_std_min, log_std_max] with tanh; actions are tanh(mean + std·ε)
 *    (`agents/policies/squashed-gaussian-policy.ts`, which evaluation and `loadPolicy` share).
 *  - Twin critics Q1, Q2: MLP over obs ⊕ action, with Polyak-averaged (`tau`) target copies
 *    updated every `target_network_frequency` critic steps.
 *  - Critic target: y = r + γ(1 − terminated)(min(Q1', Q2')(s', a') − α log π(a'|s')), a' ~ π(s').
 *    Truncated episodes bootstrap from their final observation; terminated ones do not.
 *  - Actor loss: E[α log π(a|s) − min(Q1, Q2)(s, a)], a ~ π(s) (reparameterised). Every
 *    `policy_frequency` critic steps the actor takes `policy_frequency` steps (CleanRL's delay).
 *  - α (`autotune`): log α descends E[−α (log π + target_entropy)], target entropy −|A|.
 *  - `updates_per_step` critic steps per env step (summed over the vector), after
 *    `learning_starts` env steps of uniformly random actions.
 *
 * Multi-agent: independent SAC with parameter sharing. Every live agent's step is one
 * transition in the replay; actor and critics see obs ⊕ agent-id one-hot (`obs_agent_id`, only
 * when there is more than one agent) and the agent's own reward. Dead agents add nothing.
 * Single-agent envs are the case A = 1.
 *
 * Multi-task (Meta-World's MT-SAC): when the task's shape reports `numTasks`, every observation ends
 * with a task one-hot, which the networks see as input. `multi_head` gives the actor and both
 * critics one output head per task, picked by multiplying with the one-hot and summing (tfjs's
 * wasm backend has no gradient kernel for gather); `per_task_alpha` learns one α per task.
 *
 * Choices worth knowing:
 *  - Everything is learned in the normalised action box [−1, 1]^d (as Stable-Baselines3 does);
 *    actions are mapped affinely onto the env's Box bounds (`shape.actionLow/High`, else
 *    [−1, 1]) only when they are sent, and back when they are stored. So log π, the target
 *    entropy −d and the critics' action inputs do not depend on the bounds' scale (CleanRL's
 *    log π carries a constant −Σ log(scale) instead). Bounds must be finite.
 *  - With `autotune`, α starts at `alpha` (CleanRL starts log α at 0, i.e. α = 1).
 *  - α's loss uses the log π of the actor step it follows (as SB3 and the paper's code do);
 *    CleanRL draws fresh actions from the updated actor for it.
 *  - Layers start as PyTorch's `nn.Linear` does (uniform ±1/√fan_in), like CleanRL's.
 *  - Adam with PyTorch's ε = 1e-8 (`trainers/adam.ts`, which resumes bit-exactly).
 *  - The twin critics (and their targets) run as one two-member network with stacked weights
 *    (`agents/networks/ensemble-mlp.ts`), a batched matMul per layer, and the update's gradients
 *    are written out by hand rather than taped: a few hundred kernel calls per update instead of
 *    over a thousand. Checkpoints still hold qf1, qf2 and their targets (and the q optimiser's
 *    slots) as separate MLPs, so checkpoints from before load and resume.
 *  - Agents with fewer action dimensions than the widest one act in all `actDim` dimensions; the
 *    env ignores the padding, but its entropy counts in log π and the target entropy.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { Experience } from '../agents/experience';
import { mlpFlops } from '../agents/networks/flops';
import { type EnsembleActivations, EnsembleMlp } from '../agents/networks/ensemble-mlp';
import { Mlp } from '../agents/networks/mlp';
import { type Linear, createVariable, uniqueScope } from '../agents/networks/module';
import type { Policy } from '../agents/policies/policy';
import { POLICY_SPEC_FORMAT, type SquashedGaussianPolicySpec } from '../agents/policies/policy-spec';
import { SquashedGaussianActor, SquashedGaussianPolicy, selectHead, squashableBounds } from '../agents/policies/squashed-gaussian-policy';
import type { EnvShape, VectorLayout } from '../envs/env-shape';
import { type NamedTensorData, type OptimizerState, type SerializedTensor, assignTensors, captureTensors, underPrefix, withPrefix } from '../runtime/core/checkpoint-format';
import { Rng, deriveSeed } from '../runtime/core/rng';
import { Adam } from './adam';
import { discount, finite, layerWidth, MAX_REPEATS, MAX_STEP_BATCH, MAX_TRANSITION_REPLAY, nonNegativeInt, positive, positiveInt } from './config-keys';
import {
  type Collection,
  type EvaluationOptions,
  type LearnerBenchCase,
  type LearnerState,
  type OnlineLearner,
  type TaskSpec,
  type TrainStats,
  type TrainerDefinition,
  checkTaskKey,
  meanStats,
  onlyTask,
  taskOfLayout,
} from './learner';
import { timed } from './synthetic-experience';
import { TransitionReplay } from './transition-replay';

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/** CleanRL's `sac_continuous_action.py` keys and defaults (EPyMARL has no SAC). */
export const sacConfigSchema = z
  .object({
    name: z.literal('sac'),
    policy_lr: positive().default(3e-4),
    q_lr: positive().default(1e-3),
    /** Learning rate of the entropy temperature; null: `q_lr`, as CleanRL. */
    alpha_lr: positive().nullable().default(null),
    gamma: discount().default(0.99),
    /** Polyak rate of the target critics. */
    tau: z.number().gt(0).lte(1).default(0.005),
    /** Entropy temperature: fixed with `autotune: false`, else only its starting value. */
    alpha: positive().default(0.2),
    /** Learn α so the policy's entropy tracks `target_entropy` (Haarnoja et al. 2018b). */
    autotune: z.boolean().default(true),
    /** null: −(action dimensions), the paper's heuristic. */
    target_entropy: finite().nullable().default(null),
    /** Replay capacity in transitions (one per live agent per env step). */
    buffer_size: positiveInt(MAX_TRANSITION_REPLAY).default(1_000_000),
    /** Transitions per gradient step. */
    batch_size: positiveInt(MAX_STEP_BATCH).default(256),
    /** Env steps of uniformly random actions before the first gradient step. */
    learning_starts: nonNegativeInt().default(5000),
    /** Actor (and α) updates run every this many critic updates, that many at once (TD3-style delay). */
    policy_frequency: positiveInt(MAX_REPEATS).default(2),
    /** Critic updates between Polyak steps of the target critics. */
    target_network_frequency: positiveInt().default(1),
    /** Critic updates per env step (summed over the vector): the update-to-data ratio. */
    updates_per_step: positive().lte(MAX_REPEATS).default(1),
    /** Hidden layer widths of the actor and of each critic. */
    hidden_dims: z.array(layerWidth()).min(1).max(16).default([256, 256]),
    /** The actor's log-std is squashed into [log_std_min, log_std_max] (CleanRL's −5 and 2). */
    log_std_min: finite().default(-5),
    log_std_max: finite().default(2),
    /** Agent-id one-hot as an extra input when the env has more than one agent. */
    obs_agent_id: z.boolean().default(true),
    /** Multi-task envs (`EnvMetadata.numTasks`): one output head per task in the actor and both critics. */
    multi_head: z.boolean().default(false),
    /** Multi-task envs: one learned temperature per task (Meta-World's MT-SAC). */
    per_task_alpha: z.boolean().default(false),
  })
  .strict();
export type SacConfig = z.output<typeof sacConfigSchema>;

export interface SacOptions {
  /** The task's shape and collection envs (a VectorLayout); `task` its key (default `default`). */
  layout: VectorLayout;
  task?: TaskSpec;
  config: SacConfig;
  seed: string | number;
}

const HALF_LOG_TWO_PI = 0.5 * Math.log(2 * Math.PI);
/** Keeps log(1 − tanh²) finite where tanh saturates (CleanRL's constant). */
const SQUASH_EPSILON = 1e-6;

/** The twin critics' names in checkpoints (each a separate `Mlp` there) and their targets'. */
const CRITIC_NAMES = ['qf1', 'qf2'] as const;
const TARGET_NAMES = ['qf1_target', 'qf2_target'] as const;

/** One reparameterised action draw with what the hand-written backward reuses. */
interface SampledAction {
  action: tf.Tensor2D;
  /** log π(a|s) [B, 1]. */
  logp: tf.Tensor;
  /** The actor's layer inputs. */
  activations: tf.Tensor2D[];
  tanhRaw: tf.Tensor;
  /** std·ε. */
  stdNoise: tf.Tensor;
  /** 1 − a², and 1 − a² + ε (the squash correction's argument). */
  oneMinusA2: tf.Tensor;
  squashArg: tf.Tensor;
}

// ---------------------------------------------------------------------------------------------
// The learner
// ---------------------------------------------------------------------------------------------

/** One sampled batch in the layouts its tensors take; allocated once and refilled. */
interface BatchArrays {
  rows: Int32Array;
  /** Actor inputs [B, inputDim] at s and s'. */
  obs: Float32Array;
  nextObs: Float32Array;
  /** Critic inputs: actor input ⊕ normalised action [B, inputDim + actDim]. */
  obsActions: Float32Array;
  rewards: Float32Array;
  /** γ(1 − terminated). */
  discount: Float32Array;
  /** Task one-hot [B, numTasks] (empty for single-task). */
  task: Float32Array;
  /** ε for a' ~ π(s') [B, actDim], and for the actor steps [policy_frequency, B, actDim]. */
  nextNoise: Float32Array;
  actorNoise: Float32Array;
  /** log N(ε) of each noise entry. */
  nextNoiseLogDensity: Float32Array;
  actorNoiseLogDensity: Float32Array;
}

export class Sac implements OnlineLearner {
  readonly kind = 'online';
  readonly task: TaskSpec;
  readonly tasks: readonly TaskSpec[];
  readonly shape: EnvShape;
  readonly config: SacConfig;
  readonly actor: Mlp;
  /** The twin critics Q1, Q2 as one two-member network, and their Polyak-averaged targets. */
  readonly critic: EnsembleMlp;
  readonly criticTarget: EnsembleMlp;
  /** log α: [numTasks] with `per_task_alpha`, else [1]. */
  readonly logAlpha: tf.Variable;
  readonly replay: TransitionReplay;
  readonly targetEntropy: number;
  /** Actor/critic input width: obs ⊕ agent-id one-hot. */
  readonly inputDim: number;
  /** The actor with its input rows and action maps (shared with the policies). */
  readonly actorCore: SquashedGaussianActor;
  private readonly numTasks: number;
  /** Output heads of each network: numTasks with `multi_head`, else 1. */
  private readonly heads: number;
  /** The actor's layers, for the update's own forward and backward passes. */
  private readonly actorLayers: Linear[];
  /** (log_std_max − log_std_min)/2. */
  private readonly logStdHalfRange: number;
  private readonly policyOptimizer: Adam;
  private readonly qOptimizer: Adam;
  private readonly alphaOptimizer?: Adam;
  private readonly acting: SquashedGaussianPolicy;
  private updateRng: Rng;
  private readonly batch: BatchArrays;
  private readonly unitScratch: Float32Array;

  private envSteps = 0;
  private updates = 0;
  /** Critic steps owed (fractional with `updates_per_step` · E < 1). */
  private updateCredit = 0;

  constructor(options: SacOptions) {
    const { layout, config, seed } = options;
    this.task = options.task ?? taskOfLayout(layout);
    this.tasks = [this.task];
    const shape = this.task.shape;
    if (shape.discreteActions) throw new Error("sac: needs continuous (Box) action spaces, but the env's actions are discrete");
    if (!(config.log_std_min < config.log_std_max)) throw new Error(`sac: algo.log_std_min (${config.log_std_min}) must be below algo.log_std_max (${config.log_std_max})`);
    const { numAgents: A, obsDim, actDim: D } = shape;
    const numTasks = shape.numTasks ?? 0;
    if (!Number.isInteger(numTasks) || numTasks < 0 || (numTasks > 0 && numTasks > Math.min(...shape.agentObsDims))) {
      throw new Error(`sac: the env reports numTasks ${numTasks}, which must be a non-negative integer no larger than every agent's observation`);
    }
    for (const key of ['multi_head', 'per_task_alpha'] as const) {
      if (config[key] && numTasks === 0) throw new Error(`sac: algo.${key} needs a multi-task env (EnvMetadata.numTasks > 0), but this env reports no tasks`);
    }
    // Checked before any tensor exists, so a refused env leaks nothing.
    squashableBounds(shape);
    this.shape = shape;
    this.config = config;
    this.numTasks = numTasks;
    this.heads = config.multi_head ? numTasks : 1;
    this.targetEntropy = config.target_entropy ?? -D;

    const initSeed = deriveSeed(seed, 'sac', 'init');
    const hidden = config.hidden_dims;
    const useAgentId = config.obs_agent_id && A > 1;
    this.inputDim = obsDim + (useAgentId ? A : 0);
    this.actor = new Mlp({ inputDim: this.inputDim, hiddenDims: hidden, outputDim: this.heads * 2 * D, seed: initSeed, role: 'actor' });
    this.actorCore = new SquashedGaussianActor(this.actor, shape, { heads: this.heads, numTasks, agentId: useAgentId, logStdMin: config.log_std_min, logStdMax: config.log_std_max });
    // Each critic starts as the separate MLP it is in checkpoints (same seed and role), and the targets as copies.
    const members = CRITIC_NAMES.map((role) => new Mlp({ inputDim: this.inputDim + D, hiddenDims: hidden, outputDim: this.heads, seed: initSeed, role }));
    this.critic = new EnsembleMlp(members, 'critic');
    this.criticTarget = new EnsembleMlp(members, 'critic-target');
    for (const m of members) m.dispose();
    const actorVars = this.actor.namedVariables();
    this.actorLayers = hidden.concat([0]).map((_, i) => ({ w: actorVars[`fc${i}/w`], b: actorVars[`fc${i}/b`] }));
    this.logStdHalfRange = 0.5 * (config.log_std_max - config.log_std_min);
    const alphas = config.per_task_alpha ? numTasks : 1;
    this.logAlpha = createVariable(tf.fill([alphas], Math.log(config.alpha)), uniqueScope('sac'), 'log_alpha', config.autotune);

    this.policyOptimizer = new Adam({ lr: config.policy_lr }, withPrefix('actor/', actorVars));
    // Keyed by the ensemble's names; checkpoints hold the slots under qf1/… and qf2/… (`splitCriticSlots`).
    this.qOptimizer = new Adam({ lr: config.q_lr }, this.critic.namedVariables());
    if (config.autotune) this.alphaOptimizer = new Adam({ lr: config.alpha_lr ?? config.q_lr }, { log_alpha: this.logAlpha });

    this.replay = new TransitionReplay({ obsDim, actDim: D }, config.buffer_size);
    this.acting = new SquashedGaussianPolicy(this.actorCore, this.task.numEnvs, { kind: 'sample', rng: new Rng(deriveSeed(seed, 'sac', 'act')), uniformWhile: () => this.envSteps < this.config.learning_starts });
    this.updateRng = new Rng(deriveSeed(seed, 'sac', 'update'));
    const B = config.batch_size;
    this.batch = {
      rows: new Int32Array(B),
      obs: new Float32Array(B * this.inputDim),
      nextObs: new Float32Array(B * this.inputDim),
      obsActions: new Float32Array(B * (this.inputDim + D)),
      rewards: new Float32Array(B),
      discount: new Float32Array(B),
      task: new Float32Array(B * numTasks),
      nextNoise: new Float32Array(B * D),
      actorNoise: new Float32Array(config.policy_frequency * B * D),
      nextNoiseLogDensity: new Float32Array(B * D),
      actorNoiseLogDensity: new Float32Array(config.policy_frequency * B * D),
    };
    this.unitScratch = new Float32Array(D);
  }

  /** The exploring collection policy: uniform before `learning_starts`, then draws from the actor. */
  get policy(): Policy {
    return this.acting;
  }

  collection(task: string): Collection {
    checkTaskKey(this.task, task, 'sac');
    return { mode: 'transition' };
  }

  collectionPolicy(task: string): Policy {
    checkTaskKey(this.task, task, 'sac');
    return this.acting;
  }

  policyVersion(): number {
    return this.updates;
  }

  /** Env steps the learner has observed (what `learning_starts` compares against). */
  get envStepsSeen(): number {
    return this.envSteps;
  }

  /** Critic gradient steps taken so far. */
  get updateCount(): number {
    return this.updates;
  }

  // --- the stream -----------------------------------------------------------------------------

  observe(item: Experience, envSteps: number): TrainStats | undefined {
    if (item.kind !== 'transition') throw new Error("sac.observe: expects transitions (collection mode 'transition'), got a chunk");
    checkTaskKey(this.task, item.task, 'sac');
    this.envSteps = envSteps;
    const { numAgents: A, obsDim } = this.shape;
    const E = item.layout.numEnvs;
    if (item.layout.numAgents !== A || item.alive.length !== E * A) throw new Error(`sac.observe: transition has ${item.alive.length} agent slots, expected ${E} envs × ${A} agents`);
    for (let i = 0; i < E * A; i++) {
      // Agents that did not act made no transition; an aborted episode's last step is not real.
      if (!item.alive[i] || item.episodeAborted[Math.floor(i / A)]) continue;
      this.actorCore.toUnitAction(item.actions, i, this.unitScratch);
      this.replay.add(item.obs, i * obsDim, this.unitScratch, 0, item.rewards[i], item.nextObs, i * obsDim, item.terminated[i] === 1, i % A, this.actorCore.taskOf(item.obs, i));
    }
    if (envSteps <= this.config.learning_starts || this.replay.size < this.config.batch_size) return undefined;
    this.updateCredit += E * this.config.updates_per_step;
    const stats: TrainStats[] = [];
    for (; this.updateCredit >= 1; this.updateCredit -= 1) stats.push(this.update());
    const mean = meanStats(stats);
    return mean && { ...mean, grad_steps: stats.length };
  }

  episodesReset(task: string): void {
    // Nothing to forget: acting is memoryless and the replay holds complete transitions.
    checkTaskKey(this.task, task, 'sac');
  }

  /**
   * A policy for `numEnvs` envs: tanh of the mean (scaled to the bounds), or with
   * `options.sample` a draw from the policy with an Rng seeded by `seed`.
   */
  evaluationPolicy(task: string, numEnvs: number, seed: string, options: EvaluationOptions = {}): Policy {
    checkTaskKey(this.task, task, 'sac');
    return new SquashedGaussianPolicy(this.actorCore, numEnvs, options.sample ? { kind: 'sample', rng: new Rng(deriveSeed(seed, 'sac', 'evaluate')) } : { kind: 'greedy' });
  }

  policySpecs(): Record<string, SquashedGaussianPolicySpec> {
    const s = this.actorCore.settings;
    return {
      [this.task.key]: {
        format: POLICY_SPEC_FORMAT,
        kind: 'squashed-gaussian-mlp',
        model: 'actor',
        seedPath: ['sac', 'evaluate'],
        shape: this.shape,
        hiddenDims: [...this.config.hidden_dims],
        heads: s.heads,
        numTasks: s.numTasks,
        agentId: s.agentId,
        logStdMin: s.logStdMin,
        logStdMax: s.logStdMax,
      },
    };
  }

  // --- the update -----------------------------------------------------------------------------

  /** Samples `batch_size` transitions into the preallocated arrays, and the noise the update needs. */
  private fillBatch(actorSteps: number): void {
    const b = this.batch;
    const r = this.replay;
    const D = this.shape.actDim;
    const T = this.numTasks;
    const Din = this.inputDim;
    // γ as the float32 the old tensor maths multiplied by, so γ·(1 − terminated)·x rounds as γ·x did.
    const gamma = Math.fround(this.config.gamma);
    r.sampleRows(this.updateRng, b.rows);
    if (T > 0) b.task.fill(0);
    for (let k = 0; k < b.rows.length; k++) {
      const row = b.rows[k];
      this.actorCore.writeInput(b.obs, k, r.obs, row, r.agent[row]);
      this.actorCore.writeInput(b.nextObs, k, r.nextObs, row, r.agent[row]);
      b.obsActions.set(b.obs.subarray(k * Din, (k + 1) * Din), k * (Din + D));
      b.obsActions.set(r.actions.subarray(row * D, (row + 1) * D), k * (Din + D) + Din);
      b.rewards[k] = r.rewards[row];
      b.discount[k] = r.terminated[row] ? 0 : gamma;
      if (T > 0) b.task[k * T + r.task[row]] = 1;
    }
    const logDensity = (e: number) => -(0.5 * e * e + HALF_LOG_TWO_PI);
    for (let j = 0; j < b.nextNoise.length; j++) {
      b.nextNoise[j] = this.updateRng.normal();
      b.nextNoiseLogDensity[j] = logDensity(b.nextNoise[j]);
    }
    const actorNoise = actorSteps * b.rows.length * D;
    for (let j = 0; j < actorNoise; j++) {
      b.actorNoise[j] = this.updateRng.normal();
      b.actorNoiseLogDensity[j] = logDensity(b.actorNoise[j]);
    }
  }

  /**
   * One critic step; every `policy_frequency`-th also takes that many actor (and α) steps; then the
   * targets move. The gradients are written out by hand (the chain rule through the squashed
   * Gaussian, the critics' min and each MLP): a taped update costs each op a saved-tensor copy and
   * its gradient several more kernels, and this update is a few hundred kernels either way.
   */
  update(): TrainStats {
    const cfg = this.config;
    const B = cfg.batch_size;
    const D = this.shape.actDim;
    const Din = this.inputDim;
    const T = this.numTasks;
    const K = this.critic.members;
    const actorSteps = this.updates % cfg.policy_frequency === 0 ? cfg.policy_frequency : 0;
    this.fillBatch(actorSteps);
    const b = this.batch;
    const statNames: string[] = [];

    const stats = tf.tidy(() => {
      const obs = tf.tensor2d(b.obs, [B, Din]);
      const nextObs = tf.tensor2d(b.nextObs, [B, Din]);
      const obsActions = tf.tensor2d(b.obsActions, [B, Din + D]);
      const rewards = tf.tensor2d(b.rewards, [B, 1]);
      const discount = tf.tensor2d(b.discount, [B, 1]);
      const task = T > 0 ? tf.tensor2d(b.task, [B, T]) : undefined;
      // Every stat as a 1-D piece, read back together at the end.
      const parts: tf.Tensor[] = [];
      const stat = (names: string[], t: tf.Tensor) => {
        statNames.push(...names);
        parts.push(t.rank === 1 ? t : tf.reshape(t, [-1]));
      };

      // 1. Soft TD target from the target critics at a' ~ π(s'); y = r + γ(1 − terminated)(min Q' − α log π).
      const alpha = this.alphaOf(task);
      const next = this.sampleAction(nextObs, tf.tensor2d(b.nextNoise, [B, D]), tf.tensor2d(b.nextNoiseLogDensity, [B, D]), task);
      const minNextQ = tf.min(this.criticQ(this.criticTarget, tf.concat([nextObs, next.action], 1), task).q, 0);
      const y = tf.add(rewards, tf.mul(discount, tf.sub(minNextQ, tf.mul(alpha.rows, next.logp))));

      // 2. Critic step on Σ_k mean((Q_k − y)²): ∂/∂Q_k = 2(Q_k − y)/B.
      const critic = this.criticQ(this.critic, obsActions, task);
      const diff = tf.sub(critic.q, y);
      const losses = tf.mean(tf.square(diff), [1, 2]);
      const dQ = tf.mul(diff, 2 / B);
      const criticGrads = this.critic.backward(critic.saved, task && this.heads > 1 ? tf.mul(dQ, task) : dQ, { weights: true }).grads;
      this.qOptimizer.apply(criticGrads);
      stat(['qf1_values', 'qf2_values'].slice(0, K), tf.mean(critic.q, [1, 2]));
      stat(['qf1_loss', 'qf2_loss'].slice(0, K), losses);
      stat(['qf_loss'], tf.mean(losses, 0, true));

      // 3. Actor (and α) steps against the updated critics: loss mean(α log π(a|s) − min_k Q_k(s, a)).
      const actorStats: tf.Tensor[][] = [];
      for (let k = 0; k < actorSteps; k++) {
        const at = k * B * D;
        const alphaNow = this.alphaOf(task);
        const pi = this.sampleAction(obs, tf.tensor2d(b.actorNoise.subarray(at, at + B * D), [B, D]), tf.tensor2d(b.actorNoiseLogDensity.subarray(at, at + B * D), [B, D]), task);
        const q = this.criticQ(this.critic, tf.concat([obs, pi.action], 1), task);
        const minQ = tf.min(q.q, 0);
        const actorLoss = tf.mean(tf.sub(tf.mul(alphaNow.rows, pi.logp), minQ));
        // ∂ Σ min Q / ∂Q_k: 1 where critic k is the minimum; on a tie critic 1 only, as tf.minimum(q1, q2)'s gradient.
        const [q1, q2] = tf.unstack(q.q);
        const firstIsMin = tf.cast(tf.lessEqual(q1!, q2!), 'float32');
        const isMin = tf.stack([firstIsMin, tf.sub(1, firstIsMin)]);
        const dInput = this.critic.backward(q.saved, task && this.heads > 1 ? tf.mul(isMin, task) : isMin, { weights: false, inputFrom: Din }).dInput!;
        const dMinQdA = tf.sum(dInput, 0);
        // ∂loss/∂log π per row, and through log π's −log(1 − a² + ε) term ∂log π/∂a = 2a/(1 − a² + ε).
        const dLogp = tf.mul(alphaNow.rows, 1 / B);
        const dAction = tf.sub(tf.mul(dLogp, tf.div(tf.mul(pi.action, 2), pi.squashArg)), tf.mul(dMinQdA, 1 / B));
        // a = tanh(mean + std·ε): the pre-tanh gradient is the mean's; the log-std's also has log π's −log std.
        const dMean = tf.mul(dAction, pi.oneMinusA2);
        const dLogStd = tf.sub(tf.mul(dMean, pi.stdNoise), dLogp);
        const dRaw = tf.mul(dLogStd, tf.mul(tf.sub(1, tf.square(pi.tanhRaw)), this.logStdHalfRange));
        const dHead = tf.concat([dMean, dRaw], 1);
        const dOut = (task && this.heads > 1 ? tf.reshape(tf.mul(tf.expandDims(dHead, 1), tf.expandDims(task, 2)), [B, this.heads * 2 * D]) : dHead) as tf.Tensor2D;
        this.policyOptimizer.apply(this.actorBackward(pi.activations, dOut));
        const step = [actorLoss, tf.neg(tf.mean(pi.logp))];
        if (this.alphaOptimizer) {
          // loss mean(−α_task(row) (log π + H̄)); ∂/∂log α_t = −α_t Σ_{rows of t} (log π + H̄) / B, and the loss is their sum.
          const target = tf.add(pi.logp, this.targetEntropy);
          const grad = cfg.per_task_alpha && task ? tf.mul(alphaNow.alphas, tf.mul(tf.sum(tf.mul(task, target), 0), -1 / B)) : tf.mul(tf.neg(alphaNow.alphas), tf.mean(target));
          this.alphaOptimizer.apply({ log_alpha: grad });
          step.push(tf.sum(grad));
        }
        actorStats.push(step);
      }
      if (actorSteps > 0) {
        const names = ['actor_loss', 'entropy', 'alpha_loss'];
        actorStats[0].forEach((_, j) => stat([names[j]], actorSteps === 1 ? actorStats[0][j] : tf.div(tf.addN(actorStats.map((s) => s[j])), actorSteps)));
      }

      // 4. Polyak-averaged target critics.
      if ((this.updates + 1) % cfg.target_network_frequency === 0) this.criticTarget.copyFrom(this.critic, cfg.tau);

      // α after this update: its mean, and each task's with `per_task_alpha`.
      const alphas = tf.exp(this.logAlpha) as tf.Tensor1D;
      stat(['alpha'], tf.mean(alphas, 0, true));
      return tf.concat([...parts, alphas]);
    });
    const values = stats.dataSync();
    stats.dispose();
    this.updates++;
    const result: TrainStats = {};
    statNames.forEach((name, k) => (result[name] = values[k]));
    if (cfg.per_task_alpha) for (let t = 0; t < T; t++) result[`alpha_task_${t}`] = values[statNames.length + t];
    return result;
  }

  /**
   * Reparameterised a = tanh(mean + std·ε) and its log-probability under the squashed Gaussian,
   * Σ_d [log N(ε) − log std − log(1 − a² + 1e-6)] (since (x − mean)/std is ε itself), with what the
   * hand-written backward needs. `noiseLogDensity` is log N(ε), computed with ε on the host.
   */
  private sampleAction(x: tf.Tensor2D, noise: tf.Tensor2D, noiseLogDensity: tf.Tensor2D, task: tf.Tensor2D | undefined): SampledAction {
    const { out, activations } = this.actorForward(x, task);
    const [mean, raw] = tf.split(out, 2, 1);
    // The actor's log-std squashing (`SquashedGaussianActor.head`): lo + (hi − lo)/2 · (tanh(raw) + 1).
    const tanhRaw = tf.tanh(raw);
    const logStd = tf.add(tf.mul(tanhRaw, this.logStdHalfRange), this.config.log_std_min + this.logStdHalfRange);
    const stdNoise = tf.mul(tf.exp(logStd), noise);
    const action = tf.tanh(tf.add(mean, stdNoise)) as tf.Tensor2D;
    const oneMinusA2 = tf.sub(1, tf.square(action));
    const squashArg = tf.add(oneMinusA2, SQUASH_EPSILON);
    const logp = tf.sum(tf.sub(tf.sub(noiseLogDensity, logStd), tf.log(squashArg)), 1, true);
    return { action, logp, activations, tanhRaw, stdNoise, oneMinusA2, squashArg };
  }

  /** The actor's output [B, 2·actDim] (its head picked by the task) and each layer's input. */
  private actorForward(x: tf.Tensor2D, task: tf.Tensor2D | undefined): { out: tf.Tensor2D; activations: tf.Tensor2D[] } {
    const activations: tf.Tensor2D[] = [];
    let h = x;
    const last = this.actorLayers.length - 1;
    this.actorLayers.forEach(({ w, b }, i) => {
      activations.push(h);
      // Plain ops rather than tf.fused.matMul: on a rank-2 input the fused op costs reshapes and a
      // wrapper around its kernel, more kernel calls than the add and ReLU it saves.
      const z = tf.add(tf.matMul(h, w as tf.Tensor2D), b) as tf.Tensor2D;
      h = i < last ? tf.relu(z) : z;
    });
    return { out: selectHead(h, this.heads, 2 * this.shape.actDim, task), activations };
  }

  /** The actor's gradients (keyed as the policy optimiser's parameters) from ∂loss/∂output [B, heads·2·actDim]. */
  private actorBackward(activations: tf.Tensor2D[], dOut: tf.Tensor2D): Record<string, tf.Tensor> {
    const grads: Record<string, tf.Tensor> = {};
    let g: tf.Tensor2D = dOut;
    for (let i = this.actorLayers.length - 1; i >= 0; i--) {
      const a = activations[i];
      grads[`actor/fc${i}/w`] = tf.matMul(a, g, true, false);
      grads[`actor/fc${i}/b`] = tf.sum(g, 0);
      if (i > 0) g = tf.mul(tf.matMul(g, this.actorLayers[i].w as tf.Tensor2D, false, true), tf.step(a));
    }
    return grads;
  }

  /** Every critic's Q(s, a) [K, B, 1] from critic input (s ⊕ a) [B, inputDim + actDim], each picking the row's task head. */
  private criticQ(net: EnsembleMlp, input: tf.Tensor2D, task: tf.Tensor2D | undefined): { q: tf.Tensor3D; saved: EnsembleActivations } {
    const { out, saved } = net.forward(input);
    return { q: task && this.heads > 1 ? tf.sum(tf.mul(out, task), 2, true) : out, saved };
  }

  /** α per task (or the one α) [n], and for each row [B, 1] (per task), or [1]. */
  private alphaOf(task: tf.Tensor2D | undefined): { alphas: tf.Tensor1D; rows: tf.Tensor } {
    const alphas = tf.exp(this.logAlpha) as tf.Tensor1D;
    return { alphas, rows: this.config.per_task_alpha && task ? tf.sum(tf.mul(alphas, task), 1, true) : alphas };
  }

  // --- checkpoints ----------------------------------------------------------------------------

  async captureState(): Promise<LearnerState> {
    const replay = this.replay.capture();
    const optimizers: LearnerState['optimizers'] = { policy: await this.policyOptimizer.capture(), q: this.splitCriticSlots(await this.qOptimizer.capture()) };
    if (this.alphaOptimizer) optimizers.alpha = await this.alphaOptimizer.capture();
    // Each critic is stored as the separate MLP it was before the critics became one ensemble.
    const members = async (net: EnsembleMlp, k: number): Promise<NamedTensorData> => {
      const tensors = net.memberTensors(k);
      try {
        return await captureTensors(tensors);
      } finally {
        tf.dispose(Object.values(tensors));
      }
    };
    return {
      models: {
        actor: await captureTensors(this.actor.namedVariables()),
        qf1: await members(this.critic, 0),
        qf2: await members(this.critic, 1),
        qf1_target: await members(this.criticTarget, 0),
        qf2_target: await members(this.criticTarget, 1),
        alpha: await captureTensors({ log_alpha: this.logAlpha }),
      },
      optimizers,
      rngs: { act: this.acting.rng!.state(), update: this.updateRng.state() },
      arrays: withPrefix('replay/', replay.arrays),
      json: { algo: 'sac', envSteps: this.envSteps, updates: this.updates, updateCredit: this.updateCredit, replay: replay.json },
    };
  }

  async restoreState(state: LearnerState): Promise<void> {
    const who = 'sac.restoreState';
    const { json } = state;
    if (json.algo !== 'sac') throw new Error(`${who}: state was captured by '${String(json.algo)}', not sac`);
    const need = <T>(record: Record<string, T>, key: string, what: string): T => {
      const v = record[key];
      if (v === undefined) throw new Error(`${who}: no ${what} '${key}'`);
      return v;
    };
    const num = (key: string): number => {
      const v = json[key];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${who}: json '${key}' is missing or not a non-negative number`);
      return v;
    };
    const replayJson = json.replay;
    if (typeof replayJson !== 'object' || replayJson === null || Array.isArray(replayJson)) throw new Error(`${who}: json 'replay' is missing`);
    const replayArrays = underPrefix('replay/', state.arrays);
    // Everything is looked up before anything is assigned, so a missing part leaves the trainer as it was.
    const models: Array<[Record<string, tf.Variable>, NamedTensorData, string]> = [
      [this.actor.namedVariables(), need(state.models, 'actor', 'model'), 'actor'],
      [{ log_alpha: this.logAlpha }, need(state.models, 'alpha', 'model'), 'alpha'],
    ];
    const critics = CRITIC_NAMES.map((name) => need(state.models, name, 'model'));
    const targets = TARGET_NAMES.map((name) => need(state.models, name, 'model'));
    const policyOpt = need(state.optimizers, 'policy', 'optimizer');
    const qOpt = this.stackCriticSlots(need(state.optimizers, 'q', 'optimizer'), `${who}: optimizer 'q'`);
    const alphaOpt = this.alphaOptimizer ? need(state.optimizers, 'alpha', 'optimizer') : undefined;
    const actRng = Rng.fromState(need(state.rngs, 'act', 'rng'));
    const updateRng = Rng.fromState(need(state.rngs, 'update', 'rng'));
    const envSteps = num('envSteps');
    const updates = num('updates');
    const updateCredit = num('updateCredit');

    this.replay.restore({ arrays: replayArrays, json: replayJson }, who);
    for (const [vars, data, name] of models) {
      try {
        assignTensors(vars, data);
      } catch (err) {
        throw new Error(`${who}: model '${name}': ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    try {
      this.critic.assignMembers(critics, CRITIC_NAMES);
      this.criticTarget.assignMembers(targets, TARGET_NAMES);
    } catch (err) {
      throw new Error(`${who}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.policyOptimizer.restore(policyOpt, `${who}: optimizer 'policy'`);
    this.qOptimizer.restore(qOpt, `${who}: optimizer 'q'`);
    if (this.alphaOptimizer && alphaOpt) this.alphaOptimizer.restore(alphaOpt, `${who}: optimizer 'alpha'`);
    this.acting.resumeRng(actRng);
    this.updateRng = updateRng;
    this.envSteps = envSteps;
    this.updates = updates;
    this.updateCredit = updateCredit;
  }

  /**
   * The q optimiser's state as checkpoints hold it: each ensemble slot (`fc0/w/m` [2, in, out])
   * split into the critics' own (`qf1/fc0/w/m` [in, out], `qf2/…`), in the order a per-critic
   * optimiser wrote them (its other weights first, then qf1's slots, then qf2's).
   */
  private splitCriticSlots(state: OptimizerState): OptimizerState {
    const shapes = this.critic.memberShapes();
    const K = this.critic.members;
    const rest: OptimizerState['weights'] = [];
    const perMember: OptimizerState['weights'][] = CRITIC_NAMES.map(() => []);
    for (const w of state.weights) {
      const param = Object.keys(shapes).find((p) => w.name.startsWith(`${p}/`));
      if (!param) {
        rest.push(w);
        continue;
      }
      const bytes = w.tensor.data.byteLength / K;
      for (let k = 0; k < K; k++) {
        const data = w.tensor.data.slice(k * bytes, (k + 1) * bytes);
        perMember[k].push({ name: `${CRITIC_NAMES[k]}/${w.name}`, tensor: { shape: [...shapes[param]], dtype: w.tensor.dtype, data } });
      }
    }
    return { ...state, weights: [...rest, ...perMember.flat()] };
  }

  /** The inverse of `splitCriticSlots`: a checkpoint's per-critic slots stacked into the ensemble's. */
  private stackCriticSlots(state: OptimizerState, who: string): OptimizerState {
    const shapes = this.critic.memberShapes();
    const ensembleShapes = Object.fromEntries(Object.entries(this.critic.namedVariables()).map(([n, v]) => [n, v.shape]));
    const byName = new Map(state.weights.map((w) => [w.name, w.tensor]));
    const rest = state.weights.filter((w) => !CRITIC_NAMES.some((c) => w.name.startsWith(`${c}/`)));
    const stacked: OptimizerState['weights'] = [];
    const first = `${CRITIC_NAMES[0]}/`;
    for (const w of state.weights) {
      if (!w.name.startsWith(first)) continue;
      const slot = w.name.slice(first.length);
      const param = Object.keys(shapes).find((p) => slot.startsWith(`${p}/`));
      if (!param) throw new Error(`${who} has weight '${w.name}', which is not a slot of a critic parameter`);
      const parts: SerializedTensor[] = CRITIC_NAMES.map((c) => {
        const t = byName.get(`${c}/${slot}`);
        if (!t) throw new Error(`${who} has no weight '${c}/${slot}'`);
        const shape = shapes[param];
        if (t.dtype !== 'float32' || t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])) {
          throw new Error(`${who} weight '${c}/${slot}' is ${t.dtype}[${t.shape}], expected float32[${shape}]`);
        }
        return t;
      });
      const data = new Uint8Array(parts.reduce((n, p) => n + p.data.byteLength, 0));
      let at = 0;
      for (const p of parts) {
        data.set(p.data, at);
        at += p.data.byteLength;
      }
      stacked.push({ name: slot, tensor: { shape: [...ensembleShapes[param]], dtype: 'float32', data } });
    }
    return { ...state, weights: [...rest, ...stacked] };
  }

  dispose(): void {
    for (const net of [this.actor, this.critic, this.criticTarget]) net.dispose();
    this.logAlpha.dispose();
    this.policyOptimizer.dispose();
    this.qOptimizer.dispose();
    this.alphaOptimizer?.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer definition (what `trainers/index.ts` lists) and its benchmark case
// ---------------------------------------------------------------------------------------------

/** Matmul FLOPs of `critic` SAC critic steps and `actor` actor steps on B transitions (see `agents/networks/flops.ts`). */
export function sacUpdateFlops(learner: Sac, B: number, criticSteps: number, actorSteps: number): number {
  const D = learner.shape.actDim;
  const hidden = learner.config.hidden_dims;
  const actor = mlpFlops(learner.inputDim, hidden, learner.actor.spec.outputDim, B);
  const q = mlpFlops(learner.inputDim + D, hidden, learner.critic.sizes[learner.critic.sizes.length - 1], B);
  // Per critic step: a' from the actor and both targets forward; both critics forward and backward.
  const perCritic = actor.forward + 2 * q.forward + 2 * (q.forward + q.backward);
  // Per actor step: actor forward and backward; both critics forward, and backward towards the
  // action only (every layer's input gradient, no weight gradients: as many FLOPs as forward).
  const perActor = actor.forward + actor.backward + 2 * (q.forward + q.forward);
  return criticSteps * perCritic + actorSteps * perActor;
}

export const sacTrainer: TrainerDefinition = {
  algorithms: [{ name: 'sac', schema: sacConfigSchema, defaultNumEnvs: 1 }],
  kind: 'online',
  configIssues(raw, run) {
    const config = raw as SacConfig;
    const issues = [];
    if (config.batch_size > config.buffer_size) {
      issues.push({ key: 'batch_size', message: `${config.batch_size} transitions per gradient step exceed algo.buffer_size ${config.buffer_size} (the replay's capacity), so no gradient step would ever run; lower batch_size or raise buffer_size` });
    }
    if (config.learning_starts >= run.totalEnvSteps) {
      issues.push({ key: 'learning_starts', message: `${config.learning_starts} env steps of random actions come before the first gradient step, but run.total_env_steps is ${run.totalEnvSteps}: the run would never learn; lower learning_starts or raise total_env_steps` });
    }
    if (config.log_std_min >= config.log_std_max) {
      issues.push({ key: 'log_std_min', message: `${config.log_std_min} must be below algo.log_std_max ${config.log_std_max} (the actor's log-std is squashed into [min, max])` });
    }
    return issues;
  },
  checkTask(algo, task) {
    if (task.shape.discreteActions) throw new Error(`algo 'sac' needs continuous actions, but env '${task.env.id}' has discrete action spaces (use qmix, vdn, iql, mappo or ippo)`);
  },
  createLearner({ tasks, config, seed }) {
    const task = onlyTask(tasks, 'sac');
    return new Sac({ layout: { ...task.shape, numEnvs: task.numEnvs }, task, config: config as SacConfig, seed });
  },
  async benchmark({ task, settings, sampler, useRnn, config: overrides }): Promise<LearnerBenchCase | undefined> {
    if (useRnn) return undefined; // SAC's networks are MLPs
    // policy_frequency 1: one update is then 1 critic + 1 actor + 1 α step + Polyak, what PyTorch's
    // (CleanRL's) update is, every update alike; the default 2 does the same work over 2 updates.
    const config = sacConfigSchema.parse({ name: 'sac', hidden_dims: [settings.hiddenDim, settings.hiddenDim], policy_frequency: 1, ...overrides, learning_starts: 0, buffer_size: 4096 });
    const learner = new Sac({ layout: { ...task.shape, numEnvs: task.numEnvs }, task, config, seed: settings.seed });
    const { numAgents: A, obsDim, actDim: D } = task.shape;
    // A replay of synthetic transitions in the unit box, as observe would store them.
    const rows = 4 * config.batch_size;
    const obs = sampler.obs(rows);
    const next = sampler.obs(rows);
    const unit = new Float32Array(D);
    const rng = new Rng(deriveSeed(settings.seed, 'bench-sac'));
    for (let i = 0; i < rows; i++) {
      for (let d = 0; d < D; d++) unit[d] = rng.uniform(-1, 1);
      learner.replay.add(obs, i * obsDim, unit, 0, sampler.reward(), next, i * obsDim, false, i % A, 0);
    }
    // policy_frequency critic steps then as many actor steps: one update = that cycle.
    const cycle = config.policy_frequency;
    const samples = cycle * config.batch_size;
    return {
      samplesPerUpdate: samples,
      gradientSteps: 2 * cycle + (config.autotune ? cycle : 0),
      samplePasses: samples,
      flopsPerUpdate: sacUpdateFlops(learner, config.batch_size, cycle, cycle),
      update: async () => timed(() => {
        for (let k = 0; k < cycle; k++) learner.update();
      }),
      dispose: () => learner.dispose(),
    };
  },
};
