import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import Module, { createRequire, register } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ParallelEnv } from './parallel-env';

/**
 * Loads a user's env module (for `troupe check-env <file>`, `eval <file>` and `env.module` in
 * run configs) and returns a factory that makes a fresh env per call.
 *
 * Accepted files: `.js`, `.cjs`, `.mjs`, and `.ts`/`.cts`/`.mts` when the `typescript` package
 * can be found (from the module's folder or from troupe's); otherwise compile to JavaScript first.
 * The module may `import … from 'troupe'` from any folder: that name always resolves to the troupe
 * running it (not to another copy the folder may have installed), so its classes are the ones the
 * runtime checks against.
 *
 * What the module must export, looked up in this order — `default`, then `createEnv`, then
 * the module itself (`module.exports = …`):
 * - a factory function `(options) => env` (preferred),
 * - a class whose instances are envs (`new Env(options)`),
 * - an env object. Then every call returns that same object, so checks that want two
 *   independent envs (determinism across fresh envs) see one env twice; export a factory
 *   to get the full check.
 *
 * `options` is passed to the factory or constructor on every call. Errors name the file: a
 * syntax error with its line, an exception while loading with where it was thrown, a factory or
 * constructor that throws with the env it was building.
 */
export async function loadEnvModule(modulePath: string, options: Record<string, unknown> = {}): Promise<() => ParallelEnv<unknown, unknown>> {
  const file = path.resolve(modulePath);
  if (!existsSync(file)) throw new Error(`env module '${file}' does not exist${modulePath !== file ? ` (from '${modulePath}')` : ''}`);
  if (!statSync(file).isFile()) throw new Error(`env module '${file}' is not a file; give the env module itself`);

  const ext = path.extname(file).toLowerCase();
  if (!SUPPORTED_EXTENSIONS.includes(ext)) {
    throw new Error(`env module '${file}' has extension '${ext || '(none)'}'; expected one of ${SUPPORTED_EXTENSIONS.join(', ')}`);
  }
  resolveTroupeToItself();
  if (TYPESCRIPT_EXTENSIONS.includes(ext)) installTypeScriptHook(file);

  let loaded: unknown;
  try {
    loaded = await importModule(file);
  } catch (err) {
    throw new Error(`env module '${file}' could not be loaded: ${describeLoadError(err, file)}`, { cause: err });
  }
  return factoryFrom(loaded, file, options);
}
/** A module that loaded but exports no env (it may register its ids on import instead). */
export class NoEnvExportError extends Error {
  override name = 'NoEnvExportError';
}

const TYPESCRIPT_EXTENSIONS = ['.ts', '.cts', '.mts'];
const SUPPORTED_EXTENSIONS = ['.js', '.cjs', '.mjs', ...TYPESCRIPT_EXTENSIONS];

type EnvMaker = (options: Record<string, unknown>) => unknown;

function factoryFrom(loaded: unknown, file: string, options: Record<string, unknown>): () => ParallelEnv<unknown, unknown> {
  for (const { label, value } of exportCandidates(loaded)) {
    const make = makerFor(value);
    if (!make) continue;
    const envName = typeof options.id === 'string' ? `env '${options.id}'` : 'the env';
    return () => {
      let env: unknown;
      try {
        env = make(options);
      } catch (err) {
        throw new Error(`${envName} from module '${file}': ${label} threw while building it: ${describeThrown(err, file)}`, { cause: err });
      }
      if (!looksLikeEnv(env)) {
        throw new Error(`${envName} from module '${file}': ${label} produced ${describeBriefly(env)}, not a ParallelEnv (an object with reset, step, observationSpace and actionSpace)`);
      }
      return env;
    };
  }
  const names = isObjectLike(loaded) ? Object.keys(loaded) : [];
  throw new NoEnvExportError(
    `env module '${file}' has no usable env export. Expected a default export or a 'createEnv' export that is ` +
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
 * ES modules (`.mjs`, or `.js` under a package.json with `"type": "module"`) load with a native
 * `import()`, the only path that honours the resolve hook mapping `troupe`. Everything else loads
 * with Node's own `require` (not the caller's, which may be a test runner's sandbox); TypeScript
 * is transpiled to CommonJS on the way (see `installTypeScriptHook`).
 */
async function importModule(file: string): Promise<unknown> {
  if (isEsModule(file)) return nativeImport(pathToFileURL(file).href);
  const nodeRequire = createRequire(file);
  try {
    return nodeRequire(file);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
  }
  return nativeImport(pathToFileURL(file).href);
}

function isEsModule(file: string): boolean {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.mjs') return true;
  if (ext !== '.js') return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown }).type === 'module';
      } catch {
        return false;
      }
    }
    if (path.dirname(dir) === dir) return false;
  }
}

/**
 * This package compiles to CommonJS, where tsc rewrites `import()` into `require()`; building
 * the call at run time keeps it a real ESM import.
 */
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

let troupeResolutionInstalled = false;

/**
 * Makes `troupe` (and `troupe/package.json`) resolve to this package from any folder, for
 * CommonJS `require` and for ES `import`. Without it Node finds `troupe` only inside a project
 * that depends on it, and a user's env in its own folder could not import the base class and
 * spaces. Installed once per thread (worker threads load modules too).
 */
