/**
 * QMIX, VDN and IQL in one file, CleanRL style: acting, episode replay, the TD update and
 * target networks read top to bottom. Hyperparameters keep their EPyMARL names (`QAlgoConfig`);
 * `config.name` picks the algorithm:
 *
 *  - iql:  every agent regresses its own Q(o, a) on the team reward (no mixer).
 *  - vdn:  Q_tot = Σ_a Q_a.
 *  - qmix: Q_tot = mixing network over the agents' Q-values whose weights come from
 *          hypernetworks on the global state (absolute values, so ∂Q_tot/∂Q_a ≥ 0), with an
 *          ELU hidden layer and a state-value head V(s), structured as EPyMARL's `QMixer`.
 *
 * Agents share one `AgentNetwork` (GRU when `use_rnn`, else an MLP) over obs ⊕ last-action
 * one-hot (`obs_last_action`, zero at an episode's first step) ⊕ agent-id one-hot
 * (`obs_agent_id`). Acting is ε-greedy over legal actions with ε falling linearly over
 * `epsilon_anneal_time` env steps. Finished episodes go to an `EpisodeReplay`; every finished
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
 *  - Team reward: summed over agents, or the shared one (`layout.sharedTeamReward`).
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
import { AgentNetwork } from '../agents/networks/agent-network';
import {
  type NamedTensorData,
  type SerializedArray,
  assignTensors,
  captureOptimizer,
  captureTensors,
  deserializeArray,
  restoreOptimizer,
  serializeArray,
} from '../runtime/core/checkpoint';
import type { Policy, PolicyBatch, TrajectoryChunk, Transition } from '../runtime/rollout/experience';
import { Rng, deriveSeed, seedToInt } from '../runtime/core/rng';
import type { QAlgoConfig } from '../runtime/training/run-config';
import type { VectorLayout } from '../runtime/rollout/vector-layout';
import { type EpisodeBatch, EpisodeCollector, EpisodeReplay, type StoredState, episodeShapeOf } from './episode-replay';
import { RunningMeanStd } from './running-mean-std';
import { type TrainStats, type Trainer, type TrainerState, meanStats } from './trainer';

export interface QLearnerOptions {
  layout: VectorLayout;
  config: QAlgoConfig;
  seed: string | number;
}

/** Added to illegal actions' Q: never wins a max, stays finite in float32. */
const MASKED_Q = -1e10;

// ---------------------------------------------------------------------------------------------
// Agent inputs: obs ⊕ last-action one-hot ⊕ agent-id one-hot
// ---------------------------------------------------------------------------------------------

interface InputLayout {
  obsDim: number;
  /** Offset of the last-action one-hot in a row, or −1 without `obs_last_action`. */
  lastActionAt: number;
  /** Offset of the agent-id one-hot, or −1 without `obs_agent_id`. */
  agentIdAt: number;
  width: number;
}

function inputLayout(layout: VectorLayout, config: QAlgoConfig): InputLayout {
  const { obsDim, numActions, numAgents } = layout;
  let width = obsDim;
  const lastActionAt = config.obs_last_action ? width : -1;
  if (config.obs_last_action) width += numActions;
  const agentIdAt = config.obs_agent_id ? width : -1;
  if (config.obs_agent_id) width += numAgents;
  return { obsDim, lastActionAt, agentIdAt, width };
}

/** Writes one agent's row into zeroed `out` at `at`; `lastAction` −1 means none (episode start). */
function writeInput(out: Float32Array, at: number, il: InputLayout, obs: Float32Array, obsAt: number, lastAction: number, agent: number): void {
  out.set(obs.subarray(obsAt, obsAt + il.obsDim), at);
  if (il.lastActionAt >= 0 && lastAction >= 0) out[at + il.lastActionAt + lastAction] = 1;
  if (il.agentIdAt >= 0) out[at + il.agentIdAt + agent] = 1;
}

// ---------------------------------------------------------------------------------------------
// QMIX mixing network
// ---------------------------------------------------------------------------------------------

interface Linear {
  w: tf.Variable;
  b: tf.Variable;
}

