import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { decodeCheckpoint } from '../runtime/core/checkpoint-format';
import { selectBackend } from '../runtime/core/tf-backend';
import type { LearnerState, TrainStats } from '../trainers/learner';
import { SAC_UPDATE_CASES, buildSacCase, recordSacCase, snapshotSac } from './fixtures/sac-update-cases';

/*
 * SAC's update (twin critics as one ensemble, gradients written by hand) against what the taped
 * update it replaced computed on the same batches: `fixtures/sac-update-fixture.json` holds the old
 * update's stats of 4 updates and every weight and optimiser slot after the 1st and the 4th, for
 * the cases of `fixtures/sac-update-cases.ts` (written on wasm by `generate-sac-update-fixture.ts`
 * from the old code), and `fixtures/checkpoints/sac-update-*.ckpt` the old learner's checkpoint
 * after its 1st update.
 *
 * Tolerances. The new update computes the same maths in another order (fewer, batched ops), so
 * every number differs from the old by float32 rounding: stats and gradients by ~1e-7 relative.
 * Adam amplifies one case: its first step moves a weight by lr·g/(|g| + 1e-8), whose size does not
 * shrink with |g|, so where a gradient is itself float noise (|g| ~ 1e-8, far below its tensor's
 * largest) the weight may move by anything up to lr either way. Weights are therefore held to
 * 1e-6 except where the old gradient was within noise, and after 4 updates (where such
 * differences have fed back through the networks) more loosely.
 */

beforeAll(async () => {
  await selectBackend('wasm');
});

interface FixtureCase {
  stats: TrainStats[];
  afterOne: Record<string, string>;
  afterFour: Record<string, string>;
}
const FIXTURES = path.resolve(__dirname, '../../test/fixtures');
const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'sac-update-fixture.json'), 'utf8')) as Record<string, FixtureCase>;
const unpack = (base64: string) => new Float32Array(new Uint8Array(Buffer.from(base64, 'base64')).buffer);

/** The learning rate of the optimiser a snapshot key belongs to (defaults: policy 3e-4, q and α 1e-3). */
const lrOf = (key: string) => (key.startsWith('actor/') || key.startsWith('policy:') ? 3e-4 : 1e-3);

/** Whether the snapshot key is a trained weight (its Adam `m` slot is `<optimizer>:<model>/<name>/m`). */
function mSlotKey(key: string): string | undefined {
  const [model, ...rest] = key.split('/');
  if (key.includes(':') || model.endsWith('_target')) return undefined;
  if (model === 'actor') return `policy:actor/${rest.join('/')}/m`;
  if (model === 'alpha') return 'alpha:log_alpha/m';
  return `q:${key}/m`;
}

/** Problems of `actual` against the old update's snapshot `expected` after `updates` updates (empty if it matches). */
function mismatches(expected: Record<string, string>, actual: Record<string, number[]>, updates: 1 | 4): string[] {
  const problems: string[] = [];
  const keys = Object.keys(expected).sort();
  if (JSON.stringify(keys) !== JSON.stringify(Object.keys(actual).sort())) return [`keys differ: ${keys} vs ${Object.keys(actual).sort()}`];
  for (const key of keys) {
    const want = unpack(expected[key]);
    const got = actual[key];
    if (got.length !== want.length) {
      problems.push(`${key}: ${got.length} values, expected ${want.length}`);
      continue;
    }
    const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    if (key.includes(':')) {
      // Optimiser slots (moments of the gradients, and the step count): relative to the tensor's largest.
      const tol = 1e-5 * scale + 1e-12;
      const worst = want.reduce((m, x, i) => Math.max(m, Math.abs(x - got[i])), 0);
      if (updates === 1 && worst > tol) problems.push(`${key}: differs by ${worst} (tolerance ${tol})`);
      if (updates === 4 && worst > 100 * tol) problems.push(`${key}: differs by ${worst} (tolerance ${100 * tol})`);
      continue;
    }
    const slot = mSlotKey(key);
    // log α is not trained with a fixed α, so it has no slot.
    const m = slot && expected[slot] ? unpack(expected[slot]) : undefined;
    const mScale = m ? m.reduce((s, x) => Math.max(s, Math.abs(x)), 0) : 0;
    let loose = 0;
    want.forEach((x, i) => {
      const d = Math.abs(x - got[i]);
      if (d <= (updates === 1 ? 1e-6 : 1e-5)) return;
      // Within float noise of a zero gradient Adam's step may be anything up to lr (see the header).
      const noiseGradient = m !== undefined && Math.abs(m[i]) <= 1e-5 * mScale;
      const bound = updates === 1 ? (noiseGradient ? 2 * lrOf(key) : 1e-6) : 8 * lrOf(key);
      if (d > bound) problems.push(`${key}[${i}]: ${got[i]}, expected ${x} (tolerance ${bound})`);
      loose++;
    });
    // Outside the first update too, such weights must stay rare.
    if (updates === 4 && loose > Math.max(1, 0.01 * want.length)) problems.push(`${key}: ${loose} of ${want.length} values differ by more than 1e-5`);
  }
  return problems;
}