function resolveTroupeToItself(): void {
  if (troupeResolutionInstalled) return;
  troupeResolutionInstalled = true;
  const packageJson = findOwnPackageJson();
  // Self-reference through package.json `exports`: the same file `import 'troupe'` would give inside this package.
  const selfRequire = createRequire(packageJson);
  const targets: Record<string, string> = { troupe: selfRequire.resolve('troupe'), 'troupe/package.json': packageJson };

  const loader = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolveFilename = loader._resolveFilename;
  loader._resolveFilename = function resolveTroupe(this: unknown, request: string, ...rest: unknown[]): string {
    return targets[request] ?? resolveFilename.call(this, request, ...rest);
  };

  const urls = Object.fromEntries(Object.entries(targets).map(([name, file]) => [name, pathToFileURL(file).href]));
  const hook = `const targets = ${JSON.stringify(urls)};
export async function resolve(specifier, context, next) {
  const url = targets[specifier];
  return url ? { url, shortCircuit: true } : next(specifier, context);
}`;
  try {
    register(`data:text/javascript,${encodeURIComponent(hook)}`);
  } catch {
    // Test runners with their own module loader (Jest) refuse loader hooks; CommonJS and TypeScript modules still resolve.
  }
}

function findOwnPackageJson(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'troupe') return manifest;
    if (path.dirname(dir) === dir) throw new Error(`troupe's package.json not found above ${__dirname}`);
  }
}

/** What went wrong while loading `file`, located in the file where Node says where. */
function describeLoadError(err: unknown, file: string): string {
  if (!isErrorLike(err)) return String(err);
  if (err instanceof TypeScriptSyntaxError) return err.message;
  if (err.name === 'SyntaxError') {
    // CommonJS puts "file:line" on the stack's first line; ES modules say nothing, but `node --check` does.
    const located = /^(.+):(\d+)\n/.exec(err.stack ?? '') ?? /^(?:file:\/\/)?(.+):(\d+)\n/.exec(syntaxCheckOutput(file));
    const where = located ? `${located[1].replace(/^file:\/\//, '')}:${located[2]}` : file;
    return `syntax error at ${where}: ${err.message}`;
  }
  return describeThrown(err, file);
}

function syntaxCheckOutput(file: string): string {
  const result = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10000 });
  return result.stderr ?? '';
}

/** An exception's message and, when it was thrown inside the user's file(s), the line it came from. */
function describeThrown(err: unknown, file: string): string {
  if (!isErrorLike(err)) return String(err);
  const dir = path.dirname(file);
  const frame = (err.stack ?? '')
    .split('\n')
    .slice(1)
    .map((line) => /\(?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/.exec(line.trim()))
    .find((m) => m !== null && m[1].replace(/^file:\/\//, '').startsWith(dir) && !m[1].includes(`${path.sep}node_modules${path.sep}`));
  const where = frame ? ` (at ${frame[1].replace(/^file:\/\//, '')}:${frame[2]})` : '';
  return `${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}${where}`;
}

class TypeScriptSyntaxError extends Error {}

/** Errors from another realm (a test runner's sandbox, a vm context) fail `instanceof Error`. */
function isErrorLike(err: unknown): err is Error {
  return typeof err === 'object' && err !== null && typeof (err as Error).message === 'string' && typeof (err as Error).name === 'string';
}

interface TypeScriptDiagnostic {
  file?: { getLineAndCharacterOfPosition(position: number): { line: number; character: number } };
  start?: number;
  messageText: string | { messageText: string };
}

interface TypeScriptApi {
  transpileModule(
    source: string,
    options: { compilerOptions: Record<string, unknown>; fileName: string; reportDiagnostics?: boolean },
  ): { outputText: string; diagnostics?: TypeScriptDiagnostic[] };
  ModuleKind: { CommonJS: number };
  ScriptTarget: { ES2022: number };
}

interface CompilableModule {
  _compile(source: string, filename: string): void;
}

let hookInstalled = false;

/**
 * Teaches Node's `require` to load TypeScript by transpiling each file to CommonJS as it is
 * required, so a user's env can import its other .ts files. Transpiling does not type-check (run
 * `tsc` for that), but syntax errors are reported with file and line. The hook stays installed,
 * since modules may require more files later. An existing hook (ts-node, tsx) is left in charge.
 */
function installTypeScriptHook(file: string): void {
  const nodeRequire = createRequire(file);
  const extensions = nodeRequire.extensions as unknown as Record<string, ((module: CompilableModule, filename: string) => void) | undefined>;
  if (hookInstalled || extensions['.ts']) return;
  const ts = findTypeScript(file);
  const compile = (module: CompilableModule, filename: string): void => {
    const source = readFileSync(filename, 'utf8');
    const { outputText, diagnostics } = ts.transpileModule(source, {
      fileName: filename,
      reportDiagnostics: true,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, inlineSourceMap: true },
    });
    const first = diagnostics?.[0];
    if (first) {
      const text = typeof first.messageText === 'string' ? first.messageText : first.messageText.messageText;
      const pos = first.file && first.start !== undefined ? first.file.getLineAndCharacterOfPosition(first.start) : undefined;
      throw new TypeScriptSyntaxError(`syntax error at ${filename}${pos ? `:${pos.line + 1}:${pos.character + 1}` : ''}: ${text}`);
    }
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
    `env module '${file}' is TypeScript, but the 'typescript' package is not installed where it or troupe can find it. ` +
      `Compile the env to JavaScript first (e.g. \`npx tsc\`) and pass the .js file, or \`npm install --save-dev typescript\`.`,
  );
}