/** tfjs variable names are process-global, so every mixer instance gets its own prefix. */
let mixerCounter = 0;

export interface QMixerSpec {
  numAgents: number;
  stateDim: number;
  embedDim: number;
  hypernetLayers: 1 | 2;
  hypernetEmbed: number;
  /** Initial weights depend on the seed only, so equal seeds give equal mixers. */
  seed: string;
}

/**
 * Q_tot(q, s) = elu(q·|W1(s)| + b1(s))·|W2(s)| + V(s), batched over rows. W1 and W2 are one
 * linear layer of s, or two with a ReLU between (`hypernetLayers`); V is s → embed → ReLU → 1.
 * Layers start as PyTorch's `nn.Linear` does (uniform ±1/√fan_in), like EPyMARL's mixer.
 */
export class QMixer {
  readonly spec: QMixerSpec;
  private readonly layers: Record<string, Linear> = {};

  constructor(spec: QMixerSpec) {
    this.spec = spec;
    const { numAgents: A, stateDim: S, embedDim: E, hypernetEmbed: Hh } = spec;
    const prefix = `qmix-mixer${mixerCounter++}`;
    const linear = (name: string, inDim: number, outDim: number): Linear => {
      const bound = 1 / Math.sqrt(inDim);
      const init = (shape: number[], part: string) => {
        const t0 = tf.tidy(() => tf.randomUniform(shape, -bound, bound, 'float32', seedToInt(deriveSeed(spec.seed, name, part))));
        const v = tf.variable(t0, true, `${prefix}/${name}/${part}`);
        t0.dispose();
        return v;
      };
      return { w: init([inDim, outDim], 'w'), b: init([outDim], 'b') };
    };
    if (spec.hypernetLayers === 1) {
      this.layers.w1 = linear('w1', S, E * A);
      this.layers.wFinal = linear('wFinal', S, E);
    } else {
      this.layers.w1Hidden = linear('w1Hidden', S, Hh);
      this.layers.w1 = linear('w1', Hh, E * A);
      this.layers.wFinalHidden = linear('wFinalHidden', S, Hh);
      this.layers.wFinal = linear('wFinal', Hh, E);
    }
    this.layers.b1 = linear('b1', S, E);
    this.layers.vHidden = linear('vHidden', S, E);
    this.layers.v = linear('v', E, 1);
  }

