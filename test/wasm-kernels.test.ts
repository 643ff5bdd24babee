import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../runtime/core/tf-backend';
import { registerWasmKernelSpeedups } from '../runtime/core/wasm-kernel-speedups';

// The replaced wasm kernels (runtime/wasm-kernel-speedups.ts) are checked against the cpu
// backend, which has its own independent implementations: slicing must agree bit for bit,
// matmul within float rounding. Every case is computed on both backends from the same JS data.

type Backend = 'cpu' | 'wasm';

interface Snapshot {
  shape: number[];
  dtype: tf.DataType;
  /** Raw bytes for numeric tensors, so -0, NaN and denormals are compared exactly. */
  data: number[] | string[];
}

function snapshot(t: tf.Tensor): Snapshot {
  const values = t.dataSync();
  if (Array.isArray(values)) return { shape: t.shape, dtype: t.dtype, data: values.map(String) };
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return { shape: t.shape, dtype: t.dtype, data: Array.from(bytes) };
}

function floats(t: tf.Tensor): { shape: number[]; values: number[] } {
  return { shape: t.shape, values: Array.from(t.dataSync() as Float32Array) };
}

async function on<T>(backend: Backend, f: () => T): Promise<T> {
  await tf.setBackend(backend);
  expect(tf.getBackend()).toBe(backend);
  return f();
}

/** Runs f on cpu and on wasm, disposing the tensors each run makes; f returns plain data. */
async function bothBackends<T>(f: () => T): Promise<{ cpu: T; wasm: T }> {
  const run = (): T => {
    let result: T | undefined;
    tf.tidy(() => {
      result = f();
    });
    return result as T;
  };
  const cpu = await on('cpu', run);
  const wasm = await on('wasm', run);
  return { cpu, wasm };
}

