import * as tf from '@tensorflow/tfjs';
import { deriveSeed, seedToInt } from '../../runtime/core/rng';
import { torchUniform } from './init';
import { type Linear, Module, affine, createVariable, linearVariables, uniqueScope } from './module';

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
 * QMIX's mixing network: Q_tot(q, s) = elu(q·|W1(s)| + b1(s))·|W2(s)| + V(s), batched over
 * rows. W1 and W2 are one linear layer of s, or two with a ReLU between (`hypernetLayers`); V is
 * s → embed → ReLU → 1. Absolute weights keep ∂Q_tot/∂Q_a ≥ 0. Structured as EPyMARL's
 * `QMixer`, with layers started as PyTorch's `nn.Linear` (uniform ±1/√fan_in).
 */
export class QMixer extends Module {
  readonly spec: QMixerSpec;
  private readonly layers: Record<string, Linear> = {};

  constructor(spec: QMixerSpec) {
    super();
    this.spec = spec;
    const { numAgents: A, stateDim: S, embedDim: E, hypernetEmbed: Hh } = spec;
    const scope = uniqueScope('qmix-mixer');
    const linear = (name: string, inDim: number, outDim: number): Linear => {
      const init = (shape: number[], part: string) => createVariable(tf.tidy(() => torchUniform(shape, inDim, seedToInt(deriveSeed(spec.seed, name, part)))), scope, `${name}/${part}`);
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
    return linearVariables(this.layers);
  }
}
