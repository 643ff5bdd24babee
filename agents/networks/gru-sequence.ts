import * as tf from '@tensorflow/tfjs';

/*
 * A whole GRU unroll as ONE differentiable op with a hand-written backward (BPTT).
 *
 * Autodiff of a step-by-step unroll tapes ~14 ops per step, each cloning the tensors it saves,
 * and replays ~30 gradient kernels per step backward. Here the forward loop runs untaped, keeps
 * only the gate values the backward needs (stacked once at the end), and the backward does per
 * step only what truly depends on the incoming gradient: one multiply by a precomputed gate
 * coefficient, one matmul with W_hᵀ and the carry. Everything that depends only on the forward
 * values (gate derivatives) and the weight gradient dW_h = Σ_t h_{t-1}ᵀ·dgh_t and db_h are computed
 * over all steps at once.
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

interface StepValues {
  h: tf.Tensor3D;
  r: tf.Tensor3D;
  u: tf.Tensor3D;
  n: tf.Tensor3D;
  ghN: tf.Tensor3D;
}

/** W_h as [C, H, 3H], whatever the variable's own shape. */
function batchedWh(wh: tf.Tensor, hiddenDim: number): tf.Tensor3D {
  return (wh.rank === 3 ? wh : tf.reshape(wh, [1, hiddenDim, 3 * hiddenDim])) as tf.Tensor3D;
}

/**
 * One GRU step from the input's gate pre-activations (already split into reset, update, new, each
 * [C, rows, H]) and the masked previous state hk [C, rows, H]. The acting path and the unroll's
 * forward both use it, so stepping reproduces an unroll exactly.
 */
export function gruStep(giR: tf.Tensor3D, giU: tf.Tensor3D, giN: tf.Tensor3D, hk: tf.Tensor3D, wh3: tf.Tensor3D, bh: tf.Tensor, hiddenDim: number): StepValues {
  const H = hiddenDim;
  const gh = tf.add(tf.matMul(hk, wh3), bh) as tf.Tensor3D;
  const [ghR, ghU, ghN] = tf.split(gh, [H, H, H], 2) as tf.Tensor3D[];
  const r = tf.sigmoid(tf.add(giR, ghR)) as tf.Tensor3D;
  const u = tf.sigmoid(tf.add(giU, ghU)) as tf.Tensor3D;
  const n = tf.tanh(tf.add(giN, tf.mul(r, ghN))) as tf.Tensor3D;
  const h = tf.add(n, tf.mul(u, tf.sub(hk, n))) as tf.Tensor3D;
  return { h, r, u, n, ghN };
}

/**
 * Runs the GRU over T steps: gi [T, C, rows, 3H] (the input half of the gates, x·W_i + b_i, for
 * every step), keep [T, C, rows, 1] (not differentiated), h0 [C, rows, H]. Returns every step's
 * new state, [T, C, rows, H]. Differentiable w.r.t. gi, h0, W_h and b_h.
 */
