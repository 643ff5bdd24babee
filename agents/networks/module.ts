import * as tf from '@tensorflow/tfjs';
import { FUSED_POLYAK, type FusedPolyakAttrs, fusedOptimizerAvailable } from '../../runtime/core/wasm-fused-optimizer';

/*
 * The small module system every network in troupe is built from. A module owns tfjs variables
 * and names each by a stable path (`fc1/w`, `gru/wi`, `w1Hidden/b`, …) that does not depend on
 * the instance: checkpoints, optimiser slots and target copies are keyed by these names.
 * tfjs's own variable names are process-global, so each instance registers its variables under
 * a unique scope (`agent-net3/actor/fc1/w`), which never appears anywhere else.
 */

const scopeCounters = new Map<string, number>();

/** A process-unique scope for one module instance, e.g. `mlp4/actor`. */
export function uniqueScope(kind: string, role?: string): string {
  const n = scopeCounters.get(kind) ?? 0;
  scopeCounters.set(kind, n + 1);
  return role ? `${kind}${n}/${role}` : `${kind}${n}`;
}

/** Makes a trainable variable of `initial` (which is then disposed) named `scope/name`. */
export function createVariable(initial: tf.Tensor, scope: string, name: string, trainable = true): tf.Variable {
  const v = tf.variable(initial, trainable, `${scope}/${name}`);
  // The variable holds its own reference to the data; the initial tensor is ours to free.
  initial.dispose();
  return v;
}

/** A dense layer's weights [in, out] (or [copies, in, out]) and bias. */
export interface Linear {
  w: tf.Variable;
  b: tf.Variable;
}

/** x·W + b for a plain [in, out] layer. */
export function affine(x: tf.Tensor2D, layer: Linear): tf.Tensor2D {
  return tf.add(tf.matMul(x, layer.w as tf.Tensor2D), layer.b) as tf.Tensor2D;
}

/**
 * act(x·W + b) as one differentiable op with a hand-written gradient, for W [in, out] with b [out]
 * or per-copy W [C, in, out] with b [C, 1, out] and x [C, rows, in]. Recorded on the gradient tape
 * as one node: autodiff of matMul, add and relu would tape three ops, each cloning what it saves,
 * and a backward of about ten kernel calls; here the backward is a mask, two matmuls and a sum.
 * The forward runs the same kernels as the unfused ops, so outputs are unchanged bit for bit.
 */
export function dense<T extends tf.Tensor>(x: T, w: tf.Tensor, b: tf.Tensor, activation: 'relu' | 'linear' = 'linear', inputIsData = false): T {
  if (!recordingGradients()) {
    // Nothing to differentiate (acting, targets): the plain kernels, without the op's wrapper.
    const z = tf.add(tf.matMul(x as unknown as tf.Tensor2D, w as tf.Tensor2D), b);
    return (activation === 'relu' ? tf.relu(z) : z) as T;
  }
  return denseOp(activation, inputIsData)(x, w, b) as T;
}

/** True where ops are recorded for a backward (inside tf.grads and co, outside custom-gradient forwards). */
export function recordingGradients(): boolean {
  return tf.engine().isTapeOn();
}

const denseOps = new Map<string, (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor>();

// A custom-gradient op computes every input's gradient, needed or not (autodiff computes only
// those on the path); `inputIsData` (observations fed to a first layer) skips the x gradient's matmul.
function denseOp(activation: 'relu' | 'linear', inputIsData: boolean): (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor {
  const key = `${activation}/${inputIsData}`;
  let op = denseOps.get(key);
  if (op) return op;
  op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, w, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const z = tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b);
    const y = activation === 'relu' ? tf.relu(z) : z;
    // A variable outlives the backward, so it is used as is; saving would clone it (an Identity call).
    const wIsVariable = w instanceof tf.Variable;
    save(wIsVariable ? [x, y] : [x, y, w]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys] = saved;
        const ws = wIsVariable ? w : saved[2];
        // relu'(z) is 1 exactly where the output is positive.
        const dz = activation === 'relu' ? tf.mul(dy, tf.step(ys)) : dy;
        const dx = inputIsData ? tf.zerosLike(xs) : tf.matMul(dz as tf.Tensor2D, ws as tf.Tensor2D, false, true);
        const dw = tf.matMul(xs as tf.Tensor2D, dz as tf.Tensor2D, true, false);
        // Bias gradient: sum over every row axis, keeping the per-copy axis and b's own rank.
        const db = ws.rank === 2 ? tf.sum(dz, Array.from({ length: dz.rank - 1 }, (_, i) => i)) : tf.sum(dz, dz.rank - 2, true);
        return [dx, dw, db];
      },
    };
  }) as (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  denseOps.set(key, op);
  return op;
}

