/**
 * QMIX, VDN and IQL in one file, CleanRL style: acting, episode replay, the TD update and
 * target networks read top to bottom. Hyperparameters keep their EPyMARL names (`qmixConfigSchema`);
 * `config.name` picks the algorithm:
 *
 *  - iql:  every agent regresses its own Q(o, a) on the team reward (no mixer).
 *  - vdn:  Q_tot = Σ_a Q_a.
 *  - qmix: Q_tot = mixing network over the agents' Q-values whose weights come from
 *          hypernetworks on the global state (absolute values, so ∂Q_tot/∂Q_a ≥ 0), with an
 *          ELU hidden layer and a state-value head V(s) (`agents/networks/qmix-mixer.ts`).
 *
 * Agents share one `AgentNetwork` (GRU when `use_rnn`, else an MLP) over obs ⊕ last-action
 * one-hot (`obs_last_action`, zero at an episode's first step) ⊕ agent-id one-hot
 * (`obs_agent_id`). Acting is ε-greedy over legal actions with ε falling linearly over
 * `epsilon_anneal_time` env steps (`AgentNetworkPolicy`, which evaluation and `loadPolicy` share). Finished episodes go to an `EpisodeReplay`; every finished
 * episode adds `updates_per_episode` gradient steps (EPyMARL's default runner: one per
 * episode; its parallel runner with k envs: 1/k), taken once the replay holds `batch_size`
 * episodes. Each is one Adam step on
 *
 *   y_t = r_t + γ (1 − terminated_t) Q̂_tot(s_{t+1}, argmax_legal),  loss = Σ filled·(Q_tot − y)² / Σ filled
 *
 * where argmax_legal is the online net's argmax over legal actions (`double_q`) evaluated by
 * the target net, or the target net's own max. Target networks (agent and mixer) are hard
 * copies every `target_update_interval_or_tau` episodes when that is ≥ 1, else Polyak-averaged
 * with τ after every update.
 *
 * Choices and deviations worth knowing:
 *  - Dead agents' Q-values (chosen and next) count as 0 in the mix; IQL drops their rows.
 *  - Team reward: summed over agents, or the shared one (`shape.sharedTeamReward`).
 *  - Adam in tfjs's formulation (`trainers/adam.ts`), with PyTorch's ε = 1e-8.
 *  - `standardise_rewards`: the running mean/std is updated with each inserted episode's real
 *    rewards (EPyMARL updates it with every sampled batch, padding included) and applied to
 *    the sampled rewards at update time.
 *  - `standardise_returns`: targets are normalised with the running statistics as they were
 *    before this batch, which are then updated with the batch's targets (EPyMARL updates
 *    first); this keeps the whole update one pass on the device. One scalar mean/std is
 *    shared by all agents.
 *  - Hard target updates count episodes, as the brief for this trainer (and older EPyMARL)
 *    does; current EPyMARL counts gradient steps, which is the same when `num_envs` is 1.
 *  - `q_taken_mean`/`target_mean` are plain masked means of what is regressed (Q_tot with a
 *    mixer, per-agent Q for IQL); EPyMARL divides the mixed ones by the number of agents.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { type QUpdateArrays, qUpdateArrays } from './q-update-arrays';
import type { Experience } from '../agents/experience';
import { AgentNetwork } from '../agents/networks/agent-network';
import { agentNetworkFlops, mixerFlops } from '../agents/networks/flops';
import { type MixerTrace, QMixer, type QMixerSpec, disposeTrace } from '../agents/networks/qmix-mixer';
import { type AgentInputSpec, agentInputSpec, inputWidth } from '../agents/policies/agent-inputs';
import { AgentNetworkPolicy } from '../agents/policies/agent-network-policy';
import type { Policy } from '../agents/policies/policy';
import { type AgentNetworkPolicySpec, POLICY_SPEC_FORMAT } from '../agents/policies/policy-spec';
import type { EnvShape, VectorLayout } from '../envs/env-shape';
import { type NamedTensorData, type SerializedArray, assignTensors, captureTensors, deserializeArray, serializeArray, underPrefix, withPrefix } from '../runtime/core/checkpoint-format';
import { Rng, deriveSeed } from '../runtime/core/rng';
import { Adam, clipByGlobalNorm } from './adam';
import { agentNetworkKeys, layerWidth, MAX_EPISODE_BATCH, MAX_EPISODE_REPLAY, MAX_REPEATS, nonNegativeInt, positive, positiveInt, unit } from './config-keys';
import { type EpisodeBatch, EpisodeCollector, EpisodeReplay, type StoredState, episodeShapeOf } from './episode-replay';
import {
  type Collection,
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
import { RunningMeanStd } from './running-mean-std';
import { syntheticEpisode, timed } from './synthetic-experience';

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

function qSchema<N extends 'qmix' | 'vdn' | 'iql', M extends z.ZodTypeAny>(
  name: N,
  mixer: M,
  d: { lr: number; hidden_dim: number; use_rnn: boolean; buffer_size: number; epsilon_anneal_time: number },
) {
  return z
    .object({
      name: z.literal(name),
      ...agentNetworkKeys({ lr: d.lr, hidden_dim: d.hidden_dim, use_rnn: d.use_rnn, standardise_rewards: true }),
      /** Episodes sampled from the replay buffer per update. */
      batch_size: positiveInt(MAX_EPISODE_BATCH).default(32),
      /**
       * Gradient steps per finished episode, whatever `num_envs` is: 1 is EPyMARL's episode
       * runner; 1/k reproduces its parallel runner with `batch_size_run: k`.
       */
      updates_per_episode: positive().lte(MAX_REPEATS).default(1),
      /** Replay capacity in episodes. */
      buffer_size: positiveInt(MAX_EPISODE_REPLAY).default(d.buffer_size),
      epsilon_start: unit().default(1.0),
      epsilon_finish: unit().default(0.05),
      /** Env steps over which ε falls linearly from start to finish. */
      epsilon_anneal_time: nonNegativeInt().default(d.epsilon_anneal_time),
      evaluation_epsilon: unit().default(0),
      double_q: z.boolean().default(true),
      mixer,
    })
    .strict();
}

