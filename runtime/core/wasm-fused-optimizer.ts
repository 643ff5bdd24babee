import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

// One optimiser step as ONE wasm kernel call. Per tensor, Adam takes about a dozen element-wise
// kernels and a Polyak update three; on tfjs-backend-wasm each call through the engine costs
// tens of microseconds of fixed overhead, which for RL-sized networks outweighs the arithmetic.
// Inside the one kernel, the step runs one of two ways, whichever is faster for its size:
//  - small (≤ JS_LOOP_MAX_ELEMENTS elements in all): one JS loop over every element of every
//    parameter, straight on views of the wasm heap. Each result is rounded to float32 with
//    Math.fround where a tfjs kernel would store a float32, in the per-tensor ops' order: a
//    float32 +, −, ×, ÷ or √ computed in float64 and then rounded is the correctly rounded
//    float32 result (float64 has more than twice float32's precision), so this reproduces the
//    per-tensor step bit for bit.
//  - large: the per-tensor ops' own wasm kernels (SIMD), called directly rather than through the
//    engine, once over flat copies of all parameters and gradients: the same arithmetic by
//    construction.
// The inputs are never written.
//
// Heap growth (any allocation) detaches views taken before it, so each kernel first makes sure
// every input lives on this backend, and takes a view only after the allocations it depends on.

/** Kernel name of the fused Adam step (trainers/adam.ts runs it through tf.engine().runKernel). */
export const FUSED_ADAM = 'TroupeFusedAdam';
/** Kernel name of the fused Polyak (soft target) update. */
export const FUSED_POLYAK = 'TroupeFusedPolyak';
/** Kernel name of global gradient-norm clipping (the norm and the clipping factor). */
export const FUSED_GLOBAL_NORM_CLIP = 'TroupeGlobalNormClip';

/**
 * Attributes of the FUSED_ADAM kernel. Its inputs are `param<i>` and `grad<i>` for i < count,
 * the flat moments `m` and `v` (all parameters' elements, concatenated in order), optionally
 * `scale` (a scalar multiplying every gradient) and, for the tfjs formulation, the running
 * `beta1Power` and `beta2Power`. Its outputs are the count new parameters, the new m and v, and
 * for the tfjs formulation the next β-powers.
 */
export interface FusedAdamAttrs {
  count: number;
  formulation: 'pytorch' | 'tfjs';
  beta1: number;
  beta2: number;
  epsilon: number;
  /** The step's learning rate (the tfjs formulation's update multiplies by −lr). */
  lr: number;
  /** pytorch: lr / (1 − β1ᵗ), float64 as computed by the caller. */
  stepSize: number;
  /** pytorch: √(1 − β2ᵗ). */
  bc2Sqrt: number;
  /** pytorch: 1 − lr · weightDecay, applied when `decoupledDecay`. */
  decay: number;
  decoupledDecay: boolean;
}

/** Attributes of FUSED_POLYAK: inputs `target<i>`, `source<i>` for i < count; outputs the new targets. */
export interface FusedPolyakAttrs {
  count: number;
  tau: number;
}

/**
 * Attributes of FUSED_GLOBAL_NORM_CLIP: inputs `grad<i>` for i < count (count ≥ 1); outputs the
 * global L2 norm and min(1, maxNorm / (norm + 1e-6)), both scalars.
 */
