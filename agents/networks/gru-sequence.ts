import * as tf from '@tensorflow/tfjs';
import { gruGates, gruGatesGrad } from './gru-kernels';

/*
 * A whole GRU unroll as ONE differentiable op with a hand-written backward (BPTT).
 *
 * Autodiff of a step-by-step unroll tapes ~14 ops per step, each cloning the tensors it saves,
 * and replays ~30 gradient kernels per step backward. Here the forward loop runs untaped, two
 * kernel calls a step (hk·W_h + b_h, then the gates, see gru-kernels.ts), and keeps only the masked
 * states and the gate derivatives the backward needs (stacked once at the end). The backward does
 * per step only what depends on the incoming gradient: the gates' backward and one matmul with
 * W_hᵀ. The weight gradient dW_h = Σ_t hk_tᵀ·dgh_t and db_h are one matmul and one sum over all
 * steps after the loop.
 *
 * Layout: every tensor is [T, C, rows, ·] (time, weight copy, rows of that copy) so each step's
 * hidden state is [C, rows, H] and h·W_h is one (batched) matmul for shared (C = 1) and per-agent
 * weights alike. Maths as PyTorch's GRUCell (gate order reset, update, new):
 *   r = σ(gi_r + gh_r), u = σ(gi_u + gh_u), n = tanh(gi_n + r ⊙ gh_n), h' = n + u ⊙ (h − n)
 * with gh = h·W_h + b_h and h the previous state times the step's keep mask (0 where an episode
 * starts, which zeroes the state).
 */

export interface GruWeights {
  /** [H, 3H] shared, or [C, H, 3H] per copy. */
  wh: tf.Tensor;
  /** [3H] shared, or [C, 1, 3H] per copy. */
  bh: tf.Tensor;
}

/** W_h as [C, H, 3H], whatever the variable's own shape. */
function batchedWh(wh: tf.Tensor, hiddenDim: number): tf.Tensor3D {
  return (wh.rank === 3 ? wh : tf.reshape(wh, [1, hiddenDim, 3 * hiddenDim])) as tf.Tensor3D;
}

/** hk·W_h + b_h for hk [C, rows, H]: one fused kernel where the backend takes a rank-1 bias with it. */
function hiddenGates(hk: tf.Tensor3D, wh3: tf.Tensor3D, bh: tf.Tensor): tf.Tensor3D {
  const backend = tf.getBackend();
  if (bh.rank === 1 && (backend === 'wasm' || backend === 'cpu') && !tf.engine().isTapeOn()) {
    return tf.engine().runKernel('_FusedMatMul', { a: hk, b: wh3, bias: bh }, { transposeA: false, transposeB: false, activation: 'linear', leakyreluAlpha: 0 }) as tf.Tensor3D;
  }
  return tf.add(tf.matMul(hk, wh3), bh) as tf.Tensor3D;
}

/**
 * One GRU step for the acting path: gi [C, rows, 3H] (x·W_i + b_i), hk [C, rows, H] the masked
 * previous state. The same kernels as a step of `gruSequence`, so stepping reproduces an unroll.
 */
export function gruStep(gi: tf.Tensor3D, hk: tf.Tensor3D, weights: GruWeights): tf.Tensor3D {
  const H = hk.shape[2];
  const gh = hiddenGates(hk, batchedWh(weights.wh, H), weights.bh);
  return gruGates(gi, gh, hk, tf.ones([hk.shape[0], hk.shape[1], 1])).h as tf.Tensor3D;
}

/** The forward loop: every step's new state, masked state fed to the next step, and gate coefficients. */
function forwardLoop(gi: tf.Tensor4D, keep: tf.Tensor4D, h0: tf.Tensor3D, wh3: tf.Tensor3D, bh: tf.Tensor): { hs: tf.Tensor[]; hks: tf.Tensor3D[]; gs: tf.Tensor[] } {
  const T = gi.shape[0];
  const gis = tf.unstack(gi) as tf.Tensor3D[];
  const keeps = tf.unstack(keep) as tf.Tensor3D[];
  let hk = tf.mul(h0, keeps[0]!) as tf.Tensor3D;
  const hs: tf.Tensor[] = [];
  const hks: tf.Tensor3D[] = [hk];
  const gs: tf.Tensor[] = [];
  for (let t = 0; t < T; t++) {
    // The last step has no next mask; its masked output is never used, so any mask does.
    const step = gruGates(gis[t]!, hiddenGates(hk, wh3, bh), hk, keeps[Math.min(t + 1, T - 1)]!);
    hs.push(step.h);
    gs.push(step.g);
    if (t + 1 < T) {
      hk = step.hNext as tf.Tensor3D;
      hks.push(hk);
    }
  }
  return { hs, hks, gs };
}

