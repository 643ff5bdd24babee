import * as tf from '@tensorflow/tfjs';
import { deriveSeed, seedToInt } from '../../runtime/core/rng';
import { torchUniform, xavierUniform } from './init';
import { type Linear, Module, createVariable, dense, linearVariables, uniqueScope } from './module';

export interface MlpSpec {
  inputDim: number;
  hiddenDims: readonly number[];
  outputDim: number;
  /** Initial weights depend on (seed, role) only, so equal seeds give equal networks. */
  seed: string;
  role: string;
  /**
   * `torch` (default): PyTorch's `nn.Linear` start; `xavier`: Xavier/Glorot weights (uniform,
   * the variance of `xavier_normal_`) and zero biases; `zeros` skips the random initialisation,
   * for a network whose weights are loaded next.
   */
  init?: 'torch' | 'xavier' | 'zeros';
}

/**
 * A ReLU MLP with a linear output layer, layers started as PyTorch's `nn.Linear` (uniform
 * ±1/√fan_in): CleanRL's SAC actor and critics. Layers are named `fc0`, `fc1`, ….
 */
export class Mlp extends Module {
  readonly spec: MlpSpec;
  private readonly layers: Linear[] = [];

  constructor(spec: MlpSpec) {
    super();
    this.spec = spec;
    const { inputDim, hiddenDims, outputDim, seed, role } = spec;
    const scope = uniqueScope('mlp', role);
    const sizes = [inputDim, ...hiddenDims, outputDim];
    for (let i = 0; i + 1 < sizes.length; i++) {
      const init = (shape: number[], part: string): tf.Variable => {
        const layerSeed = seedToInt(deriveSeed(seed, role, i, part));
        let initial: tf.Tensor;
        if (spec.init === 'zeros' || (spec.init === 'xavier' && part === 'b')) initial = tf.zeros(shape);
        else if (spec.init === 'xavier') initial = xavierUniform(sizes[i], sizes[i + 1], layerSeed);
        else initial = torchUniform(shape, sizes[i], layerSeed);
        return createVariable(initial, scope, `fc${i}/${part}`);
      };
      this.layers.push({ w: init([sizes[i], sizes[i + 1]], 'w'), b: init([sizes[i + 1]], 'b') });
    }
  }

  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      let h = x;
      this.layers.forEach(({ w, b }, i) => {
        const hidden = i + 1 < this.layers.length;
        if (hidden || w.shape[1] !== 1) {
          // One taped op per layer with a lean hand-written gradient (see `dense`).
          h = dense(h, w, b, hidden ? 'relu' : 'linear');
          return;
        }
        // A single output (a critic's Q) as multiply-and-sum: the matMul's gradient would be a
        // [B, 1]·[1, H] outer product, which the wasm backend runs ~10× slower than a broadcast multiply.
        h = tf.add(tf.sum(tf.mul(h, tf.reshape(w, [1, -1])), 1, true), b) as tf.Tensor2D;
      });
      return h;
    });
  }

  namedVariables(): Record<string, tf.Variable> {
    return linearVariables(Object.fromEntries(this.layers.map((layer, i) => [`fc${i}`, layer])));
  }
}
