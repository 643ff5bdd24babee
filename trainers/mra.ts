/**
 * MRA — meta representations for agents (Zhang, Shen, Han, Shen 2021, "Learning Meta
 * Representations for Agents in Multi-Agent Reinforcement Learning", arXiv 2108.12988), as its
 * official code does it (shenao-zhang/MRA, read at 7617821; `/work/shared/papers-2.md` §1).
 * One learner trains on several populations of a game at once (one task per population size N,
 * e.g. `resource-3`, `resource-6`, `resource-9`), and acts for any N.
 *
 * Networks (every one permutation-invariant over the other agents, so one set acts for any N):
 *  - Each agent's observation is a self block and a set of equal entity blocks, one per other
 *    agent (`EnvMetadata.entityObservation`).
 *  - Relation net: keys from the self block and queries from each other agent, `num_latents`
 *    heads × 16 dims; the agent's one-hot latent z multiplies the heads and sums them, so **z
 *    picks the attention head**; softmax(k·q / 8) over the others is the agent's "relation"
 *    (whom it attends to).
 *  - Policy: the relation pools value embeddings of the others (entity → 32 → 64); a 64 → 32 →
 *    |A| head gives action logits. The self block only keys the attention.
 *  - Critic (MAAC-style centralised soft Q): its own (z-free) attention pools the others into
 *    an embedding, joined with the agent's action one-hot; a 32 → 16 embedding of every agent's
 *    state-action is pooled with the relation net's weights (1 for the agent itself), joined
 *    with the agent's own 16-dim embedding, and a linear layer gives Q over actions; Q_i is the
 *    entry of the action taken.
 *  - p(z | N) (`TaskEncode`): an MLP 1 → L/2 → L of N/10, log_softmax(out / 4); each agent
 *    draws its own z from it at the start of every episode.
 *  - Game classifier (`TaskPred`): the relation pools the others' value embeddings (its own
 *    encoder), joined with z, MLP → one logit per training game, summed over agents.
 *
 * Update round (every `steps_per_update` env steps of a task once its replay holds a batch, on
 * that task's replay only, as the reference's `train.py`):
 *  1. `num_updates` × (critic step, policy step), each on a fresh batch:
 *     - critic: y_i = r_i + γ Q'_i(o', a') (1 − terminated) − log π'(a'_i | o'_i) / reward_scale
 *       with a' ~ π' (target policy); loss MSE(Σ_i Q_i, Σ_i y_i) (the team sum regressed);
 *       gradient norm clipped at `grad_clip_per_agent` · N;
 *     - policy: Σ_i log π(a_i) · (log π(a_i) / reward_scale − Q_i) with a ~ π and Q detached.
 *  2. One step of the relation net maximising the contrastive estimate of I(a; z | o): for a
 *     fresh z per agent and K = `resample_num` resampled z_k from p(z | N), with a* ~ π(· | o,
 *     rel(z)), Σ_i [log(K π'(a*_i | o, rel(z))) − log Σ_k π'(a*_i | o, rel(z_k))] (π' the target
 *     policy); only the relation net moves.
 *  3. Hard copy of the critic and policy into their targets.
 *  4. One classifier step: cross-entropy of the game id, with z a straight-through Gumbel
 *     sample of p(z | N), so the gradient trains p(z | N) and the classifier.
 *  Rewards are z-scored per agent slot over the task's replay when sampled (MAAC's buffer).
 *  Adam with L2 weight decay (PyTorch's `Adam(weight_decay=…)`), lr 3e-4, γ 0.95, reward scale
 *  30, batch 1024, 10 updates per round every 100 env steps: the reference's defaults.
 *
 * Where this port departs from the reference (and why):
 *  - Like the reference, the policy, critic and classifier see the agent's own situation only
 *    through its teammates' blocks (each holds the teammate's position relative to the agent and
 *    the resources' relative to the teammate), pooled by attention; so populations start at
 *    N = 2. (We tried adding an embedding of the self block: the policy then learned to ignore
 *    its teammates, the relation — and with it z — stopped mattering, and the I(a; z | o)
 *    estimate stayed at 0.)
 *  - The reference draws one z per agent slot per rollout batch (all 12 envs share it); we draw
 *    z per agent per env at each episode start (finer, the same distribution).
 *  - The reference stores the relation weights computed while acting and trains on them; we
 *    store z and recompute the relation with the current relation net (not trained there), and
 *    pool o' with rel(o', z) instead of reusing rel(o, z) for the next step.
 *  - The soft target draws a' and log π'(a') from the target policy at o' (standard soft
 *    actor-critic); the reference draws them at o (`update_critic` passes `obs`), which looks like
 *    a slip.
 *  - Initialisation: the observation encoders (relation net, the critic's and classifier's) get
 *    Xavier weights and zero biases as the reference's `ObsEncode`; every policy layer starts as
 *    PyTorch's `nn.Linear` default (the reference: N(0, 0.1) for its encoder layers, Xavier-normal
 *    for its 1×1-conv head, about twice our head's spread), the critic's heads as PyTorch's default.
 *  - Gradient clipping measures the gradient with the weight-decay term added (PyTorch clips the
 *    raw gradient, then Adam adds the decay); the difference is negligible at 3e-4.
 *  - Tasks interleave one vector step at a time (the training loop's multi-task stream); the
 *    reference plays a whole 12-env × 20-step rollout of one game before the next.
 *  - With `num_latents: 1` the relation net is never trained (only the MI step trains it, and
 *    there is nothing to estimate with one z): the unimodal baseline keeps its initial attention
 *    (the reference with one latent would let weight decay shrink it towards uniform).
 *  - `num_latents: 1` is the unimodal baseline (one head, z constant): the MI and classifier
 *    steps are skipped, since with a single z they have nothing to do.
 *  - The reference has no evaluation or adaptation code. Adaptation to an unseen N (our
 *    addition, `MraAdapter`): start from p(z | N) queried at the new N and take first-order
 *    REINFORCE steps on its logits (and, if configured, on the policy's output layer), each from
 *    the team returns of a few episodes. The best-z sweep and zero-shot play are in
 *    `runtime/training/mra-evaluation.ts`.
 */
import * as tf from '@tensorflow/tfjs';
import { z as zod } from 'zod';
import type { Experience } from '../agents/experience';
import { Mlp } from '../agents/networks/mlp';
import { torchUniform } from '../agents/networks/init';
import { type Linear, createVariable, polyakUpdate, uniqueScope } from '../agents/networks/module';
import { greedyLegal, sampleLegal } from '../agents/policies/action-selection';
import type { Policy, PolicyBatch, PolicyOutput } from '../agents/policies/policy';
import type { EnvShape } from '../envs/env-shape';
import { type NamedTensorData, type SerializedArray, assignTensors, captureTensors, deserializeArray, serializeArray, underPrefix, withPrefix } from '../runtime/core/checkpoint-format';
import { Rng, deriveSeed, seedToInt } from '../runtime/core/rng';
import { Adam, clipByGlobalNorm } from './adam';
import { MAX_REPEATS, MAX_STEP_BATCH, MAX_TRANSITION_REPLAY, discount, nonNegative, positive, positiveInt } from './config-keys';
import { type Collection, type EvaluationOptions, type LearnerState, type OnlineLearner, type TaskSpec, type TrainStats, type TrainerDefinition, meanStats } from './learner';

// ---------------------------------------------------------------------------------------------
// Config (the reference's `main.py` names and defaults)
// ---------------------------------------------------------------------------------------------

export const mraConfigSchema = zod
  .object({
    name: zod.literal('mra'),
    /** Values of the one-hot latent z (the reference's `skill_num`); 1 = the unimodal baseline. */
    num_latents: positiveInt(32).default(6),
    /** K: latents resampled per agent in the I(a; z | o) estimate. */
    resample_num: positiveInt(64).default(5),
    gamma: discount().default(0.95),
    /** Divides log π in the soft targets: the entropy temperature is 1 / reward_scale. */
    reward_scale: positive().default(30),
    pi_lr: positive().default(3e-4),
    q_lr: positive().default(3e-4),
    /** L2 weight decay of every optimiser (PyTorch Adam's `weight_decay`). */
    weight_decay: nonNegative().default(3e-4),
    /** Replay capacity per task, in env steps (each holds every agent's transition). */
    buffer_size: positiveInt(MAX_TRANSITION_REPLAY).default(1_000_000),
    /** Env steps per batch. */
    batch_size: positiveInt(MAX_STEP_BATCH).default(1024),
    /** An update round every this many env steps of a task (counted over its envs). */
    steps_per_update: positiveInt().default(100),
    /** (critic, policy) step pairs per update round. */
    num_updates: positiveInt(MAX_REPEATS).default(10),
    /** The critic's and relation net's gradient norms are clipped at this × N. */
    grad_clip_per_agent: positive().default(10),
    /** z-score rewards per agent slot over the replay when sampling (MAAC's buffer). */
    normalize_rewards: zod.boolean().default(true),
    /**
     * Each teammate's value embedding reads (own self block, teammate block) instead of the
     * teammate block alone (our option; the reference: false). The relation still weighs them.
     */
    pair_values: zod.boolean().default(false),
  })
  .strict();
