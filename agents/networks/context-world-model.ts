import * as tf from '@tensorflow/tfjs';
import { deriveSeed, seedToInt } from '../../runtime/core/rng';
import { orthogonal, xavierUniform } from './init';
import { type Linear, Module, affine, createVariable, gruUpdate, linearVariables, uniqueScope } from './module';

/*
 * Meta-DT's context-aware world model (Wang et al., NeurIPS 2024; /work/shared/papers.md §2 and
 * papers-2.md §2.2). A context encoder E reads the h transitions before a step and returns a task
 * representation z; decoders that must predict the task's reward R(s, a, s', z) and/or dynamics
 * T(s, a, z) from z force z to carry what distinguishes the tasks. Meta-DT pretrains E with the
 * decoders, freezes it, conditions its decision transformer on z, and uses the decoders'
 * per-step prediction errors to pick the prompt segment (see prompt-selection.ts).
 *
 * Details read in the reference code (NJU-RL/Meta-DT `context/model.py`, `context/dataset.py`,
 * `train_context.py`, `meta_dt/dataset.py::append_error_to_trajectory`):
 *  - E sees (s, a, r) of each previous transition, not s': its `RNNContextEncoder` has no s'
 *    embedding and the trainer never passes one.
 *  - The window of step t holds transitions max(0, t − h) … t − 1 of the same episode, oldest
 *    first, with zero rows before them when t < h; step t itself is excluded, so step 0's
 *    window is all zeros. The GRU also runs over the zero rows (no mask), starting from h = 0.
 *  - Each field goes through its own Linear + ReLU (16 wide), the three are concatenated, a
 *    one-layer GRU (128) runs over the h rows and z = Linear(last GRU output) (16).
 *  - The reward decoder embeds s and s' with one shared Linear + ReLU, a with another, and
 *    maps concat(s, a, s', z) → ReLU → ReLU → 1. The state decoder maps concat(s, a, z) the same
 *    way to s' itself (not a difference). Their hidden width is the GRU's (context_hidden_dim).
 *  - Linear weights start Xavier-uniform with zero biases; the GRU's weights orthogonal, biases 0.
 *  - Loss: MSE of the decoder in use. Adam 1e-3, gradient-norm clip 1.0 and batch 128 are the
 *    trainer's (not this module's) business.
 * Here the field width, GRU width, z size and decoder widths are separate spec fields, so a CPU
 * configuration can be smaller than the reference (META_DT_WORLD_MODEL_SIZES).
 */

/** What the world model's decoders predict: the reward, the next observation, or both. */
export type WorldModelDecoder = 'reward' | 'state';

/** What the context windows' layout depends on. A ContextWorldModelSpec is one. */
export interface ContextWindowShape {
  obsDim: number;
  actDim: number;
  /** h: how many previous transitions a window holds (Meta-DT's `context_horizon`, 4). */
  contextHorizon: number;
}

export interface ContextWorldModelSpec extends ContextWindowShape {
  /** Width of each field's Linear + ReLU embedding (16 in the reference, where it equals the z size). */
  fieldEmbedDim: number;
  /** The encoder GRU's hidden size (128 in the reference). */
  gruHiddenDim: number;
  /** Size of z (the reference's `context_dim`, 16). */
  contextDim: number;
  /** Hidden widths of each decoder's ReLU MLP (the reference's: two of the GRU's width). */
  decoderHiddenDims: readonly number[];
  /**
   * Decoders to build and train: ['reward'] where tasks differ in reward (Point-Robot,
   * Cheetah-Vel), ['state'] where they differ in dynamics (Hopper/Walker-Param), both for ML10.
   */
  decoders: readonly WorldModelDecoder[];
  /** Initial weights depend on (seed, role) only, so equal seeds give equal models. */
  seed: string;
  role: string;
  /** `zeros` skips the random initialisation, for a model whose weights are loaded next. */
  init?: 'xavier' | 'zeros';
}

/** The reference's sizes (`configs/args_*.py`: context_horizon 4, context_dim 16, context_hidden_dim 128). */
export const META_DT_WORLD_MODEL_SIZES = {
  contextHorizon: 4,
  fieldEmbedDim: 16,
  gruHiddenDim: 128,
  contextDim: 16,
  decoderHiddenDims: [128, 128],
} as const;

