import * as tf from '@tensorflow/tfjs';
import { polyakUpdate } from '../agents/networks/module';
import { captureTensors, restoreTensors, type OptimizerState } from '../runtime/core/checkpoint-format';
import { selectBackend } from '../runtime/core/tf-backend';
import { ADAM_CLASS_NAME, Adam, type AdamSettings, clipByGlobalNorm } from '../trainers/adam';

// The optimiser step runs over all parameters at once (one wasm kernel, or one set of flat
// element-wise ops elsewhere). Its numbers are checked against the per-tensor step Adam took
// before (kept below as the reference), on both backends a test may use, for both formulations,
// weight decay, a scale tensor and an lrFactor, and parameters of several ranks including a
// scalar and an empty one.
//
// Tolerance: both versions do the same float32 operations in the same order per element, so they
// are expected to agree exactly; the bound allows a few float32 ulps (6e-8 relative each) per
// step should an implementation round one intermediate differently, far below the size of one
// Adam step (lr = 1e-2 here), so a wrong formula, a missed scale or a stale moment still fails.
const TOLERANCE = 1e-6;

type Backend = 'wasm' | 'cpu';
const BACKENDS: Backend[] = ['wasm', 'cpu'];

const SMALL: Record<string, number[]> = {
  'layer0/kernel': [3, 4],
  'layer0/bias': [4],
  'layer1/kernel': [2, 3, 2],
  gain: [],
  unused: [0],
  'layer1/bias': [1],
};
// Past the size where the wasm kernel stops looping in JS and runs wasm's own kernels instead.
const LARGE: Record<string, number[]> = { ...SMALL, 'wide/kernel': [80, 64] };
// One 1-D parameter (SAC's log α): its flat moments need no concatenation or split.
const SINGLE: Record<string, number[]> = { log_alpha: [3] };
const SHAPE_SETS = { small: SMALL, large: LARGE, single: SINGLE };

/** The parameter shapes of the tests running now (set by each describe block). */
let SHAPES: Record<string, number[]> = SMALL;

function lcg(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// tfjs variable names are global and must be unique.
let variableCount = 0;

function makeParams(seed: number): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  let k = 0;
  for (const [name, shape] of Object.entries(SHAPES)) out[name] = tf.variable(tf.tensor(lcg(sizeOf(shape), seed + k++), shape), true, `adam-test-${variableCount++}`);
  return out;
}

/** Gradients for step `t`, spanning magnitudes from 1e-4 to 10 so ε and the moments all matter. */
function makeGrads(t: number): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  let k = 0;
  for (const [name, shape] of Object.entries(SHAPES)) {
    const values = lcg(sizeOf(shape), 1000 * t + k++);
    for (let i = 0; i < values.length; i++) values[i]! *= 10 ** ((i % 6) - 4);
    out[name] = tf.tensor(values, shape);
  }
  return out;
}

/** The per-tensor Adam step of trainers/adam.ts before the fused rewrite, verbatim in its maths. */
class ReferenceAdam {
  step = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  readonly slots: Record<string, { m: tf.Variable; v: tf.Variable }> = {};
  readonly powers?: { beta1: tf.Variable; beta2: tf.Variable };

  constructor(
    readonly settings: AdamSettings,
    private readonly params: Record<string, tf.Variable>,
  ) {
    this.beta1 = settings.beta1 ?? 0.9;
    this.beta2 = settings.beta2 ?? 0.999;
    this.epsilon = settings.epsilon ?? 1e-8;
    this.weightDecay = settings.weightDecay ?? 0;
    for (const [name, p] of Object.entries(params)) {
      this.slots[name] = tf.tidy(() => ({ m: tf.variable(tf.zerosLike(p), false), v: tf.variable(tf.zerosLike(p), false) }));
    }
    if (settings.formulation === 'tfjs') {
      this.powers = tf.tidy(() => ({ beta1: tf.variable(tf.scalar(this.beta1), false), beta2: tf.variable(tf.scalar(this.beta2), false) }));
    }
  }

