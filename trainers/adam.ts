import * as tf from '@tensorflow/tfjs';
import { type NamedTensorData, type OptimizerState, assignTensors, captureTensors, restoreTensors } from '../runtime/core/checkpoint';

/**
 * Adam (Kingma & Ba 2015, PyTorch's formulation) over named variables, with a state that
 * restores exactly: the step count and the m/v slots. The bias corrections come from the step
 * count in float64, so a restored optimiser takes bit-identical steps, which tfjs's own Adam
 * cannot promise (its restore recomputes the running β-powers with pow()).
 */
export interface AdamSettings {
  lr: number;
  beta1?: number;
  beta2?: number;
  /** PyTorch's default 1e-8 unless given. */
  epsilon?: number;
}

export const ADAM_CLASS_NAME = 'troupe.Adam';
/** MAPPO's name for the same optimiser state before it used this class; its checkpoints still restore. */
const LEGACY_CLASS_NAMES: readonly string[] = ['troupe.MappoAdam'];

export class Adam {
  step = 0;
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  private readonly slots: Record<string, { m: tf.Variable; v: tf.Variable }> = {};

  /** `params` by stable name: the names are the checkpoint keys of the slots. */
  constructor(
    settings: AdamSettings,
    private readonly params: Record<string, tf.Variable>,
  ) {
    this.lr = settings.lr;
    this.beta1 = settings.beta1 ?? 0.9;
    this.beta2 = settings.beta2 ?? 0.999;
    this.epsilon = settings.epsilon ?? 1e-8;
    for (const [name, p] of Object.entries(params)) {
      this.slots[name] = tf.tidy(() => ({ m: tf.variable(tf.zerosLike(p), false), v: tf.variable(tf.zerosLike(p), false) }));
    }
  }

  /**
   * One step against `grads`, keyed like the parameters (a missing gradient is an error),
   * each multiplied by `scale` first when given (e.g. a global grad-norm clipping factor).
   */
  apply(grads: Record<string, tf.Tensor>, scale?: tf.Scalar): void {
    this.step++;
    const { beta1, beta2, epsilon } = this;
    const stepSize = this.lr / (1 - beta1 ** this.step);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    tf.tidy(() => {
      for (const [name, p] of Object.entries(this.params)) {
        const raw = grads[name];
        if (!raw) throw new Error(`Adam: no gradient for parameter '${name}'`);
        const g = scale ? tf.mul(raw, scale) : raw;
        const { m, v } = this.slots[name];
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        p.assign(tf.sub(p, tf.mul(stepSize, tf.div(m, tf.add(tf.div(tf.sqrt(v), bc2Sqrt), epsilon)))));
      }
    });
  }

  async capture(): Promise<OptimizerState> {
    const named: Record<string, tf.Tensor> = {};
    for (const [name, { m, v }] of Object.entries(this.slots)) {
      named[`${name}/m`] = m;
      named[`${name}/v`] = v;
    }
    const iter = tf.scalar(this.step, 'int32');
    try {
      const tensors = await captureTensors({ iter, ...named });
      return {
        className: ADAM_CLASS_NAME,
        config: { learningRate: this.lr, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon },
        weights: Object.entries(tensors).map(([name, tensor]) => ({ name, tensor })),
      };
    } finally {
      iter.dispose();
    }
  }

  /** Loads a captured state; `who` prefixes errors (e.g. "sac.restoreState: optimizer 'q'"). */
  restore(state: OptimizerState, who: string): void {
    if (state.className !== ADAM_CLASS_NAME && !LEGACY_CLASS_NAMES.includes(state.className)) throw new Error(`${who} is a ${state.className}, expected ${ADAM_CLASS_NAME}`);
    const byName: NamedTensorData = {};
    for (const w of state.weights) byName[w.name] = w.tensor;
    if (!byName.iter) throw new Error(`${who} has no 'iter' weight`);
    const slots: Record<string, tf.Variable> = {};
    for (const [name, { m, v }] of Object.entries(this.slots)) {
      slots[`${name}/m`] = m;
      slots[`${name}/v`] = v;
    }
    try {
      assignTensors(slots, byName);
    } catch (err) {
      throw new Error(`${who}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const { iter } = restoreTensors({ iter: byName.iter });
    this.step = iter.dataSync()[0];
    iter.dispose();
  }

  dispose(): void {
    for (const { m, v } of Object.values(this.slots)) tf.dispose([m, v]);
  }
}