function lcg(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

// Float inputs to the slicing tests carry the values a lossy copy would alter: -0, NaN,
// infinities and a denormal.
function floatData(n: number, seed: number): Float32Array {
  const out = lcg(n, seed);
  const specials = [-0, NaN, Infinity, -Infinity, 1e-40];
  for (let i = 0; i < n; i += 7) out[i] = specials[(i / 7) % specials.length]!;
  return out;
}

function intData(n: number): Int32Array {
  const special = [2147483647, -2147483648, -1, 0];
  return Int32Array.from({ length: n }, (_, i) => (i % 5 === 4 ? special[i % special.length]! : ((i * 7919) % 1000) - 500));
}

const dtypes = ['float32', 'int32', 'bool'] as const;

function makeInput(shape: number[], dtype: (typeof dtypes)[number], seed = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'float32') return tf.tensor(floatData(n, seed), shape, 'float32');
  if (dtype === 'int32') return tf.tensor(intData(n), shape, 'int32');
  return tf.tensor(Uint8Array.from({ length: n }, (_, i) => ((i * 5 + seed) % 3 === 0 ? 1 : 0)), shape, 'bool');
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// Per-dimension (begin, size) choices, size -1 meaning "to the end". For a dimension of length
// n >= 3 they cover all of it, a prefix, an interior range, a suffix, one element and none.
function dimChoices(n: number): Array<[number, number]> {
  return [[0, n], [0, n - 1], [1, n - 2], [1, -1], [n - 1, 1], [2, 0]];
}

function cartesian<T>(lists: T[][]): T[][] {
  return lists.reduce<T[][]>((acc, list) => acc.flatMap((prefix) => list.map((v) => [...prefix, v])), [[]]);
}

const shapes: number[][] = [[7], [5, 6], [3, 4, 5], [3, 4, 3, 5]];

beforeAll(async () => {
  await selectBackend('cpu');
  await selectBackend('wasm');
});

afterAll(async () => {
  await tf.setBackend('wasm');
});

test('the replacements are installed, and registering again changes nothing', () => {
  const names = [tf.Slice, tf.SplitV, tf.Unpack, tf.BatchMatMul, tf.Sum, tf.Concat];
  const before = names.map((k) => tf.getKernel(k, 'wasm'));
  registerWasmKernelSpeedups();
  registerWasmKernelSpeedups();
  const after = names.map((k) => tf.getKernel(k, 'wasm'));
  for (let i = 0; i < names.length; i++) expect(after[i]!.kernelFunc).toBe(before[i]!.kernelFunc);
  // BatchMatMul's wasm entry point is bound in its setup hook, which must survive the swap.
  expect(tf.getKernel(tf.BatchMatMul, 'wasm').setupFunc).toBeDefined();
});

// Runs early, while the heap is still small, so that outgrowing it is quick.
test('outputs stay correct when allocating them grows the wasm heap', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as BackendWasm;
  const probe = tf.zeros([1]);
  const heapBytes = (): number => backend.typedArrayFromHeap({ dataId: probe.dataId, shape: probe.shape, dtype: probe.dtype }).buffer.byteLength;
  // An input as large as the whole heap, so its pieces cannot all fit without growing it again.
  const rows = 8;
  const cols = Math.ceil(heapBytes() / 4 / rows) + 1;
  // Every element distinct (exact in float32 below 2^24), so a misplaced copy shows.
  const values = new Float32Array(rows * cols);
  for (let i = 0; i < values.length; i++) values[i] = i;
  const x = tf.tensor2d(values, [rows, cols]);
  const heapBefore = heapBytes();
  // Strided pieces (column blocks) as well as contiguous ones (rows).
  const parts = [...tf.split(x, [cols - 3, 3], 1), ...tf.unstack(x, 0)];
  expect(heapBytes()).toBeGreaterThan(heapBefore);
  // Rows compared as bytes: jest's element-wise comparison is slow at this size.
  const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const rowsEqual = (actual: tf.Tensor, rowOf: (r: number) => Float32Array): boolean => {
    const got = actual.dataSync() as Float32Array;
    const width = actual.shape[actual.shape.length - 1]!;
    for (let r = 0; r < rows; r++) if (!bytes(got.subarray(r * width, (r + 1) * width)).equals(bytes(rowOf(r)))) return false;
    return true;
  };
  expect(rowsEqual(parts[0]!, (r) => values.subarray(r * cols, r * cols + cols - 3))).toBe(true);
  expect(rowsEqual(parts[1]!, (r) => values.subarray(r * cols + cols - 3, (r + 1) * cols))).toBe(true);
  for (let r = 0; r < rows; r++) expect(bytes(parts[2 + r]!.dataSync() as Float32Array).equals(bytes(values.subarray(r * cols, (r + 1) * cols)))).toBe(true);
  tf.dispose([x, probe, ...parts]);
});

