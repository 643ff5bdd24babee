import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Packr } from 'msgpackr';
import { type EnvShape, shapeDifferences } from '../envs/env-shape';
import type { EnvSpec } from '../envs/env-spec';
import { writeFileAtomicSync } from '../runtime/core/atomic-file';
import { readFileAs } from '../runtime/core/checkpoint';
import { type SerializedArray, type StoredArray, deserializeArray, serializeArray } from '../runtime/core/checkpoint-format';

/*
 * Offline datasets: recorded episodes of one task, what offline learners train on. A file is
 * msgpack (`.msgpack`): a magic tag, a format version, a header (the env spec and shape it was
 * recorded from, the task key, what policy collected it and how good that policy is) and the
 * episodes, each a handful of typed arrays. Reading validates everything and names the file and
 * field of the first problem, so a truncated, foreign or mismatched file never reaches a learner.
 */

export const DATASET_MAGIC = 'troupe-dataset';
/** Version 2 added the task's parameters and split to the header; version 1 files still read (both null). */
export const DATASET_VERSION = 2;
const READABLE_VERSIONS: readonly number[] = [1, 2];
export const DATASET_EXTENSION = '.msgpack';

export interface DatasetHeader {
  /** The env the episodes were recorded in, and its shape (every array below is laid out by it). */
  env: EnvSpec;
  shape: EnvShape;
  /** The run's key of the task (default: the env id). */
  task: string;
  /** What collected the episodes (e.g. `expert (noise 0.1)`, `random`, a checkpoint path). */
  policy: string;
  /** A label of the data's quality (`expert`, `medium`, `mixed`, `random`), free-form. */
  quality: string;
  seed: string;
  /** When it was written; optional since version 2, so that a collection can be reproduced byte for byte. */
  createdAt?: string;
  /** How many envs collected side by side (with the seed, the episodes depend on it; not on worker threads). */
  numEnvs?: number | null;
  /**
   * What defines the task (e.g. point-robot's `{ goal: [x, y], task: 7 }`, from the env's task
   * family), for probes and analyses; learners never see it. Null when the env defines none.
   */
  taskParameters?: Record<string, unknown> | null;
  /** The task's side of its family's train/test split; null outside a task family. */
  split?: 'train' | 'test' | null;
}

/** One recorded episode of T steps (A = shape.numAgents). */
export interface DatasetEpisode {
  /** [T+1, A, obsDim]: the observation before each step, then the final one. */
  obs: Float32Array;
  /** [T+1, stateDim] */
  state: Float32Array;
  /** [T, A, actDim]: what each agent did (zeros for agents not acting). */
  actions: Float32Array;
  /** [T, A] */
  rewards: Float32Array;
  /** [T, A]: 1 where the agent acted at step t. */
  alive: Uint8Array;
  /** [T, A, numActions]: the legal actions at step t (empty for continuous actions). */
  masks: Uint8Array;
  /** 1 when the episode ended by termination (no bootstrap), 0 for a truncation. */
  terminated: number;
  /** The team return and success (1 / 0, NaN when the task reports none), as the VectorEnv reported them. */
  return: number;
  success: number;
}

export interface OfflineDataset {
  header: DatasetHeader;
  episodes: DatasetEpisode[];
}