  apply(grads: Record<string, tf.Tensor>, scale?: tf.Scalar, lrFactor = 1): void {
    this.step++;
    const { beta1, beta2, epsilon } = this;
    const lr = this.settings.lr * lrFactor;
    const stepSize = lr / (1 - beta1 ** this.step);
    const decay = 1 - lr * this.weightDecay;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    tf.tidy(() => {
      const powers = this.powers;
      const oneMinusPow1 = powers && tf.sub(1, powers.beta1);
      const oneMinusPow2 = powers && tf.sub(1, powers.beta2);
      for (const [name, p] of Object.entries(this.params)) {
        const raw = grads[name]!;
        const g = scale ? tf.mul(raw, scale) : raw;
        const { m, v } = this.slots[name]!;
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        if (oneMinusPow1 && oneMinusPow2) {
          const mHat = tf.div(m1, oneMinusPow1);
          const vHat = tf.div(v1, oneMinusPow2);
          p.assign(tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), -lr), p));
        } else {
          const decayed = this.weightDecay > 0 ? tf.mul(p, decay) : p;
          p.assign(tf.sub(decayed, tf.mul(stepSize, tf.div(m1, tf.add(tf.div(tf.sqrt(v1), bc2Sqrt), epsilon)))));
        }
      }
      if (powers) {
        powers.beta1.assign(tf.mul(powers.beta1, beta1));
        powers.beta2.assign(tf.mul(powers.beta2, beta2));
      }
    });
  }

  /** The state in the checkpoint layout the old Adam wrote. */
  async capture(): Promise<OptimizerState> {
    const named: Record<string, tf.Tensor> = {};
    for (const [name, { m, v }] of Object.entries(this.slots)) {
      named[`${name}/m`] = m;
      named[`${name}/v`] = v;
    }
    if (this.powers) {
      named['beta1_power'] = this.powers.beta1;
      named['beta2_power'] = this.powers.beta2;
    }
    const iter = tf.scalar(this.step, 'int32');
    const tensors = await captureTensors({ iter, ...named });
    iter.dispose();
    return {
      className: ADAM_CLASS_NAME,
      config: { learningRate: this.settings.lr, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, formulation: this.settings.formulation ?? 'pytorch' },
      weights: Object.entries(tensors).map(([name, tensor]) => ({ name, tensor })),
    };
  }

  dispose(): void {
    for (const { m, v } of Object.values(this.slots)) tf.dispose([m, v]);
    if (this.powers) tf.dispose([this.powers.beta1, this.powers.beta2]);
  }
}

interface Case {
  label: string;
  settings: AdamSettings;
  /** Per step: the grad-norm-like scale given as a tensor, or none. */
  scale?: (t: number) => number;
  lrFactor?: (t: number) => number;
}

const CASES: Case[] = [
  { label: 'pytorch', settings: { lr: 1e-2 } },
  { label: 'pytorch, weight decay', settings: { lr: 1e-2, weightDecay: 0.1 } },
  { label: 'pytorch, scale and lrFactor', settings: { lr: 1e-2, beta1: 0.8, beta2: 0.95, epsilon: 1e-5 }, scale: (t) => 0.3 + 0.2 * t, lrFactor: (t) => 1 / (t + 1) },
  { label: 'pytorch, weight decay, scale and lrFactor', settings: { lr: 1e-2, weightDecay: 0.01 }, scale: (t) => 0.7, lrFactor: (t) => 0.5 + t },
  { label: 'tfjs', settings: { lr: 1e-2, formulation: 'tfjs' } },
  { label: 'tfjs, scale and lrFactor', settings: { lr: 1e-2, beta1: 0.8, beta2: 0.95, formulation: 'tfjs' }, scale: (t) => 1 / (t + 2), lrFactor: (t) => 0.9 ** t },
];

interface Stepper {
  apply(grads: Record<string, tf.Tensor>, scale?: tf.Scalar, lrFactor?: number): void;
}

function takeSteps(opt: Stepper, c: Case, from: number, to: number): void {
  for (let t = from; t < to; t++) {
    tf.tidy(() => {
      const grads = makeGrads(t);
      const scale = c.scale ? tf.scalar(c.scale(t)) : undefined;
      opt.apply(grads, scale, c.lrFactor ? c.lrFactor(t) : undefined);
    });
  }
}

function valuesOf(vars: Record<string, tf.Tensor>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(vars)) out[name] = v.dataSync() as Float32Array;
  return out;
}

function maxScaledDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  let worst = 0;
  for (const name of Object.keys(a)) {
    const x = a[name]!;
    const y = b[name]!;
    expect(x.length).toBe(y.length);
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(y[i]!));
      if (!(d <= worst)) worst = d;
    }
  }
  return worst;
}

function bytes(values: Record<string, Float32Array>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, v] of Object.entries(values)) out[name] = Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  return out;
}

/** Moments (and β-powers) as the captured checkpoint holds them, by weight name. */
async function capturedValues(opt: { capture(): Promise<OptimizerState> }): Promise<Record<string, Float32Array>> {
  const state = await opt.capture();
  const byName: Record<string, Float32Array> = {};
  for (const w of state.weights) {
    if (w.name === 'iter') continue;
    const t = restoreTensors({ [w.name]: w.tensor })[w.name]!;
    byName[w.name] = t.dataSync() as Float32Array;
    t.dispose();
  }
  return byName;
}

function disposeAll(vars: Record<string, tf.Variable>): void {
  tf.dispose(Object.values(vars));
}

describe.each(BACKENDS.flatMap((b) => (['small', 'large', 'single'] as const).map((set) => [b, set] as const)))('fused Adam on %s, %s parameters', (backend, set) => {
  beforeAll(async () => {
    await selectBackend(backend);
    SHAPES = SHAPE_SETS[set];
  });

  test.each(CASES)('$label: matches the per-tensor step and its moments, bit-identical on repeat, no leaks', async (c) => {
    const refParams = makeParams(7);
    const reference = new ReferenceAdam(c.settings, refParams);
    takeSteps(reference, c, 0, 6);

    const runFused = async (): Promise<{ params: Record<string, Float32Array>; state: Record<string, Float32Array> }> => {
      const params = makeParams(7);
      const adam = new Adam(c.settings, params);
      takeSteps(adam, c, 0, 1);
      const before = tf.memory().numTensors;
      takeSteps(adam, c, 1, 6);
      expect(tf.memory().numTensors).toBe(before);
      const out = { params: valuesOf(params), state: await capturedValues(adam) };
      adam.dispose();
      disposeAll(params);
      return out;
    };
    const first = await runFused();
    const second = await runFused();

    expect(maxScaledDiff(first.params, valuesOf(refParams))).toBeLessThanOrEqual(TOLERANCE);
    expect(maxScaledDiff(first.state, await capturedValues(reference))).toBeLessThanOrEqual(TOLERANCE);
    // The steps moved the parameters far beyond the tolerance, so the match has teeth.
    const start = makeParams(7);
    expect(maxScaledDiff(first.params, valuesOf(start))).toBeGreaterThan(100 * TOLERANCE);
    disposeAll(start);

    expect(bytes(second.params)).toEqual(bytes(first.params));
    expect(bytes(second.state)).toEqual(bytes(first.state));
    reference.dispose();
    disposeAll(refParams);
  });

  test.each(CASES)('$label: capture → restore continues with identical steps, also from the old per-tensor checkpoint', async (c) => {
    const paramsA = makeParams(3);
    const adamA = new Adam(c.settings, paramsA);
    takeSteps(adamA, c, 0, 3);
    const state = await adamA.capture();
    expect(state.weights.map((w) => w.name).sort()).toEqual(
      ['iter', ...Object.keys(SHAPES).flatMap((n) => [`${n}/m`, `${n}/v`]), ...(c.settings.formulation === 'tfjs' ? ['beta1_power', 'beta2_power'] : [])].sort(),
    );

    const paramsB = makeParams(3);
    tf.tidy(() => {
      for (const [name, v] of Object.entries(paramsB)) v.assign(paramsA[name]!);
    });
    const adamB = new Adam(c.settings, paramsB);
    adamB.restore(state, 'test');
    expect(adamB.step).toBe(3);

    // A checkpoint the per-tensor Adam wrote, at the same point.
    const paramsR = makeParams(3);
    const reference = new ReferenceAdam(c.settings, paramsR);
    takeSteps(reference, c, 0, 3);
    const oldState = await reference.capture();
    const paramsC = makeParams(3);
    tf.tidy(() => {
      for (const [name, v] of Object.entries(paramsC)) v.assign(paramsR[name]!);
    });
    const adamC = new Adam(c.settings, paramsC);
    adamC.restore(oldState, 'test');

    takeSteps(adamA, c, 3, 5);
    takeSteps(adamB, c, 3, 5);
    takeSteps(adamC, c, 3, 5);
    takeSteps(reference, c, 3, 5);
    expect(bytes(valuesOf(paramsB))).toEqual(bytes(valuesOf(paramsA)));
    expect(bytes(await capturedValues(adamB))).toEqual(bytes(await capturedValues(adamA)));
    expect(maxScaledDiff(valuesOf(paramsC), valuesOf(paramsR))).toBeLessThanOrEqual(TOLERANCE);

    for (const o of [adamA, adamB, adamC, reference]) o.dispose();
    for (const p of [paramsA, paramsB, paramsC, paramsR]) disposeAll(p);
  });

  test('a missing or mis-shaped gradient is a clear error', () => {
    const params = makeParams(1);
    const adam = new Adam({ lr: 1e-2 }, params);
    const name = Object.keys(SHAPES)[0]!;
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const grads = makeGrads(0);
      delete grads[name];
      expect(() => adam.apply(grads)).toThrow(`Adam: no gradient for parameter '${name}'`);
    });
    tf.tidy(() => {
      const grads = makeGrads(0);
      grads[name] = tf.zeros([7, 7]);
      expect(() => adam.apply(grads)).toThrow(`the gradient for parameter '${name}' has shape [7,7]`);
    });
    expect(tf.memory().numTensors).toBe(before);
    adam.dispose();
    disposeAll(params);
  });

  test('one step is one kernel call on wasm, and a fixed handful of flat ops elsewhere', async () => {
    const count = Object.keys(SHAPES).length;
    for (const formulation of ['pytorch', 'tfjs'] as const) {
      const params = makeParams(5);
      const adam = new Adam({ lr: 1e-2, formulation }, params);
      const profile = await tf.profile(() => {
        tf.tidy(() => {
          const grads = makeGrads(0);
          const scale = tf.scalar(0.5);
          adam.apply(grads, scale);
        });
      });
      // makeGrads and tf.scalar upload data without kernel calls, so every kernel is the step's.
      const names = profile.kernels.map((k) => k.name);
      if (backend === 'wasm') {
        expect(names).toEqual(['TroupeFusedAdam']);
      } else {
        // Reshapes and concats in, ~15 element-wise ops, one split and reshapes out: far below
        // the per-tensor step's dozen ops per parameter.
        expect(names.length).toBeLessThanOrEqual(3 * count + 20);
        if (count > 1) expect(names.length).toBeLessThan(12 * count);
      }
      adam.dispose();
      disposeAll(params);
    }
  });

  test('an optimiser over no parameters steps without error', () => {
    const adam = new Adam({ lr: 1e-2, formulation: 'tfjs' }, {});
    adam.apply({});
    expect(adam.step).toBe(1);
    adam.dispose();
  });
});

