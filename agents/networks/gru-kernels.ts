import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/*
 * The element-wise part of a GRU step, forward and backward, each as ONE kernel call on the wasm
 * and cpu backends (plain loops over the backend's own memory), instead of ~11 forward and ~5
 * backward tfjs ops per step. Other backends (tfjs-node, webgl) get the same results from
 * composed tfjs ops. Layout of every tensor: [..., width] with the same leading (row) axes.
 *
 * Forward, per row and unit j (gate order reset, update, new as PyTorch's GRUCell):
 *   r = σ(gi_r + gh_r), u = σ(gi_u + gh_u), n = tanh(gi_n + r·gh_n), h = n + u·(hk − n)
 *   outputs h, hNext = h·keepNext (the next step's masked state), and the backward's per-step
 *   coefficients G = [A·gh_n·r(1 − r), (hk − n)·u(1 − u), A·r, A, u] with A = (1 − u)(1 − n²).
 * Backward, with the carry from step t+1 (dh·u and dgh·W_hᵀ there, masked by keep_{t+1}):
 *   dh = dy + (carryHu + carryMm)·keepNext, dgh = dh·G[0:3H], dgi = [dgh_r, dgh_u, dh·A], dhu = dh·u.
 */

const GATES = 'TroupeGruGates';
const GATES_GRAD = 'TroupeGruGatesGrad';

type Floats = Float32Array;

function gatesForward(gi: Floats, gh: Floats, hk: Floats, keepNext: Floats, h: Floats, hNext: Floats, g: Floats, H: number): void {
  const rows = hk.length / H;
  for (let i = 0; i < rows; i++) {
    const keep = keepNext[i]!;
    const o3 = i * 3 * H;
    const o1 = i * H;
    const o5 = i * 5 * H;
    for (let j = 0; j < H; j++) {
      const r = 1 / (1 + Math.exp(-(gi[o3 + j]! + gh[o3 + j]!)));
      const u = 1 / (1 + Math.exp(-(gi[o3 + H + j]! + gh[o3 + H + j]!)));
      const ghN = gh[o3 + 2 * H + j]!;
      const n = Math.tanh(gi[o3 + 2 * H + j]! + r * ghN);
      const prev = hk[o1 + j]!;
      const next = n + u * (prev - n);
      h[o1 + j] = next;
      hNext[o1 + j] = next * keep;
      const a = (1 - u) * (1 - n * n);
      g[o5 + j] = a * ghN * r * (1 - r);
      g[o5 + H + j] = (prev - n) * u * (1 - u);
      g[o5 + 2 * H + j] = a * r;
      g[o5 + 3 * H + j] = a;
      g[o5 + 4 * H + j] = u;
    }
  }
}

function gatesBackward(dy: Floats, carryHu: Floats, carryMm: Floats, keepNext: Floats, g: Floats, dgh: Floats, dgi: Floats, dhu: Floats, H: number): void {
  const rows = dy.length / H;
  for (let i = 0; i < rows; i++) {
    const keep = keepNext[i]!;
    const o1 = i * H;
    const o3 = i * 3 * H;
    const o5 = i * 5 * H;
    for (let j = 0; j < H; j++) {
      const dh = dy[o1 + j]! + (carryHu[o1 + j]! + carryMm[o1 + j]!) * keep;
      const dr = dh * g[o5 + j]!;
      const du = dh * g[o5 + H + j]!;
      dgh[o3 + j] = dr;
      dgh[o3 + H + j] = du;
      dgh[o3 + 2 * H + j] = dh * g[o5 + 2 * H + j]!;
      dgi[o3 + j] = dr;
      dgi[o3 + H + j] = du;
      dgi[o3 + 2 * H + j] = dh * g[o5 + 3 * H + j]!;
      dhu[o1 + j] = dh * g[o5 + 4 * H + j]!;
    }
  }
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Reads inputs and makes outputs on one backend, so the loops above run unchanged on each. */
interface Memory {
  read(t: tf.TensorInfo): Floats;
  /** All outputs are allocated before any view is taken (a wasm heap growth detaches views). */
  outputs(shapes: number[][], inputs: readonly tf.TensorInfo[]): { infos: tf.TensorInfo[]; views: Floats[] };
}

function wasmMemory(args: KernelArgs): Memory {
  const backend = args.backend as BackendWasm;
  return {
    read: (t) => backend.typedArrayFromHeap(t) as Floats,
    outputs: (shapes, inputs) => {
      // An input still on another backend is moved into the heap on first access, which can grow
      // it: every input is made resident before any output is allocated or any view taken.
      for (const t of inputs) backend.dataIdMap.get(t.dataId);
      const infos = shapes.map((s) => backend.makeOutput(s, 'float32'));
      return { infos, views: infos.map((t) => backend.typedArrayFromHeap(t) as Floats) };
    },
  };
}

interface CpuBackendLike {
  readSync(dataId: tf.DataId): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Floats): tf.TensorInfo;
}

function cpuMemory(args: KernelArgs): Memory {
  const backend = args.backend as unknown as CpuBackendLike;
  return {
    read: (t) => backend.readSync(t.dataId) as Floats,
    outputs: (shapes) => {
      const views = shapes.map((s) => new Float32Array(s.reduce((a, b) => a * b, 1)));
      return { infos: shapes.map((s, i) => backend.makeTensorInfo(s, 'float32', views[i]!)), views };
    },
  };
}

function withWidth(shape: readonly number[], width: number): number[] {
  return [...shape.slice(0, -1), width];
}