// The mixer is what distinguishes these three algorithms, so each pins its own rather than
// letting `name: vdn` quietly run a QMIX mixer.
export const qmixConfigSchema = qSchema('qmix', z.literal('qmix').default('qmix'), {
  lr: 0.0005,
  hidden_dim: 64,
  use_rnn: false,
  buffer_size: 5000,
  epsilon_anneal_time: 50000,
}).extend({
  mixing_embed_dim: layerWidth().default(32),
  hypernet_layers: z.union([z.literal(1), z.literal(2)]).default(2),
  hypernet_embed: layerWidth().default(64),
});
export const vdnConfigSchema = qSchema('vdn', z.literal('vdn').default('vdn'), {
  lr: 0.0005,
  hidden_dim: 64,
  use_rnn: false,
  buffer_size: 5000,
  epsilon_anneal_time: 50000,
});
export const iqlConfigSchema = qSchema('iql', z.null().default(null), {
  lr: 0.0003,
  hidden_dim: 128,
  use_rnn: true,
  buffer_size: 5000,
  epsilon_anneal_time: 200000,
});
export type QmixConfig = z.output<typeof qmixConfigSchema>;
export type QConfig = QmixConfig | z.output<typeof vdnConfigSchema> | z.output<typeof iqlConfigSchema>;

export interface QLearnerOptions {
  /** The task's shape and collection envs (a VectorLayout); `task` its key (default `default`). */
  layout: VectorLayout;
  task?: TaskSpec;
  config: QConfig;
  seed: string | number;
}

/** Added to illegal actions' Q: never wins a max, stays finite in float32. */

// ---------------------------------------------------------------------------------------------
// The learner
// ---------------------------------------------------------------------------------------------

/** The typed arrays one update feeds to the device, time-major like the batch. */
interface UpdateArrays extends QUpdateArrays {
  /** Team reward (standardised when asked) [T, B]. */
  reward: Float32Array;
  /** Loss weight per regressed value: `filled` with a mixer, filled · aliveNow for IQL. */
  mask: Float32Array;
  /** `taken` zeroed for dead agents [T, B·A, K]: picks the Q that is regressed. */
  takenAlive: Float32Array;
}

