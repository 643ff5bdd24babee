import * as tf from '@tensorflow/tfjs';
import type { EnvShape } from '../../envs/env-shape';
import type { Rng } from '../../runtime/core/rng';
import type { Mlp } from '../networks/mlp';
import type { Policy, PolicyBatch } from './policy';

/*
 * The tanh-squashed Gaussian policy of SAC (CleanRL's `sac_continuous_action`): an MLP over
 * obs ⊕ agent-id one-hot gives a mean and a log-std per action dimension (the log-std squashed
 * into [logStdMin, logStdMax] with tanh), actions are tanh(mean + std·ε) in the unit box
 * [−1, 1]^d, mapped affinely onto each agent's Box bounds when sent. Multi-task envs may give
 * the network one output head per task, picked by the task one-hot that ends each observation.
 */

export interface SquashedGaussianSettings {
  /** Output heads (one per task with MT-SAC's `multi_head`, else 1). */
  heads: number;
  /** Tasks of a multi-task env (its observations end with this one-hot); 0 for single-task envs. */
  numTasks: number;
  /** Whether the agent-id one-hot follows the observation. */
  agentId: boolean;
  logStdMin: number;
  logStdMax: number;
}

/** Picks each row's head: out [N, heads·width] × task one-hot [N, heads] → [N, width]. */
export function selectHead(out: tf.Tensor2D, heads: number, width: number, task: tf.Tensor2D | undefined): tf.Tensor2D {
  if (heads === 1 || !task) return out;
  return tf.sum(tf.mul(tf.reshape(out, [-1, heads, width]), tf.expandDims(task, 2)), 1);
}

/**
 * Each agent slot's Box bounds, flat [A·actDim] ([−1, 1] without Box bounds); throws, naming the
 * agent and dimension, where a bound is infinite, since the squashed actions map onto the Box.
 */
export function squashableBounds(shape: EnvShape, who = 'sac'): { low: Float64Array; high: Float64Array } {
  const { numAgents: A, actDim: D, agentIds } = shape;
  const low = new Float64Array(A * D);
  const high = new Float64Array(A * D);
  for (let j = 0; j < A * D; j++) {
    const lo = shape.actionLow ? shape.actionLow[j] : -1;
    const hi = shape.actionHigh ? shape.actionHigh[j] : 1;
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
      throw new Error(`${who}: agent '${agentIds[Math.floor(j / D)]}' action dimension ${j % D} has bounds [${lo}, ${hi}]; SAC squashes actions into the Box, so its bounds must be finite`);
    }
    low[j] = lo;
    high[j] = hi;
  }
  return { low, high };
}

/**
 * The actor network with the facts acting needs: input rows, the task of a slot, and the affine
 * map between the unit box and each agent's Box bounds. Owns no tensors besides the network's.
 */
export class SquashedGaussianActor {
  /** Actor input width: obs ⊕ agent id. */
  readonly inputDim: number;
  private readonly actionScale: Float64Array;
  private readonly actionOffset: Float64Array;
  private readonly actionLow: Float64Array;
  private readonly actionHigh: Float64Array;

  constructor(
    readonly net: Mlp,
    readonly shape: EnvShape,
    readonly settings: SquashedGaussianSettings,
    who = 'sac',
  ) {
    const { numAgents: A, obsDim, actDim: D } = shape;
    this.inputDim = obsDim + (settings.agentId ? A : 0);
    const { low, high } = squashableBounds(shape, who);
    this.actionLow = low;
    this.actionHigh = high;
    this.actionScale = new Float64Array(A * D);
    this.actionOffset = new Float64Array(A * D);
    for (let j = 0; j < A * D; j++) {
      this.actionScale[j] = (high[j] - low[j]) / 2;
      this.actionOffset[j] = (high[j] + low[j]) / 2;
    }
  }

  /** Writes slot `i`'s network input (obs ⊕ agent id) at row `row` of `out` (zeroed or overwritten). */
  writeInput(out: Float32Array, row: number, obs: Float32Array, i: number, agent: number): void {
    const { obsDim, numAgents: A } = this.shape;
    const at = row * this.inputDim;
    out.set(obs.subarray(i * obsDim, (i + 1) * obsDim), at);
    if (this.settings.agentId) {
      out.fill(0, at + obsDim, at + obsDim + A);
      out[at + obsDim + agent] = 1;
    }
  }

  /** The task of slot `i`'s observation: where its trailing one-hot has its 1 (0 for single-task envs). */
  taskOf(obs: Float32Array, i: number): number {
    const T = this.settings.numTasks;
    if (T === 0) return 0;
    const { obsDim, numAgents: A, agentObsDims, agentIds } = this.shape;
    const a = i % A;
    const at = i * obsDim + agentObsDims[a] - T;
    for (let k = 0; k < T; k++) if (obs[at + k] === 1) return k;
    throw new Error(`sac: agent '${agentIds[a]}' observation does not end with a task one-hot of length ${T} (EnvMetadata.numTasks): got [${Array.from(obs.subarray(at, at + T)).join(', ')}]`);
  }

  /** Writes slot `i`'s action from the unit box into env units, clipped into the Box against rounding. */
  toEnvAction(unit: Float32Array, actions: Float32Array, i: number): void {
    const D = this.shape.actDim;
    const j0 = (i % this.shape.numAgents) * D;
    for (let d = 0; d < D; d++) {
      const j = j0 + d;
      const a = unit[i * D + d] * this.actionScale[j] + this.actionOffset[j];
      actions[i * D + d] = Math.min(this.actionHigh[j], Math.max(this.actionLow[j], a));
    }
  }

