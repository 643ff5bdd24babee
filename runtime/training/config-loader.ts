import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { didYouMean } from '../../envs/close-match';
import { consistencyIssues } from './config-consistency';
import {
  ALGO_NAMES,
  algosWithKey,
  isOpenRecordAt,
  runConfigSchema,
  schemaAt,
  sectionIssues,
  validKeysAt,
  type RunConfig,
} from './run-config';

/** A config that cannot be used; the message lists every problem so one edit can fix them all. */
export class RunConfigError extends Error {
  constructor(
    message: string,
    /** One `key.path: problem` line per issue. */
    readonly issues: readonly string[] = [],
  ) {
    super(message);
    this.name = 'RunConfigError';
  }
}

/**
 * Reads a run config from YAML, applies `--set a.b.c=value` overrides in order, validates it and
 * returns it with every default filled. Throws a `RunConfigError` naming the file otherwise.
 *
 * Env module paths in the file are relative to the file's folder (so a config and its env can
 * move together), ones given with `--set` to the working directory; both come back absolute,
 * and a module that does not exist is an error here, before anything runs.
 */
export function loadRunConfig(file: string, overrides: readonly string[] = []): RunConfig {
  const text = readConfigText(file, 'run config');
  const config = parseRunConfig(text, file, overrides, path.dirname(path.resolve(file)));
  const missing = moduleFields(config)
    .filter(({ module }) => !fs.existsSync(module))
    .map(({ at, module }) => `${at}: env module ${module} does not exist`);
  if (missing.length > 0) throw new RunConfigError(`invalid run config ${file}:\n${missing.map((line) => `  ${line}`).join('\n')}`, missing);
  return config;
}

/**
 * As `loadRunConfig`, from text; `source` names it in errors. Relative env module paths in the
 * text are resolved against `baseDir` (default: the working directory).
 */
export function parseRunConfig(text: string, source: string, overrides: readonly string[] = [], baseDir?: string): RunConfig {
  let raw = parseYamlDocument(text, source);
  // Before overrides, which would otherwise build a mapping around whatever the file held.
  checkTopLevel(raw, source);
  if (baseDir !== undefined) raw = resolveModulePaths(raw, baseDir);
  for (const override of overrides) raw = applyOverride(raw, override, source);
  return validateRunConfig(resolveModulePaths(raw, process.cwd()), source);
}

/** Where a config names env modules: `env.module` and `tasks.N.module`. */
function moduleFields(config: RunConfig): Array<{ at: string; module: string }> {
  const fields: Array<{ at: string; module: string }> = [];
  if (config.env?.module) fields.push({ at: 'env.module', module: config.env.module });
  (config.tasks ?? []).forEach((t, i) => t.module && fields.push({ at: `tasks.${i}.module`, module: t.module }));
  return fields;
}

function resolveModulePaths(raw: unknown, baseDir: string): unknown {
  if (!isRecord(raw)) return raw;
  const resolveIn = (section: unknown): unknown =>
    isRecord(section) && typeof section.module === 'string' && section.module !== '' ? { ...section, module: path.resolve(baseDir, section.module) } : section;
  const set = raw.datasets;
  const resolveCollect = isRecord(set) && typeof set.collect === 'string' && set.collect !== '' ? { datasets: { ...set, collect: path.resolve(baseDir, set.collect) } } : {};
  return {
    ...raw,
    ...(raw.env !== undefined ? { env: resolveIn(raw.env) } : {}),
    ...(Array.isArray(raw.tasks) ? { tasks: raw.tasks.map(resolveIn) } : {}),
    ...resolveCollect,
  };
}

/**
 * The config saved with a trained run, for evaluating it: only the schema is checked, not how
 * the keys fit together for launching a run (worker counts, sampled evaluation of a greedy
 * learner, …), so runs saved before a check existed can still be evaluated.
 */
export function parseSavedRunConfig(text: string, source: string): RunConfig {
  return validateRunConfig(parseYamlDocument(text, source), source, { launch: false });
}