/** One episode of T steps as flat row-major arrays (a single-agent DatasetEpisode has this layout). */
export interface EpisodeArrays {
  /** [T+1, obsDim]: s_0 … s_T, so step t's next observation is row t + 1. */
  obs: Float32Array;
  /** [T, actDim] */
  actions: Float32Array;
  /** [T] */
  rewards: Float32Array;
}

/** Context windows as flat arrays, `count` of them, each h transitions oldest first. */
export interface FlatContextWindows {
  count: number;
  /** [count, h, obsDim] */
  obs: Float32Array;
  /** [count, h, actDim] */
  actions: Float32Array;
  /** [count, h] */
  rewards: Float32Array;
}

/** Context windows as tensors: what `encode` reads. */
export interface ContextWindows {
  /** [N, h, obsDim] */
  obs: tf.Tensor3D;
  /** [N, h, actDim] */
  actions: tf.Tensor3D;
  /** [N, h] */
  rewards: tf.Tensor2D;
}

/** N transitions with the context window of each: what `loss` trains on. */
export interface WorldModelBatch {
  /** [N, obsDim] */
  obs: tf.Tensor2D;
  /** [N, actDim] */
  actions: tf.Tensor2D;
  /** [N] */
  rewards: tf.Tensor1D;
  /** [N, obsDim] */
  nextObs: tf.Tensor2D;
  windows: ContextWindows;
}

function checkPositiveInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`ContextWorldModel: ${what} must be a positive integer, got ${value}`);
}

/** Steps T of an episode, after checking its arrays agree with `shape`. */
export function episodeSteps(episode: EpisodeArrays, shape: ContextWindowShape): number {
  const T = episode.rewards.length;
  const { obsDim, actDim } = shape;
  if (episode.obs.length !== (T + 1) * obsDim) {
    throw new Error(`episode of ${T} steps needs ${(T + 1) * obsDim} observation numbers ([T+1, ${obsDim}]), got ${episode.obs.length}`);
  }
  if (episode.actions.length !== T * actDim) {
    throw new Error(`episode of ${T} steps needs ${T * actDim} action numbers ([T, ${actDim}]), got ${episode.actions.length}`);
  }
  return T;
}

/** Writes step t's window (transitions t − h … t − 1, zeros before step 0) at window index `slot`. */
function writeWindow(episode: EpisodeArrays, shape: ContextWindowShape, t: number, out: FlatContextWindows, slot: number): void {
  const { obsDim: D, actDim: A, contextHorizon: h } = shape;
  for (let i = 0; i < h; i++) {
    const source = t - h + i;
    if (source < 0) continue; // The arrays start zeroed: this row is padding.
    const row = slot * h + i;
    out.obs.set(episode.obs.subarray(source * D, (source + 1) * D), row * D);
    out.actions.set(episode.actions.subarray(source * A, (source + 1) * A), row * A);
    out.rewards[row] = episode.rewards[source];
  }
}

function emptyWindows(count: number, shape: ContextWindowShape): FlatContextWindows {
  const { obsDim, actDim, contextHorizon: h } = shape;
  return {
    count,
    obs: new Float32Array(count * h * obsDim),
    actions: new Float32Array(count * h * actDim),
    rewards: new Float32Array(count * h),
  };
}

/**
 * The context window of every step t = 0 … T−1 of an episode, as the reference builds them:
 * the h transitions (s, a, r) before t, oldest first, zero rows before the episode's start, step
 * t excluded. The trainer and the prompt selector both use this, so they agree on what z_t saw.
 */
export function buildContextWindows(episode: EpisodeArrays, shape: ContextWindowShape): FlatContextWindows {
  const T = episodeSteps(episode, shape);
  const out = emptyWindows(T, shape);
  for (let t = 0; t < T; t++) writeWindow(episode, shape, t, out, t);
  return out;
}

/**
 * The window of one step t ∈ [0, T]: t = T is the step about to be taken, for acting online
 * with the T transitions seen so far (obs then holds s_0 … s_T).
 */
export function contextWindowAt(episode: EpisodeArrays, shape: ContextWindowShape, t: number): FlatContextWindows {
  const T = episodeSteps(episode, shape);
  if (!Number.isInteger(t) || t < 0 || t > T) throw new Error(`contextWindowAt: step ${t} is outside [0, ${T}]`);
  const out = emptyWindows(1, shape);
  writeWindow(episode, shape, t, out, 0);
  return out;
}

