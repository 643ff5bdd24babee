import path from 'node:path';
import { registerBuiltinEnvs } from './builtin';
import type { EnvSpec } from './env-spec';
import { loadEnvModule } from './load-env-module';
import type { ParallelEnv } from './parallel-env';
import { isRegistered, makeEnv, prepareEnv } from './registry';

type Factory = () => ParallelEnv<unknown, unknown>;

/** Factories of prepared module specs, per thread (each worker prepares its own). */
const moduleFactories = new Map<string, Factory>();

function factoryKey(spec: EnvSpec): string {
  return `${path.resolve(spec.module!)}\n${spec.id}\n${JSON.stringify(spec.options ?? {})}`;
}

/** Loads what a spec needs in this thread (built-ins, the user's module); call before `instantiateEnv`. */
export async function prepareEnvSpec(spec: EnvSpec): Promise<void> {
  registerBuiltinEnvs();
  if (!spec.module) {
    await prepareEnv(spec.id);
    return;
  }
  if (moduleFactories.has(factoryKey(spec))) return;
  try {
    moduleFactories.set(factoryKey(spec), await loadEnvModule(spec.module, { ...(spec.options ?? {}), id: spec.id }));
  } catch (error) {
    // A module may instead register its id on import and export no factory.
    if (!isRegistered(spec.id)) throw error;
  }
}

/** Builds the env a prepared spec describes, in whatever thread calls it. */
export function instantiateEnv(spec: EnvSpec): ParallelEnv<unknown, unknown> {
  registerBuiltinEnvs();
  if (spec.module) {
    const factory = moduleFactories.get(factoryKey(spec));
    if (factory) return factory();
    if (!isRegistered(spec.id)) throw new Error(`env module '${spec.module}' was not loaded in this thread; await prepareEnvSpec(spec) first`);
  }
  return makeEnv<unknown, unknown>(spec.id, spec.options ?? {});
}