/** Validates an already-parsed config object; `launch: false` skips the checks that only concern starting a run. */
export function validateRunConfig(raw: unknown, source: string, opts: { launch?: boolean } = {}): RunConfig {
  checkTopLevel(raw, source);
  const result = runConfigSchema.safeParse(raw);
  if (result.success && opts.launch === false) return result.data as RunConfig;
  if (result.success) {
    // Keys that conflict only once each is valid and the sections fit together.
    const conflicts = consistencyIssues(result.data).map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    if (conflicts.length === 0) return result.data as RunConfig;
    throw new RunConfigError(`invalid run config ${source}:\n${conflicts.map((line) => `  ${line}`).join('\n')}`, conflicts);
  }
  // Two failed checks of one value (infinite, hence also too small) read as one problem.
  const issues = [...new Set(result.error.issues.filter((issue) => !isUnfilledDefault(issue, raw)).flatMap((issue) => describeIssue(issue, raw)))];
  // Cross-section checks only run on a config that parsed; report them beside the rest anyway.
  for (const issue of sectionIssues(raw)) {
    const line = `${issue.path.join('.')}: ${issue.message}`;
    if (!issues.includes(line)) issues.push(line);
  }
  throw new RunConfigError(`invalid run config ${source}:\n${issues.map((line) => `  ${line}`).join('\n')}`, issues);
}

/** A config must be a non-empty mapping of sections; anything else is one problem, said as such. */
function checkTopLevel(raw: unknown, source: string): void {
  if (isRecord(raw) && Object.keys(raw).length === 0) {
    throw new RunConfigError(`invalid run config ${source}: it is empty; a run config needs 'env' (or 'tasks') and 'algo' (see configs/quickstart.yaml)`, ['(top level): empty']);
  }
  if (!isRecord(raw)) {
    const issue = `(top level): expected a mapping of sections (env or tasks, algo, run), got ${describeValue(raw)}`;
    throw new RunConfigError(`invalid run config ${source}:\n  ${issue}`, [issue]);
  }
}

/** The YAML saved with a run; `parseRunConfig` of it gives back an equal config. */
export function serializeRunConfig(config: RunConfig): string {
  // Defaults are written out so a saved run stays reproducible even if a default changes later.
  return YAML.stringify(config);
}

/**
 * Reads a YAML config file of another kind than a run config (a transfer study, a collect
 * config) and validates it with `schema`; every problem is a `RunConfigError` naming the file
 * (`kind` says what it should be) and the key.
 */
export function loadYamlConfigFile<S extends z.ZodTypeAny>(file: string, schema: S, kind: string): z.output<S> {
  const result = schema.safeParse(parseYamlDocument(readConfigText(file, kind), file));
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(top level)'}: ${describeZodIssue(issue)}`);
    throw new RunConfigError(`invalid ${kind} ${file}:\n${issues.map((l) => `  ${l}`).join('\n')}`, issues);
  }
  return result.data;
}

function readConfigText(file: string, kind: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory, not a YAML file' : (error as Error).message;
    throw new RunConfigError(`cannot read ${kind} ${file}: ${why}`);
  }
}

/** A zod issue as one readable phrase, for configs whose errors name the key. */
export function describeZodIssue(issue: z.ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return `required, missing (expected ${issue.expected})`;
  return issue.message;
}

function parseYamlDocument(text: string, source: string): unknown {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((error) => {
      const pos = error.linePos?.[0];
      const where = pos ? `${source}:${pos.line}:${pos.col}` : source;
      // yaml's own message repeats the position and adds a source excerpt; keep its first line, without the position.
      const first = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      return `${where}: YAML syntax error: ${first.length > 100 ? `${first.slice(0, 97)}...` : first}`;
    });
    // A file that is not YAML at all (a README, a binary) gives an error per line; the first few say it.
    const shown = lines.length > 3 ? [...lines.slice(0, 3), `(${lines.length - 3} more YAML errors: is ${source} a YAML run config?)`] : lines;
    throw new RunConfigError(shown.join('\n'), lines);
  }
  const value: unknown = doc.toJS();
  // An empty file parses to null; report it as the missing sections it amounts to.
  return value === null || value === undefined ? {} : value;
}