/** Flat windows as the tensors `encode` reads (the caller owns them). */
export function contextWindowTensors(windows: FlatContextWindows, shape: ContextWindowShape): ContextWindows {
  const { count: N, obs, actions, rewards } = windows;
  const { obsDim, actDim, contextHorizon: h } = shape;
  return {
    obs: tf.tensor3d(obs, [N, h, obsDim]),
    actions: tf.tensor3d(actions, [N, h, actDim]),
    rewards: tf.tensor2d(rewards, [N, h]),
  };
}

/** Every step of an episode as one batch, with its windows (the caller owns the tensors). */
export function episodeBatch(episode: EpisodeArrays, shape: ContextWindowShape): WorldModelBatch {
  const T = episodeSteps(episode, shape);
  const D = shape.obsDim;
  return {
    obs: tf.tensor2d(episode.obs.subarray(0, T * D), [T, D]),
    actions: tf.tensor2d(episode.actions, [T, shape.actDim]),
    rewards: tf.tensor1d(episode.rewards),
    nextObs: tf.tensor2d(episode.obs.subarray(D, (T + 1) * D), [T, D]),
    windows: contextWindowTensors(buildContextWindows(episode, shape), shape),
  };
}

/** GRU weights: input→gates [in, 3H], hidden→gates [H, 3H], gate order (reset, update, new). */
interface GruWeights {
  wi: tf.Variable;
  wh: tf.Variable;
  bi: tf.Variable;
  bh: tf.Variable;
}

/** Meta-DT's context encoder with its reward and/or state decoder (see the header of this file). */
export class ContextWorldModel extends Module {
  readonly spec: ContextWorldModelSpec;
  /** Dense layers by stable name: `encoder/obs`, `rewardDecoder/fc0`, …. */
  private readonly layers: Record<string, Linear> = {};
  private readonly gru: GruWeights;
  private readonly decoderDepth: number;

  constructor(spec: ContextWorldModelSpec) {
    super();
    const { obsDim: D, actDim: A, contextHorizon, fieldEmbedDim: F, gruHiddenDim: H, contextDim: Z, decoderHiddenDims, decoders } = spec;
    for (const [value, what] of [[D, 'obsDim'], [A, 'actDim'], [contextHorizon, 'contextHorizon'], [F, 'fieldEmbedDim'], [H, 'gruHiddenDim'], [Z, 'contextDim']] as const) {
      checkPositiveInteger(value, what);
    }
    decoderHiddenDims.forEach((width, i) => checkPositiveInteger(width, `decoderHiddenDims[${i}]`));
    if (decoders.length === 0 || new Set(decoders).size !== decoders.length || decoders.some((d) => d !== 'reward' && d !== 'state')) {
      throw new Error(`ContextWorldModel: decoders must be ['reward'], ['state'] or ['reward', 'state'], got ${JSON.stringify(decoders)}`);
    }
    this.spec = { ...spec, decoderHiddenDims: [...decoderHiddenDims], decoders: [...decoders] };
    this.decoderDepth = decoderHiddenDims.length + 1;
    const scope = uniqueScope('context-world-model', spec.role);
    const seedOf = (name: string) => seedToInt(deriveSeed(spec.seed, spec.role, name));
    const zeros = spec.init === 'zeros';
    const dense = (name: string, inDim: number, outDim: number): void => {
      this.layers[name] = {
        w: createVariable(zeros ? tf.zeros([inDim, outDim]) : xavierUniform(inDim, outDim, seedOf(name)), scope, `${name}/w`),
        b: createVariable(tf.zeros([outDim]), scope, `${name}/b`),
      };
    };
    const gruWeight = (name: string, inDim: number) =>
      createVariable(zeros ? tf.zeros([inDim, 3 * H]) : orthogonal(inDim, 3 * H, 1, seedOf(`encoder/gru/${name}`)), scope, `encoder/gru/${name}`);

    dense('encoder/obs', D, F);
    dense('encoder/action', A, F);
    dense('encoder/reward', 1, F);
    this.gru = {
      wi: gruWeight('wi', 3 * F),
      wh: gruWeight('wh', H),
      bi: createVariable(tf.zeros([3 * H]), scope, 'encoder/gru/bi'),
      bh: createVariable(tf.zeros([3 * H]), scope, 'encoder/gru/bh'),
    };
    dense('encoder/z', H, Z);

    const decoder = (name: string, inDim: number, outDim: number) => {
      dense(`${name}/obs`, D, F);
      dense(`${name}/action`, A, F);
      const sizes = [inDim, ...decoderHiddenDims, outDim];
      for (let i = 0; i + 1 < sizes.length; i++) dense(`${name}/fc${i}`, sizes[i], sizes[i + 1]);
    };
    if (this.hasDecoder('reward')) decoder('rewardDecoder', 3 * F + Z, 1);
    if (this.hasDecoder('state')) decoder('stateDecoder', 2 * F + Z, D);
  }

