/**
 * MAPPO / IPPO in one file, CleanRL style: networks, acting, GAE and the PPO update read
 * top to bottom. Hyperparameters keep their EPyMARL names (see `PpoAlgoConfig`).
 *
 *  - Actor (shared parameters across agents): MLP over obs ⊕ agent-id one-hot (when
 *    `obs_agent_id`) → logits; illegal actions get logit −1e10 before softmax.
 *  - Critic: MAPPO sees the global state ⊕ agent id (the concatenated observations of all
 *    agents when the env has no state); IPPO sees the agent's own obs ⊕ agent id.
 *  - Update: GAE(γ, λ) per agent → `epochs` × `num_minibatches` Adam steps on the clipped
 *    surrogate + value loss − entropy bonus, global grad-norm clipped at `max_grad_norm`.
 *
 * Choices worth knowing (CleanRL defaults where EPyMARL has no key):
 *  - tanh MLPs with orthogonal init (gain √2; 0.01 on the policy head, 1 on the value head).
 *  - Advantages are standardised per minibatch.
 *  - Value loss is clipped like the policy (max of plain and clipped squared error around the
 *    collection-time value, with `eps_clip`); `clipValueLoss: false` gives plain MSE. Both
 *    are ½·(V − target)², scaled by `value_loss_coef`.
 *  - `standardise_returns`: the critic predicts returns normalised by a running mean/std of
 *    the return targets (values are de-normalised for GAE), as EPyMARL does.
 *  - `standardise_rewards`: rewards are shifted/scaled by a running mean/std before GAE.
 *  - Dead agents' steps (alive = 0) are dropped from the batch entirely.
 *  - Not yet supported: `use_rnn`/`use_critic_rnn` (MLP only), `obs_last_action`,
 *    continuous actions. `q_nstep`, `batch_size` and `target_update_interval_or_tau` are
 *    EPyMARL runner/target settings this trainer does not use (GAE replaces n-step targets).
 */
import * as tf from '@tensorflow/tfjs';
import type { Policy, PolicyBatch, PolicyOutput, TrajectoryChunk } from '../runtime/experience';
import { Rng, deriveSeed, seedToInt } from '../runtime/rng';
import type { PpoAlgoConfig } from '../runtime/run-config';
import type { VectorLayout } from '../runtime/vector-layout';

/** The config keys this trainer reads. */
export type MappoHyperparams = Pick<
  PpoAlgoConfig,
  | 'name'
  | 'lr'
  | 'gamma'
  | 'gae_lambda'
  | 'eps_clip'
  | 'epochs'
  | 'num_minibatches'
  | 'entropy_coef'
  | 'value_loss_coef'
  | 'max_grad_norm'
  | 'hidden_dim'
  | 'obs_agent_id'
  | 'standardise_returns'
  | 'standardise_rewards'
>;

export interface MappoOptions {
  layout: VectorLayout;
  config: MappoHyperparams;
  seed: number | string;
  /** Clipped value loss (default) or plain MSE. */
  clipValueLoss?: boolean;
}

export interface UpdateStats {
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  approxKl: number;
  clipFrac: number;
}

const MASKED_LOGIT = -1e10;

// ---------------------------------------------------------------------------------------------
// Networks
// ---------------------------------------------------------------------------------------------

interface Dense {
  w: tf.Variable;
  b: tf.Variable;
}

/** tfjs variable names are global: each network instance gets its own prefix. */
let instanceCounter = 0;

function dense(inDim: number, outDim: number, gain: number, seed: number, name: string): Dense {
  const init = tf.initializers.orthogonal({ gain, seed });
  const w0 = tf.tidy(() => init.apply([inDim, outDim], 'float32'));
  const w = tf.variable(w0, true, `${name}/w`);
  w0.dispose();
  return { w, b: tf.variable(tf.zeros([outDim]), true, `${name}/b`) };
}

