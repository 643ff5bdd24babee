import type { EnvSpec } from '../env-spec';
import { DEFAULT_HORIZON } from './manipulation-env';
import type { MultiTaskEnvOptions } from './multi-task-env';
import { MANIPULATION_TASKS, manipulationTask } from './register';

/**
 * Meta-World's benchmark splits as objects: which task kinds an agent trains on and which it is
 * tested on, whether the goal is in the observation, whether a one-hot task id is appended, and
 * which configuration lists (object/goal placements) each kind uses.
 *
 * - MT (multi-task, e.g. MT10): the goal is visible, a one-hot task id is appended, and the agent
 *   is evaluated on its training tasks and configurations (Meta-World's MT has no test tasks).
 * - ML (meta-learning, e.g. ML10, ML1-<kind>): the goal is hidden (the agent must infer the task
 *   from rewards), no task id; training configurations come from the benchmark seed s and test
 *   configurations from s + 1, so test goals are unseen even for ML1's single kind.
 *
 * Kinds are plain names resolved through `manipulationTask(kind)` when an env is built, so a
 * split may name kinds that are not registered yet (building its env then fails, naming them).
 */

export type SplitRole = 'train' | 'test';

export interface BenchmarkSplit {
  /** Its env id stem, e.g. `MT10`, `ML10`, `ML1-push`. */
  readonly name: string;
  readonly setting: 'multi-task' | 'meta-learning';
  readonly description: string;
  readonly trainKinds: readonly string[];
  /** MT splits: the training kinds (evaluation is on the training tasks). */
  readonly testKinds: readonly string[];
  /** False in ML splits: the goal slots of the observation are zeros. */
  readonly goalObservable: boolean;
  /** Whether the env appends a one-hot id over the split's kinds (`metadata.numTasks`). */
  readonly oneHotTaskId: boolean;
  /** Configurations drawn per kind (Meta-World's `_N_GOALS` = 50). */
  readonly configurationsPerKind: number;
  /** Added to the benchmark seed s to draw the train / test configuration lists. */
  readonly trainSeedOffset: number;
  readonly testSeedOffset: number;
}

/** Meta-World's `_N_GOALS`. */
export const CONFIGURATIONS_PER_KIND = 50;

export const MT10: BenchmarkSplit = Object.freeze({
  name: 'MT10',
  setting: 'multi-task',
  description: 'Meta-World MT10: 10 tasks, goal visible, one-hot task id appended; evaluated on the training tasks',
  trainKinds: Object.freeze(['reach', 'push', 'pick-place', 'door-open', 'drawer-open', 'drawer-close', 'button-press-topdown', 'peg-insert-side', 'window-open', 'window-close']),
  testKinds: Object.freeze(['reach', 'push', 'pick-place', 'door-open', 'drawer-open', 'drawer-close', 'button-press-topdown', 'peg-insert-side', 'window-open', 'window-close']),
  goalObservable: true,
  oneHotTaskId: true,
  configurationsPerKind: CONFIGURATIONS_PER_KIND,
  trainSeedOffset: 0,
  testSeedOffset: 0,
});

export const ML10: BenchmarkSplit = Object.freeze({
  name: 'ML10',
  setting: 'meta-learning',
  description: 'Meta-World ML10: meta-train on 10 kinds, meta-test on 5 held-out kinds; goal hidden',
  trainKinds: Object.freeze(['reach', 'push', 'pick-place', 'door-open', 'drawer-close', 'button-press-topdown', 'peg-insert-side', 'window-open', 'sweep', 'basketball']),
  testKinds: Object.freeze(['drawer-open', 'door-close', 'shelf-place', 'sweep-into', 'lever-pull']),
  goalObservable: false,
  oneHotTaskId: false,
  configurationsPerKind: CONFIGURATIONS_PER_KIND,
  trainSeedOffset: 0,
  testSeedOffset: 1,
});

/** The fixed splits (ML1 exists once per kind: `ml1Split(kind)`). */
export const BENCHMARK_SPLITS: readonly BenchmarkSplit[] = Object.freeze([MT10, ML10]);

const ML1_PREFIX = 'ML1-';

/** Meta-World's ML1 for one kind: 50 train configurations from seed s, 50 test ones from s + 1, goal hidden. */
export function ml1Split(kind: string): BenchmarkSplit {
  manipulationTask(kind); // unknown kinds fail here, with the list of known ones
  return Object.freeze({
    name: `${ML1_PREFIX}${kind}`,
    setting: 'meta-learning' as const,
    description: `Meta-World ML1 for ${kind}: train and test on ${kind}, with unseen test goals; goal hidden`,
    trainKinds: Object.freeze([kind]),
    testKinds: Object.freeze([kind]),
    goalObservable: false,
    oneHotTaskId: false,
    configurationsPerKind: CONFIGURATIONS_PER_KIND,
    trainSeedOffset: 0,
    testSeedOffset: 1,
  });
}

const customSplits = new Map<string, BenchmarkSplit>();

/**
 * Makes a user-defined split known to `benchmarkSplit` (and so to its env ids once
 * `registerSplitEnvs`' parser sees them). Names must not clash with built-in ones.
 */
export function defineBenchmarkSplit(split: BenchmarkSplit): BenchmarkSplit {
  validateSplit(split);
  if (BENCHMARK_SPLITS.some((s) => s.name === split.name) || split.name.startsWith(ML1_PREFIX)) {
    throw new Error(`defineBenchmarkSplit: '${split.name}' is a built-in split name`);
  }
  const existing = customSplits.get(split.name);
  if (existing && JSON.stringify(existing) !== JSON.stringify(split)) throw new Error(`defineBenchmarkSplit: '${split.name}' is already defined differently`);
  const frozen = Object.freeze({ ...split, trainKinds: Object.freeze([...split.trainKinds]), testKinds: Object.freeze([...split.testKinds]) });
  customSplits.set(split.name, frozen);
  return frozen;
}