  /** qs [N, A] (one row per time step and episode), states [N, S] → Q_tot [N]. */
  mix(qs: tf.Tensor2D, states: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const { numAgents: A, embedDim: E } = this.spec;
      const N = qs.shape[0];
      const L = this.layers;
      const hyper = (hidden: string, out: string) =>
        this.spec.hypernetLayers === 1 ? affine(states, L[out]) : affine(tf.relu(affine(states, L[hidden])), L[out]);
      // Per-row products as broadcast multiply-and-sum: a batched matMul of N tiny matrices
      // is several times slower on the wasm backend, forward and backward.
      const w1 = tf.reshape(tf.abs(hyper('w1Hidden', 'w1')), [N, A, E]);
      const hidden = tf.elu(tf.add(tf.sum(tf.mul(tf.reshape(qs, [N, A, 1]), w1), 1), affine(states, L.b1)));
      const wFinal = tf.abs(hyper('wFinalHidden', 'wFinal'));
      const v = tf.reshape(affine(tf.relu(affine(states, L.vHidden)), L.v), [N]);
      return tf.add(tf.sum(tf.mul(hidden, wFinal), 1), v);
    });
  }

  /** Variables by stable name (no instance prefix), for checkpoints and target copies. */
  namedVariables(): Record<string, tf.Variable> {
    const named: Record<string, tf.Variable> = {};
    for (const [layer, d] of Object.entries(this.layers)) {
      named[`${layer}/w`] = d.w;
      named[`${layer}/b`] = d.b;
    }
    return named;
  }

  variables(): tf.Variable[] {
    return Object.values(this.namedVariables());
  }

  /** Copies `source`'s weights in, or moves τ of the way towards them. */
  copyFrom(source: QMixer, tau = 1): void {
    const theirs = source.namedVariables();
    tf.tidy(() => {
      for (const [name, v] of Object.entries(this.namedVariables())) {
        const s = theirs[name];
        if (!s) throw new Error(`QMixer.copyFrom: source has no variable '${name}'`);
        v.assign(tau >= 1 ? s : tf.add(tf.mul(1 - tau, v), tf.mul(tau, s)));
      }
    });
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

function affine(x: tf.Tensor2D, d: Linear): tf.Tensor2D {
  return tf.add(tf.matMul(x, d.w), d.b);
}

// ---------------------------------------------------------------------------------------------
// Acting: ε-greedy over legal actions
// ---------------------------------------------------------------------------------------------

/**
 * One policy instance per set of envs (collection, each evaluation), each with its own
 * recurrent state and last actions per (env, agent). Both live in typed arrays, not tensors,
 * so a policy owns no tensors (evaluation policies are never disposed) and checkpoints them
 * as plain arrays; the upload per step is E·A·H numbers.
 */
class EpsilonGreedyPolicy implements Policy {
  /** [E, A, hidden_dim] */
  readonly hidden: Float32Array;
  /** [E, A]: the action each agent took last, −1 at an episode's start. */
  readonly lastActions: Int32Array;

  constructor(
    private readonly net: AgentNetwork,
    private readonly inputs: InputLayout,
    readonly layout: VectorLayout,
    public rng: Rng,
    private readonly epsilon: () => number,
  ) {
    this.hidden = new Float32Array(layout.numEnvs * layout.numAgents * net.spec.hiddenDim);
    this.lastActions = new Int32Array(layout.numEnvs * layout.numAgents).fill(-1);
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    const { numEnvs: E, numAgents: A, numActions: K, obsDim, actDim } = this.layout;
    if (batch.layout.numEnvs !== E || batch.layout.numAgents !== A) {
      throw new Error(`q-learner policy: built for ${E} envs × ${A} agents, got a batch of ${batch.layout.numEnvs} × ${batch.layout.numAgents}`);
    }
    const N = E * A;
    const H = this.net.spec.hiddenDim;
    const D = this.inputs.width;
    for (let e = 0; e < E; e++) {
      if (!batch.episodeStart[e]) continue;
      this.hidden.fill(0, e * A * H, (e + 1) * A * H);
      this.lastActions.fill(-1, e * A, (e + 1) * A);
    }
    const x = new Float32Array(N * D);
    for (let i = 0; i < N; i++) writeInput(x, i * D, this.inputs, batch.obs, i * obsDim, this.lastActions[i], i % A);
    const q = tf.tidy(() => {
      const { out, h } = this.net.step(tf.tensor2d(x, [N, D]), tf.tensor2d(this.hidden, [N, H]));
      if (this.net.recurrent) this.hidden.set(h.dataSync());
      return out.dataSync().slice() as Float32Array;
    });

    const eps = this.epsilon();
    for (let i = 0; i < N; i++) {
      actions[i * actDim] = 0;
      this.lastActions[i] = 0;
      if (!batch.alive[i]) continue;
      let legal = 0;
      for (let k = 0; k < K; k++) legal += batch.masks[i * K + k];
      if (legal === 0) continue; // a live agent without legal actions is an env bug the checker reports
      let pick = -1;
      if (this.rng.next() < eps) {
        let r = this.rng.int(legal);
        for (let k = 0; k < K && pick < 0; k++) if (batch.masks[i * K + k] && r-- === 0) pick = k;
      } else {
        for (let k = 0; k < K; k++) if (batch.masks[i * K + k] && (pick < 0 || q[i * K + k] > q[i * K + pick])) pick = k;
      }
      actions[i * actDim] = pick;
      this.lastActions[i] = pick;
    }
  }

  reset(): void {
    this.hidden.fill(0);
    this.lastActions.fill(-1);
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer
// ---------------------------------------------------------------------------------------------

/** The typed arrays one update feeds to the device, time-major like the batch. */
interface UpdateArrays {
  /** Agent inputs [T+1, B·A, D]. */
  inputs: Float32Array;
  /** One-hot of the taken actions [T, B, A, K]. */
  taken: Float32Array;
  /** 1 where the agent is alive at step t [T, B, A]. */
  aliveNow: Float32Array;
  /** 1 where the agent is alive with a legal action at t + 1 [T, B, A]. */
  usableNext: Float32Array;
  /** 0 for legal actions at t + 1, MASKED_Q for illegal ones [T, B, A, K]. */
  illegalNext: Float32Array;
  /** Team reward (standardised when asked) [T, B]. */
  reward: Float32Array;
  /** 1 − terminated [T, B]. */
  notDone: Float32Array;
  /** [T, B] */
  filled: Float32Array;
  /** Loss weight per regressed value: `filled` with a mixer, filled · aliveNow for IQL. */
  mask: Float32Array;
}

export class QLearner implements Trainer {
  readonly collection = { mode: 'transition' } as const;
  readonly layout: VectorLayout;
  readonly config: QAlgoConfig;
  readonly agent: AgentNetwork;
  readonly targetAgent: AgentNetwork;
  readonly mixer?: QMixer;
  readonly targetMixer?: QMixer;
  readonly replay: EpisodeReplay;
  readonly rewardStats = new RunningMeanStd();
  readonly returnStats = new RunningMeanStd();
  private optimizer: tf.AdamOptimizer;
  private readonly collector: EpisodeCollector;
  private readonly acting: EpsilonGreedyPolicy;
  private sampleRng: Rng;
  private readonly inputs: InputLayout;
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
    if (!layout.discreteActions || layout.numActions < 1) throw new Error(`${config.name}: only discrete action spaces are supported`);
    this.layout = layout;
    this.config = config;
    const { numAgents: A, numActions: K, obsDim, stateDim } = layout;
    this.inputs = inputLayout(layout, config);
    this.mixerStateDim = stateDim > 0 ? stateDim : A * obsDim;

    const initSeed = deriveSeed(seed, config.name, 'init');
    const agentSpec = { inputDim: this.inputs.width, hiddenDim: config.hidden_dim, outputDim: K, recurrent: config.use_rnn, outputGain: 1, seed: initSeed, role: 'agent', copies: config.parameter_sharing ? 1 : A };
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
    // PyTorch's Adam epsilon, as EPyMARL trains with it.
    this.optimizer = tf.train.adam(config.lr, 0.9, 0.999, 1e-8);

    this.replay = new EpisodeReplay(episodeShapeOf(layout), config.buffer_size);
    this.collector = new EpisodeCollector(layout);
    this.acting = new EpsilonGreedyPolicy(this.agent, this.inputs, layout, new Rng(deriveSeed(seed, config.name, 'act')), () => this.epsilon());
    this.sampleRng = new Rng(deriveSeed(seed, config.name, 'sample'));
  }

  get policy(): Policy {
    return this.acting;
  }

  /** ε for the env steps seen so far: linear from `epsilon_start` to `epsilon_finish`. */
  epsilon(): number {
    const { epsilon_start: start, epsilon_finish: finish, epsilon_anneal_time: T } = this.config;
    const progress = T > 0 ? Math.min(1, this.envSteps / T) : 1;
    return start + (finish - start) * progress;
  }

  // --- the stream -----------------------------------------------------------------------------

  observe(item: Transition | TrajectoryChunk, envSteps: number): TrainStats | undefined {
    if (item.kind !== 'transition') throw new Error(`${this.config.name}: observe expects transitions (collection mode 'transition'), got a chunk`);
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

  episodesReset(): void {
    this.collector.reset();
    this.acting.reset();
  }

  evaluationPolicy(layout: VectorLayout, seed: string): Policy {
    if (layout.numAgents !== this.layout.numAgents || layout.obsDim !== this.layout.obsDim || layout.numActions !== this.layout.numActions) {
      throw new Error(`${this.config.name}: evaluation layout (${layout.numAgents} agents, obs ${layout.obsDim}, ${layout.numActions} actions) differs from the training one`);
    }
    const eps = this.config.evaluation_epsilon;
    return new EpsilonGreedyPolicy(this.agent, this.inputs, layout, new Rng(deriveSeed(seed, this.config.name, 'evaluate')), () => eps);
  }

  // --- the update -----------------------------------------------------------------------------

  /** One gradient step on `batch_size` sampled episodes, then the target-network update. */
  update(): TrainStats {
    const cfg = this.config;
    const { numAgents: A, numActions: K } = this.layout;
    const batch = this.replay.sample(cfg.batch_size, this.sampleRng);
    const { size: B, steps: T } = batch;
    const N = T * B;
    const D = this.inputs.width;
    const S = this.mixerStateDim;
    const mixed = cfg.name !== 'iql';
    const arr = this.updateArrays(batch);
    const ret = { mean: this.returnStats.mean, std: this.returnStats.std };
    // The mixer's state rows: [T+1, B, S]; without an env state the obs [T+1, B, A·obsDim] are exactly that.
    const mixerStates = this.layout.stateDim > 0 ? batch.state : batch.obs;
    const vars = [...this.agent.variables(), ...(this.mixer ? this.mixer.variables() : [])];

    let rawTargets: Float32Array | undefined;
    const stats = tf.tidy(() => {
      const xs = tf.tensor3d(arr.inputs, [T + 1, B * A, D]);
      // Every sampled episode starts at row 0, where the hidden state starts at zero anyway.
      const noResets = tf.zeros([T + 1, B * A]) as tf.Tensor2D;
      const h0 = this.agent.initialHidden(B * A);
      const now = <R extends tf.Rank>(x: tf.Tensor<R>) => tf.slice(x, 0, T);
      const next = <R extends tf.Rank>(x: tf.Tensor<R>) => tf.slice(x, 1, T);
      const taken = tf.tensor4d(arr.taken, [T, B, A, K]);
      const illegalNext = tf.tensor4d(arr.illegalNext, [T, B, A, K]);
      const aliveNow = tf.tensor3d(arr.aliveNow, [T, B, A]);
      const usableNext = tf.tensor3d(arr.usableNext, [T, B, A]);
      // Per regressed value: [N] with a mixer, [N, 1] (broadcast over agents) for IQL.
      const perRow = (a: Float32Array) => (mixed ? tf.tensor1d(a) : tf.tensor2d(a, [N, 1]));
      const reward = perRow(arr.reward);
      const notDone = perRow(arr.notDone);
      const mask = mixed ? tf.tensor1d(arr.mask) : tf.tensor2d(arr.mask, [N, A]);
      const count = tf.maximum(tf.sum(mask), 1);
      const states = this.mixer ? tf.tensor3d(mixerStates, [T + 1, B, S]) : undefined;

      // Target net on every row (its recurrent state needs the history), illegal actions masked.
      // Computed outside the gradient tape: nothing here is trained.
      const targetQ = tf.add(next(tf.reshape(this.targetAgent.unroll(xs, noResets, h0), [T + 1, B, A, K])), illegalNext);

      let aux: tf.Tensor[] = [];
      const { value: loss, grads } = tf.variableGrads(() => {
        const q = tf.reshape(this.agent.unroll(xs, noResets, h0), [T + 1, B, A, K]);
        // Q of the taken actions; dead agents count 0.
        const qTaken = tf.mul(tf.sum(tf.mul(now(q), taken), 3), aliveNow);
        // Value of the next observation per agent. Double Q: the online argmax over legal
        // actions, scored by the target net (argMax passes no gradient back into q).
        const greedyNext = cfg.double_q
          ? tf.sum(tf.mul(targetQ, tf.oneHot(tf.argMax(tf.add(next(q), illegalNext), 3), K)), 3)
          : tf.max(targetQ, 3);
        const qNext = tf.mul(greedyNext, usableNext);

        let chosen: tf.Tensor;
        let nextValue: tf.Tensor;
        if (this.mixer && this.targetMixer && states) {
          chosen = this.mixer.mix(tf.reshape(qTaken, [N, A]), tf.reshape(now(states), [N, S]));
          nextValue = this.targetMixer.mix(tf.reshape(qNext, [N, A]), tf.reshape(next(states), [N, S]));
        } else if (mixed) {
          chosen = tf.reshape(tf.sum(qTaken, 2), [N]);
          nextValue = tf.reshape(tf.sum(qNext, 2), [N]);
        } else {
          chosen = tf.reshape(qTaken, [N, A]);
          nextValue = tf.reshape(qNext, [N, A]);
        }
        // With standardised returns the nets predict normalised values: denormalise to bootstrap.
        if (cfg.standardise_returns) nextValue = tf.add(tf.mul(nextValue, ret.std), ret.mean);
        const y = tf.add(reward, tf.mul(cfg.gamma, tf.mul(notDone, nextValue)));
        const targets = cfg.standardise_returns ? tf.div(tf.sub(y, ret.mean), ret.std) : y;
        const td = tf.mul(tf.sub(chosen, targets), mask);
        const meanOf = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, mask)), count);
        aux = [meanOf(chosen), meanOf(targets), tf.div(tf.sum(tf.abs(td)), count), y].map((t) => tf.keep(t));
        return tf.div(tf.sum(tf.square(td)), count) as tf.Scalar;
      }, vars);

      // Global gradient-norm clipping (torch's clip_grad_norm_).
      const names = Object.keys(grads);
      const gradNorm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))));
      const scale = tf.minimum(1, tf.div(cfg.max_grad_norm, tf.add(gradNorm, 1e-6)));
      this.optimizer.applyGradients(names.map((name) => ({ name, tensor: tf.mul(grads[name], scale) })));

      const [qTakenMean, targetMean, tdAbs, y] = aux;
      if (cfg.standardise_returns) rawTargets = y.dataSync().slice() as Float32Array;
      const out = tf.stack([loss, qTakenMean, targetMean, tdAbs, gradNorm]);
      tf.dispose(aux);
      return out;
    });
    const s = stats.dataSync();
    stats.dispose();

    if (rawTargets) {
      const real: number[] = [];
      rawTargets.forEach((v, i) => {
        if (arr.mask[i]) real.push(v);
      });
      this.returnStats.update(real);
    }
    this.updates++;
    this.updateTargets();
    return { loss: s[0], q_taken_mean: s[1], target_mean: s[2], td_error_abs: s[3], grad_norm: s[4], epsilon: this.epsilon() };
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
    const { numAgents: A, numActions: K, obsDim } = this.layout;
    const { size: B, steps: T } = batch;
    const D = this.inputs.width;
    const rows = B * A;
    const inputs = new Float32Array((T + 1) * rows * D);
    for (let t = 0; t <= T; t++) {
      for (let r = 0; r < rows; r++) {
        const i = t * rows + r;
        // Row t's last action is the one taken at t − 1 (none at the first step).
        writeInput(inputs, i * D, this.inputs, batch.obs, i * obsDim, t > 0 ? batch.actions[i - rows] : -1, r % A);
      }
    }
    const taken = new Float32Array(T * rows * K);
    const aliveNow = new Float32Array(T * rows);
    const usableNext = new Float32Array(T * rows);
    const illegalNext = new Float32Array(T * rows * K);
    for (let i = 0; i < T * rows; i++) {
      taken[i * K + batch.actions[i]] = 1;
      aliveNow[i] = batch.alive[i];
      const j = i + rows;
      let legal = 0;
      for (let k = 0; k < K; k++) {
        legal += batch.avail[j * K + k];
        if (!batch.avail[j * K + k]) illegalNext[i * K + k] = MASKED_Q;
      }
      usableNext[i] = batch.alive[j] && legal > 0 ? 1 : 0;
    }
    const { mean, std } = this.rewardStats;
    const standardise = this.config.standardise_rewards;
    const reward = Float32Array.from(batch.reward, (r) => (standardise ? (r - mean) / std : r));
    const notDone = Float32Array.from(batch.terminated, (d) => 1 - d);
    const filled = Float32Array.from(batch.filled);
    const mask = this.config.name === 'iql' ? Float32Array.from(aliveNow, (alive, i) => alive * filled[Math.floor(i / A)]) : filled;
    return { inputs, taken, aliveNow, usableNext, illegalNext, reward, notDone, filled, mask };
  }

  // --- checkpoints ----------------------------------------------------------------------------

  async captureState(): Promise<TrainerState> {
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
    const arrays: Record<string, SerializedArray> = {
      'acting/hidden': serializeArray(this.acting.hidden),
      'acting/lastActions': serializeArray(this.acting.lastActions),
      ...prefixed('replay/', replay.arrays),
      ...prefixed('episodes/', episodes.arrays),
    };
    return {
      models,
      optimizers: { q: await captureOptimizer(this.optimizer) },
      rngs: { act: this.acting.rng.state(), sample: this.sampleRng.state() },
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
        adamPowers: adamPowers(this.optimizer),
        replay: replay.json,
        episodeCollector: episodes.json,
      },
    };
  }

  async restoreState(state: TrainerState): Promise<void> {
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
      return { arrays: unprefixed(prefix, state.arrays), json: j };
    };
    const opt = state.optimizers.q;
    if (!opt) throw new Error(`${who}: no optimizer 'q'`);
    const actRng = state.rngs.act;
    const sampleRng = state.rngs.sample;
    if (!actRng || !sampleRng) throw new Error(`${who}: rngs 'act' and 'sample' are required`);
    const hidden = array('acting/hidden', 'Float32Array');
    const lastActions = array('acting/lastActions', 'Int32Array');
    if (hidden.length !== this.acting.hidden.length || lastActions.length !== this.acting.lastActions.length) {
      throw new Error(`${who}: acting state has ${hidden.length} hidden / ${lastActions.length} action values, expected ${this.acting.hidden.length} / ${this.acting.lastActions.length}`);
    }

    assignTensors(this.agent.namedVariables(), model('agent'));
    assignTensors(this.targetAgent.namedVariables(), model('targetAgent'));
    if (this.mixer && this.targetMixer) {
      assignTensors(this.mixer.namedVariables(), model('mixer'));
      assignTensors(this.targetMixer.namedVariables(), model('targetMixer'));
    }
    const optimizer = await restoreOptimizer(opt);
    if (!(optimizer instanceof tf.AdamOptimizer)) throw new Error(`${who}: optimizer 'q' is a ${optimizer.getClassName()}, expected Adam`);
    setAdamPowers(optimizer, json.adamPowers);
    this.optimizer.dispose();
    this.optimizer = optimizer;
    this.replay.restore(subState('replay/', 'replay'));
    this.collector.restore(subState('episodes/', 'episodeCollector'));
    this.acting.hidden.set(hidden);
    this.acting.lastActions.set(lastActions);
    this.acting.rng = Rng.fromState(actRng);
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
    this.optimizer.dispose();
  }
}

