/**
 * MAPPO / IPPO in one file, CleanRL style: config, networks, acting, GAE and the PPO update read
 * top to bottom. Hyperparameters keep their EPyMARL names (`mappoConfigSchema`).
 *
 *  - Actor (parameters shared by all agents): EPyMARL's agent network (`AgentNetwork`), the GRU
 *    agent when `use_rnn`, else its feed-forward one, over obs ⊕ last action one-hot (when
 *    `obs_last_action`) ⊕ agent-id one-hot (when `obs_agent_id`) → logits; illegal actions get
 *    logit −1e10 before the softmax.
 *  - Critic (feed-forward, as EPyMARL's): MAPPO sees the global state (the concatenated
 *    observations of all agents when the env has no state) ⊕ all agents' last actions (when
 *    `obs_last_action`) ⊕ agent id; IPPO sees the agent's own obs ⊕ agent id.
 *  - Acting (`AgentActor`, shared with evaluation and `loadPolicy`) keeps a hidden state and a
 *    last action per (env, agent), cleared where an episode starts; the collection policy hands
 *    the pre-step hidden state out as the `h` extra, so the update can replay each (env, agent)
 *    sequence of a chunk through the GRU from the state it really had.
 *  - Update: GAE(γ, λ) per agent → `epochs` × `num_minibatches` Adam steps on the clipped
 *    surrogate + value loss − entropy bonus, global grad-norm clipped at `max_grad_norm`.
 *    Minibatches are groups of whole (env, agent) sequences, so recurrent unrolls stay
 *    contiguous; dead agents' rows stay in their sequence and are masked out of every loss.
 *
 * Choices worth knowing (CleanRL defaults where EPyMARL has no key):
 *  - Orthogonal init (gain √2 for hidden layers, 0.01 for the policy head, 1 for the value head).
 *  - One Adam (ε = 1e-5, `trainers/adam.ts`) over actor and critic with one summed loss, where
 *    EPyMARL keeps an optimiser per network. Its bias corrections come from the step count in
 *    float64 (as in PyTorch); tfjs's Adam recomputes its β-powers differently after
 *    `setWeights`, so a restored copy of it drifts from the uninterrupted run in the last bit.
 *  - Advantages are standardised per minibatch, over live rows.
 *  - Value loss is clipped like the policy (max of plain and clipped squared error around the
 *    collection-time value, with `eps_clip`); `clipValueLoss: false` gives plain MSE. Both
 *    are ½·(V − target)², scaled by `value_loss_coef`.
 *  - `standardise_returns`: the critic predicts returns normalised by a running mean/std of
 *    the return targets (values are de-normalised for GAE), as EPyMARL does.
 *  - `standardise_rewards`: rewards are shifted/scaled by a running mean/std before GAE.
 *  - GAE replaces EPyMARL's n-step targets, so `q_nstep` and `target_update_interval_or_tau`
 *    are not read.
 *
 * Continuous (Box) actions, as CleanRL's `ppo_continuous_action`: the actor outputs the mean of
 * a diagonal Gaussian (`actDim` outputs, same MLP or GRU), and a learned state-independent
 * log-std per action dimension (`log_std_init`, one set per agent without parameter sharing)
 * gives its spread (`agents/policies/gaussian.ts`). The env receives the sample clipped to the Box
 * bounds (`layout.actionLow/actionHigh`); the PPO ratio uses the log-probability of the
 * unclipped sample, which acting stores in the chunk as the `raw_action` extra. Entropy is the
 * Gaussian's; greedy evaluation sends the clipped mean. `obs_last_action` is discrete-only.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { EpisodeFinal, Experience, TrajectoryChunk } from '../agents/experience';
import { agentNetworkFlops } from '../agents/networks/flops';
import { AgentNetwork } from '../agents/networks/agent-network';
import { sampleLegal } from '../agents/policies/action-selection';
import { type AgentInputSpec, NO_ACTION, agentInputSpec, agentInputs, inputWidth } from '../agents/policies/agent-inputs';
import { ActionClipper, AgentActor, AgentNetworkPolicy, logStdRows } from '../agents/policies/agent-network-policy';
import { gaussianEntropy, gaussianLogProb, sampleGaussianRow } from '../agents/policies/gaussian';
import type { Policy, PolicyBatch, PolicyExtras, PolicyOutput } from '../agents/policies/policy';
import { type AgentNetworkPolicySpec, POLICY_SPEC_FORMAT } from '../agents/policies/policy-spec';
import type { EnvShape, VectorLayout } from '../envs/env-shape';
import { assignTensors, captureTensors, deserializeArray, serializeArray, type SerializedArray } from '../runtime/core/checkpoint-format';
import { Rng, deriveSeed } from '../runtime/core/rng';
import { Adam, clipByGlobalNorm } from './adam';
import { agentNetworkKeys, finite, MAX_EPISODE_BATCH, MAX_REPEATS, MAX_ROLLOUT_LENGTH, MAX_STEP_BATCH, nonNegative, positive, positiveInt, unit } from './config-keys';
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
  onlyTask,
  taskOfLayout,
} from './learner';
import { RunningMeanStd } from './running-mean-std';
import { SyntheticChunks, timed } from './synthetic-experience';

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

function ppoSchema<N extends 'mappo' | 'ippo'>(name: N, d: { lr: number; standardise_rewards: boolean; target_update_interval_or_tau: number }) {
  return z
    .object({
      name: z.literal(name),
      ...agentNetworkKeys({ lr: d.lr, hidden_dim: 64, use_rnn: true, standardise_rewards: d.standardise_rewards }),
      target_update_interval_or_tau: positive().default(d.target_update_interval_or_tau),
      gae_lambda: unit().default(0.95),
      /** EPyMARL bootstraps the critic with n-step returns; 1 is r + γV. */
      q_nstep: positiveInt(MAX_ROLLOUT_LENGTH).default(5),
      eps_clip: positive().default(0.2),
      epochs: positiveInt(MAX_REPEATS).default(4),
      // EPyMARL updates on the whole batch at once, i.e. one minibatch.
      num_minibatches: positiveInt(MAX_STEP_BATCH).default(1),
      entropy_coef: nonNegative().default(0.01),
      value_loss_coef: nonNegative().default(0.5),
      // No `use_critic_rnn`: EPyMARL's MAPPO and IPPO critics are feed-forward (the one release
      // whose IPPO critic built a GRU never fed its state to the value head).
      /** Episodes collected per update (EPyMARL's on-policy `batch_size` = `buffer_size`). */
      batch_size: positiveInt(MAX_EPISODE_BATCH).default(10),
      /**
       * Steps per env between updates (CleanRL's `num_steps`). Unset (null): as many as
       * `batch_size` full-length episodes need, ⌈batch_size · max episode steps / num_envs⌉,
       * which is EPyMARL's amount of data per update without waiting for episodes to end.
       */
      rollout_length: positiveInt(MAX_ROLLOUT_LENGTH).nullable().default(null),
      /**
       * Continuous (Box) actions only: initial log standard deviation of the Gaussian policy,
       * one learned value per action dimension (CleanRL's `actor_logstd`, which starts at 0).
       */
      log_std_init: finite().default(0),
    })
    .strict();
}

