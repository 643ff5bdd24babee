import * as tf from '@tensorflow/tfjs';
import { DecisionTransformer, type DecisionTransformerInput, type DecisionTransformerSpec } from '../agents/networks/decision-transformer';
import { decisionTransformerFlops } from '../agents/networks/flops';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import { Adam } from '../trainers/adam';

// wasm is the backend the decision transformer trains on; bit-identity below is checked there.
beforeAll(async () => {
  await selectBackend('wasm');
});

const S = 3;
const A = 2;
const Z = 4;

const spec = (over: Partial<DecisionTransformerSpec> = {}): DecisionTransformerSpec => ({
  stateDim: S,
  action: { kind: 'continuous', low: [-0.1, 0], high: [0.1, 2] },
  embedDim: 16,
  numLayers: 2,
  numHeads: 2,
  innerDim: 32,
  maxEpisodeLength: 50,
  seed: 'dt-test',
  role: 'dt',
  ...over,
});

/** Plain-JS sequences, so a test can change one number and run again. */
interface Seq {
  rtg: number[][];
  states: number[][][];
  actions: number[][][];
  timesteps: number[][];
  mask?: number[][];
  contexts?: number[][][];
}

function randomSeq(rng: Rng, B: number, K: number, opts: { actDim?: number; contextDim?: number; firstStep?: number } = {}): Seq {
  const actDim = opts.actDim ?? A;
  const vec = (n: number) => Array.from({ length: n }, () => rng.normal());
  const grid = <T>(f: () => T) => Array.from({ length: B }, () => Array.from({ length: K }, f));
  return {
    rtg: grid(() => rng.normal()),
    states: grid(() => vec(S)),
    actions: grid(() => vec(actDim)),
    timesteps: Array.from({ length: B }, (_, b) => Array.from({ length: K }, (_, t) => (opts.firstStep ?? b) + t)),
    contexts: opts.contextDim ? grid(() => vec(opts.contextDim!)) : undefined,
  };
}

function tensors(seq: Seq): DecisionTransformerInput {
  return {
    returnsToGo: tf.tensor2d(seq.rtg),
    states: tf.tensor3d(seq.states),
    actions: tf.tensor3d(seq.actions),
    timesteps: tf.tensor2d(seq.timesteps, undefined, 'int32'),
    mask: seq.mask ? tf.tensor2d(seq.mask) : undefined,
    contexts: seq.contexts ? tf.tensor3d(seq.contexts) : undefined,
  };
}

function disposeInput(input: DecisionTransformerInput): void {
  const all: Array<tf.Tensor | undefined> = [input.returnsToGo, input.states, input.actions, input.timesteps, input.mask, input.contexts];
  if (input.prompt) all.push(...Object.values(input.prompt));
  tf.dispose(all.filter((t): t is tf.Tensor => t !== undefined));
}

/** Predictions [B, K, out] of `seq` (with an optional prompt) as a flat array; frees every tensor it made. */
function predict(net: DecisionTransformer, seq: Seq, prompt?: Seq, training = false, dropoutSeed?: string): Float32Array {
  const input = tensors(seq);
  if (prompt) {
    const p = tensors(prompt);
    input.prompt = { returnsToGo: p.returnsToGo, states: p.states, actions: p.actions, timesteps: p.timesteps, mask: p.mask };
  }
  try {
    const out = net.forward(input, training, dropoutSeed);
    const data = out.dataSync().slice() as Float32Array;
    out.dispose();
    return data;
  } finally {
    disposeInput(input);
  }
}

/** The predictions of row b at step t (layout [B, K, out]). */
function at(pred: Float32Array, K: number, out: number, b: number, t: number): number[] {
  const start = (b * K + t) * out;
  return Array.from(pred.subarray(start, start + out));
}

/** Asserts, for every row, bit-identical predictions at the steps `same` says and different ones elsewhere. */
function expectSteps(before: Float32Array, after: Float32Array, B: number, K: number, same: (t: number) => boolean): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < K; t++) {
      if (same(t)) expect(at(after, K, A, b, t)).toEqual(at(before, K, A, b, t));
      else expect(at(after, K, A, b, t)).not.toEqual(at(before, K, A, b, t));
    }
  }
}

