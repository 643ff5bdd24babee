import { z } from 'zod';
import { type TaskFamilyMember, registerEnv, registerScenarioParser } from '../registry';
import {
  BENCHMARK_SPLITS,
  type BenchmarkSplit,
  CONFIGURATIONS_PER_KIND,
  findBenchmarkSplit,
  hasTestRole,
  type SplitRole,
  splitEnvId,
  splitEnvOptions,
  splitKinds,
  unavailableKinds,
} from './benchmark-split';
import { DEFAULT_HORIZON } from './manipulation-env';
import { MULTI_TASK_FAMILY, MULTI_TASK_OPTION_KEYS, MultiTaskManipulationEnv, createMultiTaskEnv } from './multi-task-env';
import { initPhysics } from './physics';
import { sampleTaskParams } from './register';
import type { TaskParamsBase } from './task';

/**
 * Env ids of the benchmark splits (family `manipulation/benchmarks`):
 *
 * - `MT10`, `ML10` (train side), `ML10:test`, `ML1-<kind>` and `ML1-<kind>:test`;
 * - `<split id>/<kind>`, e.g. `MT10/push`: the split's env fixed to one member kind, with the
 *   split's observation layout (one-hot over all its kinds), for per-task evaluation;
 * - `manipulation-multi-task` (unlisted): a multi-task env over any kinds given as options.
 *
 * Split envs take the options `seed` (Meta-World's benchmark seed s: train configurations from s,
 * ML test ones from s + 1; default 0), `horizon`, `kind` (same as the `/<kind>` suffix), `side`
 * (`train` or `test`: which side's configurations; default the id's, and a `:test` id cannot be
 * switched back) and `configuration` (an index into that side's list of the kind: every episode
 * plays that one configuration). A split is listed by `troupe envs` once all its kinds are registered.
 *
 * `ML1-<kind>` is also a task family (`ml1TaskFamily`): Meta-DT's ML1 set-up, where a task is one
 * configuration (one goal) rather than the whole distribution.
 */

export const MULTI_TASK_ENV_ID = 'manipulation-multi-task';

/** Bases that parsed ids resolve to; the factory reads the actual split from the id asked for. */
const ML1_TRAIN_BASE = 'ML1';
const ML1_TEST_BASE = 'ML1:test';
const CUSTOM_BASE = 'benchmark-split';

export interface ParsedSplitEnvId {
  split: BenchmarkSplit;
  role: SplitRole;
  /** The member kind fixed by a `/<kind>` suffix. */
  kind?: string;
}

/**
 * Reads a split env id (`ML10:test`, `MT10/push`, `ML1-reach:test`); undefined for ids that name no
 * split. Ids that name a split but an impossible side or kind throw a clear error.
 */
export function parseSplitEnvId(id: string): ParsedSplitEnvId | undefined {
  let rest = id;
  let kind: string | undefined;
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    kind = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
  }
  let role: SplitRole = 'train';
  if (rest.endsWith(':test')) {
    role = 'test';
    rest = rest.slice(0, -':test'.length);
  }
  const split = findBenchmarkSplit(rest);
  if (!split) return undefined;
  if (role === 'test' && !hasTestRole(split)) {
    throw new Error(`'${id}': ${split.name} is a multi-task split, evaluated on its training tasks; use '${split.name}${kind ? `/${kind}` : ''}'`);
  }
  if (kind !== undefined && !splitKinds(split, role).includes(kind)) {
    throw new Error(`'${id}': '${kind}' is not one of ${splitEnvId(split, role)}'s tasks (${splitKinds(split, role).join(', ')})`);
  }
  return { split, role, kind };
}

const splitOptionsSchema = z
  .object({
    id: z.string(),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER - 1).default(0),
    horizon: z.number().int().min(1).max(1_000_000).default(DEFAULT_HORIZON),
    kind: z.string().optional(),
    side: z.enum(['train', 'test']).optional(),
    configuration: z.number().int().min(0).optional(),
  })
  .strict();

const SPLIT_OPTION_KEYS: readonly string[] = Object.keys(splitOptionsSchema.shape);

/** Options of `ML1-<kind>` that size its task family; an env plays one configuration or all, so they mean nothing to one. */
const ML1_FAMILY_SIZE_KEYS = ['numTrainTasks', 'numTestTasks'] as const;

/** A split env's options, validated against its id: the side and kind it plays, seed, horizon, pinned configuration. */
interface SplitEnvChoice {
  id: string;
  parsed: ParsedSplitEnvId;
  role: SplitRole;
  kind: string | undefined;
  seed: number;
  horizon: number;
  configuration: number | undefined;
}

