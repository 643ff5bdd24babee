import { z } from 'zod';

/*
 * Pieces of the algorithms' config schemas. Hyperparameter names and defaults follow EPyMARL's
 * `src/config/default.yaml` and `src/config/algs/*.yaml` (CleanRL's for SAC), so published
 * settings carry over key for key. Every object is strict: a misspelt key would otherwise
 * silently train with the default and waste a run.
 */

// `.finite()` everywhere: YAML's `.inf` parses to Infinity, which z.number() and `.gt(0)` accept.
export const positive = () => z.number().finite().gt(0);
/** A count; the cap keeps it an exact integer (1e300 passes `.int()`). */
export const positiveInt = (max: number = Number.MAX_SAFE_INTEGER) => z.number().int().gt(0).lte(max);
export const nonNegativeInt = (max: number = Number.MAX_SAFE_INTEGER) => z.number().int().gte(0).lte(max);
/** Any finite number (a log-std, a target entropy). */
export const finite = () => z.number().finite();
/** A coefficient that may be 0 but not negative (entropy and value-loss weights). */
export const nonNegative = () => z.number().finite().gte(0);
/** Discount 0 would make every update ignore the future, which is never what a MARL run means. */
export const discount = () => z.number().gt(0).lte(1);
export const unit = () => z.number().gte(0).lte(1);

/*
 * Caps on sizes that reach tfjs or typed arrays. They are far above any published setting and
 * well below what makes tfjs fail deep inside a kernel or the process run out of memory: a
 * 4096-wide layer is 16M weights (64 MB), and the batch caps keep one update's tensors in the
 * hundreds of megabytes.
 */
/** Width of one hidden layer (and of mixer and hypernetwork embeddings). */
export const MAX_LAYER_WIDTH = 4096;
export const layerWidth = () => positiveInt(MAX_LAYER_WIDTH);
/** Whole episodes per update (on-policy batches, episode replay samples). */
export const MAX_EPISODE_BATCH = 10_000;
/** Transitions or agent steps per gradient step. */
export const MAX_STEP_BATCH = 1_000_000;
/** Replay capacity in episodes; the replay grows as episodes arrive, so this bounds memory late in a run. */
export const MAX_EPISODE_REPLAY = 1_000_000;
/** Replay capacity in transitions (10⁷ rows of a 39-dim manipulation obs are a few GB). */
export const MAX_TRANSITION_REPLAY = 10_000_000;
/** Steps per env in one on-policy rollout. */
export const MAX_ROLLOUT_LENGTH = 100_000;
/** Gradient steps per update or per env step; more is a typo, not a setting. */
export const MAX_REPEATS = 1000;

/** Keys shared by the EPyMARL-style algorithms: the agent network and what it observes. */
export function agentNetworkKeys(d: { lr: number; hidden_dim: number; use_rnn: boolean; standardise_rewards: boolean }) {
  return {
    lr: positive().default(d.lr),
    gamma: discount().default(0.99),
    /** EPyMARL's `grad_norm_clip`. */
    max_grad_norm: positive().default(10),
    hidden_dim: layerWidth().default(d.hidden_dim),
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
