import * as tf from '@tensorflow/tfjs';
import { deriveSeed, seedToInt } from '../../runtime/core/rng';
import { orthogonal } from './init';
import { type Linear, Module, createVariable, gruUpdate, linearVariables, uniqueScope } from './module';

/**
 * The per-agent network of EPyMARL's agents: `fc1 → ReLU → GRU cell → fc2` when recurrent
 * (EPyMARL's `RNNAgent`), else `fc1 → ReLU → fc2 → ReLU → fc3` (its feed-forward agent). Used by
 * value-based and policy-gradient trainers alike; the head's initial scale is theirs to choose.
 *
 * Parameters are shared by all agents (their id one-hot is part of the input) unless `copies`
 * is the number of agents: then every agent has its own weights (EPyMARL's `_ns` variants),
 * held as one [copies, in, out] tensor per layer so all agents still run in one batched matmul.
 * Rows are then read as agent-fastest ([…, agent]) and their count must divide by `copies`.
 */
export interface AgentNetworkSpec {
  inputDim: number;
  hiddenDim: number;
  outputDim: number;
  recurrent: boolean;
  /** Orthogonal-init gain of the output layer (e.g. 0.01 for a policy head, 1 for Q-values). */
  outputGain: number;
  /** Initial weights depend on this seed and `role` only, so equal seeds give equal networks. */
  seed: string;
  role: string;
  /** Independent weight sets, one per agent; 1 (default) = parameter sharing. */
  copies?: number;
  /** `zeros` skips the orthogonal initialisation, for a network whose weights are loaded next. */
  init?: 'orthogonal' | 'zeros';
}

export class AgentNetwork extends Module {
  readonly spec: AgentNetworkSpec;
  private readonly layers: Record<string, Linear> = {};
  /** GRU weights: input→gates [in, 3H], hidden→gates [H, 3H], gate order (reset, update, new). */
  private readonly gru?: { wi: tf.Variable; wh: tf.Variable; bi: tf.Variable; bh: tf.Variable };

  readonly copies: number;

  constructor(spec: AgentNetworkSpec) {
    super();
    this.spec = spec;
    const C = spec.copies ?? 1;
    if (!Number.isInteger(C) || C < 1) throw new Error(`AgentNetwork: copies must be a positive integer, got ${spec.copies}`);
    this.copies = C;
    const { inputDim: D, hiddenDim: H, outputDim: O } = spec;
    const scope = uniqueScope('agent-net', spec.role);
    // Copy 0 draws what a shared network draws, so sharing on/off start from related weights.
    const seed = (i: number, c: number) => seedToInt(c === 0 ? deriveSeed(spec.seed, spec.role, i) : deriveSeed(spec.seed, spec.role, i, 'copy', c));
    const weights = (inDim: number, outDim: number, gain: number, i: number): tf.Tensor => {
      if (spec.init === 'zeros') return tf.zeros(C === 1 ? [inDim, outDim] : [C, inDim, outDim]);
      if (C === 1) return orthogonal(inDim, outDim, gain, seed(i, 0));
      return tf.tidy(() => tf.stack(Array.from({ length: C }, (_, c) => orthogonal(inDim, outDim, gain, seed(i, c)))));
    };
    const variable = (initial: tf.Tensor, name: string): tf.Variable => createVariable(initial, scope, name);
    const bias = (outDim: number, name: string) => variable(C === 1 ? tf.zeros([outDim]) : tf.zeros([C, 1, outDim]), name);
    const dense = (name: string, inDim: number, outDim: number, gain: number, i: number): Linear => {
      return { w: variable(weights(inDim, outDim, gain, i), `${name}/w`), b: bias(outDim, `${name}/b`) };
    };
    this.layers.fc1 = dense('fc1', D, H, Math.SQRT2, 0);
    if (spec.recurrent) {
      this.gru = {
        wi: variable(weights(H, 3 * H, 1, 1), 'gru/wi'),
        wh: variable(weights(H, 3 * H, 1, 2), 'gru/wh'),
        bi: bias(3 * H, 'gru/bi'),
        bh: bias(3 * H, 'gru/bh'),
      };
      this.layers.out = dense('out', H, O, spec.outputGain, 3);
    } else {
      this.layers.fc2 = dense('fc2', H, H, Math.SQRT2, 1);
      this.layers.out = dense('out', H, O, spec.outputGain, 3);
    }
  }

  get recurrent(): boolean {
    return this.spec.recurrent;
  }

