import * as tf from '@tensorflow/tfjs';
import { Rng, deriveSeed, seedToInt } from '../../runtime/core/rng';
import { torchUniform } from './init';
import { type Linear, Module, createVariable, linearVariables, uniqueScope } from './module';

/*
 * The decision transformer of Meta-DT (Wang et al. 2024; Chen et al. 2021 before it): a causal
 * GPT over the interleaved tokens (R̂_1, s_1, a_1, …, R̂_K, s_K, a_K) that predicts a_t from the
 * output at the s_t token. Structured as NJU-RL/Meta-DT's `MetaDecisionTransformer` over
 * its GPT-2 copy without position embeddings:
 *
 *  - Each modality has its own linear embedding; a learned timestep embedding (one row per
 *    episode step, its only notion of position) is added to all three tokens of a step; the
 *    embedded sequence is layer-normalised.
 *  - With a task representation (`contextDim` > 0) the state token is
 *    Linear(Linear(s → stateEmbedDim) ⊕ z_t → d): z enters every state token.
 *  - An optional prompt of k steps (Prompt-DT, Meta-DT's few-shot segment) has its own embedding
 *    layers (`prompt/…`) and is prepended, so every main token sees all of it. As in the
 *    reference, the prompt's tokens skip the embedding LayerNorm.
 *  - Then `numLayers` pre-LN blocks (LN → causal multi-head self-attention → residual;
 *    LN → d → inner → d MLP → residual) and a final LN.
 *  - Padding is on the left (the DT convention): a 0/1 mask per step, and padded tokens are never
 *    attended to.
 *
 * Initialisation follows where each layer lives in the reference: the DT's own layers
 * (embeddings, action head) as PyTorch's `nn.Linear` and `nn.Embedding` (uniform ±1/√fan_in;
 * N(0, 1)), the transformer's as GPT-2's (N(0, 0.02) weights, zero biases, unit LayerNorms).
 *
 * Dropout (GPT-2's three kinds: on the embedded sequence, on attention probabilities, on each
 * residual branch) runs only in training and draws its masks from a seed the caller derives
 * per step, so a training step is a function of (weights, batch, seed).
 */

export type DecisionTransformerAction =
  /** A Box: predictions are tanh-squashed onto [low, high] per dimension. */
  | { kind: 'continuous'; low: readonly number[]; high: readonly number[] }
  /** Discrete: predictions are logits; action inputs are one-hot rows. */
  | { kind: 'discrete'; numActions: number };

export interface DecisionTransformerSpec {
  stateDim: number;
  action: DecisionTransformerAction;
  /** Token width d. */
  embedDim: number;
  numLayers: number;
  /** Attention heads; must divide embedDim. */
  numHeads: number;
  /** MLP hidden width; GPT-2's 4·d unless given. */
  innerDim?: number;
  /** MLP activation: Meta-DT configures ReLU, GPT-2's own is GELU (tanh approximation). */
  activation?: 'relu' | 'gelu';
  /** Dropout rate of every dropout site while training; 0.1 unless given. */
  dropout?: number;
  /** Rows of the timestep embeddings: timesteps must lie in [0, maxEpisodeLength). */
  maxEpisodeLength: number;
  /** Width of the task representation z fed with every step; 0 (default) = none (a plain DT). */
  contextDim?: number;
  /** With a context: the state's own encoding width before z is appended (16 in Meta-DT). */
  stateEmbedDim?: number;
  /** Builds the prompt embedding layers, so `input.prompt` may be given. */
  prompt?: boolean;
  /** Initial weights depend on (seed, role) only, so equal seeds give equal networks. */
  seed: string;
  role: string;
  /** `zeros` skips the random initialisation, for a network whose weights are loaded next. */
  init?: 'torch' | 'zeros';
}

/** k prompt steps per row; P rows, either one per sequence or 1 (shared by every sequence). */
export interface DecisionTransformerPrompt {
  /** [P, k] returns-to-go (already divided by the return scale). */
  returnsToGo: tf.Tensor2D;
  /** [P, k, stateDim]. */
  states: tf.Tensor3D;
  /** [P, k, actDim] (continuous) or one-hot [P, k, numActions] (discrete). */
  actions: tf.Tensor3D;
  /** [P, k] int32 episode steps. */
  timesteps: tf.Tensor2D;
  /** [P, k], 1 for a real step and 0 for padding; all real unless given. */
  mask?: tf.Tensor2D;
}

/** B sequences of K steps, left-padded when shorter. */
export interface DecisionTransformerInput {
  /** [B, K] returns-to-go (already divided by the return scale). */
  returnsToGo: tf.Tensor2D;
  /** [B, K, stateDim]. */
  states: tf.Tensor3D;
  /** [B, K, actDim] or one-hot [B, K, numActions]; the step being predicted may hold zeros (causality hides it). */
  actions: tf.Tensor3D;
  /** [B, K] int32 episode steps. */
  timesteps: tf.Tensor2D;
  /** [B, K], 1 for a real step and 0 for padding; all real unless given. */
  mask?: tf.Tensor2D;
  /** [B, K, contextDim] z per step; required exactly when the spec has a context. */
  contexts?: tf.Tensor3D;
  prompt?: DecisionTransformerPrompt;
}

