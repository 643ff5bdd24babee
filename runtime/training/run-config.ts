import { z } from 'zod';
import { moduleEnvId } from '../../envs/env-from-spec';
import { algorithmVariants, trainerFor } from '../../trainers';

/*
 * The configuration of one training run (`troupe train <config>`). Hyperparameter names and
 * defaults follow EPyMARL's `src/config/default.yaml` and `src/config/algs/*.yaml`, so published
 * EPyMARL settings can be carried over key for key. Every object is strict: a misspelt key would
 * otherwise silently train with the default and waste a run.
 */

// Capped so counts stay exact integers (1e300 passes `.int()`); sizes that allocate have lower caps.
const positiveInt = (max: number = Number.MAX_SAFE_INTEGER) => z.number().int().gt(0).lte(max);
const nonNegativeInt = (max: number = Number.MAX_SAFE_INTEGER) => z.number().int().gte(0).lte(max);
/** Env copies per task: each holds its env and a row of every rollout buffer. */
const MAX_NUM_ENVS = 4096;
/** Worker threads per task (each is a Node worker with its own heap). */
const MAX_WORKERS = 256;
/** Rollout worker threads: a count (0 = in-process) or `auto`, chosen per task when the run starts (see `chooseWorkers`). */
const workerSetting = () => z.union([nonNegativeInt(MAX_WORKERS), z.literal('auto')]);
/** Episodes per evaluation. */
const MAX_EVAL_EPISODES = 100_000;

const envKeys = {
  /** Registry id, e.g. `lbf-8x8-2p-2f-coop` (see `troupe envs`); with `module`, default the module's file name. */
  id: z.string().min(1),
  options: z.record(z.string(), z.unknown()).optional(),
  /** User env module, as in `EnvSpec.module`; relative paths are relative to the config file's folder. */
  module: z.string().min(1).optional(),
};

export const envConfigSchema = z.object(envKeys).strict();

/**
 * One task of a multi-task run (`tasks:`): an env as in `env:`, its own number of envs and
 * worker threads (default: the run's), and a dataset for offline algorithms.
 */
export const taskConfigSchema = z
  .object({
    ...envKeys,
    /** The task's key in metrics and checkpoints; default its env id (give one when two tasks share an id). */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/, 'letters, digits and _ . : / - only').optional(),
    num_envs: positiveInt(MAX_NUM_ENVS).optional(),
    workers: workerSetting().optional(),
    /** Offline algorithms: the dataset file of this task (`.msgpack`, see `trainers/dataset.ts`). */
    dataset: z.string().min(1).optional(),
  })
  .strict();

/**
 * Every algorithm's config schema, from the trainer list (`trainers/index.ts`): `algo.name`
 * picks one, and its keys and defaults are that trainer's.
 */
const variants = algorithmVariants();
export const algoConfigSchema = z.discriminatedUnion(
  'name',
  variants.map((v) => v.schema) as unknown as [z.ZodObject<{ name: z.ZodLiteral<string> }>, ...Array<z.ZodObject<{ name: z.ZodLiteral<string> }>>],
);

export const ALGO_NAMES: readonly string[] = variants.map((v) => v.name);

/** Parallel envs per algorithm when `run.num_envs` is not given (EPyMARL's `batch_size_run`). */
export const DEFAULT_NUM_ENVS: Readonly<Record<string, number>> = Object.fromEntries(variants.map((v) => [v.name, v.defaultNumEnvs]));

/** `run.remote`: how remote rollouts run (see the `remote` key of the run schema). */
const remoteSchema = z
  .object({
    /**
     * lockstep: hosts only step envs, the learner acts (results identical to worker threads);
     * async: hosts act with the newest weights they have and send trajectory chunks
     * (throughput, not bit-reproducible).
     */
    mode: z.enum(['lockstep', 'async']).default('lockstep'),
    /** Fixed env-index ranges per task that hosts claim (lockstep), or acting hosts' env copies each (async). */
    shards: positiveInt(MAX_WORKERS).default(2),
    /** A host's claim on a shard lapses this long after its last renewal; another host then takes the shard over. */
    lease_ms: positiveInt().default(10000),
    /** async: un-consumed trajectory chunks allowed per host (the stream's credits). */
    credits: positiveInt().default(2),
    /** async: chunks older than this many learner updates are dropped (counted in metrics). */
    max_policy_lag: nonNegativeInt().default(4),
  })
  .strict();