export interface GlobalNormClipAttrs {
  count: number;
  maxNorm: number;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

const f32 = Math.fround;

/**
 * Up to this many parameter elements a step loops in JS; above, it runs the wasm (SIMD) kernels
 * directly on flat copies. Measured on tfjs-backend-wasm 4.x: the loop costs ~13 ns an element,
 * the kernels ~5 ns an element plus ~40 µs of fixed cost, so they cross near 5,000 elements.
 * Both compute the same float32 operations, so the choice does not change any number.
 */
const JS_LOOP_MAX_ELEMENTS = 4096;

function input(args: KernelArgs, name: string): tf.TensorInfo {
  const info = args.inputs[name];
  if (info === undefined) throw new Error(`wasm fused optimiser kernel: missing input '${name}'`);
  if (info.dtype !== 'float32') throw new Error(`wasm fused optimiser kernel: input '${name}' is ${info.dtype}, expected float32`);
  return info;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Moves every input's data onto the wasm backend now, as that may allocate (and grow the heap). */
function residentInputs(backend: BackendWasm, infos: readonly tf.TensorInfo[]): void {
  for (const info of infos) backend.dataIdMap.get(info.dataId);
}

function floats(backend: BackendWasm, info: tf.TensorInfo): Float32Array {
  if (sizeOf(info.shape) === 0) return new Float32Array(0);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** The inputs of FUSED_ADAM, checked. */
interface AdamIo {
  params: tf.TensorInfo[];
  grads: tf.TensorInfo[];
  m: tf.TensorInfo;
  v: tf.TensorInfo;
  scale?: tf.TensorInfo;
  /** tfjs formulation: β1ᵗ⁺¹, β2ᵗ⁺¹. */
  powers: tf.TensorInfo[];
}

function fusedAdam(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const attrs = args.attrs as unknown as FusedAdamAttrs;
  const io: AdamIo = { params: [], grads: [], m: input(args, 'm'), v: input(args, 'v'), powers: [] };
  for (let i = 0; i < attrs.count; i++) {
    io.params.push(input(args, `param${i}`));
    io.grads.push(input(args, `grad${i}`));
  }
  if (args.inputs['scale'] !== undefined) io.scale = input(args, 'scale');
  if (attrs.formulation === 'tfjs') io.powers = [input(args, 'beta1Power'), input(args, 'beta2Power')];
  let total = 0;
  for (let i = 0; i < attrs.count; i++) {
    const n = sizeOf(io.params[i]!.shape);
    if (sizeOf(io.grads[i]!.shape) !== n) throw new Error(`wasm fused Adam: gradient ${i} has shape [${io.grads[i]!.shape}], its parameter [${io.params[i]!.shape}]`);
    total += n;
  }
  if (sizeOf(io.m.shape) !== total || sizeOf(io.v.shape) !== total) throw new Error(`wasm fused Adam: moments hold ${sizeOf(io.m.shape)} and ${sizeOf(io.v.shape)} elements, the parameters ${total}`);
  residentInputs(backend, [...io.params, ...io.grads, io.m, io.v, ...(io.scale ? [io.scale] : []), ...io.powers]);
  return total > JS_LOOP_MAX_ELEMENTS ? fusedAdamByKernels(backend, attrs, io, total) : fusedAdamByLoop(backend, attrs, io);
}

/** FUSED_ADAM for small parameter sets: one JS loop over views of the heap. */
function fusedAdamByLoop(backend: BackendWasm, attrs: FusedAdamAttrs, io: AdamIo): tf.TensorInfo[] {
  const { params, grads, m, v, scale, powers } = io;
  const tfjsForm = attrs.formulation === 'tfjs';
  const outParams = params.map((p) => backend.makeOutput([...p.shape], 'float32'));
  const outM = backend.makeOutput([...m.shape], 'float32');
  const outV = backend.makeOutput([...v.shape], 'float32');
  const outPowers = powers.map(() => backend.makeOutput([], 'float32'));

  // The scalar operands as the per-tensor ops saw them: JS numbers become float32 tensors.
  const b1 = f32(attrs.beta1);
  const oneMinusB1 = f32(1 - attrs.beta1);
  const b2 = f32(attrs.beta2);
  const oneMinusB2 = f32(1 - attrs.beta2);
  const eps = f32(attrs.epsilon);
  const s = scale ? floats(backend, scale)[0]! : 1;
  const mIn = floats(backend, m);
  const vIn = floats(backend, v);
  const mOut = floats(backend, outM);
  const vOut = floats(backend, outV);

  let offset = 0;
  if (tfjsForm) {
    const pow1 = floats(backend, powers[0]!)[0]!;
    const pow2 = floats(backend, powers[1]!)[0]!;
    const oneMinusPow1 = f32(1 - pow1);
    const oneMinusPow2 = f32(1 - pow2);
    const negLr = f32(-attrs.lr);
    for (let i = 0; i < attrs.count; i++) {
      const p = floats(backend, params[i]!);
      const g = floats(backend, grads[i]!);
      const out = floats(backend, outParams[i]!);
      for (let j = 0; j < p.length; j++, offset++) {
        const gj = scale ? f32(g[j]! * s) : g[j]!;
        const m1 = f32(f32(mIn[offset]! * b1) + f32(gj * oneMinusB1));
        const v1 = f32(f32(vIn[offset]! * b2) + f32(f32(gj * gj) * oneMinusB2));
        mOut[offset] = m1;
        vOut[offset] = v1;
        const mHat = f32(m1 / oneMinusPow1);
        const vHat = f32(v1 / oneMinusPow2);
        out[j] = f32(f32(f32(mHat / f32(f32(Math.sqrt(vHat)) + eps)) * negLr) + p[j]!);
      }
    }
    floats(backend, outPowers[0]!)[0] = f32(pow1 * b1);
    floats(backend, outPowers[1]!)[0] = f32(pow2 * b2);
  } else {
    const stepSize = f32(attrs.stepSize);
    const bc2Sqrt = f32(attrs.bc2Sqrt);
    const decay = f32(attrs.decay);
    const decoupledDecay = attrs.decoupledDecay;
    for (let i = 0; i < attrs.count; i++) {
      const p = floats(backend, params[i]!);
      const g = floats(backend, grads[i]!);
      const out = floats(backend, outParams[i]!);
      for (let j = 0; j < p.length; j++, offset++) {
        const gj = scale ? f32(g[j]! * s) : g[j]!;
        const m1 = f32(f32(mIn[offset]! * b1) + f32(gj * oneMinusB1));
        const v1 = f32(f32(vIn[offset]! * b2) + f32(f32(gj * gj) * oneMinusB2));
        mOut[offset] = m1;
        vOut[offset] = v1;
        const denominator = f32(f32(f32(Math.sqrt(v1)) / bc2Sqrt) + eps);
        const step = f32(stepSize * f32(m1 / denominator));
        const decayed = decoupledDecay ? f32(p[j]! * decay) : p[j]!;
        out[j] = f32(decayed - step);
      }
    }
  }
  return [...outParams, outM, outV, ...outPowers];
}


/**
 * Calls wasm kernels directly (no engine: no tensors, no tracking, no profiling), keeping what
 * they return until `release`. The arithmetic is then exactly the per-tensor ops' own.
 */
class DirectKernels {
  private readonly temporaries: tf.TensorInfo[] = [];
  private readonly funcs = new Map<string, tf.KernelFunc>();

  constructor(readonly backend: BackendWasm) {}

  private run(kernelName: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
    let func = this.funcs.get(kernelName);
    if (func === undefined) {
      const config = tf.getKernel(kernelName, 'wasm');
      if (config === undefined) throw new Error(`wasm fused optimiser kernel: no wasm kernel ${kernelName}`);
      func = config.kernelFunc;
      this.funcs.set(kernelName, func);
    }
    const out = func({ inputs, backend: this.backend, attrs });
    if (Array.isArray(out)) throw new Error(`wasm kernel ${kernelName} returned several tensors`);
    this.temporaries.push(out);
    return out;
  }

  add(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Add, { a, b });
  }

  sub(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Sub, { a, b });
  }

  mul(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Multiply, { a, b });
  }

