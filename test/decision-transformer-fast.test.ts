import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { DecisionTransformer, type DecisionTransformerInput, type DecisionTransformerSpec } from '../agents/networks/decision-transformer';
import { selectBackend } from '../runtime/core/tf-backend';

// The decision transformer was rewritten for fewer kernel calls per training step (each block
// one custom-gradient op with a hand-written backward, layer norms likewise, fused matmul+bias,
// GELU without pow/tanh, a causal mask computed once). These tests pin the
// rewrite to the numbers the code before it computed (test/fixtures/decision-transformer/
// make-old-numbers.js wrote them at 35d2519, on wasm): outputs and the gradient of a fixed loss
// with respect to every named variable, with dropout off and on (seeded masks must not change).

beforeAll(async () => {
  await selectBackend('wasm');
});

interface FixtureSequence {
  returnsToGo: number[];
  states: number[];
  actions: number[];
  timesteps: number[];
  mask: number[];
  contexts?: number[];
}
interface FixtureRun {
  predictions: string;
  grads: Record<string, string>;
}
interface FixtureCase {
  name: string;
  spec: DecisionTransformerSpec;
  actDim: number;
  contextDim: number;
  promptSteps: number;
  inputs: { main: FixtureSequence; prompt?: FixtureSequence; lossWeights: number[] };
  runs: { noDropout: FixtureRun; dropout: FixtureRun };
}
interface Fixture {
  B: number;
  K: number;
  stateDim: number;
  cases: FixtureCase[];
}

const fixture = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '../../test/fixtures/decision-transformer/old-numbers.json'), 'utf8'),
) as Fixture;
const { B, K, stateDim: S } = fixture;
const DROPOUT_SEED = 'fixture-dropout-seed';

function float32s(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function inputOf(c: FixtureCase): DecisionTransformerInput {
  const seq = (s: FixtureSequence, rows: number, steps: number) => ({
    returnsToGo: tf.tensor2d(s.returnsToGo, [rows, steps]),
    states: tf.tensor3d(s.states, [rows, steps, S]),
    actions: tf.tensor3d(s.actions, [rows, steps, c.actDim]),
    timesteps: tf.tensor2d(s.timesteps, [rows, steps], 'int32'),
    mask: tf.tensor2d(s.mask, [rows, steps]),
  });
  const input: DecisionTransformerInput = seq(c.inputs.main, B, K);
  if (c.inputs.main.contexts) input.contexts = tf.tensor3d(c.inputs.main.contexts, [B, K, c.contextDim]);
  if (c.inputs.prompt) input.prompt = seq(c.inputs.prompt, 1, c.promptSteps);
  return input;
}

/** Predictions and the gradient of sum(predictions · lossWeights) per named variable, as plain arrays. */
function compute(dt: DecisionTransformer, c: FixtureCase, dropout: boolean): { predictions: Float32Array; grads: Record<string, Float32Array> } {
  return tf.tidy(() => {
    const input = inputOf(c);
    const weights = tf.tensor3d(c.inputs.lossWeights, [B, K, c.actDim]);
    const seed = dropout ? DROPOUT_SEED : undefined;
    const named = dt.namedVariables();
    const names = Object.keys(named);
    const predictions = dt.forward(input, dropout, seed);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(dt.forward(input, dropout, seed), weights)) as tf.Scalar, names.map((n) => named[n]));
    const out: Record<string, Float32Array> = {};
    for (const n of names) out[n] = grads[named[n].name].dataSync() as Float32Array;
    return { predictions: predictions.dataSync() as Float32Array, grads: out };
  });
}

/**
 * Largest |new − old| over the array, relative to the array's largest |old| (gradients of a
 * variable share a scale; many of their entries are near zero, where a purely element-wise
 * relative error would be meaningless).
 */
function scaledError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let scale = 1e-12;
  for (const v of expected) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return worst / scale;
}

// float32 carries ~7 decimal digits; the rewrite rounds differently (GELU as x·σ(2u) instead of
// ½x(1 + tanh u), its derivative and the layer norms' in closed form, bias added inside the
// matmul kernel, softmax's backward in another order), so
// each step rounds differently, by a few ulp, compounded over two blocks and the backward pass.
// The rewrite's worst error over all arrays here was 5.4e-7 of the scale when it was written;
// 1e-4 of the array's scale leaves two orders of magnitude of headroom over that and is still
// two orders below any real change (a different dropout mask moves outputs by ~1e-1, see below).
const TOLERANCE = 1e-4;

describe.each(fixture.cases.map((c) => [c.name, c] as const))('decision transformer matches the old numbers: %s', (_name, c) => {
  let dt: DecisionTransformer;
  beforeAll(() => {
    dt = new DecisionTransformer(c.spec);
  });
  afterAll(() => dt.dispose());

  it.each([
    ['without dropout', false],
    ['with seeded dropout', true],
  ] as const)('outputs and every gradient %s', (_label, dropout) => {
    const old = dropout ? c.runs.dropout : c.runs.noDropout;
    const now = compute(dt, c, dropout);
    expect(scaledError(now.predictions, float32s(old.predictions))).toBeLessThan(TOLERANCE);
    expect(Object.keys(now.grads).sort()).toEqual(Object.keys(old.grads).sort());
    for (const [name, g] of Object.entries(old.grads)) {
      const err = scaledError(now.grads[name], float32s(g));
      if (!(err < TOLERANCE)) throw new Error(`gradient of '${name}' is off by ${err} of its scale`);
    }
  });

  it('is bit-identical when repeated and leaks no tensors', () => {
    compute(dt, c, true); // first call may create cached constants
    const before = tf.memory().numTensors;
    const a = compute(dt, c, true);
    const b = compute(dt, c, true);
    expect(tf.memory().numTensors).toBe(before);
    expect(Buffer.from(a.predictions.buffer).equals(Buffer.from(b.predictions.buffer))).toBe(true);
    for (const name of Object.keys(a.grads)) expect(Buffer.from(a.grads[name].buffer).equals(Buffer.from(b.grads[name].buffer))).toBe(true);
  });

  it('the tolerance tells a different dropout mask apart (the comparison can fail)', () => {
    const off = float32s(c.runs.noDropout.predictions);
    const on = float32s(c.runs.dropout.predictions);
    expect(scaledError(on, off)).toBeGreaterThan(100 * TOLERANCE);
  });
});
