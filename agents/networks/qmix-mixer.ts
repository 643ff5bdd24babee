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

  /**
   * `mix` with a hand-written backward, for a caller that differentiates it inside its own
   * `tf.customGrad` (QMIX's update): no op is put on the gradient tape, the hypernetworks' layers
   * that read the state run as two matmuls (those followed by a ReLU, and the rest; their
   * weights concatenated, which costs two calls and saves two per layer) and
   * `backward` returns the gradients of qs and of every variable. `out` belongs to the caller's
   * scope; the trace's tensors are kept (outside any tidy) until `disposeTrace`.
   */
  mixForBackward(qs: tf.Tensor2D, states: tf.Tensor2D): { out: tf.Tensor1D; trace: MixerTrace } {
    let trace: MixerTrace | undefined;
    const out = tf.tidy(() => {
      const { numAgents: A, embedDim: E } = this.spec;
      const N = qs.shape[0];
      const L = this.layers;
      const twoLayer = this.spec.hypernetLayers === 2;
      const reluGroup = twoLayer ? [L.w1Hidden, L.wFinalHidden, L.vHidden] : [L.vHidden];
      const linearGroup = twoLayer ? [L.b1] : [L.w1, L.wFinal, L.b1];
      const relu = denseGroup(states, reluGroup, 'relu');
      const linear = denseGroup(states, linearGroup, 'linear');
      let w1Pre: tf.Tensor2D;
      let wFinalPre: tf.Tensor2D;
      let hV: tf.Tensor2D;
      let second: Record<'w1' | 'wFinal', tf.Tensor2D> | undefined;
      const b1 = linear.outs[linear.outs.length - 1];
      if (twoLayer) {
        const [h1, hFinal, hv] = relu.outs;
        w1Pre = dense(h1, L.w1);
        wFinalPre = dense(hFinal, L.wFinal);
        hV = hv;
        second = { w1: h1, wFinal: hFinal };
      } else {
        [w1Pre, wFinalPre] = linear.outs;
        hV = relu.outs[0];
      }
      const v = dense(hV, L.v);
      const w1 = tf.reshape(tf.abs(w1Pre), [N, A, E]) as tf.Tensor3D;
      const qsByAgent = tf.reshape(qs, [N, A, 1]) as tf.Tensor3D;
      const hidden = tf.elu(tf.add(tf.sum(tf.mul(qsByAgent, w1), 1), b1)) as tf.Tensor2D;
      const wFinal = tf.abs(wFinalPre);
      trace = { states, relu, linear, w1Pre, wFinalPre, hV, second, w1, qsByAgent, hidden, wFinal };
      // The trace outlives this tidy (until disposeTrace); the caller's states are not ours to keep.
      for (const t of collectTensors({ ...trace, states: undefined })) tf.keep(t);
      return tf.add(tf.sum(tf.mul(hidden, wFinal), 1), tf.reshape(v, [N])) as tf.Tensor1D;
    });
    return { out, trace: trace! };
  }

  /** `mix` with the hypernetwork layers grouped as in `mixForBackward` (fewer kernel calls), for values that are not differentiated. */
  mixGrouped(qs: tf.Tensor2D, states: tf.Tensor2D): tf.Tensor1D {
    const { out, trace } = this.mixForBackward(qs, states);
    disposeTrace(trace);
    return out;
  }

  /** Gradients of Σ dOut·mix(qs, states) with respect to qs [N, A] and every variable (by stable name). */
  backward(trace: MixerTrace, dOut: tf.Tensor1D): { dqs: tf.Tensor2D; grads: Record<string, tf.Tensor> } {
    const { numAgents: A, embedDim: E } = this.spec;
    const N = dOut.shape[0];
    const L = this.layers;
    const grads: Record<string, tf.Tensor> = {};
    const d = tf.reshape(dOut, [N, 1]) as tf.Tensor2D;
    const dHidden = tf.mul(d, trace.wFinal);
    const dWFinalPre = tf.mul(tf.mul(d, trace.hidden), absGrad(trace.wFinalPre)) as tf.Tensor2D;
    const dHiddenPre = tf.engine().runKernel('EluGrad', { dy: dHidden, y: trace.hidden }) as tf.Tensor2D;
    const dHiddenPreByAgent = tf.reshape(dHiddenPre, [N, 1, E]);
    const dqs = tf.sum(tf.mul(trace.w1, dHiddenPreByAgent), 2) as tf.Tensor2D;
    const dW1Pre = tf.mul(tf.reshape(tf.mul(trace.qsByAgent, dHiddenPreByAgent), [N, A * E]), absGrad(trace.w1Pre)) as tf.Tensor2D;
    const dhV = denseBackward(trace.hV, L.v, d, grads, 'v');
    if (trace.second) {
      const dh1 = denseBackward(trace.second.w1, L.w1, dW1Pre, grads, 'w1');
      const dhFinal = denseBackward(trace.second.wFinal, L.wFinal, dWFinalPre, grads, 'wFinal');
      denseGroupBackward(trace.states, trace.relu, [dh1, dhFinal, dhV], grads, ['w1Hidden', 'wFinalHidden', 'vHidden']);
      denseGroupBackward(trace.states, trace.linear, [dHiddenPre], grads, ['b1']);
    } else {
      denseGroupBackward(trace.states, trace.relu, [dhV], grads, ['vHidden']);
      denseGroupBackward(trace.states, trace.linear, [dW1Pre, dWFinalPre, dHiddenPre], grads, ['w1', 'wFinal', 'b1']);
    }
    return { dqs, grads };
  }

  /** Variables by stable name (no instance prefix), for checkpoints and target copies. */
  namedVariables(): Record<string, tf.Variable> {
    return linearVariables(this.layers);
  }
}

