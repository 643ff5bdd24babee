import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { QMixer, disposeTrace } from '../agents/networks/qmix-mixer';
import { selectBackend } from '../runtime/core/tf-backend';
import { Q_UPDATE_CASES, type QUpdateRecord, qUpdateLearner, runQUpdateCase } from './helpers/q-update-cases';
import { repoRoot } from './helpers/repo-root';

/*
 * The QMIX/VDN/IQL update was rewritten for fewer kernel calls (issue 17). The fixture holds what
 * the update before the rewrite (35d2519) computed on small seeded cases: every update's stats and
 * all trained parameters after 1 and 3 updates, on wasm. `QMIX_WRITE_FIXTURE=1` rewrites it, which
 * is only right on the old code.
 */
const FIXTURE = path.join(repoRoot(), 'test', 'fixtures', 'qmix-update-reference.json');

beforeAll(async () => {
  await selectBackend('wasm');
});

const round = (x: number) => Number(x.toPrecision(8));
function rounded(r: QUpdateRecord): QUpdateRecord {
  const params = (p: Record<string, number[]>) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.map(round)]));
  return { stats: r.stats.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v)]))), afterOne: params(r.afterOne), afterThree: params(r.afterThree) };
}

if (process.env.QMIX_WRITE_FIXTURE === '1') {
  test('writes the reference fixture', () => {
    const out: Record<string, QUpdateRecord> = {};
    for (const c of Q_UPDATE_CASES) out[c.name] = rounded(runQUpdateCase(c));
    fs.writeFileSync(FIXTURE, JSON.stringify(out) + '\n');
  });
}

const reference = (): Record<string, QUpdateRecord> => JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));

/** The largest |a − b| / (atol + rtol·|b|) over two arrays; ≤ 1 means close. */
function worst(a: readonly number[], b: readonly number[], atol: number, rtol: number): number {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  return w;
}

describe.each(Q_UPDATE_CASES.map((c) => [c.name, c] as const))('update of %s', (name, c) => {
  // Float32 sums in another order differ by a few ulp (~1e-6 relative). Adam's first steps
  // divide the gradient by its own magnitude, so a parameter whose gradient is near zero can
  // move by up to lr·(difference)/ε — the parameter tolerance is therefore absolute, a small
  // fraction of one step (lr = 0.01), and looser after 3 steps.
  test('gives the pre-rewrite numbers to float tolerance', () => {
    const ref = reference()[name];
    expect(ref).toBeDefined();
    const got = runQUpdateCase(c);
    got.stats.forEach((s, i) => {
      for (const [k, v] of Object.entries(ref.stats[i])) expect(worst([s[k]], [v], 1e-6, 1e-4)).toBeLessThanOrEqual(1);
    });
    for (const [k, v] of Object.entries(ref.afterOne)) expect({ k, w: worst(got.afterOne[k], v, 1e-5, 1e-4) <= 1 }).toEqual({ k, w: true });
    for (const [k, v] of Object.entries(ref.afterThree)) expect({ k, w: worst(got.afterThree[k], v, 1e-4, 1e-3) <= 1 }).toEqual({ k, w: true });
    expect(Object.keys(got.afterThree).sort()).toEqual(Object.keys(ref.afterThree).sort());
  });

  test('is bit-identical run to run', () => {
    expect(runQUpdateCase(c)).toEqual(runQUpdateCase(c));
  });

  test('leaks no tensors across update()', () => {
    const learner = qUpdateLearner(c);
    try {
      // The first update creates the optimiser's moment slots.
      learner.update();
      const before = tf.memory().numTensors;
      learner.update();
      learner.update();
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      learner.dispose();
    }
  });
});

describe.each([1, 2] as const)('QMixer with %i-layer hypernetworks', (hypernetLayers) => {
  // The hand-written backward against tfjs's autodiff of the plain `mix`, on random inputs.
  test('mixForBackward/backward give mix and its autodiff gradients', () => {
    const mixer = new QMixer({ numAgents: 3, stateDim: 5, embedDim: 4, hypernetLayers, hypernetEmbed: 6, seed: 'mixer-test' });
    try {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const qs = tf.randomNormal([7, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
        const states = tf.randomNormal([7, 5], 0, 1, 'float32', 2) as tf.Tensor2D;
        const dOut = tf.randomNormal([7], 0, 1, 'float32', 3) as tf.Tensor1D;
        const vars = mixer.namedVariables();
        const names = Object.keys(vars);
        // The variables are the very tensors mix reads, so tf.grads differentiates with respect to them too.
        const [refDqs, ...refGrads] = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(mixer.mix(xs[0] as tf.Tensor2D, states), dOut)))([qs, ...names.map((n) => vars[n])]);
        const { out, trace } = mixer.mixForBackward(qs, states);
        const { dqs, grads } = mixer.backward(trace, dOut);
        disposeTrace(trace);
        const close = (a: tf.Tensor, b: tf.Tensor) => worst(Array.from(a.dataSync()), Array.from(b.dataSync()), 1e-6, 1e-5);
        expect(close(out, mixer.mix(qs, states))).toBeLessThanOrEqual(1);
        expect(close(dqs, refDqs)).toBeLessThanOrEqual(1);
        expect(Object.keys(grads).sort()).toEqual([...names].sort());
        names.forEach((n, i) => expect({ n, close: close(grads[n], refGrads[i]) <= 1 }).toEqual({ n, close: true }));
      });
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      mixer.dispose();
    }
  });
});
