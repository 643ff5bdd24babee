import * as tf from '@tensorflow/tfjs';
import type { EnvShape } from '../../envs/env-shape';
import type { Rng } from '../../runtime/core/rng';
import type { AgentNetwork } from '../networks/agent-network';
import { epsilonGreedyLegal, greedyLegal, sampleLegal } from './action-selection';
import { type AgentInputSpec, NO_ACTION, agentInputs } from './agent-inputs';
import { clipInto, sampleGaussianRow } from './gaussian';
import type { Policy, PolicyBatch } from './policy';

/**
 * An EPyMARL agent network acting for E envs × A agents: it remembers a recurrent state and the
 * last action per (env, agent), clears both where an episode starts, builds each agent's input
 * (obs ⊕ last-action one-hot ⊕ agent id) and runs all E·A rows in one batch. The memory lives
 * in typed arrays sized for `numEnvs`, so the actor owns no tensors.
 */
export class AgentActor {
  /** [E·A·H] GRU state (empty for a feed-forward network). */
  hidden: Float32Array;
  /** [E·A] the previous action, or NO_ACTION at an episode's start. */
  readonly lastAction: Int32Array;

  constructor(
    readonly net: AgentNetwork,
    readonly inputs: AgentInputSpec,
    readonly shape: EnvShape,
    readonly numEnvs: number,
  ) {
    const rows = numEnvs * shape.numAgents;
    this.hidden = new Float32Array(net.recurrent ? rows * net.spec.hiddenDim : 0);
    this.lastAction = new Int32Array(rows).fill(NO_ACTION);
  }

  /** Throws unless `batch` is E envs of this actor's agents. */
  checkBatch(batch: PolicyBatch, who: string): void {
    const n = this.numEnvs * this.shape.numAgents;
    if (batch.alive.length !== n || batch.episodeStart.length !== this.numEnvs) {
      throw new Error(`${who}: policy batch has ${batch.alive.length} agent slots and ${batch.episodeStart.length} envs, expected ${n} and ${this.numEnvs}`);
    }
  }

  /**
   * One network step for all E·A slots: clears the memory of envs whose episode starts, returns
   * the outputs [E·A, outputDim] and what the memory was before the step (hidden state and
   * last actions, as the update replays them), and advances the hidden state.
   */
  forward(batch: PolicyBatch): { out: Float32Array; hPrev: Float32Array; lastPrev: Float32Array } {
    const A = this.shape.numAgents;
    const E = this.numEnvs;
    const H = this.net.spec.hiddenDim;
    const N = E * A;
    const recurrent = this.net.recurrent;
    for (let e = 0; e < E; e++) {
      if (!batch.episodeStart[e]) continue;
      this.hidden.fill(0, e * A * H, (e + 1) * A * H);
      this.lastAction.fill(NO_ACTION, e * A, (e + 1) * A);
    }
    const hPrev = this.hidden;
    const lastPrev = Float32Array.from(this.lastAction);
    const input = agentInputs(this.inputs, batch.obs, this.lastAction, E, A);
    const width = input.length / N;
    const { out, hNext } = tf.tidy(() => {
      const h = recurrent ? tf.tensor2d(hPrev, [N, H]) : this.net.initialHidden(N);
      const step = this.net.step(tf.tensor2d(input, [N, width]), h);
      return { out: step.out.dataSync().slice() as Float32Array, hNext: recurrent ? (step.h.dataSync().slice() as Float32Array) : hPrev };
    });
    if (out.length !== N * this.net.spec.outputDim) throw new Error('AgentActor: network output has the wrong size');
    this.hidden = hNext;
    return { out, hPrev, lastPrev };
  }

  /** Remembers the chosen discrete actions as next step's last actions (none for dead agents). */
  recordActions(batch: PolicyBatch, actions: Float32Array): void {
    const actDim = this.shape.actDim;
    for (let i = 0; i < this.lastAction.length; i++) this.lastAction[i] = batch.alive[i] ? actions[i * actDim] : NO_ACTION;
  }

  /** Forgets everything (all envs start new episodes). */
  reset(): void {
    this.hidden.fill(0);
    this.lastAction.fill(NO_ACTION);
  }
}

/** What the network's outputs mean. */
export type AgentNetworkHead =
  /** Logits of a categorical policy over the legal actions (MAPPO/IPPO). */
  | 'categorical'
  /** Q-values, acted on greedily or ε-greedily (QMIX/VDN/IQL). */
  | 'q-values'
  /** Means of a diagonal Gaussian over Box actions, with a learned state-independent log-std (continuous PPO). */
  | 'gaussian';