/** The DT's own embedding layers of one sequence kind (main or prompt). */
interface Embeddings {
  timestep: tf.Variable;
  ret: Linear;
  /** State → stateEmbedDim when z is injected (main sequence only). */
  stateEncoder?: Linear;
  state: Linear;
  action: Linear;
}

interface LayerNorm {
  gamma: tf.Variable;
  beta: tf.Variable;
}

interface Block {
  ln1: LayerNorm;
  qkv: Linear;
  attnOut: Linear;
  ln2: LayerNorm;
  fc: Linear;
  mlpOut: Linear;
}

/** PyTorch's and GPT-2's LayerNorm epsilon. */
const LN_EPSILON = 1e-5;
/** GPT-2's initializer_range. */
const GPT2_INIT_STD = 0.02;
/**
 * Added to the attention score of a key a query must not see. exp(−1e9 + s − max) is exactly 0
 * in float32, so hidden tokens contribute exactly nothing (the causality tests rely on
 * bit-identity); the causal and padding parts add, so a padded query that sees nothing
 * still prefers earlier (padded) keys over future ones and never divides by zero.
 */
const HIDDEN = -1e9;

export class DecisionTransformer extends Module {
  readonly spec: DecisionTransformerSpec;
  /** Output width: the action dimension (continuous) or the number of actions (discrete). */
  readonly actionDim: number;
  readonly innerDim: number;
  readonly dropout: number;
  readonly contextDim: number;
  private readonly main: Embeddings;
  private readonly promptEmbeddings?: Embeddings;
  private readonly embedLn: LayerNorm;
  private readonly blocks: Block[] = [];
  private readonly finalLn: LayerNorm;
  private readonly head: Linear;
  /** Continuous actions: tanh output ↦ offset + scale·tanh, per dimension ([actDim]). */
  private readonly actionScale?: Float32Array;
  private readonly actionOffset?: Float32Array;
  /**
   * The causal part of the attention bias per token count N (N×N values), computed once: it
   * depends on N only, and building it from tensors cost kernel calls on every step. Kept as
   * plain values, uploaded per call (a copy, no kernel), so the network holds no tensors besides
   * its variables.
   */
  private readonly causalBiases = new Map<number, Float32Array>();