export type MraConfig = zod.output<typeof mraConfigSchema>;

// Widths the reference hard-codes (its `*_hidden_dim` options are parsed but unused).
const KEY_DIM = 16;
const ENCODER_HIDDEN = 32;
const VALUE_DIM = 64;
const HEAD_HIDDEN = 32;
const CRITIC_HIDDEN = 32;
const CRITIC_EMBED = 16;
/** softmax(k·q / √(2 · per_emb_dim)) with the reference's per_emb_dim 32. */
const ATTENTION_SCALE = 1 / 8;
const CRITIC_KEY_HIDDEN = 16;
const CRITIC_KEY_DIM = 32;

// ---------------------------------------------------------------------------------------------
// Observations as a self block and a set of entities
// ---------------------------------------------------------------------------------------------

export interface EntityLayout {
  selfDim: number;
  entityDim: number;
}

/** The entity layout of a task, or an error naming the env. */
export function entityLayoutOf(shape: EnvShape, envId: string): EntityLayout {
  const layout = shape.entityObservation;
  if (!layout) throw new Error(`algo 'mra' reads each agent's observation as a self block and a set of entities, but env '${envId}' does not declare metadata.entityObservation (resource-N does)`);
  for (const [a, dim] of shape.agentObsDims.entries()) {
    if ((dim - layout.selfDim) % layout.entityDim !== 0 || dim < layout.selfDim) throw new Error(`env '${envId}': agent ${shape.agentIds[a]}'s observation has ${dim} numbers, not ${layout.selfDim} + k × ${layout.entityDim}`);
  }
  if (shape.numAgents < 2) throw new Error(`algo 'mra': env '${envId}' has ${shape.numAgents} agent; MRA's networks read an agent's teammates, so populations start at 2 agents`);
  if (shape.obsDim !== layout.selfDim + (shape.numAgents - 1) * layout.entityDim) {
    throw new Error(`algo 'mra': env '${envId}' has ${shape.numAgents} agents, so each observation should hold one entity block per other agent (${layout.selfDim} + ${shape.numAgents - 1} × ${layout.entityDim} numbers), got ${shape.obsDim}`);
  }
  return layout;
}

/** obs [R, S + M·Ed] → self [R, S] and others [R, M, Ed] (M ≥ 1). */
function splitEntities(obs: tf.Tensor2D, layout: EntityLayout, others: number): { self: tf.Tensor2D; others: tf.Tensor3D } {
  const R = obs.shape[0];
  const self = tf.slice(obs, [0, 0], [R, layout.selfDim]) as tf.Tensor2D;
  return { self, others: tf.reshape(tf.slice(obs, [0, layout.selfDim], [R, others * layout.entityDim]), [R, others, layout.entityDim]) as tf.Tensor3D };
}

/** A float one-hot of int indices [R] → [R, n]. */
function oneHotF(indices: tf.Tensor, n: number): tf.Tensor2D {
  // tfjs's oneHot wants a depth of 2 or more; with one value every row is [1].
  if (n === 1) return tf.ones([indices.shape[0], 1]);
  return tf.cast(tf.oneHot(indices as tf.Tensor1D, n), 'float32') as tf.Tensor2D;
}

/** An MLP over the last axis of a 3-D tensor. */
function mlp3(net: Mlp, x: tf.Tensor3D): tf.Tensor3D {
  const [R, M, D] = x.shape;
  return tf.reshape(net.forward(tf.reshape(x, [R * M, D]) as tf.Tensor2D), [R, M, -1]) as tf.Tensor3D;
}

/**
 * Attention of each row's self over its others, softmax(k·q · scale) [R, M]; with `latent`
 * [R, H] the heads are weighted by it (a one-hot picks one head), else there is a single head.
 */
function attention(keyNet: Mlp, queryNet: Mlp, self: tf.Tensor2D, others: tf.Tensor3D, heads: number, latent: tf.Tensor2D | null): tf.Tensor2D {
  const [R, M] = others.shape;
  let k = keyNet.forward(self); // [R, H·dk]
  let q = mlp3(queryNet, others) as tf.Tensor; // [R, M, H·dk]
  if (latent) {
    const dk = k.shape[1] / heads;
    k = tf.sum(tf.mul(tf.reshape(k, [R, heads, dk]), tf.reshape(latent, [R, heads, 1])), 1) as tf.Tensor2D;
    q = tf.sum(tf.mul(tf.reshape(q, [R, M, heads, dk]), tf.reshape(latent, [R, 1, heads, 1])), 2);
  }
  const scores = tf.mul(tf.sum(tf.mul(q, tf.expandDims(k, 1)), 2), ATTENTION_SCALE);
  return tf.softmax(scores, -1) as tf.Tensor2D;
}

/**
 * Σ_m weights[r, m] · value(others[r, m]): the [R, 64] embedding the heads read; with `self`
 * (`pair_values`) each teammate's value reads the pair (self block, teammate block).
 */
function poolEntities(valueOthers: Mlp, others: tf.Tensor3D, weights: tf.Tensor2D, self?: tf.Tensor2D): tf.Tensor2D {
  const M = others.shape[1];
  const input = self ? (tf.concat([tf.tile(tf.expandDims(self, 1), [1, M, 1]), others], 2) as tf.Tensor3D) : others;
  return tf.sum(tf.mul(mlp3(valueOthers, input), tf.expandDims(weights, 2)), 1) as tf.Tensor2D;
}

/** Input width of a teammate's value embedding. */
function valueInputDim(layout: EntityLayout, pairValues: boolean): number {
  return layout.entityDim + (pairValues ? layout.selfDim : 0);
}

// ---------------------------------------------------------------------------------------------
// Networks
// ---------------------------------------------------------------------------------------------

type NamedVars = Record<string, tf.Variable>;

function prefixed(prefix: string, vars: NamedVars): NamedVars {
  return withPrefix(`${prefix}/`, vars);
}

/** `xavier` for the reference's observation encoders (`ObsEncode.reset_para`), PyTorch's default elsewhere. */
function mlp(inputDim: number, hidden: number[], outputDim: number, seed: string, role: string, init: 'torch' | 'xavier' = 'torch'): Mlp {
  return new Mlp({ inputDim, hiddenDims: hidden, outputDim, seed, role, init });
}

/** z → which head weighs the teammates. */
class RelationNet {
  readonly keySelf: Mlp;
  readonly queryOthers: Mlp;
  constructor(
    layout: EntityLayout,
    readonly heads: number,
    seed: string,
  ) {
    this.keySelf = mlp(layout.selfDim, [ENCODER_HIDDEN], KEY_DIM * heads, seed, 'relation/key_self', 'xavier');
    this.queryOthers = mlp(layout.entityDim, [ENCODER_HIDDEN], KEY_DIM * heads, seed, 'relation/query_others', 'xavier');
  }
  /** [R, M]: each row's weights over its others. */
  forward(self: tf.Tensor2D, others: tf.Tensor3D, latent: tf.Tensor2D): tf.Tensor2D {
    return attention(this.keySelf, this.queryOthers, self, others, this.heads, latent);
  }
  namedVariables(): NamedVars {
    return { ...prefixed('key_self', this.keySelf.namedVariables()), ...prefixed('query_others', this.queryOthers.namedVariables()) };
  }
}

class PolicyNet {
  readonly valueOthers: Mlp;
  readonly hidden: Mlp;
  readonly out: Linear;
  constructor(
    layout: EntityLayout,
    numActions: number,
    seed: string,
    role: string,
    readonly pairValues: boolean,
  ) {
    this.valueOthers = mlp(valueInputDim(layout, pairValues), [ENCODER_HIDDEN], VALUE_DIM, seed, `${role}/value_others`);
    // The head as hidden layer + a separate output layer, so adaptation can own the last one;
    // the output layer starts as an `Mlp` layer of role `<role>/head_out` would.
    this.hidden = mlp(VALUE_DIM, [], HEAD_HIDDEN, seed, `${role}/head_hidden`);
    const scope = uniqueScope('mra-policy', role);
    const init = (shape: number[], part: string) => createVariable(torchUniform(shape, HEAD_HIDDEN, seedToInt(deriveSeed(seed, `${role}/head_out`, 0, part))), scope, `out/${part}`);
    this.out = { w: init([HEAD_HIDDEN, numActions], 'w'), b: init([numActions], 'b') };
  }
  /** Action logits [R, |A|]; `head` replaces the output layer (an adapted copy). */
  logits(self: tf.Tensor2D, others: tf.Tensor3D, relation: tf.Tensor2D, head: Linear = this.out): tf.Tensor2D {
    const h = tf.relu(this.hidden.forward(poolEntities(this.valueOthers, others, relation, this.pairValues ? self : undefined)));
    return tf.add(tf.matMul(h, head.w as tf.Tensor2D), head.b) as tf.Tensor2D;
  }
  namedVariables(): NamedVars {
    return {
      ...prefixed('value_others', this.valueOthers.namedVariables()),
      ...prefixed('head_hidden', this.hidden.namedVariables()),
      'head_out/w': this.out.w,
      'head_out/b': this.out.b,
    };
  }
}