export function gruSequence(gi: tf.Tensor4D, keep: tf.Tensor4D, h0: tf.Tensor3D, weights: GruWeights): tf.Tensor4D {
  const [T, C, rows, threeH] = gi.shape;
  const H = threeH / 3;
  if (T < 1) throw new Error('gruSequence: needs at least one step (gi has T = 0)');
  if (!Number.isInteger(H) || h0.shape[2] !== H) throw new Error(`gruSequence: gi's last axis (${threeH}) must be 3 × the hidden size ${h0.shape[2]}`);
  if (keep.shape[0] !== T || keep.shape[1] !== C || keep.shape[2] !== rows) throw new Error(`gruSequence: keep is [${keep.shape}], expected [${T}, ${C}, ${rows}, 1]`);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [giAll, hInit, wh, bh] = args as tf.Tensor[];
    const save = args[4] as tf.GradSaveFunc;
    const wh3 = batchedWh(wh, H);
    const [giR, giU, giN] = tf.split(giAll as tf.Tensor4D, [H, H, H], 3).map((g) => tf.unstack(g)) as tf.Tensor3D[][];
    const keeps = tf.unstack(keep) as tf.Tensor3D[];
    const steps: StepValues[] = [];
    const hks: tf.Tensor3D[] = [];
    let h = hInit as tf.Tensor3D;
    for (let t = 0; t < T; t++) {
      const hk = tf.mul(h, keeps[t]) as tf.Tensor3D;
      const s = gruStep(giR[t], giU[t], giN[t], hk, wh3, bh, H);
      hks.push(hk);
      steps.push(s);
      h = s.h;
    }
    const stacked = (pick: (s: StepValues) => tf.Tensor3D) => tf.stack(steps.map(pick)) as tf.Tensor4D;
    const hs = stacked((s) => s.h);
    save([tf.stack(hks), stacked((s) => s.r), stacked((s) => s.u), stacked((s) => s.n), stacked((s) => s.ghN), wh3, keep]);
    return {
      value: hs,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // keep is saved too: the caller's tidy has freed its own copy by the time the backward runs.
        const [HK, R, U, N, GHN, W, K] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor3D, tf.Tensor4D];
        // Gate derivatives for all steps at once. With dh the gradient reaching a step's output:
        //   d pre_n = dh ⊙ (1 − u) ⊙ (1 − n²)                     =: dh ⊙ A
        //   d pre_u = dh ⊙ (hk − n) ⊙ u(1 − u)
        //   d pre_r = d pre_n ⊙ gh_n ⊙ r(1 − r)
        //   d gh = [d pre_r, d pre_u, d pre_n ⊙ r],  d gi = [d pre_r, d pre_u, d pre_n]
        //   d hk = dh ⊙ u + d gh·W_hᵀ, and the previous state gets d hk ⊙ keep.
        const oneMinusU = tf.sub(1, U);
        const A = tf.mul(oneMinusU, tf.sub(1, tf.square(N)));
        const coefU = tf.mul(tf.sub(HK, N), tf.mul(U, oneMinusU));
        const coefR = tf.mul(A, tf.mul(GHN, tf.mul(R, tf.sub(1, R))));
        const coefGhN = tf.mul(A, R);
        const coefs = tf.unstack(tf.concat([coefR, coefU, coefGhN], 3)) as tf.Tensor3D[];
        const us = tf.unstack(U) as tf.Tensor3D[];
        const keeps = tf.unstack(K) as tf.Tensor3D[];
        const dys = tf.unstack(dy) as tf.Tensor3D[];
        const dghs: tf.Tensor3D[] = new Array(T);
        const dhs: tf.Tensor3D[] = new Array(T);
        let carry: tf.Tensor3D | undefined;
        for (let t = T - 1; t >= 0; t--) {
          const dh = carry ? (tf.add(dys[t], carry) as tf.Tensor3D) : dys[t];
          const dgh = tf.mul(tf.tile(dh, [1, 1, 3]), coefs[t]) as tf.Tensor3D;
          const dhk = tf.add(tf.mul(dh, us[t]), tf.matMul(dgh, W, false, true));
          carry = tf.mul(dhk, keeps[t]) as tf.Tensor3D;
          dghs[t] = dgh;
          dhs[t] = dh;
        }
        const dGh = tf.stack(dghs) as tf.Tensor4D;
        const [dPreRU] = tf.split(dGh, [2 * H, H], 3);
        const dGi = tf.concat([dPreRU, tf.mul(tf.stack(dhs), A)], 3);
        // dW_h = Σ_t hk_tᵀ·dgh_t as one matmul over all steps' rows of each copy.
        const perCopy = (x: tf.Tensor4D, width: number) =>
          (C === 1 ? tf.reshape(x, [1, T * rows, width]) : tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [C, T * rows, width])) as tf.Tensor3D;
        const dGhRows = perCopy(dGh, 3 * H);
        const dW3 = tf.matMul(perCopy(HK, H), dGhRows, true, false);
        const dWh = tf.reshape(dW3, wh.shape);
        const dBh = tf.reshape(tf.sum(dGhRows, 1), bh.shape);
        return [dGi, carry!, dWh, dBh];
      },
    };
  }) as (gi: tf.Tensor, h0: tf.Tensor, wh: tf.Tensor, bh: tf.Tensor) => tf.Tensor4D;
  return op(gi, h0, weights.wh, weights.bh);
}