function cloneSeq(seq: Seq): Seq {
  return structuredClone(seq);
}

describe('DecisionTransformer', () => {
  test('shapes, tanh within the Box bounds, discrete logits, and the parameter count by layer', () => {
    const net = new DecisionTransformer(spec({ contextDim: Z, stateEmbedDim: 5, prompt: true }));
    const B = 3;
    const K = 4;
    const seq = randomSeq(new Rng(1), B, K, { contextDim: Z });
    // Large inputs push the tanh towards its ends; predictions must still respect the bounds.
    seq.rtg = seq.rtg.map((r) => r.map((x) => 50 * x));
    const pred = predict(net, seq);
    expect(pred.length).toBe(B * K * A);
    for (let i = 0; i < pred.length; i++) {
      const [lo, hi] = i % A === 0 ? [-0.1, 0.1] : [0, 2];
      expect(pred[i]).toBeGreaterThanOrEqual(lo);
      expect(pred[i]).toBeLessThanOrEqual(hi);
    }

    const d = 16;
    const inner = 32;
    const L = 50;
    const linear = (i: number, o: number) => i * o + o;
    const mainEmbed = L * d + linear(1, d) + linear(S, 5) + linear(5 + Z, d) + linear(A, d);
    const promptEmbed = L * d + linear(1, d) + linear(S, d) + linear(A, d);
    const block = 2 * (2 * d) + linear(d, 3 * d) + linear(d, d) + linear(d, inner) + linear(inner, d);
    expect(net.parameterCount()).toBe(mainEmbed + promptEmbed + 2 * d + 2 * block + 2 * d + linear(d, A));
    const names = Object.keys(net.namedVariables());
    expect(names).toEqual(expect.arrayContaining(['embed/timestep', 'embed/stateEncoder/w', 'embed/state/w', 'prompt/embed/state/w', 'block1/qkv/w', 'block1/mlpOut/b', 'finalLn/gamma', 'head/w']));
    net.dispose();

    const discrete = new DecisionTransformer(spec({ action: { kind: 'discrete', numActions: 5 } }));
    const dseq = randomSeq(new Rng(2), B, K, { actDim: 5 });
    expect(predict(discrete, dseq).length).toBe(B * K * 5);
    expect(Object.keys(discrete.namedVariables()).some((n) => n.startsWith('prompt/'))).toBe(false);
    const input = tensors(dseq);
    const last = discrete.predictLastAction(input);
    expect(last.shape).toEqual([B, 5]);
    tf.dispose(last);
    disposeInput(input);
    discrete.dispose();
  });

  test('causal: a later return, state or action never changes an earlier prediction; an earlier one changes the later ones', () => {
    const net = new DecisionTransformer(spec());
    const B = 2;
    const K = 5;
    const j = 2;
    const seq = randomSeq(new Rng(3), B, K);
    const base = predict(net, seq);
    // R̂_j and s_j come before the s_j token, which predicts a_j; a_j comes after it.
    const rtg = cloneSeq(seq);
    rtg.rtg.forEach((row) => (row[j] += 1));
    expectSteps(base, predict(net, rtg), B, K, (t) => t < j);
    const state = cloneSeq(seq);
    state.states.forEach((row) => (row[j][0] += 1));
    expectSteps(base, predict(net, state), B, K, (t) => t < j);
    const action = cloneSeq(seq);
    action.actions.forEach((row) => (row[j][1] += 1));
    expectSteps(base, predict(net, action), B, K, (t) => t <= j);
    // The last step's action is never seen by any prediction (acting passes zeros there).
    const lastAction = cloneSeq(seq);
    lastAction.actions.forEach((row) => (row[K - 1] = [7, -7]));
    expect(predict(net, lastAction)).toEqual(base);
    net.dispose();
  });

  test('the task representation z_t enters the state token of step t: predictions change from t on, not before', () => {
    const net = new DecisionTransformer(spec({ contextDim: Z }));
    const B = 2;
    const K = 5;
    const seq = randomSeq(new Rng(4), B, K, { contextDim: Z });
    const base = predict(net, seq);
    for (const j of [0, 3]) {
      const changed = cloneSeq(seq);
      changed.contexts!.forEach((row) => (row[j][2] += 1));
      expectSteps(base, predict(net, changed), B, K, (t) => t < j);
    }
    const input = tensors(seq);
    delete input.contexts;
    expect(() => net.forward(input)).toThrow(/contexts is missing/);
    disposeInput(input);
    net.dispose();
  });

  test('left padding: padded steps change nothing, and a padded sequence predicts what the shorter one does', () => {
    const net = new DecisionTransformer(spec({ contextDim: Z }));
    const B = 2;
    const K = 6;
    const pad = 2;
    const seq = randomSeq(new Rng(5), B, K, { contextDim: Z });
    seq.mask = seq.rtg.map((row) => row.map((_, t) => (t < pad ? 0 : 1)));
    const base = predict(net, seq);
    const changed = cloneSeq(seq);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < pad; t++) {
        changed.rtg[b][t] = 100;
        changed.states[b][t] = [5, -5, 5];
        changed.actions[b][t] = [3, 3];
        changed.contexts![b][t] = [1, 2, 3, 4];
        changed.timesteps[b][t] = 40 + t;
      }
    }
    const after = predict(net, changed);
    for (let b = 0; b < B; b++) for (let t = pad; t < K; t++) expect(at(after, K, A, b, t)).toEqual(at(base, K, A, b, t));

    const short: Seq = {
      rtg: seq.rtg.map((r) => r.slice(pad)),
      states: seq.states.map((r) => r.slice(pad)),
      actions: seq.actions.map((r) => r.slice(pad)),
      timesteps: seq.timesteps.map((r) => r.slice(pad)),
      contexts: seq.contexts!.map((r) => r.slice(pad)),
    };
    const shortPred = predict(net, short);
    for (let b = 0; b < B; b++) {
      for (let t = pad; t < K; t++) {
        const p = at(base, K, A, b, t);
        at(shortPred, K - pad, A, b, t - pad).forEach((v, i) => expect(v).toBeCloseTo(p[i], 6));
      }
    }

    // Acting reads each row's last real step, wherever its padding is.
    const input = tensors(seq);
    input.mask?.dispose();
    input.mask = tf.tensor2d([[1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 0, 0]]);
    const full = net.forward(input);
    const last = net.predictLastAction(input);
    const fullData = full.dataSync() as Float32Array;
    expect(Array.from(last.dataSync())).toEqual([...at(fullData, K, A, 0, K - 1), ...at(fullData, K, A, 1, 3)]);
    tf.dispose([full, last]);
    disposeInput(input);
    net.dispose();
  });

  test('prompt: seen by every step, its padded steps by none; a shared prompt equals a copy per row', () => {
    const net = new DecisionTransformer(spec({ prompt: true }));
    const B = 2;
    const K = 4;
    const k = 3;
    const seq = randomSeq(new Rng(6), B, K);
    const prompt = randomSeq(new Rng(7), B, k, { firstStep: 10 });
    prompt.mask = [[0, 1, 1], [1, 1, 1]];
    const base = predict(net, seq, prompt);
    expect(predict(net, seq)).not.toEqual(base);

    // A real prompt step reaches every prediction of its row, the other row not at all.
    const changed = cloneSeq(prompt);
    changed.states[1][2][0] += 1;
    const after = predict(net, seq, changed);
    for (let t = 0; t < K; t++) {
      expect(at(after, K, A, 0, t)).toEqual(at(base, K, A, 0, t));
      expect(at(after, K, A, 1, t)).not.toEqual(at(base, K, A, 1, t));
    }
    const padded = cloneSeq(prompt);
    padded.states[0][0] = [9, 9, 9];
    padded.rtg[0][0] = -9;
    padded.actions[0][0] = [9, -9];
    padded.timesteps[0][0] = 49;
    expect(predict(net, seq, padded)).toEqual(base);

    // One prompt row serves every sequence as its copies would.
    const one: Seq = { rtg: [prompt.rtg[1]], states: [prompt.states[1]], actions: [prompt.actions[1]], timesteps: [prompt.timesteps[1]] };
    const copies: Seq = { rtg: [prompt.rtg[1], prompt.rtg[1]], states: [prompt.states[1], prompt.states[1]], actions: [prompt.actions[1], prompt.actions[1]], timesteps: [prompt.timesteps[1], prompt.timesteps[1]] };
    expect(predict(net, seq, one)).toEqual(predict(net, seq, copies));

    const plain = new DecisionTransformer(spec());
    expect(() => predict(plain, seq, prompt)).toThrow(/without prompt layers/);
    plain.dispose();
    net.dispose();
  });

  test('determinism: equal seeds give equal weights and outputs; dropout only in training, fixed by its seed', () => {
    const a = new DecisionTransformer(spec({ contextDim: Z }));
    const b = new DecisionTransformer(spec({ contextDim: Z }));
    const other = new DecisionTransformer(spec({ contextDim: Z, seed: 'other' }));
    const av = a.namedVariables();
    const bv = b.namedVariables();
    const ov = other.namedVariables();
    expect(Object.keys(bv)).toEqual(Object.keys(av));
    for (const name of Object.keys(av)) expect(Array.from(bv[name].dataSync())).toEqual(Array.from(av[name].dataSync()));
    expect(Array.from(ov['block0/qkv/w'].dataSync())).not.toEqual(Array.from(av['block0/qkv/w'].dataSync()));

    const seq = randomSeq(new Rng(8), 2, 5, { contextDim: Z });
    const inference = predict(a, seq);
    expect(predict(a, seq)).toEqual(inference);
    expect(predict(b, seq)).toEqual(inference);
    const trained = predict(a, seq, undefined, true, 'run/step/7');
    expect(trained).not.toEqual(inference);
    expect(predict(a, seq, undefined, true, 'run/step/7')).toEqual(trained);
    expect(predict(b, seq, undefined, true, 'run/step/7')).toEqual(trained);
    expect(predict(a, seq, undefined, true, 'run/step/8')).not.toEqual(trained);
    expect(() => predict(a, seq, undefined, true)).toThrow(/dropoutSeed/);

    const noDropout = new DecisionTransformer(spec({ contextDim: Z, dropout: 0 }));
    expect(predict(noDropout, seq, undefined, true)).toEqual(inference);
    const zeros = new DecisionTransformer(spec({ contextDim: Z, init: 'zeros' }));
    const zv = zeros.namedVariables();
    expect(Object.keys(zv)).toEqual(Object.keys(av));
    for (const [name, v] of Object.entries(zv)) {
      expect(v.shape).toEqual(av[name].shape);
      expect(tf.tidy(() => tf.max(tf.abs(v)).dataSync()[0])).toBe(0);
    }
    zeros.copyFrom(a);
    expect(predict(zeros, seq)).toEqual(inference);
    for (const net of [a, b, other, noDropout, zeros]) net.dispose();
  });

  test('GELU instead of ReLU gives other, finite predictions', () => {
    const relu = new DecisionTransformer(spec());
    const gelu = new DecisionTransformer(spec({ activation: 'gelu' }));
    const seq = randomSeq(new Rng(9), 2, 4);
    const g = predict(gelu, seq);
    expect(g.every(Number.isFinite)).toBe(true);
    expect(g).not.toEqual(predict(relu, seq));
    relu.dispose();
    gelu.dispose();
  });

  test('no tensor leaks: forward and gradient passes inside tidy, predictLastAction, and dispose back to the baseline', () => {
    const baseline = tf.memory().numTensors;
    const net = new DecisionTransformer(spec({ contextDim: Z, prompt: true }));
    const withNet = tf.memory().numTensors;
    expect(withNet - baseline).toBe(net.variables().length);
    const seq = randomSeq(new Rng(10), 2, 4, { contextDim: Z });
    const prompt = randomSeq(new Rng(11), 1, 2);
    const input = tensors(seq);
    const p = tensors(prompt);
    input.prompt = { returnsToGo: p.returnsToGo, states: p.states, actions: p.actions, timesteps: p.timesteps };
    const withInput = tf.memory().numTensors;
    tf.tidy(() => {
      net.forward(input);
      net.forward(input, true, 'leak/0');
      tf.variableGrads(() => tf.mean(tf.square(net.forward(input, true, 'leak/1'))) as tf.Scalar, net.variables());
    });
    expect(tf.memory().numTensors).toBe(withInput);
    net.predictLastAction(input).dispose();
    expect(tf.memory().numTensors).toBe(withInput);
    disposeInput(input);
    net.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  test('learns a state → action map: a few hundred Adam steps cut the action MSE several-fold', () => {
    // Point-robot's expert: a = clip(goal − s, ±0.1) for a fixed goal, so the action is a
    // function of the current state token alone.
    const goal = [0.5, -0.3];
    const B = 32;
    const K = 5;
    const net = new DecisionTransformer(spec({ stateDim: 2, embedDim: 32, numLayers: 1, numHeads: 1, innerDim: 64, action: { kind: 'continuous', low: [-0.1, -0.1], high: [0.1, 0.1] } }));
    const params = net.namedVariables();
    const adam = new Adam({ lr: 1e-3 }, params);
    const rng = new Rng('dt-learn');
    const batch = () => {
      const states = Array.from({ length: B }, () => Array.from({ length: K }, () => [rng.uniform(-1, 1), rng.uniform(-1, 1)]));
      const actions = states.map((row) => row.map((s) => s.map((x, i) => Math.max(-0.1, Math.min(0.1, goal[i] - x)))));
      const input: DecisionTransformerInput = {
        returnsToGo: tf.tensor2d(states.map((row) => row.map(() => rng.uniform(-2, 0)))),
        states: tf.tensor3d(states),
        actions: tf.tensor3d(actions),
        timesteps: tf.tensor2d(states.map(() => Array.from({ length: K }, (_, t) => t)), undefined, 'int32'),
      };
      return { input, target: tf.tensor3d(actions) };
    };
    const mseOf = (input: DecisionTransformerInput, target: tf.Tensor3D, training: boolean, step: number) =>
      tf.mean(tf.square(tf.sub(net.forward(input, training, `learn/${step}`), target))) as tf.Scalar;
    const evaluate = () => {
      const { input, target } = batch();
      const mse = tf.tidy(() => mseOf(input, target, false, 0).dataSync()[0]);
      disposeInput(input);
      target.dispose();
      return mse;
    };
    const before = evaluate();
    for (let step = 0; step < 300; step++) {
      const { input, target } = batch();
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => mseOf(input, target, true, step), net.variables());
        const byName: Record<string, tf.Tensor> = {};
        for (const [name, v] of Object.entries(params)) byName[name] = grads[v.name];
        adam.apply(byName);
      });
      disposeInput(input);
      target.dispose();
    }
    const after = evaluate();
    expect(after).toBeLessThan(before / 5);
    adam.dispose();
    net.dispose();
  });

  test('FLOP estimate: the matrix products of one pass, counted by hand for a small network', () => {
    const shape = { stateDim: 3, actionDim: 2, embedDim: 8, innerDim: 16, numLayers: 1, contextDim: 0, stateEmbedDim: 16 };
    // One sequence of K = 2 steps, no prompt: N = 6 tokens.
    const embed = 2 * 2 * (1 * 8 + 3 * 8 + 2 * 8);
    const dense = 2 * 6 * (8 * 24 + 8 * 8 + 8 * 16 + 16 * 8);
    const attention = 2 * 2 * 6 * 6 * 8;
    const head = 2 * 2 * 8 * 2;
    const f = decisionTransformerFlops(shape, 1, 2, 0);
    expect(f.forward).toBe(embed + dense + attention + head);
    expect(f.backward).toBe(embed + 2 * dense + 2 * attention + 2 * head);
  });
});

