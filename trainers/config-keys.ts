import { z } from 'zod';

/*
 * Pieces of the algorithms' config schemas. Hyperparameter names and defaults follow EPyMARL's
 * `src/config/default.yaml` and `src/config/algs/*.yaml` (CleanRL's for SAC), so published
 * settings carry over key for key. Every object is strict: a misspelt key would otherwise
 * silently train with the default and waste a run.
 */

export const positive = () => z.number().gt(0);
export const positiveInt = () => z.number().int().gt(0);
export const nonNegativeInt = () => z.number().int().gte(0);
/** Discount 0 would make every update ignore the future, which is never what a MARL run means. */
export const discount = () => z.number().gt(0).lte(1);
export const unit = () => z.number().gte(0).lte(1);

/** Keys shared by the EPyMARL-style algorithms: the agent network and what it observes. */
export function agentNetworkKeys(d: { lr: number; hidden_dim: number; use_rnn: boolean; standardise_rewards: boolean }) {
  return {
    lr: positive().default(d.lr),
    gamma: discount().default(0.99),
    /** EPyMARL's `grad_norm_clip`. */
    max_grad_norm: positive().default(10),
    hidden_dim: positiveInt().default(d.hidden_dim),
    use_rnn: z.boolean().default(d.use_rnn),
    /**
     * One network for all agents (with the agent-id one-hot as input), or each agent its own
     * weights (EPyMARL's `*_ns` algorithms).
     */
    parameter_sharing: z.boolean().default(true),
    obs_agent_id: z.boolean().default(true),
    obs_last_action: z.boolean().default(false),
    standardise_returns: z.boolean().default(false),
    standardise_rewards: z.boolean().default(d.standardise_rewards),
    /**
     * Steps between hard target-network copies when ≥ 1, else the Polyak rate τ; EPyMARL packs
     * both into one key and so do we, to keep its configs portable.
     */
    target_update_interval_or_tau: positive().default(200),
  };
}
