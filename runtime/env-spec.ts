import path from 'node:path';
import { registerBuiltinEnvs } from '../envs/builtin';
import { loadEnvModule } from '../envs/load-env-module';
import type { ParallelEnv } from '../envs/parallel-env';
import { isRegistered, makeEnv, prepareEnv } from '../envs/registry';

/**
 * Everything a thread needs to build an env by itself: worker threads cannot share the main
 * thread's objects, so envs cross threads as specs and are re-created on the other side.
 */
export interface EnvSpec {
  /** Registry id (a built-in, or one that `module` registers). */
  id: string;
  options?: Record<string, unknown>;
  /**
   * Path of a user module (.js/.cjs/.mjs, or .ts when typescript is installed). It may export a
   * factory or class (`default` or `createEnv`, see `loadEnvModule`), used whatever `id` says,
   * or register `id` itself when imported.
   */
  module?: string;
}

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