/** tanh MLP: in → hidden → hidden → out. */
class Mlp {
  readonly layers: Dense[];

  constructor(inDim: number, hidden: number, outDim: number, outGain: number, seed: string, name: string, prefix: string) {
    // Seeds depend on the network's role only, never on the instance prefix.
    const s = (i: number) => seedToInt(deriveSeed(seed, name, i));
    this.layers = [
      dense(inDim, hidden, Math.SQRT2, s(0), `${prefix}/${name}/0`),
      dense(hidden, hidden, Math.SQRT2, s(1), `${prefix}/${name}/1`),
      dense(hidden, outDim, outGain, s(2), `${prefix}/${name}/2`),
    ];
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    let h = x;
    this.layers.forEach((l, i) => {
      h = tf.add(tf.matMul(h, l.w), l.b);
      if (i < this.layers.length - 1) h = tf.tanh(h);
    });
    return h;
  }

  variables(): tf.Variable[] {
    return this.layers.flatMap((l) => [l.w, l.b]);
  }

  dispose(): void {
    for (const v of this.variables()) v.dispose();
  }
}

/** Running mean/variance (parallel-variance merge), in float64 on the JS side. */
export class RunningMeanStd {
  mean = 0;
  var = 1;
  count = 1e-4;

  update(xs: ArrayLike<number>, n = xs.length): void {
    if (n === 0) return;
    let m = 0;
    for (let i = 0; i < n; i++) m += xs[i];
    m /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (xs[i] - m) ** 2;
    v /= n;
    const delta = m - this.mean;
    const tot = this.count + n;
    this.mean += (delta * n) / tot;
    this.var = (this.var * this.count + v * n + (delta * delta * this.count * n) / tot) / tot;
    this.count = tot;
  }

  get std(): number {
    return Math.sqrt(this.var + 1e-8);
  }
}

// ---------------------------------------------------------------------------------------------
// GAE
// ---------------------------------------------------------------------------------------------

export interface GaeInput {
  T: number;
  E: number;
  A: number;
  gamma: number;
  lambda: number;
  /** [T, E, A] */
  rewards: ArrayLike<number>;
  /** V(s_t), [T, E, A] */
  values: ArrayLike<number>;
  /**
   * Value of the observation after row t, [T, E, A]: V(s_{t+1}), the bootstrap value for the
   * last row, or the value of the episode's final observation where the episode ended at t.
   * Ignored where the agent terminated.
   */
  nextValues: ArrayLike<number>;
  /** [T, E, A] */
  terminated: ArrayLike<number>;
  /** [T, E, A] */
  truncated: ArrayLike<number>;
  /** [T, E]: the env's episode ended at t (so the recursion must not continue into t+1). */
  episodeDone: ArrayLike<number>;
  /** [T, E, A]: dead agents' rows get advantage 0 and break the recursion. */
  alive: ArrayLike<number>;
}

/**
 * Generalised advantage estimation per (env, agent), backwards in time.
 * Termination: δ = r − V(s). Truncation (or an episode end without termination): δ = r +
 * γ·V(final obs) − V(s), and the recursion stops there. Otherwise δ = r + γ·V(s') − V(s)
 * and A_t = δ + γλ·A_{t+1}. Returns = advantages + values.
 */
export function computeGae(input: GaeInput): { advantages: Float32Array; returns: Float32Array } {
  const { T, E, A, gamma, lambda } = input;
  const advantages = new Float32Array(T * E * A);
  const returns = new Float32Array(T * E * A);
  for (let e = 0; e < E; e++) {
    for (let a = 0; a < A; a++) {
      let nextAdv = 0;
      for (let t = T - 1; t >= 0; t--) {
        const i = (t * E + e) * A + a;
        if (!input.alive[i]) {
          nextAdv = 0;
          continue;
        }
        const term = input.terminated[i] === 1;
        const cut = term || input.truncated[i] === 1 || input.episodeDone[t * E + e] === 1;
        const nextV = term ? 0 : input.nextValues[i];
        const delta = input.rewards[i] + gamma * nextV - input.values[i];
        const adv = delta + (cut ? 0 : gamma * lambda * nextAdv);
        advantages[i] = adv;
        returns[i] = adv + input.values[i];
        nextAdv = adv;
      }
    }
  }
  return { advantages, returns };
}

