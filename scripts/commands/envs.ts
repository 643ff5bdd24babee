import { registerBuiltinEnvs } from '../../envs/builtin';
import { listEnvs, makeEnv, prepareEnv } from '../../envs/registry';
import type { SpaceJSON } from '../../envs/spaces/space';

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
    env.close?.();
    return listing;
  });
}

export async function runEnvsCommand(opts: { json?: boolean }): Promise<void> {
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
  process.stdout.write(`\n${listings.length} environments. Parametric ids (e.g. lbf-12x12-3p-4f-coop, combat-4v5, pursuit-9x9-3p-1prey) also work.\n`);
}