describe.each(BACKENDS)('clipByGlobalNorm on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  // Empty gradients are left out: tf.sum of an empty tensor on wasm is uninitialised memory.
  const nonEmpty = (set: Record<string, number[]>) => Object.fromEntries(Object.entries(set).filter(([, shape]) => sizeOf(shape) > 0));

  test.each([1e-4, 1e6])('maxNorm %p: the per-tensor norm and factor exactly, one kernel call on wasm, no leaks', async (maxNorm) => {
    for (const set of [nonEmpty(SMALL), nonEmpty(LARGE), SINGLE]) {
      SHAPES = set;
      const grads = Object.values(makeGrads(3));
      const before = tf.memory().numTensors;
      let got: number[] = [];
      const profile = await tf.profile(() => {
        got = tf.tidy(() => {
          const { norm, scale } = clipByGlobalNorm(grads, maxNorm);
          return [norm.dataSync()[0]!, scale.dataSync()[0]!];
        });
      });
      expect(tf.memory().numTensors).toBe(before);
      const want = tf.tidy(() => {
        const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
        const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
        return [norm.dataSync()[0]!, scale.dataSync()[0]!];
      });
      expect(got).toEqual(want);
      expect(want[1]).toBe(maxNorm > 1e3 ? 1 : Math.fround(want[1]!));
      if (maxNorm < 1) expect(want[1]).toBeLessThan(1);
      if (backend === 'wasm') expect(profile.kernels.map((k) => k.name)).toEqual(['TroupeGlobalNormClip']);
      tf.dispose(grads);
    }
  });

  test('no gradients is an error', () => {
    expect(() => clipByGlobalNorm([], 1)).toThrow('clipByGlobalNorm: no gradients');
  });
});