function gatesKernel(memory: (args: KernelArgs) => Memory): tf.KernelFunc {
  return (args) => {
    const { gi, gh, hk, keepNext } = args.inputs as Record<string, tf.TensorInfo>;
    const H = hk!.shape[hk!.shape.length - 1]!;
    const m = memory(args);
    // Outputs first: on wasm, allocating can move the heap under earlier views of the inputs.
    const { infos, views } = m.outputs([[...hk!.shape], [...hk!.shape], withWidth(hk!.shape, 5 * H)], [gi!, gh!, hk!, keepNext!]);
    gatesForward(m.read(gi!), m.read(gh!), m.read(hk!), m.read(keepNext!), views[0]!, views[1]!, views[2]!, H);
    return infos;
  };
}

function gatesGradKernel(memory: (args: KernelArgs) => Memory): tf.KernelFunc {
  return (args) => {
    const { dy, carryHu, carryMm, keepNext, g } = args.inputs as Record<string, tf.TensorInfo>;
    const H = dy!.shape[dy!.shape.length - 1]!;
    const m = memory(args);
    const { infos, views } = m.outputs([withWidth(dy!.shape, 3 * H), withWidth(dy!.shape, 3 * H), [...dy!.shape]], [dy!, carryHu!, carryMm!, keepNext!, g!]);
    gatesBackward(m.read(dy!), m.read(carryHu!), m.read(carryMm!), m.read(keepNext!), m.read(g!), views[0]!, views[1]!, views[2]!, H);
    return infos;
  };
}

for (const [backendName, memory] of [
  ['wasm', wasmMemory],
  ['cpu', cpuMemory],
] as const) {
  if (!tf.getKernel(GATES, backendName)) tf.registerKernel({ kernelName: GATES, backendName, kernelFunc: gatesKernel(memory) });
  if (!tf.getKernel(GATES_GRAD, backendName)) tf.registerKernel({ kernelName: GATES_GRAD, backendName, kernelFunc: gatesGradKernel(memory) });
}

let fusedKernelsAllowed = true;

/** Tests turn the fused kernels off to check the composed-ops path every other backend takes. */
export function setFusedGruKernels(allowed: boolean): void {
  fusedKernelsAllowed = allowed;
}

function fused(kernelName: string): boolean {
  return fusedKernelsAllowed && !tf.engine().isTapeOn() && tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

export interface GateOutputs {
  h: tf.Tensor;
  hNext: tf.Tensor;
  g: tf.Tensor;
}

/**
 * One step's gates: gi, gh [..., 3H] (gh including b_h), hk [..., H] the masked previous state,
 * keepNext [..., 1] the next step's keep mask. Differentiable (composed ops) when called on a
 * gradient tape; one kernel otherwise on wasm and cpu.
 */
export function gruGates(gi: tf.Tensor, gh: tf.Tensor, hk: tf.Tensor, keepNext: tf.Tensor): GateOutputs {
  if (fused(GATES)) {
    const [h, hNext, g] = tf.engine().runKernel(GATES, { gi, gh, hk, keepNext }, {}) as tf.Tensor[];
    return { h: h!, hNext: hNext!, g: g! };
  }
  const H = hk.shape[hk.rank - 1]!;
  const axis = hk.rank - 1;
  const [giR, giU, giN] = tf.split(gi, [H, H, H], axis);
  const [ghR, ghU, ghN] = tf.split(gh, [H, H, H], axis);
  const r = tf.sigmoid(tf.add(giR!, ghR!));
  const u = tf.sigmoid(tf.add(giU!, ghU!));
  const n = tf.tanh(tf.add(giN!, tf.mul(r, ghN!)));
  const h = tf.add(n, tf.mul(u, tf.sub(hk, n)));
  if (tf.engine().isTapeOn()) return { h, hNext: h, g: h }; // autodiff differentiates h; g is unused there
  const oneMinusU = tf.sub(1, u);
  const a = tf.mul(oneMinusU, tf.sub(1, tf.square(n)));
  const g = tf.concat([tf.mul(a, tf.mul(ghN!, tf.mul(r, tf.sub(1, r)))), tf.mul(tf.sub(hk, n), tf.mul(u, oneMinusU)), tf.mul(a, r), a, u], axis);
  return { h, hNext: tf.mul(h, keepNext), g };
}

export interface GateGrads {
  dgh: tf.Tensor;
  dgi: tf.Tensor;
  dhu: tf.Tensor;
}

/** One step's backward through the gates (see the header); carry* from step t+1, zeros at the last step. */
export function gruGatesGrad(dy: tf.Tensor, carryHu: tf.Tensor, carryMm: tf.Tensor, keepNext: tf.Tensor, g: tf.Tensor): GateGrads {
  if (fused(GATES_GRAD)) {
    const [dgh, dgi, dhu] = tf.engine().runKernel(GATES_GRAD, { dy, carryHu, carryMm, keepNext, g }, {}) as tf.Tensor[];
    return { dgh: dgh!, dgi: dgi!, dhu: dhu! };
  }
  const H = dy.shape[dy.rank - 1]!;
  const axis = dy.rank - 1;
  const dh = tf.add(dy, tf.mul(tf.add(carryHu, carryMm), keepNext));
  const [coefs, a, u] = tf.split(g, [3 * H, H, H], axis);
  const dgh = tf.mul(tf.concat([dh, dh, dh], axis), coefs!);
  const [dr, du] = tf.split(dgh, [H, H, H], axis);
  return { dgh, dgi: tf.concat([dr!, du!, tf.mul(dh, a!)], axis), dhu: tf.mul(dh, u!) };
}