export type RemoteSettings = z.infer<typeof remoteSchema>;

/** `run.remote` with its defaults filled in when the config has no such section. */
export function remoteSettings(run: { remote?: RemoteSettings }): RemoteSettings {
  return run.remote ?? remoteSchema.parse({});
}

export const runSectionSchema = z
  .object({
    seed: nonNegativeInt().default(0),
    /** The budget of online algorithms, summed over tasks. */
    total_env_steps: positiveInt().default(2_000_000),
    /** The budget of offline algorithms (which count gradient steps); required for them. */
    total_gradient_steps: positiveInt().optional(),
    /** Defaults per algorithm, see `DEFAULT_NUM_ENVS`; filled in before validation. */
    num_envs: positiveInt(MAX_NUM_ENVS),
    /**
     * Rollout worker threads; 0 steps the envs in the main thread; `auto` times a few in-process
     * steps of each task's env when the run starts and picks in-process or one worker per core
     * (the choice and its reason go to run.json). Workers never change results.
     */
    workers: workerSetting().default(0),
    /**
     * Intervals count the run's unit, as EPyMARL's `log_interval`/`test_interval`/
     * `save_model_interval`: env steps (all tasks together) online, gradient steps offline.
     */
    log_interval: positiveInt().default(2000),
    eval_interval: positiveInt().default(50000),
    eval_episodes: positiveInt(MAX_EVAL_EPISODES).default(20),
    /**
     * Evaluate with the argmax action (EPyMARL's `test_greedy`, RLlib's `explore: false`); false
     * samples from the policy (policy-gradient algorithms only; value-based ones stay greedy).
     */
    eval_greedy: z.boolean().default(true),
    /**
     * Vector steps after which an evaluation stops even if fewer than eval_episodes episodes ended
     * (an env that never ends must not hang the run). Default: see `defaultEvalStepCap`.
     */
    eval_max_steps: positiveInt().optional(),
    /**
     * Refuse NaN/±Infinity in env observations, rewards and state (lengths, keys and masks are
     * always checked). false skips that pass over every observation, for envs known to be finite.
     */
    check_finite: z.boolean().default(true),
    /**
     * Keep the policy of the best evaluation so far (by this number) in `checkpoints/best.ckpt`
     * (`best-<task>.ckpt` per task of a multi-task run): weights only, for re-evaluating the best
     * policy with more episodes (the "absolute" metric of transfer reports). `none` keeps none.
     */
    best_checkpoint: z.enum(['none', 'return_mean', 'win_rate']).default('none'),
    checkpoint_interval: positiveInt().default(50000),
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    /**
     * Remote rollouts (`troupe train --broker redis://…` with `troupe rollout` hosts). Only read
     * with `--broker`; the broker's URL is a flag, never a config key (it may hold a password).
     */
    remote: remoteSchema.optional(),
  })
  .strict();

/**
 * Offline runs over a set of per-task datasets (`troupe collect`'s output folder): every task of
 * its manifest `dataset.json` (or the chosen ones) becomes a task of the run, with its env and
 * dataset. Resolved into an explicit `tasks` list when the run starts (`dataset-sets.ts`), so
 * the saved config names every file.
 */
export const datasetSetSchema = z
  .object({
    /** The folder holding dataset.json (relative to the working directory, like --out). */
    dir: z.string().min(1),
    /** A collect config run first when the folder is incomplete (relative to this config's folder). */
    collect: z.string().min(1).optional(),
    /** Which of the manifest's tasks: all (default), its train or test side, or a list of keys. */
    tasks: z.union([z.enum(['all', 'train', 'test']), z.array(z.string().min(1)).min(1)]).default('all'),
  })
  .strict();