class CriticNet {
  readonly keySelf: Mlp;
  readonly queryOthers: Mlp;
  readonly valueOthers: Mlp;
  readonly stateAction: Mlp;
  readonly selfStateAction: Mlp;
  readonly post: Mlp;
  constructor(
    layout: EntityLayout,
    readonly numActions: number,
    seed: string,
    role: string,
    readonly pairValues: boolean,
  ) {
    this.keySelf = mlp(layout.selfDim, [CRITIC_KEY_HIDDEN], CRITIC_KEY_DIM, seed, `${role}/key_self`, 'xavier');
    this.queryOthers = mlp(layout.entityDim, [CRITIC_KEY_HIDDEN], CRITIC_KEY_DIM, seed, `${role}/query_others`, 'xavier');
    this.valueOthers = mlp(valueInputDim(layout, pairValues), [ENCODER_HIDDEN], VALUE_DIM, seed, `${role}/value_others`, 'xavier');
    this.stateAction = mlp(VALUE_DIM + numActions, [CRITIC_HIDDEN], CRITIC_EMBED, seed, `${role}/critic_v`);
    this.selfStateAction = mlp(VALUE_DIM + numActions, [CRITIC_HIDDEN], CRITIC_EMBED, seed, `${role}/self_v`);
    this.post = mlp(2 * CRITIC_EMBED, [], numActions, seed, `${role}/post`);
  }
  /**
   * Q of the taken actions [B, A]: obs [B·A, D] split into entities, actions one-hot [B·A, |A|],
   * relation [B·A, A−1] from the relation net, `pad` [A, A, A] places agent i's relation over
   * the others into a row over all agents with 1 at i itself.
   */
  q(self: tf.Tensor2D, others: tf.Tensor3D, actions: tf.Tensor2D, relation: tf.Tensor2D, B: number, A: number, pad: tf.Tensor3D): tf.Tensor2D {
    const emb = poolEntities(this.valueOthers, others, attention(this.keySelf, this.queryOthers, self, others, 1, null), this.pairValues ? self : undefined);
    const sa = tf.concat([emb, actions], 1);
    const selfPart = this.selfStateAction.forward(sa); // [B·A, 16]
    const each = tf.reshape(this.stateAction.forward(sa), [B, A, CRITIC_EMBED]);
    // [A, B, A] · [A, A, A] → rows over all agents: R[b, i, j] = relation of i at j, 1 at j = i.
    const withSelf = tf.concat([tf.reshape(relation, [B, A, A - 1]), tf.ones([B, A, 1])], 2);
    const full = tf.transpose(tf.matMul(tf.transpose(withSelf, [1, 0, 2]) as tf.Tensor3D, pad), [1, 0, 2]) as tf.Tensor3D; // [B, A, A]
    const pooled = tf.reshape(tf.matMul(full, each), [B * A, CRITIC_EMBED]) as tf.Tensor2D;
    const allQ = this.post.forward(tf.concat([pooled, selfPart], 1));
    return tf.reshape(tf.sum(tf.mul(allQ, actions), 1), [B, A]) as tf.Tensor2D;
  }
  namedVariables(): NamedVars {
    const parts: Record<string, Mlp> = {
      key_self: this.keySelf,
      query_others: this.queryOthers,
      value_others: this.valueOthers,
      critic_v: this.stateAction,
      self_v: this.selfStateAction,
      post: this.post,
    };
    return Object.assign({}, ...Object.entries(parts).map(([k, m]) => prefixed(k, m.namedVariables()))) as NamedVars;
  }
}

/** p(z | N): log-probabilities from N / 10. */
class LatentPrior {
  readonly net: Mlp;
  constructor(numLatents: number, seed: string) {
    this.net = mlp(1, [Math.max(1, Math.floor(numLatents / 2))], numLatents, seed, 'task_encode');
  }
  logProbs(numAgents: number): tf.Tensor1D {
    return tf.reshape(tf.logSoftmax(tf.mul(this.net.forward(tf.tensor2d([[numAgents / 10]])), 0.25)), [-1]) as tf.Tensor1D;
  }
}

class GameClassifier {
  readonly valueOthers: Mlp;
  readonly fc: Mlp;
  constructor(
    layout: EntityLayout,
    numLatents: number,
    numGames: number,
    seed: string,
    readonly pairValues: boolean,
  ) {
    this.valueOthers = mlp(valueInputDim(layout, pairValues), [ENCODER_HIDDEN], VALUE_DIM, seed, 'task_pred/value_others', 'xavier');
    const width = VALUE_DIM + numLatents;
    this.fc = mlp(width, [Math.floor(width / 2)], numGames, seed, 'task_pred/fc');
  }
  /** Game logits [B] × games, summed over the A agents of each row. */
  logits(self: tf.Tensor2D, others: tf.Tensor3D, relation: tf.Tensor2D, latent: tf.Tensor2D, B: number, A: number): tf.Tensor2D {
    const emb = poolEntities(this.valueOthers, others, relation, this.pairValues ? self : undefined);
    const per = this.fc.forward(tf.concat([emb, latent], 1));
    return tf.sum(tf.reshape(per, [B, A, -1]), 1) as tf.Tensor2D;
  }
  namedVariables(): NamedVars {
    return { ...prefixed('value_others', this.valueOthers.namedVariables()), ...prefixed('fc', this.fc.namedVariables()) };
  }
}

// ---------------------------------------------------------------------------------------------
// Replay: one row per env step of a task, holding every agent
// ---------------------------------------------------------------------------------------------

