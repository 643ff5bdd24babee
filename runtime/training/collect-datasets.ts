import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadPolicy } from '../../agents/load-policy';
import { expertPolicyFor } from '../../agents/policies/experts/expert-policy';
import type { Policy } from '../../agents/policies/policy';
import { RandomPolicy } from '../../agents/policies/random-policy';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import { type EnvShape, envShape, shapeDifferences } from '../../envs/env-shape';
import type { EnvSpec } from '../../envs/env-spec';
import { type TaskFamilyMember, envTaskFamily } from '../../envs/registry';
import { type DatasetEpisode, type DatasetHeader, readDataset, writeDataset } from '../../trainers/dataset';
import { writeFileAtomicSync } from '../core/atomic-file';
import { locateCheckpointFile } from '../core/checkpoint-locator';
import { deriveSeed } from '../core/rng';
import { type BackendPreference, selectBackend } from '../core/tf-backend';
import { collectEpisodes } from '../rollout/collect-episodes';
import { VectorEnv } from '../rollout/vector-env';
import { RunConfigError, loadYamlConfigFile } from './config-loader';

/*
 * `troupe collect <config.yaml>`: offline datasets for offline (meta-)RL, one file per task.
 *
 * The env is a task family (e.g. `point-robot`: its goals and train/test split come from the
 * registry's `taskFamily`) or a single task. For every chosen task, each entry of `policies`
 * records its number of episodes, in order, into one dataset (`trainers/dataset.ts`, version 2:
 * the header carries the task's parameters and split). A mixture of entries makes "mixed" data
 * the Meta-DT way (e.g. 70% medium + 30% expert). A checkpoint entry's `path` may contain
 * `{task}`, replaced by the task key, so one SAC run per task (the paper's way) feeds its own task.
 *
 * Output: `<out>/<task key>.msgpack` per task and `<out>/dataset.json`, the manifest (tasks, split,
 * parameters, files, episode counts, mean returns) that offline trainers read; collecting other
 * tasks into the same folder later adds them to it. Collection is deterministic: task t's
 * episodes depend only on (seed, t, entry, num_envs), never on `workers` or on which other tasks
 * are collected, and files carry no timestamp, so a collection reproduces byte for byte. Running
 * the command again keeps the files already complete with the same settings and collects the
 * rest; a file made with other settings (policy, checkpoint file, quality, seed, num_envs, env)
 * is refused.
 */

const positiveInt = z.number().int().gt(0).lte(Number.MAX_SAFE_INTEGER);

const policyEntrySchema = z.discriminatedUnion('policy', [
  z.object({ policy: z.literal('random'), episodes: positiveInt }).strict(),
  z
    .object({
      policy: z.literal('expert'),
      /** Gaussian action noise of the scripted expert (standard deviation, in action units). */
      noise: z.number().finite().gte(0).default(0),
      episodes: positiveInt,
    })
    .strict(),
  z
    .object({
      policy: z.literal('checkpoint'),
      /** A run directory or .ckpt; `{task}` is replaced by the task key. */
      path: z.string().min(1),
      /** Sampled actions (behaviour data, default) or greedy ones. */
      mode: z.enum(['sample', 'greedy']).default('sample'),
      episodes: positiveInt,
    })
    .strict(),
]);
export type CollectPolicyEntry = z.infer<typeof policyEntrySchema>;

export const collectConfigSchema = z
  .object({
    env: z
      .object({
        id: z.string().min(1),
        options: z.record(z.string(), z.unknown()).optional(),
        /** A user env module (relative to the config's folder); collected as one task. */
        module: z.string().min(1).optional(),
      })
      .strict(),
    /** For task families: `all` (default), `train`, `test`, or a list of task keys. */
    tasks: z.union([z.enum(['all', 'train', 'test']), z.array(z.string().min(1)).min(1)]).default('all'),
    policies: z.array(policyEntrySchema).min(1),
    /** A label of the data's quality, stored in every header: `medium`, `expert`, `mixed`, … */
    quality: z.string().min(1),
    seed: z.union([z.number().int(), z.string().min(1)]).default(0),
    num_envs: positiveInt.lte(4096).default(10),
    workers: z.number().int().gte(0).lte(256).default(0),
    /** tfjs backend for checkpoint policies. */
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  })
  .strict();