function statMismatches(expected: TrainStats, actual: TrainStats, rel: number): string[] {
  if (JSON.stringify(Object.keys(expected)) !== JSON.stringify(Object.keys(actual))) return [`stat names ${Object.keys(actual)}, expected ${Object.keys(expected)}`];
  return Object.keys(expected).filter((k) => !(Math.abs(expected[k] - actual[k]) <= rel * Math.abs(expected[k]) + 1e-7)).map((k) => `${k}: ${actual[k]}, expected ${expected[k]}`);
}

describe.each(Object.keys(SAC_UPDATE_CASES))('case %s', (name) => {
  test("gives the old update's stats, weights and optimiser slots to float tolerance", async () => {
    const old = fixture[name];
    const now = await recordSacCase(name);
    expect(statMismatches(old.stats[0], now.stats[0], 1e-5)).toEqual([]);
    expect(mismatches(old.afterOne, now.afterOne, 1)).toEqual([]);
    now.stats.slice(1).forEach((s, k) => expect(statMismatches(old.stats[k + 1], s, 1e-3)).toEqual([]));
    expect(mismatches(old.afterFour, now.afterFour, 4)).toEqual([]);
  });

  test('the comparison has teeth: weights before the update, or after a different one, do not pass', async () => {
    const sac = buildSacCase(name);
    expect(mismatches(fixture[name].afterOne, await snapshotSac(sac), 1).length).toBeGreaterThan(0);
    sac.update();
    sac.update();
    expect(mismatches(fixture[name].afterOne, await snapshotSac(sac), 1).length).toBeGreaterThan(0);
    sac.dispose();
  });

  test('bit-identical run to run, and no tensor outlives an update', async () => {
    const a = await recordSacCase(name);
    const b = await recordSacCase(name);
    expect(b).toEqual(a);
    const sac = buildSacCase(name);
    const before = tf.memory().numTensors;
    for (let k = 0; k < 4; k++) {
      sac.update();
      expect(tf.memory().numTensors).toBe(before);
    }
    sac.dispose();
  });
});

describe('checkpoints written by the old update', () => {
  const load = (name: string): LearnerState => {
    const file = path.join(FIXTURES, 'checkpoints', `sac-update-${name}.ckpt`);
    const data = decodeCheckpoint(new Uint8Array(fs.readFileSync(file)), file);
    return { models: data.models, optimizers: data.optimizers, rngs: data.rngs, arrays: data.arrays, json: data.metadata };
  };

  test.each(['agents', 'multitask'])('%s: restore to the bit, capture the same layout back, and continue as the old update did', async (name) => {
    const state = load(name);
    const sac = buildSacCase(name);
    await sac.restoreState(state);
    const again = await sac.captureState();
    // Every model and optimiser tensor under its old name, in the old order, with the same bytes.
    for (const [model, tensors] of Object.entries(state.models)) {
      expect(Object.keys(again.models[model])).toEqual(Object.keys(tensors));
      for (const [t, s] of Object.entries(tensors)) expect({ model, t, shape: again.models[model][t].shape, data: Buffer.from(again.models[model][t].data) }).toEqual({ model, t, shape: s.shape, data: Buffer.from(s.data) });
    }
    for (const [opt, st] of Object.entries(state.optimizers)) {
      expect(again.optimizers[opt].weights.map((w) => w.name)).toEqual(st.weights.map((w) => w.name));
      st.weights.forEach((w, i) => expect({ opt, w: w.name, shape: again.optimizers[opt].weights[i].tensor.shape, data: Buffer.from(again.optimizers[opt].weights[i].tensor.data) }).toEqual({ opt, w: w.name, shape: w.tensor.shape, data: Buffer.from(w.tensor.data) }));
    }
    // The old learner's updates 2–4 from there.
    const stats = [sac.update(), sac.update(), sac.update()];
    stats.forEach((s, k) => expect(statMismatches(fixture[name].stats[k + 1], s, 1e-3)).toEqual([]));
    expect(mismatches(fixture[name].afterFour, await snapshotSac(sac), 4)).toEqual([]);
    sac.dispose();
  });

  test("a critic's missing model or optimiser slot is named", async () => {
    const state = load('agents');
    const sac = buildSacCase('agents');
    const { qf2: _gone, ...noQf2 } = state.models;
    await expect(sac.restoreState({ ...state, models: noQf2 })).rejects.toThrow(/no model 'qf2'/);
    const { 'fc1/b': _b, ...partial } = state.models.qf1_target;
    await expect(sac.restoreState({ ...state, models: { ...state.models, qf1_target: partial } })).rejects.toThrow(/model 'qf1_target': checkpoint has no tensor 'fc1\/b'/);
    const q = state.optimizers.q;
    const withoutSlot = { ...q, weights: q.weights.filter((w) => w.name !== 'qf2/fc0/w/v') };
    await expect(sac.restoreState({ ...state, optimizers: { ...state.optimizers, q: withoutSlot } })).rejects.toThrow(/optimizer 'q' has no weight 'qf2\/fc0\/w\/v'/);
    sac.dispose();
  });
});
