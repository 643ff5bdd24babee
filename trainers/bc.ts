/**
 * Behaviour cloning, the simplest offline learner: maximise the likelihood of a dataset's
 * actions under the policy, log π(a | o), over every step where an agent acted, by minibatch
 * Adam steps on uniformly sampled (episode, step, agent) rows. CleanRL style: config, network,
 * sampling and the update read top to bottom.
 *
 *  - Policy: EPyMARL's feed-forward agent network (`AgentNetwork`) over obs ⊕ agent-id one-hot,
 *    shared by all agents (or one per agent with `parameter_sharing: false`). Discrete actions:
 *    a categorical over the legal actions (masked logits), trained by cross-entropy. Box
 *    actions: a diagonal Gaussian with a learned state-independent log-std (as continuous PPO),
 *    trained by Gaussian negative log-likelihood, so it learns the data's spread too.
 *  - Greedy acting takes the argmax (the clipped mean); `eval --sample` draws from the policy.
 *  - One gradient step per loop step: the loop counts gradient steps (`run.total_gradient_steps`)
 *    and evaluates the policy in the task's envs like any other run.
 *
 * Left out: recurrent policies (sampling whole sequences), dataset weighting by return (that is
 * what a filtered BC or a decision transformer adds).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { AgentNetwork } from '../agents/networks/agent-network';
import { type AgentInputSpec, NO_ACTION, agentInputSpec, inputWidth, writeAgentInput } from '../agents/policies/agent-inputs';
import { AgentNetworkPolicy } from '../agents/policies/agent-network-policy';
import { gaussianLogProb } from '../agents/policies/gaussian';
import type { Policy } from '../agents/policies/policy';
import { type AgentNetworkPolicySpec, POLICY_SPEC_FORMAT } from '../agents/policies/policy-spec';
import type { EnvShape } from '../envs/env-shape';
import { assignTensors, captureTensors, withPrefix } from '../runtime/core/checkpoint-format';
import { Rng, deriveSeed } from '../runtime/core/rng';
import { Adam, clipByGlobalNorm } from './adam';
import { finite, layerWidth, MAX_STEP_BATCH, positive, positiveInt } from './config-keys';
import { type OfflineDataset, checkDatasetShape } from './dataset';
import { type EvaluationOptions, type LearnerState, type OfflineLearner, type TaskSpec, type TrainStats, type TrainerDefinition, checkTaskKey, onlyTask } from './learner';

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

export const bcConfigSchema = z
  .object({
    name: z.literal('bc'),
    lr: positive().default(0.001),
    hidden_dim: layerWidth().default(64),
    /** Agent steps per gradient step. */
    batch_size: positiveInt(MAX_STEP_BATCH).default(256),
    max_grad_norm: positive().default(10),
    obs_agent_id: z.boolean().default(true),
    parameter_sharing: z.boolean().default(true),
    /** Box actions: the Gaussian's initial log standard deviation. */
    log_std_init: finite().default(0),
  })
  .strict();
export type BcConfig = z.output<typeof bcConfigSchema>;

const MASKED_LOGIT = -1e10;

// ---------------------------------------------------------------------------------------------
// The learner
// ---------------------------------------------------------------------------------------------

/** Where every (episode, step, agent) row that acted lives in the dataset. */
interface RowIndex {
  episode: Int32Array;
  step: Int32Array;
  agent: Int32Array;
}

export class BehaviourCloning implements OfflineLearner {
  readonly kind = 'offline';
  readonly tasks: readonly TaskSpec[];
  readonly task: TaskSpec;
  readonly shape: EnvShape;
  readonly net: AgentNetwork;
  readonly logStd?: tf.Variable;
  private readonly inputs: AgentInputSpec;
  private readonly width: number;
  private readonly adam: Adam;
  private readonly rows: RowIndex;
  /** Without parameter sharing: each agent slot's rows. */
  private readonly byAgent?: Int32Array[];
  private sampleRng: Rng;
  private updates = 0;

