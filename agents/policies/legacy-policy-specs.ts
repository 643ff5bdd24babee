import type { EnvShape } from '../../envs/env-shape';
import type { JsonObject } from '../../runtime/core/checkpoint-format';
import { POLICY_SPEC_FORMAT, type PolicySpec } from './policy-spec';

/**
 * The policy spec of a checkpoint written before learners stored theirs (format versions 1
 * and 2), from its saved run config and the shape of the env it trained on. Those checkpoints
 * come from exactly three trainers, whose acting networks this reproduces; later checkpoints
 * carry their own specs, so no new algorithm ever needs a line here.
 */
export function legacyPolicySpec(config: JsonObject, shape: EnvShape, file: string): PolicySpec {
  const algo = config.algo;
  if (typeof algo !== 'object' || algo === null || Array.isArray(algo)) throw new Error(`${file}: saved config has no 'algo' section`);
  const name = algo.name;
  const flag = (key: string, fallback: boolean): boolean => (typeof algo[key] === 'boolean' ? (algo[key] as boolean) : fallback);
  const int = (key: string): number => {
    const v = algo[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`${file}: saved config 'algo.${key}' must be a positive integer`);
    return v;
  };
  const { numAgents: A, numActions: K, actDim: D, obsDim } = shape;
  const common = { format: POLICY_SPEC_FORMAT, shape } as const;
  if (name === 'mappo' || name === 'ippo' || name === 'qmix' || name === 'vdn' || name === 'iql') {
    const obsLastAction = flag('obs_last_action', false);
    const obsAgentId = flag('obs_agent_id', true);
    const ppo = name === 'mappo' || name === 'ippo';
    return {
      ...common,
      kind: 'agent-network',
      model: ppo ? 'actor' : 'agent',
      seedPath: ppo ? [] : [name, 'evaluate'],
      head: ppo ? (shape.discreteActions ? 'categorical' : 'gaussian') : 'q-values',
      network: {
        inputDim: obsDim + (obsLastAction ? K : 0) + (obsAgentId ? A : 0),
        hiddenDim: int('hidden_dim'),
        outputDim: shape.discreteActions ? K : D,
        recurrent: flag('use_rnn', false),
        copies: flag('parameter_sharing', true) ? 1 : A,
      },
      inputs: { obsLastAction, obsAgentId },
      ...(ppo ? {} : { epsilon: typeof algo.evaluation_epsilon === 'number' ? algo.evaluation_epsilon : 0 }),
    };
  }
  if (name === 'sac') {
    const numTasks = shape.numTasks ?? 0;
    const hidden = algo.hidden_dims;
    if (!Array.isArray(hidden) || !hidden.every((h) => typeof h === 'number')) throw new Error(`${file}: saved config 'algo.hidden_dims' must be a list of sizes`);
    return {
      ...common,
      kind: 'squashed-gaussian-mlp',
      model: 'actor',
      seedPath: ['sac', 'evaluate'],
      hiddenDims: hidden as number[],
      heads: flag('multi_head', false) ? numTasks : 1,
      numTasks,
      agentId: flag('obs_agent_id', true) && A > 1,
      logStdMin: typeof algo.log_std_min === 'number' ? algo.log_std_min : -5,
      logStdMax: typeof algo.log_std_max === 'number' ? algo.log_std_max : 2,
    };
  }
  throw new Error(`${file}: checkpoint has no policy spec and its algorithm '${String(name)}' is not one whose spec can be derived (mappo, ippo, qmix, vdn, iql, sac)`);
}