export type CollectConfig = z.infer<typeof collectConfigSchema>;

export const DATASET_MANIFEST = 'dataset.json';
export const MANIFEST_FORMAT = 'troupe-dataset-set';
export const MANIFEST_VERSION = 1;

/** `<out>/dataset.json`: what a set of per-task datasets holds. */
export interface DatasetManifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  env: EnvSpec;
  quality: string;
  policy: string;
  seed: string;
  numEnvs: number;
  tasks: Array<{
    key: string;
    /** File name in the manifest's folder. */
    file: string;
    env: EnvSpec;
    split: 'train' | 'test' | null;
    parameters: Record<string, unknown> | null;
    episodes: number;
    meanReturn: number;
  }>;
}

/** Reads and validates a collect config; errors name the file and key. */
export function loadCollectConfig(file: string): CollectConfig {
  const config = loadYamlConfigFile(file, collectConfigSchema, 'collect config');
  if (config.env.module) {
    const module = path.resolve(path.dirname(path.resolve(file)), config.env.module);
    if (!fs.existsSync(module)) throw new RunConfigError(`${file}: env.module: env module ${module} does not exist`);
    return { ...config, env: { ...config.env, module } };
  }
  return config;
}

/** One dataset to make: a task and the env that builds it. */
export interface CollectTask {
  key: string;
  env: EnvSpec;
  split: 'train' | 'test' | null;
  parameters: Record<string, unknown> | null;
}

/** The tasks a config collects: the chosen members of the env's task family, or the env itself. */
export function collectTasks(config: CollectConfig): CollectTask[] {
  registerBuiltinEnvs();
  const { id, options, module } = config.env;
  let family: TaskFamilyMember[] | undefined;
  try {
    family = module ? undefined : envTaskFamily(id, options ?? {});
  } catch (error) {
    throw new RunConfigError(`env.options: ${(error as Error).message}`);
  }
  if (!family) {
    if (config.tasks !== 'all') throw new RunConfigError(`tasks: '${id}' is not a task family (it lists no tasks), so only 'all' (the env itself) can be collected`);
    return [{ key: id, env: { id, ...(options ? { options } : {}), ...(module ? { module } : {}) }, split: null, parameters: null }];
  }
  const member = (m: TaskFamilyMember): CollectTask => ({ key: m.key, env: { id, options: m.options }, split: m.split, parameters: m.parameters });
  if (config.tasks === 'all') return family.map(member);
  if (config.tasks === 'train' || config.tasks === 'test') return family.filter((m) => m.split === config.tasks).map(member);
  const byKey = new Map(family.map((m) => [m.key, m]));
  const firstAt = new Map<string, number>();
  config.tasks.forEach((key, i) => {
    if (firstAt.has(key)) throw new RunConfigError(`tasks[${i}]: '${key}' is listed twice (first at tasks[${firstAt.get(key)}])`);
    firstAt.set(key, i);
  });
  return config.tasks.map((key, i) => {
    const m = byKey.get(key);
    if (!m) throw new RunConfigError(`tasks[${i}]: '${key}' is not a task of ${id} (its tasks: ${family[0].key} … ${family[family.length - 1].key})`);
    return member(m);
  });
}

/** The policies entry as a header's policy description, e.g. `expert (noise 0.3) ×80 + random ×20`. */
export function describePolicies(entries: readonly CollectPolicyEntry[], task?: string): string {
  return entries
    .map((e, i) => {
      const what = e.policy === 'random' ? 'random' : e.policy === 'expert' ? `expert (noise ${e.noise})` : `checkpoint ${task === undefined ? e.path : checkpointFileOf(e, i, task)} (${e.mode})`;
      return `${what} ×${e.episodes}`;
    })
    .join(' + ');
}

/**
 * The checkpoint file a checkpoint entry loads for a task (a run directory resolves to its newest
 * checkpoint), so a run that trained on since is seen as other settings, not kept silently.
 */
function checkpointFileOf(entry: Extract<CollectPolicyEntry, { policy: 'checkpoint' }>, index: number, task: string): string {
  const target = entry.path.replaceAll('{task}', task);
  try {
    return locateCheckpointFile(target).path;
  } catch (error) {
    throw new Error(`policies[${index}] for task '${task}': ${(error as Error).message}`);
  }
}