  constructor(
    task: TaskSpec,
    readonly config: BcConfig,
    private readonly dataset: OfflineDataset,
    seed: number | string,
  ) {
    this.task = task;
    this.tasks = [task];
    this.shape = task.shape;
    checkDatasetShape(dataset, task.shape, `for task '${task.key}'`, task.env.id);
    const { numAgents: A, numActions: K, actDim: D, discreteActions } = task.shape;
    // Checked before any tensor exists, so a refused dataset leaks nothing.
    this.rows = indexRows(dataset, task.shape);
    if (this.rows.episode.length === 0) throw new Error(`bc: the dataset of task '${task.key}' has no step where an agent acted`);
    if (!config.parameter_sharing) this.byAgent = agentRows(this.rows, A);
    this.inputs = agentInputSpec(task.shape, { obsLastAction: false, obsAgentId: config.obs_agent_id });
    this.width = inputWidth(this.inputs);
    const copies = config.parameter_sharing ? 1 : A;
    this.net = new AgentNetwork({ inputDim: this.width, hiddenDim: config.hidden_dim, outputDim: discreteActions ? K : D, recurrent: false, outputGain: 0.01, seed: deriveSeed(seed, 'bc', 'init'), role: 'policy', copies });
    if (!discreteActions) this.logStd = tf.tidy(() => tf.variable(tf.fill([copies, D], config.log_std_init), true));
    this.adam = new Adam({ lr: config.lr }, this.parameters());
    this.sampleRng = new Rng(deriveSeed(seed, 'bc', 'sample'));
  }

  private policyVariables(): Record<string, tf.Variable> {
    return this.logStd ? { ...this.net.namedVariables(), log_std: this.logStd } : this.net.namedVariables();
  }

  private parameters(): Record<string, tf.Variable> {
    return withPrefix('policy/', this.policyVariables());
  }

  /**
   * One Adam step on `batch_size` uniformly drawn rows. Without parameter sharing each agent's
   * weights see only its own rows, so rows are drawn per agent slot (batch_size / A each).
   */
  trainStep(): TrainStats {
    const cfg = this.config;
    const { numAgents: A, obsDim, numActions: K, actDim: D, discreteActions } = this.shape;
    const perAgent = !cfg.parameter_sharing;
    const B = perAgent ? Math.max(1, Math.floor(cfg.batch_size / A)) * A : cfg.batch_size;
    const x = new Float32Array(B * this.width);
    const actions = discreteActions ? new Int32Array(B) : new Float32Array(B * D);
    const legal = new Float32Array(discreteActions ? B * K : 0);
    const byAgent = this.byAgent;
    for (let b = 0; b < B; b++) {
      // Rows agent-fastest without sharing, which is how separate weight sets read them.
      const pool = byAgent ? byAgent[b % A] : undefined;
      const r = pool ? pool[this.sampleRng.int(pool.length)] : this.sampleRng.int(this.rows.episode.length);
      const ep = this.dataset.episodes[this.rows.episode[r]];
      const t = this.rows.step[r];
      const a = this.rows.agent[r];
      writeAgentInput(x, b * this.width, this.inputs, ep.obs, (t * A + a) * obsDim, NO_ACTION, a);
      const at = (t * A + a) * D;
      if (discreteActions) {
        actions[b] = ep.actions[at];
        for (let k = 0; k < K; k++) legal[b * K + k] = ep.masks[(t * A + a) * K + k];
      } else {
        actions.set(ep.actions.subarray(at, at + D), b * D);
      }
    }
    const params = this.parameters();
    const names = Object.keys(params);
    const list = names.map((n) => params[n]);
    const stats = tf.tidy(() => {
      const input = tf.tensor2d(x, [B, this.width]);
      const { value: loss, grads } = tf.variableGrads(() => {
        const out = this.net.step(input, this.net.initialHidden(B)).out;
        if (discreteActions) {
          const mask = tf.tensor2d(legal, [B, K]);
          const logProbs = tf.logSoftmax(tf.where(tf.cast(mask, 'bool'), out, tf.fill(out.shape, MASKED_LOGIT)));
          return tf.neg(tf.mean(tf.sum(tf.mul(logProbs, tf.oneHot(tf.tensor1d(actions as Int32Array, 'int32'), K)), 1))) as tf.Scalar;
        }
        const logStd = this.logStd!.shape[0] === 1 ? this.logStd! : tf.tile(this.logStd!, [B / A, 1]);
        return tf.neg(tf.mean(gaussianLogProb(tf.tensor2d(actions as Float32Array, [B, D]), out, logStd))) as tf.Scalar;
      }, list);
      const byName: Record<string, tf.Tensor> = {};
      names.forEach((n, i) => (byName[n] = grads[list[i].name]));
      const { norm: gnorm, scale } = clipByGlobalNorm(names.map((n) => byName[n]), cfg.max_grad_norm);
      this.adam.apply(byName, scale);
      return tf.stack([loss, gnorm]);
    });
    const [loss, gradNorm] = stats.dataSync();
    stats.dispose();
    this.updates++;
    return { loss, grad_norm: gradNorm };
  }

