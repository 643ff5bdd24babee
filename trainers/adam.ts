import * as tf from '@tensorflow/tfjs';
import { type NamedTensorData, type OptimizerState, assignTensors, captureTensors, restoreTensors } from '../runtime/core/checkpoint-format';
import { FUSED_ADAM, FUSED_GLOBAL_NORM_CLIP, type FusedAdamAttrs, type GlobalNormClipAttrs, fusedOptimizerAvailable } from '../runtime/core/wasm-fused-optimizer';

/**
 * Adam (Kingma & Ba 2015) over named variables: the one optimiser every learner uses, with a
 * state that restores exactly (the step count, the m/v slots and, where they are kept, the
 * running β-powers), so a resumed run takes bit-identical steps.
 *
 * Two formulations of the same update, which differ only in float32 rounding:
 *  - `pytorch` (default): PyTorch's. The bias corrections come from the step count in float64,
 *    p ← p − lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + ε).
 *  - `tfjs`: tfjs's `AdamOptimizer`, m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ), p ← p − lr · m̂/(√v̂ + ε), with
 *    β1ᵗ, β2ᵗ kept as float32 running products. QMIX/VDN/IQL keep it because their published
 *    results were produced with it; tfjs's own optimiser cannot be restored bit-exactly (its
 *    restore recomputes the β-powers with pow()), which this one can.
 */
export interface AdamSettings {
  lr: number;
  beta1?: number;
  beta2?: number;
  /** PyTorch's default 1e-8 unless given. */
  epsilon?: number;
  formulation?: 'pytorch' | 'tfjs';
  /**
   * Decoupled weight decay (AdamW, Loshchilov & Hutter 2019, as PyTorch's `AdamW`): every step
   * first shrinks p by lr · weightDecay · p. 0 (default) is plain Adam.
   */
  weightDecay?: number;
}

export const ADAM_CLASS_NAME = 'troupe.Adam';
/** MAPPO's name for the same optimiser state before it used this class; its checkpoints still restore. */
const LEGACY_CLASS_NAMES: readonly string[] = ['troupe.MappoAdam'];
/** What tfjs's AdamOptimizer calls itself in a checkpoint (QMIX's optimiser before it used this class). */
const TFJS_CLASS_NAME = 'Adam';

export class Adam {
  step = 0;
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly formulation: 'pytorch' | 'tfjs';
  readonly weightDecay: number;
  /** Parameter names in update order, and each parameter's element count. */
  private readonly names: string[];
  private readonly sizes: number[];
  /**
   * The first and second moments of all parameters as two flat vectors (the parameters'
   * elements in name order), so one step is one kernel on wasm and one set of element-wise ops
   * elsewhere. Checkpoints still hold them per parameter (`${name}/m`, `${name}/v`).
   */
  private readonly moments: { m: tf.Variable; v: tf.Variable };
  /** `tfjs` formulation: β1ᵗ⁺¹ and β2ᵗ⁺¹ as float32 scalars (the next step's bias corrections). */
  private readonly powers?: { beta1: tf.Variable; beta2: tf.Variable };

  /** `params` by stable name: the names are the checkpoint keys of the slots, and their order the order of updates. */
  constructor(
    settings: AdamSettings,
    private readonly params: Record<string, tf.Variable>,
  ) {
    this.lr = settings.lr;
    this.beta1 = settings.beta1 ?? 0.9;
    this.beta2 = settings.beta2 ?? 0.999;
    this.epsilon = settings.epsilon ?? 1e-8;
    this.formulation = settings.formulation ?? 'pytorch';
    this.weightDecay = settings.weightDecay ?? 0;
    if (!(this.weightDecay >= 0)) throw new Error(`Adam: weightDecay must be ≥ 0, got ${settings.weightDecay}`);
    if (this.weightDecay > 0 && this.formulation === 'tfjs') throw new Error('Adam: weight decay is only implemented for the pytorch formulation');
    this.names = Object.keys(params);
    this.sizes = this.names.map((name) => params[name].size);
    const total = this.sizes.reduce((a, b) => a + b, 0);
    this.moments = tf.tidy(() => ({ m: tf.variable(tf.zeros([total]), false), v: tf.variable(tf.zeros([total]), false) }));
    if (this.formulation === 'tfjs') {
      this.powers = tf.tidy(() => ({ beta1: tf.variable(tf.scalar(this.beta1), false), beta2: tf.variable(tf.scalar(this.beta2), false) }));
    }
  }