export interface CollectProgress {
  /** Episodes recorded so far (all tasks), and the total to record. */
  done: number;
  total: number;
  task: string;
}

export interface CollectOutcome {
  manifest: DatasetManifest;
  /** Task keys collected now, and those already complete on disk. */
  collected: string[];
  kept: string[];
}

/**
 * Collects every task's dataset into `outDir` (see the file header). `onProgress` is called after
 * every recorded episode.
 */
export async function collectDatasets(config: CollectConfig, outDir: string, opts: { workers?: number; onProgress?: (p: CollectProgress) => void; log?: (line: string) => void } = {}): Promise<CollectOutcome> {
  const tasks = collectTasks(config);
  const workers = opts.workers ?? config.workers;
  const seed = String(config.seed);
  const perTask = config.policies.reduce((n, e) => n + e.episodes, 0);
  const total = perTask * tasks.length;
  fs.mkdirSync(outDir, { recursive: true });

  const needsBackend = config.policies.some((e) => e.policy === 'checkpoint');
  if (needsBackend) {
    const backend = await selectBackend(config.backend as BackendPreference);
    opts.log?.(`backend: ${backend.backend} (${backend.reason})`);
  }

  const manifestFile = path.join(outDir, DATASET_MANIFEST);
  const manifest: DatasetManifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    env: { id: config.env.id, ...(config.env.options ? { options: config.env.options } : {}), ...(config.env.module ? { module: config.env.module } : {}) },
    quality: config.quality,
    policy: describePolicies(config.policies),
    seed,
    numEnvs: config.num_envs,
    tasks: [],
  };
  // Tasks collected into this folder before (e.g. the train side, then the test side) stay listed.
  const earlier = readManifest(manifestFile);
  if (earlier) {
    const differences = manifestDifferences(earlier, manifest);
    if (differences.length > 0) throw new Error(`${manifestFile} describes a collection with other settings (${differences.join('; ')}); collect into another --out folder`);
    manifest.tasks = earlier.tasks.filter((t) => !tasks.some((u) => u.key === t.key));
  }
  const collected: string[] = [];
  const kept: string[] = [];
  let done = 0;
  for (const task of tasks) {
    const file = path.join(outDir, `${fileNameOf(task.key)}.msgpack`);
    const policy = describePolicies(config.policies, task.key);
    await prepareEnvSpec(task.env);
    const probe = instantiateEnv(task.env);
    let shape: EnvShape;
    try {
      shape = envShape(probe);
    } finally {
      probe.close?.();
    }
    const header: DatasetHeader = { env: task.env, shape, task: task.key, policy, quality: config.quality, seed, numEnvs: config.num_envs, taskParameters: task.parameters, split: task.split };

    let episodes: DatasetEpisode[] | undefined;
    if (fs.existsSync(file)) {
      const existing = await readDataset(file).catch((error: Error) => {
        throw new Error(`${file} exists but cannot be read (${error.message}); delete it to collect it again`);
      });
      const differences = headerDifferences(existing.header, header, perTask, existing.episodes.length);
      if (differences.length > 0) throw new Error(`${file} exists with other settings (${differences.join('; ')}); collect into another --out folder or delete it`);
      episodes = existing.episodes;
      kept.push(task.key);
      done += perTask;
      opts.onProgress?.({ done, total, task: task.key });
    } else {
      episodes = [];
      for (const [entryIndex, entry] of config.policies.entries()) {
        const entrySeed = deriveSeed(seed, task.key, entryIndex);
        const vec = await VectorEnv.create({ env: task.env, numEnvs: Math.min(config.num_envs, entry.episodes), workers, seed: entrySeed });
        let acting: (Policy & { dispose?: () => void }) | undefined;
        try {
          acting = await policyFor(entry, task, vec, entrySeed).catch((error: Error) => {
            throw new Error(`policies[${entryIndex}] for task '${task.key}': ${error.message}`);
          });
          const before = done;
          const recorded = await collectEpisodes(vec, acting, entry.episodes, 0, (count) => {
            done = before + count;
            opts.onProgress?.({ done, total, task: task.key });
          });
          episodes.push(...recorded);
        } finally {
          acting?.dispose?.();
          await vec.close();
        }
      }
      await writeDataset(file, { header, episodes });
      collected.push(task.key);
    }
    const meanReturn = episodes.reduce((s, e) => s + e.return, 0) / episodes.length;
    manifest.tasks.push({ key: task.key, file: path.basename(file), env: task.env, split: task.split, parameters: task.parameters, episodes: episodes.length, meanReturn });
  }
  manifest.tasks.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  writeFileAtomicSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  return { manifest, collected, kept };
}

