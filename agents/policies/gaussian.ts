import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../runtime/core/rng';

/**
 * The diagonal Gaussian policy of continuous-action PPO (CleanRL's `ppo_continuous_action`): the
 * network gives the mean, a learned state-independent log-std per action dimension gives the
 * spread, and log-probabilities and entropies sum over the dimensions.
 *
 * Acting draws in float64 from our `Rng`; the update recomputes the same log-probability in
 * float32 on tensors, so the two agree to float32 rounding (ratio 1 at the first PPO step).
 */

const HALF_LOG_TWO_PI = 0.5 * Math.log(2 * Math.PI);

/** log N(x; mean, exp(logStd)) summed over the last axis: [..., D] → [...]. */
export function gaussianLogProb(x: tf.Tensor, mean: tf.Tensor, logStd: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const z = tf.div(tf.sub(x, mean), tf.exp(logStd));
    const perDim = tf.neg(tf.add(tf.add(tf.mul(0.5, tf.square(z)), logStd), HALF_LOG_TWO_PI));
    return tf.sum(perDim, -1);
  });
}

/** Entropy of the diagonal Gaussian, Σ_d (logStd_d + ½ + ½·log 2π): [..., D] → [...]. */
export function gaussianEntropy(logStd: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sum(tf.add(logStd, 0.5 + HALF_LOG_TWO_PI), -1));
}

/**
 * Draws row `row` of a [rows, D] batch: raw[d] = mean[d] + exp(logStd[d])·ε, ε ~ N(0, 1) from
 * `rng` (D normals, in dimension order). Writes the unclipped sample to `raw` at row·D and
 * returns its log-probability (float64 arithmetic, summed over the D dimensions).
 */
export function sampleGaussianRow(mean: Float32Array, logStd: ArrayLike<number>, row: number, D: number, rng: Rng, raw: Float32Array): number {
  let logp = 0;
  for (let d = 0; d < D; d++) {
    const eps = rng.normal();
    raw[row * D + d] = mean[row * D + d] + Math.exp(logStd[d]) * eps;
    // Measured from the stored (float32-rounded) sample, which is what the update sees.
    const z = (raw[row * D + d] - mean[row * D + d]) / Math.exp(logStd[d]);
    logp -= 0.5 * z * z + logStd[d] + HALF_LOG_TWO_PI;
  }
  return logp;
}

/** Copies D numbers from `from` at fromOffset into `to` at toOffset, clipped to [low, high] per dimension. */
export function clipInto(from: ArrayLike<number>, fromOffset: number, to: Float32Array, toOffset: number, low: ArrayLike<number>, high: ArrayLike<number>, D: number): void {
  for (let d = 0; d < D; d++) to[toOffset + d] = Math.min(high[d], Math.max(low[d], from[fromOffset + d]));
}