  evaluationPolicy(task: string, numEnvs: number, seed: string, options: EvaluationOptions = {}): Policy {
    checkTaskKey(this.task, task, 'bc');
    const head = this.logStd ? 'gaussian' : 'categorical';
    return new AgentNetworkPolicy(this.net, this.inputs, this.shape, numEnvs, head, options.sample ? { kind: 'sample', rng: new Rng(seed) } : { kind: 'greedy' }, this.logStd);
  }

  policySpecs(): Record<string, AgentNetworkPolicySpec> {
    const { spec } = this.net;
    return {
      [this.task.key]: {
        format: POLICY_SPEC_FORMAT,
        kind: 'agent-network',
        model: 'policy',
        seedPath: [],
        shape: this.shape,
        head: this.logStd ? 'gaussian' : 'categorical',
        network: { inputDim: spec.inputDim, hiddenDim: spec.hiddenDim, outputDim: spec.outputDim, recurrent: false, copies: this.net.copies },
        inputs: { obsLastAction: false, obsAgentId: this.config.obs_agent_id },
      },
    };
  }

  async captureState(): Promise<LearnerState> {
    return {
      models: { policy: await captureTensors(this.policyVariables()) },
      optimizers: { adam: await this.adam.capture() },
      rngs: { sample: this.sampleRng.state() },
      arrays: {},
      json: { algo: 'bc', updates: this.updates },
    };
  }

  async restoreState(state: LearnerState): Promise<void> {
    const who = 'bc.restoreState';
    if (state.json.algo !== 'bc') throw new Error(`${who}: state was captured by '${String(state.json.algo)}'`);
    const model = state.models.policy;
    const adam = state.optimizers.adam;
    const rng = state.rngs.sample;
    const updates = state.json.updates;
    if (!model) throw new Error(`${who}: no model 'policy'`);
    if (!adam) throw new Error(`${who}: no optimizer 'adam'`);
    if (!rng) throw new Error(`${who}: no rng 'sample'`);
    if (typeof updates !== 'number' || !Number.isSafeInteger(updates)) throw new Error(`${who}: json.updates must be an integer`);
    try {
      assignTensors(this.policyVariables(), model);
    } catch (error) {
      throw new Error(`${who}: model 'policy': ${(error as Error).message}`);
    }
    this.adam.restore(adam, `${who}: optimizer 'adam'`);
    this.sampleRng = Rng.fromState(rng);
    this.updates = updates;
  }

  dispose(): void {
    this.net.dispose();
    this.logStd?.dispose();
    this.adam.dispose();
  }
}

function indexRows(dataset: OfflineDataset, shape: EnvShape): RowIndex {
  const episode: number[] = [];
  const step: number[] = [];
  const agent: number[] = [];
  const A = shape.numAgents;
  dataset.episodes.forEach((ep, e) => {
    const T = ep.rewards.length / A;
    for (let t = 0; t < T; t++) {
      for (let a = 0; a < A; a++) {
        if (!ep.alive[t * A + a]) continue;
        episode.push(e);
        step.push(t);
        agent.push(a);
      }
    }
  });
  return { episode: Int32Array.from(episode), step: Int32Array.from(step), agent: Int32Array.from(agent) };
}

/** The row numbers of each agent slot (for separate weight sets). */
function agentRows(rows: RowIndex, A: number): Int32Array[] {
  const lists: number[][] = Array.from({ length: A }, () => []);
  rows.agent.forEach((a, r) => lists[a].push(r));
  lists.forEach((l, a) => {
    if (l.length === 0) throw new Error(`bc: parameter_sharing false needs steps of every agent, but the dataset has none of agent slot ${a}`);
  });
  return lists.map((l) => Int32Array.from(l));
}

// ---------------------------------------------------------------------------------------------
// The trainer definition (what `trainers/index.ts` lists)
// ---------------------------------------------------------------------------------------------

export const bcTrainer: TrainerDefinition = {
  algorithms: [{ name: 'bc', schema: bcConfigSchema, defaultNumEnvs: 8 }],
  kind: 'offline',
  createLearner({ tasks, config, seed, datasets }) {
    const task = onlyTask(tasks, 'bc');
    const dataset = datasets?.[task.key];
    if (!dataset) throw new Error(`bc: no dataset for task '${task.key}' (set the run's 'dataset')`);
    return new BehaviourCloning(task, config as BcConfig, dataset, seed);
  },
};
