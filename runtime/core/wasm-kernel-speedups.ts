import * as tf from '@tensorflow/tfjs';
// Imported for its side effect too: the wasm kernels must be registered before they can be wrapped.
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmFusedOptimizer } from './wasm-fused-optimizer';

// Two costs dominate recurrent training on tfjs-backend-wasm 4.x, and both are fixed here by
// replacing the registered kernels (the originals stay reachable as fallbacks):
//
// 1. Slice, SplitV and Unpack start with backend.readSync(x), which copies the whole input out of
//    the wasm heap on every call. Unrolling a [T, B, 3H] tensor into T steps therefore copies
//    T * size bytes, O(T^2) in the sequence length. The versions below copy only the selected
//    elements, straight from a view of the heap.
// 2. BatchMatMul with transposeA/transposeB (every matMul gradient) runs 4-7x slower than
//    transposing the operand with the Transpose kernel first and multiplying untransposed.
//
// 3. BatchMatMul over a batch of matrices runs on a plain loop several times slower than the XNNPACK
//    path the original kernel takes for a single matrix; a batch is multiplied here matrix by
//    matrix through the original kernel.
//
// BatchMatMul with an empty operand is also answered here: the original returns uninitialised
// memory when the inner dimension is 0, where the product is all zeros.
//
// Anything these versions do not cover (string or complex dtypes, parameters that fail the
// checks the original kernels would report) is passed to the original kernel unchanged, so the
// errors users see are tfjs's own.

type KernelArgs = Parameters<tf.KernelFunc>[0];
type KernelResult = ReturnType<tf.KernelFunc>;

// Elements are copied as integers of the same width: a float32 copied through a JS number could
// have a NaN payload rewritten, and the slices must be bit-exact.
type HeapWords = Int32Array | Uint8Array;
type CopyableDtype = 'float32' | 'int32' | 'bool';

function isCopyable(dtype: tf.DataType): dtype is CopyableDtype {
  return dtype === 'float32' || dtype === 'int32' || dtype === 'bool';
}

function wasmBackend(args: KernelArgs): BackendWasm {
  return args.backend as BackendWasm;
}

/**
 * Moves every input still held by another backend into the wasm heap. That move happens on first
 * access and can grow the heap, detaching views taken before; so kernels call this before they
 * allocate outputs or take any view.
 */
function makeResident(backend: BackendWasm, inputs: readonly tf.TensorInfo[]): void {
  for (const t of inputs) backend.dataIdMap.get(t.dataId);
}

/**
 * A view of a tensor's bytes in the wasm heap. Valid only until the next allocation: growing the
 * heap replaces its ArrayBuffer and detaches every view taken before, so callers allocate all
 * outputs first and take views afterwards.
 */
function heapWords(backend: BackendWasm, info: tf.TensorInfo): HeapWords {
  const view = backend.typedArrayFromHeap(info);
  if (view instanceof Uint8Array) return view;
  return new Int32Array(view.buffer, view.byteOffset, view.length);
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function rowMajorStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}

/** A box [begin, begin + size) of the input, already checked to lie inside it. */
interface SliceBox {
  begin: number[];
  size: number[];
}