  /**
   * One step against `grads`, keyed like the parameters (a missing gradient is an error),
   * each multiplied by `scale` first when given (e.g. a global grad-norm clipping factor).
   * `lrFactor` multiplies the learning rate of this step (a warmup or decay schedule, as
   * PyTorch's LambdaLR); 1 unless given.
   */
  apply(grads: Record<string, tf.Tensor>, scale?: tf.Scalar, lrFactor = 1): void {
    const ordered = this.names.map((name) => {
      const g = grads[name];
      if (!g) throw new Error(`Adam: no gradient for parameter '${name}'`);
      const p = this.params[name];
      if (g.rank !== p.rank || g.shape.some((d, i) => d !== p.shape[i])) throw new Error(`Adam: the gradient for parameter '${name}' has shape [${g.shape}], the parameter [${p.shape}]`);
      return g;
    });
    this.step++;
    const lr = this.lr * lrFactor;
    const step: StepConstants = {
      lr,
      stepSize: lr / (1 - this.beta1 ** this.step),
      decay: 1 - lr * this.weightDecay,
      bc2Sqrt: Math.sqrt(1 - this.beta2 ** this.step),
    };
    const float32 = (t: tf.Tensor): boolean => t.dtype === 'float32';
    const fused = fusedOptimizerAvailable() && ordered.every(float32) && this.names.every((n) => float32(this.params[n])) && (!scale || (float32(scale) && scale.size === 1));
    tf.tidy(() => (fused ? this.applyFused(ordered, scale, step) : this.applyFlat(ordered, scale, step)));
  }

  /** The step as one wasm kernel (runtime/core/wasm-fused-optimizer.ts), same numbers as applyFlat. */
  private applyFused(grads: tf.Tensor[], scale: tf.Scalar | undefined, step: StepConstants): void {
    const { m, v } = this.moments;
    const inputs: tf.NamedTensorMap = { m, v };
    this.names.forEach((name, i) => {
      inputs[`param${i}`] = this.params[name];
      inputs[`grad${i}`] = grads[i];
    });
    if (scale) inputs.scale = scale;
    if (this.powers) {
      inputs.beta1Power = this.powers.beta1;
      inputs.beta2Power = this.powers.beta2;
    }
    const attrs: FusedAdamAttrs = {
      count: this.names.length,
      formulation: this.formulation,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      decoupledDecay: this.weightDecay > 0,
      ...step,
    };
    const outs = tf.engine().runKernel<tf.Tensor[]>(FUSED_ADAM, inputs, attrs as unknown as tf.NamedAttrMap);
    const count = this.names.length;
    this.names.forEach((name, i) => this.params[name].assign(outs[i]));
    m.assign(outs[count] as tf.Tensor1D);
    v.assign(outs[count + 1] as tf.Tensor1D);
    if (this.powers) {
      this.powers.beta1.assign(outs[count + 2]);
      this.powers.beta2.assign(outs[count + 3]);
    }
  }