function parseSplitEnvOptions(options: Record<string, unknown>): SplitEnvChoice {
  const id = typeof options.id === 'string' ? options.id : '';
  const parsed = parseSplitEnvId(id);
  if (!parsed) throw new Error(`'${id}' is not a benchmark split env id (e.g. MT10, ML10, ML10:test, ML1-push, ML1-push:test, MT10/push)`);
  const sizing = ML1_FAMILY_SIZE_KEYS.filter((k) => options[k] !== undefined);
  if (sizing.length > 0) {
    throw new Error(`${id}: option${sizing.length > 1 ? 's' : ''} ${sizing.map((k) => `'${k}'`).join(', ')} size${sizing.length > 1 ? '' : 's'} the ML1 task family (what troupe collect lists), not an env; an env plays every configuration of its side, or the one option 'configuration' picks`);
  }
  const checked = splitOptionsSchema.safeParse(options);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${id}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${SPLIT_OPTION_KEYS.filter((k) => k !== 'id').join(', ')})`);
    }
    const name = issue.path.join('.');
    throw new Error(`${id}: invalid option '${name}' = ${JSON.stringify(options[name])}: ${issue.message}`);
  }
  const { seed, horizon, kind: kindOption, side, configuration } = checked.data;
  if (parsed.kind !== undefined && kindOption !== undefined && kindOption !== parsed.kind) {
    throw new Error(`${id}: option 'kind' is '${kindOption}' but the id fixes '${parsed.kind}'`);
  }
  if (side === 'test' && !hasTestRole(parsed.split)) {
    throw new Error(`${id}: option 'side' is 'test', but ${parsed.split.name} is a multi-task split, evaluated on its training tasks`);
  }
  // A `:test` id promises held-out configurations; letting an option undo that would hide the mistake.
  if (side === 'train' && parsed.role === 'test') throw new Error(`${id}: option 'side' is 'train' but the id names the test side; use '${id.replace(':test', '')}'`);
  const role = side ?? parsed.role;
  // Checked here, not only when the env is built: a task family and the hidden-goal expert read the kind from these options alone.
  if (kindOption !== undefined && !splitKinds(parsed.split, role).includes(kindOption)) {
    throw new Error(`${id}: option 'kind' is '${kindOption}', which is not one of ${splitEnvId(parsed.split, role)}'s tasks (${splitKinds(parsed.split, role).join(', ')})`);
  }
  const missing = unavailableKinds(parsed.split).filter((k) => splitKinds(parsed.split, role).includes(k));
  if (missing.length) {
    throw new Error(`${id}: task kind${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${parsed.split.name} ${missing.length > 1 ? 'are' : 'is'} not registered in MANIPULATION_TASKS yet`);
  }
  return { id, parsed, role, kind: parsed.kind ?? kindOption, seed, horizon, configuration };
}

/** The factory of every split id: the split, side and fixed kind come from `options.id` (side and kind also from options). */
export function createSplitEnvFromId(options: Record<string, unknown>): MultiTaskManipulationEnv {
  const { id, parsed, role, kind, seed, horizon, configuration } = parseSplitEnvOptions(options);
  const multiTask = splitEnvOptions(parsed.split, role, { seed, horizon, kind });
  return createMultiTaskEnv({ ...multiTask, id, ...(configuration === undefined ? {} : { configuration }) });
}

/** The configuration an ML1 env is pinned to, with where it comes from. */
export interface Ml1PinnedConfiguration {
  kind: string;
  side: SplitRole;
  /** Index into the side's configuration list. */
  configuration: number;
  params: TaskParamsBase;
}

/**
 * The configuration that the ML1 env `id` built with `options` plays in every episode (as a member
 * of its task family does: option `configuration`), found from the options alone, without building
 * the env; an error when the id is no ML1 split or the options pin no configuration. What a
 * policy that is told the task (the hidden-goal expert) reads.
 */
export function ml1PinnedConfiguration(id: string, options: Record<string, unknown> = {}): Ml1PinnedConfiguration {
  const choice = parseSplitEnvOptions({ ...options, id });
  const { split } = choice.parsed;
  if (!split.name.startsWith('ML1-')) throw new Error(`${id}: not an ML1 split (ML1-<kind>, ML1-<kind>:test)`);
  if (choice.configuration === undefined) {
    throw new Error(`${id}: the env plays a different configuration each episode; only one pinned by option 'configuration' (as the members of the ${split.name} task family are) is known in advance`);
  }
  const env = splitEnvOptions(split, choice.role, { seed: choice.seed });
  if (choice.configuration >= env.configurations) {
    throw new Error(`${id}: invalid option 'configuration' = ${choice.configuration}: configurations are indexed 0 to ${env.configurations - 1}`);
  }
  const kind = split.trainKinds[0];
  return { kind, side: choice.role, configuration: choice.configuration, params: sampleTaskParams(kind, env.configurations, env.seed)[choice.configuration] };
}

const ml1FamilySizeSchema = z
  .object({
    numTrainTasks: z.number().int().min(0).max(CONFIGURATIONS_PER_KIND, { message: `at most ${CONFIGURATIONS_PER_KIND}, the configurations of a side` }).default(15),
    numTestTasks: z.number().int().min(0).max(CONFIGURATIONS_PER_KIND, { message: `at most ${CONFIGURATIONS_PER_KIND}, the configurations of a side` }).default(5),
  })
  .passthrough();

