import { registerBuiltinEnvs } from '../../envs/builtin';
import { listEnvs, makeEnv, prepareEnv } from '../../envs/registry';
import type { SpaceJSON } from '../../envs/spaces/space';
import { BENCHMARK_SPLITS, type BenchmarkSplit, hasTestRole, ml1Split, splitEnvId, unavailableKinds } from '../../envs/manipulation/benchmark-split';
import { parseSplitEnvId } from '../../envs/manipulation/register-splits';
import { MANIPULATION_TASKS } from '../../envs/manipulation/register';

export interface EnvListing {
  id: string;
  family: string;
  description?: string;
  possibleAgents: string[];
  maxEpisodeSteps: number;
  /** Per agent; agents with identical spaces share one entry under the key `*` when all agree. */
  observationSpaces: Record<string, SpaceJSON>;
  actionSpaces: Record<string, SpaceJSON>;
  observationSpaceText: Record<string, string>;
  actionSpaceText: Record<string, string>;
  stateDim: number;
  reportsSuccess: boolean;
  /** Multi-task envs: the one-hot task id's length (the last entries of each observation). */
  numTasks?: number;
  /** Envs that play a benchmark split (MT10, ML10, ML10:test): the split, and which side this id is. */
  benchmarkSplit?: BenchmarkSplitListing & { role: 'train' | 'test' };
}

/** A benchmark split as `troupe envs` shows it. */
export interface BenchmarkSplitListing {
  name: string;
  setting: BenchmarkSplit['setting'];
  description: string;
  trainEnvId: string;
  /** Equal to trainEnvId for multi-task splits (evaluated on their training tasks). */
  testEnvId: string;
  trainKinds: string[];
  testKinds: string[];
  goalObservable: boolean;
  oneHotTaskId: boolean;
  configurationsPerKind: number;
  /** Train / test configurations are drawn from the benchmark seed s plus these. */
  trainSeedOffset: number;
  testSeedOffset: number;
  /** Member kinds not registered yet (the split's envs cannot be made until they are). */
  unavailableKinds: string[];
}

export function describeSplit(split: BenchmarkSplit): BenchmarkSplitListing {
  return {
    name: split.name,
    setting: split.setting,
    description: split.description,
    trainEnvId: splitEnvId(split, 'train'),
    testEnvId: splitEnvId(split, 'test'),
    trainKinds: [...split.trainKinds],
    testKinds: [...split.testKinds],
    goalObservable: split.goalObservable,
    oneHotTaskId: split.oneHotTaskId,
    configurationsPerKind: split.configurationsPerKind,
    trainSeedOffset: split.trainSeedOffset,
    testSeedOffset: split.testSeedOffset,
    unavailableKinds: unavailableKinds(split),
  };
}

/** Describes every listed env by making one instance of it. */
export async function describeRegisteredEnvs(): Promise<EnvListing[]> {
  registerBuiltinEnvs();
  const listed = listEnvs();
  for (const { id } of listed) await prepareEnv(id);
  return listed.map(({ id, family, description }) => {
    const env = makeEnv<unknown, unknown>(id);
    const collapse = <T>(per: (agent: string) => T, key: (v: T) => string): Record<string, T> => {
      const values = env.possibleAgents.map(per);
      if (values.every((v) => key(v) === key(values[0]))) return { '*': values[0] };
      return Object.fromEntries(env.possibleAgents.map((a, i) => [a, values[i]]));
    };
    const listing: EnvListing = {
      id,
      family,
      description,
      possibleAgents: [...env.possibleAgents],
      maxEpisodeSteps: env.metadata.maxEpisodeSteps,
      observationSpaces: collapse((a) => env.observationSpace(a).toJSON(), JSON.stringify),
      actionSpaces: collapse((a) => env.actionSpace(a).toJSON(), JSON.stringify),
      observationSpaceText: collapse((a) => env.observationSpace(a).describe(), String),
      actionSpaceText: collapse((a) => env.actionSpace(a).describe(), String),
      stateDim: env.stateSpace?.flatDim ?? 0,
      reportsSuccess: env.metadata.reportsSuccess === true,
    };
    if (env.metadata.numTasks) listing.numTasks = env.metadata.numTasks;
    const split = parseSplitEnvId(id);
    if (split && split.kind === undefined) listing.benchmarkSplit = { ...describeSplit(split.split), role: split.role };
    env.close?.();
    return listing;
  });
}

/** What `troupe envs --splits --json` prints: the fixed splits and the ML1 family. */
export interface SplitsListing {
  splits: BenchmarkSplitListing[];
  ml1: Omit<BenchmarkSplitListing, 'name' | 'description' | 'trainEnvId' | 'testEnvId' | 'trainKinds' | 'testKinds' | 'unavailableKinds'> & { trainEnvId: string; testEnvId: string; kinds: string[] };
}