export class QLearner implements OnlineLearner {
  readonly kind = 'online';
  readonly task: TaskSpec;
  readonly tasks: readonly TaskSpec[];
  readonly shape: EnvShape;
  readonly config: QConfig;
  readonly agent: AgentNetwork;
  readonly targetAgent: AgentNetwork;
  readonly mixer?: QMixer;
  readonly targetMixer?: QMixer;
  readonly replay: EpisodeReplay;
  readonly rewardStats = new RunningMeanStd();
  readonly returnStats = new RunningMeanStd();
  private readonly adam: Adam;
  /** What the optimiser trains, in update order: the agent's variables, then the mixer's. */
  private readonly paramNames: string[];
  private readonly paramList: tf.Variable[];
  private readonly collector: EpisodeCollector;
  private readonly acting: AgentNetworkPolicy;
  /** The ε-greedy collection policy's random stream (replaced on restore). */
  private readonly actingMode: { kind: 'epsilon-greedy'; epsilon: () => number; rng: Rng };
  private sampleRng: Rng;
  private readonly inputs: AgentInputSpec;
  private readonly inputWidth: number;
  /** The mixer's state: the env's global state, else all agents' observations concatenated. */
  private readonly mixerStateDim: number;

  private envSteps = 0;
  private episodes = 0;
  /** Gradient steps owed by the episodes seen (fractional with `updates_per_episode` < 1). */
  private updateCredit = 0;
  private lastTargetUpdateEpisode = 0;
  private updates = 0;

  /** Gradient steps taken so far. */
  get updateCount(): number {
    return this.updates;
  }

  constructor(options: QLearnerOptions) {
    const { layout, config, seed } = options;
    this.task = options.task ?? taskOfLayout(layout);
    this.tasks = [this.task];
    const shape = this.task.shape;
    if (!shape.discreteActions || shape.numActions < 1) throw new Error(`${config.name}: only discrete action spaces are supported`);
    this.shape = shape;
    this.config = config;
    const { numAgents: A, numActions: K, obsDim, stateDim } = shape;
    this.inputs = agentInputSpec(shape, { obsLastAction: config.obs_last_action, obsAgentId: config.obs_agent_id });
    this.inputWidth = inputWidth(this.inputs);
    this.mixerStateDim = stateDim > 0 ? stateDim : A * obsDim;

    const initSeed = deriveSeed(seed, config.name, 'init');
    const agentSpec = { inputDim: this.inputWidth, hiddenDim: config.hidden_dim, outputDim: K, recurrent: config.use_rnn, outputGain: 1, seed: initSeed, role: 'agent', copies: config.parameter_sharing ? 1 : A };
    this.agent = new AgentNetwork(agentSpec);
    this.targetAgent = new AgentNetwork(agentSpec);
    this.targetAgent.copyFrom(this.agent);
    if (config.name === 'qmix') {
      const mixerSpec: QMixerSpec = {
        numAgents: A,
        stateDim: this.mixerStateDim,
        embedDim: config.mixing_embed_dim,
        hypernetLayers: config.hypernet_layers,
        hypernetEmbed: config.hypernet_embed,
        seed: deriveSeed(initSeed, 'mixer'),
      };
      this.mixer = new QMixer(mixerSpec);
      this.targetMixer = new QMixer(mixerSpec);
      this.targetMixer.copyFrom(this.mixer);
    }
    const params = { ...withPrefix('agent/', this.agent.namedVariables()), ...(this.mixer ? withPrefix('mixer/', this.mixer.namedVariables()) : {}) };
    this.paramNames = Object.keys(params);
    this.paramList = this.paramNames.map((n) => params[n]);
    // PyTorch's Adam epsilon, as EPyMARL trains with it.
    this.adam = new Adam({ lr: config.lr, epsilon: 1e-8, formulation: 'tfjs' }, params);

    this.replay = new EpisodeReplay(episodeShapeOf(shape), config.buffer_size);
    this.collector = new EpisodeCollector({ ...shape, numEnvs: this.task.numEnvs });
    this.actingMode = { kind: 'epsilon-greedy', epsilon: () => this.epsilon(), rng: new Rng(deriveSeed(seed, config.name, 'act')) };
    this.acting = new AgentNetworkPolicy(this.agent, this.inputs, shape, this.task.numEnvs, 'q-values', this.actingMode);
    this.sampleRng = new Rng(deriveSeed(seed, config.name, 'sample'));
  }

  /** The ε-greedy collection policy. */
  get policy(): Policy {
    return this.acting;
  }

  collection(task: string): Collection {
    checkTaskKey(this.task, task, this.config.name);
    return { mode: 'transition' };
  }

  collectionPolicy(task: string): Policy {
    checkTaskKey(this.task, task, this.config.name);
    return this.acting;
  }

  policyVersion(): number {
    return this.updates;
  }

