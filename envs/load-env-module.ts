import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ParallelEnv } from './parallel-env';

/**
 * Loads a user's env module for `troupe check-env <file>` and returns a factory that makes a
 * fresh env per call.
 *
 * Accepted files: `.js`, `.cjs`, `.mjs`, and `.ts`/`.cts`/`.mts` when the `typescript` package
 * can be found (from the module's folder or from troupe's); otherwise compile to JavaScript first.
 *
 * What the module must export, looked up in this order — `default`, then `createEnv`, then
 * the module itself (`module.exports = …`):
 * - a factory function `(options) => env` (preferred),
 * - a class whose instances are envs (`new Env(options)`),
 * - an env object. Then every call returns that same object, so checks that want two
 *   independent envs (determinism across fresh envs) see one env twice; export a factory
 *   to get the full check.
 *
 * `options` is passed to the factory or constructor on every call.
 */
export async function loadEnvModule(modulePath: string, options: Record<string, unknown> = {}): Promise<() => ParallelEnv<unknown, unknown>> {
  const file = path.resolve(modulePath);
  if (!existsSync(file)) throw new Error(`loadEnvModule: no such file '${file}' (from '${modulePath}')`);
  if (!statSync(file).isFile()) throw new Error(`loadEnvModule: '${file}' is not a file; pass the env module itself`);

  const ext = path.extname(file).toLowerCase();
  if (!SUPPORTED_EXTENSIONS.includes(ext)) {
    throw new Error(`loadEnvModule: '${file}' has extension '${ext || '(none)'}'; expected one of ${SUPPORTED_EXTENSIONS.join(', ')}`);
  }
  if (TYPESCRIPT_EXTENSIONS.includes(ext)) installTypeScriptHook(file);

  let loaded: unknown;
  try {
    loaded = await importModule(file);
  } catch (err) {
    throw new Error(`loadEnvModule: could not load '${file}': ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return factoryFrom(loaded, file, options);
}

const TYPESCRIPT_EXTENSIONS = ['.ts', '.cts', '.mts'];
const SUPPORTED_EXTENSIONS = ['.js', '.cjs', '.mjs', ...TYPESCRIPT_EXTENSIONS];

type EnvMaker = (options: Record<string, unknown>) => unknown;

function factoryFrom(loaded: unknown, file: string, options: Record<string, unknown>): () => ParallelEnv<unknown, unknown> {
  for (const { label, value } of exportCandidates(loaded)) {
    const make = makerFor(value);
    if (!make) continue;
    return () => {
      const env = make(options);
      if (!looksLikeEnv(env)) {
        throw new Error(`${file}: ${label} produced ${describeBriefly(env)}, not a ParallelEnv (an object with reset, step, observationSpace and actionSpace)`);
      }
      return env;
    };
  }
  const names = isObjectLike(loaded) ? Object.keys(loaded) : [];
  throw new Error(
    `loadEnvModule: '${file}' has no usable env export. Expected a default export or a 'createEnv' export that is ` +
      `an env factory function (options) => env, an env class, or a ParallelEnv object; ` +
      `found ${names.length ? `exports [${names.join(', ')}]` : describeBriefly(loaded)}.`,
  );
}

/** Where an env may hide in a loaded module, including the `default.default` that ESM-imported CommonJS produces. */
function exportCandidates(loaded: unknown): Array<{ label: string; value: unknown }> {
  const candidates: Array<{ label: string; value: unknown }> = [];
  if (isObjectLike(loaded)) {
    candidates.push({ label: 'the default export', value: loaded.default });
    candidates.push({ label: "the 'createEnv' export", value: loaded.createEnv });
    if (isObjectLike(loaded.default)) {
      candidates.push({ label: 'the default export', value: loaded.default.default });
      candidates.push({ label: "the 'createEnv' export", value: loaded.default.createEnv });
    }
  }
  candidates.push({ label: 'module.exports', value: loaded });
  return candidates.filter((c) => c.value !== undefined && c.value !== null);
}

function makerFor(value: unknown): EnvMaker | undefined {
  if (typeof value === 'function') {
    const fn = value as (...args: unknown[]) => unknown;
    if (isConstructable(fn)) {
      const Ctor = fn as unknown as new (options: Record<string, unknown>) => unknown;
      return (options) => new Ctor(options);
    }
    return (options) => fn(options);
  }
  if (looksLikeEnv(value)) return () => value;
  return undefined;
}

/**
 * Classes cannot be called without `new`, and factory functions should not be called with
 * it. A `class` source or env methods on the prototype (ES5-style constructors) mark a class.
 */
function isConstructable(fn: (...args: unknown[]) => unknown): boolean {
  if (/^class[\s{]/.test(Function.prototype.toString.call(fn))) return true;
  const proto: unknown = (fn as { prototype?: unknown }).prototype;
  return isObjectLike(proto) && typeof proto.step === 'function' && typeof proto.reset === 'function';
}

function looksLikeEnv(x: unknown): x is ParallelEnv<unknown, unknown> {
  return isObjectLike(x) && ['reset', 'step', 'observationSpace', 'actionSpace'].every((m) => typeof x[m] === 'function');
}

function isObjectLike(x: unknown): x is Record<string, unknown> {
  return (typeof x === 'object' || typeof x === 'function') && x !== null;
}

function describeBriefly(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (typeof x === 'function') return `a function ${x.name || '(anonymous)'}`;
  if (typeof x === 'object') return `an object with keys [${Object.keys(x).join(', ')}]`;
  return `${typeof x} ${String(x)}`;
}

/**
 * Loads with Node's own `require` (not the caller's, which may be a test runner's sandbox),
 * which also handles ESM on Node ≥ 20.19; older Nodes and ESM with top-level await fall back
 * to a native `import()`.
 */
async function importModule(file: string): Promise<unknown> {
  const nodeRequire = createRequire(file);
  try {
    return nodeRequire(file);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
  }
  return nativeImport(pathToFileURL(file).href);
}

/**
 * This package compiles to CommonJS, where tsc rewrites `import()` into `require()`; building
 * the call at run time keeps it a real ESM import.
 */
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

interface TypeScriptApi {
  transpileModule(source: string, options: { compilerOptions: Record<string, unknown>; fileName: string }): { outputText: string };
  ModuleKind: { CommonJS: number };
  ScriptTarget: { ES2022: number };
}

interface CompilableModule {
  _compile(source: string, filename: string): void;
}

let hookInstalled = false;

/**
 * Teaches Node's `require` to load TypeScript by transpiling each file to CommonJS as it is
 * required, so a user's env can import its other .ts files. The hook stays installed, since
 * modules may require more files later. An existing hook (ts-node, tsx) is left in charge.
 */
function installTypeScriptHook(file: string): void {
  const nodeRequire = createRequire(file);
  const extensions = nodeRequire.extensions as unknown as Record<string, ((module: CompilableModule, filename: string) => void) | undefined>;
  if (hookInstalled || extensions['.ts']) return;
  const ts = findTypeScript(file);
  const compile = (module: CompilableModule, filename: string): void => {
    const source = readFileSync(filename, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true },
    });
    module._compile(outputText, filename);
  };
  for (const ext of TYPESCRIPT_EXTENSIONS) extensions[ext] ??= compile;
  hookInstalled = true;
}

function findTypeScript(file: string): TypeScriptApi {
  for (const from of [file, __filename]) {
    try {
      return createRequire(from)('typescript') as TypeScriptApi;
    } catch {
      // try the next place
    }
  }
  throw new Error(
    `loadEnvModule: '${file}' is TypeScript, but the 'typescript' package is not installed where it or troupe can find it. ` +
      `Compile the env to JavaScript first (e.g. \`npx tsc\`) and pass the .js file, or \`npm install --save-dev typescript\`.`,
  );
}
