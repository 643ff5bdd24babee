import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Packr } from 'msgpackr';
import {
  CheckpointData,
  CheckpointFs,
  type OptimizerState,
  assignTensors,
  deserializeArray,
  captureTensors,
  encodeCheckpoint,
  readCheckpoint,
  readLatestCheckpoint,
  restoreTensors,
  serializeArray,
  writeCheckpoint,
} from '../runtime/core/checkpoint';
import { Rng } from '../runtime/core/rng';
import { Adam } from '../trainers/adam';

let dir: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-ckpt-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function baseData(overrides: Partial<CheckpointData> = {}): CheckpointData {
  return {
    createdAt: '2024-01-01T00:00:00.000Z',
    config: { env: 'spread', lr: 0.001, layers: [64, 64], nested: { on: true, none: null } },
    counters: { envSteps: 1000, episodes: 12, updates: 5, logIndex: 3 },
    models: {},
    optimizers: {},
    rngs: {},
    arrays: {},
    backend: 'cpu',
    metadata: { note: 'test' },
    ...overrides,
  };
}

function bits(t: tf.Tensor): Uint8Array {
  const v = t.dataSync();
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

// A small least-squares problem; fixed data so two optimisers can be compared step for step.
const xs = () => tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
const ys = () => tf.tensor2d([[1], [0], [2]]);

function step(opt: tf.Optimizer | Adam, w: tf.Variable): void {
  tf.tidy(() => {
    const x = xs();
    const y = ys();
    const loss = () => tf.sum(tf.square(tf.sub(tf.matMul(x, w), y))) as tf.Scalar;
    if (opt instanceof Adam) opt.apply({ w: tf.variableGrads(loss, [w]).grads[w.name] });
    else opt.minimize(loss, false, [w]);
  });
}

/** What tfjs's AdamOptimizer held, as QMIX's checkpoints of format 2 stored it. */
async function tfjsAdamState(adam: tf.AdamOptimizer): Promise<{ state: OptimizerState; powers: number[] }> {
  const weights = await adam.getWeights();
  const state: OptimizerState = {
    className: adam.getClassName(),
    config: { learningRate: 0.05 },
    weights: await Promise.all(weights.map(async (w) => ({ name: w.name, tensor: (await captureTensors({ t: w.tensor })).t }))),
  };
  const { accBeta1, accBeta2 } = adam as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
  return { state, powers: [accBeta1.dataSync()[0], accBeta2.dataSync()[0]] };
}

describe('round trip', () => {
  test('weights bit-for-bit, counters, config, metadata, RNG, backend', async () => {
    const weird = new Float32Array([NaN, -0, Infinity, 1e-45, 3.14159]);
    const tensors = {
      kernel: tf.tensor(weird, [5]),
      ints: tf.tensor([[1, -2], [2147483647, -2147483648]], [2, 2], 'int32'),
      mask: tf.tensor([true, false, true], [3], 'bool'),
      scalar: tf.scalar(2.5),
    };
    const rng = new Rng('seed');
    for (let i = 0; i < 7; i++) rng.next();
    const data = baseData({
      models: { policy: await captureTensors(tensors), critic: await captureTensors({ b: tf.zeros([0, 3]) }) },
      rngs: { env0: rng.state() },
      arrays: {
        f32: serializeArray(weird),
        f64: serializeArray(new Float64Array([Math.PI, -1e300])),
        i32: serializeArray(new Int32Array([-7, 2147483647])),
        u8: serializeArray(new Uint8Array([0, 1, 255]).subarray(1)),
      },
    });
    const file = await writeCheckpoint(dir, 'step-1', data);
    expect(file).toBe(path.join(dir, 'step-1.ckpt'));
    const back = await readCheckpoint(file);
    expect(back.counters).toEqual(data.counters);
    expect(back.config).toEqual(data.config);
    expect(back.metadata).toEqual(data.metadata);
    expect(back.backend).toBe('cpu');
    expect(back.createdAt).toBe(data.createdAt);
    const restored = restoreTensors(back.models.policy);
    for (const [name, t] of Object.entries(tensors)) {
      expect(restored[name].dtype).toBe(t.dtype);
      expect(restored[name].shape).toEqual(t.shape);
      expect(bits(restored[name])).toEqual(bits(t));
    }
    expect(back.models.critic.b.shape).toEqual([0, 3]);
    expect(deserializeArray(back.arrays.f32)).toEqual(weird);
    expect(deserializeArray(back.arrays.f64)).toEqual(new Float64Array([Math.PI, -1e300]));
    expect(deserializeArray(back.arrays.i32)).toEqual(new Int32Array([-7, 2147483647]));
    expect(deserializeArray(back.arrays.u8)).toEqual(new Uint8Array([1, 255]));
    // The restored generator continues the very same stream.
    const resumed = Rng.fromState(back.rngs.env0);
    for (let i = 0; i < 20; i++) expect(resumed.next()).toBe(rng.next());
    tf.dispose([...Object.values(tensors), ...Object.values(restored)]);
  });

  test.each(['pytorch', 'tfjs'] as const)('Adam (%s formulation) restored into a fresh optimiser gives the identical next updates', async (formulation) => {
    const init = tf.tensor2d([[0.3], [-0.2]]);
    const w = tf.variable(init, true, `ckpt_w_a_${formulation}`);
    const settings = { lr: 0.05, beta1: 0.8, beta2: 0.95, formulation };
    const adam = new Adam(settings, { w });
    for (let i = 0; i < 3; i++) step(adam, w);

    const file = await writeCheckpoint(dir, 'adam', baseData({
      models: { m: await captureTensors({ w }) },
      optimizers: { m: await adam.capture() },
    }));
    step(adam, w); // the uninterrupted run
    step(adam, w);

    const back = await readCheckpoint(file);
    const w2 = tf.variable(tf.zerosLike(init), true, `ckpt_w_b_${formulation}`);
    assignTensors({ w: w2 }, back.models.m);
    const adam2 = new Adam(settings, { w: w2 });
    adam2.restore(back.optimizers.m, 'test');
    step(adam2, w2);
    step(adam2, w2);
    expect(bits(w2)).toEqual(bits(w));
    // A fresh Adam (no restored moments) would take a different step, so the comparison has teeth.
    const w3 = tf.variable(tf.zerosLike(init), true, `ckpt_w_c_${formulation}`);
    assignTensors({ w: w3 }, back.models.m);
    const fresh = new Adam(settings, { w: w3 });
    step(fresh, w3);
    step(fresh, w3);
    expect(bits(w3)).not.toEqual(bits(w));
    // The other formulation's state is refused, naming both.
    const other = new Adam({ ...settings, formulation: formulation === 'tfjs' ? 'pytorch' : 'tfjs' }, { w: w3 });
    expect(() => other.restore(back.optimizers.m, "optimizer 'm'")).toThrow(/optimizer 'm' was saved with the .* formulation, this optimiser uses/);
    tf.dispose([init, w, w2, w3]);
    [adam, adam2, fresh, other].forEach((a) => a.dispose());
  });

  test("the tfjs formulation continues tfjs's own AdamOptimizer bit for bit (QMIX checkpoints of format 2)", async () => {
    const w = tf.variable(tf.tensor2d([[0.3], [-0.2]]), true, 'ckpt_w_tfjs');
    const tfAdam = tf.train.adam(0.05, 0.8, 0.95, 1e-8);
    for (let i = 0; i < 5; i++) step(tfAdam, w);
    const { state, powers } = await tfjsAdamState(tfAdam);
    const w2 = tf.variable(w.clone(), true, 'ckpt_w_tfjs2');
    for (let i = 0; i < 3; i++) step(tfAdam, w);
    const ours = new Adam({ lr: 0.05, beta1: 0.8, beta2: 0.95, epsilon: 1e-8, formulation: 'tfjs' }, { w: w2 });
    ours.restore(state, 'test', powers);
    for (let i = 0; i < 3; i++) step(ours, w2);
    expect(bits(w2)).toEqual(bits(w));
    tf.dispose([w, w2]);
    tfAdam.dispose();
    ours.dispose();
  });

  test('capture, restore and assign leak no tensors', async () => {
    const w = tf.variable(tf.randomNormal([4, 3]), true, 'ckpt_leak_w');
    const v = tf.variable(tf.zeros([2, 1]), true, 'ckpt_leak_v');
    const adam = new Adam({ lr: 0.01, formulation: 'tfjs' }, { w: v });
    step(adam, v);
    const before = tf.memory().numTensors;
    const captured = await captureTensors({ w });
    const opt = await adam.capture();
    await writeCheckpoint(dir, 'leak', baseData({ models: { m: captured }, optimizers: { m: opt } }));
    const back = await readCheckpoint(path.join(dir, 'leak.ckpt'));
    assignTensors({ w }, back.models.m);
    tf.dispose(Object.values(restoreTensors(back.models.m)));
    adam.restore(back.optimizers.m, 'test');
    expect(tf.memory().numTensors).toBe(before);
    // A second optimiser holds exactly its own slot variables, and frees them.
    const adam2 = new Adam({ lr: 0.01, formulation: 'tfjs' }, { w: v });
    adam2.restore(back.optimizers.m, 'test');
    adam2.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('assignTensors rejects a shape mismatch before touching any variable', async () => {
    const a = tf.variable(tf.ones([2]), true, 'ckpt_assign_a');
    const b = tf.variable(tf.ones([3]), true, 'ckpt_assign_b');
    const stored = await captureTensors({ a: tf.zeros([2]), b: tf.zeros([4]) });
    expect(() => assignTensors({ a, b }, stored)).toThrow(/'b' is float32\[4\], variable is float32\[3\]/);
    expect(Array.from(a.dataSync())).toEqual([1, 1]);
    expect(() => assignTensors({ c: a }, stored)).toThrow(/no tensor 'c'/);
  });
});

describe('atomic writes and the latest pointer', () => {
  test('a crash at the rename leaves the previous checkpoint intact and no partial file', async () => {
    await writeCheckpoint(dir, 'ckpt', baseData({ counters: { envSteps: 1, episodes: 1, updates: 1, logIndex: 1 } }));
    const before = fs.readFileSync(path.join(dir, 'ckpt.ckpt'));
    const crashing: CheckpointFs = {
      open: fsp.open,
      unlink: fsp.unlink,
      mkdir: fsp.mkdir,
      rename: async () => {
        throw new Error('simulated crash');
      },
    };
    await expect(writeCheckpoint(dir, 'ckpt', baseData({ counters: { envSteps: 2, episodes: 2, updates: 2, logIndex: 2 } }), { fs: crashing })).rejects.toThrow('simulated crash');
    expect(fs.readFileSync(path.join(dir, 'ckpt.ckpt'))).toEqual(before);
    expect((await readCheckpoint(path.join(dir, 'ckpt.ckpt'))).counters.envSteps).toBe(1);
    expect((await readLatestCheckpoint(dir)).data.counters.envSteps).toBe(1);
    expect(fs.readdirSync(dir).sort()).toEqual(['ckpt.ckpt', 'latest']);
  });

  test('a crash while writing the data never creates the final name', async () => {
    const failing: CheckpointFs = {
      open: (async (p: string, flags: string) => {
        const handle = await fsp.open(p, flags);
        if (!p.includes('.tmp-')) return handle;
        // Writes half the bytes, then dies: what a crash mid-write leaves behind.
        return Object.assign(Object.create(handle), {
          writeFile: async (bytes: Uint8Array) => {
            await handle.write(bytes.subarray(0, bytes.length >> 1));
            throw new Error('disk full');
          },
          close: () => handle.close(),
        });
      }) as unknown as typeof fsp.open,
      unlink: fsp.unlink,
      mkdir: fsp.mkdir,
      rename: fsp.rename,
    };
    await expect(writeCheckpoint(dir, 'half', baseData(), { fs: failing })).rejects.toThrow('disk full');
    expect(fs.readdirSync(dir)).toEqual([]);
    await expect(readLatestCheckpoint(dir)).rejects.toThrow(/no checkpoint in .*no 'latest' pointer/);
  });

  test('a read-only directory fails the write without touching the existing checkpoint', async () => {
    if (process.getuid?.() === 0) return; // root ignores directory permissions
    await writeCheckpoint(dir, 'ro', baseData());
    const before = fs.readFileSync(path.join(dir, 'ro.ckpt'));
    fs.chmodSync(dir, 0o555);
    try {
      await expect(writeCheckpoint(dir, 'ro', baseData({ backend: 'wasm' }))).rejects.toThrow(/EACCES|EPERM/);
    } finally {
      fs.chmodSync(dir, 0o755);
    }
    expect(fs.readFileSync(path.join(dir, 'ro.ckpt'))).toEqual(before);
  });

  test('latest follows the newest write; keepLast deletes the oldest', async () => {
    for (let i = 1; i <= 5; i++) {
      await writeCheckpoint(dir, `step-${i}`, baseData({ counters: { envSteps: i, episodes: 0, updates: 0, logIndex: 0 } }), { keepLast: 2 });
      const latest = await readLatestCheckpoint(dir);
      expect(latest.path).toBe(path.join(dir, `step-${i}.ckpt`));
      expect(latest.data.counters.envSteps).toBe(i);
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['latest', 'step-4.ckpt', 'step-5.ckpt']);
    // Without keepLast everything is kept.
    await writeCheckpoint(dir, 'step-6', baseData());
    expect(fs.readdirSync(dir).sort()).toEqual(['latest', 'step-4.ckpt', 'step-5.ckpt', 'step-6.ckpt']);
    await expect(writeCheckpoint(dir, 'x', baseData(), { keepLast: 0 })).rejects.toThrow(/keepLast/);
    await expect(writeCheckpoint(dir, '../escape', baseData())).rejects.toThrow(/invalid checkpoint name/);
    await expect(writeCheckpoint(dir, 'latest', baseData())).rejects.toThrow(/invalid checkpoint name/);
  });
});

describe('validation', () => {
  async function written(data: CheckpointData = baseData()): Promise<string> {
    return writeCheckpoint(dir, 'v', data);
  }

  test('missing file', async () => {
    await expect(readCheckpoint(path.join(dir, 'nope.ckpt'))).rejects.toThrow(/checkpoint .*nope\.ckpt does not exist/);
  });

  test('truncated file at every kind of cut is "corrupt or truncated"', async () => {
    const w = tf.ones([10, 10]);
    const file = await written(baseData({ models: { m: await captureTensors({ w }) } }));
    w.dispose();
    const full = fs.readFileSync(file);
    for (const len of [0, 1, 5, 20, Math.floor(full.length / 2), full.length - 1]) {
      fs.writeFileSync(file, full.subarray(0, len));
      await expect(readCheckpoint(file)).rejects.toThrow(new RegExp(`${file.replace(/[.\\/]/g, '\\$&')} is corrupt or truncated`));
    }
  });

  test('foreign files are "not a troupe checkpoint"', async () => {
    const file = path.join(dir, 'foreign');
    const foreign: Array<Uint8Array | string> = [
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff)),
      new Packr({ useRecords: false }).pack({ weights: [1, 2, 3], version: 1 }),
      new Packr({ useRecords: false }).pack({ magic: 'something-else', version: 1 }),
      JSON.stringify({ magic: 'troupe-checkpoint', version: 1 }),
      '{}',
    ];
    for (const content of foreign) {
      fs.writeFileSync(file, content);
      await expect(readCheckpoint(file)).rejects.toThrow(`${file} is not a troupe checkpoint`);
    }
  });

  function tamper(file: string, edit: (root: Record<string, unknown>) => void): void {
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    const root = packr.unpack(fs.readFileSync(file)) as Record<string, unknown>;
    edit(root);
    fs.writeFileSync(file, packr.pack(root));
  }

  test('wrong tensor size names the file and the field', async () => {
    const file = await written(baseData({ models: { policy: await captureTensors({ k: tf.zeros([2, 3]) }) } }));
    tamper(file, (root) => {
      const models = root.models as Record<string, Record<string, { data: Uint8Array }>>;
      models.policy.k.data = models.policy.k.data.subarray(0, 20);
    });
    await expect(readCheckpoint(file)).rejects.toThrow(`${file}: field 'models.policy.k.data' has 20 bytes; shape [2,3] of float32 needs 24`);
  });

  test('each wrongly typed field is named', async () => {
    const v = tf.variable(tf.zeros([2, 1]), true, 'ckpt_validate_v');
    const adam = new Adam({ lr: 0.1 }, { w: v });
    step(adam, v);
    const good = baseData({
      models: { m: await captureTensors({ k: tf.zeros([2]) }) },
      optimizers: { m: await adam.capture() },
      rngs: { r: new Rng(1).state() },
      arrays: { a: serializeArray(new Float32Array([1, 2])) },
    });
    const cases: Array<[string, (root: Record<string, unknown>) => void, RegExp]> = [
      ['version', (r) => { r.version = 99; }, /format version 99; this build reads 1, 2, 3/],
      ['version', (r) => { r.version = 'one'; }, /field 'version' must be a non-negative integer/],
      ['createdAt', (r) => { r.createdAt = 5; }, /field 'createdAt' must be a string/],
      ['counters', (r) => { (r.counters as Record<string, unknown>).updates = -1; }, /field 'counters.updates' must be a non-negative integer/],
      ['config', (r) => { r.config = [1]; }, /field 'config' must be a map/],
      ['backend', (r) => { delete r.backend; }, /field 'backend' must be a string/],
      ['dtype', (r) => { ((r.models as Record<string, Record<string, Record<string, unknown>>>).m.k).dtype = 'complex64'; }, /field 'models.m.k.dtype' must be float32, int32 or bool/],
      ['shape', (r) => { ((r.models as Record<string, Record<string, Record<string, unknown>>>).m.k).shape = [1.5]; }, /field 'models.m.k.shape\[0\]' must be a non-negative integer/],
      ['data', (r) => { ((r.models as Record<string, Record<string, Record<string, unknown>>>).m.k).data = [0, 0]; }, /field 'models.m.k.data' must be binary data/],
      ['optimiser', (r) => { ((r.optimizers as Record<string, Record<string, unknown>>).m).weights = 3; }, /field 'optimizers.m.weights' must be a list/],
      ['rng', (r) => { ((r.rngs as Record<string, Record<string, unknown>>).r).s1 = 'x'; }, /field 'rngs.r.s1' must be a finite number/],
      ['metadata', (r) => { r.metadata = 'x'; }, /field 'metadata' must be a map/],
      ['array type', (r) => { ((r.arrays as Record<string, Record<string, unknown>>).a).type = 'BigInt64Array'; }, /field 'arrays.a.type' must be one of Float32Array/],
      ['array data', (r) => { ((r.arrays as Record<string, Record<string, unknown>>).a).data = new Uint8Array(7); }, /field 'arrays.a.data' has 7 bytes, not a whole number of Float32Array elements/],
    ];
    for (const [, edit, expected] of cases) {
      const file = await written(good);
      await readCheckpoint(file); // the untampered file is valid, so each failure is the edit's
      tamper(file, edit);
      await expect(readCheckpoint(file)).rejects.toThrow(expected);
      await expect(readCheckpoint(file)).rejects.toThrow(file);
    }
    tf.dispose(v);
    adam.dispose();
  });

  test('a damaged latest pointer is reported as such', async () => {
    await written();
    fs.writeFileSync(path.join(dir, 'latest'), 'garbage');
    await expect(readLatestCheckpoint(dir)).rejects.toThrow(/latest is not a valid checkpoint pointer/);
    fs.writeFileSync(path.join(dir, 'latest'), JSON.stringify({ latest: '../../etc/passwd', history: [] }));
    await expect(readLatestCheckpoint(dir)).rejects.toThrow(/outside its directory/);
  });

  test('the magic tag is at the start of the encoding', () => {
    const bytes = encodeCheckpoint(baseData());
    expect(Buffer.from(bytes.subarray(0, 40)).toString('latin1')).toContain('troupe-checkpoint');
  });
});