export const mappoConfigSchema = ppoSchema('mappo', { lr: 0.0005, standardise_rewards: false, target_update_interval_or_tau: 200 });
export const ippoConfigSchema = ppoSchema('ippo', { lr: 0.0003, standardise_rewards: true, target_update_interval_or_tau: 0.01 });
export type PpoConfig = z.output<typeof mappoConfigSchema> | z.output<typeof ippoConfigSchema>;

/** The config keys this trainer reads. */
export type MappoHyperparams = Pick<
  PpoConfig,
  | 'name'
  | 'lr'
  | 'gamma'
  | 'gae_lambda'
  | 'eps_clip'
  | 'epochs'
  | 'num_minibatches'
  | 'entropy_coef'
  | 'value_loss_coef'
  | 'max_grad_norm'
  | 'hidden_dim'
  | 'use_rnn'
  | 'obs_agent_id'
  | 'obs_last_action'
  | 'standardise_returns'
  | 'standardise_rewards'
  | 'batch_size'
  | 'rollout_length'
> &
  // Optional so hand-built configs keep working: absent means shared, the default.
  Partial<Pick<PpoConfig, 'parameter_sharing' | 'log_std_init'>>;

export interface MappoOptions {
  /** The task's shape and collection envs (a VectorLayout); `task` its key (default `default`). */
  layout: VectorLayout;
  task?: TaskSpec;
  config: MappoHyperparams;
  seed: number | string;
  /** Clipped value loss (default) or plain MSE. */
  clipValueLoss?: boolean;
}

/** Means over the update's gradient steps; `grad_norm` is the global norm before clipping. */
export type UpdateStats = {
  policy_loss: number;
  value_loss: number;
  entropy: number;
  approx_kl: number;
  clip_frac: number;
  grad_norm: number;
};

const STAT_NAMES = ['policy_loss', 'value_loss', 'entropy', 'approx_kl', 'clip_frac', 'grad_norm'] as const;
const MASKED_LOGIT = -1e10;

// ---------------------------------------------------------------------------------------------
// GAE
// ---------------------------------------------------------------------------------------------

export interface GaeInput {
  T: number;
  E: number;
  A: number;
  gamma: number;
  lambda: number;
  /** [T, E, A] */
  rewards: ArrayLike<number>;
  /** V(s_t), [T, E, A] */
  values: ArrayLike<number>;
  /**
   * Value of the observation after row t, [T, E, A]: V(s_{t+1}), the bootstrap value for the
   * last row, or the value of the episode's final observation where the episode ended at t.
   * Ignored where the agent terminated.
   */
  nextValues: ArrayLike<number>;
  /** [T, E, A] */
  terminated: ArrayLike<number>;
  /** [T, E, A] */
  truncated: ArrayLike<number>;
  /** [T, E]: the env's episode ended at t (so the recursion must not continue into t+1). */
  episodeDone: ArrayLike<number>;
  /** [T, E, A]: dead agents' rows get advantage 0 and break the recursion. */
  alive: ArrayLike<number>;
}

/**
 * Generalised advantage estimation per (env, agent), backwards in time.
 * Termination: δ = r − V(s). Truncation (or an episode end without termination): δ = r +
 * γ·V(final obs) − V(s), and the recursion stops there. Otherwise δ = r + γ·V(s') − V(s)
 * and A_t = δ + γλ·A_{t+1}. Returns = advantages + values.
 */
export function computeGae(input: GaeInput): { advantages: Float32Array; returns: Float32Array } {
  const { T, E, A, gamma, lambda } = input;
  const advantages = new Float32Array(T * E * A);
  const returns = new Float32Array(T * E * A);
  for (let e = 0; e < E; e++) {
    for (let a = 0; a < A; a++) {
      let nextAdv = 0;
      for (let t = T - 1; t >= 0; t--) {
        const i = (t * E + e) * A + a;
        if (!input.alive[i]) {
          nextAdv = 0;
          continue;
        }
        const term = input.terminated[i] === 1;
        const cut = term || input.truncated[i] === 1 || input.episodeDone[t * E + e] === 1;
        const nextV = term ? 0 : input.nextValues[i];
        const delta = input.rewards[i] + gamma * nextV - input.values[i];
        const adv = delta + (cut ? 0 : gamma * lambda * nextAdv);
        advantages[i] = adv;
        returns[i] = adv + input.values[i];
        nextAdv = adv;
      }
    }
  }
  return { advantages, returns };
}