describe.each(shapes.map((s) => [s.length, s] as const))('rank %i %j', (_rank, shape) => {
  test.each(dtypes)('every slice (contiguous, strided, empty) of %s is bit-identical to cpu', async (dtype) => {
    const boxes = cartesian(shape.map(dimChoices));
    const { cpu, wasm } = await bothBackends(() => {
      const x = makeInput(shape, dtype);
      return boxes.map((box) => snapshot(tf.slice(x, box.map((c) => c[0]), box.map((c) => c[1]))));
    });
    expect(wasm).toHaveLength(boxes.length);
    for (let i = 0; i < boxes.length; i++) expect({ box: boxes[i], ...wasm[i] }).toEqual({ box: boxes[i], ...cpu[i] });
  });

  test.each(dtypes)('split along every axis, uneven and with -1 and 0 sizes, of %s is bit-identical to cpu', async (dtype) => {
    const splits: Array<[number[] | number, number]> = [];
    for (let axis = 0; axis < shape.length; axis++) {
      const n = shape[axis]!;
      for (const ax of [axis, axis - shape.length]) {
        splits.push([[1, n - 1], ax], [[n - 2, 0, 2], ax], [[2, -1], ax], [[0, n], ax], [n, ax], [1, ax]);
      }
    }
    const { cpu, wasm } = await bothBackends(() => {
      const x = makeInput(shape, dtype, 3);
      return splits.map(([sizes, axis]) => tf.split(x, sizes, axis).map(snapshot));
    });
    for (let i = 0; i < splits.length; i++) expect({ split: splits[i], parts: wasm[i] }).toEqual({ split: splits[i], parts: cpu[i] });
  });

  test.each(dtypes)('unstack along every axis (positive and negative) of %s is bit-identical to cpu', async (dtype) => {
    const axes = shape.flatMap((_, a) => [a, a - shape.length]);
    const { cpu, wasm } = await bothBackends(() => {
      const x = makeInput(shape, dtype, 5);
      return axes.map((axis) => tf.unstack(x, axis).map(snapshot));
    });
    for (let i = 0; i < axes.length; i++) expect({ axis: axes[i], parts: wasm[i] }).toEqual({ axis: axes[i], parts: cpu[i] });
  });

  test('gradients through slice, split and unstack match cpu exactly', async () => {
    const { cpu, wasm } = await bothBackends(() => {
      const x = tf.tensor(lcg(sizeOf(shape), 11), shape);
      const weigh = (parts: tf.Tensor[]): tf.Scalar =>
        tf.addN(parts.map((p, i) => tf.sum(tf.mul(p, tf.tensor(lcg(p.size, 20 + i), p.shape))))) as tf.Scalar;
      const out: Snapshot[] = [];
      const boxes = [shape.map(() => [1, -1]), shape.map((n, d) => (d === shape.length - 1 ? [1, n - 2] : [0, n]))];
      for (const box of boxes) {
        const f = (t: tf.Tensor): tf.Scalar => weigh([tf.slice(t, box.map((c) => c[0]!), box.map((c) => c[1]!))]);
        out.push(snapshot(tf.grad(f)(x)));
      }
      for (let axis = 0; axis < shape.length; axis++) {
        const n = shape[axis]!;
        out.push(snapshot(tf.grad((t: tf.Tensor) => weigh(tf.split(t, [1, n - 1], axis)))(x)));
        // Only some pieces reach the loss: the others' gradients must come back as zeros.
        out.push(snapshot(tf.grad((t: tf.Tensor) => weigh(tf.unstack(t, axis).filter((_, i) => i % 2 === 1)))(x)));
      }
      return out;
    });
    expect(wasm).toEqual(cpu);
  });
});

test.each(dtypes)('zero-size inputs and outputs of %s match cpu', async (dtype) => {
  const { cpu, wasm } = await bothBackends(() => {
    const x = makeInput([3, 0, 4], dtype);
    const y = makeInput([2, 3], dtype);
    const parts: Snapshot[] = [
      snapshot(tf.slice(x, [1, 0, 1], [2, 0, 2])),
      ...tf.split(x, [1, 2], 0).map(snapshot),
      ...tf.split(x, [0, 4], 2).map(snapshot),
      ...tf.unstack(x, 0).map(snapshot),
      ...tf.unstack(x, 2).map(snapshot),
      snapshot(tf.slice(y, [1, 1], [0, 2])),
      snapshot(tf.slice(y, [2, 3], [0, 0])),
      ...tf.split(y, [0, 3, 0], 1).map(snapshot),
    ];
    return { parts, piecesAlongEmptyAxis: tf.unstack(x, 1).length };
  });
  expect(wasm).toEqual(cpu);
});

test('string tensors still slice and unstack (the original kernels handle them)', async () => {
  const { cpu, wasm } = await bothBackends(() => {
    const x = tf.tensor([['a', 'b', 'c'], ['d', 'e', 'f']]);
    return [snapshot(tf.slice(x, [0, 1], [2, 2])), snapshot(tf.slice(x, [1, 0], [1, 3])), ...tf.unstack(x, 1).map(snapshot)];
  });
  expect(wasm).toEqual(cpu);
});