export function describeSplits(): SplitsListing {
  registerBuiltinEnvs();
  const kinds = MANIPULATION_TASKS.map((t) => t.kind);
  const { name: _n, description: _d, trainKinds: _tr, testKinds: _te, unavailableKinds: _u, ...ml1 } = describeSplit(ml1Split(kinds[0]));
  return { splits: BENCHMARK_SPLITS.map(describeSplit), ml1: { ...ml1, trainEnvId: 'ML1-<kind>', testEnvId: 'ML1-<kind>:test', kinds } };
}

export async function runEnvsCommand(opts: { json?: boolean; splits?: boolean }): Promise<void> {
  if (opts.splits) {
    if (opts.json) process.stdout.write(`${JSON.stringify(describeSplits(), null, 2)}\n`);
    else writeSplitSection();
    return;
  }
  const listings = await describeRegisteredEnvs();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(listings, null, 2)}\n`);
    return;
  }
  let family = '';
  for (const l of listings) {
    if (l.family !== family) {
      family = l.family;
      process.stdout.write(`\n${family}\n`);
    }
    const agents = l.possibleAgents.length <= 4 ? l.possibleAgents.join(', ') : `${l.possibleAgents[0]} … ${l.possibleAgents.at(-1)}`;
    const spaces = (text: Record<string, string>) =>
      Object.entries(text)
        .map(([a, s]) => (a === '*' ? s : `${a}: ${s}`))
        .join('; ');
    process.stdout.write(`  ${l.id}\n`);
    process.stdout.write(`    agents (${l.possibleAgents.length}): ${agents}   steps ≤ ${l.maxEpisodeSteps}   state: ${l.stateDim || 'none'}\n`);
    process.stdout.write(`    observation: ${spaces(l.observationSpaceText)}\n`);
    process.stdout.write(`    action:      ${spaces(l.actionSpaceText)}\n`);
  }
  writeSplitSection();
  process.stdout.write(`\n${listings.length} environments. Parametric ids (e.g. lbf-12x12-3p-4f-coop, combat-4v5, pursuit-9x9-3p-1prey, ML1-push:test, MT10/push) also work.\n`);
}

/** The "benchmark splits" section: each split's env ids, settings and train/test kinds. */
function writeSplitSection(): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out('\nbenchmark splits (Meta-World; option seed = the benchmark seed s; <id>/<kind> fixes one member kind, e.g. MT10/push, for per-task evaluation)');
  const kindsLine = (kinds: readonly string[], missing: readonly string[]) => kinds.map((k) => (missing.includes(k) ? `${k}*` : k)).join(', ');
  for (const split of BENCHMARK_SPLITS) {
    const l = describeSplit(split);
    const ids = hasTestRole(split) ? `${l.trainEnvId} (train), ${l.testEnvId} (test)` : l.trainEnvId;
    out(`  ${l.name}   ids: ${ids}`);
    out(`    ${settingsText(l)}`);
    out(`    train (${l.trainKinds.length}): ${kindsLine(l.trainKinds, l.unavailableKinds)}`);
    out(`    test  (${l.testKinds.length}): ${hasTestRole(split) ? kindsLine(l.testKinds, l.unavailableKinds) : 'the training tasks and configurations'}`);
  }
  out('  ML1-<kind>   ids: ML1-<kind> (train), ML1-<kind>:test (test)');
  const ml1 = describeSplits().ml1;
  out(`    ${ml1.setting}, goal ${ml1.goalObservable ? 'visible' : 'hidden'}, ${ml1.configurationsPerKind} configurations of the one kind: train from seed s, test from s + ${ml1.testSeedOffset}`);
  out(`    kinds: ${ml1.kinds.join(', ')}`);
  if (BENCHMARK_SPLITS.some((s) => unavailableKinds(s).length > 0)) out('  * not registered yet: the split is not listed above and its envs cannot be made until it is');
}

function settingsText(l: BenchmarkSplitListing): string {
  const seeds = l.setting === 'multi-task' ? `from seed s` : `train from seed s${l.trainSeedOffset ? ` + ${l.trainSeedOffset}` : ''}, test from s + ${l.testSeedOffset}`;
  return `${l.setting}, goal ${l.goalObservable ? 'visible' : 'hidden'}${l.oneHotTaskId ? `, one-hot task id (${l.trainKinds.length})` : ''}, ${l.configurationsPerKind} configurations per kind, ${seeds}`;
}