function isIndex(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

function boxInside(shape: readonly number[], box: SliceBox): boolean {
  if (box.begin.length !== shape.length || box.size.length !== shape.length) return false;
  for (let d = 0; d < shape.length; d++) {
    const b = box.begin[d]!;
    const s = box.size[d]!;
    if (!isIndex(b) || !isIndex(s) || b + s > shape[d]!) return false;
  }
  return true;
}

// Below this many elements a plain loop beats creating a subarray for TypedArray.set.
const SHORT_RUN = 32;

/**
 * Copies the box out of src (laid out row-major in srcShape) into dst from index 0. Trailing
 * dimensions the box spans completely are merged with the innermost partial one into a single
 * contiguous run, so only the dimensions before it are walked.
 */
function copyBox(src: HeapWords, srcShape: readonly number[], box: SliceBox, dst: HeapWords): void {
  const rank = srcShape.length;
  const strides = rowMajorStrides(srcShape);
  // The innermost dimension the box does not span completely; everything after it is contiguous.
  let split = rank - 1;
  while (split > 0 && box.size[split] === srcShape[split]) split--;
  let run = 1;
  for (let d = Math.max(split, 0); d < rank; d++) run *= box.size[d]!;
  let srcOffset = 0;
  for (let d = 0; d < rank; d++) srcOffset += box.begin[d]! * strides[d]!;
  if (run === 0) return;

  let rows = 1;
  for (let d = 0; d < split; d++) rows *= box.size[d]!;
  const counter = new Array<number>(Math.max(split, 0)).fill(0);
  let dstOffset = 0;
  for (let r = 0; r < rows; r++) {
    if (run < SHORT_RUN) {
      for (let i = 0; i < run; i++) dst[dstOffset + i] = src[srcOffset + i]!;
    } else {
      dst.set(src.subarray(srcOffset, srcOffset + run), dstOffset);
    }
    dstOffset += run;
    // Step the multi-index over the walked dimensions, innermost first, carrying as needed.
    for (let d = split - 1; d >= 0; d--) {
      counter[d]!++;
      srcOffset += strides[d]!;
      if (counter[d]! < box.size[d]!) break;
      srcOffset -= counter[d]! * strides[d]!;
      counter[d] = 0;
    }
  }
}

/**
 * Allocates one output per box (with the given output shapes, each the box's size up to removed
 * unit dimensions), then fills them. Allocation comes first because a heap growth during it
 * would detach a view of the input taken earlier.
 */
function sliceInto(backend: BackendWasm, x: tf.TensorInfo, boxes: readonly SliceBox[], outShapes: readonly number[][]): tf.TensorInfo[] {
  makeResident(backend, [x]);
  const outs = outShapes.map((shape) => backend.makeOutput(shape, x.dtype));
  if (sizeOf(x.shape) === 0) return outs;
  const src = heapWords(backend, x);
  for (let i = 0; i < outs.length; i++) {
    const out = outs[i]!;
    if (sizeOf(out.shape) === 0) continue;
    copyBox(src, x.shape, boxes[i]!, heapWords(backend, out));
  }
  return outs;
}

function input(args: KernelArgs, name: string): tf.TensorInfo | undefined {
  return args.inputs[name];
}

function slice(original: tf.KernelFunc, args: KernelArgs): KernelResult {
  const x = input(args, 'x');
  if (x === undefined || !isCopyable(x.dtype)) return original(args);
  const attrs = args.attrs as unknown as tf.SliceAttrs;
  let box: SliceBox;
  try {
    const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin, attrs.size);
    box = { begin: begin!, size: size! };
  } catch {
    return original(args);
  }
  if (!boxInside(x.shape, box)) return original(args);
  return sliceInto(wasmBackend(args), x, [box], [box.size])[0]!;
}

function normalAxis(axis: number, rank: number): number | undefined {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) return undefined;
  return axis < 0 ? axis + rank : axis;
}

function splitV(original: tf.KernelFunc, args: KernelArgs): KernelResult {
  const x = input(args, 'x');
  if (x === undefined || !isCopyable(x.dtype)) return original(args);
  const attrs = args.attrs as unknown as tf.SplitVAttrs;
  const axis = normalAxis(attrs.axis, x.shape.length);
  if (axis === undefined) return original(args);
  let sizes: number[];
  try {
    sizes = tf.backend_util.prepareSplitSize(x, attrs.numOrSizeSplits, axis);
  } catch {
    return original(args);
  }
  if (!sizes.every(isIndex) || sizes.reduce((a, b) => a + b, 0) !== x.shape[axis]) return original(args);

  const boxes: SliceBox[] = [];
  let start = 0;
  for (const n of sizes) {
    const begin = new Array<number>(x.shape.length).fill(0);
    begin[axis] = start;
    const size = [...x.shape];
    size[axis] = n;
    boxes.push({ begin, size });
    start += n;
  }
  return sliceInto(wasmBackend(args), x, boxes, boxes.map((b) => b.size));
}