  div(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.RealDiv, { a, b });
  }

  minimum(a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Minimum, { a, b });
  }

  /** The sum of all elements, as tf.sum(x) asks the Sum kernel for it. */
  sumAll(x: tf.TensorInfo): tf.TensorInfo {
    const attrs: tf.SumAttrs = { axis: null as unknown as number[], keepDims: false };
    return this.run(tf.Sum, { x }, attrs as unknown as tf.NamedAttrMap);
  }

  addN(xs: tf.TensorInfo[]): tf.TensorInfo {
    // AddN takes its inputs as a list, as tf.addN hands them over.
    return this.run(tf.AddN, xs as unknown as tf.NamedTensorInfoMap);
  }

  sqrt(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Sqrt, { x });
  }

  square(x: tf.TensorInfo): tf.TensorInfo {
    return this.run(tf.Square, { x });
  }

  /** A float32 scalar, as tfjs makes of a JS number operand. */
  scalar(value: number): tf.TensorInfo {
    const out = this.backend.makeOutput([], 'float32');
    this.temporaries.push(out);
    (this.backend.typedArrayFromHeap(out) as Float32Array)[0] = value;
    return out;
  }

  /** A new flat vector holding the tensors' elements in order. */
  concat(infos: readonly tf.TensorInfo[], total: number): tf.TensorInfo {
    const out = this.backend.makeOutput([total], 'float32');
    this.temporaries.push(out);
    const dst = floats(this.backend, out);
    let offset = 0;
    for (const info of infos) {
      const src = floats(this.backend, info);
      dst.set(src, offset);
      offset += src.length;
    }
    return out;
  }

  /** Keeps `info` (an output of the calling kernel) from being released. */
  keep(info: tf.TensorInfo): tf.TensorInfo {
    const i = this.temporaries.indexOf(info);
    if (i >= 0) this.temporaries.splice(i, 1);
    return info;
  }

  release(): void {
    for (const t of this.temporaries) this.backend.disposeData(t.dataId);
    this.temporaries.length = 0;
  }
}

