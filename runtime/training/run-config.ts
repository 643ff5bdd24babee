import { z } from 'zod';

/*
 * The configuration of one training run (`troupe train <config>`). Hyperparameter names and
 * defaults follow EPyMARL's `src/config/default.yaml` and `src/config/algs/*.yaml`, so published
 * EPyMARL settings can be carried over key for key. Every object is strict: a misspelt key would
 * otherwise silently train with the default and waste a run.
 */

const positive = () => z.number().gt(0);
const positiveInt = () => z.number().int().gt(0);
const nonNegativeInt = () => z.number().int().gte(0);
// Discount 0 would make every update ignore the future, which is never what a MARL run means.
const discount = () => z.number().gt(0).lte(1);
const unit = () => z.number().gte(0).lte(1);

export const envConfigSchema = z
  .object({
    /** Registry id, e.g. `lbf-8x8-2p-2f-coop` (see `troupe envs`). */
    id: z.string().min(1),
    options: z.record(z.string(), z.unknown()).optional(),
    /** User env module, as in `EnvSpec.module`. */
    module: z.string().min(1).optional(),
  })
  .strict();

/** Keys shared by every algorithm: the agent network and what it observes. */
function commonKeys(d: { lr: number; hidden_dim: number; use_rnn: boolean; standardise_rewards: boolean }) {
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

function ppoSchema<N extends 'mappo' | 'ippo'>(
  name: N,
  d: { lr: number; standardise_rewards: boolean; target_update_interval_or_tau: number },
) {
  return z
    .object({
      name: z.literal(name),
      ...commonKeys({ lr: d.lr, hidden_dim: 64, use_rnn: true, standardise_rewards: d.standardise_rewards }),
      target_update_interval_or_tau: positive().default(d.target_update_interval_or_tau),
      gae_lambda: unit().default(0.95),
      /** EPyMARL bootstraps the critic with n-step returns; 1 is r + γV. */
      q_nstep: positiveInt().default(5),
      eps_clip: positive().default(0.2),
      epochs: positiveInt().default(4),
      // EPyMARL updates on the whole batch at once, i.e. one minibatch.
      num_minibatches: positiveInt().default(1),
      entropy_coef: z.number().gte(0).default(0.01),
      value_loss_coef: z.number().gte(0).default(0.5),
      // No `use_critic_rnn`: EPyMARL's MAPPO and IPPO critics are feed-forward (the one release
      // whose IPPO critic built a GRU never fed its state to the value head).
      /** Episodes collected per update (EPyMARL's on-policy `batch_size` = `buffer_size`). */
      batch_size: positiveInt().default(10),
      /**
       * Steps per env between updates (CleanRL's `num_steps`). Unset (null): as many as
       * `batch_size` full-length episodes need, ⌈batch_size · max episode steps / num_envs⌉,
       * which is EPyMARL's amount of data per update without waiting for episodes to end.
       */
      rollout_length: positiveInt().nullable().default(null),
      /**
       * Continuous (Box) actions only: initial log standard deviation of the Gaussian policy,
       * one learned value per action dimension (CleanRL's `actor_logstd`, which starts at 0).
       */
      log_std_init: z.number().default(0),
    })
    .strict();
}

function qSchema<N extends 'qmix' | 'vdn' | 'iql', M extends z.ZodTypeAny>(
  name: N,
  mixer: M,
  d: { lr: number; hidden_dim: number; use_rnn: boolean; buffer_size: number; epsilon_anneal_time: number },
) {
  return z
    .object({
      name: z.literal(name),
      ...commonKeys({ lr: d.lr, hidden_dim: d.hidden_dim, use_rnn: d.use_rnn, standardise_rewards: true }),
      /** Episodes sampled from the replay buffer per update. */
      batch_size: positiveInt().default(32),
      /**
       * Gradient steps per finished episode, whatever `num_envs` is: 1 is EPyMARL's episode
       * runner; 1/k reproduces its parallel runner with `batch_size_run: k`.
       */
      updates_per_episode: positive().default(1),
      /** Replay capacity in episodes. */
      buffer_size: positiveInt().default(d.buffer_size),
      epsilon_start: unit().default(1.0),
      epsilon_finish: unit().default(0.05),
      /** Env steps over which ε falls linearly from start to finish. */
      epsilon_anneal_time: nonNegativeInt().default(d.epsilon_anneal_time),
      evaluation_epsilon: unit().default(0),
      double_q: z.boolean().default(true),
      mixer,
    })
    .strict();
}

export const mappoConfigSchema = ppoSchema('mappo', { lr: 0.0005, standardise_rewards: false, target_update_interval_or_tau: 200 });
export const ippoConfigSchema = ppoSchema('ippo', { lr: 0.0003, standardise_rewards: true, target_update_interval_or_tau: 0.01 });

// The mixer is what distinguishes these three algorithms, so each pins its own rather than
// letting `name: vdn` quietly run a QMIX mixer.
export const qmixConfigSchema = qSchema('qmix', z.literal('qmix').default('qmix'), {
  lr: 0.0005,
  hidden_dim: 64,
  use_rnn: false,
  buffer_size: 5000,
  epsilon_anneal_time: 50000,
}).extend({
  mixing_embed_dim: positiveInt().default(32),
  hypernet_layers: z.union([z.literal(1), z.literal(2)]).default(2),
  hypernet_embed: positiveInt().default(64),
});
export const vdnConfigSchema = qSchema('vdn', z.literal('vdn').default('vdn'), {
  lr: 0.0005,
  hidden_dim: 64,
  use_rnn: false,
  buffer_size: 5000,
  epsilon_anneal_time: 50000,
});
export const iqlConfigSchema = qSchema('iql', z.null().default(null), {
  lr: 0.0003,
  hidden_dim: 128,
  use_rnn: true,
  buffer_size: 5000,
  epsilon_anneal_time: 200000,
});

/**
 * Soft Actor-Critic for continuous (Box) actions (`trainers/sac.ts`). Keys and defaults are
 * CleanRL's `sac_continuous_action.py` (`tau`, `alpha`, `autotune`, `policy_frequency`, …), not
 * EPyMARL's, since EPyMARL has no SAC.
 */
export const sacConfigSchema = z
  .object({
    name: z.literal('sac'),
    policy_lr: positive().default(3e-4),
    q_lr: positive().default(1e-3),
    /** Learning rate of the entropy temperature; null: `q_lr`, as CleanRL. */
    alpha_lr: positive().nullable().default(null),
    gamma: discount().default(0.99),
    /** Polyak rate of the target critics. */
    tau: z.number().gt(0).lte(1).default(0.005),
    /** Entropy temperature: fixed with `autotune: false`, else only its starting value. */
    alpha: positive().default(0.2),
    /** Learn α so the policy's entropy tracks `target_entropy` (Haarnoja et al. 2018b). */
    autotune: z.boolean().default(true),
    /** null: −(action dimensions), the paper's heuristic. */
    target_entropy: z.number().nullable().default(null),
    /** Replay capacity in transitions (one per live agent per env step). */
    buffer_size: positiveInt().default(1_000_000),
    /** Transitions per gradient step. */
    batch_size: positiveInt().default(256),
    /** Env steps of uniformly random actions before the first gradient step. */
    learning_starts: nonNegativeInt().default(5000),
    /** Actor (and α) updates run every this many critic updates, that many at once (TD3-style delay). */
    policy_frequency: positiveInt().default(2),
    /** Critic updates between Polyak steps of the target critics. */
    target_network_frequency: positiveInt().default(1),
    /** Critic updates per env step (summed over the vector): the update-to-data ratio. */
    updates_per_step: positive().default(1),
    /** Hidden layer widths of the actor and of each critic. */
    hidden_dims: z.array(positiveInt()).min(1).default([256, 256]),
    /** The actor's log-std is squashed into [log_std_min, log_std_max] (CleanRL's −5 and 2). */
    log_std_min: z.number().default(-5),
    log_std_max: z.number().default(2),
    /** Agent-id one-hot as an extra input when the env has more than one agent. */
    obs_agent_id: z.boolean().default(true),
    /** Multi-task envs (`EnvMetadata.numTasks`): one output head per task in the actor and both critics. */
    multi_head: z.boolean().default(false),
    /** Multi-task envs: one learned temperature per task (Meta-World's MT-SAC). */
    per_task_alpha: z.boolean().default(false),
  })
  .strict();

export const algoConfigSchema = z.discriminatedUnion('name', [
  mappoConfigSchema,
  ippoConfigSchema,
  qmixConfigSchema,
  vdnConfigSchema,
  iqlConfigSchema,
  sacConfigSchema,
]);

export const ALGO_NAMES = ['mappo', 'ippo', 'qmix', 'vdn', 'iql', 'sac'] as const;
export type AlgoName = (typeof ALGO_NAMES)[number];

/** Parallel envs per algorithm when `run.num_envs` is not given (EPyMARL's `batch_size_run`). */
export const DEFAULT_NUM_ENVS: Record<AlgoName, number> = { mappo: 10, ippo: 10, qmix: 1, vdn: 1, iql: 1, sac: 1 };

export const runSectionSchema = z
  .object({
    seed: nonNegativeInt().default(0),
    total_env_steps: positiveInt().default(2_000_000),
    /** Defaults per algorithm, see `DEFAULT_NUM_ENVS`; filled in before validation. */
    num_envs: positiveInt(),
    /** Rollout worker threads; 0 steps the envs in the main thread. */
    workers: nonNegativeInt().default(0),
    /** Intervals are in env steps, as EPyMARL's `log_interval`/`test_interval`/`save_model_interval`. */
    log_interval: positiveInt().default(2000),
    eval_interval: positiveInt().default(50000),
    eval_episodes: positiveInt().default(20),
    /**
     * Evaluate with the argmax action (EPyMARL's `test_greedy`, RLlib's `explore: false`); false
     * samples from the policy (policy-gradient algorithms only; value-based ones stay greedy).
     */
    eval_greedy: z.boolean().default(true),
    checkpoint_interval: positiveInt().default(50000),
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  })
  .strict();

const runConfigObject = z
  .object({
    env: envConfigSchema,
    algo: algoConfigSchema,
    run: runSectionSchema.default({} as z.input<typeof runSectionSchema>),
  })
  .strict();

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Fills defaults that depend on another section, which a per-field zod default cannot see. */
function fillCrossDefaults(raw: unknown): unknown {
  if (!isRecord(raw) || !isRecord(raw.algo)) return raw;
  const name = raw.algo.name;
  if (typeof name !== 'string' || !(ALGO_NAMES as readonly string[]).includes(name)) return raw;
  const run = raw.run === undefined ? {} : raw.run;
  if (!isRecord(run) || run.num_envs !== undefined) return raw;
  return { ...raw, run: { ...run, num_envs: DEFAULT_NUM_ENVS[name as AlgoName] } };
}

export const runConfigSchema = z.preprocess(fillCrossDefaults, runConfigObject);

export type EnvConfig = z.output<typeof envConfigSchema>;
export type AlgoConfig = z.output<typeof algoConfigSchema>;
export type PpoAlgoConfig = z.output<typeof mappoConfigSchema> | z.output<typeof ippoConfigSchema>;
export type QAlgoConfig = z.output<typeof qmixConfigSchema> | z.output<typeof vdnConfigSchema> | z.output<typeof iqlConfigSchema>;
export type SacAlgoConfig = z.output<typeof sacConfigSchema>;
export type RunSection = z.output<typeof runSectionSchema>;
/** A fully resolved run configuration: every default filled. */
export type RunConfig = z.output<typeof runConfigObject>;

/**
 * The schema that governs `path` in a raw config, or undefined when no key there exists.
 * `raw` picks the algorithm's branch, since which keys `algo` has depends on `algo.name`.
 */
export function schemaAt(path: readonly string[], raw: unknown): z.ZodTypeAny | undefined {
  let schema: z.ZodTypeAny = runConfigObject;
  let value: unknown = raw;
  for (const key of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodObject) {
      const shape = schema.shape as Record<string, z.ZodTypeAny>;
      if (!Object.prototype.hasOwnProperty.call(shape, key)) return undefined;
      schema = shape[key];
    } else if (schema instanceof z.ZodDiscriminatedUnion) {
      const option = unionBranch(schema, value);
      if (!option) return undefined;
      const shape = option.shape as Record<string, z.ZodTypeAny>;
      if (!Object.prototype.hasOwnProperty.call(shape, key)) return undefined;
      schema = shape[key];
    } else if (schema instanceof z.ZodRecord) {
      schema = schema.valueSchema as z.ZodTypeAny;
    } else {
      return undefined;
    }
    value = isRecord(value) ? value[key] : undefined;
  }
  return schema;
}

