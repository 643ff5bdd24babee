/*
 * What `troupe envs` shows, as data: every registered env with its agents and spaces, and the
 * benchmark splits.
 */
import { registerBuiltinEnvs } from './builtin';
import { listEnvs, makeEnv, prepareEnv } from './registry';
import type { SpaceJSON } from './spaces/space';
import { BENCHMARK_SPLITS, type BenchmarkSplit, hasTestRole, ml1Split, splitEnvId, unavailableKinds } from './manipulation/benchmark-split';
import { parseSplitEnvId } from './manipulation/register-splits';
import { MANIPULATION_TASKS } from './manipulation/register';

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