  /**
   * The step as tf ops over all parameters at once: the gradients and parameters concatenated
   * flat, one set of element-wise ops (the per-tensor Adam's, in its order), one split back.
   */
  private applyFlat(grads: tf.Tensor[], scale: tf.Scalar | undefined, step: StepConstants): void {
    const { beta1, beta2, epsilon } = this;
    const { m, v } = this.moments;
    const powers = this.powers;
    if (this.names.length > 0) {
      const raw = flatten(grads);
      const g = scale ? tf.mul(raw, scale) : raw;
      const p = flatten(this.names.map((name) => this.params[name]));
      const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
      const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
      m.assign(m1);
      v.assign(v1);
      let p1: tf.Tensor;
      if (powers) {
        const mHat = tf.div(m1, tf.sub(1, powers.beta1));
        const vHat = tf.div(v1, tf.sub(1, powers.beta2));
        p1 = tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), -step.lr), p);
      } else {
        const decayed = this.weightDecay > 0 ? tf.mul(p, step.decay) : p;
        p1 = tf.sub(decayed, tf.mul(step.stepSize, tf.div(m1, tf.add(tf.div(tf.sqrt(v1), step.bc2Sqrt), epsilon))));
      }
      const pieces = this.unflatten(p1);
      this.names.forEach((name) => this.params[name].assign(pieces[name]));
    }
    if (powers) {
      powers.beta1.assign(tf.mul(powers.beta1, beta1));
      powers.beta2.assign(tf.mul(powers.beta2, beta2));
    }
  }

  /** A flat vector cut back into tensors shaped like the parameters, by name. */
  private unflatten(flat: tf.Tensor): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    if (this.names.length === 0) return out;
    const pieces = this.names.length === 1 ? [flat] : tf.split(flat, this.sizes);
    this.names.forEach((name, i) => {
      const shape = this.params[name].shape;
      out[name] = shape.length === 1 ? pieces[i] : tf.reshape(pieces[i], shape);
    });
    return out;
  }

  async capture(): Promise<OptimizerState> {
    const named: Record<string, tf.Tensor> = tf.tidy(() => {
      const out: Record<string, tf.Tensor> = {};
      const ms = this.unflatten(this.moments.m);
      const vs = this.unflatten(this.moments.v);
      for (const name of this.names) {
        out[`${name}/m`] = ms[name];
        out[`${name}/v`] = vs[name];
      }
      return out;
    });
    if (this.powers) {
      named['beta1_power'] = this.powers.beta1;
      named['beta2_power'] = this.powers.beta2;
    }
    const iter = tf.scalar(this.step, 'int32');
    try {
      const tensors = await captureTensors({ iter, ...named });
      return {
        className: ADAM_CLASS_NAME,
        config: { learningRate: this.lr, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, formulation: this.formulation },
        weights: Object.entries(tensors).map(([name, tensor]) => ({ name, tensor })),
      };
    } finally {
      iter.dispose();
      // A single 1-D parameter's slots are the flat moments themselves, which stay.
      const { m, v } = this.moments;
      for (const name of this.names) tf.dispose([named[`${name}/m`], named[`${name}/v`]].filter((t) => t !== m && t !== v));
    }
  }

  /**
   * Loads a captured state; `who` prefixes errors (e.g. "sac.restoreState: optimizer 'q'").
   * A tfjs AdamOptimizer's state (QMIX checkpoints of format 2) is read too: its slots come by
   * position in parameter order, and its running β-powers, which it did not save, from
   * `legacyPowers` (what QMIX stored beside it).
   */
  restore(state: OptimizerState, who: string, legacyPowers?: unknown): void {
    if (state.className === TFJS_CLASS_NAME) return this.restoreTfjs(state, who, legacyPowers);
    if (state.className !== ADAM_CLASS_NAME && !LEGACY_CLASS_NAMES.includes(state.className)) throw new Error(`${who} is a ${state.className}, expected ${ADAM_CLASS_NAME}`);
    const stored = typeof state.config.formulation === 'string' ? state.config.formulation : 'pytorch';
    if (stored !== this.formulation) throw new Error(`${who} was saved with the ${stored} formulation, this optimiser uses ${this.formulation}`);
    const byName: NamedTensorData = {};
    for (const w of state.weights) byName[w.name] = w.tensor;
    if (!byName.iter) throw new Error(`${who} has no 'iter' weight`);
    const extra: Record<string, tf.Variable> = {};
    if (this.powers) {
      extra['beta1_power'] = this.powers.beta1;
      extra['beta2_power'] = this.powers.beta2;
    }
    this.assignMoments(who, byName, extra);
    this.step = readIter(byName);
  }

  /**
   * Assigns the per-parameter moments `${name}/m`, `${name}/v` of `byName` (and the variables
   * of `extra` by their keys) after checking all of them, as one checkpoint load: on an error
   * nothing has changed.
   */
  private assignMoments(who: string, byName: NamedTensorData, extra: Record<string, tf.Variable>): void {
    const perParameter = tf.tidy(() => this.names.map((name) => ({ m: tf.variable(tf.zerosLike(this.params[name]), false), v: tf.variable(tf.zerosLike(this.params[name]), false) })));
    try {
      const targets: Record<string, tf.Variable> = {};
      this.names.forEach((name, i) => {
        targets[`${name}/m`] = perParameter[i].m;
        targets[`${name}/v`] = perParameter[i].v;
      });
      try {
        assignTensors({ ...targets, ...extra }, byName);
      } catch (err) {
        throw new Error(`${who}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (this.names.length === 0) return;
      tf.tidy(() => {
        this.moments.m.assign(flatten(perParameter.map((s) => s.m)) as tf.Tensor1D);
        this.moments.v.assign(flatten(perParameter.map((s) => s.v)) as tf.Tensor1D);
      });
    } finally {
      for (const { m, v } of perParameter) tf.dispose([m, v]);
    }
  }

  private restoreTfjs(state: OptimizerState, who: string, legacyPowers: unknown): void {
    if (!this.powers) throw new Error(`${who} is tfjs's Adam, which only the tfjs formulation continues`);
    const [iterWeight, ...moments] = state.weights;
    if (!iterWeight || iterWeight.name !== 'iter') throw new Error(`${who} has no 'iter' weight first`);
    const names = this.names;
    // An optimiser that never stepped has no moments yet: they are zero.
    if (moments.length !== 0 && moments.length !== 2 * names.length) {
      throw new Error(`${who} holds ${moments.length / 2} parameters' moments, this learner has ${names.length}`);
    }
    if (moments.length !== 0) {
      const byName: NamedTensorData = {};
      names.forEach((name, i) => {
        byName[`${name}/m`] = moments[i].tensor;
        byName[`${name}/v`] = moments[names.length + i].tensor;
      });
      this.assignMoments(who, byName, {});
    }
    this.step = readIter({ iter: iterWeight.tensor });
    const powers = this.powers;
    tf.tidy(() => {
      if (Array.isArray(legacyPowers) && legacyPowers.length === 2 && legacyPowers.every((p) => typeof p === 'number')) {
        powers.beta1.assign(tf.scalar(legacyPowers[0] as number));
        powers.beta2.assign(tf.scalar(legacyPowers[1] as number));
      } else {
        // What tfjs's own restore does.
        powers.beta1.assign(tf.pow(this.beta1, this.step + 1));
        powers.beta2.assign(tf.pow(this.beta2, this.step + 1));
      }
    });
  }

  dispose(): void {
    tf.dispose([this.moments.m, this.moments.v]);
    if (this.powers) tf.dispose([this.powers.beta1, this.powers.beta2]);
  }
}

/** What one step's update depends on besides the tensors, computed once in float64. */
interface StepConstants {
  /** The step's learning rate (lr · lrFactor). */
  lr: number;
  /** pytorch: lr / (1 − β1ᵗ). */
  stepSize: number;
  /** pytorch: 1 − lr · weightDecay. */
  decay: number;
  /** pytorch: √(1 − β2ᵗ). */
  bc2Sqrt: number;
}

/** The tensors' elements as one flat vector, in order (without a copy for a single 1-D tensor). */
function flatten(tensors: tf.Tensor[]): tf.Tensor1D {
  const flat = tensors.map((t) => (t.rank === 1 ? (t as tf.Tensor1D) : tf.reshape<tf.Rank.R1>(t, [-1])));
  return flat.length === 1 ? flat[0] : tf.concat1d(flat);
}

/**
 * Global gradient-norm clipping (PyTorch's `clip_grad_norm_`): the L2 norm of all `grads` together
 * and the factor min(1, maxNorm / (norm + 1e-6)) that brings it to at most `maxNorm`, to pass to
 * `Adam.apply` as its `scale`. The same ops, in the same order, as
 * `tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))))`, so the numbers do not change; on
 * wasm they run inside one kernel call instead of 2·grads + 5.
 */
export function clipByGlobalNorm(grads: readonly tf.Tensor[], maxNorm: number): { norm: tf.Scalar; scale: tf.Scalar } {
  if (grads.length === 0) throw new Error('clipByGlobalNorm: no gradients');
  if (fusedOptimizerAvailable() && tf.getKernel(FUSED_GLOBAL_NORM_CLIP, 'wasm') !== undefined && grads.every((g) => g.dtype === 'float32')) {
    const inputs: tf.NamedTensorMap = {};
    grads.forEach((g, i) => (inputs[`grad${i}`] = g));
    const attrs: GlobalNormClipAttrs = { count: grads.length, maxNorm };
    const [norm, scale] = tf.engine().runKernel<tf.Tensor[]>(FUSED_GLOBAL_NORM_CLIP, inputs, attrs as unknown as tf.NamedAttrMap);
    return { norm: norm as tf.Scalar, scale: scale as tf.Scalar };
  }
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
    return { norm, scale: tf.minimum<tf.Scalar>(1, tf.div(maxNorm, tf.add(norm, 1e-6))) };
  });
}

function readIter(data: NamedTensorData): number {
  const { iter } = restoreTensors({ iter: data.iter });
  const step = iter.dataSync()[0];
  iter.dispose();
  return step;
}