  /** ε for the env steps seen so far: linear from `epsilon_start` to `epsilon_finish`. */
  epsilon(): number {
    const { epsilon_start: start, epsilon_finish: finish, epsilon_anneal_time: T } = this.config;
    const progress = T > 0 ? Math.min(1, this.envSteps / T) : 1;
    return start + (finish - start) * progress;
  }

  // --- the stream -----------------------------------------------------------------------------

  observe(item: Experience, envSteps: number): TrainStats | undefined {
    if (item.kind !== 'transition') throw new Error(`${this.config.name}: observe expects transitions (collection mode 'transition'), got a chunk`);
    checkTaskKey(this.task, item.task, this.config.name);
    this.envSteps = envSteps;
    const stats: TrainStats[] = [];
    for (const episode of this.collector.add(item)) {
      this.replay.insert(episode);
      if (this.config.standardise_rewards) this.rewardStats.update(episode.reward);
      this.episodes++;
      // The number of envs is a throughput setting: it must not change how often the learner trains.
      this.updateCredit += this.config.updates_per_episode;
      for (; this.updateCredit >= 1; this.updateCredit -= 1) {
        if (this.replay.size >= this.config.batch_size) stats.push(this.update());
      }
    }
    const mean = meanStats(stats);
    // Several envs can finish episodes at once, so one item may carry several gradient steps.
    return mean && { ...mean, grad_steps: stats.length };
  }

  episodesReset(task: string): void {
    checkTaskKey(this.task, task, this.config.name);
    this.collector.reset();
    this.acting.actor.reset();
  }

  /** Greedy (ε = `evaluation_epsilon`) acting for `numEnvs` envs; `sample` does not apply to Q-values. */
  evaluationPolicy(task: string, numEnvs: number, seed: string): Policy {
    checkTaskKey(this.task, task, this.config.name);
    const eps = this.config.evaluation_epsilon;
    return new AgentNetworkPolicy(this.agent, this.inputs, this.shape, numEnvs, 'q-values', { kind: 'epsilon-greedy', epsilon: () => eps, rng: new Rng(deriveSeed(seed, this.config.name, 'evaluate')) });
  }

  policySpecs(): Record<string, AgentNetworkPolicySpec> {
    const { spec } = this.agent;
    return {
      [this.task.key]: {
        format: POLICY_SPEC_FORMAT,
        kind: 'agent-network',
        model: 'agent',
        seedPath: [this.config.name, 'evaluate'],
        shape: this.shape,
        head: 'q-values',
        network: { inputDim: spec.inputDim, hiddenDim: spec.hiddenDim, outputDim: spec.outputDim, recurrent: spec.recurrent, copies: this.agent.copies },
        inputs: { obsLastAction: this.config.obs_last_action, obsAgentId: this.config.obs_agent_id },
        epsilon: this.config.evaluation_epsilon,
      },
    };
  }

  // --- the update -----------------------------------------------------------------------------

