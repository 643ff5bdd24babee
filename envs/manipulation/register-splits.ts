import { z } from 'zod';
import { registerEnv, registerScenarioParser } from '../registry';
import {
  BENCHMARK_SPLITS,
  type BenchmarkSplit,
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

/**
 * Env ids of the benchmark splits (family `manipulation/benchmarks`):
 *
 * - `MT10`, `ML10` (train side), `ML10:test`, `ML1-<kind>` and `ML1-<kind>:test`;
 * - `<split id>/<kind>`, e.g. `MT10/push`: the split's env fixed to one member kind, with the
 *   split's observation layout (one-hot over all its kinds), for per-task evaluation;
 * - `manipulation-multi-task` (unlisted): a multi-task env over any kinds given as options.
 *
 * Split envs take the options `seed` (Meta-World's benchmark seed s: train configurations from s,
 * ML test ones from s + 1; default 0), `horizon` and `kind` (same as the `/<kind>` suffix).
 * A split is listed by `troupe envs` once all its kinds are registered.
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
  })
  .strict();

/** The factory of every split id: the split, side and fixed kind come from `options.id`. */
export function createSplitEnvFromId(options: Record<string, unknown>): MultiTaskManipulationEnv {
  const id = typeof options.id === 'string' ? options.id : '';
  const parsed = parseSplitEnvId(id);
  if (!parsed) throw new Error(`'${id}' is not a benchmark split env id (e.g. MT10, ML10, ML10:test, ML1-push, ML1-push:test, MT10/push)`);
  const checked = splitOptionsSchema.safeParse(options);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${id}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: seed, horizon, kind)`);
    }
    throw new Error(`${id}: invalid option '${issue.path.join('.')}': ${issue.message}`);
  }
  const { seed, horizon, kind: kindOption } = checked.data;
  if (parsed.kind !== undefined && kindOption !== undefined && kindOption !== parsed.kind) {
    throw new Error(`${id}: option 'kind' is '${kindOption}' but the id fixes '${parsed.kind}'`);
  }
  const missing = unavailableKinds(parsed.split).filter((k) => splitKinds(parsed.split, parsed.role).includes(k));
  if (missing.length) {
    throw new Error(`${id}: task kind${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${parsed.split.name} ${missing.length > 1 ? 'are' : 'is'} not registered in MANIPULATION_TASKS yet`);
  }
  const multiTask = splitEnvOptions(parsed.split, parsed.role, { seed, horizon, kind: parsed.kind ?? kindOption });
  return createMultiTaskEnv({ ...multiTask, id });
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
  const defaults = { family: MULTI_TASK_FAMILY, prepare: initPhysics, optionKeys: Object.keys(splitOptionsSchema.shape) };
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
  registerEnv(ML1_TRAIN_BASE, createSplitEnvFromId, { ...defaults, listed: false, description: 'Meta-World ML1 train side: use ML1-<kind>' });
  registerEnv(ML1_TEST_BASE, createSplitEnvFromId, { ...defaults, listed: false, description: 'Meta-World ML1 test side: use ML1-<kind>:test' });
  registerEnv(CUSTOM_BASE, createSplitEnvFromId, { ...defaults, listed: false, description: 'splits made with defineBenchmarkSplit' });
  registerEnv(MULTI_TASK_ENV_ID, createMultiTaskEnv, {
    ...defaults,
    optionKeys: MULTI_TASK_OPTION_KEYS,
    listed: false,
    description: 'a multi-task env over the kinds in options.kinds (options: kinds, kind, configurations, seed, goalObservable, oneHot, horizon)',
  });
  registerScenarioParser((id) => {
    const parsed = parseSplitEnvId(id);
    return parsed && { baseId: baseIdOf(parsed), options: {} };
  });
}