describe('matMul', () => {
  // [a shape, b shape] before any transpose; a transpose swaps the last two dims of its operand.
  const cases: Array<[number[], number[]]> = [
    [[4, 5], [5, 3]],
    [[1, 6], [6, 1]],
    [[7, 1], [1, 4]],
    [[3, 4, 5], [3, 5, 2]],
    [[1, 4, 5], [3, 5, 2]], // broadcast batch
    [[3, 4, 5], [5, 2]],
    [[2, 3, 4, 5], [2, 3, 5, 6]],
    [[2, 1, 4, 5], [1, 3, 5, 6]],
    [[2, 37, 19], [2, 19, 23]], // a batch large enough to grow the heap on copies
    [[16, 33], [33, 24]],
    [[0, 5], [5, 3]],
    [[4, 0], [0, 3]],
    [[2, 4, 0], [2, 0, 3]],
    [[2, 0, 3], [2, 3, 4]],
  ];
  const flags: Array<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];
  const swap = (s: number[]): number[] => [...s.slice(0, -2), s[s.length - 1]!, s[s.length - 2]!];
  const close = (actual: number[], expected: number[]): void => {
    expect(actual).toHaveLength(expected.length);
    for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(expected[i]!)));
  };

  test.each(cases)('%j x %j with every transpose combination matches cpu', async (aShape, bShape) => {
    // Dirty the heap first, so an output left uninitialised shows up as garbage.
    await on('wasm', () => tf.dispose(tf.fill([64, 64], 7.5)));
    const { cpu, wasm } = await bothBackends(() =>
      flags.map(([tA, tB]) => {
        const sa = tA ? swap(aShape) : aShape;
        const sb = tB ? swap(bShape) : bShape;
        return floats(tf.matMul(tf.tensor(lcg(sizeOf(sa), 31), sa), tf.tensor(lcg(sizeOf(sb), 37), sb), tA, tB));
      }),
    );
    for (let i = 0; i < flags.length; i++) {
      expect({ flags: flags[i], shape: wasm[i]!.shape }).toEqual({ flags: flags[i], shape: cpu[i]!.shape });
      close(wasm[i]!.values, cpu[i]!.values);
    }
  });

  // tfjs's matMul gradient does not reduce broadcast batch dimensions, on any backend.
  const sameBatch = (a: number[], b: number[]): boolean => a.length === b.length && a.slice(0, -2).every((d, i) => d === b[i]);
  test.each(cases.filter(([a, b]) => sizeOf(a) > 0 && sizeOf(b) > 0 && sameBatch(a, b)))(
    'gradients of %j x %j under every transpose combination match cpu',
    async (aShape, bShape) => {
      const { cpu, wasm } = await bothBackends(() =>
        flags.flatMap(([tA, tB]) => {
          const sa = tA ? swap(aShape) : aShape;
          const sb = tB ? swap(bShape) : bShape;
          const f = (x: tf.Tensor, y: tf.Tensor): tf.Scalar => {
            const z = tf.matMul(x, y, tA, tB);
            return tf.sum(tf.mul(z, tf.tensor(lcg(z.size, 47), z.shape)));
          };
          return tf.grads(f)([tf.tensor(lcg(sizeOf(sa), 41), sa), tf.tensor(lcg(sizeOf(sb), 43), sb)]).map(floats);
        }),
      );
      expect(wasm).toHaveLength(2 * flags.length);
      for (let i = 0; i < wasm.length; i++) {
        expect(wasm[i]!.shape).toEqual(cpu[i]!.shape);
        close(wasm[i]!.values, cpu[i]!.values);
      }
    },
  );

  test('a mismatched inner dimension is still reported by tfjs', async () => {
    await tf.setBackend('wasm');
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([2, 4]);
    expect(() => tf.matMul(a, b, true, true)).toThrow(/inner shapes/);
    tf.dispose([a, b]);
  });
});