  /** Slot `i`'s env action back in the unit box, into `out`. */
  toUnitAction(actions: Float32Array, i: number, out: Float32Array): void {
    const D = this.shape.actDim;
    const j0 = (i % this.shape.numAgents) * D;
    for (let d = 0; d < D; d++) {
      const j = j0 + d;
      const u = this.actionScale[j] > 0 ? (actions[i * D + d] - this.actionOffset[j]) / this.actionScale[j] : 0;
      out[d] = Math.min(1, Math.max(-1, u));
    }
  }

  /** The Gaussian before squashing: mean and log-std [N, actDim] for inputs x [N, inputDim]. */
  head(x: tf.Tensor2D, task: tf.Tensor2D | undefined): { mean: tf.Tensor2D; logStd: tf.Tensor2D } {
    const D = this.shape.actDim;
    const { logStdMin: lo, logStdMax: hi } = this.settings;
    const out = selectHead(this.net.forward(x), this.settings.heads, 2 * D, task);
    const [mean, raw] = tf.split(out, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    // tanh keeps the log-std inside [lo, hi] with a gradient everywhere (SpinUp / Yarats).
    const logStd = tf.add(lo, tf.mul(0.5 * (hi - lo), tf.add(tf.tanh(raw), 1))) as tf.Tensor2D;
    return { mean, logStd };
  }

  /** Input arrays for acting on `slots` slots at once. */
  actingInputs(slots: number): ActingInputs {
    return { slots, x: new Float32Array(slots * this.inputDim), task: new Float32Array(this.settings.heads > 1 ? slots * this.settings.numTasks : 0) };
  }

  /**
   * Runs the actor on the slots' observations [slots, obsDim] (slot i is agent i mod A) and hands
   * `read` its means and log-stds side by side [slots, 2·actDim]. `read` runs while the tensor
   * is alive (on cpu the array is the backend's own storage) and must not keep the array.
   */
  outputs(obs: Float32Array, inputs: ActingInputs, read: (meanLogStd: Float32Array) => void): void {
    const T = this.settings.numTasks;
    const { slots: n, x, task } = inputs;
    const multiHead = task.length > 0;
    if (multiHead) task.fill(0);
    for (let i = 0; i < n; i++) {
      this.writeInput(x, i, obs, i, i % this.shape.numAgents);
      if (multiHead) task[i * T + this.taskOf(obs, i)] = 1;
    }
    tf.tidy(() => {
      const { mean, logStd } = this.head(tf.tensor2d(x, [n, this.inputDim]), multiHead ? tf.tensor2d(task, [n, T]) : undefined);
      read(tf.concat([mean, logStd], 1).dataSync() as Float32Array);
    });
  }
}

/** Host-side actor inputs for a fixed number of slots, refilled on every act. */
export interface ActingInputs {
  slots: number;
  /** obs ⊕ agent id [slots, inputDim]. */
  x: Float32Array;
  /** Task one-hot [slots, numTasks] when the actor has several heads, else empty. */
  task: Float32Array;
}

/**
 * Acts for all E·A slots with one actor pass: `greedy` takes tanh(mean), `sample` draws
 * tanh(mean + std·ε); while `uniformWhile()` holds (SAC's `learning_starts`), every live slot
 * acts uniformly at random instead. Its host arrays are sized for its `numEnvs` once.
 */
export class SquashedGaussianPolicy implements Policy {
  private readonly inputs: ActingInputs;
  /** Actions in the unit box [E·A, actDim] before mapping onto the env's bounds. */
  private readonly unit: Float32Array;

  constructor(
    readonly actor: SquashedGaussianActor,
    readonly numEnvs: number,
    private readonly mode: { kind: 'greedy' } | { kind: 'sample'; rng: Rng; uniformWhile?: () => boolean },
  ) {
    const N = numEnvs * actor.shape.numAgents;
    this.inputs = actor.actingInputs(N);
    this.unit = new Float32Array(N * actor.shape.actDim);
  }

  /** The sampling stream's position, for checkpoints (greedy policies have none). */
  get rng(): Rng | undefined {
    return this.mode.kind === 'sample' ? this.mode.rng : undefined;
  }

  /** Continues from a checkpoint's stream (the policy object itself is handed out once and must stay the same). */
  resumeRng(rng: Rng): void {
    if (this.mode.kind === 'sample') this.mode.rng = rng;
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    const { numAgents: A, actDim: D } = this.actor.shape;
    const E = this.numEnvs;
    const N = E * A;
    if (batch.layout.numEnvs !== E || batch.alive.length !== N) {
      throw new Error(`sac policy: built for ${E} envs × ${A} agents, got a batch of ${batch.layout.numEnvs} envs, ${batch.alive.length} agent slots`);
    }
    const unit = this.unit;
    const mode = this.mode;
    if (mode.kind === 'sample' && mode.uniformWhile?.()) {
      for (let i = 0; i < N; i++) if (batch.alive[i]) for (let d = 0; d < D; d++) unit[i * D + d] = mode.rng.uniform(-1, 1);
    } else {
      this.actor.outputs(batch.obs, this.inputs, (out) => {
        // Row i of `out` is slot i's means, then its log-stds.
        for (let i = 0; i < N; i++) {
          if (!batch.alive[i]) continue;
          for (let d = 0; d < D; d++) {
            const mean = out[i * 2 * D + d];
            unit[i * D + d] = mode.kind === 'greedy' ? Math.tanh(mean) : Math.tanh(mean + Math.exp(out[i * 2 * D + D + d]) * mode.rng.normal());
          }
        }
      });
    }
    for (let i = 0; i < N; i++) {
      if (batch.alive[i]) this.actor.toEnvAction(unit, actions, i);
      else actions.fill(0, i * D, (i + 1) * D);
    }
  }
}