/**
 * How a policy picks actions: the best one (argmax of the legal actions; the mean of a
 * Gaussian), a draw from the policy's distribution, or ε-greedy over Q-values.
 */
export type ActingMode = { kind: 'greedy' } | { kind: 'sample'; rng: Rng } | { kind: 'epsilon-greedy'; epsilon: () => number; rng: Rng };

/** Clips slot i's D numbers of `raw` into its agent's Box bounds, written to `actions`. */
export class ActionClipper {
  private readonly low: Float32Array[];
  private readonly high: Float32Array[];

  constructor(private readonly shape: EnvShape) {
    const { numAgents: A, actDim: D, actionLow: low, actionHigh: high } = shape;
    if (!low || !high || low.length !== A * D || high.length !== A * D) {
      throw new Error(`continuous actions must come from Box action spaces (shape.actionLow/actionHigh of ${A}·${D} bounds)`);
    }
    const perAgent = (b: number[]) => Array.from({ length: A }, (_, a) => Float32Array.from(b.slice(a * D, (a + 1) * D)));
    this.low = perAgent(low);
    this.high = perAgent(high);
  }

  clip(raw: Float32Array, i: number, actions: Float32Array): void {
    const D = this.shape.actDim;
    const a = i % this.shape.numAgents;
    clipInto(raw, i * D, actions, i * D, this.low[a], this.high[a], D);
  }
}

/** The log-std rows of a Gaussian head, [copies][actDim] (one set, or one per agent slot). */
export function logStdRows(logStd: tf.Variable, actDim: number): Float32Array[] {
  const all = logStd.dataSync();
  return Array.from({ length: all.length / actDim }, (_, c) => all.slice(c * actDim, (c + 1) * actDim) as Float32Array);
}

/**
 * A policy from an agent network, with memory of its own for `numEnvs` envs: categorical
 * (greedy: argmax over legal actions, ties to the lowest index, EPyMARL's `test_greedy`; or
 * sampled), Q-values (greedy or ε-greedy) or Gaussian (the clipped mean, or a clipped draw).
 * What evaluation, `loadPolicy` and a browser act with.
 */
export class AgentNetworkPolicy implements Policy {
  readonly actor: AgentActor;
  private readonly clipper?: ActionClipper;

  constructor(
    net: AgentNetwork,
    inputs: AgentInputSpec,
    readonly shape: EnvShape,
    numEnvs: number,
    private readonly head: AgentNetworkHead,
    private readonly mode: ActingMode,
    /** The Gaussian head's log-std [copies, actDim]. */
    private readonly logStd?: tf.Variable,
  ) {
    this.actor = new AgentActor(net, inputs, shape, numEnvs);
    if (head === 'gaussian') {
      if (!logStd) throw new Error('AgentNetworkPolicy: a gaussian head needs its log-std');
      this.clipper = new ActionClipper(shape);
    } else if (!shape.discreteActions) {
      throw new Error(`AgentNetworkPolicy: a ${head} head needs discrete actions`);
    }
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    this.actor.checkBatch(batch, 'agent-network policy');
    const { out } = this.actor.forward(batch);
    const { numActions: K, actDim: D } = this.shape;
    const N = batch.alive.length;
    const mode = this.mode;
    if (this.head === 'gaussian') {
      const logStd = logStdRows(this.logStd!, D);
      const raw = mode.kind === 'sample' ? new Float32Array(out.length) : out;
      for (let i = 0; i < N; i++) {
        actions.fill(0, i * D, (i + 1) * D);
        if (!batch.alive[i]) continue;
        if (mode.kind === 'sample') sampleGaussianRow(out, logStd[i % logStd.length], i, D, mode.rng, raw);
        this.clipper!.clip(raw, i, actions);
      }
      return;
    }
    for (let i = 0; i < N; i++) {
      actions[i * D] = 0;
      if (!batch.alive[i]) continue;
      let pick: number;
      if (mode.kind === 'sample' && this.head === 'categorical') pick = sampleLegal(out, batch.masks, i, K, mode.rng)?.action ?? 0;
      else if (mode.kind === 'epsilon-greedy') pick = epsilonGreedyLegal(out, batch.masks, i, K, mode.epsilon(), mode.rng);
      else pick = greedyLegal(out, batch.masks, i, K);
      // A live agent without legal actions is an env bug the checker reports; 0 keeps the rollout going.
      if (pick >= 0) actions[i * D] = pick;
    }
    this.actor.recordActions(batch, actions);
  }
}