  /**
   * One gradient step on `batch_size` sampled episodes, then the target-network update.
   *
   * Only the online agent network is on the gradient tape. Everything after its Q-values (the
   * taken actions' Q, the targets, the mixers, the loss and the statistics) is one
   * `tf.customGrad` op whose backward is written out (`lossAfterAgents`): autodiff would put each
   * of those small ops on the tape, which costs a second kernel call per op (the tape's copies)
   * and a backward of many more, smaller ops. The one read-back is the statistics at the end.
   */
  update(): TrainStats {
    const cfg = this.config;
    const batch = this.replay.sample(cfg.batch_size, this.sampleRng);
    const { size: B, steps: T } = batch;
    const { numAgents: A } = this.shape;
    const arr = this.updateArrays(batch);
    const mixerStates = this.shape.stateDim > 0 ? batch.state : batch.obs;

    const kept: { stats?: tf.Tensor; td?: tf.Tensor; trace?: MixerTrace } = {};
    let values: Float32Array;
    try {
      const out = tf.tidy(() => {
        const xs = tf.tensor3d(arr.inputs, [T + 1, B * A, this.inputWidth]);
        // Every sampled episode starts at row 0, where the hidden state starts at zero anyway.
        const noResets = tf.zeros([T + 1, B * A]) as tf.Tensor2D;
        const h0 = this.agent.initialHidden(B * A);
        // Off the tape: the target network is not trained.
        const targetQ = this.targetAgent.unroll(xs, noResets, h0);
        const loss = this.lossAfterAgents(arr, mixerStates, targetQ, B, T, kept);
        const mixerVariables = this.mixer ? Object.values(this.mixer.namedVariables()) : [];
        const { grads } = tf.variableGrads(() => loss(this.agent.unroll(xs, noResets, h0, { inputsAreData: true }), ...mixerVariables) as tf.Scalar, this.paramList);

        // Global gradient-norm clipping (torch's clip_grad_norm_), the old ops in the old order.
        const { norm: gradNorm, scale } = clipByGlobalNorm(this.paramList.map((v) => grads[v.name]), cfg.max_grad_norm);
        const byName: Record<string, tf.Tensor> = {};
        this.paramNames.forEach((n, i) => (byName[n] = grads[this.paramList[i].name]));
        this.adam.apply(byName, scale);
        // [loss, q_taken_mean, target_mean, td_error_abs, grad_norm, (raw targets)]: one read.
        return tf.concat([kept.stats!, tf.reshape(gradNorm, [1])]);
      });
      values = out.dataSync() as Float32Array;
      out.dispose();
    } finally {
      if (kept.trace) disposeTrace(kept.trace);
      tf.dispose([kept.stats, kept.td].filter((t): t is tf.Tensor => t !== undefined));
    }

    if (cfg.standardise_returns) {
      // Targets were read back after the four statistics (the fifth value is the gradient norm).
      const real: number[] = [];
      arr.mask.forEach((m, i) => {
        if (m) real.push(values[4 + i]);
      });
      this.returnStats.update(real);
    }
    this.updates++;
    this.updateTargets();
    const n = values.length;
    return { loss: values[0], q_taken_mean: values[1], target_mean: values[2], td_error_abs: values[3], grad_norm: values[n - 1], epsilon: this.epsilon() };
  }

