import * as tf from '@tensorflow/tfjs';
import { type NamedTensorData, type OptimizerState, assignTensors, captureTensors, restoreTensors } from '../runtime/core/checkpoint-format';

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
  private readonly slots: Record<string, { m: tf.Variable; v: tf.Variable }> = {};
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
    for (const [name, p] of Object.entries(params)) {
      this.slots[name] = tf.tidy(() => ({ m: tf.variable(tf.zerosLike(p), false), v: tf.variable(tf.zerosLike(p), false) }));
    }
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
    this.step++;
    const { beta1, beta2, epsilon } = this;
    const lr = this.lr * lrFactor;
    const stepSize = lr / (1 - beta1 ** this.step);
    const decay = 1 - lr * this.weightDecay;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    tf.tidy(() => {
      const powers = this.powers;
      const oneMinusPow1 = powers && tf.sub(1, powers.beta1);
      const oneMinusPow2 = powers && tf.sub(1, powers.beta2);
      for (const [name, p] of Object.entries(this.params)) {
        const raw = grads[name];
        if (!raw) throw new Error(`Adam: no gradient for parameter '${name}'`);
        const g = scale ? tf.mul(raw, scale) : raw;
        const { m, v } = this.slots[name];
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        if (oneMinusPow1 && oneMinusPow2) {
          const mHat = tf.div(m1, oneMinusPow1);
          const vHat = tf.div(v1, oneMinusPow2);
          p.assign(tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), -lr), p));
        } else {
          const decayed = this.weightDecay > 0 ? tf.mul(p, decay) : p;
          p.assign(tf.sub(decayed, tf.mul(stepSize, tf.div(m1, tf.add(tf.div(tf.sqrt(v1), bc2Sqrt), epsilon)))));
        }
      }
      if (powers) {
        powers.beta1.assign(tf.mul(powers.beta1, beta1));
        powers.beta2.assign(tf.mul(powers.beta2, beta2));
      }
    });
  }

  async capture(): Promise<OptimizerState> {
    const named: Record<string, tf.Tensor> = {};
    for (const [name, { m, v }] of Object.entries(this.slots)) {
      named[`${name}/m`] = m;
      named[`${name}/v`] = v;
    }
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
    const slots: Record<string, tf.Variable> = {};
    for (const [name, { m, v }] of Object.entries(this.slots)) {
      slots[`${name}/m`] = m;
      slots[`${name}/v`] = v;
    }
    if (this.powers) {
      slots['beta1_power'] = this.powers.beta1;
      slots['beta2_power'] = this.powers.beta2;
    }
    try {
      assignTensors(slots, byName);
    } catch (err) {
      throw new Error(`${who}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.step = readIter(byName);
  }

  private restoreTfjs(state: OptimizerState, who: string, legacyPowers: unknown): void {
    if (!this.powers) throw new Error(`${who} is tfjs's Adam, which only the tfjs formulation continues`);
    const [iterWeight, ...moments] = state.weights;
    if (!iterWeight || iterWeight.name !== 'iter') throw new Error(`${who} has no 'iter' weight first`);
    const names = Object.keys(this.slots);
    // An optimiser that never stepped has no moments yet: they are zero.
    if (moments.length !== 0 && moments.length !== 2 * names.length) {
      throw new Error(`${who} holds ${moments.length / 2} parameters' moments, this learner has ${names.length}`);
    }
    const byName: NamedTensorData = {};
    const slots: Record<string, tf.Variable> = {};
    names.forEach((name, i) => {
      if (moments.length === 0) return;
      byName[`${name}/m`] = moments[i].tensor;
      byName[`${name}/v`] = moments[names.length + i].tensor;
      slots[`${name}/m`] = this.slots[name].m;
      slots[`${name}/v`] = this.slots[name].v;
    });
    try {
      assignTensors(slots, byName);
    } catch (err) {
      throw new Error(`${who}: ${err instanceof Error ? err.message : String(err)}`);
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
    for (const { m, v } of Object.values(this.slots)) tf.dispose([m, v]);
    if (this.powers) tf.dispose([this.powers.beta1, this.powers.beta2]);
  }
}

function readIter(data: NamedTensorData): number {
  const { iter } = restoreTensors({ iter: data.iter });
  const step = iter.dataSync()[0];
  iter.dispose();
  return step;
}
