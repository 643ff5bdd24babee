import * as tf from '@tensorflow/tfjs';
import type { EnvShape } from '../../envs/env-shape';
import type { DecisionNetwork, PerceptionNetwork } from '../networks/action-conditioned';
import { epsilonGreedyLegal, greedyLegal } from './action-selection';
import type { ActingMode } from './agent-network-policy';
import { type AgentInputSpec, NO_ACTION, agentInputs } from './agent-inputs';
import type { Policy, PolicyBatch } from './policy';

/**
 * MTMA's acting (`trainers/mtma.ts`): a task's perception layers and the shared decision network
 * score every candidate action of each (env, agent) slot, and the slot acts greedily or
 * ε-greedily over its legal candidates. The slot keeps only the chosen candidate's hidden state
 * for the next step (the reference's `hidden_index`), and its last action. Memory lives in typed
 * arrays sized for `numEnvs`, so the policy owns no tensors.
 */
export class ActionConditionedPolicy implements Policy {
  /** [E·A·H] the chosen candidates' hidden states (empty for feed-forward perception). */
  hidden: Float32Array;
  /** [E·A] the previous action, or NO_ACTION at an episode's start. */
  readonly lastAction: Int32Array;

  constructor(
    readonly perception: PerceptionNetwork,
    readonly decision: DecisionNetwork,
    readonly inputs: AgentInputSpec,
    readonly shape: EnvShape,
    readonly numEnvs: number,
    private readonly mode: ActingMode,
  ) {
    if (!shape.discreteActions) throw new Error('ActionConditionedPolicy: needs discrete actions');
    if (perception.spec.numActions !== shape.numActions) throw new Error(`ActionConditionedPolicy: perception scores ${perception.spec.numActions} candidate actions, the task has ${shape.numActions}`);
    const rows = numEnvs * shape.numAgents;
    this.hidden = new Float32Array(perception.recurrent ? rows * perception.spec.hiddenDim : 0);
    this.lastAction = new Int32Array(rows).fill(NO_ACTION);
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    const { numAgents: A, numActions: K, actDim: D } = this.shape;
    const E = this.numEnvs;
    const N = E * A;
    if (batch.alive.length !== N || batch.episodeStart.length !== E) {
      throw new Error(`action-conditioned policy: batch has ${batch.alive.length} agent slots and ${batch.episodeStart.length} envs, expected ${N} and ${E}`);
    }
    const H = this.perception.spec.hiddenDim;
    const recurrent = this.perception.recurrent;
    for (let e = 0; e < E; e++) {
      if (!batch.episodeStart[e]) continue;
      this.hidden.fill(0, e * A * H, (e + 1) * A * H);
      this.lastAction.fill(NO_ACTION, e * A, (e + 1) * A);
    }
    const input = agentInputs(this.inputs, batch.obs, this.lastAction, E, A);
    const width = input.length / N;
    const { q, next } = tf.tidy(() => {
      const h = recurrent ? tf.tensor2d(this.hidden, [N, H]) : tf.zeros([N, H]);
      const features = this.perception.candidates(tf.tensor2d(input, [N, width]), h as tf.Tensor2D);
      const scores = this.decision.score(features);
      return { q: scores.dataSync().slice() as Float32Array, next: recurrent ? (features.dataSync().slice() as Float32Array) : undefined };
    });
    const mode = this.mode;
    for (let i = 0; i < N; i++) {
      actions[i * D] = 0;
      if (!batch.alive[i]) continue;
      const pick = mode.kind === 'epsilon-greedy' ? epsilonGreedyLegal(q, batch.masks, i, K, mode.epsilon(), mode.rng) : greedyLegal(q, batch.masks, i, K);
      // A live agent without legal actions is an env bug the checker reports; 0 keeps the rollout going.
      if (pick >= 0) actions[i * D] = pick;
    }
    if (next) {
      // The chosen candidate's state carries on (action 0's for dead agents, as the replayed update does).
      for (let i = 0; i < N; i++) {
        const a = actions[i * D];
        this.hidden.set(next.subarray((i * K + a) * H, (i * K + a + 1) * H), i * H);
      }
    }
    for (let i = 0; i < N; i++) this.lastAction[i] = batch.alive[i] ? actions[i * D] : NO_ACTION;
  }

  /** Forgets everything (all envs start new episodes). */
  reset(): void {
    this.hidden.fill(0);
    this.lastAction.fill(NO_ACTION);
  }
}