function unpack(original: tf.KernelFunc, args: KernelArgs): KernelResult {
  const value = input(args, 'value');
  if (value === undefined || !isCopyable(value.dtype)) return original(args);
  const attrs = args.attrs as unknown as tf.UnpackAttrs;
  const axis = normalAxis(attrs.axis, value.shape.length);
  if (axis === undefined) return original(args);

  const outShape = value.shape.filter((_, d) => d !== axis);
  const boxes: SliceBox[] = [];
  for (let i = 0; i < value.shape[axis]!; i++) {
    const begin = new Array<number>(value.shape.length).fill(0);
    begin[axis] = i;
    const size = [...value.shape];
    size[axis] = 1;
    boxes.push({ begin, size });
  }
  return sliceInto(wasmBackend(args), value, boxes, boxes.map(() => [...outShape]));
}

function swapLastTwo(transpose: tf.KernelFunc, backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const perm = x.shape.map((_, d) => d);
  const r = perm.length;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  const attrs: tf.TransposeAttrs = { perm };
  const out = transpose({ inputs: { x }, attrs: attrs as unknown as tf.NamedAttrMap, backend });
  if (Array.isArray(out)) throw new Error('wasm Transpose kernel returned several tensors');
  return out;
}

/**
 * The product when an operand is empty. The original kernel hands these to XNNPACK, which
 * rejects a zero inner dimension and leaves the output uninitialised instead of zero.
 */
function emptyProduct(backend: BackendWasm, a: tf.TensorInfo, b: tf.TensorInfo, attrs: tf.BatchMatMulAttrs): tf.TensorInfo | undefined {
  const ra = a.shape.length;
  const rb = b.shape.length;
  let batch: number[];
  try {
    batch = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    return undefined;
  }
  const rows = attrs.transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const cols = attrs.transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  const out = backend.makeOutput([...batch, rows, cols], 'float32');
  if (sizeOf(out.shape) > 0) backend.typedArrayFromHeap(out).fill(0);
  return out;
}

/** Matrix `index` of x's batch as a tensor of its own (a copy), [rows, cols]. */
function matrixOf(backend: BackendWasm, x: tf.TensorInfo, index: number, shape: [number, number]): tf.TensorInfo {
  const size = shape[0] * shape[1];
  const out = backend.makeOutput(shape, 'float32');
  heapWords(backend, out).set(heapWords(backend, x).subarray(index * size, (index + 1) * size));
  return out;
}

/**
 * a·b (untransposed) for a batch of more than one matrix, one original-kernel call per matrix so
 * each takes the single-matrix XNNPACK path; an operand with a batch of one is shared by all.
 * Undefined where the batch is one, or broadcasts in ways other than that (left to the original).
 */
function matMulPerMatrix(original: tf.KernelFunc, args: KernelArgs, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | undefined {
  const batchShapeA = a.shape.slice(0, -2);
  const batchShapeB = b.shape.slice(0, -2);
  const batchA = sizeOf(batchShapeA);
  const batchB = sizeOf(batchShapeB);
  const batch = Math.max(batchA, batchB);
  if (batch <= 1 || (batchA !== 1 && batchA !== batch) || (batchB !== 1 && batchB !== batch)) return undefined;
  let outBatch: number[];
  try {
    outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchShapeA, batchShapeB);
  } catch {
    return undefined;
  }
  if (sizeOf(outBatch) !== batch) return undefined;
  const backend = wasmBackend(args);
  const m = a.shape[a.shape.length - 2]!;
  const k = a.shape[a.shape.length - 1]!;
  const n = b.shape[b.shape.length - 1]!;
  const out = backend.makeOutput([...outBatch, m, n], 'float32');
  const plain: tf.BatchMatMulAttrs = { transposeA: false, transposeB: false };
  for (let i = 0; i < batch; i++) {
    const temporaries: tf.TensorInfo[] = [];
    try {
      const ai = batchA === 1 ? a : matrixOf(backend, a, i, [m, k]);
      if (ai !== a) temporaries.push(ai);
      const bi = batchB === 1 ? b : matrixOf(backend, b, i, [k, n]);
      if (bi !== b) temporaries.push(bi);
      const product = original({ ...args, inputs: { a: ai, b: bi }, attrs: { ...args.attrs, ...plain } });
      if (Array.isArray(product)) throw new Error('wasm BatchMatMul kernel returned several tensors');
      temporaries.push(product);
      heapWords(backend, out).set(heapWords(backend, product), i * m * n);
    } finally {
      for (const t of temporaries) backend.disposeData(t.dataId);
    }
  }
  return out;
}

