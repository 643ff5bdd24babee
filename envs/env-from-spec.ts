import fs from 'node:fs';
import path from 'node:path';
import { registerBuiltinEnvs } from './builtin';
import type { EnvSpec } from './env-spec';
import { NoEnvExportError, loadEnvModule } from './load-env-module';
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
    if (!(error instanceof NoEnvExportError) || !isRegistered(spec.id)) throw error;
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

const MODULE_EXTENSIONS = /\.(c|m)?(j|t)s$/i;

/** Whether a file name has an env module's extension (.js/.cjs/.mjs/.ts/.cts/.mts). */
export function isEnvModuleFile(name: string): boolean {
  return MODULE_EXTENSIONS.test(name);
}

/** The env id a module gets when none is given: its file name without the extension (`envs/coin-match.ts` → `coin-match`). */
export function moduleEnvId(modulePath: string): string {
  return path.basename(modulePath).replace(MODULE_EXTENSIONS, '') || 'env';
}

/**
 * What a CLI target names: a registered env id, or the path of an env module (an existing file,
 * a name with a module extension, or a path starting with `/`, `./` or `../`). Module paths are made absolute, so the spec
 * works from any thread and folder.
 */
export function envSpecFor(target: string, options?: Record<string, unknown>): EnvSpec {
  registerBuiltinEnvs();
  const withOptions = options && Object.keys(options).length > 0 ? { options } : {};
  // Split ids such as `MT10/reach` contain a slash too: a registered id wins unless a file of that name exists.
  if (isRegistered(target) && !fs.existsSync(target)) return { id: target, ...withOptions };
  if (fs.existsSync(target) || MODULE_EXTENSIONS.test(target) || /^\.{0,2}[\\/]/.test(target)) return { id: moduleEnvId(target), module: path.resolve(target), ...withOptions };
  return { id: target, ...withOptions };
}