/** The split called `name` (`MT10`, `ML10`, `ML1-<kind>` or a defined one), or a clear error. */
export function benchmarkSplit(name: string): BenchmarkSplit {
  const found = findBenchmarkSplit(name);
  if (found) return found;
  const known = [...BENCHMARK_SPLITS.map((s) => s.name), ...customSplits.keys(), `${ML1_PREFIX}<kind>`];
  throw new Error(`unknown benchmark split '${name}' (known: ${known.join(', ')})`);
}

/** Like `benchmarkSplit`, but undefined for names that are no split; an `ML1-` name with an unknown kind still throws. */
export function findBenchmarkSplit(name: string): BenchmarkSplit | undefined {
  const fixed = BENCHMARK_SPLITS.find((s) => s.name === name) ?? customSplits.get(name);
  if (fixed) return fixed;
  if (name.startsWith(ML1_PREFIX) && name.length > ML1_PREFIX.length) return ml1Split(name.slice(ML1_PREFIX.length));
  return undefined;
}

export function splitKinds(split: BenchmarkSplit, role: SplitRole): readonly string[] {
  return role === 'train' ? split.trainKinds : split.testKinds;
}

/** Whether a split has a test side of its own (ML); MT splits are evaluated on their training tasks. */
export function hasTestRole(split: BenchmarkSplit): boolean {
  return split.setting === 'meta-learning';
}

/** The kinds of a split that are not registered in MANIPULATION_TASKS (yet). */
export function unavailableKinds(split: BenchmarkSplit): string[] {
  const known = new Set(MANIPULATION_TASKS.map((t) => t.kind));
  return [...new Set([...split.trainKinds, ...split.testKinds])].filter((k) => !known.has(k));
}

/** The registry id of a split's train or test env: `MT10`, `ML10`, `ML10:test`, `ML1-push:test`. */
export function splitEnvId(split: BenchmarkSplit, role: SplitRole = 'train'): string {
  if (role === 'test' && !hasTestRole(split)) return split.name;
  return role === 'test' ? `${split.name}:test` : split.name;
}

export interface SplitEnvSettings {
  /** Meta-World's benchmark seed s (train configurations from s + trainSeedOffset, test from s + testSeedOffset). Default 0. */
  seed?: number;
  horizon?: number;
  /** Fix every episode to this member kind (per-task evaluation); the one-hot layout stays the split's. */
  kind?: string;
}

/** The options of the multi-task env that plays a split's train or test side. */
export function splitEnvOptions(split: BenchmarkSplit, role: SplitRole, settings: SplitEnvSettings = {}): MultiTaskEnvOptions {
  const seed = settings.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`${split.name}: option 'seed' must be a non-negative integer (the benchmark seed), got ${String(seed)}`);
  const kinds = splitKinds(split, role);
  if (settings.kind !== undefined && !kinds.includes(settings.kind)) {
    throw new Error(`${splitEnvId(split, role)}: '${settings.kind}' is not one of its ${role} tasks (${kinds.join(', ')})`);
  }
  return {
    id: settings.kind === undefined ? splitEnvId(split, role) : `${splitEnvId(split, role)}/${settings.kind}`,
    kinds: [...kinds],
    kind: settings.kind,
    configurations: split.configurationsPerKind,
    seed: seed + (role === 'train' ? split.trainSeedOffset : split.testSeedOffset),
    goalObservable: split.goalObservable,
    oneHot: split.oneHotTaskId,
    horizon: settings.horizon ?? DEFAULT_HORIZON,
  };
}

/**
 * The EnvSpec of a split's train or test env (for VectorEnv, run configs, `troupe eval`); with
 * `kind`, the fixed-kind env `<id>/<kind>` used for per-task evaluation.
 */
export function splitEnvSpec(split: BenchmarkSplit, role: SplitRole = 'train', settings: SplitEnvSettings = {}): EnvSpec {
  splitEnvOptions(split, role, settings); // validates
  const base = splitEnvId(split, role);
  const options: Record<string, unknown> = {};
  if (settings.seed !== undefined) options.seed = settings.seed;
  if (settings.horizon !== undefined) options.horizon = settings.horizon;
  return { id: settings.kind === undefined ? base : `${base}/${settings.kind}`, options };
}

function validateSplit(split: BenchmarkSplit): void {
  const where = `benchmark split '${String(split.name)}'`;
  if (typeof split.name !== 'string' || !/^[A-Za-z][A-Za-z0-9_.-]*$/.test(split.name)) throw new Error(`${where}: name must be letters, digits, _ . - (starting with a letter)`);
  for (const role of ['train', 'test'] as const) {
    const kinds = splitKinds(split, role);
    if (!Array.isArray(kinds) || kinds.length === 0) throw new Error(`${where}: ${role}Kinds must be a non-empty list of task kinds`);
    if (new Set(kinds).size !== kinds.length) throw new Error(`${where}: ${role}Kinds has duplicates`);
  }
  if (split.setting === 'multi-task' && JSON.stringify(split.trainKinds) !== JSON.stringify(split.testKinds)) {
    throw new Error(`${where}: a multi-task split is evaluated on its training tasks, so testKinds must equal trainKinds`);
  }
  if (!Number.isInteger(split.configurationsPerKind) || split.configurationsPerKind < 1) throw new Error(`${where}: configurationsPerKind must be a positive integer`);
  for (const key of ['trainSeedOffset', 'testSeedOffset'] as const) {
    if (!Number.isSafeInteger(split[key]) || split[key] < 0) throw new Error(`${where}: ${key} must be a non-negative integer`);
  }
}
