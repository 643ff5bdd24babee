/**
 * Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications",
 * with automatic entropy tuning) for continuous actions, CleanRL style (`sac_continuous_action.py`):
 * networks, acting, the replay and the update read top to bottom, with CleanRL's key names
 * (`SacAlgoConfig`).
 *
 *  - Actor: MLP (ReLU, `hidden_dims`) → mean and log-std per action dimension; the log-std is
 *    squashed into [log_std_min, log_std_max] with tanh; actions are tanh(mean + std·ε).
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
 * Multi-task (Meta-World's MT-SAC): when the layout reports `numTasks`, every observation ends
 * with a task one-hot, which the networks see as input. `multi_head` gives the actor and both
 * critics one output head per task, picked by multiplying with the one-hot and summing (tfjs's
 * wasm backend has no gradient kernel for gather); `per_task_alpha` learns one α per task.
 *
 * Choices worth knowing:
 *  - Everything is learned in the normalised action box [−1, 1]^d (as Stable-Baselines3 does);
 *    actions are mapped affinely onto the env's Box bounds (`layout.actionLow/High`, else
 *    [−1, 1]) only when they are sent, and back when they are stored. So log π, the target
 *    entropy −d and the critics' action inputs do not depend on the bounds' scale (CleanRL's
 *    log π carries a constant −Σ log(scale) instead). Bounds must be finite.
 *  - With `autotune`, α starts at `alpha` (CleanRL starts log α at 0, i.e. α = 1).
 *  - α's loss uses the log π of the actor step it follows (as SB3 and the paper's code do);
 *    CleanRL draws fresh actions from the updated actor for it.
 *  - Layers start as PyTorch's `nn.Linear` does (uniform ±1/√fan_in), like CleanRL's.
 *  - Adam with PyTorch's ε = 1e-8 (`trainers/adam.ts`, which resumes bit-exactly).
 *  - Agents with fewer action dimensions than the widest one act in all `actDim` dimensions; the
 *    env ignores the padding, but its entropy counts in log π and the target entropy.
 */
import * as tf from '@tensorflow/tfjs';
import { type NamedTensorData, type SerializedArray, assignTensors, captureTensors } from '../runtime/core/checkpoint';
import type { Policy, PolicyBatch, TrajectoryChunk, Transition } from '../runtime/rollout/experience';
import { Rng, type RngState, deriveSeed, seedToInt } from '../runtime/core/rng';
import type { SacAlgoConfig } from '../runtime/training/run-config';
import type { VectorLayout } from '../runtime/rollout/vector-layout';
import { Adam } from './adam';
import { type EvaluationOptions, type TrainStats, type Trainer, type TrainerState, meanStats } from './trainer';
import { TransitionReplay } from './transition-replay';

export interface SacOptions {
  layout: VectorLayout;
  config: SacAlgoConfig;
  seed: string | number;
}

const HALF_LOG_TWO_PI = 0.5 * Math.log(2 * Math.PI);
/** Keeps log(1 − tanh²) finite where tanh saturates (CleanRL's constant). */
const SQUASH_EPSILON = 1e-6;

// ---------------------------------------------------------------------------------------------
// Networks
// ---------------------------------------------------------------------------------------------

interface Dense {
  w: tf.Variable;
  b: tf.Variable;
}

/** tfjs variable names are process-global, so every network gets its own prefix. */
let instanceCounter = 0;

/** ReLU MLP with a linear output layer; weights depend on (seed, role) only. */
class Mlp {
  private readonly layers: Dense[] = [];