  constructor(spec: DecisionTransformerSpec) {
    super();
    this.spec = spec;
    const { stateDim: S, embedDim: d, numLayers, numHeads, maxEpisodeLength, seed, role } = spec;
    const who = `DecisionTransformer '${role}'`;
    const positiveInt = (v: number, name: string) => {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${who}: ${name} must be a positive integer, got ${v}`);
    };
    positiveInt(S, 'stateDim');
    positiveInt(d, 'embedDim');
    positiveInt(numLayers, 'numLayers');
    positiveInt(numHeads, 'numHeads');
    positiveInt(maxEpisodeLength, 'maxEpisodeLength');
    if (d % numHeads !== 0) throw new Error(`${who}: embedDim ${d} does not split over ${numHeads} heads`);
    this.innerDim = spec.innerDim ?? 4 * d;
    positiveInt(this.innerDim, 'innerDim');
    this.dropout = spec.dropout ?? 0.1;
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`${who}: dropout must be in [0, 1), got ${spec.dropout}`);
    this.contextDim = spec.contextDim ?? 0;
    if (!Number.isInteger(this.contextDim) || this.contextDim < 0) throw new Error(`${who}: contextDim must be a non-negative integer, got ${spec.contextDim}`);
    const stateEmbedDim = spec.stateEmbedDim ?? 16;
    if (this.contextDim > 0) positiveInt(stateEmbedDim, 'stateEmbedDim');

    const action = spec.action;
    if (action.kind === 'continuous') {
      const D = action.low.length;
      positiveInt(D, 'the action dimension (action.low.length)');
      if (action.high.length !== D) throw new Error(`${who}: action.low has ${D} entries, action.high ${action.high.length}`);
      this.actionScale = new Float32Array(D);
      this.actionOffset = new Float32Array(D);
      for (let j = 0; j < D; j++) {
        const [lo, hi] = [action.low[j], action.high[j]];
        if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi)) throw new Error(`${who}: action bounds must be finite with low ≤ high, got [${lo}, ${hi}] at ${j}`);
        this.actionScale[j] = (hi - lo) / 2;
        this.actionOffset[j] = (hi + lo) / 2;
      }
      this.actionDim = D;
    } else {
      positiveInt(action.numActions, 'action.numActions');
      this.actionDim = action.numActions;
    }
    const A = this.actionDim;

    const scope = uniqueScope('decision-transformer', role);
    const zeros = spec.init === 'zeros';
    const seedOf = (name: string) => seedToInt(deriveSeed(seed, role, name));
    const variable = (initial: () => tf.Tensor, shape: number[], name: string): tf.Variable =>
      createVariable(zeros ? tf.zeros(shape) : initial(), scope, name);
    // The DT's own layers: PyTorch's nn.Linear and nn.Embedding defaults.
    const torchLinear = (name: string, inDim: number, outDim: number): Linear => ({
      w: variable(() => torchUniform([inDim, outDim], inDim, seedOf(`${name}/w`)), [inDim, outDim], `${name}/w`),
      b: variable(() => torchUniform([outDim], inDim, seedOf(`${name}/b`)), [outDim], `${name}/b`),
    });
    const embeddingTable = (name: string) =>
      variable(() => tf.randomNormal([maxEpisodeLength, d], 0, 1, 'float32', seedOf(name)), [maxEpisodeLength, d], name);
    // The transformer's layers: GPT-2's initialisation (weights N(0, 0.02), zero biases).
    const gptLinear = (name: string, inDim: number, outDim: number): Linear => ({
      w: variable(() => tf.randomNormal([inDim, outDim], 0, GPT2_INIT_STD, 'float32', seedOf(`${name}/w`)), [inDim, outDim], `${name}/w`),
      b: createVariable(tf.zeros([outDim]), scope, `${name}/b`),
    });
    const layerNorm = (name: string): LayerNorm => ({
      gamma: variable(() => tf.ones([d]), [d], `${name}/gamma`),
      beta: createVariable(tf.zeros([d]), scope, `${name}/beta`),
    });

    const withContext = this.contextDim > 0;
    this.main = {
      timestep: embeddingTable('embed/timestep'),
      ret: torchLinear('embed/return', 1, d),
      stateEncoder: withContext ? torchLinear('embed/stateEncoder', S, stateEmbedDim) : undefined,
      state: withContext ? torchLinear('embed/state', stateEmbedDim + this.contextDim, d) : torchLinear('embed/state', S, d),
      action: torchLinear('embed/action', A, d),
    };
    if (spec.prompt) {
      this.promptEmbeddings = {
        timestep: embeddingTable('prompt/embed/timestep'),
        ret: torchLinear('prompt/embed/return', 1, d),
        state: torchLinear('prompt/embed/state', S, d),
        action: torchLinear('prompt/embed/action', A, d),
      };
    }
    this.embedLn = layerNorm('embedLn');
    for (let i = 0; i < numLayers; i++) {
      this.blocks.push({
        ln1: layerNorm(`block${i}/ln1`),
        qkv: gptLinear(`block${i}/qkv`, d, 3 * d),
        attnOut: gptLinear(`block${i}/attnOut`, d, d),
        ln2: layerNorm(`block${i}/ln2`),
        fc: gptLinear(`block${i}/fc`, d, this.innerDim),
        mlpOut: gptLinear(`block${i}/mlpOut`, this.innerDim, d),
      });
    }
    this.finalLn = layerNorm('finalLn');
    this.head = torchLinear('head', d, A);
  }

  /**
   * Action predictions [B, K, actionDim] at every step: squashed actions within the Box bounds,
   * or logits. Positions of padded steps hold garbage the loss must mask. `training` turns
   * dropout on, with masks drawn from `dropoutSeed` (e.g. `deriveSeed(seed, 'dt', step)`), which
   * it then requires. Differentiable; the caller tidies.
   */
  forward(input: DecisionTransformerInput, training = false, dropoutSeed?: string): tf.Tensor3D {
    const drop = this.dropoutFn(training, dropoutSeed);
    const [B, K] = this.checkInput(input);
    const { embedDim: d, numHeads: h } = this.spec;
    const k = input.prompt ? input.prompt.states.shape[1] : 0;
    const N = 3 * (k + K);

    let tokens = tf.reshape(this.embedLayerNorm(this.embed(input, this.main, B, K)), [B, 3 * K, d]) as tf.Tensor3D;
    let keyValid = input.mask && this.perToken(input.mask);
    if (input.prompt) {
      const p = input.prompt;
      const P = p.states.shape[0];
      const promptTokens = tf.reshape(this.embed(p, this.promptEmbeddings!, P, k), [P, 3 * k, d]) as tf.Tensor3D;
      const promptValid = p.mask && this.perToken(p.mask);
      tokens = tf.concat([P === B ? promptTokens : tf.tile(promptTokens, [B, 1, 1]), tokens], 1);
      if (keyValid || promptValid) {
        const orAllReal = (m: tf.Tensor2D | undefined, rows: number, cols: number) => m ?? tf.ones([rows, cols]);
        const pv = orAllReal(promptValid, P, 3 * k);
        keyValid = tf.concat([P === B ? pv : tf.tile(pv, [B, 1]), orAllReal(keyValid, B, 3 * K)], 1);
      }
    }
    const bias = this.attentionBias(N, keyValid);

    let x = tf.reshape(drop(tokens, 'embed'), [B * N, d]) as tf.Tensor2D;
    const relu = (this.spec.activation ?? 'relu') === 'relu';
    const attentionBias = tf.reshape(bias, [-1, N, N]) as tf.Tensor3D;
    this.blocks.forEach((block, i) => {
      const masks = {
        attention: drop.mask([B, h, N, N], `block${i}/attn`),
        attentionOut: drop.mask([B * N, d], `block${i}/attnOut`),
        mlpOut: drop.mask([B * N, d], `block${i}/mlpOut`),
      };
      x = transformerBlock(x, block, { B, N, h, relu }, attentionBias, masks);
    });

    // Only the main sequence's state tokens feed the head (LayerNorm is per token, so normalising
    // just them is the same as normalising everything first).
    const stateTokens = tf.slice(tf.reshape(x, [B, k + K, 3, d]), [0, k, 1, 0], [B, K, 1, d]);
    const out = dense(this.layerNorm(tf.reshape(stateTokens, [B * K, d]) as tf.Tensor2D, this.finalLn), this.head);
    const squashed = this.actionScale ? tf.add(tf.mul(tf.tanh(out), this.actionScale), this.actionOffset!) : out;
    return tf.reshape(squashed, [B, K, this.actionDim]);
  }

  /**
   * For acting, one row per env: the prediction at each row's last real step (the last 1 of its
   * mask; the last step when no mask is given), [B, actionDim], without dropout. Continuous:
   * the action; discrete: logits, for the caller to take the argmax of or sample.
   */
  predictLastAction(input: DecisionTransformerInput): tf.Tensor2D {
    return tf.tidy(() => {
      const predictions = this.forward(input, false);
      const [B, K] = predictions.shape;
      const last = input.mask
        ? tf.sub(K - 1, tf.argMax(tf.reverse(input.mask, 1), 1))
        : tf.fill([B], K - 1, 'int32');
      const pick = tf.expandDims(tf.oneHot(tf.cast(last, 'int32') as tf.Tensor1D, K), 2);
      return tf.sum(tf.mul(predictions, pick), 1) as tf.Tensor2D;
    });
  }

  /** Number of trained parameters. */
  parameterCount(): number {
    return this.variables().reduce((n, v) => n + v.size, 0);
  }

  namedVariables(): Record<string, tf.Variable> {
    const named: Record<string, tf.Variable> = {};
    const addEmbeddings = (prefix: string, e: Embeddings) => {
      named[`${prefix}embed/timestep`] = e.timestep;
      linearVariables({ [`${prefix}embed/return`]: e.ret, [`${prefix}embed/state`]: e.state, [`${prefix}embed/action`]: e.action }, named);
      if (e.stateEncoder) linearVariables({ [`${prefix}embed/stateEncoder`]: e.stateEncoder }, named);
    };
    const addLn = (name: string, ln: LayerNorm) => {
      named[`${name}/gamma`] = ln.gamma;
      named[`${name}/beta`] = ln.beta;
    };
    addEmbeddings('', this.main);
    if (this.promptEmbeddings) addEmbeddings('prompt/', this.promptEmbeddings);
    addLn('embedLn', this.embedLn);
    this.blocks.forEach((b, i) => {
      addLn(`block${i}/ln1`, b.ln1);
      linearVariables({ [`block${i}/qkv`]: b.qkv, [`block${i}/attnOut`]: b.attnOut, [`block${i}/fc`]: b.fc, [`block${i}/mlpOut`]: b.mlpOut }, named);
      addLn(`block${i}/ln2`, b.ln2);
    });
    addLn('finalLn', this.finalLn);
    linearVariables({ head: this.head }, named);
    return named;
  }

  /** The three tokens of each step, interleaved, with the timestep embedding added: [rows·steps, 3, d]. */
  private embed(seq: DecisionTransformerPrompt | DecisionTransformerInput, e: Embeddings, rows: number, steps: number): tf.Tensor3D {
    const { stateDim: S } = this.spec;
    const n = rows * steps;
    let stateIn = tf.reshape(seq.states, [n, S]) as tf.Tensor2D;
    if (e.stateEncoder) {
      const z = tf.reshape((seq as DecisionTransformerInput).contexts!, [n, this.contextDim]) as tf.Tensor2D;
      stateIn = tf.concat([dense(stateIn, e.stateEncoder), z], 1);
    }
    const returns = tf.reshape(seq.returnsToGo, [n, 1]) as tf.Tensor2D;
    const actions = tf.reshape(seq.actions, [n, this.actionDim]) as tf.Tensor2D;
    const timesteps = tf.reshape(tf.cast(seq.timesteps, 'int32'), [n]) as tf.Tensor1D;
    // Returns-to-go and actions are data; the state features are data too unless a state encoder made them.
    return embedTokens(returns, stateIn, actions, timesteps, e, e.stateEncoder !== undefined);
  }

  private embedLayerNorm(tokens: tf.Tensor3D): tf.Tensor2D {
    const d = this.spec.embedDim;
    return this.layerNorm(tf.reshape(tokens, [-1, d]) as tf.Tensor2D, this.embedLn);
  }

  /** A step mask [R, steps] repeated for the step's three tokens: [R, 3·steps]. */
  private perToken(mask: tf.Tensor2D): tf.Tensor2D {
    const [R, steps] = mask.shape;
    return tf.reshape(tf.tile(tf.reshape(tf.cast(mask, 'float32'), [R, steps, 1]), [1, 1, 3]), [R, 3 * steps]);
  }

  /** Additive attention bias: [1 or B, 1, N, N], HIDDEN where a query may not see a key. */
  private attentionBias(N: number, keyValid: tf.Tensor2D | undefined): tf.Tensor4D {
    let values = this.causalBiases.get(N);
    if (!values) {
      // HIDDEN exactly where the key lies in the query's future.
      values = new Float32Array(N * N);
      for (let q = 0; q < N; q++) values.fill(HIDDEN, q * N + q + 1, (q + 1) * N);
      this.causalBiases.set(N, values);
    }
    const causal = tf.tensor4d(values, [1, 1, N, N]);
    if (!keyValid) return causal;
    const padding = tf.mul(tf.sub(1, keyValid), HIDDEN);
    return tf.add(causal, tf.reshape(padding, [keyValid.shape[0], 1, 1, N]));
  }

  private layerNorm(x: tf.Tensor2D, ln: LayerNorm): tf.Tensor2D {
    return layerNorm(x, ln.gamma, ln.beta);
  }

  /** Identity unless training with a positive rate; then a mask seeded by (dropoutSeed, site). */
  private dropoutFn(training: boolean, dropoutSeed: string | undefined): Dropout {
    if (!training || this.dropout === 0) return Object.assign(<T extends tf.Tensor>(x: T) => x, { mask: () => undefined });
    if (dropoutSeed === undefined) throw new Error(`DecisionTransformer '${this.spec.role}': training with dropout needs a dropoutSeed (e.g. deriveSeed(seed, 'dt', step))`);
    const keep = 1 - this.dropout;
    // The scaled keep-mask written in one JS loop and applied by one multiply: tf.dropout
    // draws the same kind of seeded uniforms but then needs three more kernels per site
    // (add, floor, div), which cost more than the draws on wasm.
    const mask = (shape: number[], site: string) => {
      const rng = new Rng(deriveSeed(dropoutSeed, site));
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < values.length; i++) values[i] = rng.next() < keep ? 1 / keep : 0;
      return tf.tensor(values, shape);
    };
    return Object.assign(<T extends tf.Tensor>(x: T, site: string) => tf.mul(x, mask(x.shape, site)) as T, { mask });
  }

  /** Checks every input's shape against the spec and each other; returns [B, K]. */
  private checkInput(input: DecisionTransformerInput): [number, number] {
    const who = `DecisionTransformer '${this.spec.role}'`;
    const [B, K] = input.states.shape;
    const expect = (t: tf.Tensor | undefined, shape: number[], name: string) => {
      if (!t) throw new Error(`${who}: ${name} is missing`);
      if (t.shape.length !== shape.length || t.shape.some((n, j) => n !== shape[j])) {
        throw new Error(`${who}: ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      }
    };
    const checkSequence = (seq: DecisionTransformerPrompt | DecisionTransformerInput, rows: number, steps: number, prefix: string) => {
      expect(seq.states, [rows, steps, this.spec.stateDim], `${prefix}states`);
      expect(seq.returnsToGo, [rows, steps], `${prefix}returnsToGo`);
      expect(seq.actions, [rows, steps, this.actionDim], `${prefix}actions`);
      expect(seq.timesteps, [rows, steps], `${prefix}timesteps`);
      if (seq.mask) expect(seq.mask, [rows, steps], `${prefix}mask`);
    };
    checkSequence(input, B, K, '');
    if (this.contextDim > 0) expect(input.contexts, [B, K, this.contextDim], 'contexts');
    else if (input.contexts) throw new Error(`${who}: contexts given, but the network has no contextDim`);
    if (input.prompt) {
      if (!this.promptEmbeddings) throw new Error(`${who}: a prompt was given, but the network was built without prompt layers (spec.prompt)`);
      const [P, k] = input.prompt.states.shape;
      if (P !== B && P !== 1) throw new Error(`${who}: prompt has ${P} rows; expected 1 (shared) or one per sequence (${B})`);
      checkSequence(input.prompt, P, k, 'prompt.');
    }
    return [B, K];
  }
}