/** What `QMixer.mixForBackward` keeps for `backward`. */
export interface MixerTrace {
  states: tf.Tensor2D;
  relu: DenseGroupTrace;
  linear: DenseGroupTrace;
  w1Pre: tf.Tensor2D;
  wFinalPre: tf.Tensor2D;
  hV: tf.Tensor2D;
  /** The inputs of the second hypernetwork layers (two-layer hypernetworks only). */
  second?: Record<'w1' | 'wFinal', tf.Tensor2D>;
  /** |W1| as [N, A, E]. */
  w1: tf.Tensor3D;
  qsByAgent: tf.Tensor3D;
  hidden: tf.Tensor2D;
  wFinal: tf.Tensor2D;
}

/** Disposes a trace's tensors except the caller's `states`. */
export function disposeTrace(trace: MixerTrace): void {
  const { states, ...own } = trace;
  void states;
  tf.dispose(collectTensors(own));
}

interface DenseGroupTrace {
  /** The layers' weights side by side [in, Σ out] (the layer's own variable when alone). */
  w: tf.Tensor2D;
  /** The activations [N, Σ out], and per layer. */
  y: tf.Tensor2D;
  outs: tf.Tensor2D[];
  relu: boolean;
}

/** d|x|/dx as tfjs's own Abs gradient takes it (−1 at 0, where sign() would give 0). */
function absGrad(x: tf.Tensor): tf.Tensor {
  return tf.step(x, -1);
}

function collectTensors(x: unknown, into: tf.Tensor[] = []): tf.Tensor[] {
  if (x instanceof tf.Tensor) {
    if (!(x instanceof tf.Variable)) into.push(x);
  } else if (Array.isArray(x)) x.forEach((v) => collectTensors(v, into));
  else if (x && typeof x === 'object') Object.values(x).forEach((v) => collectTensors(v, into));
  return into;
}

// Plain matMul + add rather than tf.fused.matMul: the fused op takes rank-3 operands, and its
// reshapes and custom-gradient wrapper cost more kernel calls than the add it saves.
function dense(x: tf.Tensor2D, layer: Linear): tf.Tensor2D {
  return affine(x, layer);
}

/** Several layers reading the same input as one matmul, one bias add and one activation. */
function denseGroup(x: tf.Tensor2D, layers: Linear[], activation: 'relu' | 'linear'): DenseGroupTrace {
  const alone = layers.length === 1;
  const w = (alone ? layers[0].w : tf.concat(layers.map((l) => l.w), 1)) as tf.Tensor2D;
  const b = alone ? layers[0].b : tf.concat(layers.map((l) => l.b), 0);
  const pre = tf.add(tf.matMul(x, w), b) as tf.Tensor2D;
  const y = activation === 'relu' ? tf.relu(pre) : pre;
  const outs = alone ? [y] : (tf.split(y, layers.map((l) => l.w.shape[1]!), 1) as tf.Tensor2D[]);
  return { w, y, outs, relu: activation === 'relu' };
}

/** Adds the gradients of one layer y = x·W + b to `grads` under `name`; returns dL/dx. */
function denseBackward(x: tf.Tensor2D, layer: Linear, dy: tf.Tensor2D, grads: Record<string, tf.Tensor>, name: string): tf.Tensor2D {
  grads[`${name}/w`] = tf.matMul(x, dy, true, false);
  grads[`${name}/b`] = tf.sum(dy, 0);
  return tf.matMul(dy, layer.w as tf.Tensor2D, false, true);
}

/** Adds the gradients of a `denseGroup`'s layers (names in its order) given dL/d(each output). */
function denseGroupBackward(x: tf.Tensor2D, group: DenseGroupTrace, dOuts: tf.Tensor2D[], grads: Record<string, tf.Tensor>, names: string[]): void {
  const alone = dOuts.length === 1;
  let dy = alone ? dOuts[0] : (tf.concat(dOuts, 1) as tf.Tensor2D);
  if (group.relu) dy = tf.mul(dy, tf.step(group.y));
  const dw = tf.matMul(x, dy, true, false);
  const db = tf.sum(dy, 0);
  const widths = group.outs.map((o) => o.shape[1]);
  const dws = alone ? [dw] : tf.split(dw, widths, 1);
  const dbs = alone ? [db] : tf.split(db, widths, 0);
  names.forEach((n, i) => {
    grads[`${n}/w`] = dws[i];
    grads[`${n}/b`] = dbs[i];
  });
}