/** Task keys may hold `/` or `:` (env ids); file names may not. */
function fileNameOf(key: string): string {
  return key.replace(/[/:]/g, '_');
}

async function policyFor(entry: CollectPolicyEntry, task: CollectTask, vec: VectorEnv, seed: string): Promise<Policy & { dispose?: () => void }> {
  if (entry.policy === 'random') return new RandomPolicy(vec.layout, `${seed}/policy`);
  if (entry.policy === 'expert') {
    if (task.env.module) throw new Error(`'expert': only built-in envs have a scripted expert; ${task.env.module} is a user env module`);
    return expertPolicyFor(task.env.id, vec.layout, { noise: entry.noise, seed: `${seed}/policy`, envOptions: task.env.options });
  }
  const target = entry.path.replaceAll('{task}', task.key);
  const policy = await loadPolicy(target, { numEnvs: vec.layout.numEnvs, mode: entry.mode, seed: deriveSeed(seed, 'policy') });
  const differences = shapeDifferences(policy.spec.shape, vec.layout);
  if (differences.length > 0) {
    policy.dispose();
    throw new Error(`checkpoint ${target} does not fit task '${task.key}': ${differences.join('; ')}`);
  }
  return policy;
}

/** Why an existing dataset file is not the one this config would write (empty when it is). */
function headerDifferences(have: DatasetHeader, want: DatasetHeader, wantEpisodes: number, haveEpisodes: number): string[] {
  const out: string[] = [];
  if (canonicalJson(have.env) !== canonicalJson(want.env)) out.push(`env ${JSON.stringify(have.env)}, not ${JSON.stringify(want.env)}`);
  out.push(...shapeDifferences(have.shape, want.shape).map((d) => `shape: ${d}`));
  if (have.policy !== want.policy) out.push(`policy '${have.policy}', not '${want.policy}'`);
  if (have.quality !== want.quality) out.push(`quality '${have.quality}', not '${want.quality}'`);
  if (have.seed !== want.seed) out.push(`seed '${have.seed}', not '${want.seed}'`);
  if ((have.numEnvs ?? null) !== want.numEnvs) out.push(`num_envs ${have.numEnvs ?? 'not recorded'}, not ${want.numEnvs}`);
  if (haveEpisodes !== wantEpisodes) out.push(`${haveEpisodes} episodes, not ${wantEpisodes}`);
  return out;
}

function manifestDifferences(have: DatasetManifest, want: DatasetManifest): string[] {
  const out: string[] = [];
  if (canonicalJson(have.env) !== canonicalJson(want.env)) out.push(`env ${JSON.stringify(have.env)}, not ${JSON.stringify(want.env)}`);
  for (const key of ['policy', 'quality', 'seed', 'numEnvs'] as const) {
    if (have[key] !== want[key]) out.push(`${key} ${JSON.stringify(have[key])}, not ${JSON.stringify(want[key])}`);
  }
  return out;
}

/** The manifest in `file`, undefined when there is none; an error naming the file when it is not one. */
export function readManifest(file: string): DatasetManifest | undefined {
  if (!fs.existsSync(file)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file} cannot be read (${(error as Error).message}); delete it, or collect into another --out folder`);
  }
  const m = value as Partial<DatasetManifest> | null;
  if (!m || m.format !== MANIFEST_FORMAT || m.version !== MANIFEST_VERSION || !Array.isArray(m.tasks)) {
    throw new Error(`${file} is not a troupe dataset manifest (format '${MANIFEST_FORMAT}', version ${MANIFEST_VERSION}); collect into another --out folder`);
  }
  return m as DatasetManifest;
}

/** JSON with object keys sorted, so option order in a YAML file does not count as a difference. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}
