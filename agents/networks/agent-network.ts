import * as tf from '@tensorflow/tfjs';
import { deriveSeed, seedToInt } from '../../runtime/core/rng';
import { orthogonal } from './init';
import { gruSequence, gruStep } from './gru-sequence';
import { type Linear, Module, createVariable, dense, linearVariables, uniqueScope } from './module';

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
    const layer = (name: string, inDim: number, outDim: number, gain: number, i: number): Linear => {
      return { w: variable(weights(inDim, outDim, gain, i), `${name}/w`), b: bias(outDim, `${name}/b`) };
    };
    this.layers.fc1 = layer('fc1', D, H, Math.SQRT2, 0);
    if (spec.recurrent) {
      this.gru = {
        wi: variable(weights(H, 3 * H, 1, 1), 'gru/wi'),
        wh: variable(weights(H, 3 * H, 1, 2), 'gru/wh'),
        bi: bias(3 * H, 'gru/bi'),
        bh: bias(3 * H, 'gru/bh'),
      };
      this.layers.out = layer('out', H, O, spec.outputGain, 3);
    } else {
      this.layers.fc2 = layer('fc2', H, H, Math.SQRT2, 1);
      this.layers.out = layer('out', H, O, spec.outputGain, 3);
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
      if (!this.gru) return { out: this.fromCopies(this.feedForward(this.toCopies(x))), h: tf.clone(h) };
      const H = this.spec.hiddenDim;
      const z = dense(this.toCopies(x), this.layers.fc1.w, this.layers.fc1.b, 'relu');
      const gi = dense(z, this.gru.wi, this.gru.bi);
      const hNext = gruStep(this.asCopies(gi), this.asCopies(this.toCopies(h)), { wh: this.gru.wh, bh: this.gru.bh });
      const out = dense(this.copies === 1 ? tf.reshape(hNext, [-1, H]) : hNext, this.layers.out.w, this.layers.out.b);
      return { out: this.fromCopies(out), h: this.fromCopies(this.copies === 1 ? tf.reshape(hNext, [-1, H]) : hNext) as tf.Tensor2D };
    });
  }

  /**
   * Unrolls over T steps (differentiable): xs [T, B, inputDim]; `resets` [T, B] with 1 where
   * the hidden state is zeroed before step t (an episode starts there); h0 [B, hiddenDim].
   * Returns outputs [T, B, outputDim]. Feed-forward networks run all T·B rows as one batch; the
   * recurrent part runs as one custom-gradient op (see gru-sequence.ts).
   */
  unroll(xs: tf.Tensor3D, resets: tf.Tensor2D, h0: tf.Tensor2D, options: { inputsAreData?: boolean } = {}): tf.Tensor3D {
    // xs and h0 that are data (observations and stored hidden states, not another network's
    // output) need no gradient: the first layer and the recurrence's first step skip computing it.
    const data = options.inputsAreData === true;
    return tf.tidy(() => {
      const [T, B, D] = xs.shape;
      const O = this.spec.outputDim;
      // Per-copy rows are [T·B/C] in (t, row-of-copy) order, so the sequence splits into T steps.
      const x = this.toCopies(tf.reshape(xs, [T * B, D]));
      if (!this.gru) return tf.reshape(this.fromCopies(this.feedForward(x, data)), [T, B, O]);
      const H = this.spec.hiddenDim;
      const C = this.copies;
      const rows = B / C;
      const z = dense(x, this.layers.fc1.w, this.layers.fc1.b, 'relu', data);
      // The input half of the gates for all T·B rows in one matmul; only the hidden half is sequential.
      const gi = dense(z, this.gru.wi, this.gru.bi);
      const timeMajor = <R extends tf.Tensor>(t: tf.Tensor, width: number): R =>
        (C === 1 ? tf.reshape(t, [T, 1, B, width]) : tf.transpose(tf.reshape(t, [C, T, rows, width]), [1, 0, 2, 3])) as R;
      const keep = timeMajor<tf.Tensor4D>(this.toCopies(tf.reshape(tf.sub(1, resets), [T * B, 1])), 1);
      const hs = gruSequence(timeMajor<tf.Tensor4D>(gi, 3 * H), keep, this.asCopies(this.toCopies(h0)), { wh: this.gru.wh, bh: this.gru.bh }, data);
      const hRows = C === 1 ? tf.reshape(hs, [T * B, H]) : tf.reshape(tf.transpose(hs, [1, 0, 2, 3]), [C, T * rows, H]);
      return tf.reshape(this.fromCopies(dense(hRows, this.layers.out.w, this.layers.out.b)), [T, B, O]);
    });
  }

  /** fc1 → ReLU → fc2 → ReLU → out, on rows as `toCopies` lays them out. */
  private feedForward<R extends tf.Tensor>(x: R, inputIsData = false): R {
    const { fc1, fc2, out } = this.layers;
    return dense(dense(dense(x, fc1.w, fc1.b, 'relu', inputIsData), fc2!.w, fc2!.b, 'relu'), out.w, out.b);
  }

  /**
   * Rows [R, D] (agent-fastest) as the layers take them: unchanged for shared weights, else
   * [C, R/C, D] so each agent's weight set multiplies its own rows in one batched matmul.
   */
  private toCopies(x: tf.Tensor2D): tf.Tensor2D | tf.Tensor3D {
    const C = this.copies;
    if (C === 1) return x;
    const [R, D] = x.shape;
    if (R % C !== 0) throw new Error(`AgentNetwork '${this.spec.role}': ${R} rows do not split over ${C} agents' weight sets (rows must be agent-fastest)`);
    return tf.transpose(tf.reshape(x, [R / C, C, D]), [1, 0, 2]) as tf.Tensor3D;
  }

  /** The inverse of `toCopies`: back to [R, width] rows, agent-fastest. */
  private fromCopies(y: tf.Tensor): tf.Tensor2D {
    if (this.copies === 1) return y as tf.Tensor2D;
    const [C, perCopy, width] = y.shape;
    return tf.reshape(tf.transpose(y, [1, 0, 2]), [C * perCopy, width]) as tf.Tensor2D;
  }

  /** `toCopies` rows as [C, rows, width] (adds the copy axis for shared weights). */
  private asCopies(x: tf.Tensor): tf.Tensor3D {
    return (x.rank === 3 ? x : tf.expandDims(x, 0)) as tf.Tensor3D;
  }

  /** Variables by stable name (role-relative, no instance prefix), for checkpoints and target copies. */
  namedVariables(): Record<string, tf.Variable> {
    const named = linearVariables(this.layers);
    if (this.gru) for (const [k, v] of Object.entries(this.gru)) named[`gru/${k}`] = v;
    return named;
  }
}