/**
 * FUSED_ADAM for large parameter sets: the per-tensor ops' wasm kernels (SIMD) once over flat
 * copies of all parameters and gradients, called directly, so the engine sees one kernel.
 */
function fusedAdamByKernels(backend: BackendWasm, attrs: FusedAdamAttrs, io: AdamIo, total: number): tf.TensorInfo[] {
  const k = new DirectKernels(backend);
  try {
    const p = k.concat(io.params, total);
    const raw = k.concat(io.grads, total);
    const g = io.scale ? k.mul(raw, io.scale) : raw;
    const m1 = k.keep(k.add(k.mul(io.m, k.scalar(attrs.beta1)), k.mul(g, k.scalar(1 - attrs.beta1))));
    const v1 = k.keep(k.add(k.mul(io.v, k.scalar(attrs.beta2)), k.mul(k.square(g), k.scalar(1 - attrs.beta2))));
    let p1: tf.TensorInfo;
    const outPowers: tf.TensorInfo[] = [];
    if (attrs.formulation === 'tfjs') {
      const [pow1, pow2] = io.powers as [tf.TensorInfo, tf.TensorInfo];
      const one = k.scalar(1);
      const mHat = k.div(m1, k.sub(one, pow1));
      const vHat = k.div(v1, k.sub(one, pow2));
      p1 = k.add(k.mul(k.div(mHat, k.add(k.sqrt(vHat), k.scalar(attrs.epsilon))), k.scalar(-attrs.lr)), p);
      outPowers.push(k.keep(k.mul(pow1, k.scalar(attrs.beta1))), k.keep(k.mul(pow2, k.scalar(attrs.beta2))));
    } else {
      const decayed = attrs.decoupledDecay ? k.mul(p, k.scalar(attrs.decay)) : p;
      const denominator = k.add(k.div(k.sqrt(v1), k.scalar(attrs.bc2Sqrt)), k.scalar(attrs.epsilon));
      p1 = k.sub(decayed, k.mul(k.scalar(attrs.stepSize), k.div(m1, denominator)));
    }
    return [...splitInto(backend, p1, io.params), m1, v1, ...outPowers];
  } finally {
    k.release();
  }
}

