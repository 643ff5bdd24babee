import path from 'node:path';
import { registerBuiltinEnvs } from '../envs/builtin';
import type { ParallelEnv } from '../envs/parallel-env';
import { makeEnv } from '../envs/registry';

/**
 * Everything a thread needs to build an env by itself: worker threads cannot share the main
 * thread's objects, so envs cross threads as specs and are re-created on the other side.
 */
export interface EnvSpec {
  /** Registry id (a built-in, or one that `module` registers). */
  id: string;
  options?: Record<string, unknown>;
  /**
   * Path of a user module to load first. It may register `id` itself, or export a factory as
   * `createEnv` or `default`; the factory is then used whatever `id` says.
   */
  module?: string;
}

type Factory = (options: Record<string, unknown>) => ParallelEnv<unknown, unknown>;

const loadedFactories = new Map<string, Factory | undefined>();

function moduleFactory(modulePath: string): Factory | undefined {
  const resolved = path.resolve(modulePath);
  if (loadedFactories.has(resolved)) return loadedFactories.get(resolved);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(resolved) as Record<string, unknown>;
  const candidate = mod.createEnv ?? mod.default;
  const factory = typeof candidate === 'function' ? (candidate as Factory) : undefined;
  loadedFactories.set(resolved, factory);
  return factory;
}

/** Builds the env a spec describes, in whatever thread calls it. */
export function instantiateEnv(spec: EnvSpec): ParallelEnv<unknown, unknown> {
  registerBuiltinEnvs();
  const options = { ...(spec.options ?? {}) };
  if (spec.module) {
    const factory = moduleFactory(spec.module);
    if (factory) return factory({ ...options, id: spec.id });
  }
  return makeEnv<unknown, unknown>(spec.id, options);
}