/** Applies a site's dropout; `mask` gives the site's scaled keep-mask instead (undefined when dropout is off). */
type Dropout = (<T extends tf.Tensor>(x: T, site: string) => T) & { mask: (shape: number[], site: string) => tf.Tensor | undefined };

/** x·W + b as one kernel (tf.fused.matMul, which has its own gradient). */
function dense(x: tf.Tensor2D, layer: Linear): tf.Tensor2D {
  return tf.fused.matMul({ a: x, b: layer.w as tf.Tensor2D, bias: layer.b }) as tf.Tensor2D;
}

/**
 * The three tokens of each step with its timestep embedding added, [n, 3, d], from returns
 * [n, 1], state features [n, ·], actions [n, A] and timesteps [n] (int32), as one op with a
 * hand-written backward (custom-gradient op: see below). The return embedding Linear(1 → d) is a
 * broadcast multiply: a matMul with inner dimension 1 (and its outer-product gradient) is much
 * slower on wasm.
 */
function embedTokens(returns: tf.Tensor2D, stateIn: tf.Tensor2D, actions: tf.Tensor2D, timesteps: tf.Tensor1D, e: Embeddings, stateNeedsGradient: boolean): tf.Tensor3D {
  const rows = e.timestep.shape[0];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [r, s, a] = args as tf.Tensor2D[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const ret = tf.add(tf.mul(r, e.ret.w), e.ret.b);
    const state = dense(s, e.state);
    const action = dense(a, e.action);
    const time = tf.gather(e.timestep, timesteps);
    // timesteps too: tensors the backward reads must be saved, or the tape's forward scope disposes them.
    save([r, s, a, timesteps]);
    return {
      value: tf.add(tf.stack([ret, state, action], 1), tf.expandDims(time, 1)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [rS, sS, aS, steps] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const [dRet, dState, dAction] = tf.unstack(dy, 1) as tf.Tensor2D[];
        const w = (v: tf.Variable) => v as unknown as tf.Tensor2D;
        // Gradients towards data inputs are never used: zeros of their shape instead of matmuls.
        return [
          tf.zerosLike(rS),
          stateNeedsGradient ? tf.matMul(dState, w(e.state.w), false, true) : tf.zerosLike(sS),
          tf.zerosLike(aS),
          tf.sum(tf.mul(dRet, rS), 0, true),
          tf.sum(dRet, 0),
          tf.matMul(sS, dState, true, false),
          tf.sum(dState, 0),
          tf.matMul(aS, dAction, true, false),
          tf.sum(dAction, 0),
          tf.unsortedSegmentSum(tf.sum(dy, 1), steps, rows),
        ];
      },
    };
  });
  return op(returns, stateIn, actions, e.ret.w, e.ret.b, e.state.w, e.state.b, e.action.w, e.action.b, e.timestep) as tf.Tensor3D;
}

