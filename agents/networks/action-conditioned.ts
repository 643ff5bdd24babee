import * as tf from '@tensorflow/tfjs';
import { deriveSeed, seedToInt } from '../../runtime/core/rng';
import { torchUniform } from './init';
import { type Linear, Module, createVariable, gruUpdate, linearVariables, uniqueScope } from './module';
import { Mlp } from './mlp';

/*
 * The two halves of MTMA's action-conditioned Q-network (`trainers/mtma.ts`): a task's
 * PERCEPTION layers turn (agent input ⊕ one-hot of a candidate action) into a hidden vector, and
 * the DECISION network (DecL), shared by every task, scores that vector with one number. The
 * Q-vector of an agent is the DecL's score of each candidate, so the DecL never sees a task's
 * observation or action count — only the hidden size — and tasks of any shape share it.
 */

export interface PerceptionSpec {
  /** Width of an agent's input row without the candidate action (obs ⊕ last action ⊕ agent id). */
  inputDim: number;
  /** Candidate actions K; the candidate's one-hot is the last K inputs of the first layer. */
  numActions: number;
  hiddenDim: number;
  /** GRU cell after the first layer (one hidden state per agent and candidate), else a second ReLU layer. */
  recurrent: boolean;
  /** Initial weights depend on (seed, role) only. */
  seed: string;
  role: string;
  /** `zeros` skips the random initialisation, for a network whose weights are loaded next. */
  init?: 'torch' | 'zeros';
}

/**
 * `fc1 → ReLU → GRUCell` (or `fc1 → ReLU → fc2 → ReLU`), run for every candidate action of every
 * row at once. Layers start as PyTorch's `nn.Linear`/`nn.GRUCell` do (uniform ±1/√fan_in), as
 * the reference's do.
 *
 * fc1's weight is [inputDim + K, H]; since the candidate part of the input is a one-hot, its
 * contribution is a row of the weight, added by broadcasting instead of tiling the input K
 * times. Likewise every candidate of a row starts from the same hidden state, so the GRU's
 * hidden-side matmul runs once per row, not once per candidate.
 */
export class PerceptionNetwork extends Module {
  readonly spec: PerceptionSpec;
  private readonly fc1: Linear;
  private readonly fc2?: Linear;
  private readonly gru?: { wi: tf.Variable; wh: tf.Variable; bi: tf.Variable; bh: tf.Variable };

  constructor(spec: PerceptionSpec) {
    super();
    this.spec = spec;
    const { inputDim: D, numActions: K, hiddenDim: H, seed, role } = spec;
    const scope = uniqueScope('perception', role);
    const init = (shape: number[], fanIn: number, name: string): tf.Variable =>
      createVariable(spec.init === 'zeros' ? tf.zeros(shape) : torchUniform(shape, fanIn, seedToInt(deriveSeed(seed, role, name))), scope, name);
    this.fc1 = { w: init([D + K, H], D + K, 'fc1/w'), b: init([H], D + K, 'fc1/b') };
    if (spec.recurrent) {
      this.gru = { wi: init([H, 3 * H], H, 'gru/wi'), wh: init([H, 3 * H], H, 'gru/wh'), bi: init([3 * H], H, 'gru/bi'), bh: init([3 * H], H, 'gru/bh') };
    } else {
      this.fc2 = { w: init([H, H], H, 'fc2/w'), b: init([H], H, 'fc2/b') };
    }
  }

  get recurrent(): boolean {
    return this.spec.recurrent;
  }