// ---------------------------------------------------------------------------------------------
// The trainer (and its Policy)
// ---------------------------------------------------------------------------------------------

export class Mappo implements Policy {
  readonly layout: VectorLayout;
  readonly config: MappoHyperparams;
  readonly actor: Mlp;
  readonly critic: Mlp;
  readonly optimizer: tf.AdamOptimizer;
  readonly actorInDim: number;
  readonly criticInDim: number;
  readonly returnStats = new RunningMeanStd();
  readonly rewardStats = new RunningMeanStd();
  private readonly clipValueLoss: boolean;
  private readonly actRng: Rng;
  private readonly batchRng: Rng;

  constructor(options: MappoOptions) {
    const { layout, config, seed } = options;
    if (!layout.discreteActions) throw new Error('mappo: only discrete action spaces are supported');
    this.layout = layout;
    this.config = config;
    this.clipValueLoss = options.clipValueLoss ?? true;
    const { numAgents: A, obsDim, stateDim, numActions } = layout;
    const idDim = config.obs_agent_id ? A : 0;
    this.actorInDim = obsDim + idDim;
    this.criticInDim = (config.name === 'ippo' ? obsDim : stateDim > 0 ? stateDim : A * obsDim) + idDim;
    const netSeed = deriveSeed(seed, 'mappo', 'init');
    const id = instanceCounter++;
    this.actor = new Mlp(this.actorInDim, config.hidden_dim, numActions, 0.01, netSeed, 'actor', `mappo${id}`);
    this.critic = new Mlp(this.criticInDim, config.hidden_dim, 1, 1, netSeed, 'critic', `mappo${id}`);
    this.optimizer = tf.train.adam(config.lr, 0.9, 0.999, 1e-5);
    this.actRng = new Rng(deriveSeed(seed, 'mappo', 'act'));
    this.batchRng = new Rng(deriveSeed(seed, 'mappo', 'minibatch'));
  }

  // --- inputs ---------------------------------------------------------------------------------

  /** Actor rows [n·A, actorInDim] for n envs' obs [n, A, obsDim]. */
  private actorInputs(obs: Float32Array, n: number): Float32Array {
    const { numAgents: A, obsDim } = this.layout;
    const D = this.actorInDim;
    const out = new Float32Array(n * A * D);
    for (let r = 0; r < n * A; r++) {
      out.set(obs.subarray(r * obsDim, (r + 1) * obsDim), r * D);
      if (this.config.obs_agent_id) out[r * D + obsDim + (r % A)] = 1;
    }
    return out;
  }

  /** Critic rows [n·A, criticInDim] for n envs' obs [n, A, obsDim] and state [n, stateDim]. */
  private criticInputs(obs: Float32Array, state: Float32Array, n: number): Float32Array {
    const { numAgents: A, obsDim, stateDim } = this.layout;
    const D = this.criticInDim;
    const out = new Float32Array(n * A * D);
    const ippo = this.config.name === 'ippo';
    const baseDim = ippo ? obsDim : stateDim > 0 ? stateDim : A * obsDim;
    for (let r = 0; r < n * A; r++) {
      const e = Math.floor(r / A);
      if (ippo) out.set(obs.subarray(r * obsDim, (r + 1) * obsDim), r * D);
      else if (stateDim > 0) out.set(state.subarray(e * stateDim, (e + 1) * stateDim), r * D);
      else out.set(obs.subarray(e * A * obsDim, (e + 1) * A * obsDim), r * D);
      if (this.config.obs_agent_id) out[r * D + baseDim + (r % A)] = 1;
    }
    return out;
  }