describe('sum over leading axes', () => {
  // The reference: the same reduction made innermost by an explicit transpose, which the
  // original kernel sums in the same order (row 0 first, float32 partial sums).
  const cases: Array<[number[], number[], boolean]> = [
    [[3264, 64], [0], false],
    [[17, 5], [0], true],
    [[6, 4, 5], [0, 1], false],
    [[6, 4, 5], [1, 0], true],
    [[9, 1, 3], [0], false],
  ];
  test.each(cases)('%j over axes %j (keepDims %s) is bit-identical to summing the transposed input', async (shape, axes, keepDims) => {
    await tf.setBackend('wasm');
    // Values of very different magnitudes, so any change in the order of additions shows.
    const values = lcg(sizeOf(shape), 7).map((v, i) => v * 10 ** ((i % 7) - 3));
    const [got, expected] = tf.tidy(() => {
      const x = tf.tensor(values, shape);
      const lead = axes.length;
      const perm = [...shape.keys()].slice(lead).concat([...shape.keys()].slice(0, lead));
      const reference = tf.sum(tf.transpose(x, perm), [...shape.keys()].slice(shape.length - lead), keepDims);
      const ours = tf.sum(x, axes, keepDims);
      return [ours, keepDims ? tf.reshape(reference, ours.shape) : reference];
    });
    expect(got.shape).toEqual(keepDims ? shape.map((d, i) => (i < axes.length ? 1 : d)) : shape.slice(axes.length));
    expect(Buffer.from((got.dataSync() as Float32Array).buffer).equals(Buffer.from((expected.dataSync() as Float32Array).buffer))).toBe(true);
    tf.dispose([got, expected]);
  });

  test('summing zero rows gives zeros (the original leaves its output unwritten)', async () => {
    await tf.setBackend('wasm');
    const got = tf.tidy(() => tf.sum(tf.zeros([0, 4]), 0));
    expect(Array.from(got.dataSync())).toEqual([0, 0, 0, 0]);
    got.dispose();
  });

  test('other reductions (innermost, int32, every axis) still give cpu\'s answers', async () => {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor(lcg(60, 3).map((v) => Math.round(v * 8) / 8), [3, 4, 5]);
        return [tf.sum(x, 2), tf.sum(x, [0, 2]), tf.sum(x), tf.sum(tf.cast(tf.mul(x, 8), 'int32'), 0)].map((t) => t.arraySync());
      });
    };
    const onCpu = await run('cpu');
    expect(await run('wasm')).toEqual(onCpu);
  });
});

describe('concat of short rows', () => {
  const cases: Array<[number[][], number]> = [
    [[[1600, 64], [1600, 64], [1600, 32]], 1],
    [[[3, 2, 5], [3, 1, 5], [3, 0, 5]], 1],
    [[[2, 3], [4, 3]], 0],
    [[[2, 3, 4], [2, 3, 1]], -1],
  ];
  test.each(cases)('%j along axis %i matches cpu exactly, float32 and int32', async (shapes, axis) => {
    for (const dtype of ['float32', 'int32'] as const) {
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        return tf.tidy(() => {
          const parts = shapes.map((shape, i) => tf.tensor(lcg(sizeOf(shape), 11 + i).map((v) => (dtype === 'int32' ? Math.round(v * 1000) : v)), shape, dtype));
          return tf.concat(parts, axis).dataSync().slice();
        });
      };
      const onCpu = await run('cpu');
      expect(Array.from(await run('wasm'))).toEqual(Array.from(onCpu));
    }
  });
});

test('no tensors or wasm buffers leak', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend();
  const x = makeInput([3, 4, 5], 'float32');
  const a = tf.tensor(lcg(12, 1), [3, 4]);
  const b = tf.tensor(lcg(20, 2), [5, 4]);
  const c = tf.tensor(lcg(15, 3), [5, 3]);
  const tensorsBefore = tf.memory().numTensors;
  const buffersBefore = backend.numDataIds();
  for (let i = 0; i < 3; i++) {
    tf.dispose([tf.slice(x, [0, 1, 1], [2, 2, 3]), ...tf.split(x, [2, 3], 2), ...tf.unstack(x, 1)]);
    tf.tidy(() => {
      tf.matMul(a, c, true, true);
      tf.matMul(a, b, false, true);
      tf.matMul(a, a, true, false);
      // A batch of matrices, multiplied one by one through copies.
      tf.matMul(x, tf.ones([3, 5, 2]));
      tf.matMul(a, tf.ones([2, 3, 2]), true, false);
      tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 2]), false, false);
      tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.matMul(p, q, false, true)))([a, b]);
      tf.grad((t: tf.Tensor) => tf.sum(tf.stack(tf.unstack(t, 2).map((u) => tf.square(u)))))(x);
    });
  }
  // Transposes made inside the BatchMatMul kernel are backend buffers the engine never sees.
  expect(tf.memory().numTensors).toBe(tensorsBefore);
  expect(backend.numDataIds()).toBe(buffersBefore);
  tf.dispose([x, a, b, c]);
});