/**
 * The task family of `ML1-<kind>` (Meta-DT's ML1 set-up: 20 tasks, 15 train / 5 test, each ONE
 * configuration, i.e. one goal; `numTrainTasks`, `numTestTasks` change the counts, up to the 50
 * configurations of a side). Members are keyed `train00` … and `test00` …; member k of a side is
 * that side's configuration k (from benchmark seed s for train, s + 1 for test, as `ML1-<kind>`
 * and `ML1-<kind>:test` draw them), built by the family's options (`seed`, `horizon`, `kind`) plus
 * `side` and `configuration`. The goal stays hidden, as in every ML split.
 *
 * Parameters: `goal` (the configuration's goal position) for kinds whose configurations have one,
 * otherwise their positions; `task`, the index in the side's list; and `params`, the configuration
 * itself. Only numbers and number lists outside `task` are what a probe of a task representation
 * fits, so the goal alone is the target where there is one (the object positions are observed).
 */
export function ml1TaskFamily(options: Record<string, unknown>): TaskFamilyMember[] {
  const id = typeof options.id === 'string' ? options.id : '';
  const sized = ml1FamilySizeSchema.safeParse(options);
  if (!sized.success) {
    const issue = sized.error.issues[0];
    const name = String(issue.path[0]);
    throw new Error(`${id}: invalid option '${name}' = ${JSON.stringify(options[name])}: ${issue.message}`);
  }
  const { numTrainTasks, numTestTasks, id: _id, ...family } = sized.data;
  // They pick one task; a family lists every task, and silently listing all would hide the mistake.
  for (const name of ['side', 'configuration'] as const) {
    if (family[name] !== undefined) throw new Error(`${id}: option '${name}' picks one task, but the task family lists them all; choose tasks by key instead (e.g. tasks: [train03] or tasks: test)`);
  }
  const choice = parseSplitEnvOptions({ ...family, id });
  if (numTrainTasks + numTestTasks === 0) throw new Error(`${id}: options 'numTrainTasks' and 'numTestTasks' are both 0; the family would have no task`);
  const kind = choice.parsed.split.trainKinds[0];
  const members: TaskFamilyMember[] = [];
  for (const [side, count] of [['train', numTrainTasks], ['test', numTestTasks]] as const) {
    const { seed } = splitEnvOptions(choice.parsed.split, side, { seed: choice.seed });
    sampleTaskParams(kind, count, seed).forEach((params, i) => {
      const { kind: _kind, ...placement } = params as unknown as Record<string, unknown>;
      const defining = 'goalPosition' in placement ? { goal: placement.goalPosition } : placement;
      members.push({
        key: `${side}${String(i).padStart(2, '0')}`,
        options: { ...family, side, configuration: i },
        split: side,
        parameters: { ...defining, task: i, params },
      });
    });
  }
  return members;
}

function baseIdOf(parsed: ParsedSplitEnvId): string {
  if (BENCHMARK_SPLITS.includes(parsed.split)) return splitEnvId(parsed.split, parsed.role);
  if (parsed.split.name.startsWith('ML1-')) return parsed.role === 'test' ? ML1_TEST_BASE : ML1_TRAIN_BASE;
  return CUSTOM_BASE;
}

let registered = false;

/** Registers the split ids and their parser (with `prepare: initPhysics`). Idempotent. */
export function registerSplitEnvs(): void {
  if (registered) return;
  registered = true;
  const defaults = { family: MULTI_TASK_FAMILY, prepare: initPhysics, optionKeys: SPLIT_OPTION_KEYS };
  for (const split of BENCHMARK_SPLITS) {
    const roles: SplitRole[] = hasTestRole(split) ? ['train', 'test'] : ['train'];
    for (const role of roles) {
      const kinds = splitKinds(split, role);
      registerEnv(splitEnvId(split, role), createSplitEnvFromId, {
        ...defaults,
        description: `${split.description} — ${role}: ${kinds.join(', ')}`,
        // Listing makes an instance (troupe envs, conformance tests); only possible once every kind exists.
        listed: unavailableKinds(split).length === 0,
      });
    }
  }
  registerEnv(ML1_TRAIN_BASE, createSplitEnvFromId, {
    ...defaults,
    optionKeys: [...SPLIT_OPTION_KEYS, ...ML1_FAMILY_SIZE_KEYS],
    taskFamily: ml1TaskFamily,
    listed: false,
    description: 'Meta-World ML1 train side: use ML1-<kind>; a task family of single configurations (15 train / 5 test)',
  });
  registerEnv(ML1_TEST_BASE, createSplitEnvFromId, { ...defaults, listed: false, description: 'Meta-World ML1 test side: use ML1-<kind>:test' });
  registerEnv(CUSTOM_BASE, createSplitEnvFromId, { ...defaults, listed: false, description: 'splits made with defineBenchmarkSplit' });
  registerEnv(MULTI_TASK_ENV_ID, createMultiTaskEnv, {
    ...defaults,
    optionKeys: MULTI_TASK_OPTION_KEYS,
    listed: false,
    description: 'a multi-task env over the kinds in options.kinds (options: kinds, kind, configurations, configuration, seed, goalObservable, oneHot, horizon)',
  });
  registerScenarioParser((id) => {
    const parsed = parseSplitEnvId(id);
    return parsed && { baseId: baseIdOf(parsed), options: {} };
  });
}