function applyOverride(raw: unknown, override: string, source: string): unknown {
  const eq = override.indexOf('=');
  if (eq <= 0) throw new RunConfigError(`--set '${override}': expected key.path=value (e.g. --set algo.lr=0.001)`);
  const keyPath = override.slice(0, eq).trim();
  const path = keyPath.split('.');
  if (path.some((key) => key === '')) throw new RunConfigError(`--set '${override}': empty key in '${keyPath}'`);
  let value: unknown;
  try {
    // YAML scalars and flow collections, so `3e-4`, `true`, `null` and `[1, 2]` arrive typed.
    value = YAML.parse(override.slice(eq + 1));
  } catch (error) {
    throw new RunConfigError(`--set ${keyPath}: cannot parse value '${override.slice(eq + 1)}': ${(error as Error).message.split('\n')[0]}`);
  }
  if (value === undefined) value = null;

  const root: Record<string, unknown> = isRecord(raw) ? structuredClone(raw) : {};
  let node = root;
  // Below a free-form mapping such as env.options, any key is the user's to choose.
  let open = false;
  for (let i = 0; i < path.length; i++) {
    const prefix = path.slice(0, i);
    open ||= isOpenRecordAt(prefix, root);
    if (!open && !schemaAt(path.slice(0, i + 1), root)) {
      const valid = validKeysAt(prefix, root);
      const where = prefix.length ? prefix.join('.') : 'the top level';
      throw new RunConfigError(
        `--set ${keyPath}: unknown key '${path.slice(0, i + 1).join('.')}' in ${source}` +
          (valid ? ` (valid at ${where}: ${valid.join(', ')})${didYouMean(path[i], valid)}` : ` ('${where}' has no keys)`),
      );
    }
    if (i === path.length - 1) {
      node[path[i]] = value;
    } else {
      const child = node[path[i]];
      // Lists stay lists (`tasks.0.num_envs` sets a key of the first task).
      node[path[i]] = isRecord(child) || Array.isArray(child) ? child : {};
      node = node[path[i]] as Record<string, unknown>;
    }
  }
  return root;
}

/**
 * `run.num_envs` defaults per algorithm, so it is missing whenever the algorithm is; that is one
 * mistake, already reported at `algo`.
 */
function isUnfilledDefault(issue: z.ZodIssue, raw: unknown): boolean {
  const name = algoNameOf(raw);
  return issue.code === 'invalid_type' && issue.received === 'undefined' && issue.path.join('.') === 'run.num_envs' && (name === undefined || !ALGO_NAMES.includes(name));
}

function describeIssue(issue: z.ZodIssue, raw: unknown): string[] {
  const path = issue.path.map(String);
  const at = (p: readonly string[]) => (p.length ? p.join('.') : '(top level)');
  const got = describeValue(valueAt(raw, path));
  switch (issue.code) {
    case 'unrecognized_keys': {
      const valid = validKeysAt(path, raw) ?? [];
      const algo = path.length === 1 && path[0] === 'algo' ? algoNameOf(raw) : undefined;
      return issue.keys.map((key) => {
        const owners = algo ? algosWithKey(key) : [];
        const hint = owners.length ? `; '${key}' is a ${owners.join('/')} key` : '';
        return `${at([...path, key])}: unknown key${algo ? ` for ${algo}` : ''} (valid: ${valid.join(', ')})${hint || didYouMean(key, valid)}`;
      });
    }
    case 'invalid_type':
      if (issue.received === 'undefined') return [`${at(path)}: required ${describeExpected(path, raw) ?? issue.expected}, missing`];
      return [`${at(path)}: expected ${describeExpected(path, raw) ?? issue.expected}, got ${got}`];
    case 'invalid_union_discriminator': {
      const given = valueAt(raw, path);
      return [`${at(path)}: expected one of ${ALGO_NAMES.join(', ')}, got ${got}${typeof given === 'string' ? didYouMean(given, ALGO_NAMES) : ''}`];
    }
    case 'invalid_enum_value':
      return [`${at(path)}: expected one of ${issue.options.map(String).join(', ')}, got ${got}`];
    case 'invalid_literal':
      return [`${at(path)}: expected ${describeValue(issue.expected)}, got ${got}`];
    case 'too_big':
      // Counts are capped at the largest exact integer, which their description leaves out.
      if (issue.maximum === Number.MAX_SAFE_INTEGER) return [`${at(path)}: expected ${describeExpected(path, raw) ?? 'a number'} and <= ${Number.MAX_SAFE_INTEGER}, got ${got}`];
      return [`${at(path)}: expected ${describeExpected(path, raw) ?? issue.message}, got ${got}`];
    case 'not_finite':
    case 'too_small':
    case 'not_multiple_of':
      return [`${at(path)}: expected ${describeExpected(path, raw) ?? issue.message}, got ${got}`];
    case 'invalid_union':
      return [`${at(path)}: expected ${describeExpected(path, raw) ?? 'one of the allowed values'}, got ${got}`];
    case 'custom':
      return [`${at(path)}: ${issue.message}`];
    default:
      return [`${at(path)}: ${issue.message}, got ${got}`];
  }
}