  constructor(inputDim: number, hiddenDims: readonly number[], outputDim: number, seed: string, role: string) {
    const prefix = `sac${instanceCounter++}/${role}`;
    const sizes = [inputDim, ...hiddenDims, outputDim];
    for (let i = 0; i + 1 < sizes.length; i++) {
      const bound = 1 / Math.sqrt(sizes[i]);
      const init = (shape: number[], part: string): tf.Variable => {
        const t0 = tf.randomUniform(shape, -bound, bound, 'float32', seedToInt(deriveSeed(seed, role, i, part)));
        const v = tf.variable(t0, true, `${prefix}/fc${i}/${part}`);
        t0.dispose();
        return v;
      };
      this.layers.push({ w: init([sizes[i], sizes[i + 1]], 'w'), b: init([sizes[i + 1]], 'b') });
    }
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      let h = x;
      this.layers.forEach(({ w, b }, i) => {
        // A single output (a critic's Q) as multiply-and-sum: the matMul's gradient would be a
        // [B, 1]·[1, H] outer product, which the wasm backend runs ~10× slower than a broadcast multiply.
        const single = w.shape[1] === 1;
        const wx = single ? tf.sum(tf.mul(h, tf.reshape(w, [1, -1])), 1, true) : tf.matMul(h, w);
        const z = tf.add(wx, b) as tf.Tensor2D;
        h = i + 1 < this.layers.length ? tf.relu(z) : z;
      });
      return h;
    });
  }

  /** Variables by stable name (no instance prefix), for checkpoints, optimiser slots and target copies. */
  namedVariables(): Record<string, tf.Variable> {
    const named: Record<string, tf.Variable> = {};
    this.layers.forEach(({ w, b }, i) => {
      named[`fc${i}/w`] = w;
      named[`fc${i}/b`] = b;
    });
    return named;
  }

  /** Copies `source`'s weights in, or moves τ of the way towards them (Polyak averaging). */
  copyFrom(source: Mlp, tau = 1): void {
    const theirs = source.namedVariables();
    tf.tidy(() => {
      for (const [name, v] of Object.entries(this.namedVariables())) {
        v.assign(tau >= 1 ? theirs[name] : tf.add(tf.mul(1 - tau, v), tf.mul(tau, theirs[name])));
      }
    });
  }

  dispose(): void {
    for (const { w, b } of this.layers) tf.dispose([w, b]);
  }
}

/** Picks each row's head: out [N, heads·width] × task one-hot [N, heads] → [N, width]. */
function selectHead(out: tf.Tensor2D, heads: number, width: number, task: tf.Tensor2D | undefined): tf.Tensor2D {
  if (heads === 1 || !task) return out;
  return tf.sum(tf.mul(tf.reshape(out, [-1, heads, width]), tf.expandDims(task, 2)), 1);
}

function prefixed(prefix: string, named: Record<string, tf.Variable>): Record<string, tf.Variable> {
  return Object.fromEntries(Object.entries(named).map(([k, v]) => [prefix + k, v]));
}

/** Variables one optimiser trains, under the stable names its slots are keyed by; fixed for the trainer's life. */
class ParameterSet {
  readonly names: readonly string[];
  readonly variables: tf.Variable[];

  constructor(readonly byName: Record<string, tf.Variable>) {
    this.names = Object.keys(byName);
    this.variables = this.names.map((n) => byName[n]);
  }

