import * as tf from '@tensorflow/tfjs';

/*
 * Weight initialisers, each a pure function of its seed (a 32-bit integer, usually
 * `seedToInt(deriveSeed(…))`), so equal seeds give equal networks on every backend.
 */

/**
 * A (rows × cols) matrix with orthonormal rows or columns, times `gain` (Saxe et al. 2014), from
 * the QR decomposition of a seeded Gaussian matrix. tfjs's own orthogonal initializer does the
 * same but warns on every matrix above 2,000 entries.
 */
export function orthogonal(rows: number, cols: number, gain: number, seed: number): tf.Tensor2D {
  return tf.tidy(() => {
    const tall = rows >= cols;
    const a = tf.randomNormal([Math.max(rows, cols), Math.min(rows, cols)], 0, 1, 'float32', seed) as tf.Tensor2D;
    const [q, r] = tf.linalg.qr(a);
    // Sign correction makes the result uniformly distributed over orthogonal matrices.
    const d = tf.sign(tf.sum(tf.mul(r, tf.eye(r.shape[0], r.shape[1])), 0));
    const m = tf.mul(q, d) as tf.Tensor2D;
    return tf.mul(tall ? m : tf.transpose(m), gain) as tf.Tensor2D;
  });
}

/** Uniform in ±1/√fanIn: how PyTorch's `nn.Linear` starts its weights and biases (EPyMARL's mixer, CleanRL's SAC). */
export function torchUniform(shape: number[], fanIn: number, seed: number): tf.Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return tf.randomUniform(shape, -bound, bound, 'float32', seed);
}

/**
 * Uniform in ±√(6 / (fanIn + fanOut)) (Glorot & Bengio 2010): PyTorch's `xavier_uniform_`, which
 * Meta-DT's context world model uses for every linear layer.
 */
export function xavierUniform(fanIn: number, fanOut: number, seed: number): tf.Tensor2D {
  const bound = Math.sqrt(6 / (fanIn + fanOut));
  return tf.randomUniform([fanIn, fanOut], -bound, bound, 'float32', seed) as tf.Tensor2D;
}