/** Steps of an episode (from its reward rows). */
export function episodeLength(episode: DatasetEpisode, shape: EnvShape): number {
  return episode.rewards.length / shape.numAgents;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const ARRAY_FIELDS = ['obs', 'state', 'actions', 'rewards', 'alive', 'masks'] as const;
type ArrayField = (typeof ARRAY_FIELDS)[number];

/** Numbers each array field holds for an episode of T steps. */
function expectedLengths(shape: EnvShape, T: number): Record<ArrayField, number> {
  const { numAgents: A, obsDim, stateDim, actDim, numActions: K, discreteActions } = shape;
  return { obs: (T + 1) * A * obsDim, state: (T + 1) * stateDim, actions: T * A * actDim, rewards: T * A, alive: T * A, masks: discreteActions ? T * A * K : 0 };
}

const FIELD_TYPES: Record<ArrayField, string> = { obs: 'Float32Array', state: 'Float32Array', actions: 'Float32Array', rewards: 'Float32Array', alive: 'Uint8Array', masks: 'Uint8Array' };

/** Throws unless `episode` is laid out by `shape`; `where` names it in the message. */
export function checkEpisode(episode: DatasetEpisode, shape: EnvShape, where: string): void {
  const A = shape.numAgents;
  if (!(episode.rewards instanceof Float32Array) || episode.rewards.length === 0 || episode.rewards.length % A !== 0) {
    throw new Error(`${where}.rewards must be a non-empty Float32Array of T·${A} numbers`);
  }
  const T = episode.rewards.length / A;
  const want = expectedLengths(shape, T);
  for (const field of ARRAY_FIELDS) {
    const value = episode[field] as StoredArray;
    if (value?.constructor?.name !== FIELD_TYPES[field]) throw new Error(`${where}.${field} must be a ${FIELD_TYPES[field]}, got ${value?.constructor?.name ?? typeof value}`);
    if (value.length !== want[field]) throw new Error(`${where}.${field} has ${value.length} numbers, expected ${want[field]} for ${T} steps of the header's shape`);
  }
  for (const field of ['obs', 'actions', 'rewards'] as const) {
    const values = episode[field];
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw new Error(`${where}.${field}[${i}] is ${values[i]}, not a finite number`);
  }
  if (episode.terminated !== 0 && episode.terminated !== 1) throw new Error(`${where}.terminated must be 0 or 1`);
  if (shape.discreteActions) {
    // Discrete actions must be ones the agent could take: whole numbers, in its space, legal then.
    const K = shape.numActions;
    for (let t = 0; t < T; t++) {
      for (let a = 0; a < A; a++) {
        const i = t * A + a;
        if (!episode.alive[i]) continue;
        const action = episode.actions[i * shape.actDim];
        const agent = `agent '${shape.agentIds[a]}' at step ${t}`;
        if (!Number.isInteger(action) || action < 0 || action >= shape.agentNumActions[a]) {
          throw new Error(`${where}.actions: ${agent} took ${action}, not an action of Discrete(${shape.agentNumActions[a]})`);
        }
        if (!episode.masks[i * K + action]) throw new Error(`${where}.actions: ${agent} took action ${action}, which its mask forbids`);
      }
    }
  }
}

/** Writes a dataset file (checking every episode against the header's shape first). */
export async function writeDataset(file: string, dataset: OfflineDataset): Promise<void> {
  dataset.episodes.forEach((ep, i) => checkEpisode(ep, dataset.header.shape, `episodes[${i}]`));
  const episodes = dataset.episodes.map((ep) => {
    const arrays: Record<string, SerializedArray> = {};
    for (const field of ARRAY_FIELDS) arrays[field] = serializeArray(ep[field]);
    return { ...arrays, terminated: ep.terminated, return: ep.return, success: Number.isNaN(ep.success) ? null : ep.success };
  });
  await fsp.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const header: DatasetHeader = { ...dataset.header, taskParameters: dataset.header.taskParameters ?? null, split: dataset.header.split ?? null };
  // Through a temporary file and a rename: an interrupted write never leaves a truncated dataset.
  writeFileAtomicSync(file, packr.pack({ magic: DATASET_MAGIC, version: DATASET_VERSION, header, episodes }));
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Reads and validates a dataset file; every problem is an error naming the file and field. */
export async function readDataset(file: string): Promise<OfflineDataset> {
  const bytes = await readFileAs('dataset', file);
  let root: unknown;
  try {
    root = packr.unpack(bytes);
  } catch (error) {
    throw new Error(`dataset ${file} is corrupt or truncated (${(error as Error).message})`);
  }
  const fail = (field: string, problem: string): never => {
    throw new Error(`dataset ${file}: field '${field}' ${problem}`);
  };
  if (!isMap(root) || root.magic !== DATASET_MAGIC) throw new Error(`${file} is not a troupe dataset (no '${DATASET_MAGIC}' tag)`);
  if (typeof root.version !== 'number' || !READABLE_VERSIONS.includes(root.version)) fail('version', `is ${String(root.version)}; this build reads versions ${READABLE_VERSIONS.join(' and ')}`);
  const header = root.header;
  if (!isMap(header)) return fail('header', 'must be a map');
  if (root.version === 1) {
    header.taskParameters = null;
    header.split = null;
  }
  if (header.taskParameters !== null && !isMap(header.taskParameters)) fail('header.taskParameters', 'must be a map or null');
  if (header.split !== null && header.split !== 'train' && header.split !== 'test') fail('header.split', "must be 'train', 'test' or null");
  for (const key of ['task', 'policy', 'quality', 'seed'] as const) if (typeof header[key] !== 'string') fail(`header.${key}`, 'must be a string');
  if (typeof header.createdAt !== 'string' && (root.version === 1 || header.createdAt !== undefined)) fail('header.createdAt', 'must be a string');
  if (header.numEnvs !== undefined && header.numEnvs !== null && !(typeof header.numEnvs === 'number' && Number.isInteger(header.numEnvs) && header.numEnvs > 0)) fail('header.numEnvs', 'must be a positive integer or null');
  if (!isMap(header.env) || typeof header.env.id !== 'string') fail('header.env', 'must be an env spec with an id');
  if (!isMap(header.shape) || !Array.isArray(header.shape.agentIds)) fail('header.shape', 'must be an env shape');
  const shape = header.shape as unknown as EnvShape;
  for (const key of ['numAgents', 'obsDim', 'actDim', 'numActions', 'stateDim', 'maxEpisodeSteps'] as const) {
    if (typeof shape[key] !== 'number' || !Number.isInteger(shape[key]) || shape[key] < 0) fail(`header.shape.${key}`, 'must be a non-negative integer');
  }
  if (!Array.isArray(root.episodes)) return fail('episodes', 'must be a list');
  const episodes = root.episodes.map((raw, i): DatasetEpisode => {
    const where = `episodes[${i}]`;
    if (!isMap(raw)) return fail(where, 'must be a map');
    const arrays = {} as Record<ArrayField, StoredArray>;
    for (const field of ARRAY_FIELDS) {
      const a = raw[field];
      if (!isMap(a) || typeof a.type !== 'string' || !(a.data instanceof Uint8Array)) fail(`${where}.${field}`, 'must be a stored typed array');
      try {
        arrays[field] = deserializeArray(a as unknown as SerializedArray);
      } catch (error) {
        fail(`${where}.${field}`, `cannot be read: ${(error as Error).message}`);
      }
    }
    const num = (key: string, allowNull = false): number => {
      const v = raw[key];
      if (allowNull && v === null) return NaN;
      if (typeof v !== 'number' || !Number.isFinite(v)) return fail(`${where}.${key}`, 'must be a finite number');
      return v;
    };
    const episode: DatasetEpisode = {
      obs: arrays.obs as Float32Array,
      state: arrays.state as Float32Array,
      actions: arrays.actions as Float32Array,
      rewards: arrays.rewards as Float32Array,
      alive: arrays.alive as Uint8Array,
      masks: arrays.masks as Uint8Array,
      terminated: num('terminated'),
      return: num('return'),
      success: num('success', true),
    };
    try {
      checkEpisode(episode, shape, where);
    } catch (error) {
      throw new Error(`dataset ${file}: ${(error as Error).message}`);
    }
    return episode;
  });
  if (episodes.length === 0) fail('episodes', 'is empty');
  return { header: header as unknown as DatasetHeader, episodes };
}

/** Throws unless `dataset` was recorded from a task of `shape` (e.g. the env a run trains and evaluates on). */
export function checkDatasetShape(dataset: OfflineDataset, shape: EnvShape, source: string, envId: string): void {
  const differences = shapeDifferences(dataset.header.shape, shape);
  if (differences.length > 0) throw new Error(`dataset ${source} was recorded on '${dataset.header.env.id}', whose shape does not fit '${envId}': ${differences.join('; ')}`);
}