function batchMatMul(original: tf.KernelFunc, args: KernelArgs): KernelResult {
  const attrs = args.attrs as unknown as tf.BatchMatMulAttrs;
  const a = input(args, 'a');
  const b = input(args, 'b');
  if (a === undefined || b === undefined) return original(args);
  const ra = a.shape.length;
  const rb = b.shape.length;
  // Inputs the original rejects stay with it, so its error messages are unchanged.
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2) return original(args);
  const innerA = attrs.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const innerB = attrs.transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  if (innerA !== innerB) return original(args);

  const backend = wasmBackend(args);
  if (sizeOf(a.shape) === 0 || sizeOf(b.shape) === 0) return emptyProduct(backend, a, b, attrs) ?? original(args);
  if (!attrs.transposeA && !attrs.transposeB) return matMulPerMatrix(original, args, a, b) ?? original(args);
  const transpose = tf.getKernel(tf.Transpose, 'wasm')?.kernelFunc;
  if (transpose === undefined) return original(args);

  const temporaries: tf.TensorInfo[] = [];
  try {
    let a2 = a;
    let b2 = b;
    if (attrs.transposeA) temporaries.push((a2 = swapLastTwo(transpose, backend, a)));
    if (attrs.transposeB) temporaries.push((b2 = swapLastTwo(transpose, backend, b)));
    const plain: tf.BatchMatMulAttrs = { transposeA: false, transposeB: false };
    return matMulPerMatrix(original, args, a2, b2) ?? original({ ...args, inputs: { a: a2, b: b2 }, attrs: { ...args.attrs, ...plain } });
  } finally {
    for (const t of temporaries) backend.disposeData(t.dataId);
  }
}

/**
 * The Sum kernel reduces only innermost axes: for any other axes it first transposes the whole
 * input with the Transpose kernel, which is the slow part (a bias gradient, a sum over the rows of
 * [3264, 64], took ~3 ms where the additions take ~0.3 ms). Summing over leading axes is done here
 * straight from the heap, row after row. Each output element gets its terms in the same order as
 * the original (row 0 first) and every partial sum is rounded to float32 when stored, as the
 * original's float accumulator does, so the results are bit-identical.
 */
function sum(original: tf.KernelFunc, args: KernelArgs): KernelResult {
  const x = input(args, 'x');
  if (x === undefined || x.dtype !== 'float32') return original(args);
  const attrs = args.attrs as unknown as tf.SumAttrs;
  const rank = x.shape.length;
  let axes: number[];
  try {
    axes = tf.util.parseAxisParam(attrs.axis, x.shape);
  } catch {
    return original(args);
  }
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  // Only a proper prefix of the axes; innermost reductions are already fast in the original.
  if (sorted.length === 0 || sorted.length >= rank || sorted.some((a, i) => a !== i)) return original(args);
  const lead = sorted.length;
  const rows = sizeOf(x.shape.slice(0, lead));
  const cols = sizeOf(x.shape.slice(lead));
  const outShape = attrs.keepDims ? x.shape.map((d, i) => (i < lead ? 1 : d)) : x.shape.slice(lead);
  const backend = wasmBackend(args);
  makeResident(backend, [x]);
  const out = backend.makeOutput(outShape, 'float32');
  const acc = backend.typedArrayFromHeap(out) as Float32Array;
  acc.fill(0);
  if (rows === 0 || cols === 0) return out;
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  for (let r = 0; r < rows; r++) {
    const offset = r * cols;
    for (let j = 0; j < cols; j++) acc[j] = acc[j]! + src[offset + j]!;
  }
  return out;
}

