import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

// tfjs-backend-wasm 4.x ships no UnsortedSegmentSum (the gradient of gather, so embedding and
// one-hot-gather training fail) and no Conv2DBackpropFilter (the filter gradient of conv2d).
// These versions read the inputs out of the wasm heap, loop in JS, and write the result back
// into a wasm-owned output. They run once per backward pass on small RL-sized tensors, so the
// JS loop is cheaper to maintain than a composition of on-backend ops and is exact.

type KernelArgs = Parameters<tf.KernelFunc>[0];

function wasmBackend(args: KernelArgs): BackendWasm {
  return args.backend as BackendWasm;
}

function input(args: KernelArgs, name: string): tf.TensorInfo {
  const info = args.inputs[name];
  if (info === undefined) throw new Error(`wasm kernel: missing input '${name}'`);
  return info;
}

function numericData(backend: BackendWasm, info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array {
  const values = backend.readSync(info.dataId);
  if (values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array) return values;
  throw new Error(`wasm kernel: expected numeric tensor data, got dtype ${info.dtype}`);
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function unsortedSegmentSum(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const x = input(args, 'x');
  const segmentIds = input(args, 'segmentIds');
  const numSegments = (args.attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments;

  // segmentIds indexes the leading dims of x; everything after them is summed as one row.
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const rowSize = product(rowShape);
  const xs = numericData(backend, x);
  const ids = numericData(backend, segmentIds);

  const out = backend.makeOutput([numSegments, ...rowShape], x.dtype);
  const outValues = backend.typedArrayFromHeap(out);
  outValues.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const segment = ids[i]!;
    // TensorFlow drops negative and out-of-range ids rather than failing.
    if (segment < 0 || segment >= numSegments) continue;
    const src = i * rowSize;
    const dst = segment * rowSize;
    for (let j = 0; j < rowSize; j++) outValues[dst + j]! += xs[src + j]!;
  }
  return out;
}

function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo {
  const backend = wasmBackend(args);
  const x = input(args, 'x');
  const dy = input(args, 'dy');
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const dataFormat = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  const conv = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, false, dataFormat);

  const channelsLast = conv.dataFormat === 'channelsLast';
  // Element strides of x and dy as [batch, row, col, channel], whichever layout they use.
  const stridesOf = (h: number, w: number, c: number): [number, number, number, number] =>
    channelsLast ? [h * w * c, w * c, c, 1] : [c * h * w, w, 1, h * w];
  const [xB, xR, xC, xD] = stridesOf(conv.inHeight, conv.inWidth, conv.inChannels);
  const [yB, yR, yC, yD] = stridesOf(conv.outHeight, conv.outWidth, conv.outChannels);
  const xs = numericData(backend, x);
  const dys = numericData(backend, dy);
  const top = conv.padInfo.top;
  const left = conv.padInfo.left;

  const out = backend.makeOutput(conv.filterShape, 'float32');
  const dW = backend.typedArrayFromHeap(out);
  const { filterHeight, filterWidth, inChannels, outChannels, strideHeight, strideWidth } = conv;
  for (let wr = 0; wr < filterHeight; wr++) {
    // Output rows whose receptive field puts filter row wr inside the (unpadded) input.
    const rMin = Math.max(0, Math.ceil((top - wr) / strideHeight));
    const rMax = Math.min(conv.outHeight, Math.floor((conv.inHeight - 1 + top - wr) / strideHeight) + 1);
    for (let wc = 0; wc < filterWidth; wc++) {
      const cMin = Math.max(0, Math.ceil((left - wc) / strideWidth));
      const cMax = Math.min(conv.outWidth, Math.floor((conv.inWidth - 1 + left - wc) / strideWidth) + 1);
      for (let d1 = 0; d1 < inChannels; d1++) {
        for (let d2 = 0; d2 < outChannels; d2++) {
          let acc = 0;
          for (let b = 0; b < conv.batchSize; b++) {
            for (let r = rMin; r < rMax; r++) {
              const xRow = b * xB + (r * strideHeight + wr - top) * xR + d1 * xD;
              const yRow = b * yB + r * yR + d2 * yD;
              for (let c = cMin; c < cMax; c++) {
                acc += xs[xRow + (c * strideWidth + wc - left) * xC]! * dys[yRow + c * yC]!;
              }
            }
          }
          dW[((wr * filterWidth + wc) * inChannels + d1) * outChannels + d2] = acc;
        }
      }
    }
  }
  return out;
}

const missingKernels: readonly tf.KernelConfig[] = [
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSum },
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2DBackpropFilter },
];

/**
 * Registers the kernels the wasm backend lacks. Idempotent, and leaves alone any kernel a later
 * tfjs-backend-wasm release provides itself.
 */
export function registerWasmMissingKernels(): void {
  for (const config of missingKernels) {
    if (tf.getKernel(config.kernelName, config.backendName) === undefined) tf.registerKernel(config);
  }
}