/**
 * PyTorch's GRU update from the gate pre-activations gi = x·W_i + b_i and gh = h·W_h + b_h (gate
 * order reset, update, new on the last axis; gh and h broadcast against gi):
 * n = tanh(gi_n + r ⊙ gh_n), h' = (1 − u) ⊙ n + u ⊙ h. Every GRU in troupe steps through this.
 */
export function gruUpdate<T extends tf.Tensor>(gi: T, gh: tf.Tensor, h: tf.Tensor, hiddenDim: number): T {
  const H = hiddenDim;
  const axis = gi.rank - 1;
  const [iRU, iN] = tf.split(gi, [2 * H, H], axis);
  const [hRU, hN] = tf.split(gh, [2 * H, H], axis);
  // Reset and update gates share one add and one sigmoid; fewer, larger ops are what make an unroll fast.
  const [r, u] = tf.split(tf.sigmoid(tf.add(iRU, hRU)), [H, H], axis);
  const n = tf.tanh(tf.add(iN, tf.mul(r, hN)));
  // (1 − u) ⊙ n + u ⊙ h, written as n + u ⊙ (h − n).
  return tf.add(n, tf.mul(u, tf.sub(h, n))) as T;
}

/** Adds `layers` (name → {w, b}) to `into` as `name/w`, `name/b`. */
export function linearVariables(layers: Record<string, Linear>, into: Record<string, tf.Variable> = {}): Record<string, tf.Variable> {
  for (const [layer, d] of Object.entries(layers)) {
    into[`${layer}/w`] = d.w;
    into[`${layer}/b`] = d.b;
  }
  return into;
}

/**
 * Moves every variable of `target` τ of the way towards the same-named one of `source`
 * (Polyak averaging), or copies it when τ ≥ 1 (a hard target update). Names must match.
 */
export function polyakUpdate(target: Record<string, tf.Variable>, source: Record<string, tf.Variable>, tau: number, who = 'copyFrom'): void {
  const pairs = Object.entries(target).map(([name, v]) => {
    const s = source[name];
    if (!s) throw new Error(`${who}: source has no variable '${name}'`);
    return [v, s] as const;
  });
  tf.tidy(() => {
    // A hard copy shares the source's data: no kernel at all.
    if (tau >= 1) {
      for (const [v, s] of pairs) v.assign(s);
      return;
    }
    // On wasm, all variables move in one kernel call (same arithmetic as the ops below).
    const fusable = ([v, s]: readonly [tf.Variable, tf.Variable]): boolean => v.dtype === 'float32' && s.dtype === 'float32' && v.rank === s.rank && v.shape.every((d, i) => d === s.shape[i]);
    if (pairs.length > 0 && fusedOptimizerAvailable() && pairs.every(fusable)) {
      const inputs: tf.NamedTensorMap = {};
      pairs.forEach(([v, s], i) => {
        inputs[`target${i}`] = v;
        inputs[`source${i}`] = s;
      });
      const attrs: FusedPolyakAttrs = { count: pairs.length, tau };
      const outs = tf.engine().runKernel<tf.Tensor[]>(FUSED_POLYAK, inputs, attrs as unknown as tf.NamedAttrMap);
      pairs.forEach(([v], i) => v.assign(outs[i]));
      return;
    }
    for (const [v, s] of pairs) v.assign(tf.add(tf.mul(1 - tau, v), tf.mul(tau, s)));
  });
}

/** A network: named variables, target copies and disposal, the same way everywhere. */
export abstract class Module {
  /** Variables by stable name (see the header of this file). */
  abstract namedVariables(): Record<string, tf.Variable>;

  variables(): tf.Variable[] {
    return Object.values(this.namedVariables());
  }

  /** Copies `source`'s weights in (hard target update), or moves τ of the way towards them. */
  copyFrom(source: Module, tau = 1): void {
    polyakUpdate(this.namedVariables(), source.namedVariables(), tau, `${this.constructor.name}.copyFrom`);
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}