  hasDecoder(decoder: WorldModelDecoder): boolean {
    return this.spec.decoders.includes(decoder);
  }

  /** z for each window: [N, contextDim]. All N windows run through the GRU together, h steps unrolled. */
  encode(windows: ContextWindows): tf.Tensor2D {
    const { obsDim: D, actDim: A, contextHorizon: h, gruHiddenDim: H } = this.spec;
    const [N] = windows.obs.shape;
    this.checkShape('windows.obs', windows.obs.shape, [N, h, D]);
    this.checkShape('windows.actions', windows.actions.shape, [N, h, A]);
    this.checkShape('windows.rewards', windows.rewards.shape, [N, h]);
    return tf.tidy(() => {
      const rows = N * h;
      const fields = tf.concat(
        [
          this.embed(tf.reshape(windows.obs, [rows, D]), 'encoder/obs'),
          this.embed(tf.reshape(windows.actions, [rows, A]), 'encoder/action'),
          this.embed(tf.reshape(windows.rewards, [rows, 1]), 'encoder/reward'),
        ],
        1,
      );
      // The input half of the gates for all N·h rows in one matmul; only the hidden half is sequential.
      const g = this.gru;
      const inputGates = tf.unstack(tf.reshape(tf.add(tf.matMul(fields, g.wi as tf.Tensor2D), g.bi), [N, h, 3 * H]), 1) as tf.Tensor2D[];
      let hidden: tf.Tensor2D = tf.zeros([N, H]);
      for (const gi of inputGates) hidden = this.gruStep(gi, hidden);
      return affine(hidden, this.layers['encoder/z']);
    });
  }

  /** R(s, a, s', z) → r̂ [N]. */
  predictReward(obs: tf.Tensor2D, actions: tf.Tensor2D, nextObs: tf.Tensor2D, z: tf.Tensor2D): tf.Tensor1D {
    this.requireDecoder('reward', 'predictReward');
    this.checkTransition(obs, actions, z, nextObs);
    return tf.tidy(() => {
      // One embedding for s and s', as the reference's reward decoder shares its state encoder.
      const input = tf.concat([this.embed(obs, 'rewardDecoder/obs'), this.embed(actions, 'rewardDecoder/action'), this.embed(nextObs, 'rewardDecoder/obs'), z], 1);
      return tf.reshape(this.trunk(input, 'rewardDecoder'), [obs.shape[0]]) as tf.Tensor1D;
    });
  }

  /** T(s, a, z) → ŝ' [N, obsDim]. */
  predictNextState(obs: tf.Tensor2D, actions: tf.Tensor2D, z: tf.Tensor2D): tf.Tensor2D {
    this.requireDecoder('state', 'predictNextState');
    this.checkTransition(obs, actions, z);
    return tf.tidy(() => {
      const input = tf.concat([this.embed(obs, 'stateDecoder/obs'), this.embed(actions, 'stateDecoder/action'), z], 1);
      return this.trunk(input, 'stateDecoder');
    });
  }

  /** Each active decoder's MSE on the batch (the state one averaged over rows and dimensions). */
  decoderLosses(batch: WorldModelBatch): Partial<Record<WorldModelDecoder, tf.Scalar>> {
    return tf.tidy(() => {
      const z = this.encode(batch.windows);
      const losses: Partial<Record<WorldModelDecoder, tf.Scalar>> = {};
      if (this.hasDecoder('reward')) {
        losses.reward = tf.mean(tf.square(tf.sub(this.predictReward(batch.obs, batch.actions, batch.nextObs, z), batch.rewards))) as tf.Scalar;
      }
      if (this.hasDecoder('state')) {
        losses.state = tf.mean(tf.square(tf.sub(this.predictNextState(batch.obs, batch.actions, z), batch.nextObs))) as tf.Scalar;
      }
      return losses;
    });
  }

  /** The training loss: the active decoders' MSEs, summed when both are on. */
  loss(batch: WorldModelBatch): tf.Scalar {
    return tf.tidy(() => tf.addN(Object.values(this.decoderLosses(batch))) as tf.Scalar);
  }