/**
 * Runs the GRU over T steps: gi [T, C, rows, 3H] (the input half of the gates, x·W_i + b_i, for
 * every step), keep [T, C, rows, 1] (not differentiated), h0 [C, rows, H]. Returns every step's
 * new state, [T, C, rows, H]. Differentiable w.r.t. gi, h0, W_h and b_h.
 */
export function gruSequence(gi: tf.Tensor4D, keep: tf.Tensor4D, h0: tf.Tensor3D, weights: GruWeights, h0IsData = false): tf.Tensor4D {
  const [T, C, rows, threeH] = gi.shape;
  const H = threeH / 3;
  if (T < 1) throw new Error('gruSequence: needs at least one step (gi has T = 0)');
  if (!Number.isInteger(H) || h0.shape[2] !== H) throw new Error(`gruSequence: gi's last axis (${threeH}) must be 3 × the hidden size ${h0.shape[2]}`);
  if (keep.shape[0] !== T || keep.shape[1] !== C || keep.shape[2] !== rows) throw new Error(`gruSequence: keep is [${keep.shape}], expected [${T}, ${C}, ${rows}, 1]`);
  if (!tf.engine().isTapeOn()) {
    // Nothing will be differentiated: just the loop, without the op wrapper and the saved values.
    return tf.tidy(() => tf.stack(forwardLoop(gi, keep, h0, batchedWh(weights.wh, H), weights.bh).hs) as tf.Tensor4D);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [giAll, hInit, wh, bh] = args as tf.Tensor[];
    const save = args[4] as tf.GradSaveFunc;
    const wh3 = batchedWh(wh!, H);
    const { hs, hks, gs } = forwardLoop(giAll as tf.Tensor4D, keep, hInit as tf.Tensor3D, wh3, bh!);
    // keep is saved too: the caller's tidy frees its own copy before the backward runs.
    save([tf.stack(hks), tf.stack(gs), wh3, keep]);
    return {
      value: tf.stack(hs) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [HK, G, W, K] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor3D, tf.Tensor4D];
        // W_hᵀ once: a transposed matmul per step is the slow path on wasm.
        const wT = tf.transpose(W, [0, 2, 1]);
        const coefs = tf.unstack(G);
        const keeps = tf.unstack(K);
        const dys = tf.unstack(dy);
        const dghs: tf.Tensor[] = new Array(T);
        const dgis: tf.Tensor[] = new Array(T);
        let carryHu: tf.Tensor = tf.zerosLike(dys[0]!);
        let carryMm: tf.Tensor = carryHu;
        for (let t = T - 1; t >= 0; t--) {
          const step = gruGatesGrad(dys[t]!, carryHu, carryMm, keeps[Math.min(t + 1, T - 1)]!, coefs[t]!);
          carryHu = step.dhu;
          // Before the first step only h0's gradient needs this product: skipped when h0 is data.
          carryMm = t === 0 && h0IsData ? carryMm : tf.matMul(step.dgh as tf.Tensor3D, wT);
          dghs[t] = step.dgh;
          dgis[t] = step.dgi;
        }
        const dH0 = h0IsData ? tf.zerosLike(carryHu) : tf.mul(tf.add(carryHu, carryMm), keeps[0]!);
        const dGh = tf.stack(dghs) as tf.Tensor4D;
        // dW_h = Σ_t hk_tᵀ·dgh_t as one matmul over all steps' rows of each copy; db_h one sum.
        const perCopy = (x: tf.Tensor4D, width: number) =>
          (C === 1 ? tf.reshape(x, [1, T * rows, width]) : tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [C, T * rows, width])) as tf.Tensor3D;
        const dGhRows = perCopy(dGh, 3 * H);
        const dWh = tf.reshape(tf.matMul(perCopy(HK, H), dGhRows, true, false), wh!.shape);
        const dBh = tf.reshape(tf.sum(dGhRows, 1), bh!.shape);
        return [tf.stack(dgis), dH0, dWh, dBh];
      },
    };
  }) as (gi: tf.Tensor, h0: tf.Tensor, wh: tf.Tensor, bh: tf.Tensor) => tf.Tensor4D;
  return op(gi, h0, weights.wh, weights.bh);
}