describe('fused Adam across backends', () => {
  afterAll(async () => {
    await selectBackend('wasm');
  });

  // The moments live on whichever backend made them; a step on another backend moves them.
  test('moments made on cpu continue on wasm, and back, with the per-tensor numbers', async () => {
    SHAPES = LARGE;
    const c = CASES[2]!;
    await selectBackend('cpu');
    const params = makeParams(9);
    const refParams = makeParams(9);
    const adam = new Adam(c.settings, params);
    const reference = new ReferenceAdam(c.settings, refParams);
    takeSteps(adam, c, 0, 2);
    takeSteps(reference, c, 0, 2);
    await selectBackend('wasm');
    takeSteps(adam, c, 2, 4);
    takeSteps(reference, c, 2, 4);
    await selectBackend('cpu');
    takeSteps(adam, c, 4, 5);
    takeSteps(reference, c, 4, 5);
    expect(maxScaledDiff(valuesOf(params), valuesOf(refParams))).toBeLessThanOrEqual(TOLERANCE);
    expect(maxScaledDiff(await capturedValues(adam), await capturedValues(reference))).toBeLessThanOrEqual(TOLERANCE);
    adam.dispose();
    reference.dispose();
    disposeAll(params);
    disposeAll(refParams);
  });
});

describe.each(BACKENDS.flatMap((b) => (['small', 'large'] as const).map((set) => [b, set] as const)))('polyakUpdate on %s, %s variables', (backend, set) => {
  beforeAll(async () => {
    await selectBackend(backend);
    SHAPES = SHAPE_SETS[set];
  });

  function referencePolyak(target: Record<string, tf.Variable>, source: Record<string, tf.Variable>, tau: number): void {
    tf.tidy(() => {
      for (const [name, v] of Object.entries(target)) {
        const s = source[name]!;
        v.assign(tau >= 1 ? s : tf.add(tf.mul(1 - tau, v), tf.mul(tau, s)));
      }
    });
  }

  test.each([0.005, 0.3, 1, 1.5])('tau %p matches the per-variable update, no leaks', (tau) => {
    const source = makeParams(11);
    const target = makeParams(12);
    const refTarget = makeParams(12);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      polyakUpdate(target, source, tau);
      referencePolyak(refTarget, source, tau);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(maxScaledDiff(valuesOf(target), valuesOf(refTarget))).toBeLessThanOrEqual(TOLERANCE);
    if (tau >= 1) expect(bytes(valuesOf(target))).toEqual(bytes(valuesOf(source)));
    // Source untouched.
    const fresh = makeParams(11);
    expect(bytes(valuesOf(source))).toEqual(bytes(valuesOf(fresh)));
    for (const p of [source, target, refTarget, fresh]) disposeAll(p);
  });

  test('a soft update is one kernel call on wasm', async () => {
    const source = makeParams(11);
    const target = makeParams(12);
    const profile = await tf.profile(() => polyakUpdate(target, source, 0.01));
    if (backend === 'wasm') expect(profile.kernels.map((k) => k.name)).toEqual(['TroupeFusedPolyak']);
    else expect(profile.kernels.length).toBe(3 * Object.keys(SHAPES).length);
    disposeAll(source);
    disposeAll(target);
  });

  test('a missing source variable is a clear error', () => {
    const source = makeParams(11);
    const target = makeParams(12);
    source['gain']!.dispose();
    delete source['gain'];
    expect(() => polyakUpdate(target, source, 0.1, 'Net.copyFrom')).toThrow("Net.copyFrom: source has no variable 'gain'");
    disposeAll(source);
    disposeAll(target);
  });
});