/*
 * The forward pass recomputed in plain JavaScript (float64, nested arrays, no tfjs), straight from
 * the maths: the Decision Transformer (Chen et al. 2021) over GPT-2 without position embeddings
 * (HuggingFace's GPT2Model as the DT code copies it), with Prompt-DT's prompt and Meta-DT's z.
 * Only the weight layout is taken from the module: a Linear's w is [in, out] (y = x·W + b), and
 * the fused Q/K/V weight's output columns are [q | k | v], each cut into heads of d_head
 * consecutive columns (GPT-2's c_attn followed by split_heads).
 */
type Vec = number[];
type Mat = number[][];
type Weights = Record<string, Vec | Mat>;

/** A·B for A [n, m] and B [m, p]. */
function matmul(a: Mat, b: Mat): Mat {
  return a.map((row) => b[0].map((_, j) => row.reduce((sum, x, i) => sum + x * b[i][j], 0)));
}

/** x·W + b for one row x. */
function linear(x: Vec, w: Mat, b: Vec): Vec {
  return matmul([x], w)[0].map((y, j) => y + b[j]);
}

function addVec(a: Vec, b: Vec): Vec {
  return a.map((x, i) => x + b[i]);
}

function dot(a: Vec, b: Vec): number {
  return a.reduce((sum, x, i) => sum + x * b[i], 0);
}