const runConfigObject = z
  .object({
    /** The run's one task; or give `tasks`. */
    env: envConfigSchema.optional(),
    /** Several tasks feeding one learner, each with its envs and evaluation. */
    tasks: z.array(taskConfigSchema).min(1).optional(),
    /** Offline algorithms with `env`: the dataset file to learn from. */
    dataset: z.string().min(1).optional(),
    /** Offline algorithms: a folder of per-task datasets, instead of `env` or `tasks`. */
    datasets: datasetSetSchema.optional(),
    algo: algoConfigSchema,
    run: runSectionSchema.default({} as z.input<typeof runSectionSchema>),
  })
  .strict();

/**
 * Checks that need several sections at once, as `path: problem` pairs; run on the raw config,
 * so they are reported beside any other problem of the file.
 */
export function sectionIssues(raw: unknown): Array<{ path: Array<string | number>; message: string }> {
  if (!isRecord(raw)) return [];
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const hasEnv = raw.env !== undefined;
  const tasks = raw.tasks;
  const hasSet = raw.datasets !== undefined;
  if (hasEnv && tasks !== undefined) issues.push({ path: ['tasks'], message: "give either 'env' (one task) or 'tasks', not both" });
  if (hasSet && (hasEnv || tasks !== undefined)) issues.push({ path: ['datasets'], message: `give either 'datasets' (a folder of per-task datasets) or '${hasEnv ? 'env' : 'tasks'}', not both` });
  if (!hasEnv && tasks === undefined && !hasSet) issues.push({ path: ['env'], message: "required: 'env' (one task), 'tasks' (several) or, offline, 'datasets' (a folder of per-task datasets)" });
  if (raw.dataset !== undefined && !hasEnv) issues.push({ path: ['dataset'], message: "belongs with 'env'; with 'tasks' give each task its own 'dataset'" });
  // What the algorithm learns from decides which of the budget and data keys apply.
  const algo = isRecord(raw.algo) && typeof raw.algo.name === 'string' && ALGO_NAMES.includes(raw.algo.name) ? raw.algo.name : undefined;
  if (algo) {
    const offline = trainerFor(algo).kind === 'offline';
    const run = isRecord(raw.run) ? raw.run : {};
    const taskList = Array.isArray(tasks) ? tasks.filter(isRecord) : [];
    const datasets = raw.dataset !== undefined || taskList.some((t) => t.dataset !== undefined) || hasSet;
    if (!offline && datasets) issues.push({ path: [raw.dataset !== undefined ? 'dataset' : hasSet ? 'datasets' : 'tasks'], message: `only offline algorithms read a dataset; '${algo}' learns from its envs` });
    if (!offline && run.total_gradient_steps !== undefined) issues.push({ path: ['run', 'total_gradient_steps'], message: `counts offline training; '${algo}' learns online (its budget is run.total_env_steps)` });
    if (offline && run.total_gradient_steps === undefined) issues.push({ path: ['run', 'total_gradient_steps'], message: `required for the offline algorithm '${algo}' (its budget counts gradient steps)` });
    if (offline && hasEnv && raw.dataset === undefined) issues.push({ path: ['dataset'], message: `required for the offline algorithm '${algo}': the dataset file to learn from` });
    if (offline) taskList.forEach((t, i) => t.dataset === undefined && issues.push({ path: ['tasks', i, 'dataset'], message: `required for the offline algorithm '${algo}'` }));
  }
  const seen = new Map<string, number>();
  (Array.isArray(tasks) ? tasks : []).forEach((t, i) => {
    if (!isRecord(t)) return;
    const key = typeof t.name === 'string' ? t.name : t.id;
    if (typeof key !== 'string') return;
    const first = seen.get(key);
    if (first !== undefined) issues.push({ path: ['tasks', i, 'name'], message: `task key '${key}' is also tasks.${first}'s; give the tasks distinct names` });
    else seen.set(key, i);
  });
  return issues;
}