  /**
   * One step: x [R, inputDim] and h [R, H] → every candidate's next hidden state (or feature)
   * [R, K, H]. Feed-forward networks ignore h.
   */
  candidates(x: tf.Tensor2D, h: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [R] = x.shape;
      const z = this.firstLayer(x);
      return this.body(z, h, R);
    });
  }

  /**
   * Unrolls over T steps (differentiable): xs [T, R, inputDim], `taken` [T, R, K] one-hot of the
   * action each row took at t (its candidate's hidden state is the one carried to t + 1), h0
   * [R, H]. Returns every candidate's hidden state or feature per step, [T, R, K, H]. Episodes
   * must start at row 0 (the hidden state is never reset inside the unroll).
   */
  unroll(xs: tf.Tensor3D, taken: tf.Tensor3D, h0: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      const [T, R, D] = xs.shape;
      const { numActions: K, hiddenDim: H } = this.spec;
      const z = this.firstLayer(tf.reshape(xs, [T * R, D]));
      if (!this.gru) return tf.reshape(this.body(z, h0, T * R), [T, R, K, H]);
      const g = this.gru;
      // The input half of the gates for all T·R·K rows in one matmul; only the hidden half is sequential.
      const inputGates = tf.unstack(tf.reshape(tf.add(tf.matMul(tf.reshape(z, [T * R * K, H]), g.wi as tf.Tensor2D), g.bi), [T, R, K, 3 * H])) as tf.Tensor3D[];
      const keep = tf.unstack(tf.expandDims(taken, 3)) as tf.Tensor3D[];
      let h = h0;
      const hs: tf.Tensor3D[] = [];
      for (let t = 0; t < T; t++) {
        const next = this.gruFromGates(inputGates[t], h);
        hs.push(next);
        h = tf.sum(tf.mul(next, keep[t]), 1) as tf.Tensor2D;
      }
      return tf.stack(hs) as tf.Tensor4D;
    });
  }

  /** ReLU(fc1(x ⊕ onehot(a))) for every candidate a: [R, K, H]. */
  private firstLayer(x: tf.Tensor2D): tf.Tensor3D {
    const { inputDim: D, numActions: K, hiddenDim: H } = this.spec;
    const wx = tf.slice(this.fc1.w, [0, 0], [D, H]) as tf.Tensor2D;
    const wa = tf.slice(this.fc1.w, [D, 0], [K, H]);
    const fromInput = tf.expandDims(tf.matMul(x, wx), 1);
    return tf.relu(tf.add(tf.add(fromInput, tf.expandDims(wa, 0)), this.fc1.b)) as tf.Tensor3D;
  }

  /** What follows the first layer, for z [R, K, H] and one hidden state per row h [R, H]. */
  private body(z: tf.Tensor3D, h: tf.Tensor2D, R: number): tf.Tensor3D {
    const { numActions: K, hiddenDim: H } = this.spec;
    if (this.fc2) {
      const out = tf.relu(tf.add(tf.matMul(tf.reshape(z, [R * K, H]), this.fc2.w as tf.Tensor2D), this.fc2.b));
      return tf.reshape(out, [R, K, H]);
    }
    const g = this.gru!;
    const gi = tf.reshape(tf.add(tf.matMul(tf.reshape(z, [R * K, H]), g.wi as tf.Tensor2D), g.bi), [R, K, 3 * H]) as tf.Tensor3D;
    return this.gruFromGates(gi, h);
  }

  /** PyTorch's GRUCell given the input gates gi [R, K, 3H] and the rows' shared hidden state h [R, H]. */
  private gruFromGates(gi: tf.Tensor3D, h: tf.Tensor2D): tf.Tensor3D {
    const g = this.gru!;
    const gh = tf.expandDims(tf.add(tf.matMul(h, g.wh as tf.Tensor2D), g.bh), 1);
    return gruUpdate(gi, gh, tf.expandDims(h, 1), this.spec.hiddenDim);
  }

  namedVariables(): Record<string, tf.Variable> {
    const named = linearVariables({ fc1: this.fc1, ...(this.fc2 ? { fc2: this.fc2 } : {}) });
    if (this.gru) for (const [k, v] of Object.entries(this.gru)) named[`gru/${k}`] = v;
    return named;
  }
}

export interface DecisionSpec {
  /** The perception layers' hidden size (the only size the DecL knows). */
  inputDim: number;
  hiddenDim: number;
  seed: string;
  init?: 'torch' | 'zeros';
}

/** The shared decision network: Linear(H → hidden) → ReLU → Linear(→ 1); variables `fc0/*`, `fc1/*`. */
export class DecisionNetwork extends Mlp {
  constructor(readonly decision: DecisionSpec) {
    super({ inputDim: decision.inputDim, hiddenDims: [decision.hiddenDim], outputDim: 1, seed: decision.seed, role: 'decl', init: decision.init ?? 'torch' });
  }

  /** Scores every candidate's hidden state: features [..., K, H] → Q [..., K]. */
  score(features: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const shape = features.shape;
      const H = shape[shape.length - 1];
      const q = this.forward(tf.reshape(features, [-1, H]) as tf.Tensor2D);
      return tf.reshape(q, shape.slice(0, -1));
    });
  }
}