  private maskedLogits(x: tf.Tensor2D, masks: tf.Tensor2D): tf.Tensor2D {
    return tf.where(tf.cast(masks, 'bool'), this.actor.apply(x), tf.fill(masks.shape, MASKED_LOGIT));
  }

  /** Critic outputs (normalised if `standardise_returns`) for n envs' obs/state, [n·A]. */
  private criticValues(obs: Float32Array, state: Float32Array, n: number): Float32Array {
    const input = this.criticInputs(obs, state, n);
    return tf.tidy(() => this.critic.apply(tf.tensor2d(input, [n * this.layout.numAgents, this.criticInDim])).dataSync() as Float32Array).slice();
  }

  private denormalise(v: number): number {
    return this.config.standardise_returns ? v * this.returnStats.std + this.returnStats.mean : v;
  }

  // --- acting (Policy) ------------------------------------------------------------------------

  /** Samples from the masked categorical with our Rng; extras `logp` and `value`, each [E, A]. */
  act(batch: PolicyBatch, actions: Float32Array): PolicyOutput {
    const { numEnvs: E, numAgents: A, numActions: K, actDim } = this.layout;
    const N = E * A;
    const actorIn = this.actorInputs(batch.obs, E);
    const { logits, values } = tf.tidy(() => {
      const l = this.maskedLogits(tf.tensor2d(actorIn, [N, this.actorInDim]), tf.tensor2d(batch.masks, [N, K], 'int32'));
      const v = this.critic.apply(tf.tensor2d(this.criticInputs(batch.obs, batch.state, E), [N, this.criticInDim]));
      return { logits: l.dataSync().slice() as Float32Array, values: v.dataSync().slice() as Float32Array };
    });
    const logp = new Float32Array(N);
    for (let i = 0; i < N; i++) {
      actions[i * actDim] = 0;
      if (!batch.alive[i]) continue;
      let max = -Infinity;
      for (let k = 0; k < K; k++) if (batch.masks[i * K + k]) max = Math.max(max, logits[i * K + k]);
      if (max === -Infinity) continue; // no legal action: an env bug the checker reports
      let z = 0;
      for (let k = 0; k < K; k++) if (batch.masks[i * K + k]) z += Math.exp(logits[i * K + k] - max);
      let u = this.actRng.next() * z;
      let pick = -1;
      for (let k = 0; k < K; k++) {
        if (!batch.masks[i * K + k]) continue;
        pick = k;
        u -= Math.exp(logits[i * K + k] - max);
        if (u < 0) break;
      }
      actions[i * actDim] = pick;
      logp[i] = logits[i * K + pick] - max - Math.log(z);
    }
    return { extras: { logp, value: values } };
  }

  // --- update ---------------------------------------------------------------------------------