/** PyTorch's nn.LayerNorm over the features: biased variance (÷n), ε = 1e-5 inside the root, then γ·x̂ + β. */
function layerNorm(x: Vec, gamma: Vec, beta: Vec): Vec {
  const mean = x.reduce((sum, v) => sum + v, 0) / x.length;
  const variance = x.reduce((sum, v) => sum + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * gamma[i] + beta[i]);
}

function softmax(x: Vec): Vec {
  const max = Math.max(...x);
  const e = x.map((v) => Math.exp(v - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

const relu = (x: number): number => Math.max(0, x);

/**
 * GPT-2's GELU, the tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))): OpenAI's GPT-2 code,
 * HuggingFace's `gelu_new` (GPT2Config's default) and PyTorch's GELU(approximate='tanh'). PyTorch's
 * plain nn.GELU() is the exact x·Φ(x) (erf), up to ~5e-4 away. The module documents the tanh form.
 */
const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Predictions [B][K] (null at padded steps, whose outputs are unspecified) of the network with weights `w`. */
function referenceForward(spec: DecisionTransformerSpec, w: Weights, seq: Seq, prompt?: Seq): Array<Array<Vec | null>> {
  const d = spec.embedDim;
  const heads = spec.numHeads;
  const dh = d / heads;
  const vec = (name: string) => w[name] as Vec;
  const lin = (x: Vec, layer: string) => linear(x, w[`${layer}/w`] as Mat, vec(`${layer}/b`));
  const ln = (x: Vec, name: string) => layerNorm(x, vec(`${name}/gamma`), vec(`${name}/beta`));
  const activation = spec.activation === 'gelu' ? geluTanh : relu;

  /** The step's tokens R̂, s, a, each its own modality's embedding plus the step's timestep embedding. */
  const stepTokens = (prefix: string, rtg: number, state: Vec, action: Vec, timestep: number, z?: Vec): Vec[] => {
    const time = (w[`${prefix}embed/timestep`] as Mat)[timestep];
    // With z: the state token is Linear(Linear(s → stateEmbedDim) ⊕ z → d).
    const stateIn = z ? [...lin(state, `${prefix}embed/stateEncoder`), ...z] : state;
    return [lin([rtg], `${prefix}embed/return`), lin(stateIn, `${prefix}embed/state`), lin(action, `${prefix}embed/action`)].map((e) => addVec(e, time));
  };

  return seq.states.map((_, b) => {
    // Prompt tokens first (one prompt row per sequence, or one shared), then the sequence's.
    const tokens: Vec[] = [];
    const real: boolean[] = [];
    if (prompt) {
      const p = prompt.states.length === 1 ? 0 : b;
      prompt.states[p].forEach((s, t) => {
        // The prompt has its own embeddings and skips the embedding LayerNorm.
        tokens.push(...stepTokens('prompt/', prompt.rtg[p][t], s, prompt.actions[p][t], prompt.timesteps[p][t]));
        real.push(...Array<boolean>(3).fill((prompt.mask?.[p][t] ?? 1) === 1));
      });
    }
    const first = tokens.length;
    seq.states[b].forEach((s, t) => {
      const embedded = stepTokens('', seq.rtg[b][t], s, seq.actions[b][t], seq.timesteps[b][t], seq.contexts?.[b][t]);
      tokens.push(...embedded.map((e) => ln(e, 'embedLn')));
      real.push(...Array<boolean>(3).fill((seq.mask?.[b][t] ?? 1) === 1));
    });

    // Pre-LN GPT-2 blocks: x += Attn(LN1(x)); x += MLP(LN2(x)).
    let x = tokens;
    for (let l = 0; l < spec.numLayers; l++) {
      const block = `block${l}`;
      const qkv = x.map((xi) => lin(ln(xi, `${block}/ln1`), `${block}/qkv`));
      // part 0/1/2 = q/k/v, head j = its j-th run of d_head columns.
      const part = (row: Vec, which: number, j: number) => row.slice(which * d + j * dh, which * d + (j + 1) * dh);
      const attention = x.map((_, i) => {
        // Causal and padding masks: query i sees the real keys m ≤ i.
        const visible = x.map((_, m) => m).filter((m) => m <= i && real[m]);
        const merged: Vec = [];
        for (let j = 0; j < heads; j++) {
          const q = part(qkv[i], 0, j);
          const p = softmax(visible.map((m) => dot(q, part(qkv[m], 1, j)) / Math.sqrt(dh)));
          const head = Array<number>(dh).fill(0);
          visible.forEach((m, n) => part(qkv[m], 2, j).forEach((v, c) => (head[c] += p[n] * v)));
          merged.push(...head);
        }
        return lin(merged, `${block}/attnOut`);
      });
      x = x.map((xi, i) => addVec(xi, attention[i]));
      x = x.map((xi) => addVec(xi, lin(lin(ln(xi, `${block}/ln2`), `${block}/fc`).map(activation), `${block}/mlpOut`)));
    }

    // The head reads the final-LayerNormed s_t token of the sequence (not the prompt).
    return seq.states[b].map((_, t) => {
      const i = first + 3 * t + 1;
      if (!real[i]) return null;
      const y = lin(ln(x[i], 'finalLn'), 'head');
      if (spec.action.kind === 'discrete') return y;
      const { low, high } = spec.action;
      return y.map((v, j) => low[j] + ((high[j] - low[j]) * (Math.tanh(v) + 1)) / 2);
    });
  });
}

/**
 * Overwrites every weight with seeded uniforms and returns them as nested arrays (as the network
 * holds them, float32). Not the real initialisation: zero biases, unit γ and N(0, 0.02) weights
 * would hide wrong biases, γ/β and attention scaling. The embedding layers are small (±0.1), so
 * the variance the embedding LayerNorm divides by is ~1e-2 and its ε visibly matters.
 */
function randomWeights(net: DecisionTransformer, seed: string): Weights {
  const rng = new Rng(seed);
  const weights: Weights = {};
  for (const [name, v] of Object.entries(net.namedVariables())) {
    const [centre, spread] = name.endsWith('/gamma') ? [1, 0.5] : name.includes('embed/') ? [0, 0.1] : [0, 0.7];
    const values = Array.from({ length: v.size }, () => centre + rng.uniform(-spread, spread));
    tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
    weights[name] = v.arraySync() as Vec | Mat;
  }
  return weights;
}

/** B rows of `steps` steps of float32-exact inputs; discrete actions as one-hot rows. */
function referenceSeq(rng: Rng, spec: DecisionTransformerSpec, B: number, steps: number, firstStep: number[], withContext: boolean): Seq {
  const f = () => Math.fround(rng.uniform(-1.5, 1.5));
  const action = spec.action;
  const oneHot = (n: number) => {
    const hot = rng.int(n);
    return Array.from({ length: n }, (_, a) => (a === hot ? 1 : 0));
  };
  const grid = <T>(make: () => T) => Array.from({ length: B }, () => Array.from({ length: steps }, make));
  return {
    rtg: grid(f),
    states: grid(() => Array.from({ length: spec.stateDim }, f)),
    actions: grid(() => (action.kind === 'continuous' ? action.low.map(f) : oneHot(action.numActions))),
    timesteps: firstStep.map((t0) => Array.from({ length: steps }, (_, t) => t0 + t)),
    contexts: withContext ? grid(() => Array.from({ length: spec.contextDim! }, f)) : undefined,
  };
}

// float32 against float64 agrees to ~5e-7. Each of these slips in the module moves some
// prediction by more than 1e-4 and fails a test below (checked by editing the compiled module):
// 1/d_head or no scaling, unbiased variance, ε 1e-6 or 1e-4, erf GELU (≈1.2e-4), post-LN or a
// residual from the normalised x, the timestep embedding on the state token only, another token
// order, z before enc(s) or ignored, a LayerNorm on the prompt or none on the sequence, the head
// on the action token, no final LN, tanh scaled to twice the range, no padding or causal mask,
// heads merged without the transpose, no output-projection bias.
describe('DecisionTransformer against a plain-JS recomputation of its maths', () => {
  const tiny = (over: Partial<DecisionTransformerSpec> = {}): DecisionTransformerSpec => ({
    stateDim: 2,
    action: { kind: 'continuous', low: [-1, 0.5], high: [3, 1] },
    embedDim: 4,
    numLayers: 1,
    numHeads: 2,
    innerDim: 8,
    maxEpisodeLength: 12,
    contextDim: 2,
    stateEmbedDim: 3,
    prompt: true,
    seed: 'dt-reference',
    role: 'dt',
    ...over,
  });
  const B = 2;
  const K = 3;

  /** Runs forward(…, training = false) and the JS recomputation; returns the largest difference at the real steps. */
  function compare(spec: DecisionTransformerSpec, seq: Seq, prompt: Seq): number {
    const net = new DecisionTransformer(spec);
    const weights = randomWeights(net, `${spec.seed}/${spec.activation ?? 'relu'}/${spec.action.kind}`);
    const got = predict(net, seq, prompt);
    net.dispose();
    const want = referenceForward(spec, weights, seq, prompt);
    const out = spec.action.kind === 'continuous' ? spec.action.low.length : spec.action.numActions;
    let maxDiff = 0;
    let compared = 0;
    want.forEach((row, b) =>
      row.forEach((y, t) => {
        if (!y) return;
        const g = at(got, K, out, b, t);
        y.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(g[j] - v))));
        compared++;
      }),
    );
    expect(compared).toBe(B * K - 1);
    return maxDiff;
  }

  /** Row 1 left-padded by one step (junk inputs there); z per step; prompt rows given by the caller. */
  function mainSeq(rng: Rng, spec: DecisionTransformerSpec): Seq {
    const seq = referenceSeq(rng, spec, B, K, [5, 0], (spec.contextDim ?? 0) > 0);
    seq.mask = [[1, 1, 1], [0, 1, 1]];
    seq.rtg[1][0] = 40;
    seq.states[1][0] = seq.states[1][0].map(() => -30);
    seq.timesteps[1] = [11, 0, 1];
    return seq;
  }

  for (const activation of ['relu', 'gelu'] as const) {
    test(`continuous head, ${activation}: z, a 2-step prompt per row (one padded step), a left-padded row, 2 heads`, () => {
      const spec = tiny({ activation });
      const rng = new Rng(`dt-reference/${activation}`);
      const seq = mainSeq(rng, spec);
      const prompt = referenceSeq(rng, spec, B, 2, [2, 7], false);
      prompt.mask = [[0, 1], [1, 1]];
      expect(compare(spec, seq, prompt)).toBeLessThan(1e-5);
    });
  }

  test('discrete head (logits), no z, 2 layers, one prompt shared by both rows', () => {
    const spec = tiny({ action: { kind: 'discrete', numActions: 3 }, contextDim: 0, numLayers: 2 });
    const rng = new Rng('dt-reference/discrete');
    const seq = mainSeq(rng, spec);
    const prompt = referenceSeq(rng, spec, 1, 2, [3], false);
    expect(compare(spec, seq, prompt)).toBeLessThan(1e-5);
  });
});