/**
 * The keys valid in the object at `path` (for error messages); undefined when that place is not
 * an object with fixed keys. For `algo` this is the branch `raw` names.
 */
export function validKeysAt(path: readonly string[], raw: unknown): string[] | undefined {
  const schema = schemaAt(path, raw);
  if (!schema) return undefined;
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) return Object.keys(inner.shape as object);
  if (inner instanceof z.ZodDiscriminatedUnion) {
    const option = unionBranch(inner, valueAt(raw, path));
    return option ? Object.keys(option.shape as object) : [inner.discriminator as string];
  }
  return undefined;
}

/** True where any value is allowed below `path` (e.g. `env.options`). */
export function isOpenRecordAt(path: readonly string[], raw: unknown): boolean {
  const schema = schemaAt(path, raw);
  return schema !== undefined && unwrap(schema) instanceof z.ZodRecord;
}

/** Which algorithms accept `key` (to tell a user that a key belongs to another algorithm). */
export function algosWithKey(key: string): AlgoName[] {
  return ALGO_NAMES.filter((name) => Object.prototype.hasOwnProperty.call(algoBranch(name).shape, key));
}

function algoBranch(name: AlgoName): z.AnyZodObject {
  return algoConfigSchema.optionsMap.get(name) as z.AnyZodObject;
}

function unionBranch(schema: z.ZodDiscriminatedUnion<string, z.AnyZodObject[]>, value: unknown): z.AnyZodObject | undefined {
  if (!isRecord(value)) return undefined;
  return schema.optionsMap.get(value[schema.discriminator] as string) as z.AnyZodObject | undefined;
}

function valueAt(raw: unknown, path: readonly string[]): unknown {
  let value = raw;
  for (const key of path) value = isRecord(value) ? value[key] : undefined;
  return value;
}

function unwrap(schema: z.ZodTypeAny): z.ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType as z.ZodTypeAny;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodTypeAny;
    else if (s instanceof z.ZodEffects) s = s.innerType() as z.ZodTypeAny;
    else return s;
  }
}