/** Every constraint on a field in one phrase ("an integer > 0"), rather than only the one that failed. */
function describeExpected(path: readonly string[], raw: unknown): string | undefined {
  const schema = schemaAt(path, raw);
  return schema ? describeSchema(schema) : undefined;
}

function describeSchema(schema: z.ZodTypeAny): string | undefined {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) return describeSchema(schema._def.innerType as z.ZodTypeAny);
  if (schema instanceof z.ZodNumber) {
    const parts = [schema.isInt ? 'an integer' : schema._def.checks.some((c) => c.kind === 'finite') ? 'a finite number' : 'a number'];
    for (const check of schema._def.checks) {
      if (check.kind === 'min') parts.push(`${check.inclusive ? '>=' : '>'} ${check.value}`);
      // The safe-integer cap of every count goes without saying.
      if (check.kind === 'max' && check.value < Number.MAX_SAFE_INTEGER) parts.push(`${check.inclusive ? '<=' : '<'} ${check.value}`);
    }
    return parts.length > 2 ? `${parts[0]} ${parts.slice(1).join(' and ')}` : parts.join(' ');
  }
  if (schema instanceof z.ZodString) return 'a non-empty string';
  if (schema instanceof z.ZodBoolean) return 'a boolean (true or false)';
  if (schema instanceof z.ZodLiteral) return describeValue(schema.value);
  if (schema instanceof z.ZodNull) return 'null';
  if (schema instanceof z.ZodEnum) return `one of ${(schema.options as string[]).join(', ')}`;
  if (schema instanceof z.ZodUnion) {
    const parts = (schema.options as z.ZodTypeAny[]).map(describeSchema);
    return parts.every((p) => p !== undefined) ? `one of ${parts.join(', ')}` : undefined;
  }
  if (schema instanceof z.ZodRecord || schema instanceof z.ZodObject) return 'a mapping';
  if (schema instanceof z.ZodDiscriminatedUnion) return `a mapping with name: ${ALGO_NAMES.join(' | ')}`;
  return undefined;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  // Long values (a whole non-YAML file read as one string) are cut to what identifies them.
  const cut = (text: string) => (text.length > 60 ? `${text.slice(0, 57)}...` : text);
  if (typeof value === 'string') return cut(JSON.stringify(value));
  if (Array.isArray(value)) return `a list ${cut(JSON.stringify(value))}`;
  if (isRecord(value)) return 'a mapping';
  return String(value);
}

function algoNameOf(raw: unknown): string | undefined {
  const algo = isRecord(raw) ? raw.algo : undefined;
  return isRecord(algo) && typeof algo.name === 'string' ? algo.name : undefined;
}

function valueAt(raw: unknown, path: readonly string[]): unknown {
  let value = raw;
  for (const key of path) value = isRecord(value) ? value[key] : Array.isArray(value) && /^\d+$/.test(key) ? value[Number(key)] : undefined;
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