  /** tfjs keys gradients by the variables' process-global names; the optimiser by the stable ones. */
  stableGrads(grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    this.names.forEach((n, k) => (out[n] = grads[this.variables[k].name]));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Acting
// ---------------------------------------------------------------------------------------------

type ActingMode = 'explore' | 'sample' | 'deterministic';

/** Host-side actor inputs for a fixed number of slots, refilled on every act. */
interface ActingInputs {
  slots: number;
  /** obs ⊕ agent id [slots, inputDim]. */
  x: Float32Array;
  /** Task one-hot [slots, numTasks] when the actor has several heads, else empty. */
  task: Float32Array;
}

/**
 * Acts for all E·A slots with one actor pass: `explore` samples (uniformly at random before
 * `learning_starts`), `sample` samples, `deterministic` takes tanh(mean). Owns no tensors; its
 * host arrays are sized for its layout once, since every batch it acts on has that shape.
 */
class SacPolicy implements Policy {
  private readonly inputs: ActingInputs;
  /** Actions in the unit box [E·A, actDim] before mapping onto the env's bounds. */
  private readonly unit: Float32Array;

  constructor(
    private readonly sac: Sac,
    readonly layout: VectorLayout,
    private rng: Rng,
    private readonly mode: ActingMode,
  ) {
    const N = layout.numEnvs * layout.numAgents;
    this.inputs = sac.actingInputs(N);
    this.unit = new Float32Array(N * layout.actDim);
  }

  /** The sampling stream's position, for checkpoints. */
  rngState(): RngState {
    return this.rng.state();
  }

  /** Continues from a checkpoint's stream (the policy object itself is handed out once and must stay the same). */
  resumeRng(rng: Rng): void {
    this.rng = rng;
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    const { numEnvs: E, numAgents: A, actDim: D } = this.layout;
    const N = E * A;
    if (batch.layout.numEnvs !== E || batch.alive.length !== N) {
      throw new Error(`sac policy: built for ${E} envs × ${A} agents, got a batch of ${batch.layout.numEnvs} envs, ${batch.alive.length} agent slots`);
    }
    const unit = this.unit;
    if (this.mode === 'explore' && this.sac.envStepsSeen < this.sac.config.learning_starts) {
      for (let i = 0; i < N; i++) if (batch.alive[i]) for (let d = 0; d < D; d++) unit[i * D + d] = this.rng.uniform(-1, 1);
    } else {
      this.sac.actorOutputs(batch.obs, this.inputs, (out) => {
        // Row i of `out` is slot i's means, then its log-stds.
        for (let i = 0; i < N; i++) {
          if (!batch.alive[i]) continue;
          for (let d = 0; d < D; d++) {
            const mean = out[i * 2 * D + d];
            unit[i * D + d] = this.mode === 'deterministic' ? Math.tanh(mean) : Math.tanh(mean + Math.exp(out[i * 2 * D + D + d]) * this.rng.normal());
          }
        }
      });
    }
    for (let i = 0; i < N; i++) {
      if (batch.alive[i]) this.sac.toEnvAction(unit, actions, i);
      else actions.fill(0, i * D, (i + 1) * D);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer
// ---------------------------------------------------------------------------------------------

/** One sampled batch in the layouts its tensors take; allocated once and refilled. */
interface BatchArrays {
  rows: Int32Array;
  /** Actor inputs [B, inputDim] at s and s'. */
  obs: Float32Array;
  nextObs: Float32Array;
  /** Normalised actions [B, actDim]. */
  actions: Float32Array;
  rewards: Float32Array;
  /** 1 − terminated. */
  notDone: Float32Array;
  /** Task one-hot [B, numTasks] (empty for single-task). */
  task: Float32Array;
  /** ε for a' ~ π(s') [B, actDim], and for the actor steps [policy_frequency, B, actDim]. */
  nextNoise: Float32Array;
  actorNoise: Float32Array;
}

export class Sac implements Trainer {
  readonly collection = { mode: 'transition' } as const;
  readonly layout: VectorLayout;
  readonly config: SacAlgoConfig;
  readonly actor: Mlp;
  readonly qf1: Mlp;
  readonly qf2: Mlp;
  readonly qf1Target: Mlp;
  readonly qf2Target: Mlp;
  /** log α: [numTasks] with `per_task_alpha`, else [1]. */
  readonly logAlpha: tf.Variable;
  readonly replay: TransitionReplay;
  readonly targetEntropy: number;
  /** Actor/critic input width: obs ⊕ agent-id one-hot. */
  readonly inputDim: number;
  private readonly numTasks: number;
  /** Output heads of each network: numTasks with `multi_head`, else 1. */
  private readonly heads: number;
  private readonly useAgentId: boolean;
  /** Per slot [A·actDim]: env action = unit · scale + offset. */
  private readonly actionScale: Float64Array;
  private readonly actionOffset: Float64Array;
  private readonly actionLow: Float64Array;
  private readonly actionHigh: Float64Array;
  /** What the policy and q optimisers train, under their stable names. */
  private readonly actorParams: ParameterSet;
  private readonly criticParams: ParameterSet;
  private readonly policyOptimizer: Adam;
  private readonly qOptimizer: Adam;
  private readonly alphaOptimizer?: Adam;
  private readonly acting: SacPolicy;
  private updateRng: Rng;
  private readonly batch: BatchArrays;
  private readonly unitScratch: Float32Array;

  private envSteps = 0;
  private updates = 0;
  /** Critic steps owed (fractional with `updates_per_step` · E < 1). */
  private updateCredit = 0;

  constructor(options: SacOptions) {
    const { layout, config, seed } = options;
    if (layout.discreteActions) throw new Error("sac: needs continuous (Box) action spaces, but the env's actions are discrete");
    if (!(config.log_std_min < config.log_std_max)) throw new Error(`sac: algo.log_std_min (${config.log_std_min}) must be below algo.log_std_max (${config.log_std_max})`);
    const { numAgents: A, obsDim, actDim: D, agentIds } = layout;
    const numTasks = layout.numTasks ?? 0;
    if (!Number.isInteger(numTasks) || numTasks < 0 || (numTasks > 0 && numTasks > Math.min(...layout.agentObsDims))) {
      throw new Error(`sac: the env reports numTasks ${numTasks}, which must be a non-negative integer no larger than every agent's observation`);
    }
    for (const key of ['multi_head', 'per_task_alpha'] as const) {
      if (config[key] && numTasks === 0) throw new Error(`sac: algo.${key} needs a multi-task env (EnvMetadata.numTasks > 0), but this env reports no tasks`);
    }
    this.layout = layout;
    this.config = config;
    this.numTasks = numTasks;
    this.heads = config.multi_head ? numTasks : 1;
    this.useAgentId = config.obs_agent_id && A > 1;
    this.inputDim = obsDim + (this.useAgentId ? A : 0);
    this.targetEntropy = config.target_entropy ?? -D;

    // Affine map from [−1, 1] onto each slot's Box.
    this.actionScale = new Float64Array(A * D);
    this.actionOffset = new Float64Array(A * D);
    this.actionLow = new Float64Array(A * D);
    this.actionHigh = new Float64Array(A * D);
    for (let j = 0; j < A * D; j++) {
      const lo = layout.actionLow ? layout.actionLow[j] : -1;
      const hi = layout.actionHigh ? layout.actionHigh[j] : 1;
      if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
        throw new Error(`sac: agent '${agentIds[Math.floor(j / D)]}' action dimension ${j % D} has bounds [${lo}, ${hi}]; SAC squashes actions into the Box, so its bounds must be finite`);
      }
      this.actionLow[j] = lo;
      this.actionHigh[j] = hi;
      this.actionScale[j] = (hi - lo) / 2;
      this.actionOffset[j] = (hi + lo) / 2;
    }

    const initSeed = deriveSeed(seed, 'sac', 'init');
    const hidden = config.hidden_dims;
    this.actor = new Mlp(this.inputDim, hidden, this.heads * 2 * D, initSeed, 'actor');
    this.qf1 = new Mlp(this.inputDim + D, hidden, this.heads, initSeed, 'qf1');
    this.qf2 = new Mlp(this.inputDim + D, hidden, this.heads, initSeed, 'qf2');
    this.qf1Target = new Mlp(this.inputDim + D, hidden, this.heads, initSeed, 'qf1');
    this.qf2Target = new Mlp(this.inputDim + D, hidden, this.heads, initSeed, 'qf2');
    this.qf1Target.copyFrom(this.qf1);
    this.qf2Target.copyFrom(this.qf2);
    const alphas = config.per_task_alpha ? numTasks : 1;
    this.logAlpha = tf.tidy(() => tf.variable(tf.fill([alphas], Math.log(config.alpha)), config.autotune, `sac${instanceCounter++}/log_alpha`));

    this.actorParams = new ParameterSet(prefixed('actor/', this.actor.namedVariables()));
    this.criticParams = new ParameterSet({ ...prefixed('qf1/', this.qf1.namedVariables()), ...prefixed('qf2/', this.qf2.namedVariables()) });
    this.policyOptimizer = new Adam({ lr: config.policy_lr }, this.actorParams.byName);
    this.qOptimizer = new Adam({ lr: config.q_lr }, this.criticParams.byName);
    if (config.autotune) this.alphaOptimizer = new Adam({ lr: config.alpha_lr ?? config.q_lr }, { log_alpha: this.logAlpha });

    this.replay = new TransitionReplay({ obsDim, actDim: D }, config.buffer_size);
    this.acting = new SacPolicy(this, layout, new Rng(deriveSeed(seed, 'sac', 'act')), 'explore');
    this.updateRng = new Rng(deriveSeed(seed, 'sac', 'update'));
    const B = config.batch_size;
    this.batch = {
      rows: new Int32Array(B),
      obs: new Float32Array(B * this.inputDim),
      nextObs: new Float32Array(B * this.inputDim),
      actions: new Float32Array(B * D),
      rewards: new Float32Array(B),
      notDone: new Float32Array(B),
      task: new Float32Array(B * numTasks),
      nextNoise: new Float32Array(B * D),
      actorNoise: new Float32Array(config.policy_frequency * B * D),
    };
    this.unitScratch = new Float32Array(D);
  }

  get policy(): Policy {
    return this.acting;
  }

  /** Env steps the trainer has observed (what `learning_starts` compares against). */
  get envStepsSeen(): number {
    return this.envSteps;
  }

  /** Critic gradient steps taken so far. */
  get updateCount(): number {
    return this.updates;
  }

  // --- inputs and actions ---------------------------------------------------------------------

  /** Writes slot `i`'s network input (obs ⊕ agent id) at row `row` of `out` (zeroed or overwritten). */
  private writeInput(out: Float32Array, row: number, obs: Float32Array, i: number, agent: number): void {
    const { obsDim, numAgents: A } = this.layout;
    const at = row * this.inputDim;
    out.set(obs.subarray(i * obsDim, (i + 1) * obsDim), at);
    if (this.useAgentId) {
      out.fill(0, at + obsDim, at + obsDim + A);
      out[at + obsDim + agent] = 1;
    }
  }

  /** The task of slot `i`'s observation: where its trailing one-hot has its 1 (0 for single-task envs). */
  private taskOf(obs: Float32Array, i: number): number {
    const T = this.numTasks;
    if (T === 0) return 0;
    const { obsDim, numAgents: A, agentObsDims, agentIds } = this.layout;
    const a = i % A;
    const at = i * obsDim + agentObsDims[a] - T;
    for (let k = 0; k < T; k++) if (obs[at + k] === 1) return k;
    throw new Error(`sac: agent '${agentIds[a]}' observation does not end with a task one-hot of length ${T} (EnvMetadata.numTasks): got [${Array.from(obs.subarray(at, at + T)).join(', ')}]`);
  }

  /** Writes slot `i`'s action from the unit box into env units, clipped into the Box against rounding. */
  toEnvAction(unit: Float32Array, actions: Float32Array, i: number): void {
    const D = this.layout.actDim;
    const j0 = (i % this.layout.numAgents) * D;
    for (let d = 0; d < D; d++) {
      const j = j0 + d;
      const a = unit[i * D + d] * this.actionScale[j] + this.actionOffset[j];
      actions[i * D + d] = Math.min(this.actionHigh[j], Math.max(this.actionLow[j], a));
    }
  }

  /** Slot `i`'s env action back in the unit box, into `out`. */
  private toUnitAction(actions: Float32Array, i: number, out: Float32Array): void {
    const D = this.layout.actDim;
    const j0 = (i % this.layout.numAgents) * D;
    for (let d = 0; d < D; d++) {
      const j = j0 + d;
      const u = this.actionScale[j] > 0 ? (actions[i * D + d] - this.actionOffset[j]) / this.actionScale[j] : 0;
      out[d] = Math.min(1, Math.max(-1, u));
    }
  }

  /** Input arrays for acting on `slots` slots at once. */
  actingInputs(slots: number): ActingInputs {
    return { slots, x: new Float32Array(slots * this.inputDim), task: new Float32Array(this.heads > 1 ? slots * this.numTasks : 0) };
  }

  /**
   * Runs the actor on the slots' observations [slots, obsDim] (slot i is agent i mod A) and hands
   * `read` its means and log-stds side by side [slots, 2·actDim]. `read` runs while the tensor
   * is alive (on cpu the array is the backend's own storage) and must not keep the array.
   */
  actorOutputs(obs: Float32Array, inputs: ActingInputs, read: (meanLogStd: Float32Array) => void): void {
    const T = this.numTasks;
    const { slots: n, x, task } = inputs;
    const multiHead = task.length > 0;
    if (multiHead) task.fill(0);
    for (let i = 0; i < n; i++) {
      this.writeInput(x, i, obs, i, i % this.layout.numAgents);
      if (multiHead) task[i * T + this.taskOf(obs, i)] = 1;
    }
    tf.tidy(() => {
      const { mean, logStd } = this.policyHead(tf.tensor2d(x, [n, this.inputDim]), multiHead ? tf.tensor2d(task, [n, T]) : undefined);
      read(tf.concat([mean, logStd], 1).dataSync() as Float32Array);
    });
  }

  /** The actor's Gaussian before squashing: mean and log-std [N, actDim]. */
  private policyHead(x: tf.Tensor2D, task: tf.Tensor2D | undefined): { mean: tf.Tensor2D; logStd: tf.Tensor2D } {
    const D = this.layout.actDim;
    const { log_std_min: lo, log_std_max: hi } = this.config;
    const out = selectHead(this.actor.forward(x), this.heads, 2 * D, task);
    const [mean, raw] = tf.split(out, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    // tanh keeps the log-std inside [lo, hi] with a gradient everywhere (SpinUp / Yarats).
    const logStd = tf.add(lo, tf.mul(0.5 * (hi - lo), tf.add(tf.tanh(raw), 1))) as tf.Tensor2D;
    return { mean, logStd };
  }

  /**
   * Reparameterised a = tanh(mean + std·ε) and its log-probability under the squashed Gaussian:
   * Σ_d [log N(ε) − log std − log(1 − a² + 1e-6)], since (x − mean)/std is ε itself.
   */
  private sampleAction(x: tf.Tensor2D, noise: tf.Tensor2D, task: tf.Tensor2D | undefined): { action: tf.Tensor2D; logp: tf.Tensor1D } {
    const { mean, logStd } = this.policyHead(x, task);
    const action = tf.tanh(tf.add(mean, tf.mul(tf.exp(logStd), noise))) as tf.Tensor2D;
    const gaussian = tf.neg(tf.add(tf.add(tf.mul(0.5, tf.square(noise)), logStd), HALF_LOG_TWO_PI));
    const squash = tf.log(tf.add(tf.sub(1, tf.square(action)), SQUASH_EPSILON));
    return { action, logp: tf.sum(tf.sub(gaussian, squash), 1) as tf.Tensor1D };
  }

  /** Q(s, a) [B] from critic `net`: x is the actor input at s. */
  private q(net: Mlp, x: tf.Tensor2D, action: tf.Tensor2D, task: tf.Tensor2D | undefined): tf.Tensor1D {
    return tf.reshape(selectHead(net.forward(tf.concat([x, action], 1)), this.heads, 1, task), [-1]);
  }

  /** α for each row [B] (per task), or the one α [1]. */
  private alphaOf(task: tf.Tensor2D | undefined): tf.Tensor {
    const alpha = tf.exp(this.logAlpha);
    return this.config.per_task_alpha && task ? tf.sum(tf.mul(alpha, task), 1) : alpha;
  }

  // --- the stream -----------------------------------------------------------------------------

  observe(item: Transition | TrajectoryChunk, envSteps: number): TrainStats | undefined {
    if (item.kind !== 'transition') throw new Error("sac.observe: expects transitions (collection mode 'transition'), got a chunk");
    this.envSteps = envSteps;
    const { numEnvs: E, numAgents: A, obsDim } = this.layout;
    if (item.alive.length !== E * A) throw new Error(`sac.observe: transition has ${item.alive.length} agent slots, expected ${E} envs × ${A} agents`);
    for (let i = 0; i < E * A; i++) {
      // Agents that did not act made no transition; an aborted episode's last step is not real.
      if (!item.alive[i] || item.episodeAborted[Math.floor(i / A)]) continue;
      this.toUnitAction(item.actions, i, this.unitScratch);
      this.replay.add(item.obs, i * obsDim, this.unitScratch, 0, item.rewards[i], item.nextObs, i * obsDim, item.terminated[i] === 1, i % A, this.taskOf(item.obs, i));
    }
    if (envSteps <= this.config.learning_starts || this.replay.size < this.config.batch_size) return undefined;
    this.updateCredit += E * this.config.updates_per_step;
    const stats: TrainStats[] = [];
    for (; this.updateCredit >= 1; this.updateCredit -= 1) stats.push(this.update());
    const mean = meanStats(stats);
    return mean && { ...mean, grad_steps: stats.length };
  }

  episodesReset(): void {
    // Nothing to forget: acting is memoryless and the replay holds complete transitions.
  }

  /**
   * A policy for `layout`'s envs: tanh of the mean (scaled to the bounds), or with
   * `options.sample` a draw from the policy with an Rng seeded by `seed`.
   */
  evaluationPolicy(layout: VectorLayout, seed: string, options: EvaluationOptions = {}): Policy {
    const mine = this.layout;
    if (layout.numAgents !== mine.numAgents || layout.obsDim !== mine.obsDim || layout.actDim !== mine.actDim || (layout.numTasks ?? 0) !== this.numTasks) {
      throw new Error(
        `sac.evaluationPolicy: layout (${layout.numAgents} agents, obs ${layout.obsDim}, actions ${layout.actDim}, tasks ${layout.numTasks ?? 0}) differs from the trained one (${mine.numAgents}, ${mine.obsDim}, ${mine.actDim}, ${this.numTasks})`,
      );
    }
    return new SacPolicy(this, layout, new Rng(deriveSeed(seed, 'sac', 'evaluate')), options.sample ? 'sample' : 'deterministic');
  }

  // --- the update -----------------------------------------------------------------------------

  /** Samples `batch_size` transitions into the preallocated arrays, and the noise the update needs. */
  private fillBatch(actorSteps: number): void {
    const b = this.batch;
    const r = this.replay;
    const D = this.layout.actDim;
    const T = this.numTasks;
    r.sampleRows(this.updateRng, b.rows);
    if (T > 0) b.task.fill(0);
    for (let k = 0; k < b.rows.length; k++) {
      const row = b.rows[k];
      this.writeInput(b.obs, k, r.obs, row, r.agent[row]);
      this.writeInput(b.nextObs, k, r.nextObs, row, r.agent[row]);
      b.actions.set(r.actions.subarray(row * D, (row + 1) * D), k * D);
      b.rewards[k] = r.rewards[row];
      b.notDone[k] = 1 - r.terminated[row];
      if (T > 0) b.task[k * T + r.task[row]] = 1;
    }
    for (let j = 0; j < b.nextNoise.length; j++) b.nextNoise[j] = this.updateRng.normal();
    const actorNoise = actorSteps * b.rows.length * D;
    for (let j = 0; j < actorNoise; j++) b.actorNoise[j] = this.updateRng.normal();
  }

  /** One critic step; every `policy_frequency`-th also takes that many actor (and α) steps; then the targets move. */
  update(): TrainStats {
    const cfg = this.config;
    const B = cfg.batch_size;
    const D = this.layout.actDim;
    const Din = this.inputDim;
    const T = this.numTasks;
    const actorSteps = this.updates % cfg.policy_frequency === 0 ? cfg.policy_frequency : 0;
    this.fillBatch(actorSteps);
    const b = this.batch;
    const statNames: string[] = [];

    const stats = tf.tidy(() => {
      const obs = tf.tensor2d(b.obs, [B, Din]);
      const nextObs = tf.tensor2d(b.nextObs, [B, Din]);
      const actions = tf.tensor2d(b.actions, [B, D]);
      const rewards = tf.tensor1d(b.rewards);
      const notDone = tf.tensor1d(b.notDone);
      const task = T > 0 ? tf.tensor2d(b.task, [B, T]) : undefined;
      const out: Record<string, tf.Scalar> = {};
      // Tensors kept out of a gradient tape's tidy escape every enclosing tidy too: freed at the end.
      const kept: tf.Tensor[] = [];
      const keep = <T extends tf.Tensor>(t: T): T => {
        kept.push(tf.keep(t));
        return t;
      };

      // 1. Soft TD target from the target critics at a' ~ π(s'); nothing here is trained.
      const next = this.sampleAction(nextObs, tf.tensor2d(b.nextNoise, [B, D]), task);
      const minNextQ = tf.minimum(this.q(this.qf1Target, nextObs, next.action, task), this.q(this.qf2Target, nextObs, next.action, task));
      const softNext = tf.sub(minNextQ, tf.mul(this.alphaOf(task), next.logp));
      const y = tf.add(rewards, tf.mul(cfg.gamma, tf.mul(notDone, softNext)));

      // 2. Critic step on (Q1 − y)² + (Q2 − y)².
      const criticStep = tf.variableGrads(() => {
        const q1 = this.q(this.qf1, obs, actions, task);
        const q2 = this.q(this.qf2, obs, actions, task);
        const l1 = tf.mean(tf.square(tf.sub(q1, y))) as tf.Scalar;
        const l2 = tf.mean(tf.square(tf.sub(q2, y))) as tf.Scalar;
        out.qf1_values = keep(tf.mean(q1) as tf.Scalar);
        out.qf2_values = keep(tf.mean(q2) as tf.Scalar);
        out.qf1_loss = keep(l1);
        out.qf2_loss = keep(l2);
        return tf.add(l1, l2) as tf.Scalar;
      }, this.criticParams.variables);
      this.qOptimizer.apply(this.criticParams.stableGrads(criticStep.grads));
      out.qf_loss = tf.div(criticStep.value, 2);

      // 3. Actor (and α) steps against the updated critics.
      const actorLosses: tf.Scalar[] = [];
      const alphaLosses: tf.Scalar[] = [];
      const entropies: tf.Scalar[] = [];
      for (let k = 0; k < actorSteps; k++) {
        const noise = tf.tensor2d(b.actorNoise.subarray(k * B * D, (k + 1) * B * D), [B, D]);
        const alpha = this.alphaOf(task);
        let logp: tf.Tensor1D | undefined;
        const actorStep = tf.variableGrads(() => {
          const pi = this.sampleAction(obs, noise, task);
          logp = keep(pi.logp);
          const minQ = tf.minimum(this.q(this.qf1, obs, pi.action, task), this.q(this.qf2, obs, pi.action, task));
          return tf.mean(tf.sub(tf.mul(alpha, pi.logp), minQ)) as tf.Scalar;
        }, this.actorParams.variables);
        this.policyOptimizer.apply(this.actorParams.stableGrads(actorStep.grads));
        actorLosses.push(actorStep.value);
        entropies.push(tf.neg(tf.mean(logp!)) as tf.Scalar);
        if (this.alphaOptimizer) {
          const target = tf.add(logp!, this.targetEntropy);
          const alphaStep = tf.variableGrads(() => tf.mean(tf.mul(tf.neg(this.alphaOf(task)), target)) as tf.Scalar, [this.logAlpha]);
          this.alphaOptimizer.apply({ log_alpha: alphaStep.grads[this.logAlpha.name] });
          alphaLosses.push(alphaStep.value);
        }
      }
      const meanOf = (xs: tf.Scalar[]) => tf.div(tf.addN(xs), xs.length) as tf.Scalar;
      if (actorSteps > 0) {
        out.actor_loss = meanOf(actorLosses);
        out.entropy = meanOf(entropies);
        if (alphaLosses.length > 0) out.alpha_loss = meanOf(alphaLosses);
      }

      // 4. Polyak-averaged target critics.
      if ((this.updates + 1) % cfg.target_network_frequency === 0) {
        this.qf1Target.copyFrom(this.qf1, cfg.tau);
        this.qf2Target.copyFrom(this.qf2, cfg.tau);
      }

      // α after this update: its mean, and each task's with `per_task_alpha`.
      const alphas = tf.exp(this.logAlpha) as tf.Tensor1D;
      out.alpha = tf.mean(alphas);
      statNames.push(...Object.keys(out));
      const all = tf.concat([tf.stack(Object.values(out)), alphas]);
      tf.dispose(kept);
      return all;
    });
    const values = stats.dataSync();
    stats.dispose();
    this.updates++;
    const result: TrainStats = {};
    statNames.forEach((name, k) => (result[name] = values[k]));
    if (cfg.per_task_alpha) for (let t = 0; t < T; t++) result[`alpha_task_${t}`] = values[statNames.length + t];
    return result;
  }

  // --- checkpoints ----------------------------------------------------------------------------

  async captureState(): Promise<TrainerState> {
    const replay = this.replay.capture();
    const optimizers: TrainerState['optimizers'] = { policy: await this.policyOptimizer.capture(), q: await this.qOptimizer.capture() };
    if (this.alphaOptimizer) optimizers.alpha = await this.alphaOptimizer.capture();
    return {
      models: {
        actor: await captureTensors(this.actor.namedVariables()),
        qf1: await captureTensors(this.qf1.namedVariables()),
        qf2: await captureTensors(this.qf2.namedVariables()),
        qf1_target: await captureTensors(this.qf1Target.namedVariables()),
        qf2_target: await captureTensors(this.qf2Target.namedVariables()),
        alpha: await captureTensors({ log_alpha: this.logAlpha }),
      },
      optimizers,
      rngs: { act: this.acting.rngState(), update: this.updateRng.state() },
      arrays: Object.fromEntries(Object.entries(replay.arrays).map(([k, v]) => [`replay/${k}`, v])) as Record<string, SerializedArray>,
      json: { algo: 'sac', envSteps: this.envSteps, updates: this.updates, updateCredit: this.updateCredit, replay: replay.json },
    };
  }

  async restoreState(state: TrainerState): Promise<void> {
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
    const replayArrays: Record<string, SerializedArray> = {};
    for (const [k, v] of Object.entries(state.arrays)) if (k.startsWith('replay/')) replayArrays[k.slice('replay/'.length)] = v;
    // Everything is looked up before anything is assigned, so a missing part leaves the trainer as it was.
    const models: Array<[Record<string, tf.Variable>, NamedTensorData, string]> = [
      [this.actor.namedVariables(), need(state.models, 'actor', 'model'), 'actor'],
      [this.qf1.namedVariables(), need(state.models, 'qf1', 'model'), 'qf1'],
      [this.qf2.namedVariables(), need(state.models, 'qf2', 'model'), 'qf2'],
      [this.qf1Target.namedVariables(), need(state.models, 'qf1_target', 'model'), 'qf1_target'],
      [this.qf2Target.namedVariables(), need(state.models, 'qf2_target', 'model'), 'qf2_target'],
      [{ log_alpha: this.logAlpha }, need(state.models, 'alpha', 'model'), 'alpha'],
    ];
    const policyOpt = need(state.optimizers, 'policy', 'optimizer');
    const qOpt = need(state.optimizers, 'q', 'optimizer');
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
    this.policyOptimizer.restore(policyOpt, `${who}: optimizer 'policy'`);
    this.qOptimizer.restore(qOpt, `${who}: optimizer 'q'`);
    if (this.alphaOptimizer && alphaOpt) this.alphaOptimizer.restore(alphaOpt, `${who}: optimizer 'alpha'`);
    this.acting.resumeRng(actRng);
    this.updateRng = updateRng;
    this.envSteps = envSteps;
    this.updates = updates;
    this.updateCredit = updateCredit;
  }

  dispose(): void {
    for (const net of [this.actor, this.qf1, this.qf2, this.qf1Target, this.qf2Target]) net.dispose();
    this.logAlpha.dispose();
    this.policyOptimizer.dispose();
    this.qOptimizer.dispose();
    this.alphaOptimizer?.dispose();
  }
}