  /** A zero hidden state for `rows` rows ([rows, H]); feed-forward networks ignore it. */
  initialHidden(rows: number): tf.Tensor2D {
    return tf.zeros([rows, this.spec.hiddenDim]);
  }

  /**
   * One step for B rows: x [B, inputDim], h [B, hiddenDim] → output [B, outputDim] and the
   * next hidden state (h itself for feed-forward networks).
   */
  step(x: tf.Tensor2D, h: tf.Tensor2D): { out: tf.Tensor2D; h: tf.Tensor2D } {
    return tf.tidy(() => {
      const { fc1, fc2, out } = this.layers;
      const z = tf.relu(this.affine(x, fc1));
      if (!this.gru) return { out: this.affine(tf.relu(this.affine(z, fc2)), out), h: tf.clone(h) };
      const hNext = this.gruCell(z, h);
      return { out: this.affine(hNext, out), h: hNext };
    });
  }

  /**
   * Unrolls over T steps (differentiable): xs [T, B, inputDim]; `resets` [T, B] with 1 where
   * the hidden state is zeroed before step t (an episode starts there); h0 [B, hiddenDim].
   * Returns outputs [T, B, outputDim]. Feed-forward networks run all T·B rows as one batch.
   */
  unroll(xs: tf.Tensor3D, resets: tf.Tensor2D, h0: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [T, B, D] = xs.shape;
      const { fc1, fc2, out } = this.layers;
      const z = tf.relu(this.affine(tf.reshape(xs, [T * B, D]), fc1));
      if (!this.gru) return tf.reshape(this.affine(tf.relu(this.affine(z, fc2)), out), [T, B, this.spec.outputDim]);
      const H = this.spec.hiddenDim;
      const g = this.gru!;
      // The input half of the gates for all T·B rows in one matmul; only the hidden half is sequential.
      const inputGates = tf.unstack(tf.reshape(this.linear(z, g.wi, g.bi), [T, B, 3 * H])) as tf.Tensor2D[];
      const keep = tf.unstack(tf.expandDims(tf.sub(1, resets), 2)) as tf.Tensor2D[];
      let h = h0;
      const hs: tf.Tensor2D[] = [];
      for (let t = 0; t < T; t++) {
        h = this.gruFromGates(inputGates[t], tf.mul(h, keep[t]) as tf.Tensor2D);
        hs.push(h);
      }
      return tf.reshape(this.affine(tf.concat(hs, 0), out), [T, B, this.spec.outputDim]);
    });
  }

  /** PyTorch's GRUCell: r, u gates; n = tanh(W_in z + b_in + r ⊙ (W_hn h + b_hn)); h' = (1 − u) ⊙ n + u ⊙ h. */
  private gruCell(z: tf.Tensor2D, h: tf.Tensor2D): tf.Tensor2D {
    const g = this.gru!;
    return this.gruFromGates(this.linear(z, g.wi, g.bi), h);
  }

  /** The GRU update given the input's gate pre-activations `gi` = z·W_i + b_i. */
  private gruFromGates(gi: tf.Tensor2D, h: tf.Tensor2D): tf.Tensor2D {
    const g = this.gru!;
    return gruUpdate(gi, this.linear(h, g.wh, g.bh), h, this.spec.hiddenDim);
  }

  private affine(x: tf.Tensor2D, d: Linear | undefined): tf.Tensor2D {
    return this.linear(x, d!.w, d!.b);
  }

  /** x·W + b for shared weights; per agent (rows agent-fastest) with one batched matmul otherwise. */
  private linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
    const C = this.copies;
    if (C === 1) return tf.add(tf.matMul(x, w as tf.Tensor2D), b) as tf.Tensor2D;
    const [R, D] = x.shape;
    if (R % C !== 0) throw new Error(`AgentNetwork '${this.spec.role}': ${R} rows do not split over ${C} agents' weight sets (rows must be agent-fastest)`);
    const perAgent = tf.transpose(tf.reshape(x, [R / C, C, D]), [1, 0, 2]) as tf.Tensor3D;
    const y = tf.add(tf.matMul(perAgent, w as tf.Tensor3D), b);
    const O = w.shape[2]!;
    return tf.reshape(tf.transpose(y, [1, 0, 2]), [R, O]) as tf.Tensor2D;
  }

  /** Variables by stable name (role-relative, no instance prefix), for checkpoints and target copies. */
  namedVariables(): Record<string, tf.Variable> {
    const named = linearVariables(this.layers);
    if (this.gru) for (const [k, v] of Object.entries(this.gru)) named[`gru/${k}`] = v;
    return named;
  }
}