  update(chunk: TrajectoryChunk): UpdateStats {
    const cfg = this.config;
    const { numEnvs: E, numAgents: A, numActions: K, actDim } = this.layout;
    const T = chunk.length;
    const N = T * E * A;
    const oldValues = chunk.extras.value;
    const oldLogp = chunk.extras.logp;
    if (!oldValues || !oldLogp) throw new Error('mappo.update: chunk lacks the `value`/`logp` extras (collect it with this trainer as the policy)');

    // 1. Rewards (optionally standardised) and values of the observations that follow each row.
    let rewards: Float32Array = chunk.rewards;
    if (cfg.standardise_rewards) {
      this.rewardStats.update(chunk.rewards);
      const { mean, std } = this.rewardStats;
      rewards = chunk.rewards.map((r) => (r - mean) / std);
    }
    const values = oldValues.map((v) => this.denormalise(v));
    const bootValues = this.criticValues(chunk.bootstrap.obs, chunk.bootstrap.state, E);
    const nextValues = new Float32Array(N);
    for (let t = 0; t < T; t++) {
      for (let e = 0; e < E; e++) {
        for (let a = 0; a < A; a++) {
          const i = (t * E + e) * A + a;
          nextValues[i] = this.denormalise(t + 1 < T ? oldValues[i + E * A] : bootValues[e * A + a]);
        }
      }
    }
    for (const f of chunk.finals) {
      const fv = this.criticValues(f.obs, f.state, 1);
      for (let a = 0; a < A; a++) nextValues[(f.t * E + f.env) * A + a] = this.denormalise(fv[a]);
    }

    // 2. GAE, then value targets (normalised by the running return stats when asked).
    const { advantages, returns } = computeGae({
      T, E, A, gamma: cfg.gamma, lambda: cfg.gae_lambda, rewards, values, nextValues,
      terminated: chunk.terminated, truncated: chunk.truncated, episodeDone: chunk.episodeDone, alive: chunk.alive,
    });
    const rows: number[] = [];
    for (let i = 0; i < N; i++) if (chunk.alive[i]) rows.push(i);
    const M = rows.length;
    const zero: UpdateStats = { policyLoss: 0, valueLoss: 0, entropy: 0, approxKl: 0, clipFrac: 0 };
    if (M === 0) return zero;
    if (cfg.standardise_returns) this.returnStats.update(rows.map((i) => returns[i]));
    const norm = (x: number) => (cfg.standardise_returns ? (x - this.returnStats.mean) / this.returnStats.std : x);

    // 3. Flatten the live rows.
    const actorIn = this.actorInputs(chunk.obs, T * E);
    const criticIn = this.criticInputs(chunk.obs, chunk.state, T * E);
    const pick = (src: Float32Array, d: number) => {
      const out = new Float32Array(M * d);
      rows.forEach((i, r) => out.set(src.subarray(i * d, (i + 1) * d), r * d));
      return out;
    };
    const masksF = new Float32Array(M * K);
    const actionsI = new Int32Array(M);
    const b = {
      logp: new Float32Array(M),
      value: new Float32Array(M),
      adv: new Float32Array(M),
      ret: new Float32Array(M),
    };
    rows.forEach((i, r) => {
      for (let k = 0; k < K; k++) masksF[r * K + k] = chunk.masks[i * K + k];
      actionsI[r] = chunk.actions[i * actDim];
      b.logp[r] = oldLogp[i];
      b.value[r] = oldValues[i];
      b.adv[r] = advantages[i];
      b.ret[r] = norm(returns[i]);
    });
    const data = {
      actorIn: tf.tensor2d(pick(actorIn, this.actorInDim), [M, this.actorInDim]),
      criticIn: tf.tensor2d(pick(criticIn, this.criticInDim), [M, this.criticInDim]),
      masks: tf.tensor2d(masksF, [M, K]),
      actions: tf.tensor1d(actionsI, 'int32'),
      logp: tf.tensor1d(b.logp),
      value: tf.tensor1d(b.value),
      adv: tf.tensor1d(b.adv),
      ret: tf.tensor1d(b.ret),
    };

    // 4. epochs × num_minibatches clipped-PPO steps.
    const vars = [...this.actor.variables(), ...this.critic.variables()];
    const sums = { ...zero };
    let steps = 0;
    const order = Array.from({ length: M }, (_, r) => r);
    const mbCount = Math.min(cfg.num_minibatches, M);
    try {
      for (let epoch = 0; epoch < cfg.epochs; epoch++) {
        this.batchRng.shuffle(order);
        for (let mb = 0; mb < mbCount; mb++) {
          const idx = order.slice(Math.floor((mb * M) / mbCount), Math.floor(((mb + 1) * M) / mbCount));
          const stats = tf.tidy(() => {
            const ix = tf.tensor1d(idx, 'int32');
            const g = <R extends tf.Rank>(x: tf.Tensor<R>) => tf.gather(x, ix);
            const mbAdvRaw = g(data.adv);
            const { mean, variance } = tf.moments(mbAdvRaw);
            const mbAdv = tf.div(tf.sub(mbAdvRaw, mean), tf.add(tf.sqrt(variance), 1e-8));
            const mbRet = g(data.ret);
            const mbOldV = g(data.value);
            const mbOldLogp = g(data.logp);
            let aux: tf.Scalar[] = [];
            const { value: loss, grads } = tf.variableGrads(() => {
              const logits = this.maskedLogits(g(data.actorIn) as tf.Tensor2D, g(data.masks) as tf.Tensor2D);
              const logProbs = tf.logSoftmax(logits);
              const newLogp = tf.sum(tf.mul(logProbs, tf.oneHot(g(data.actions), K)), 1);
              const logRatio = tf.sub(newLogp, mbOldLogp);
              const ratio = tf.exp(logRatio);
              const pg1 = tf.mul(tf.neg(mbAdv), ratio);
              const pg2 = tf.mul(tf.neg(mbAdv), tf.clipByValue(ratio, 1 - cfg.eps_clip, 1 + cfg.eps_clip));
              const policyLoss = tf.mean(tf.maximum(pg1, pg2));
              // Masked entries have probability exactly 0; mask them out so 0·(−1e10) stays 0.
              const entropy = tf.mean(tf.neg(tf.sum(tf.mul(tf.mul(tf.exp(logProbs), logProbs), g(data.masks)), 1)));
              const v = tf.reshape(this.critic.apply(g(data.criticIn) as tf.Tensor2D), [-1]);
              let vLossPerRow = tf.square(tf.sub(v, mbRet));
              if (this.clipValueLoss) {
                const vClipped = tf.add(mbOldV, tf.clipByValue(tf.sub(v, mbOldV), -cfg.eps_clip, cfg.eps_clip));
                vLossPerRow = tf.maximum(vLossPerRow, tf.square(tf.sub(vClipped, mbRet)));
              }
              const valueLoss = tf.mul(0.5, tf.mean(vLossPerRow));
              const approxKl = tf.mean(tf.sub(tf.sub(ratio, 1), logRatio));
              const clipFrac = tf.mean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), cfg.eps_clip), 'float32'));
              aux = [policyLoss, valueLoss, entropy, approxKl, clipFrac].map((s) => tf.keep(s as tf.Scalar));
              return tf.sub(tf.add(policyLoss, tf.mul(cfg.value_loss_coef, valueLoss)), tf.mul(cfg.entropy_coef, entropy)) as tf.Scalar;
            }, vars);
            loss.dispose();
            // Global gradient-norm clipping.
            const names = Object.keys(grads);
            const gnorm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n])))));
            const scale = tf.minimum(1, tf.div(cfg.max_grad_norm, tf.add(gnorm, 1e-6)));
            const clipped: Array<{ name: string; tensor: tf.Tensor }> = names.map((name) => ({ name, tensor: tf.mul(grads[name], scale) }));
            this.optimizer.applyGradients(clipped);
            const out = tf.stack(aux);
            for (const x of aux) x.dispose();
            return out;
          });
          const s = stats.dataSync();
          stats.dispose();
          sums.policyLoss += s[0];
          sums.valueLoss += s[1];
          sums.entropy += s[2];
          sums.approxKl += s[3];
          sums.clipFrac += s[4];
          steps++;
        }
      }
    } finally {
      for (const t of Object.values(data)) t.dispose();
    }
    return {
      policyLoss: sums.policyLoss / steps,
      valueLoss: sums.valueLoss / steps,
      entropy: sums.entropy / steps,
      approxKl: sums.approxKl / steps,
      clipFrac: sums.clipFrac / steps,
    };
  }

  dispose(): void {
    this.actor.dispose();
    this.critic.dispose();
    this.optimizer.dispose();
  }
}