function checkSections(c: z.output<typeof runConfigObject>, ctx: z.RefinementCtx): void {
  for (const issue of sectionIssues(c)) ctx.addIssue({ code: z.ZodIssueCode.custom, ...issue });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Fills defaults that depend on another section or key, which a per-field zod default cannot see. */
function fillCrossDefaults(input: unknown): unknown {
  const raw = fillModuleEnvIds(input);
  if (!isRecord(raw) || !isRecord(raw.algo)) return raw;
  const name = raw.algo.name;
  if (typeof name !== 'string' || !(ALGO_NAMES as readonly string[]).includes(name)) return raw;
  const run = raw.run === undefined ? {} : raw.run;
  if (!isRecord(run) || run.num_envs !== undefined) return raw;
  return { ...raw, run: { ...run, num_envs: DEFAULT_NUM_ENVS[name] } };
}

/** An env given by its module alone is called by the module's file name. */
function fillModuleEnvIds(raw: unknown): unknown {
  if (!isRecord(raw)) return raw;
  const fill = (section: unknown): unknown =>
    isRecord(section) && section.id === undefined && typeof section.module === 'string' && section.module !== '' ? { ...section, id: moduleEnvId(section.module) } : section;
  return { ...raw, ...(raw.env !== undefined ? { env: fill(raw.env) } : {}), ...(Array.isArray(raw.tasks) ? { tasks: raw.tasks.map(fill) } : {}) };
}

export const runConfigSchema = z.preprocess(fillCrossDefaults, runConfigObject.superRefine(checkSections));

export type EnvConfig = z.output<typeof envConfigSchema>;
export type TaskConfig = z.output<typeof taskConfigSchema>;
/** An algorithm's section: its name and its trainer's keys (each trainer types its own). */
export type AlgoConfig = { name: string } & Record<string, unknown>;
export type RunSection = z.output<typeof runSectionSchema>;
/** A fully resolved run configuration: every default filled. */
export type RunConfig = Omit<z.output<typeof runConfigObject>, 'algo'> & { algo: AlgoConfig };

/** A run's task as the loop uses it: its key, env spec, envs, workers and dataset. */
export interface RunTask {
  key: string;
  env: EnvConfig;
  numEnvs: number;
  /** A count, or `auto` (resolved when the run starts). */
  workers: number | 'auto';
  dataset?: string;
}

/** The tasks of a run, from `env` (one task, keyed by its env id) or `tasks`. */
export function runTasks(config: RunConfig): RunTask[] {
  const run = config.run;
  if (config.datasets) throw new Error(`datasets: the folder ${config.datasets.dir} has not been resolved into tasks yet (resolveDatasetSet does that when a run starts)`);
  if (config.env) return [{ key: config.env.id, env: config.env, numEnvs: run.num_envs, workers: run.workers, ...(config.dataset ? { dataset: config.dataset } : {}) }];
  return (config.tasks ?? []).map((t) => {
    const { name, num_envs, workers, dataset, ...env } = t;
    return { key: name ?? t.id, env, numEnvs: num_envs ?? run.num_envs, workers: workers ?? run.workers, ...(dataset ? { dataset } : {}) };
  });
}

/** A short name of what a run trains on: its env id, or its task keys joined with '+'. */
export function runLabel(config: RunConfig): string {
  return runTasks(config).map((t) => t.key).join('+');
}

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
    } else if (schema instanceof z.ZodArray && /^\d+$/.test(key)) {
      // `tasks.0.num_envs`: a list item's keys.
      schema = schema.element as z.ZodTypeAny;
      value = Array.isArray(value) ? value[Number(key)] : undefined;
      continue;
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
export function algosWithKey(key: string): string[] {
  return ALGO_NAMES.filter((name) => Object.prototype.hasOwnProperty.call(algoBranch(name).shape, key));
}

function algoBranch(name: string): z.AnyZodObject {
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
