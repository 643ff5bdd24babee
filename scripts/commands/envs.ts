import { BENCHMARK_SPLITS, hasTestRole, unavailableKinds } from '../../envs/manipulation/benchmark-split';
import { type BenchmarkSplitListing, describeRegisteredEnvs, describeSplit, describeSplits } from '../../envs/env-listing';

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