function fusedPolyak(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const attrs = args.attrs as unknown as FusedPolyakAttrs;
  const targets: tf.TensorInfo[] = [];
  const sources: tf.TensorInfo[] = [];
  let total = 0;
  for (let i = 0; i < attrs.count; i++) {
    const t = input(args, `target${i}`);
    const s = input(args, `source${i}`);
    if (sizeOf(t.shape) !== sizeOf(s.shape)) throw new Error(`wasm fused Polyak: source ${i} has shape [${s.shape}], its target [${t.shape}]`);
    targets.push(t);
    sources.push(s);
    total += sizeOf(t.shape);
  }
  residentInputs(backend, [...targets, ...sources]);
  if (total > JS_LOOP_MAX_ELEMENTS) return fusedPolyakByKernels(backend, attrs.tau, targets, sources, total);
  const outs = targets.map((t) => backend.makeOutput([...t.shape], 'float32'));
  const keep = f32(1 - attrs.tau);
  const tau = f32(attrs.tau);
  for (let i = 0; i < attrs.count; i++) {
    const t = floats(backend, targets[i]!);
    const s = floats(backend, sources[i]!);
    const out = floats(backend, outs[i]!);
    for (let j = 0; j < t.length; j++) out[j] = f32(f32(keep * t[j]!) + f32(tau * s[j]!));
  }
  return outs;
}

function fusedPolyakByKernels(backend: BackendWasm, tau: number, targets: tf.TensorInfo[], sources: tf.TensorInfo[], total: number): tf.TensorInfo[] {
  const k = new DirectKernels(backend);
  try {
    const moved = k.add(k.mul(k.scalar(1 - tau), k.concat(targets, total)), k.mul(k.scalar(tau), k.concat(sources, total)));
    return splitInto(backend, moved, targets);
  } finally {
    k.release();
  }
}

/** New tensors shaped like `like`, filled in order from the flat vector. */
function splitInto(backend: BackendWasm, flat: tf.TensorInfo, like: readonly tf.TensorInfo[]): tf.TensorInfo[] {
  const outs = like.map((info) => backend.makeOutput([...info.shape], 'float32'));
  const src = floats(backend, flat);
  let offset = 0;
  for (const out of outs) {
    const dst = floats(backend, out);
    dst.set(src.subarray(offset, offset + dst.length));
    offset += dst.length;
  }
  return outs;
}

/** The ops of tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) and the clipping factor, called directly. */
function globalNormClip(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const attrs = args.attrs as unknown as GlobalNormClipAttrs;
  const grads: tf.TensorInfo[] = [];
  for (let i = 0; i < attrs.count; i++) grads.push(input(args, `grad${i}`));
  if (grads.length === 0) throw new Error('wasm global-norm clip: no gradients');
  residentInputs(backend, grads);
  const k = new DirectKernels(backend);
  try {
    const norm = k.keep(k.sqrt(k.addN(grads.map((g) => k.sumAll(k.square(g))))));
    const scale = k.keep(k.minimum(k.scalar(1), k.div(k.scalar(attrs.maxNorm), k.add(norm, k.scalar(1e-6)))));
    return [norm, scale];
  } finally {
    k.release();
  }
}

const kernels: readonly tf.KernelConfig[] = [
  { kernelName: FUSED_ADAM, backendName: 'wasm', kernelFunc: fusedAdam as tf.KernelFunc },
  { kernelName: FUSED_POLYAK, backendName: 'wasm', kernelFunc: fusedPolyak as tf.KernelFunc },
  { kernelName: FUSED_GLOBAL_NORM_CLIP, backendName: 'wasm', kernelFunc: globalNormClip as tf.KernelFunc },
];

/** Registers the fused optimiser kernels for wasm. Idempotent. */
export function registerWasmFusedOptimizer(): void {
  for (const config of kernels) {
    if (tf.getKernel(config.kernelName, config.backendName) === undefined) tf.registerKernel(config);
  }
}

/** Whether the fused kernels can run now: the wasm backend is active and they are registered. */
export function fusedOptimizerAvailable(): boolean {
  return tf.getBackend() === 'wasm' && tf.getKernel(FUSED_ADAM, 'wasm') !== undefined && tf.getKernel(FUSED_POLYAK, 'wasm') !== undefined;
}
