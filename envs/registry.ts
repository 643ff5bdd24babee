import { didYouMean } from './close-match';
import type { EnvFactory, ParallelEnv } from './parallel-env';

/** What the registry knows about an env id besides its factory. */
export interface EnvDefaults {
  /** Family, e.g. `gridworld/lbf`; shown by `troupe envs`. */
  family: string;
  description?: string;
  /** Options passed to the factory unless overridden. */
  options?: Record<string, unknown>;
  /**
   * The option names the factory accepts (`id` is always passed and need not be listed).
   * Given, options outside it are refused by name before the env is built (`envOptionProblem`);
   * absent (e.g. a user module's registration), the factory decides alone.
   */
  optionKeys?: readonly string[];
  /** Hidden ids are makeable but not listed (e.g. every parsed scenario variant). */
  listed?: boolean;
  /**
   * Asynchronous set-up the factory needs in this thread before it can run (e.g. instantiating
   * a physics engine's WebAssembly). `prepareEnv(id)` awaits it; factories are synchronous.
   */
  prepare?: () => Promise<void>;
  /**
   * Task families (meta-RL benchmarks such as `point-robot`): the tasks that a set of the env's
   * options describes, each as the options that build it, with its side of the train/test split
   * and the parameters that define it. What `troupe collect` records datasets of.
   */
  taskFamily?: (options: Record<string, unknown>) => TaskFamilyMember[];
}

/** One task of a task family (`EnvDefaults.taskFamily`). */
export interface TaskFamilyMember {
  /** A key unique within the family, usable as a run's task key and a file name, e.g. `task07`. */
  key: string;
  /** The env options that build this task (the family's options plus what selects the task). */
  options: Record<string, unknown>;
  split: 'train' | 'test';
  /** What defines the task (e.g. `{ goal: [x, y] }`), recorded beside its data; never observed by agents. */
  parameters: Record<string, unknown>;
}

interface Registration {
  id: string;
  factory: EnvFactory<unknown, unknown>;
  defaults: EnvDefaults;
}

/**
 * Turns a scenario id such as `lbf-10x10-3p-3f` into a registered base id and options,
 * or returns undefined when the id is not of this parser's form.
 */
export type ScenarioParser = (id: string) => { baseId: string; options: Record<string, unknown> } | undefined;

const registrations = new Map<string, Registration>();
const parsers: ScenarioParser[] = [];

/** Registers an env under `id`. Registering the same id twice is an error (catches typos and double imports). */
export function registerEnv<Obs, Act>(id: string, factory: EnvFactory<Obs, Act>, defaults: EnvDefaults): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/.test(id)) throw new Error(`registerEnv: invalid id '${id}' (letters, digits and _ . : / - only)`);
  if (registrations.has(id)) throw new Error(`registerEnv: '${id}' is already registered`);
  registrations.set(id, { id, factory: factory as EnvFactory<unknown, unknown>, defaults });
}

/** Adds a parser for parametric scenario ids; tried in registration order when an id is not registered exactly. */
export function registerScenarioParser(parser: ScenarioParser): void {
  parsers.push(parser);
}

/** Resolves an id to its registration and the options its name encodes. */
export function resolveEnvId(id: string): { registration: Registration; options: Record<string, unknown> } {
  const exact = registrations.get(id);
  if (exact) return { registration: exact, options: {} };
  for (const parse of parsers) {
    const parsed = parse(id);
    if (!parsed) continue;
    const base = registrations.get(parsed.baseId);
    if (base) return { registration: base, options: parsed.options };
  }
  const known = listEnvs().map((r) => r.id);
  const close = known.filter((k) => k.split('-')[0] === id.split('-')[0]).slice(0, 6);
  throw new Error(
    `Unknown env id '${id}'.` +
      (close.length ? ` Similar ids: ${close.join(', ')}.` : '') +
      ' Run `troupe envs` for the list.',
  );
}

/**
 * Makes an env. Options are merged in this order: registration defaults, options encoded
 * in the id, then `options`. The env's `metadata.id` is the id asked for.
 */
export function makeEnv<Obs = Float32Array, Act = number>(id: string, options: Record<string, unknown> = {}): ParallelEnv<Obs, Act> {
  const { registration, options: fromId } = resolveEnvId(id);
  const problem = optionProblem(registration, options);
  if (problem) throw new Error(`${id}: unknown option '${problem.option}' (known options: ${problem.known.join(', ')})${didYouMean(problem.option, problem.known)}`);
  const merged = { ...(registration.defaults.options ?? {}), ...fromId, ...options, id };
  return registration.factory(merged) as ParallelEnv<Obs, Act>;
}

/**
 * The first option `id`'s registration does not accept, with the options it knows, or undefined
 * when all are accepted or the registration does not declare its options. Cheap: builds
 * nothing, so a config can be checked before a run starts. Unknown ids throw the registry's error.
 */
export function envOptionProblem(id: string, options: Record<string, unknown>): { option: string; known: readonly string[] } | undefined {
  return optionProblem(resolveEnvId(id).registration, options);
}

function optionProblem(registration: Registration, options: Record<string, unknown>): { option: string; known: readonly string[] } | undefined {
  const known = registration.defaults.optionKeys?.filter((k) => k !== 'id');
  if (!known) return undefined;
  const option = Object.keys(options).find((k) => k !== 'id' && !known.includes(k));
  return option === undefined ? undefined : { option, known };
}

/** The options `id`'s registration declares (without `id`), or undefined when it leaves them to its factory. */
export function envOptionKeys(id: string): readonly string[] | undefined {
  return resolveEnvId(id).registration.defaults.optionKeys?.filter((k) => k !== 'id');
}

/**
 * Awaits whatever `id`'s registration needs before `makeEnv(id)` can run in this thread (see
 * `EnvDefaults.prepare`). Cheap after the first call; unknown ids throw the registry's error.
 */
export async function prepareEnv(id: string): Promise<void> {
  const { registration } = resolveEnvId(id);
  await registration.defaults.prepare?.();
}

/**
 * The tasks of a task family env (`EnvDefaults.taskFamily`) for the given options, with the same
 * option checks as `makeEnv`; undefined for envs that are not task families.
 */
export function envTaskFamily(id: string, options: Record<string, unknown> = {}): TaskFamilyMember[] | undefined {
  const { registration, options: fromId } = resolveEnvId(id);
  const problem = optionProblem(registration, options);
  if (problem) throw new Error(`${id}: unknown option '${problem.option}' (known options: ${problem.known.join(', ')})${didYouMean(problem.option, problem.known)}`);
  return registration.defaults.taskFamily?.({ ...(registration.defaults.options ?? {}), ...fromId, ...options, id });
}

/** Listed registrations, sorted by family then id. */
export function listEnvs(): Array<{ id: string; family: string; description?: string }> {
  return [...registrations.values()]
    .filter((r) => r.defaults.listed !== false)
    .map((r) => ({ id: r.id, family: r.defaults.family, description: r.defaults.description }))
    .sort((a, b) => a.family.localeCompare(b.family) || a.id.localeCompare(b.id, undefined, { numeric: true }));
}

export function isRegistered(id: string): boolean {
  try {
    resolveEnvId(id);
    return true;
  } catch {
    return false;
  }
}