function rethrowAs<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new Error(`mappo.restoreState: ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The learner
// ---------------------------------------------------------------------------------------------

/** A chunk's network inputs, time-major over the S = E·A (env, agent) sequences. */
interface SequenceInputs {
  actorIn: Float32Array;
  criticIn: Float32Array;
  /** [T, S]: 1 where the hidden state is cleared before the row. */
  resets: Float32Array;
  /** [S, H]: hidden state before row 0. */
  h0: Float32Array;
}

/** A chunk's update inputs on the host, time-major: [T, S, width] (h0 [S, H]). */
interface HostChunk {
  T: number;
  S: number;
  actorIn: Float32Array;
  criticIn: Float32Array;
  resets: Float32Array;
  h0: Float32Array;
  live: Float32Array;
  oldLogp: Float32Array;
  oldValue: Float32Array;
  adv: Float32Array;
  ret: Float32Array;
  /** Discrete actions: the taken action's one-hot, 0 or −1e10 per logit, and legal masks, [T, S, K]. */
  oneHot?: Float32Array;
  logitOffset?: Float32Array;
  legal?: Float32Array;
  /** Box actions: the unclipped samples [T, S, actDim]. */
  rawActions?: Float32Array;
}

/** One minibatch of B sequences on the device; per-row tensors are [T, B, 1]. */
interface Minibatch {
  actorIn: tf.Tensor3D;
  criticIn: tf.Tensor3D;
  resets: tf.Tensor2D;
  h0: tf.Tensor2D;
  oneHot?: tf.Tensor3D;
  logitOffset?: tf.Tensor3D;
  legal?: tf.Tensor3D;
  rawActions?: tf.Tensor3D;
  oldLogp: tf.Tensor3D;
  oldValue: tf.Tensor3D;
  ret: tf.Tensor3D;
  /** −standardised advantage. */
  negAdv: tf.Tensor3D;
  /** 1 / live count on live rows, else 0. */
  weight: tf.Tensor3D;
  /** value_loss_coef · weight, entropy_coef · weight: the loss's gradient scales. */
  valueGradWeight: tf.Tensor3D;
  entropyGradWeight: tf.Tensor3D;
}

export class Mappo implements OnlineLearner {
  readonly kind = 'online';
  readonly task: TaskSpec;
  readonly tasks: readonly TaskSpec[];
  readonly shape: EnvShape;
  readonly config: MappoHyperparams;
  readonly chunkLength: number;
  readonly actor: AgentNetwork;
  readonly critic: AgentNetwork;
  /** Box actions: the Gaussian policy's log-std, [copies, actDim]; undefined for discrete actions. */
  readonly logStd?: tf.Variable;
  readonly actorInputs: AgentInputSpec;
  readonly actorInDim: number;
  readonly criticInDim: number;
  readonly returnStats = new RunningMeanStd();
  readonly rewardStats = new RunningMeanStd();
  private readonly clipValueLoss: boolean;
  private readonly adam: Adam;
  private batchRng: Rng;
  private readonly collector: MappoCollectionPolicy;
  private updates = 0;

  constructor(options: MappoOptions) {
    const { layout, config, seed } = options;
    this.task = options.task ?? taskOfLayout(layout);
    this.tasks = [this.task];
    const shape = this.task.shape;
    this.shape = shape;
    this.config = config;
    this.clipValueLoss = options.clipValueLoss ?? true;
    const { numAgents: A, obsDim, stateDim, numActions: K, actDim: D } = shape;
    const E = this.task.numEnvs;
    if (!shape.discreteActions) {
      try {
        new ActionClipper(shape);
      } catch (error) {
        throw new Error(`${config.name}: ${(error as Error).message}`);
      }
      if (config.obs_last_action) throw new Error(`${config.name}: obs_last_action is only supported for discrete actions; set algo.obs_last_action to false`);
    }
    this.actorInputs = agentInputSpec(shape, { obsLastAction: config.obs_last_action, obsAgentId: config.obs_agent_id });
    const idDim = config.obs_agent_id ? A : 0;
    const lastDim = config.obs_last_action ? K : 0;
    this.actorInDim = inputWidth(this.actorInputs);
    this.criticInDim = config.name === 'ippo' ? obsDim + idDim : (stateDim > 0 ? stateDim : A * obsDim) + A * lastDim + idDim;
    this.chunkLength = config.rollout_length ?? Math.ceil((config.batch_size * shape.maxEpisodeSteps) / E);
    const netSeed = deriveSeed(seed, 'mappo', 'init');
    const H = config.hidden_dim;
    const copies = config.parameter_sharing === false ? A : 1;
    const actorOut = shape.discreteActions ? K : D;
    this.actor = new AgentNetwork({ inputDim: this.actorInDim, hiddenDim: H, outputDim: actorOut, recurrent: config.use_rnn, outputGain: 0.01, seed: netSeed, role: 'actor', copies });
    this.critic = new AgentNetwork({ inputDim: this.criticInDim, hiddenDim: H, outputDim: 1, recurrent: false, outputGain: 1, seed: netSeed, role: 'critic', copies });
    if (!shape.discreteActions) this.logStd = tf.tidy(() => tf.variable(tf.fill([copies, D], config.log_std_init ?? 0), true));
    this.adam = new Adam({ lr: config.lr, epsilon: 1e-5 }, this.parameters());
    this.batchRng = new Rng(deriveSeed(seed, 'mappo', 'minibatch'));
    this.collector = new MappoCollectionPolicy(this, E, new Rng(deriveSeed(seed, 'mappo', 'act')));
  }

  /** The collection policy (samples, and hands out log-probs, values and hidden states for the update). */
  get policy(): MappoCollectionPolicy {
    return this.collector;
  }

  collection(task: string): Collection {
    checkTaskKey(this.task, task, this.config.name);
    return { mode: 'chunk', chunkLength: this.chunkLength };
  }

  collectionPolicy(task: string): Policy {
    checkTaskKey(this.task, task, this.config.name);
    return this.collector;
  }

  policyVersion(): number {
    return this.updates;
  }

  /** The policy's variables: the actor network's, plus the Gaussian log-std for Box actions. */
  private actorVariables(): Record<string, tf.Variable> {
    return this.logStd ? { ...this.actor.namedVariables(), log_std: this.logStd } : this.actor.namedVariables();
  }

  /** Actor and critic variables under stable names (the keys of the optimiser's slots). */
  private parameters(): Record<string, tf.Variable> {
    const named: Record<string, tf.Variable> = {};
    for (const [n, v] of Object.entries(this.actorVariables())) named[`actor/${n}`] = v;
    for (const [n, v] of Object.entries(this.critic.namedVariables())) named[`critic/${n}`] = v;
    return named;
  }

  // --- the critic's inputs --------------------------------------------------------------------

  /** Critic rows [n·A, criticInDim] for n env-rows of obs [n, A, obsDim], state [n, stateDim], last actions [n, A]. */
  private criticInputs(obs: Float32Array, state: Float32Array, lastAction: ArrayLike<number>, n: number): Float32Array {
    const { numAgents: A, obsDim, stateDim, numActions: K } = this.shape;
    const D = this.criticInDim;
    const out = new Float32Array(n * A * D);
    const ippo = this.config.name === 'ippo';
    const baseDim = ippo ? obsDim : stateDim > 0 ? stateDim : A * obsDim;
    const jointLast = !ippo && this.config.obs_last_action;
    const idAt = baseDim + (jointLast ? A * K : 0);
    for (let r = 0; r < n * A; r++) {
      const e = Math.floor(r / A);
      if (ippo) out.set(obs.subarray(r * obsDim, (r + 1) * obsDim), r * D);
      else if (stateDim > 0) out.set(state.subarray(e * stateDim, (e + 1) * stateDim), r * D);
      else out.set(obs.subarray(e * A * obsDim, (e + 1) * A * obsDim), r * D);
      if (jointLast) {
        for (let b = 0; b < A; b++) {
          const act = lastAction[e * A + b];
          if (act !== NO_ACTION) out[r * D + baseDim + b * K + act] = 1;
        }
      }
      if (this.config.obs_agent_id) out[r * D + idAt + (r % A)] = 1;
    }
    return out;
  }

  /** Critic outputs (normalised if `standardise_returns`) for n env-rows, [n·A]. */
  criticValues(obs: Float32Array, state: Float32Array, lastAction: ArrayLike<number>, n: number): Float32Array {
    const rows = n * this.shape.numAgents;
    const input = this.criticInputs(obs, state, lastAction, n);
    return tf.tidy(() => {
      const { out } = this.critic.step(tf.tensor2d(input, [rows, this.criticInDim]), this.critic.initialHidden(rows));
      return out.dataSync().slice() as Float32Array;
    });
  }

  private denormalise(v: number): number {
    return this.config.standardise_returns ? v * this.returnStats.std + this.returnStats.mean : v;
  }

  // --- acting ---------------------------------------------------------------------------------

  /**
   * A policy with memory of its own for `numEnvs` envs: greedy (argmax over legal actions, ties
   * to the lowest index; EPyMARL's `test_greedy`; the clipped mean for Box actions), or with
   * `sample` drawing from the policy with an Rng seeded by `seed` — a memoryless greedy policy
   * can stall where two agents block each other, which sampling escapes.
   */
  evaluationPolicy(task: string, numEnvs: number, seed: string, options: EvaluationOptions = {}): Policy {
    checkTaskKey(this.task, task, this.config.name);
    const head = this.logStd ? 'gaussian' : 'categorical';
    return new AgentNetworkPolicy(this.actor, this.actorInputs, this.shape, numEnvs, head, options.sample ? { kind: 'sample', rng: new Rng(seed) } : { kind: 'greedy' }, this.logStd);
  }

  policySpecs(): Record<string, AgentNetworkPolicySpec> {
    const { spec } = this.actor;
    return {
      [this.task.key]: {
        format: POLICY_SPEC_FORMAT,
        kind: 'agent-network',
        model: 'actor',
        seedPath: [],
        shape: this.shape,
        head: this.logStd ? 'gaussian' : 'categorical',
        network: { inputDim: spec.inputDim, hiddenDim: spec.hiddenDim, outputDim: spec.outputDim, recurrent: spec.recurrent, copies: this.actor.copies },
        inputs: { obsLastAction: this.config.obs_last_action, obsAgentId: this.config.obs_agent_id },
      },
    };
  }

  episodesReset(task: string): void {
    checkTaskKey(this.task, task, this.config.name);
    this.collector.actor.reset();
  }

  // --- update ---------------------------------------------------------------------------------

  observe(item: Experience, envSteps: number): TrainStats | undefined {
    void envSteps; // no schedules
    if (item.kind !== 'chunk') throw new Error("mappo.observe: expects trajectory chunks (collection mode 'chunk')");
    checkTaskKey(this.task, item.task, this.config.name);
    return this.update(item);
  }

  private chunkExtra(chunk: TrajectoryChunk, key: string, perAgent: number): Float32Array {
    const x = chunk.extras[key];
    const want = chunk.length * chunk.layout.numEnvs * this.shape.numAgents * perAgent;
    if (!x) throw new Error(`mappo.update: chunk lacks the '${key}' extra (collect it with this learner's policy and config)`);
    if (x.length !== want) throw new Error(`mappo.update: chunk extra '${key}' has ${x.length} numbers, expected ${want}`);
    return x;
  }

  /** Network inputs for every row of the chunk, from what acting saw. */
  private sequenceInputs(chunk: TrajectoryChunk): SequenceInputs {
    const { numAgents: A } = this.shape;
    const E = chunk.layout.numEnvs;
    const T = chunk.length;
    const S = E * A;
    const H = this.config.hidden_dim;
    if (chunk.layout.numAgents !== A || chunk.alive.length !== T * S) throw new Error(`mappo.update: chunk has ${chunk.layout.numAgents} agents and ${chunk.alive.length} rows, expected ${A} agents and ${T}·${E}·${A} rows`);
    const lastAction = this.config.obs_last_action ? this.chunkExtra(chunk, 'last_action', 1) : new Float32Array(T * S).fill(NO_ACTION);
    const resets = new Float32Array(T * S);
    for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) if (chunk.episodeStart[t * E + e]) resets.fill(1, (t * E + e) * A, (t * E + e + 1) * A);
    return {
      actorIn: agentInputs(this.actorInputs, chunk.obs, lastAction, T * E, A),
      criticIn: this.criticInputs(chunk.obs, chunk.state, lastAction, T * E),
      resets,
      h0: this.config.use_rnn ? this.chunkExtra(chunk, 'h', H).slice(0, S * H) : new Float32Array(S * H),
    };
  }

  /**
   * The chunk's actions as the update reads them: discrete actions [T, S] (int32) with the
   * legal-action masks [T, S, K]; for Box actions the unclipped samples [T, S, actDim] that
   * acting drew, since the log-probabilities it stored are theirs.
   */
  private actionTensors(chunk: TrajectoryChunk): { actions: tf.Tensor; legal?: tf.Tensor3D } {
    const { numAgents: A, numActions: K, actDim } = this.shape;
    const E = chunk.layout.numEnvs;
    const T = chunk.length;
    const S = E * A;
    if (this.logStd) return { actions: tf.tensor3d(this.chunkExtra(chunk, 'raw_action', actDim), [T, S, actDim]) };
    return {
      legal: tf.tensor3d(Float32Array.from(chunk.masks), [T, S, K]),
      actions: tf.tensor2d(Int32Array.from({ length: T * S }, (_, i) => chunk.actions[i * actDim]), [T, S], 'int32'),
    };
  }

  /**
   * Log-probabilities [T, B] of `actions`, policy entropies [T, B] and critic outputs [T, B]
   * for B sequences: the actor is unrolled over the T rows from h0, clearing its state where
   * `resets` is 1.
   */
  private forward(d: { actorIn: tf.Tensor3D; criticIn: tf.Tensor3D; resets: tf.Tensor2D; h0: tf.Tensor2D; legal?: tf.Tensor3D; actions: tf.Tensor }) {
    const out = this.actor.unroll(d.actorIn, d.resets, d.h0);
    // The critic is feed-forward: unroll runs its T·B rows as one batch and ignores resets/h0.
    const values = tf.squeeze(this.critic.unroll(d.criticIn, d.resets, d.h0), [2]) as tf.Tensor2D;
    if (this.logStd) {
      // Box actions: `out` holds the Gaussian means [T, B, actDim].
      const [T, B] = d.resets.shape;
      const A = this.shape.numAgents;
      // One log-std row, or one per agent: sequences then come agent-fastest in whole envs.
      const logStd = this.logStd.shape[0] === 1 ? this.logStd : tf.tile(this.logStd, [B / A, 1]);
      const newLogp = gaussianLogProb(d.actions, out, logStd) as tf.Tensor2D;
      const entropy = tf.broadcastTo(gaussianEntropy(logStd), [T, B]) as tf.Tensor2D;
      return { newLogp, entropy, values };
    }
    const K = this.shape.numActions;
    const legal = d.legal!;
    const masked = tf.where(tf.cast(legal, 'bool'), out, tf.fill(out.shape, MASKED_LOGIT));
    const logProbs = tf.logSoftmax(masked);
    const newLogp = tf.sum(tf.mul(logProbs, tf.oneHot(d.actions as tf.Tensor2D, K)), -1) as tf.Tensor2D;
    // Illegal actions have probability exactly 0; mask them so 0·(−1e10) stays out.
    const entropy = tf.neg(tf.sum(tf.mul(tf.mul(tf.exp(logProbs), logProbs), legal), -1)) as tf.Tensor2D;
    return { newLogp, entropy, values };
  }

  /** The current policy's log-probabilities [T, E, A] of the chunk's actions (for checks). */
  recomputeLogp(chunk: TrajectoryChunk): Float32Array {
    const A = this.shape.numAgents;
    const E = chunk.layout.numEnvs;
    const T = chunk.length;
    const S = E * A;
    const inp = this.sequenceInputs(chunk);
    return tf.tidy(() => {
      const { newLogp } = this.forward({
        actorIn: tf.tensor3d(inp.actorIn, [T, S, this.actorInDim]),
        criticIn: tf.tensor3d(inp.criticIn, [T, S, this.criticInDim]),
        resets: tf.tensor2d(inp.resets, [T, S]),
        h0: tf.tensor2d(inp.h0, [S, this.config.hidden_dim]),
        ...this.actionTensors(chunk),
      });
      return newLogp.dataSync().slice() as Float32Array;
    });
  }

  /** GAE on the chunk, then `epochs` × `num_minibatches` PPO steps. Undefined when no agent was alive. */
  update(chunk: TrajectoryChunk): UpdateStats | undefined {
    const cfg = this.config;
    const { numAgents: A, numActions: K, actDim } = this.shape;
    const E = chunk.layout.numEnvs;
    const T = chunk.length;
    const S = E * A;
    const N = T * S;
    const H = cfg.hidden_dim;
    const oldValues = this.chunkExtra(chunk, 'value', 1);
    const oldLogp = this.chunkExtra(chunk, 'logp', 1);
    const inputs = this.sequenceInputs(chunk);

    // 1. Rewards (optionally standardised) and values of the observations that follow each row.
    let rewards: Float32Array = chunk.rewards;
    if (cfg.standardise_rewards) {
      this.rewardStats.update(chunk.rewards);
      const { mean, std } = this.rewardStats;
      rewards = chunk.rewards.map((r) => (r - mean) / std);
    }
    const values = oldValues.map((v) => this.denormalise(v));
    // What the critic would have seen as last actions after row t: the actions taken at t.
    const actionsAt = (t: number, e: number, a: number) => {
      const i = (t * E + e) * A + a;
      return chunk.alive[i] ? chunk.actions[i * actDim] : NO_ACTION;
    };
    const bootLast = new Float32Array(S);
    for (let e = 0; e < E; e++) for (let a = 0; a < A; a++) bootLast[e * A + a] = chunk.bootstrap.episodeStart[e] ? NO_ACTION : actionsAt(T - 1, e, a);
    // The bootstrap rows and every episode's final observation go through the critic as one batch.
    const { obsDim, stateDim } = this.shape;
    const F = chunk.finals.length;
    const evalObs = new Float32Array((E + F) * A * obsDim);
    const evalState = new Float32Array((E + F) * stateDim);
    const evalLast = new Float32Array((E + F) * A);
    evalObs.set(chunk.bootstrap.obs.subarray(0, E * A * obsDim));
    evalState.set(chunk.bootstrap.state.subarray(0, E * stateDim));
    evalLast.set(bootLast);
    chunk.finals.forEach((f, j) => {
      evalObs.set(f.obs.subarray(0, A * obsDim), (E + j) * A * obsDim);
      evalState.set(f.state.subarray(0, stateDim), (E + j) * stateDim);
      for (let a = 0; a < A; a++) evalLast[(E + j) * A + a] = actionsAt(f.t, f.env, a);
    });
    const evalValues = this.criticValues(evalObs, evalState, evalLast, E + F);
    const nextValues = new Float32Array(N);
    for (let i = 0; i < N; i++) nextValues[i] = this.denormalise(i + S < N ? oldValues[i + S] : evalValues[i - (N - S)]);
    chunk.finals.forEach((f, j) => {
      for (let a = 0; a < A; a++) nextValues[(f.t * E + f.env) * A + a] = this.denormalise(evalValues[(E + j) * A + a]);
    });

    // 2. GAE, then value targets (normalised by the running return stats when asked). Rows
    //    count in the losses where the agent was alive and had a legal action.
    const { advantages, returns } = computeGae({
      T, E, A, gamma: cfg.gamma, lambda: cfg.gae_lambda, rewards, values, nextValues,
      terminated: chunk.terminated, truncated: chunk.truncated, episodeDone: chunk.episodeDone, alive: chunk.alive,
    });
    const live = new Float32Array(N);
    const liveReturns: number[] = [];
    for (let i = 0; i < N; i++) {
      let legal = this.logStd !== undefined; // Box actions have no masks
      for (let k = 0; k < K && !legal; k++) legal = chunk.masks[i * K + k] === 1;
      if (chunk.alive[i] && legal) {
        live[i] = 1;
        liveReturns.push(returns[i]);
      }
    }
    if (liveReturns.length === 0) return undefined;
    if (cfg.standardise_returns) this.returnStats.update(liveReturns);
    const targets = cfg.standardise_returns ? returns.map((r) => (r - this.returnStats.mean) / this.returnStats.std) : returns;

    // 3. The whole chunk on the host, time-major over the S (env, agent) sequences (its arrays
    //    checked first: a malformed chunk must fail before any tensor exists). Minibatches are
    //    gathered here and uploaded, so the device sees no gather or mask-building kernels.
    const host: HostChunk = {
      T, S, actorIn: inputs.actorIn, criticIn: inputs.criticIn, resets: inputs.resets, h0: inputs.h0,
      live, oldLogp, oldValue: oldValues, adv: advantages, ret: targets, ...this.hostActions(chunk),
    };

    // 4. epochs × num_minibatches clipped-PPO steps, each over a group of whole sequences.
    const params = this.parameters();
    const paramNames = Object.keys(params);
    const paramList = paramNames.map((n) => params[n]);
    // Without parameter sharing each agent has its own weights, which read rows agent-fastest:
    // minibatches then take whole envs (all A agents' sequences of each).
    const unit = cfg.parameter_sharing === false ? A : 1;
    const order = Array.from({ length: S / unit }, (_, s) => s);
    const mbCount = Math.min(cfg.num_minibatches, order.length);
    // One minibatch holds every sequence: upload it once for all epochs.
    const whole = mbCount === 1 ? this.uploadMinibatch(host, null) : undefined;
    // Each step's stats stay on the device; they are read once, after the last step.
    const stepStats: tf.Tensor1D[] = [];
    try {
      for (let epoch = 0; epoch < cfg.epochs; epoch++) {
        this.batchRng.shuffle(order);
        for (let mb = 0; mb < mbCount; mb++) {
          const picked = order.slice(Math.floor((mb * order.length) / mbCount), Math.floor(((mb + 1) * order.length) / mbCount));
          const seqs = unit === 1 ? picked : picked.flatMap((e) => Array.from({ length: unit }, (_, a) => e * unit + a));
          stepStats.push(
            tf.tidy(() => {
              const batch = whole ?? this.uploadMinibatch(host, seqs);
              let lossStats: tf.Tensor1D | undefined;
              const { value: loss, grads } = tf.variableGrads(() => {
                const out = this.actor.unroll(batch.actorIn, batch.resets, batch.h0, { inputsAreData: true });
                // The critic is feed-forward: unroll runs its T·B rows as one batch and ignores resets/h0.
                const values = this.critic.unroll(batch.criticIn, batch.resets, batch.h0, { inputsAreData: true });
                const { loss, stats } = this.ppoLoss(batch, out, values);
                lossStats = stats;
                return loss;
              }, paramList);
              loss.dispose();
              const byName: Record<string, tf.Tensor> = {};
              paramNames.forEach((n, i) => (byName[n] = grads[paramList[i].name]));
              const { norm: gnorm, scale } = clipByGlobalNorm(paramNames.map((n) => byName[n]), cfg.max_grad_norm);
              this.adam.apply(byName, scale);
              const out = tf.concat([lossStats!, tf.reshape(gnorm, [1])]) as tf.Tensor1D;
              lossStats!.dispose();
              return out;
            }),
          );
        }
      }
      const sums = new Float64Array(STAT_NAMES.length);
      const all = tf.tidy(() => tf.stack(stepStats));
      const s = all.dataSync();
      all.dispose();
      for (let step = 0; step < stepStats.length; step++) for (let k = 0; k < STAT_NAMES.length; k++) sums[k] += s[step * STAT_NAMES.length + k];
      this.updates++;
      const out = {} as UpdateStats;
      STAT_NAMES.forEach((name, k) => (out[name] = sums[k] / stepStats.length));
      return out;
    } finally {
      tf.dispose(stepStats);
      if (whole) tf.dispose(Object.values(whole));
    }
  }

  /** The chunk's actions on the host: one-hots, logit offsets and legal masks [T, S, K], or Box actions' unclipped samples. */
  private hostActions(chunk: TrajectoryChunk): Pick<HostChunk, 'oneHot' | 'logitOffset' | 'legal' | 'rawActions'> {
    const { numAgents: A, numActions: K, actDim } = this.shape;
    const N = chunk.length * chunk.layout.numEnvs * A;
    if (this.logStd) return { rawActions: this.chunkExtra(chunk, 'raw_action', actDim) };
    const oneHot = new Float32Array(N * K);
    const logitOffset = new Float32Array(N * K);
    const legal = new Float32Array(N * K);
    for (let i = 0; i < N; i++) {
      const a = chunk.actions[i * actDim];
      if (a >= 0 && a < K) oneHot[i * K + a] = 1;
      for (let k = 0; k < K; k++) {
        const ok = chunk.masks[i * K + k] === 1;
        legal[i * K + k] = ok ? 1 : 0;
        if (!ok) logitOffset[i * K + k] = MASKED_LOGIT;
      }
    }
    return { oneHot, logitOffset, legal };
  }

  /**
   * One minibatch's tensors: the sequences `seqs` of the host chunk (all, in order, for null),
   * with advantages standardised over its live rows and the per-row loss weights (live rows
   * weigh 1/live count, so sums of weighted rows are the live means the losses take).
   */
  private uploadMinibatch(host: HostChunk, seqs: readonly number[] | null): Minibatch {
    const cfg = this.config;
    const { T, S } = host;
    const B = seqs ? seqs.length : S;
    const pick = (src: Float32Array, width: number, rows = T): Float32Array => {
      if (!seqs) return src;
      const out = new Float32Array(rows * B * width);
      for (let t = 0; t < rows; t++) {
        for (let j = 0; j < B; j++) out.set(src.subarray((t * S + seqs[j]) * width, (t * S + seqs[j] + 1) * width), (t * B + j) * width);
      }
      return out;
    };
    const live = pick(host.live, 1);
    const adv = pick(host.adv, 1);
    const n = T * B;
    let count = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) if (live[i]) (count++, (sum += adv[i]));
    const mean = sum / Math.max(count, 1);
    let sq = 0;
    for (let i = 0; i < n; i++) if (live[i]) sq += (adv[i] - mean) ** 2;
    const std = Math.sqrt(sq / Math.max(count, 1));
    const negAdv = new Float32Array(n);
    const weight = new Float32Array(n);
    const valueGradWeight = new Float32Array(n);
    const entropyGradWeight = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      negAdv[i] = -(adv[i] - mean) / (std + 1e-8);
      weight[i] = live[i] / Math.max(count, 1);
      valueGradWeight[i] = cfg.value_loss_coef * weight[i];
      entropyGradWeight[i] = cfg.entropy_coef * weight[i];
    }
    const rows = (x: Float32Array) => tf.tensor3d(x, [T, B, 1]);
    const K = this.shape.numActions;
    return {
      actorIn: tf.tensor3d(pick(host.actorIn, this.actorInDim), [T, B, this.actorInDim]),
      criticIn: tf.tensor3d(pick(host.criticIn, this.criticInDim), [T, B, this.criticInDim]),
      resets: tf.tensor2d(pick(host.resets, 1), [T, B]),
      h0: tf.tensor2d(pick(host.h0, this.config.hidden_dim, 1), [B, this.config.hidden_dim]),
      ...(host.rawActions
        ? { rawActions: tf.tensor3d(pick(host.rawActions, this.shape.actDim), [T, B, this.shape.actDim]) }
        : {
            oneHot: tf.tensor3d(pick(host.oneHot!, K), [T, B, K]),
            logitOffset: tf.tensor3d(pick(host.logitOffset!, K), [T, B, K]),
            legal: tf.tensor3d(pick(host.legal!, K), [T, B, K]),
          }),
      oldLogp: rows(pick(host.oldLogp, 1)),
      oldValue: rows(pick(host.oldValue, 1)),
      ret: rows(pick(host.ret, 1)),
      negAdv: rows(negAdv),
      weight: rows(weight),
      valueGradWeight: rows(valueGradWeight),
      entropyGradWeight: rows(entropyGradWeight),
    };
  }

  /**
   * The PPO loss of a minibatch from the actor's outputs [T, B, K or actDim] and the critic's
   * [T, B, 1]: clipped surrogate + value_loss_coef · value loss − entropy_coef · entropy, as
   * one op with a hand-derived gradient (the loss head is ~60 elementwise kernels forward;
   * taped, it would cost as many again in saved-tensor copies and twice that backward).
   * `stats` [5]: policy_loss, value_loss, entropy, approx_kl, clip_frac (the caller disposes it).
   *
   * Gradients (w = row weight, N = −entropy = Σ p·log p, per row):
   *  - surrogate max(−Â·r, −Â·clip(r)): −Â·r·w wrt log π(a) where the unclipped term is the max
   *    (ties included, as tf.maximum's gradient), else 0 (the clipped term is flat there);
   *  - value loss ½·max((V−R)², (V_old + clip(V−V_old) − R)²): (V − R)·w where the plain term
   *    is the max, else (V_old + clip(V−V_old) − R)·w where V − V_old is inside the clip range;
   *  - categorical: ∂log π(a)/∂logits = onehot(a) − p, ∂N/∂logits = p ⊙ (log p − N); illegal
   *    actions (masked to −1e10, p = 0) get none.
   */
  private ppoLoss(mb: Minibatch, out: tf.Tensor3D, values: tf.Tensor3D): { loss: tf.Scalar; stats: tf.Tensor1D } {
    const eps = this.config.eps_clip;
    const clipValue = this.clipValueLoss;
    let stats: tf.Tensor1D | undefined;
    // Per-row terms of one minibatch; gLogp, gV: the loss's gradient wrt log π(a) and V.
    const terms = (newLogp: tf.Tensor, negEntropy: tf.Tensor, v: tf.Tensor) => {
      const logRatio = tf.sub(newLogp, mb.oldLogp);
      const ratio = tf.exp(logRatio);
      const pg1 = tf.mul(mb.negAdv, ratio);
      const pg2 = tf.mul(mb.negAdv, tf.clipByValue(ratio, 1 - eps, 1 + eps));
      // step(x) is 1 where x > 0, so 1 − step(pg2 − pg1) is 1 where pg1 ≥ pg2.
      const gLogp = tf.mul(tf.mul(pg1, mb.weight), tf.sub(1, tf.step(tf.sub(pg2, pg1))));
      const err = tf.sub(v, mb.ret);
      let vLoss = tf.square(err);
      let gV: tf.Tensor;
      if (clipValue) {
        const delta = tf.sub(v, mb.oldValue);
        const deltaClipped = tf.clipByValue(delta, -eps, eps);
        const err2 = tf.sub(tf.add(mb.oldValue, deltaClipped), mb.ret);
        const vLoss2 = tf.square(err2);
        // Inside the clip range V_old + (V − V_old) is V only up to rounding, so either branch
        // of the max can win there, and the clipped one passes the gradient too (as autodiff
        // of max and clipByValue does): err where the plain term is the max, else err2 where
        // V − V_old is inside the range (clipByValue returns it unchanged exactly there).
        const plainWins = tf.sub(1, tf.step(tf.sub(vLoss2, vLoss)));
        const err2Passed = tf.mul(err2, tf.sub(1, tf.step(tf.abs(tf.sub(deltaClipped, delta)))));
        gV = tf.mul(tf.add(err2Passed, tf.mul(plainWins, tf.sub(err, err2Passed))), mb.valueGradWeight);
        vLoss = tf.maximum(vLoss, vLoss2);
      } else {
        gV = tf.mul(err, mb.valueGradWeight);
      }
      const ratioMinus1 = tf.sub(ratio, 1);
      const approxKl = tf.sub(ratioMinus1, logRatio);
      const clipped = tf.step(tf.sub(tf.abs(ratioMinus1), eps));
      // Live means of [surrogate, value error², −entropy, kl, clipped] in one weighted sum.
      const means = tf.sum(tf.mul(tf.concat([tf.maximum(pg1, pg2), vLoss, negEntropy, approxKl, clipped], 2), mb.weight), [0, 1]);
      stats = tf.keep(tf.mul(means, tf.tensor1d([1, 0.5, -1, 1, 1]))) as tf.Tensor1D;
      const loss = tf.sum(tf.mul(means, tf.tensor1d([1, 0.5 * this.config.value_loss_coef, this.config.entropy_coef, 0, 0]))) as tf.Scalar;
      return { loss, gLogp, gV };
    };
    let loss: tf.Scalar;
    if (this.logStd) {
      // Box actions: `out` holds the Gaussian means [T, B, actDim]; the log-probs and entropy
      // stay taped ops (they reach log_std too), the PPO terms on top are one op.
      const [T, B] = out.shape;
      const A = this.shape.numAgents;
      // One log-std row, or one per agent: sequences then come agent-fastest in whole envs.
      const logStd = this.logStd.shape[0] === 1 ? this.logStd : tf.tile(this.logStd, [B / A, 1]);
      const newLogp = tf.reshape(gaussianLogProb(mb.rawActions!, out, logStd), [T, B, 1]);
      const negEntropy = tf.neg(tf.reshape(tf.broadcastTo(gaussianEntropy(logStd), [T, B]), [T, B, 1]));
      const head = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [logp, negEnt, v] = args as tf.Tensor[];
        const save = args[3] as tf.GradSaveFunc;
        const { loss, gLogp, gV } = terms(logp, negEnt, v);
        save([gLogp, gV]);
        return { value: loss, gradFunc: (dy: tf.Scalar, [gl, gv]: tf.Tensor[]) => [tf.mul(gl, dy), tf.mul(mb.entropyGradWeight, dy), tf.mul(gv, dy)] };
      });
      loss = head(newLogp, negEntropy, values) as tf.Scalar;
    } else {
      const head = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
        const [logits, v] = args as tf.Tensor[];
        const save = args[2] as tf.GradSaveFunc;
        const logProbs = tf.logSoftmax(tf.add(logits, mb.logitOffset!));
        const p = tf.exp(logProbs);
        const newLogp = tf.sum(tf.mul(logProbs, mb.oneHot!), -1, true);
        // Illegal actions have p = 0 exactly, so their p·log p (log p ≈ −1e10) is 0.
        const negEntropy = tf.sum(tf.mul(p, logProbs), -1, true);
        const { loss, gLogp, gV } = terms(newLogp, negEntropy, v);
        // gLogp·(onehot − p) + gN·p ⊙ (log p − N) = gLogp·onehot + p ⊙ (gN·log p − (gN·N + gLogp)).
        const gN = mb.entropyGradWeight;
        const inner = tf.sub(tf.mul(gN, logProbs), tf.add(tf.mul(gN, negEntropy), gLogp));
        const gLogits = tf.mul(tf.add(tf.mul(gLogp, mb.oneHot!), tf.mul(p, inner)), mb.legal!);
        save([gLogits, gV]);
        return { value: loss, gradFunc: (dy: tf.Scalar, [gl, gv]: tf.Tensor[]) => [tf.mul(gl, dy), tf.mul(gv, dy)] };
      });
      loss = head(out, values) as tf.Scalar;
    }
    return { loss, stats: stats! };
  }

  // --- state ----------------------------------------------------------------------------------

  async captureState(): Promise<LearnerState> {
    const acting = this.collector.actor;
    return {
      models: { actor: await captureTensors(this.actorVariables()), critic: await captureTensors(this.critic.namedVariables()) },
      optimizers: { adam: await this.adam.capture() },
      rngs: { act: this.collector.rng.state(), minibatch: this.batchRng.state() },
      arrays: { hidden: serializeArray(acting.hidden.slice()), last_action: serializeArray(acting.lastAction.slice()) },
      json: { updates: this.updates, return_stats: this.returnStats.toJSON(), reward_stats: this.rewardStats.toJSON() },
    };
  }

  async restoreState(state: LearnerState): Promise<void> {
    const need = <T>(record: Record<string, T>, key: string, what: string): T => {
      const v = record[key];
      if (v === undefined) throw new Error(`mappo.restoreState: no ${what} '${key}'`);
      return v;
    };
    const acting = this.collector.actor;
    const array = <C extends Float32ArrayConstructor | Int32ArrayConstructor>(key: string, Ctor: C, length: number): InstanceType<C> => {
      const a = deserializeArray(need<SerializedArray>(state.arrays, key, 'array'));
      if (!(a instanceof Ctor) || a.length !== length) throw new Error(`mappo.restoreState: array '${key}' is a ${a.constructor.name}[${a.length}], expected ${Ctor.name}[${length}]`);
      return a as InstanceType<C>;
    };
    const hidden = array('hidden', Float32Array, acting.hidden.length);
    const lastAction = array('last_action', Int32Array, acting.lastAction.length);
    const updates = state.json.updates;
    if (typeof updates !== 'number' || !Number.isSafeInteger(updates)) throw new Error('mappo.restoreState: json.updates must be an integer');
    const actRng = Rng.fromState(need(state.rngs, 'act', 'rng'));
    const batchRng = Rng.fromState(need(state.rngs, 'minibatch', 'rng'));
    // Everything is looked up before anything is assigned, so a missing part leaves the learner as it was.
    const actorData = need(state.models, 'actor', 'model');
    const criticData = need(state.models, 'critic', 'model');
    const adamState = need(state.optimizers, 'adam', 'optimizer');
    rethrowAs("model 'actor'", () => assignTensors(this.actorVariables(), actorData));
    rethrowAs("model 'critic'", () => assignTensors(this.critic.namedVariables(), criticData));
    this.adam.restore(adamState, "mappo.restoreState: optimizer 'adam'");
    this.returnStats.load(state.json.return_stats, 'mappo.restoreState: json.return_stats');
    this.rewardStats.load(state.json.reward_stats, 'mappo.restoreState: json.reward_stats');
    this.collector.rng = actRng;
    this.batchRng = batchRng;
    acting.hidden = hidden;
    acting.lastAction.set(lastAction);
    this.updates = updates;
  }

  dispose(): void {
    this.actor.dispose();
    this.critic.dispose();
    this.logStd?.dispose();
    this.adam.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Collection: sampling, with what the update needs as extras
// ---------------------------------------------------------------------------------------------

/**
 * Samples from the masked categorical (or, for Box actions, the Gaussian) with its own Rng, for
 * the learner's `numEnvs` collection envs. Extras, each [E, A, k]: `logp`, `value`, `h` (the
 * hidden state before the step, k = hidden_dim, when `use_rnn`), `last_action` (the action
 * one-hot the actor saw, −1 for none, when `obs_last_action`) and, for Box actions,
 * `raw_action` (the unclipped sample, k = actDim).
 */
export class MappoCollectionPolicy implements Policy {
  readonly actor: AgentActor;
  private readonly clipper?: ActionClipper;

  constructor(
    private readonly learner: Mappo,
    numEnvs: number,
    public rng: Rng,
  ) {
    this.actor = new AgentActor(learner.actor, learner.actorInputs, learner.shape, numEnvs);
    if (learner.logStd) this.clipper = new ActionClipper(learner.shape);
  }

  act(batch: PolicyBatch, actions: Float32Array): PolicyOutput {
    const { numAgents: A, numActions: K, actDim } = this.learner.shape;
    this.actor.checkBatch(batch, 'mappo');
    const E = this.actor.numEnvs;
    const N = E * A;
    const { out: logits, hPrev, lastPrev } = this.actor.forward(batch);
    const value = this.learner.criticValues(batch.obs, batch.state, lastPrev, E);
    const logp = new Float32Array(N);
    const extras: PolicyExtras = { logp, value };
    const logStd = this.learner.logStd;
    if (logStd) {
      // Box actions: the env gets the clipped sample, the update the unclipped one (`raw_action`).
      const raw = new Float32Array(N * actDim);
      const rows = logStdRows(logStd, actDim);
      for (let i = 0; i < N; i++) {
        actions.fill(0, i * actDim, (i + 1) * actDim);
        if (!batch.alive[i]) continue;
        logp[i] = sampleGaussianRow(logits, rows[i % rows.length], i, actDim, this.rng, raw);
        this.clipper!.clip(raw, i, actions);
      }
      extras.raw_action = raw;
    } else {
      for (let i = 0; i < N; i++) {
        actions[i * actDim] = 0;
        if (!batch.alive[i]) continue;
        const drawn = sampleLegal(logits, batch.masks, i, K, this.rng);
        if (!drawn) continue; // no legal action: an env bug the checker reports
        actions[i * actDim] = drawn.action;
        logp[i] = drawn.logp;
      }
      this.actor.recordActions(batch, actions);
    }
    if (this.learner.config.use_rnn) extras.h = hPrev;
    if (this.learner.config.obs_last_action) extras.last_action = lastPrev;
    return { extras };
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer definition (what `trainers/index.ts` lists) and its benchmark case
// ---------------------------------------------------------------------------------------------

/** Matmul FLOPs of one MAPPO/IPPO update on a chunk of T rows with `finals` episode ends (see `agents/networks/flops.ts`). */
export function mappoUpdateFlops(learner: Mappo, T: number, finals: number): number {
  const { numAgents: A, numActions: K } = learner.shape;
  const E = learner.task.numEnvs;
  const cfg = learner.config;
  const S = E * A;
  const actor = agentNetworkFlops({ inputDim: learner.actorInDim, hiddenDim: cfg.hidden_dim, outputDim: K, recurrent: cfg.use_rnn }, T * S, S);
  const criticShape = { inputDim: learner.criticInDim, hiddenDim: cfg.hidden_dim, outputDim: 1, recurrent: false };
  const critic = agentNetworkFlops(criticShape, T * S, S);
  const perEpoch = actor.forward + actor.backward + critic.forward + critic.backward;
  const bootstrap = agentNetworkFlops(criticShape, S + finals * A, S).forward;
  return cfg.epochs * perEpoch + bootstrap;
}

/**
 * Minibatches take whole sequences (each env's, per agent when weights are shared); asking for
 * more minibatches than sequences would leave some empty, so it is refused rather than clamped.
 */
function checkMinibatches(config: PpoConfig, task: TaskSpec): void {
  const agents = task.shape.numAgents;
  const sequences = config.parameter_sharing === false ? task.numEnvs : task.numEnvs * agents;
  if (config.num_minibatches <= sequences) return;
  const what = config.parameter_sharing === false ? `${task.numEnvs} envs (without parameter sharing a minibatch takes all agents of an env)` : `${task.numEnvs} envs × ${agents} agents`;
  throw new Error(`algo.num_minibatches: ${config.num_minibatches} minibatches, but one rollout of task '${task.key}' holds only ${sequences} sequences (${what}); lower num_minibatches to at most ${sequences} or raise num_envs`);
}

export const mappoTrainer: TrainerDefinition = {
  algorithms: [
    { name: 'mappo', schema: mappoConfigSchema, defaultNumEnvs: 10 },
    { name: 'ippo', schema: ippoConfigSchema, defaultNumEnvs: 10 },
  ],
  kind: 'online',
  configIssues(raw, run) {
    const { rollout_length: rollout } = raw as PpoConfig;
    // One round steps every env `rollout_length` times; the run only stops at whole rounds.
    if (rollout === null || rollout * run.numEnvs <= run.totalEnvSteps) return [];
    return [
      {
        key: 'rollout_length',
        message: `${rollout} steps × ${run.numEnvs} envs = ${rollout * run.numEnvs} env steps per update exceed run.total_env_steps ${run.totalEnvSteps} (a run stops only after whole updates); lower rollout_length or num_envs, or raise total_env_steps`,
      },
    ];
  },
  createLearner({ tasks, config, seed }) {
    const task = onlyTask(tasks, config.name);
    checkMinibatches(config as PpoConfig, task);
    return new Mappo({ layout: { ...task.shape, numEnvs: task.numEnvs }, task, config: config as PpoConfig, seed });
  },
  async benchmark({ algo, task, settings, useRnn, sampler, config: overrides }): Promise<LearnerBenchCase> {
    const schema = algo === 'ippo' ? ippoConfigSchema : mappoConfigSchema;
    const config = schema.parse({ hidden_dim: settings.hiddenDim, ...overrides, name: algo, use_rnn: useRnn, rollout_length: settings.rolloutLength });
    const learner = new Mappo({ layout: { ...task.shape, numEnvs: task.numEnvs }, task, config, seed: settings.seed });
    const T = learner.chunkLength;
    const chunks = new SyntheticChunks(task.shape, task.numEnvs, learner.policy, sampler, task.key);
    const samples = T * task.numEnvs * task.shape.numAgents;
    const mbCount = Math.min(config.num_minibatches, task.numEnvs * task.shape.numAgents);
    // Episode ends per chunk vary with the stagger; count them from a chunk about to be used.
    let pending = await chunks.next(T);
    const flops = mappoUpdateFlops(learner, T, pending.finals.length);
    return {
      samplesPerUpdate: samples,
      gradientSteps: config.epochs * mbCount,
      samplePasses: samples * config.epochs,
      flopsPerUpdate: flops,
      update: async () => {
        const chunk = pending;
        // The next update's chunk is acted first, so the update is the case's last work (its kernel profile ends there).
        pending = await chunks.next(T);
        return timed(() => {
          if (!learner.observe(chunk, (chunk.startStep + T) * task.numEnvs)) throw new Error(`bench learner: ${algo} ran no update on a chunk`);
        });
      },
      dispose: () => learner.dispose(),
    };
  },
};