class JointReplay {
  obs: Float32Array;
  nextObs: Float32Array;
  /** [rows, A] */
  actions: Uint8Array;
  latents: Uint8Array;
  rewards: Float32Array;
  terminated: Uint8Array;
  size = 0;
  cursor = 0;
  constructor(
    readonly numAgents: number,
    readonly obsDim: number,
    readonly capacity: number,
  ) {
    const rows = Math.min(capacity, 1024);
    const A = numAgents;
    this.obs = new Float32Array(rows * A * obsDim);
    this.nextObs = new Float32Array(rows * A * obsDim);
    this.actions = new Uint8Array(rows * A);
    this.latents = new Uint8Array(rows * A);
    this.rewards = new Float32Array(rows * A);
    this.terminated = new Uint8Array(rows * A);
  }
  private get rows(): number {
    return this.actions.length / this.numAgents;
  }
  private grow(rows: number): void {
    const A = this.numAgents;
    const W = A * this.obsDim;
    const bigger = <T extends Float32Array | Uint8Array>(a: T, width: number): T => {
      const b = new (a.constructor as { new (n: number): T })(rows * width);
      b.set(a);
      return b;
    };
    this.obs = bigger(this.obs, W);
    this.nextObs = bigger(this.nextObs, W);
    this.actions = bigger(this.actions, A);
    this.latents = bigger(this.latents, A);
    this.rewards = bigger(this.rewards, A);
    this.terminated = bigger(this.terminated, A);
  }
  /** Env `e` of a transition item. */
  add(item: { obs: Float32Array; nextObs: Float32Array; actions: Float32Array; rewards: Float32Array; terminated: Uint8Array }, latents: Float32Array, e: number): void {
    if (this.cursor >= this.rows) this.grow(Math.min(this.capacity, 2 * this.rows));
    const A = this.numAgents;
    const W = A * this.obsDim;
    const r = this.cursor;
    this.obs.set(item.obs.subarray(e * W, (e + 1) * W), r * W);
    this.nextObs.set(item.nextObs.subarray(e * W, (e + 1) * W), r * W);
    for (let i = 0; i < A; i++) {
      this.actions[r * A + i] = item.actions[e * A + i];
      this.latents[r * A + i] = latents[e * A + i];
      this.rewards[r * A + i] = item.rewards[e * A + i];
      this.terminated[r * A + i] = item.terminated[e * A + i];
    }
    this.cursor = (r + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }
  /** Mean and standard deviation of each agent slot's rewards over the filled rows. */
  rewardMoments(): { mean: Float64Array; std: Float64Array } {
    const A = this.numAgents;
    const sum = new Float64Array(A);
    const sq = new Float64Array(A);
    for (let r = 0; r < this.size; r++) {
      for (let i = 0; i < A; i++) {
        const x = this.rewards[r * A + i];
        sum[i] += x;
        sq[i] += x * x;
      }
    }
    const mean = new Float64Array(A);
    const std = new Float64Array(A);
    for (let i = 0; i < A; i++) {
      mean[i] = sum[i] / this.size;
      std[i] = Math.sqrt(Math.max(0, sq[i] / this.size - mean[i] * mean[i]));
    }
    return { mean, std };
  }
  capture(): { arrays: Record<string, SerializedArray>; json: { size: number; cursor: number } } {
    const A = this.numAgents;
    const W = A * this.obsDim;
    const n = this.size;
    return {
      arrays: {
        obs: serializeArray(this.obs.slice(0, n * W)),
        next_obs: serializeArray(this.nextObs.slice(0, n * W)),
        actions: serializeArray(this.actions.slice(0, n * A)),
        latents: serializeArray(this.latents.slice(0, n * A)),
        rewards: serializeArray(this.rewards.slice(0, n * A)),
        terminated: serializeArray(this.terminated.slice(0, n * A)),
      },
      json: { size: n, cursor: this.cursor },
    };
  }
  restore(arrays: Record<string, SerializedArray>, size: number, cursor: number, who: string): void {
    const A = this.numAgents;
    const W = A * this.obsDim;
    if (!Number.isSafeInteger(size) || size < 0 || size > this.capacity || !Number.isSafeInteger(cursor) || cursor < 0 || cursor >= this.capacity) {
      throw new Error(`${who}: replay size ${size} / cursor ${cursor} do not fit capacity ${this.capacity}`);
    }
    const get = <C extends Float32ArrayConstructor | Uint8ArrayConstructor>(key: string, Ctor: C, width: number): InstanceType<C> => {
      const s = arrays[key];
      if (!s) throw new Error(`${who}: no replay array '${key}'`);
      const a = deserializeArray(s);
      if (!(a instanceof Ctor) || a.length !== size * width) throw new Error(`${who}: replay array '${key}' is a ${a.constructor.name}[${a.length}], expected ${Ctor.name}[${size * width}]`);
      return a as InstanceType<C>;
    };
    const loaded = {
      obs: get('obs', Float32Array, W),
      nextObs: get('next_obs', Float32Array, W),
      actions: get('actions', Uint8Array, A),
      latents: get('latents', Uint8Array, A),
      rewards: get('rewards', Float32Array, A),
      terminated: get('terminated', Uint8Array, A),
    };
    let rows = Math.min(this.capacity, 1024);
    while (rows < size) rows = Math.min(this.capacity, 2 * rows);
    const place = <T extends Float32Array | Uint8Array>(a: T, width: number): T => {
      const b = new (a.constructor as { new (n: number): T })(rows * width);
      b.set(a);
      return b;
    };
    this.obs = place(loaded.obs, W);
    this.nextObs = place(loaded.nextObs, W);
    this.actions = place(loaded.actions, A);
    this.latents = place(loaded.latents, A);
    this.rewards = place(loaded.rewards, A);
    this.terminated = place(loaded.terminated, A);
    this.size = size;
    this.cursor = cursor;
  }
}

// ---------------------------------------------------------------------------------------------
// Acting
// ---------------------------------------------------------------------------------------------

/** Where an acting policy's latents come from at each episode start. */
export type LatentChoice =
  | { kind: 'prior' } // z ~ p(z | N), each agent its own draw
  | { kind: 'fixed'; z: number } // every agent plays this z
  | { kind: 'logits'; logits: Float32Array }; // z ~ softmax(logits) (an adapter's, read at every draw)

/** Softmax of a logit vector (float64 arithmetic). */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const e = Array.from(logits, (x) => Math.exp(x - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function sampleCategorical(probs: ArrayLike<number>, rng: Rng): number {
  let u = rng.next();
  for (let k = 0; k < probs.length; k++) {
    u -= probs[k];
    if (u < 0) return k;
  }
  return probs.length - 1;
}

/**
 * Acts for E envs of one population: at each episode start draws every agent's z (per
 * `choice`), then each step samples (or takes the argmax of) π(· | o, rel(o, z)). A batch whose
 * `context.latent` holds a one-hot of `num_latents` per env fixes every agent's z there instead
 * (the conditioning context of `PolicyContext`). The latents go out as the `latent` extra
 * [E, A, 1] (the index of z), which the learner stores.
 */
export class MraPolicy implements Policy {
  /** [E, A] the current episode's z of every agent. */
  readonly latents: Int32Array;
  private started: Uint8Array;
  constructor(
    private readonly learner: MraLearner,
    readonly shape: EnvShape,
    readonly numEnvs: number,
    private readonly choice: LatentChoice,
    private rng: Rng,
    private readonly mode: 'sample' | 'greedy',
    private readonly head?: Linear,
  ) {
    this.latents = new Int32Array(numEnvs * shape.numAgents);
    this.started = new Uint8Array(numEnvs);
  }

  get rngState(): Rng {
    return this.rng;
  }
  resumeRng(rng: Rng): void {
    this.rng = rng;
  }
  /** Forget the current episodes: the next act draws new latents everywhere. */
  reset(): void {
    this.started.fill(0);
  }

  /** The episodes' latents and which envs have drawn them (a checkpoint mid-episode keeps both). */
  memory(): { latents: Int32Array; started: Uint8Array } {
    return { latents: this.latents.slice(), started: this.started.slice() };
  }

  /** Loads `memory()`'s arrays; `who` prefixes errors. */
  restoreMemory(latents: Int32Array, started: Uint8Array, who: string): void {
    if (latents.length !== this.latents.length || started.length !== this.started.length) {
      throw new Error(`${who}: acting memory holds ${latents.length} latents and ${started.length} env flags, this policy ${this.latents.length} and ${this.started.length}`);
    }
    this.latents.set(latents);
    this.started.set(started);
  }

  /** Draws env `e`'s latents; `probs` gives the distribution (computed once per act, when needed). */
  private drawLatents(e: number, probs: () => number[]): void {
    const A = this.shape.numAgents;
    if (this.choice.kind === 'fixed') {
      this.latents.fill(this.choice.z, e * A, (e + 1) * A);
      return;
    }
    const p = probs();
    for (let i = 0; i < A; i++) this.latents[e * A + i] = sampleCategorical(p, this.rng);
  }

  act(batch: PolicyBatch, actions: Float32Array): PolicyOutput {
    const { numAgents: A, numActions: U } = this.shape;
    const E = this.numEnvs;
    if (batch.layout.numEnvs !== E || batch.layout.numAgents !== A) throw new Error(`mra policy: built for ${E} envs × ${A} agents, got ${batch.layout.numEnvs} × ${batch.layout.numAgents}`);
    const L = this.learner.config.num_latents;
    const context = batch.context;
    if (context.latentDim !== 0 && context.latentDim !== L) throw new Error(`mra policy: the context's latent has ${context.latentDim} numbers; it fixes z as a one-hot of num_latents = ${L}`);
    let latentProbs: number[] | undefined;
    const { choice } = this;
    const probs = () => (latentProbs ??= choice.kind === 'prior' ? this.learner.latentProbs(A) : choice.kind === 'logits' ? softmax(choice.logits) : []);
    for (let e = 0; e < E; e++) {
      if (context.latentDim === L) {
        // The caller fixes every agent's z in this env (a strategy code, a sweep): its one-hot's argmax.
        let z = 0;
        for (let l = 1; l < L; l++) if (context.latent[e * L + l] > context.latent[e * L + z]) z = l;
        this.latents.fill(z, e * A, (e + 1) * A);
        this.started[e] = 1;
      } else if (batch.episodeStart[e] || !this.started[e]) {
        this.drawLatents(e, probs);
        this.started[e] = 1;
      }
    }
    const logits = this.learner.actionLogits(batch.obs, this.latents, E, A, this.head);
    const extra = Float32Array.from(this.latents);
    for (let r = 0; r < E * A; r++) {
      if (!batch.alive[r]) continue;
      actions[r] = this.mode === 'greedy' ? greedyLegal(logits, batch.masks, r, U) : (sampleLegal(logits, batch.masks, r, U, this.rng)?.action ?? -1);
    }
    return { extras: { latent: extra } };
  }
}

// ---------------------------------------------------------------------------------------------
// The learner
// ---------------------------------------------------------------------------------------------

interface TaskPart {
  task: TaskSpec;
  replay: JointReplay;
  acting: MraPolicy;
  /** Env steps of this task (over its envs), for the update schedule. */
  envSteps: number;
  /** [A, A, A]: places agent i's relation over the others into a row over all agents. */
  pad: tf.Tensor3D;
  /** The arrays every sampled batch of this task is written into (allocated at the first sample). */
  batch?: Batch;
}

/** Places agent i's weights over the others (in index order without i) and a 1 at i into a row over all A agents. */
function relationPadding(A: number): tf.Tensor3D {
  const m = new Float32Array(A * A * A);
  for (let i = 0; i < A; i++) {
    for (let k = 0; k < A - 1; k++) m[i * A * A + k * A + (k < i ? k : k + 1)] = 1;
    m[i * A * A + (A - 1) * A + i] = 1;
  }
  return tf.tensor3d(m, [A, A, A]);
}

export interface MraLearnerOptions {
  tasks: readonly TaskSpec[];
  config: MraConfig;
  seed: number | string;
}

/** A sampled batch of one task in its tensors' layouts. */
interface Batch {
  B: number;
  A: number;
  obs: Float32Array;
  nextObs: Float32Array;
  actions: Int32Array;
  latents: Int32Array;
  rewards: Float32Array;
  notDone: Float32Array;
}

export class MraLearner implements OnlineLearner {
  readonly kind = 'online' as const;
  readonly tasks: readonly TaskSpec[];
  readonly config: MraConfig;
  readonly layout: EntityLayout;
  readonly numActions: number;
  readonly relation: RelationNet;
  readonly policy: PolicyNet;
  readonly targetPolicy: PolicyNet;
  readonly critic: CriticNet;
  readonly targetCritic: CriticNet;
  readonly prior: LatentPrior;
  readonly classifier: GameClassifier;
  private readonly optimizers: { critic: Adam; policy: Adam; relation: Adam; task: Adam };
  private readonly params: { critic: NamedVars; policy: NamedVars; relation: NamedVars; task: NamedVars };
  private readonly parts: TaskPart[];
  private updateRng: Rng;
  private updates = 0;
  private readonly padCache = new Map<number, tf.Tensor3D>();

  constructor(options: MraLearnerOptions) {
    const { tasks, config } = options;
    const seed = String(options.seed);
    this.tasks = tasks;
    this.config = config;
    if (tasks.length === 0) throw new Error('mra: needs at least one task');
    this.layout = entityLayoutOf(tasks[0].shape, tasks[0].env.id);
    this.numActions = tasks[0].shape.numActions;
    for (const t of tasks) {
      const l = entityLayoutOf(t.shape, t.env.id);
      if (l.selfDim !== this.layout.selfDim || l.entityDim !== this.layout.entityDim) {
        throw new Error(`mra: task '${t.key}' has entity blocks ${l.selfDim}/${l.entityDim}, task '${tasks[0].key}' ${this.layout.selfDim}/${this.layout.entityDim}; one network reads all tasks`);
      }
      if (!t.shape.discreteActions || t.shape.numActions !== this.numActions) throw new Error(`mra: task '${t.key}' needs ${this.numActions} discrete actions like task '${tasks[0].key}'`);
      if (this.numActions > 255) throw new Error(`mra: task '${t.key}' has ${this.numActions} actions; the replay stores actions as bytes (at most 255)`);
      if (tasks.some((o) => o !== t && o.shape.numAgents === t.shape.numAgents)) throw new Error(`mra: tasks '${t.key}' and another have the same number of agents (${t.shape.numAgents}); p(z | N) tells games apart only by N`);
    }
    const L = config.num_latents;
    this.relation = new RelationNet(this.layout, L, seed);
    const pair = config.pair_values;
    this.policy = new PolicyNet(this.layout, this.numActions, seed, 'policy', pair);
    this.targetPolicy = new PolicyNet(this.layout, this.numActions, seed, 'policy', pair);
    this.critic = new CriticNet(this.layout, this.numActions, seed, 'critic', pair);
    this.targetCritic = new CriticNet(this.layout, this.numActions, seed, 'critic', pair);
    this.prior = new LatentPrior(L, seed);
    this.classifier = new GameClassifier(this.layout, L, tasks.length, seed, pair);
    this.params = {
      critic: this.critic.namedVariables(),
      policy: this.policy.namedVariables(),
      relation: this.relation.namedVariables(),
      task: { ...prefixed('encode', this.prior.net.namedVariables()), ...prefixed('pred', this.classifier.namedVariables()) },
    };
    this.optimizers = {
      critic: new Adam({ lr: config.q_lr }, this.params.critic),
      policy: new Adam({ lr: config.pi_lr }, this.params.policy),
      relation: new Adam({ lr: config.pi_lr }, this.params.relation),
      task: new Adam({ lr: config.q_lr }, this.params.task),
    };
    this.parts = tasks.map((task) => ({
      task,
      replay: new JointReplay(task.shape.numAgents, task.shape.obsDim, config.buffer_size),
      acting: new MraPolicy(this, task.shape, task.numEnvs, { kind: 'prior' }, new Rng(deriveSeed(seed, 'mra', 'act', task.key)), 'sample'),
      envSteps: 0,
      pad: this.padFor(task.shape.numAgents),
    }));
    this.updateRng = new Rng(deriveSeed(seed, 'mra', 'update'));
  }

  private padFor(A: number): tf.Tensor3D {
    if (!this.padCache.has(A)) this.padCache.set(A, relationPadding(A));
    return this.padCache.get(A)!;
  }

  private part(task: string): TaskPart {
    const p = this.parts.find((x) => x.task.key === task);
    if (!p) throw new Error(`mra: no task '${task}' in this run (tasks: ${this.tasks.map((t) => t.key).join(', ')})`);
    return p;
  }

  // --- acting ----------------------------------------------------------------------------------

  /** log p(z | N) at any N (populations never trained on included). */
  latentLogProbs(numAgents: number): Float32Array {
    return tf.tidy(() => this.prior.logProbs(numAgents).dataSync() as Float32Array).slice();
  }

  /** p(z | N). */
  latentProbs(numAgents: number): number[] {
    return Array.from(this.latentLogProbs(numAgents), Math.exp);
  }

  /** Logits of π(· | o, rel(o, z)) [E·A, |A|] for obs [E, A, D] of any population and each agent's z. */
  actionLogits(obs: Float32Array, latents: Int32Array, E: number, A: number, head?: Linear): Float32Array {
    const D = this.layout.selfDim + (A - 1) * this.layout.entityDim;
    if (obs.length !== E * A * D) throw new Error(`mra: ${E} envs × ${A} agents need observations of ${D} numbers (${E * A * D} in all), got ${obs.length}`);
    return tf.tidy(() => {
      const { self, others } = splitEntities(tf.tensor2d(obs, [E * A, D]), this.layout, A - 1);
      const z = oneHotF(tf.tensor1d(latents, 'int32'), this.config.num_latents) as tf.Tensor2D;
      const rel = this.relation.forward(self, others, z);
      return this.policy.logits(self, others, rel, head).dataSync() as Float32Array;
    });
  }

  /** π(· | o, rel(o, z)) [E·A, |A|] (see `actionLogits`). */
  actionProbs(obs: Float32Array, latents: Int32Array, E: number, A: number, head?: Linear): Float32Array {
    const logits = this.actionLogits(obs, latents, E, A, head);
    return tf.tidy(() => tf.softmax(tf.tensor2d(logits, [E * A, logits.length / (E * A)])).dataSync() as Float32Array);
  }

  /**
   * A policy for `numEnvs` envs of a population of `shape` (trained on or not), its latents per
   * `choice`, greedy unless `sample`; `head` replaces the policy's output layer (an adapter's).
   */
  latentPolicy(shape: EnvShape, numEnvs: number, seed: string, choice: LatentChoice, options: { sample?: boolean; head?: Linear } = {}): MraPolicy {
    entityLayoutOf(shape, 'the env');
    return new MraPolicy(this, shape, numEnvs, choice, new Rng(deriveSeed(seed, 'mra', 'evaluate')), options.sample ? 'sample' : 'greedy', options.head);
  }

  collection(task: string): Collection {
    this.part(task);
    return { mode: 'transition' };
  }

  collectionPolicy(task: string): Policy {
    return this.part(task).acting;
  }

  policyVersion(): number {
    return this.updates;
  }

  evaluationPolicy(task: string, numEnvs: number, seed: string, options: EvaluationOptions = {}): Policy {
    return this.latentPolicy(this.part(task).task.shape, numEnvs, seed, { kind: 'prior' }, { sample: options.sample });
  }

  evaluationPolicyForShape(shape: EnvShape, numEnvs: number, seed: string, options: EvaluationOptions = {}): Policy {
    return this.latentPolicy(shape, numEnvs, seed, { kind: 'prior' }, { sample: options.sample });
  }

  policySpecs(): Record<string, never> {
    // Acting needs the relation net and p(z | N) beside the policy: evaluation rebuilds the
    // learner from its run (`runtime/training/mra-evaluation.ts`), so there is no inference-only spec.
    return {};
  }

  episodesReset(task: string): void {
    this.part(task).acting.reset();
  }

  // --- the stream ------------------------------------------------------------------------------

  observe(item: Experience, _envSteps: number): TrainStats | undefined {
    if (item.kind !== 'transition') throw new Error("mra.observe: expects transitions (collection mode 'transition'), got a chunk");
    const part = this.part(item.task);
    const E = item.layout.numEnvs;
    const A = part.task.shape.numAgents;
    const latents = item.extras.latent;
    if (!latents || latents.length !== E * A) throw new Error(`mra.observe: task '${item.task}': the transition carries no 'latent' extra of ${E} × ${A} (was it collected by the mra collection policy?)`);
    for (let e = 0; e < E; e++) {
      if (item.episodeAborted[e]) continue;
      part.replay.add(item, latents, e);
    }
    const before = part.envSteps;
    part.envSteps += E;
    const { steps_per_update: every, batch_size } = this.config;
    // The reference's test: an update when the task's count passes a multiple of steps_per_update.
    if (part.replay.size < batch_size || Math.floor(part.envSteps / every) === Math.floor(before / every)) return undefined;
    return this.updateRound(part);
  }

  // --- the update --------------------------------------------------------------------------------

  private sample(part: TaskPart, moments = this.config.normalize_rewards ? part.replay.rewardMoments() : undefined): Batch {
    const { replay } = part;
    const B = this.config.batch_size;
    const A = replay.numAgents;
    const W = A * replay.obsDim;
    // Every entry is overwritten below, so one set of arrays per task serves every batch.
    const batch: Batch = (part.batch ??= {
      B,
      A,
      obs: new Float32Array(B * W),
      nextObs: new Float32Array(B * W),
      actions: new Int32Array(B * A),
      latents: new Int32Array(B * A),
      rewards: new Float32Array(B * A),
      notDone: new Float32Array(B * A),
    });
    for (let k = 0; k < B; k++) {
      const row = this.updateRng.int(replay.size);
      batch.obs.set(replay.obs.subarray(row * W, (row + 1) * W), k * W);
      batch.nextObs.set(replay.nextObs.subarray(row * W, (row + 1) * W), k * W);
      for (let i = 0; i < A; i++) {
        const j = row * A + i;
        batch.actions[k * A + i] = replay.actions[j];
        batch.latents[k * A + i] = replay.latents[j];
        const r = replay.rewards[j];
        batch.rewards[k * A + i] = moments ? (r - moments.mean[i]) / (moments.std[i] || 1) : r;
        batch.notDone[k * A + i] = 1 - replay.terminated[j];
      }
    }
    return batch;
  }

  /** Uniform noise → Gumbel noise of `n` numbers from the update RNG. */
  private gumbel(n: number): Float32Array {
    const g = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let u = this.updateRng.next();
      while (u === 0) u = this.updateRng.next();
      g[i] = -Math.log(-Math.log(u));
    }
    return g;
  }

  /** Gradients of `loss` w.r.t. `vars`, plus L2 weight decay, clipped at `maxNorm` when given; one Adam step. */
  private step(optimizer: Adam, vars: NamedVars, loss: () => tf.Scalar, maxNorm?: number): tf.Scalar {
    const names = Object.keys(vars);
    const list = names.map((n) => vars[n]);
    const { value, grads } = tf.variableGrads(loss, list);
    const wd = this.config.weight_decay;
    const named: Record<string, tf.Tensor> = {};
    names.forEach((n, k) => {
      const g = grads[list[k].name];
      named[n] = wd > 0 ? tf.add(g, tf.mul(list[k], wd)) : g;
    });
    let scale: tf.Scalar | undefined;
    if (maxNorm !== undefined) {
      scale = clipByGlobalNorm(Object.values(named), maxNorm).scale;
    }
    optimizer.apply(named, scale);
    return value;
  }

  /** One round on `part`'s replay: critic/policy steps, the MI step, target copies, the classifier step. */
  updateRound(part: TaskPart): TrainStats {
    const cfg = this.config;
    const A = part.task.shape.numAgents;
    const D = part.task.shape.obsDim;
    const U = this.numActions;
    const L = cfg.num_latents;
    const all: TrainStats[] = [];
    let last: Batch | undefined;
    // The replay does not change during a round: its reward moments are computed once.
    const moments = cfg.normalize_rewards ? part.replay.rewardMoments() : undefined;
    for (let u = 0; u < cfg.num_updates; u++) {
      const b = this.sample(part, moments);
      last = b;
      const BA = b.B * A;
      const noiseNext = this.gumbel(BA * U);
      const noiseNow = this.gumbel(BA * U);
      const values = tf.tidy(() => {
        const obs = splitEntities(tf.tensor2d(b.obs, [BA, D]), this.layout, A - 1);
        const next = splitEntities(tf.tensor2d(b.nextObs, [BA, D]), this.layout, A - 1);
        const z = oneHotF(tf.tensor1d(b.latents, 'int32'), L) as tf.Tensor2D;
        const rel = this.relation.forward(obs.self, obs.others, z);
        const relNext = this.relation.forward(next.self, next.others, z);
        const actions = oneHotF(tf.tensor1d(b.actions, 'int32'), U) as tf.Tensor2D;
        // Soft target from the target networks at a' ~ π'(o').
        const nextLogits = this.targetPolicy.logits(next.self, next.others, relNext);
        const nextLogPi = tf.logSoftmax(nextLogits);
        const nextA = oneHotF(tf.argMax(tf.add(nextLogPi, tf.tensor2d(noiseNext, [BA, U])), 1), U) as tf.Tensor2D;
        const nextLogPa = tf.reshape(tf.sum(tf.mul(nextLogPi, nextA), 1), [b.B, A]);
        const nextQ = this.targetCritic.q(next.self, next.others, nextA, relNext, b.B, A, part.pad);
        const y = tf.sub(tf.add(tf.tensor2d(b.rewards, [b.B, A]), tf.mul(cfg.gamma, tf.mul(nextQ, tf.tensor2d(b.notDone, [b.B, A])))), tf.div(nextLogPa, cfg.reward_scale));
        const ySum = tf.sum(y, 1);
        const qLoss = this.step(
          this.optimizers.critic,
          this.params.critic,
          () => tf.mean(tf.square(tf.sub(tf.sum(this.critic.q(obs.self, obs.others, actions, rel, b.B, A, part.pad), 1), ySum))) as tf.Scalar,
          cfg.grad_clip_per_agent * A,
        );
        // Policy: a ~ π(o) and the critic's Q of it (detached), the reference's soft policy loss.
        const logPi = tf.logSoftmax(this.policy.logits(obs.self, obs.others, rel));
        const curA = oneHotF(tf.argMax(tf.add(logPi, tf.tensor2d(noiseNow, [BA, U])), 1), U) as tf.Tensor2D;
        const qCur = this.critic.q(obs.self, obs.others, curA, rel, b.B, A, part.pad);
        const entropy = tf.neg(tf.mean(tf.sum(tf.mul(tf.exp(logPi), logPi), 1)));
        // The weight log π / reward_scale − Q is a constant of the step (computed before the tape).
        const weight = tf.sub(tf.div(tf.reshape(tf.sum(tf.mul(logPi, curA), 1), [b.B, A]), cfg.reward_scale), qCur);
        const polLoss = this.step(this.optimizers.policy, this.params.policy, () => {
          const lp = tf.reshape(tf.sum(tf.mul(tf.logSoftmax(this.policy.logits(obs.self, obs.others, rel)), curA), 1), [b.B, A]);
          return tf.mean(tf.sum(tf.mul(lp, weight), 1)) as tf.Scalar;
        });
        return tf.stack([qLoss, polLoss, entropy, tf.mean(qCur)]).dataSync();
      });
      all.push({ q_loss: values[0], pol_loss: values[1], entropy: values[2], q_mean: values[3] });
    }
    const stats: TrainStats = { ...meanStats(all)! };
    if (L > 1 && last) {
      stats.mi_estimate = this.informationStep(part, last, true);
    }
    polyakUpdate(this.targetCritic.namedVariables(), this.critic.namedVariables(), 1, 'mra: target critic');
    polyakUpdate(this.targetPolicy.namedVariables(), this.policy.namedVariables(), 1, 'mra: target policy');
    if (L > 1 && last) {
      const c = this.classifierStep(part, last, true);
      stats.classifier_loss = c.loss;
      stats.classifier_accuracy = c.accuracy;
    }
    this.updates++;
    stats.grad_steps = 2 * cfg.num_updates + (L > 1 ? 2 : 0);
    return stats;
  }

  /** Draws one z per agent [A] from p(z | N) with the update RNG (hard Gumbel-max). */
  private drawLatentsFromPrior(logProbs: ArrayLike<number>, A: number): Int32Array {
    const L = logProbs.length;
    const g = this.gumbel(A * L);
    const out = new Int32Array(A);
    for (let i = 0; i < A; i++) {
      let best = -Infinity;
      for (let l = 0; l < L; l++) {
        const v = logProbs[l] + g[i * L + l];
        if (v > best) [best, out[i]] = [v, l];
      }
    }
    return out;
  }

  /**
   * The contrastive I(a; z | o) estimate on batch `b`: a fresh z per agent (shared by the
   * batch's rows, as the reference does) against `resample_num` resampled ones; with `train`,
   * one relation-net step that maximises it. Returns the estimate (nats, mean over rows, summed
   * over agents).
   */
  informationStep(part: TaskPart, b: Batch, train: boolean): number {
    const cfg = this.config;
    const A = b.A;
    const D = part.task.shape.obsDim;
    const U = this.numActions;
    const L = cfg.num_latents;
    const K = cfg.resample_num;
    const BA = b.B * A;
    const logPrior = this.latentLogProbs(A);
    const zNow = this.drawLatentsFromPrior(logPrior, A);
    const zResampled: Int32Array[] = Array.from({ length: K }, () => this.drawLatentsFromPrior(logPrior, A));
    const actNoise = this.gumbel(BA * U);
    const repeat = (zs: Int32Array): Int32Array => {
      const out = new Int32Array(BA);
      for (let k = 0; k < b.B; k++) out.set(zs, k * A);
      return out;
    };
    return tf.tidy(() => {
      const obs = splitEntities(tf.tensor2d(b.obs, [BA, D]), this.layout, A - 1);
      const oneHot = (zs: Int32Array) => oneHotF(tf.tensor1d(repeat(zs), 'int32'), L) as tf.Tensor2D;
      const zT = oneHot(zNow);
      // a* ~ π(· | o, rel(z)) with the current policy: the action whose probability is compared.
      const relNow = this.relation.forward(obs.self, obs.others, zT);
      const target = oneHotF(tf.argMax(tf.add(tf.logSoftmax(this.policy.logits(obs.self, obs.others, relNow)), tf.tensor2d(actNoise, [BA, U])), 1), U);
      const estimate = (): tf.Scalar => {
        const probOf = (z: tf.Tensor2D) => tf.sum(tf.mul(tf.softmax(this.targetPolicy.logits(obs.self, obs.others, this.relation.forward(obs.self, obs.others, z))), target), 1); // [BA]
        const p = probOf(zT);
        const pk = tf.addN(zResampled.map((zs) => probOf(oneHot(zs))));
        const perRow = tf.sub(tf.log(tf.mul(p, K)), tf.log(pk));
        return tf.mean(tf.sum(tf.reshape(perRow, [b.B, A]), 1)) as tf.Scalar;
      };
      if (!train || A < 2) return estimate().dataSync()[0];
      const value = this.step(this.optimizers.relation, this.params.relation, () => tf.neg(estimate()) as tf.Scalar, cfg.grad_clip_per_agent * A);
      return -value.dataSync()[0];
    });
  }

  /**
   * The game classifier on batch `b` of task `part`: cross-entropy with z a straight-through
   * Gumbel sample of p(z | N) (one per agent, shared by the rows); with `train`, one step of
   * p(z | N) and the classifier. Returns the loss and the accuracy (argmax = the task's index).
   */
  classifierStep(part: TaskPart, b: Batch, train: boolean): { loss: number; accuracy: number } {
    const A = b.A;
    const D = part.task.shape.obsDim;
    const L = this.config.num_latents;
    const BA = b.B * A;
    const g = this.gumbel(A * L);
    const label = part.task.index;
    let accuracy = 0;
    // Straight-through Gumbel-softmax (temperature 1): the forward value is the hard one-hot,
    // the gradient the soft sample's. hard − soft is computed outside the tape, as a constant.
    const gumbelSoft = () => tf.softmax(tf.add(tf.reshape(this.prior.logProbs(A), [1, L]), tf.tensor2d(g, [A, L]))) as tf.Tensor2D;
    const lossFn = (): tf.Scalar => {
      const soft = gumbelSoft();
      const zA = tf.add(soft, offset) as tf.Tensor2D;
      const z = tf.tile(zA, [b.B, 1]) as tf.Tensor2D;
      const obs = splitEntities(tf.tensor2d(b.obs, [BA, D]), this.layout, A - 1);
      const rel = this.relation.forward(obs.self, obs.others, z);
      const logits = this.classifier.logits(obs.self, obs.others, rel, z, b.B, A);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.scalar(label, 'int32')), 'float32'));
      accuracy = hits.dataSync()[0] / b.B;
      const labels = oneHotF(tf.fill([b.B], label, 'int32') as tf.Tensor1D, this.tasks.length);
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    };
    const offset = tf.tidy(() => {
      const soft = gumbelSoft();
      return tf.sub(oneHotF(tf.argMax(soft, 1), L), soft);
    });
    try {
      const loss = tf.tidy(() => (train ? this.step(this.optimizers.task, this.params.task, lossFn) : lossFn()).dataSync()[0]);
      return { loss, accuracy };
    } finally {
      offset.dispose();
    }
  }

  /**
   * Evidence that z matters, on a fresh batch of `task`'s replay (no training): the I(a; z | o)
   * estimate and the classifier's accuracy. Undefined when the replay is empty.
   */
  latentEvidence(task: string, batches = 4): { informationEstimate: number; classifierAccuracy: number } | undefined {
    const part = this.part(task);
    if (part.replay.size === 0 || this.config.num_latents < 2) return undefined;
    let info = 0;
    let acc = 0;
    for (let k = 0; k < batches; k++) {
      const b = this.sample(part);
      info += this.informationStep(part, b, false);
      acc += this.classifierStep(part, b, false).accuracy;
    }
    return { informationEstimate: info / batches, classifierAccuracy: acc / batches };
  }

  /**
   * `steps` relation-net steps of the MI objective alone on fresh batches of `task`'s replay
   * (nothing else trains); returns the estimate of each step. For tests and diagnostics.
   */
  informationSteps(task: string, steps: number): number[] {
    const part = this.part(task);
    if (part.replay.size === 0) throw new Error(`mra: task '${task}' has an empty replay`);
    return Array.from({ length: steps }, () => this.informationStep(part, this.sample(part), true));
  }

  /** Replay rows held for `task` (tests and evaluation read it). */
  replaySize(task: string): number {
    return this.part(task).replay.size;
  }

  // --- checkpoints -------------------------------------------------------------------------------

  private models(): Record<string, NamedVars> {
    return {
      relation: this.relation.namedVariables(),
      policy: this.policy.namedVariables(),
      target_policy: this.targetPolicy.namedVariables(),
      critic: this.critic.namedVariables(),
      target_critic: this.targetCritic.namedVariables(),
      task_encode: this.prior.net.namedVariables(),
      task_pred: this.classifier.namedVariables(),
    };
  }

  async captureState(): Promise<LearnerState> {
    const models: Record<string, NamedTensorData> = {};
    for (const [k, vars] of Object.entries(this.models())) models[k] = await captureTensors(vars);
    const optimizers: LearnerState['optimizers'] = {};
    for (const [k, opt] of Object.entries(this.optimizers)) optimizers[k] = await opt.capture();
    const arrays: LearnerState['arrays'] = {};
    const replays: Record<string, { size: number; cursor: number }> = {};
    const rngs: LearnerState['rngs'] = { update: this.updateRng.state() };
    const envSteps: Record<string, number> = {};
    for (const p of this.parts) {
      const r = p.replay.capture();
      Object.assign(arrays, withPrefix(`replay/${p.task.key}/`, r.arrays));
      replays[p.task.key] = r.json;
      rngs[`act/${p.task.key}`] = p.acting.rngState.state();
      envSteps[p.task.key] = p.envSteps;
      const memory = p.acting.memory();
      arrays[`acting/${p.task.key}/latents`] = serializeArray(memory.latents);
      arrays[`acting/${p.task.key}/started`] = serializeArray(memory.started);
    }
    return { models, optimizers, rngs, arrays, json: { algo: 'mra', updates: this.updates, replays, envSteps } };
  }

  async restoreState(state: LearnerState): Promise<void> {
    const who = 'mra.restoreState';
    const { json } = state;
    if (json.algo !== 'mra') throw new Error(`${who}: state was captured by '${String(json.algo)}', not mra`);
    const need = <T>(record: Record<string, T>, key: string, what: string): T => {
      const v = record[key];
      if (v === undefined) throw new Error(`${who}: no ${what} '${key}'`);
      return v;
    };
    const record = (key: string): Record<string, unknown> => {
      const v = json[key];
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${who}: json '${key}' is missing`);
      return v as Record<string, unknown>;
    };
    const updates = json.updates;
    if (typeof updates !== 'number' || !Number.isSafeInteger(updates) || updates < 0) throw new Error(`${who}: json 'updates' is missing or not a count`);
    const replays = record('replays');
    const envSteps = record('envSteps');
    const models = Object.entries(this.models()).map(([k, vars]) => [k, vars, need(state.models, k, 'model')] as const);
    const opts = Object.entries(this.optimizers).map(([k, opt]) => [k, opt, need(state.optimizers, k, 'optimizer')] as const);
    const actRngs = this.parts.map((p) => Rng.fromState(need(state.rngs, `act/${p.task.key}`, 'rng')));
    const memories = this.parts.map((p) => {
      const storedLatents = state.arrays[`acting/${p.task.key}/latents`];
      const storedStarted = state.arrays[`acting/${p.task.key}/started`];
      // Checkpoints written before the acting memory was kept: the policy starts fresh episodes.
      if (storedLatents === undefined && storedStarted === undefined) return { latents: new Int32Array(p.acting.latents.length), started: new Uint8Array(p.task.numEnvs) };
      const latents = deserializeArray(need(state.arrays, `acting/${p.task.key}/latents`, 'array'));
      const started = deserializeArray(need(state.arrays, `acting/${p.task.key}/started`, 'array'));
      if (!(latents instanceof Int32Array) || !(started instanceof Uint8Array)) throw new Error(`${who}: task '${p.task.key}': acting memory arrays have the wrong types`);
      // Checked against the policy now, so nothing changes when they do not fit.
      if (latents.length !== p.acting.latents.length || started.length !== p.task.numEnvs) throw new Error(`${who}: task '${p.task.key}': acting memory holds ${latents.length} latents and ${started.length} env flags, expected ${p.acting.latents.length} and ${p.task.numEnvs}`);
      return { latents, started };
    });
    const updateRng = Rng.fromState(need(state.rngs, 'update', 'rng'));
    // Check every replay before changing anything.
    const replayStates = this.parts.map((p) => {
      const r = replays[p.task.key] as { size?: unknown; cursor?: unknown } | undefined;
      const steps = envSteps[p.task.key];
      if (!r || typeof r.size !== 'number' || typeof r.cursor !== 'number' || typeof steps !== 'number') throw new Error(`${who}: no replay or env-step count for task '${p.task.key}'`);
      const check = new JointReplay(p.replay.numAgents, p.replay.obsDim, p.replay.capacity);
      const arrays = underPrefix(`replay/${p.task.key}/`, state.arrays);
      check.restore(arrays, r.size, r.cursor, `${who}: task '${p.task.key}'`);
      return { check, steps };
    });
    for (const [k, vars, data] of models) {
      try {
        assignTensors(vars, data);
      } catch (err) {
        throw new Error(`${who}: model '${k}': ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    for (const [k, opt, data] of opts) opt.restore(data, `${who}: optimizer '${k}'`);
    this.parts.forEach((p, i) => {
      p.replay = replayStates[i].check;
      p.envSteps = replayStates[i].steps;
      p.acting.resumeRng(actRngs[i]);
      p.acting.restoreMemory(memories[i].latents, memories[i].started, `${who}: task '${p.task.key}'`);
    });
    this.updateRng = updateRng;
    this.updates = updates;
  }

  dispose(): void {
    for (const vars of Object.values(this.models())) for (const v of Object.values(vars)) v.dispose();
    for (const opt of Object.values(this.optimizers)) opt.dispose();
    for (const pad of this.padCache.values()) pad.dispose();
  }

  // --- adaptation (our addition) -----------------------------------------------------------------

  /** An adapter for population size `numAgents` (see `MraAdapter`). */
  createAdapter(numAgents: number, options: MraAdaptationOptions): MraAdapter {
    return new MraAdapter(this, numAgents, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Fast adaptation to an unseen population (our addition; the reference has none)
// ---------------------------------------------------------------------------------------------

export type AdaptableParameter = 'latent_logits' | 'policy_head';

export interface MraAdaptationOptions {
  params: readonly AdaptableParameter[];
  /** Step size of the plain (first-order) gradient ascent. */
  lr: number;
}

/** One adaptation episode as played: every agent's z, the team return, and (for the head) the steps. */
export interface AdaptationEpisode {
  /** [A] */
  latents: Int32Array;
  teamReturn: number;
  /** [T, A, D] and [T, A]: what the policy saw and did (needed only when adapting the head). */
  obs?: Float32Array;
  actions?: Int32Array;
  steps?: number;
}

/**
 * Starts from p(z | N) at the new N (its log-probabilities become free logits) and the learned
 * output layer (copied), and takes REINFORCE steps on the team return, standardised over the
 * batch (Â_e = (R_e − R̄) / std R): logits += lr · mean_{e,i} (onehot(z_ei) − softmax(logits)) Â_e,
 * and, with `policy_head`, head += lr · ∇ mean_{e,t,i} log π(a_ti | o_ti) Â_e. Nothing of the
 * learner changes; only what `params` names moves.
 */
export class MraAdapter {
  readonly logits: Float32Array;
  readonly head: Linear;
  readonly numAgents: number;
  private readonly scope: string;
  constructor(
    private readonly learner: MraLearner,
    numAgents: number,
    readonly options: MraAdaptationOptions,
  ) {
    for (const p of options.params) if (p !== 'latent_logits' && p !== 'policy_head') throw new Error(`mra adaptation: unknown parameter '${String(p)}' (latent_logits, policy_head)`);
    if (!(options.lr > 0) || !Number.isFinite(options.lr)) throw new Error(`mra adaptation: lr must be a positive number, got ${options.lr}`);
    this.numAgents = numAgents;
    this.logits = learner.latentLogProbs(numAgents);
    this.scope = uniqueScope('mra-adapter');
    this.head = { w: createVariable(learner.policy.out.w.clone(), this.scope, 'out/w'), b: createVariable(learner.policy.out.b.clone(), this.scope, 'out/b') };
  }

  /** The adapted policy for `numEnvs` envs of `shape`: z ~ softmax(logits), the adapted head; sampling unless greedy. */
  policy(shape: EnvShape, numEnvs: number, seed: string, options: { sample: boolean }): MraPolicy {
    if (shape.numAgents !== this.numAgents) throw new Error(`mra adapter: adapts N = ${this.numAgents}, got an env of ${shape.numAgents} agents`);
    return this.learner.latentPolicy(shape, numEnvs, seed, { kind: 'logits', logits: this.logits }, { sample: options.sample, head: this.head });
  }

  /**
   * One policy-gradient step from `episodes`, with advantages Â_e = (R_e − R̄) / std(R) (the
   * batch's team returns standardised, so `lr` does not depend on the reward scale); returns
   * the batch's mean team return.
   */
  update(episodes: readonly AdaptationEpisode[]): { meanReturn: number } {
    if (episodes.length === 0) throw new Error('mra adapter: update needs at least one episode');
    const A = this.numAgents;
    const n = episodes.length;
    const mean = episodes.reduce((s, e) => s + e.teamReturn, 0) / n;
    const std = Math.sqrt(episodes.reduce((s, e) => s + (e.teamReturn - mean) ** 2, 0) / n);
    const advantages = episodes.map((e) => (std > 1e-8 ? (e.teamReturn - mean) / std : 0));
    const { params, lr } = this.options;
    if (params.includes('latent_logits')) {
      const p = softmax(this.logits);
      const grad = new Float64Array(p.length);
      episodes.forEach((e, k) => {
        for (let i = 0; i < A; i++) for (let l = 0; l < p.length; l++) grad[l] += ((e.latents[i] === l ? 1 : 0) - p[l]) * advantages[k];
      });
      for (let l = 0; l < p.length; l++) this.logits[l] += (lr * grad[l]) / (n * A);
    }
    if (params.includes('policy_head')) this.headStep(episodes, advantages);
    return { meanReturn: mean };
  }

  private headStep(episodes: readonly AdaptationEpisode[], advantages: readonly number[]): void {
    const learner = this.learner;
    const A = this.numAgents;
    const layout = learner.layout;
    const D = layout.selfDim + (A - 1) * layout.entityDim;
    const L = learner.config.num_latents;
    const U = learner.numActions;
    tf.tidy(() => {
      const vars = [this.head.w, this.head.b];
      const { grads } = tf.variableGrads(() => {
        const terms: tf.Scalar[] = [];
        for (const [k, e] of episodes.entries()) {
          if (!e.obs || !e.actions || !e.steps) throw new Error('mra adapter: adapting policy_head needs each episode\'s obs, actions and steps');
          const T = e.steps;
          const { self, others } = splitEntities(tf.tensor2d(e.obs, [T * A, D]), layout, A - 1);
          const lat = new Int32Array(T * A);
          for (let t = 0; t < T; t++) lat.set(e.latents, t * A);
          const z = oneHotF(tf.tensor1d(lat, 'int32'), L) as tf.Tensor2D;
          const rel = learner.relation.forward(self, others, z);
          const logPi = tf.logSoftmax(learner.policy.logits(self, others, rel, this.head));
          const taken = oneHotF(tf.tensor1d(e.actions, 'int32'), U);
          terms.push(tf.mul(tf.div(tf.sum(tf.mul(logPi, taken)), T * A), -advantages[k]) as tf.Scalar);
        }
        return tf.div(tf.addN(terms), episodes.length) as tf.Scalar;
      }, vars);
      for (const v of vars) v.assign(tf.sub(v, tf.mul(grads[v.name], this.options.lr)));
    });
  }

  dispose(): void {
    this.head.w.dispose();
    this.head.b.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// The trainer definition
// ---------------------------------------------------------------------------------------------

export const mraTrainer: TrainerDefinition = {
  algorithms: [{ name: 'mra', schema: mraConfigSchema, defaultNumEnvs: 12 }],
  kind: 'online',
  multiTask: true,
  evaluatesRebuilt: true,
  configIssues(raw) {
    const config = raw as MraConfig;
    const issues = [];
    if (config.batch_size > config.buffer_size) {
      issues.push({ key: 'batch_size', message: `${config.batch_size} env steps per batch exceed algo.buffer_size ${config.buffer_size} (each task's replay capacity), so no update would ever run; lower batch_size or raise buffer_size` });
    }
    return issues;
  },
  checkTask(_algo, task) {
    if (!task.shape.discreteActions) throw new Error(`algo 'mra' needs discrete actions, but env '${task.env.id}' has continuous action spaces`);
    entityLayoutOf(task.shape, task.env.id);
  },
  createLearner({ tasks, config, seed }) {
    return new MraLearner({ tasks, config: config as MraConfig, seed });
  },
};
