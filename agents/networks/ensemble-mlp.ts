import * as tf from '@tensorflow/tfjs';
import type { NamedTensorData } from '../../runtime/core/checkpoint-format';
import type { Mlp } from './mlp';
import { Module, createVariable, uniqueScope } from './module';

/*
 * K ReLU MLPs of one shape (SAC's twin critics) held as one network: every layer's weights
 * stacked [K, in, out] and biases [K, 1, out], so a layer of all members is one batched matMul,
 * one add and one ReLU, however many members there are.
 *
 * Its gradients are written by hand (`backward`) rather than taped: a learner that knows its
 * loss's gradient at the output runs the backward pass as a handful of kernels, without the
 * tape's saved-tensor copies. The members' layout as separate `Mlp`s (`fc0/w` [in, out],
 * `fc0/b` [out]) is what checkpoints hold; `memberTensors` and `assignMembers` convert.
 */

/** What `forward` keeps for `backward`: each layer's input (the shared or per-member input, then the ReLU outputs). */
export interface EnsembleActivations {
  inputs: tf.Tensor[];
}

export class EnsembleMlp extends Module {
  readonly members: number;
  /** Widths: input, hidden…, output. */
  readonly sizes: readonly number[];
  private readonly weights: tf.Variable[] = [];
  private readonly biases: tf.Variable[] = [];

  /** The members' current weights stacked, in order (the sources are left as they are). */
  constructor(members: readonly Mlp[], role: string) {
    super();
    if (members.length === 0) throw new Error('EnsembleMlp: needs at least one member');
    const first = members[0].spec;
    this.members = members.length;
    this.sizes = [first.inputDim, ...first.hiddenDims, first.outputDim];
    const scope = uniqueScope('ensemble-mlp', role);
    for (let i = 0; i + 1 < this.sizes.length; i++) {
      const part = (p: 'w' | 'b') => tf.stack(members.map((m) => m.namedVariables()[`fc${i}/${p}`]));
      this.weights.push(createVariable(part('w'), scope, `fc${i}/w`));
      this.biases.push(createVariable(tf.tidy(() => tf.expandDims(part('b'), 1)), scope, `fc${i}/b`));
    }
  }

  namedVariables(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    this.weights.forEach((w, i) => {
      out[`fc${i}/w`] = w;
      out[`fc${i}/b`] = this.biases[i];
    });
    return out;
  }

  /** One member's variable shapes as a separate `Mlp` has them. */
  memberShapes(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (let i = 0; i + 1 < this.sizes.length; i++) {
      out[`fc${i}/w`] = [this.sizes[i], this.sizes[i + 1]];
      out[`fc${i}/b`] = [this.sizes[i + 1]];
    }
    return out;
  }

  /**
   * All members' outputs [K, N, out] for inputs x: [N, in] shared by all members, or [K, N, in].
   * Not tidied: the caller's tidy owns the activations it keeps for `backward`.
   */
  forward(x: tf.Tensor): { out: tf.Tensor3D; saved: EnsembleActivations } {
    const inputs: tf.Tensor[] = [];
    let h = x;
    const last = this.weights.length - 1;
    this.weights.forEach((w, i) => {
      inputs.push(h);
      // A [N, in] input broadcasts against the [K, in, out] weights inside the one matMul.
      const z = tf.add(tf.matMul(h, w), this.biases[i]);
      h = i < last ? tf.relu(z) : z;
    });
    return { out: h as tf.Tensor3D, saved: { inputs } };
  }

  /**
   * Backpropagates dOut (∂loss/∂out, [K, N, out]) through the members: the weight gradients by
   * variable name when `weights`, and ∂loss/∂x restricted to input columns [from, in) when
   * `inputFrom` is given, [K, N, in − from] (summed over members by the caller if x was shared).
   */
  backward(saved: EnsembleActivations, dOut: tf.Tensor, options: { weights: boolean; inputFrom?: number }): { grads: Record<string, tf.Tensor>; dInput?: tf.Tensor3D } {
    const grads: Record<string, tf.Tensor> = {};
    let g = dOut;
    let dInput: tf.Tensor3D | undefined;
    for (let i = this.weights.length - 1; i >= 0; i--) {
      const a = saved.inputs[i];
      const w = this.weights[i];
      if (options.weights) {
        // A shared [N, in] input broadcasts here too: aᵀ·g per member.
        grads[`fc${i}/w`] = tf.matMul(a, g, true, false);
        grads[`fc${i}/b`] = tf.sum(g, 1, true);
      }
      if (i > 0) {
        const K = this.members;
        // A single output's g·wᵀ is an outer product, which wasm runs far slower as a matMul than as a broadcast multiply.
        const dA = this.sizes[i + 1] === 1 ? tf.mul(g, tf.reshape(w, [K, 1, this.sizes[i]])) : tf.matMul(g, w, false, true);
        // ReLU's gradient: through where its output is positive.
        g = tf.mul(dA, tf.step(a));
      } else if (options.inputFrom !== undefined) {
        const from = options.inputFrom;
        const rows = from === 0 ? w : tf.slice(w, [0, from, 0], [-1, this.sizes[0] - from, -1]);
        dInput = tf.matMul(g, rows, false, true) as tf.Tensor3D;
      }
    }
    return { grads, dInput };
  }

  /** Member k's variables in a separate `Mlp`'s names and shapes; the caller disposes them. */
  memberTensors(k: number): Record<string, tf.Tensor> {
    return tf.tidy(() => {
      const out: Record<string, tf.Tensor> = {};
      const shapes = this.memberShapes();
      for (const [name, v] of Object.entries(this.namedVariables())) out[name] = tf.reshape(tf.slice(v, [k], [1]), shapes[name]);
      return out;
    });
  }

  /**
   * Loads every member from stored `Mlp` variables (`data[k]` for member k), checking every
   * tensor is there with its member shape before anything is assigned; errors name the member
   * by `labels[k]`.
   */
  assignMembers(data: readonly NamedTensorData[], labels: readonly string[]): void {
    if (data.length !== this.members) throw new Error(`EnsembleMlp: ${data.length} members' data for ${this.members} members`);
    const shapes = this.memberShapes();
    for (let k = 0; k < this.members; k++) {
      for (const [name, shape] of Object.entries(shapes)) {
        const s = data[k][name];
        if (!s) throw new Error(`model '${labels[k]}': checkpoint has no tensor '${name}'`);
        if (s.dtype !== 'float32' || s.shape.length !== shape.length || s.shape.some((d, j) => d !== shape[j])) {
          throw new Error(`model '${labels[k]}': checkpoint tensor '${name}' is ${s.dtype}[${s.shape}], variable is float32[${shape}]`);
        }
      }
    }
    tf.tidy(() => {
      for (const [name, v] of Object.entries(this.namedVariables())) {
        const parts = data.map((d) => {
          const s = d[name];
          const aligned = new Uint8Array(s.data.byteLength);
          aligned.set(s.data);
          return new Float32Array(aligned.buffer);
        });
        const flat = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          flat.set(p, at);
          at += p.length;
        }
        v.assign(tf.tensor(flat, v.shape, 'float32'));
      }
    });
  }
}
