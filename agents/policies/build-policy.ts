import * as tf from '@tensorflow/tfjs';
import { type NamedTensorData, assignTensors } from '../../runtime/core/checkpoint-format';
import { Rng, deriveSeed } from '../../runtime/core/rng';
import { DecisionNetwork, PerceptionNetwork } from '../networks/action-conditioned';
import { AgentNetwork } from '../networks/agent-network';
import { Mlp } from '../networks/mlp';
import { ActionConditionedPolicy } from './action-conditioned-policy';
import { type ActingMode, AgentNetworkPolicy } from './agent-network-policy';
import { agentInputSpec, inputWidth } from './agent-inputs';
import type { DisposablePolicy } from './policy';
import type { ActionConditionedPolicySpec, AgentNetworkPolicySpec, PolicySpec, SquashedGaussianPolicySpec } from './policy-spec';
import { SquashedGaussianActor, SquashedGaussianPolicy } from './squashed-gaussian-policy';

export interface BuildPolicyOptions {
  /** Envs the policy acts in at once (its recurrent memory is sized for them). */
  numEnvs: number;
  /** Argmax / mean (default), or draws from the policy's distribution. Q-value policies act ε-greedily with their spec's ε either way. */
  mode?: 'greedy' | 'sample';
  /** Seed of the policy's random draws (default 0). */
  seed?: number | string;
}

/**
 * Builds the policy a spec describes with the given weights (a checkpoint's `models[spec.model]`):
 * only what acting needs — the network, no critic, optimiser or replay — for any number of
 * envs. Pure tfjs: no file system, so it runs in a browser too. Dispose the policy when done.
 */
export function buildPolicy(spec: PolicySpec, weights: NamedTensorData, options: BuildPolicyOptions): DisposablePolicy {
  if (!Number.isInteger(options.numEnvs) || options.numEnvs < 1) throw new Error(`buildPolicy: numEnvs must be a positive integer, got ${options.numEnvs}`);
  const rng = new Rng(deriveSeed(options.seed ?? 0, ...spec.seedPath));
  const sample = options.mode === 'sample';
  if (spec.kind === 'agent-network') return buildAgentNetworkPolicy(spec, weights, options.numEnvs, sample, rng);
  if (spec.kind === 'action-conditioned-q') return buildActionConditionedPolicy(spec, weights, options.numEnvs, rng);
  return buildSquashedGaussianPolicy(spec, weights, options.numEnvs, sample, rng);
}

function load(vars: Record<string, tf.Variable>, weights: NamedTensorData, spec: PolicySpec): void {
  try {
    assignTensors(vars, weights);
  } catch (error) {
    throw new Error(`model '${spec.model}' does not fit its policy spec: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function buildAgentNetworkPolicy(spec: AgentNetworkPolicySpec, weights: NamedTensorData, numEnvs: number, sample: boolean, rng: Rng): DisposablePolicy {
  const inputs = agentInputSpec(spec.shape, spec.inputs);
  if (inputWidth(inputs) !== spec.network.inputDim) {
    throw new Error(`policy spec: network.inputDim ${spec.network.inputDim} does not match its inputs (obs ${inputs.obsDim} + last action ${inputs.lastActionDim} + agent id ${inputs.agentIdDim})`);
  }
  const net = new AgentNetwork({ ...spec.network, outputGain: 1, seed: 'loaded', role: 'policy', init: 'zeros' });
  let logStd: tf.Variable | undefined;
  try {
    const vars = net.namedVariables();
    if (spec.head === 'gaussian') {
      logStd = tf.tidy(() => tf.variable(tf.zeros([spec.network.copies, spec.shape.actDim]), false));
      vars.log_std = logStd;
    }
    load(vars, weights, spec);
    let mode: ActingMode = sample ? { kind: 'sample', rng } : { kind: 'greedy' };
    if (spec.head === 'q-values') {
      const epsilon = spec.epsilon ?? 0;
      mode = epsilon > 0 ? { kind: 'epsilon-greedy', epsilon: () => epsilon, rng } : { kind: 'greedy' };
    }
    const policy = new AgentNetworkPolicy(net, inputs, spec.shape, numEnvs, spec.head, mode, logStd);
    return {
      act: (batch, actions) => policy.act(batch, actions),
      dispose: () => {
        net.dispose();
        logStd?.dispose();
      },
    };
  } catch (error) {
    net.dispose();
    logStd?.dispose();
    throw error;
  }
}

function buildSquashedGaussianPolicy(spec: SquashedGaussianPolicySpec, weights: NamedTensorData, numEnvs: number, sample: boolean, rng: Rng): DisposablePolicy {
  const settings = { heads: spec.heads, numTasks: spec.numTasks, agentId: spec.agentId, logStdMin: spec.logStdMin, logStdMax: spec.logStdMax };
  const inputDim = spec.shape.obsDim + (spec.agentId ? spec.shape.numAgents : 0);
  const net = new Mlp({ inputDim, hiddenDims: spec.hiddenDims, outputDim: spec.heads * 2 * spec.shape.actDim, seed: 'loaded', role: 'actor', init: 'zeros' });
  try {
    load(net.namedVariables(), weights, spec);
    const actor = new SquashedGaussianActor(net, spec.shape, settings);
    const policy = new SquashedGaussianPolicy(actor, numEnvs, sample ? { kind: 'sample', rng } : { kind: 'greedy' });
    return { act: (batch, actions) => policy.act(batch, actions), dispose: () => net.dispose() };
  } catch (error) {
    net.dispose();
    throw error;
  }
}

/** The `decl/` prefix under which an action-conditioned policy's model holds the decision network. */
export const DECISION_PREFIX = 'decl/';

function buildActionConditionedPolicy(spec: ActionConditionedPolicySpec, weights: NamedTensorData, numEnvs: number, rng: Rng): DisposablePolicy {
  const inputs = agentInputSpec(spec.shape, spec.inputs);
  if (inputWidth(inputs) !== spec.network.inputDim) {
    throw new Error(`policy spec: network.inputDim ${spec.network.inputDim} does not match its inputs (obs ${inputs.obsDim} + last action ${inputs.lastActionDim} + agent id ${inputs.agentIdDim})`);
  }
  const { hiddenDim, declHiddenDim, recurrent } = spec.network;
  const perception = new PerceptionNetwork({ inputDim: spec.network.inputDim, numActions: spec.shape.numActions, hiddenDim, recurrent, seed: 'loaded', role: 'policy', init: 'zeros' });
  const decision = new DecisionNetwork({ inputDim: hiddenDim, hiddenDim: declHiddenDim, seed: 'loaded', init: 'zeros' });
  const dispose = () => {
    perception.dispose();
    decision.dispose();
  };
  try {
    const vars = { ...perception.namedVariables() };
    for (const [name, v] of Object.entries(decision.namedVariables())) vars[DECISION_PREFIX + name] = v;
    load(vars, weights, spec);
    // Q-values are acted on greedily, or ε-greedily with the spec's ε (as the learner evaluates).
    const epsilon = spec.epsilon ?? 0;
    const mode: ActingMode = epsilon > 0 ? { kind: 'epsilon-greedy', epsilon: () => epsilon, rng } : { kind: 'greedy' };
    const policy = new ActionConditionedPolicy(perception, decision, inputs, spec.shape, numEnvs, mode);
    return { act: (batch, actions) => policy.act(batch, actions), dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}