/*
 * The custom-gradient ops below compute what the plain tfjs ops computed before, with a
 * hand-written backward: ops inside a tf.customGrad forward are not recorded on the tape, so
 * each saves both the backward's generic kernel calls and the Identity copy the tape makes of
 * every op's inputs and outputs. Their numbers differ from the taped versions only by rounding.
 */

/** Layer normalisation over the last axis of x [n, d] (biased variance, as PyTorch's). */
function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D | tf.Variable, beta: tf.Tensor1D | tf.Variable): tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const { xHat, rstd } = normalise(xIn as tf.Tensor2D);
    save([xHat, rstd, g]);
    return {
      value: tf.add(tf.mul(xHat, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const grads = normaliseBackward(dy, saved[0], saved[1], saved[2]);
        return [grads.dx, grads.dGamma, grads.dBeta];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor2D;
}

/**
 * GPT-2's GELU, tanh approximation, ½x(1 + tanh(u)) with u = √(2/π)(x + 0.044715x³), is computed
 * as x·σ(2u) (the same function: ½(1 + tanh u) = σ(2u)), which needs neither a pow nor a tanh:
 * both are slow scalar loops on wasm.
 */
const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

interface BlockShape {
  B: number;
  N: number;
  h: number;
  relu: boolean;
}

/** Scaled dropout keep-masks of a block's three sites; undefined where dropout is off. */
interface BlockMasks {
  /** [B, h, N, N], on the attention weights. */
  attention?: tf.Tensor;
  /** [B·N, d], on the attention branch before its residual add. */
  attentionOut?: tf.Tensor;
  /** [B·N, d], on the MLP branch before its residual add. */
  mlpOut?: tf.Tensor;
}

/**
 * One pre-LN block, x [B·N, d] → x + attn(LN₁ x) → … + mlp(LN₂ ·), as a single op with a
 * hand-written backward. Everything inside is untaped, so the block costs its arithmetic kernels
 * only: no Identity copies of each op's inputs for the tape, no generic gradient plumbing
 * (reshapes, broadcast reductions). bias [1 or B, N, N] is added to the attention scores (no
 * gradient flows to it); masks multiply the dropout sites. The numbers are those of the plain
 * ops (fused matmul + bias, softmax, …) up to rounding.
 */
function transformerBlock(x: tf.Tensor2D, block: Block, shape: BlockShape, bias: tf.Tensor3D, masks: BlockMasks): tf.Tensor2D {
  const { B, N, h, relu } = shape;
  const d = x.shape[1];
  const dh = d / h;
  const BH = B * h;
  const scale = 1 / Math.sqrt(dh);
  const { ln1, qkv: qkvLayer, attnOut, ln2, fc, mlpOut } = block;
  const weights2 = (v: tf.Variable) => v as unknown as tf.Tensor2D;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xIn = args[0] as tf.Tensor2D;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const norm1 = normalise(xIn);
    const a1 = tf.add(tf.mul(norm1.xHat, ln1.gamma), ln1.beta) as tf.Tensor2D;
    // Q, K and V in one matmul; heads by reshape (and one transpose when there are several).
    const qkv = tf.fused.matMul({ a: a1, b: weights2(qkvLayer.w), bias: qkvLayer.b });
    let [q, k, v] = [qkv, qkv, qkv] as tf.Tensor[];
    if (h === 1) {
      [q, k, v] = tf.split(qkv, 3, 1).map((t) => tf.reshape(t, [B, N, dh]));
    } else {
      const byHead = tf.transpose(tf.reshape(qkv, [B, N, 3 * h, dh]), [0, 2, 1, 3]);
      [q, k, v] = tf.split(byHead, 3, 1).map((t) => tf.reshape(t, [BH, N, dh]));
    }
    // Scaling q instead of the scores touches N·dh numbers per head instead of N².
    const qScaled = tf.mul(q, scale) as tf.Tensor3D;
    const scores = tf.reshape(tf.matMul(qScaled, k as tf.Tensor3D, false, true), [B, h, N, N]);
    const probs = tf.softmax(tf.add(scores, tf.reshape(bias, [bias.shape[0], 1, N, N])));
    const dropped = tf.reshape(masks.attention ? tf.mul(probs, masks.attention) : probs, [BH, N, N]) as tf.Tensor3D;
    const attended = tf.matMul(dropped, v as tf.Tensor3D);
    const merged = (h === 1 ? tf.reshape(attended, [B * N, d]) : tf.reshape(tf.transpose(tf.reshape(attended, [B, h, N, dh]), [0, 2, 1, 3]), [B * N, d])) as tf.Tensor2D;
    const attnBranch = tf.fused.matMul({ a: merged, b: weights2(attnOut.w), bias: attnOut.b });
    const x1 = tf.add(xIn, masks.attentionOut ? tf.mul(attnBranch, masks.attentionOut) : attnBranch) as tf.Tensor2D;
    const norm2 = normalise(x1);
    const a2 = tf.add(tf.mul(norm2.xHat, ln2.gamma), ln2.beta) as tf.Tensor2D;
    const pre = tf.fused.matMul({ a: a2, b: weights2(fc.w), bias: fc.b });
    let hidden: tf.Tensor2D;
    let activationSlope: tf.Tensor;
    if (relu) {
      hidden = tf.relu(pre) as tf.Tensor2D;
      activationSlope = tf.step(pre);
    } else {
      const squared = tf.square(pre);
      const gate = tf.sigmoid(tf.mul(pre, tf.add(tf.mul(squared, 2 * GELU_C * GELU_A), 2 * GELU_C)));
      hidden = tf.mul(pre, gate) as tf.Tensor2D;
      // d/dx x·σ(2u) = σ + x·σ(1 − σ)·2u′, 2u′ = 2√(2/π)(1 + 3·0.044715x²).
      const du = tf.mul(pre, tf.add(tf.mul(squared, 6 * GELU_C * GELU_A), 2 * GELU_C));
      activationSlope = tf.add(gate, tf.mul(tf.mul(gate, tf.sub(1, gate)), du));
    }
    const mlpBranch = tf.fused.matMul({ a: hidden, b: weights2(mlpOut.w), bias: mlpOut.b });
    const out: tf.Tensor2D = tf.add(x1, masks.mlpOut ? tf.mul(mlpBranch, masks.mlpOut) : mlpBranch);
    const present = (t: tf.Tensor | undefined) => (t ? [t] : []);
    // Everything the backward reads, masks included: the tape's forward scope disposes the rest.
    save([norm1.xHat, norm1.rstd, a1, qScaled, k, v, probs, dropped, merged, norm2.xHat, norm2.rstd, a2, hidden, activationSlope,
      ...present(masks.attention), ...present(masks.attentionOut), ...present(masks.mlpOut)]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xHat1, rstd1, a1s, qs, ks, vs, p, pd, mergedS, xHat2, rstd2, a2s, hiddenS, slope] = saved as tf.Tensor2D[];
        let next = 14;
        const maskAttention = masks.attention && saved[next++];
        const maskAttentionOut = masks.attentionOut && saved[next++];
        const maskMlpOut = masks.mlpOut && saved[next++];
        const dOut = dy as tf.Tensor2D;
        // MLP branch.
        const dMlp = (maskMlpOut ? tf.mul(dOut, maskMlpOut) : dOut) as tf.Tensor2D;
        const dMlpW = tf.matMul(hiddenS, dMlp, true, false);
        const dMlpB = tf.sum(dMlp, 0);
        const dPre = tf.mul(tf.matMul(dMlp, weights2(mlpOut.w), false, true), slope) as tf.Tensor2D;
        const dFcW = tf.matMul(a2s, dPre, true, false);
        const dFcB = tf.sum(dPre, 0);
        const ln2Grads = normaliseBackward(tf.matMul(dPre, weights2(fc.w), false, true), xHat2, rstd2, ln2.gamma);
        const dx1 = tf.add(dOut, ln2Grads.dx) as tf.Tensor2D;
        // Attention branch.
        const dAttn = (maskAttentionOut ? tf.mul(dx1, maskAttentionOut) : dx1) as tf.Tensor2D;
        const dAttnOutW = tf.matMul(mergedS, dAttn, true, false);
        const dAttnOutB = tf.sum(dAttn, 0);
        const dMerged = tf.matMul(dAttn, weights2(attnOut.w), false, true);
        const dAttended = (h === 1 ? tf.reshape(dMerged, [BH, N, dh]) : tf.reshape(tf.transpose(tf.reshape(dMerged, [B, N, h, dh]), [0, 2, 1, 3]), [BH, N, dh])) as tf.Tensor3D;
        const dv = tf.matMul(pd as unknown as tf.Tensor3D, dAttended, true, false);
        let dProbs = tf.reshape(tf.matMul(dAttended, vs as unknown as tf.Tensor3D, false, true), [B, h, N, N]);
        if (maskAttention) dProbs = tf.mul(dProbs, maskAttention);
        // softmax backward: p ⊙ (dp − Σ dp ⊙ p).
        const dScores = tf.reshape(tf.mul(p, tf.sub(dProbs, tf.sum(tf.mul(dProbs, p), -1, true))), [BH, N, N]) as tf.Tensor3D;
        const dq = tf.mul(tf.matMul(dScores, ks as unknown as tf.Tensor3D), scale);
        const dk = tf.matMul(dScores, qs as unknown as tf.Tensor3D, true, false);
        const dQkv = (h === 1
          ? tf.concat([dq, dk, dv].map((t) => tf.reshape(t, [B * N, d])), 1)
          : tf.reshape(tf.transpose(tf.concat([dq, dk, dv].map((t) => tf.reshape(t, [B, h, N, dh])), 1), [0, 2, 1, 3]), [B * N, 3 * d])) as tf.Tensor2D;
        const dQkvW = tf.matMul(a1s, dQkv, true, false);
        const dQkvB = tf.sum(dQkv, 0);
        const ln1Grads = normaliseBackward(tf.matMul(dQkv, weights2(qkvLayer.w), false, true), xHat1, rstd1, ln1.gamma);
        const dx = tf.add(dx1, ln1Grads.dx);
        return [dx, ln1Grads.dGamma, ln1Grads.dBeta, dQkvW, dQkvB, dAttnOutW, dAttnOutB, ln2Grads.dGamma, ln2Grads.dBeta, dFcW, dFcB, dMlpW, dMlpB];
      },
    };
  });
  return op(x, ln1.gamma, ln1.beta, qkvLayer.w, qkvLayer.b, attnOut.w, attnOut.b, ln2.gamma, ln2.beta, fc.w, fc.b, mlpOut.w, mlpOut.b) as tf.Tensor2D;
}