  /**
   * The TD loss as a function of the online agent network's Q-values [T+1, B·A, K] and the mixer's
   * variables, as a `tf.customGrad` op. Its statistics (and, with standardised returns, the
   * raw targets) go to `kept.stats`, what the backward needs to `kept.td` and `kept.trace`; the
   * caller disposes them.
   */
  private lossAfterAgents(arr: UpdateArrays, mixerStates: Float32Array, targetQAll: tf.Tensor3D, B: number, T: number, kept: { stats?: tf.Tensor; td?: tf.Tensor; trace?: MixerTrace }) {
    const cfg = this.config;
    const { numAgents: A, numActions: K } = this.shape;
    const N = T * B;
    const S = this.mixerStateDim;
    const mixed = cfg.name !== 'iql';
    const ret = { mean: this.returnStats.mean, std: this.returnStats.std };
    const count = Math.max(1, arr.mask.reduce((a, b) => a + b, 0));
    const takenAlive = tf.tensor3d(arr.takenAlive, [T, B * A, K]);
    const illegalNext = tf.tensor3d(arr.illegalNext, [T, B * A, K]);
    const usableNext = tf.tensor2d(arr.usableNext, [T, B * A]);
    // Per regressed value: [N] with a mixer, [N, 1] (broadcast over agents) for IQL.
    const perRow = (a: Float32Array) => (mixed ? tf.tensor1d(a) : tf.tensor2d(a, [N, 1]));
    const reward = perRow(arr.reward);
    const notDone = perRow(arr.notDone);
    const mask = mixed ? tf.tensor1d(arr.mask) : tf.tensor2d(arr.mask, [N, A]);
    // The mixer's state rows at t and t + 1, uploaded as two overlapping views of the batch's
    // [T+1, B, S] rows: two uploads cost no kernel calls, slicing one would cost four.
    const nowStates = this.mixer ? tf.tensor2d(mixerStates.subarray(0, N * S), [N, S]) : undefined;
    const nextStates = this.mixer ? tf.tensor2d(mixerStates.subarray(B * S, (T + 1) * B * S), [N, S]) : undefined;
    const targetQ = tf.add(tf.slice(targetQAll, 1, T), illegalNext);

    return tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const q = inputs[0] as tf.Tensor3D;
      // Q of the taken actions (takenAlive is the one-hot of the taken action, zero for dead agents).
      const qTaken = tf.sum(tf.mul(tf.slice(q, 0, T), takenAlive), 2);
      // Value of the next observation per agent. Double Q: the online argmax over legal
      // actions, scored by the target net (no gradient flows through the argmax).
      // (The one-hot is cast explicitly: tfjs-backend-wasm 4.22's OneHot writes int32 whatever dtype is asked.)
      const greedyNext = cfg.double_q ? tf.sum(tf.mul(targetQ, tf.cast(tf.oneHot(tf.argMax(tf.add(tf.slice(q, 1, T), illegalNext), 2), K), 'float32')), 2) : tf.max(targetQ, 2);
      const qNext = tf.mul(greedyNext, usableNext);

      let chosen: tf.Tensor;
      let nextValue: tf.Tensor;
      if (this.mixer && this.targetMixer && nowStates && nextStates) {
        const online = this.mixer.mixForBackward(tf.reshape(qTaken, [N, A]), nowStates);
        kept.trace = online.trace;
        chosen = online.out;
        nextValue = this.targetMixer.mixGrouped(tf.reshape(qNext, [N, A]), nextStates);
      } else if (mixed) {
        chosen = tf.sum(tf.reshape(qTaken, [N, A]), 1);
        nextValue = tf.sum(tf.reshape(qNext, [N, A]), 1);
      } else {
        chosen = tf.reshape(qTaken, [N, A]);
        nextValue = tf.reshape(qNext, [N, A]);
      }
      // With standardised returns the nets predict normalised values: denormalise to bootstrap.
      if (cfg.standardise_returns) nextValue = tf.add(tf.mul(nextValue, ret.std), ret.mean);
      const y = tf.add(reward, tf.mul(cfg.gamma, tf.mul(notDone, nextValue)));
      const targets = cfg.standardise_returns ? tf.div(tf.sub(y, ret.mean), ret.std) : y;
      const td = tf.keep(tf.mul(tf.sub(chosen, targets), mask));
      kept.td = td;
      const squared = tf.square(td);
      // td is zero where the mask is zero, so masking |td| and td² again changes nothing.
      const axes = mixed ? 1 : [1, 2];
      const means = tf.div(tf.sum(tf.mul(tf.stack([squared, chosen, targets, tf.abs(td)]), mask), axes), count);
      kept.stats = tf.keep(cfg.standardise_returns ? tf.concat([means, tf.reshape(y, [-1])]) : means);
      const value = tf.div(tf.sum(squared), count) as tf.Scalar;
      const gradFunc = (dy: tf.Tensor): tf.Tensor[] => {
        // d loss / d chosen = 2·td / count (td already carries the mask).
        const dChosen = tf.mul(td, tf.mul(dy, 2 / count));
        let dByAgent: tf.Tensor;
        const mixerGrads: tf.Tensor[] = [];
        if (this.mixer && kept.trace) {
          const { dqs, grads } = this.mixer.backward(kept.trace, dChosen as tf.Tensor1D);
          dByAgent = tf.reshape(dqs, [T, B * A, 1]);
          for (const name of Object.keys(this.mixer.namedVariables())) mixerGrads.push(grads[name]);
        } else if (mixed) {
          dByAgent = tf.reshape(tf.tile(tf.reshape(dChosen, [N, 1]), [1, A]), [T, B * A, 1]);
        } else {
          dByAgent = tf.reshape(dChosen, [T, B * A, 1]);
        }
        // Only the taken actions' Q-values at steps 0..T−1 have a gradient.
        const dq = tf.pad(tf.mul(dByAgent, takenAlive), [
          [0, 1],
          [0, 0],
          [0, 0],
        ]);
        return [dq, ...mixerGrads];
      };
      return { value, gradFunc };
    });
  }

  /** Hard copy every `target_update_interval_or_tau` episodes when that is ≥ 1, else Polyak with τ. */
  private updateTargets(): void {
    const interval = this.config.target_update_interval_or_tau;
    const tau = interval >= 1 ? 1 : interval;
    if (interval >= 1) {
      if (this.episodes - this.lastTargetUpdateEpisode < interval) return;
      this.lastTargetUpdateEpisode = this.episodes;
    }
    this.targetAgent.copyFrom(this.agent, tau);
    if (this.mixer && this.targetMixer) this.targetMixer.copyFrom(this.mixer, tau);
  }

  /** The batch's numbers in the layouts the update's tensors take. */
  private updateArrays(batch: EpisodeBatch): UpdateArrays {
    const base = qUpdateArrays(batch, this.shape, this.inputs, this.inputWidth);
    const { aliveNow, filled } = base;
    const A = this.shape.numAgents;
    const { mean, std } = this.rewardStats;
    const standardise = this.config.standardise_rewards;
    const reward = Float32Array.from(batch.reward, (r) => (standardise ? (r - mean) / std : r));
    const mask = this.config.name === 'iql' ? Float32Array.from(aliveNow, (alive, i) => alive * filled[Math.floor(i / A)]) : filled;
    const K = this.shape.numActions;
    const takenAlive = Float32Array.from(base.taken, (v, i) => v * aliveNow[Math.floor(i / K)]);
    return { ...base, reward, mask, takenAlive };
  }

  // --- checkpoints ----------------------------------------------------------------------------

  async captureState(): Promise<LearnerState> {
    const models: Record<string, NamedTensorData> = {
      agent: await captureTensors(this.agent.namedVariables()),
      targetAgent: await captureTensors(this.targetAgent.namedVariables()),
    };
    if (this.mixer && this.targetMixer) {
      models.mixer = await captureTensors(this.mixer.namedVariables());
      models.targetMixer = await captureTensors(this.targetMixer.namedVariables());
    }
    const replay = this.replay.capture();
    const episodes = this.collector.capture();
    const actor = this.acting.actor;
    const arrays: Record<string, SerializedArray> = {
      'acting/hidden': serializeArray(actor.hidden),
      'acting/lastActions': serializeArray(actor.lastAction),
      ...withPrefix('replay/', replay.arrays),
      ...withPrefix('episodes/', episodes.arrays),
    };
    return {
      models,
      optimizers: { q: await this.adam.capture() },
      rngs: { act: this.actingMode.rng.state(), sample: this.sampleRng.state() },
      arrays,
      json: {
        algo: this.config.name,
        envSteps: this.envSteps,
        episodes: this.episodes,
        updateCredit: this.updateCredit,
        lastTargetUpdateEpisode: this.lastTargetUpdateEpisode,
        updates: this.updates,
        rewardStats: this.rewardStats.toJSON(),
        returnStats: this.returnStats.toJSON(),
        replay: replay.json,
        episodeCollector: episodes.json,
      },
    };
  }

  async restoreState(state: LearnerState): Promise<void> {
    const who = `${this.config.name}.restoreState`;
    const { json } = state;
    if (json.algo !== this.config.name) throw new Error(`${who}: state was captured by '${String(json.algo)}'`);
    const model = (name: string): NamedTensorData => {
      const m = state.models[name];
      if (!m) throw new Error(`${who}: no model '${name}'`);
      return m;
    };
    const num = (key: string): number => {
      const v = json[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${who}: json '${key}' is missing or not a number`);
      return v;
    };
    const stats = (key: string, into: RunningMeanStd) => into.load(json[key], `${who}: json.${key}`);
    const array = (key: string, type: string) => {
      const s = state.arrays[key];
      if (!s) throw new Error(`${who}: no array '${key}'`);
      const a = deserializeArray(s);
      if (a.constructor.name !== type) throw new Error(`${who}: array '${key}' is a ${a.constructor.name}, expected ${type}`);
      return a;
    };
    const subState = (prefix: string, jsonKey: string): StoredState => {
      const j = json[jsonKey];
      if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error(`${who}: json '${jsonKey}' is missing`);
      return { arrays: underPrefix(prefix, state.arrays), json: j };
    };
    const opt = state.optimizers.q;
    if (!opt) throw new Error(`${who}: no optimizer 'q'`);
    const actRng = state.rngs.act;
    const sampleRng = state.rngs.sample;
    if (!actRng || !sampleRng) throw new Error(`${who}: rngs 'act' and 'sample' are required`);
    const actor = this.acting.actor;
    const hidden = array('acting/hidden', 'Float32Array');
    const lastActions = array('acting/lastActions', 'Int32Array');
    // Checkpoints of format 2 kept a zero hidden state for feed-forward agents too; it carries nothing.
    const hiddenFits = hidden.length === actor.hidden.length || !this.agent.recurrent;
    if (!hiddenFits || lastActions.length !== actor.lastAction.length) {
      throw new Error(`${who}: acting state has ${hidden.length} hidden / ${lastActions.length} action values, expected ${actor.hidden.length} / ${actor.lastAction.length}`);
    }

    assignTensors(this.agent.namedVariables(), model('agent'));
    assignTensors(this.targetAgent.namedVariables(), model('targetAgent'));
    if (this.mixer && this.targetMixer) {
      assignTensors(this.mixer.namedVariables(), model('mixer'));
      assignTensors(this.targetMixer.namedVariables(), model('targetMixer'));
    }
    this.adam.restore(opt, `${who}: optimizer 'q'`, json.adamPowers);
    this.replay.restore(subState('replay/', 'replay'));
    this.collector.restore(subState('episodes/', 'episodeCollector'));
    if (this.agent.recurrent) actor.hidden.set(hidden);
    actor.lastAction.set(lastActions);
    this.actingMode.rng = Rng.fromState(actRng);
    this.sampleRng = Rng.fromState(sampleRng);
    stats('rewardStats', this.rewardStats);
    stats('returnStats', this.returnStats);
    this.envSteps = num('envSteps');
    this.episodes = num('episodes');
    this.updateCredit = num('updateCredit');
    this.lastTargetUpdateEpisode = num('lastTargetUpdateEpisode');
    this.updates = num('updates');
  }

  dispose(): void {
    this.agent.dispose();
    this.targetAgent.dispose();
    this.mixer?.dispose();
    this.targetMixer?.dispose();
    this.adam.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer definition (what `trainers/index.ts` lists) and its benchmark case
// ---------------------------------------------------------------------------------------------

/** Matmul FLOPs of one QMIX/VDN/IQL update on B episodes padded to T steps (see `agents/networks/flops.ts`). */
export function qUpdateFlops(learner: QLearner, B: number, T: number): number {
  const { numAgents: A } = learner.shape;
  const spec = learner.agent.spec;
  const agentRows = (T + 1) * B * A;
  const online = agentNetworkFlops(spec, agentRows, B * A);
  const target = agentNetworkFlops(spec, agentRows, B * A);
  let total = online.forward + online.backward + target.forward;
  if (learner.mixer) {
    const mix = mixerFlops(learner.mixer.spec, T * B);
    total += mix.forward + mix.backward + mix.forward;
  }
  return total;
}

const Q_SCHEMAS = { qmix: qmixConfigSchema, vdn: vdnConfigSchema, iql: iqlConfigSchema } as const;

export const qLearningTrainer: TrainerDefinition = {
  algorithms: [
    { name: 'qmix', schema: qmixConfigSchema, defaultNumEnvs: 1 },
    { name: 'vdn', schema: vdnConfigSchema, defaultNumEnvs: 1 },
    { name: 'iql', schema: iqlConfigSchema, defaultNumEnvs: 1 },
  ],
  kind: 'online',
  valueBased: true,
  configIssues(config) {
    const { batch_size: batch, buffer_size: buffer } = config as QConfig;
    // Updates wait for `batch_size` episodes in the replay, which never holds more than `buffer_size`.
    return batch > buffer
      ? [{ key: 'batch_size', message: `${batch} episodes per update exceed algo.buffer_size ${buffer} (the replay's capacity), so no update would ever run; lower batch_size or raise buffer_size` }]
      : [];
  },
  checkTask(algo, task) {
    if (!task.shape.discreteActions) throw new Error(`algo '${algo}' needs discrete actions, but env '${task.env.id}' has continuous (Box) action spaces`);
  },
  createLearner({ tasks, config, seed }) {
    const task = onlyTask(tasks, config.name);
    return new QLearner({ layout: { ...task.shape, numEnvs: task.numEnvs }, task, config: config as QConfig, seed });
  },
  async benchmark({ algo, task, settings, useRnn, sampler, config: overrides }): Promise<LearnerBenchCase> {
    const schema = Q_SCHEMAS[algo as keyof typeof Q_SCHEMAS];
    if (!schema) throw new Error(`bench learner: '${algo}' is not a Q-learning algorithm`);
    const config = schema.parse({ hidden_dim: settings.hiddenDim, ...overrides, name: algo, use_rnn: useRnn }) as QConfig;
    const learner = new QLearner({ layout: { ...task.shape, numEnvs: task.numEnvs }, task, config, seed: settings.seed });
    const B = config.batch_size;
    // Twice the batch, so consecutive updates sample different episodes as from a real replay.
    for (let i = 0; i < 2 * B; i++) learner.replay.insert(syntheticEpisode(task.shape, sampler));
    const T = task.shape.maxEpisodeSteps;
    const samples = B * T * task.shape.numAgents;
    return {
      samplesPerUpdate: samples,
      gradientSteps: 1,
      samplePasses: samples,
      flopsPerUpdate: qUpdateFlops(learner, B, T),
      update: async () => timed(() => void learner.update()),
      dispose: () => learner.dispose(),
    };
  },
};