function prefixed(prefix: string, arrays: Record<string, SerializedArray>): Record<string, SerializedArray> {
  return Object.fromEntries(Object.entries(arrays).map(([k, v]) => [prefix + k, v]));
}

function unprefixed(prefix: string, arrays: Record<string, SerializedArray>): Record<string, SerializedArray> {
  return Object.fromEntries(Object.entries(arrays).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

/**
 * tfjs's Adam keeps β1^t and β2^t as running products, but `setWeights` (and so
 * `restoreOptimizer`) recomputes them with pow(), which differs in the last bits after a few
 * steps; saving and reloading the products keeps a resumed run bit-identical.
 */
interface AdamPowers {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

function adamPowers(optimizer: tf.AdamOptimizer): number[] {
  const { accBeta1, accBeta2 } = optimizer as unknown as AdamPowers;
  return [accBeta1.dataSync()[0], accBeta2.dataSync()[0]];
}

function setAdamPowers(optimizer: tf.AdamOptimizer, stored: unknown): void {
  if (!Array.isArray(stored) || stored.length !== 2 || !stored.every((v) => typeof v === 'number')) return;
  const powers = optimizer as unknown as AdamPowers;
  tf.tidy(() => {
    powers.accBeta1.assign(tf.scalar(stored[0] as number));
    powers.accBeta2.assign(tf.scalar(stored[1] as number));
  });
}