/** (x − mean)·rstd over the last axis of x [n, d] (biased variance, as PyTorch's), and rstd [n, 1]. */
function normalise(x: tf.Tensor2D): { xHat: tf.Tensor2D; rstd: tf.Tensor2D } {
  const centred = tf.sub(x, tf.mean(x, 1, true));
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), 1, true), LN_EPSILON)) as tf.Tensor2D;
  return { xHat: tf.mul(centred, rstd) as tf.Tensor2D, rstd };
}

/** The gradients of y = x̂·γ + β (x̂ = normalise(x)) from dy. */
function normaliseBackward(dy: tf.Tensor, xHat: tf.Tensor, rstd: tf.Tensor, gamma: tf.Tensor): { dx: tf.Tensor2D; dGamma: tf.Tensor; dBeta: tf.Tensor } {
  const dxHat = tf.mul(dy, gamma);
  // d/dx of (x − mean)·rstd, applied to dxHat: rstd·(dxHat − mean(dxHat) − x̂·mean(dxHat·x̂)).
  const dx = tf.mul(tf.sub(tf.sub(dxHat, tf.mean(dxHat, 1, true)), tf.mul(xHat, tf.mean(tf.mul(dxHat, xHat), 1, true))), rstd) as tf.Tensor2D;
  return { dx, dGamma: tf.sum(tf.mul(dy, xHat), 0), dBeta: tf.sum(dy, 0) };
}