  /**
   * The world model's error at every step of an episode, for Meta-DT's self-guided prompt
   * (`append_error_to_trajectory`): |r̂_t − r_t| for the reward decoder; Σ_d |ŝ'_t,d − s'_t,d| for
   * the state decoder (the reference keeps the per-dimension absolute errors and its window
   * score sums them over dimensions too, i.e. the L1 norm); their sum with both. The reference's
   * ML10 branch broadcasts the [T, 1] reward error onto every state dimension before summing,
   * counting it obsDim times; that looks accidental and is not copied. It also compares the
   * Hopper/Walker state decoder with normalised s' while training it on raw s'; here the error
   * is always against the observations given, as in training.
   */
  predictionErrors(episode: EpisodeArrays): Float32Array {
    const T = episodeSteps(episode, this.spec);
    if (T === 0) return new Float32Array(0);
    return tf.tidy(() => {
      const batch = episodeBatch(episode, this.spec);
      const z = this.encode(batch.windows);
      const terms: tf.Tensor1D[] = [];
      if (this.hasDecoder('reward')) terms.push(tf.abs(tf.sub(this.predictReward(batch.obs, batch.actions, batch.nextObs, z), batch.rewards)) as tf.Tensor1D);
      if (this.hasDecoder('state')) terms.push(tf.sum(tf.abs(tf.sub(this.predictNextState(batch.obs, batch.actions, z), batch.nextObs)), 1) as tf.Tensor1D);
      return new Float32Array(tf.addN(terms).dataSync());
    });
  }

  namedVariables(): Record<string, tf.Variable> {
    const named = linearVariables(this.layers);
    for (const [k, v] of Object.entries(this.gru)) named[`encoder/gru/${k}`] = v;
    return named;
  }

  /** Linear + ReLU on one field; a 1-wide field (the reward) as a broadcast multiply, not an outer-product matmul. */
  private embed(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const { w, b } = this.layers[name];
    const wx = w.shape[0] === 1 ? tf.mul(x, w) : tf.matMul(x, w as tf.Tensor2D);
    return tf.relu(tf.add(wx, b)) as tf.Tensor2D;
  }

  /** A decoder's ReLU MLP, `fc0` … `fc{depth−1}`, linear output. */
  private trunk(x: tf.Tensor2D, decoder: string): tf.Tensor2D {
    let h = x;
    for (let i = 0; i < this.decoderDepth; i++) {
      const { w, b } = this.layers[`${decoder}/fc${i}`];
      // A single output (the reward) as multiply-and-sum: the matmul's gradient would be a
      // [N, 1]·[1, H] outer product, which the wasm backend runs far slower (see Mlp).
      const wx = w.shape[1] === 1 ? tf.sum(tf.mul(h, tf.reshape(w, [1, -1])), 1, true) : tf.matMul(h, w as tf.Tensor2D);
      const out = tf.add(wx, b) as tf.Tensor2D;
      h = i + 1 < this.decoderDepth ? tf.relu(out) : out;
    }
    return h;
  }

  /** The GRU update given the input's gate pre-activations gi = x·W_i + b_i. */
  private gruStep(gi: tf.Tensor2D, h: tf.Tensor2D): tf.Tensor2D {
    const { wh, bh } = this.gru;
    return gruUpdate(gi, tf.add(tf.matMul(h, wh as tf.Tensor2D), bh), h, this.spec.gruHiddenDim);
  }

  private requireDecoder(decoder: WorldModelDecoder, method: string): void {
    if (!this.hasDecoder(decoder)) throw new Error(`ContextWorldModel '${this.spec.role}'.${method}: built without the ${decoder} decoder (decoders ${JSON.stringify(this.spec.decoders)})`);
  }

  private checkTransition(obs: tf.Tensor2D, actions: tf.Tensor2D, z: tf.Tensor2D, nextObs?: tf.Tensor2D): void {
    const N = obs.shape[0];
    this.checkShape('obs', obs.shape, [N, this.spec.obsDim]);
    this.checkShape('actions', actions.shape, [N, this.spec.actDim]);
    this.checkShape('z', z.shape, [N, this.spec.contextDim]);
    if (nextObs) this.checkShape('nextObs', nextObs.shape, [N, this.spec.obsDim]);
  }

  private checkShape(what: string, actual: readonly number[], expected: readonly number[]): void {
    if (actual.length !== expected.length || actual.some((n, i) => n !== expected[i])) {
      throw new Error(`ContextWorldModel '${this.spec.role}': ${what} has shape [${actual.join(', ')}], expected [${expected.join(', ')}]`);
    }
  }
}