/**
 * The original Concat copies each row of each input with `subarray` + `set`; for the many short
 * rows of a last-axis concat (e.g. 1600 rows of 64 + 64 + 32) creating those views costs more
 * than the copying. Short runs are copied element by element instead (as integers, bit-exact).
 */
// Up to this many elements per input row, a plain copy loop beats a subarray view + set (measured).
const CONCAT_LOOP_MAX = 256;

function concat(original: tf.KernelFunc, args: KernelArgs): KernelResult {
  const list = Object.values(args.inputs) as tf.TensorInfo[];
  if (list.length < 2 || !list.every((t) => isCopyable(t.dtype) && t.dtype === list[0]!.dtype && t.shape.length === list[0]!.shape.length)) return original(args);
  const attrs = args.attrs as unknown as tf.ConcatAttrs;
  let axis: number;
  try {
    axis = tf.util.parseAxisParam(attrs.axis, list[0]!.shape)[0]!;
    tf.backend_util.assertParamsConsistent(list.map((t) => t.shape), axis);
  } catch {
    return original(args);
  }
  const parts = list.filter((t) => sizeOf(t.shape) > 0);
  const inner = parts.map((t) => sizeOf(t.shape.slice(axis)));
  // Long rows are what the original handles well.
  if (parts.length < 2 || inner.some((n) => n > CONCAT_LOOP_MAX)) return original(args);
  const outShape = tf.backend_util.computeOutShape(list.map((t) => t.shape), axis);
  const backend = wasmBackend(args);
  makeResident(backend, parts);
  const out = backend.makeOutput(outShape, list[0]!.dtype);
  if (sizeOf(outShape) === 0) return out;
  const dst = heapWords(backend, out);
  const srcs = parts.map((t) => heapWords(backend, t));
  const rows = sizeOf(parts[0]!.shape.slice(0, axis));
  let o = 0;
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < srcs.length; i++) {
      const n = inner[i]!;
      const src = srcs[i]!;
      const start = r * n;
      for (let k = 0; k < n; k++) dst[o++] = src[start + k]!;
    }
  }
  return out;
}

type Wrapper = (original: tf.KernelFunc, args: KernelArgs) => KernelResult;

const wrappers: ReadonlyArray<readonly [string, Wrapper]> = [
  [tf.Slice, slice],
  [tf.SplitV, splitV],
  [tf.Unpack, unpack],
  [tf.BatchMatMul, batchMatMul],
  [tf.Sum, sum],
  [tf.Concat, concat],
];

// Kernel functions this module registered, to recognise them when asked to register again.
const ours = new WeakSet<tf.KernelFunc>();

/**
 * Replaces the wasm Slice, SplitV, Unpack and BatchMatMul kernels with the faster versions above,
 * each falling back to the kernel it replaced. Idempotent; a kernel not registered for wasm is
 * left alone. Safe before or after the wasm backend initialises: the replaced kernel's setup and
 * dispose hooks are kept, so its state (e.g. BatchMatMul's compiled entry point) is still set up.
 * Also registers the fused optimiser kernels (wasm-fused-optimizer.ts).
 */
export function registerWasmKernelSpeedups(): void {
  for (const [kernelName, wrapper] of wrappers) {
    const current = tf.getKernel(kernelName, 'wasm');
    if (current === undefined || ours.has(current.kernelFunc)) continue;
    const original = current.kernelFunc;
    const kernelFunc: tf.KernelFunc = (args) => wrapper(original, args);
    ours.add(kernelFunc);
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ ...current, kernelFunc });
  }
  registerWasmFusedOptimizer();
}
