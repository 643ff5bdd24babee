import { Rng, deriveSeed } from '../runtime/core/rng';
import type { AgentId, ParallelEnv, PerAgent, ResetArgs, ResetResult, StepResult } from './parallel-env';
import type { Space } from './spaces/space';
import { describeValue } from './spaces/space';

/**
 * The conformance checker behind `troupe check-env`, in the spirit of PettingZoo's
 * `parallel_api_test`: it drives a user's env with seeded random legal actions and reports,
 * check by check, which rules of `ParallelEnv` (see parallel-env.ts) the env breaks.
 *
 * Every check makes its own envs with `makeEnv`, so one broken behaviour (or a throw) shows
 * up in the check about it and does not hide the others.
 */

export interface CheckResult {
  name: string;
  passed: boolean;
  /** Why it failed (first few problems), or a note on a passing check (e.g. not exercised). */
  message?: string;
}

export interface CheckReport {
  envId: string;
  checks: CheckResult[];
  passed: boolean;
}

export interface CheckOptions {
  /** Seed for the env's resets and for the checker's own action choices. Default 0. */
  seed?: number | string;
  /** Episodes played by each rollout-based check. Default 3. */
  episodes?: number;
  /**
   * Steps after which the checker stops an episode itself. Default: the env's
   * `metadata.maxEpisodeSteps` + 1. Lower it for slow envs; the episode-length check then
   * cannot see episodes end and says so.
   */
  maxSteps?: number;
  /** What the report calls the env when it cannot be built or has no `metadata.id` (e.g. the module's name). */
  name?: string;
}

type AnyEnv = ParallelEnv<unknown, unknown>;

const DEFAULT_EPISODES = 3;
/** Tolerates the common off-by-one of truncating at step `maxEpisodeSteps + 1`. */
const EPISODE_LENGTH_SLACK = 1;
/** Used only when metadata.maxEpisodeSteps is unusable (that is reported by the metadata check). */
const FALLBACK_EPISODE_LIMIT = 1000;
/** A failing check lists this many problems; more would bury the first, which is usually the cause. */
const MAX_PROBLEMS_SHOWN = 5;

interface CheckContext {
  makeEnv: () => AnyEnv;
  seed: number | string;
  episodes: number;
  /** Steps after which the checker ends an episode itself. */
  stepCap: number;
  /** Steps within which the env must end every episode by itself. */
  episodeLimit: number;
  declaredMaxSteps: number | undefined;
}

/**
 * Collects what one check found. A rule broken at every step would otherwise bury the report,
 * so identical problems are listed once, at the first place they occurred, with a count.
 */
class CheckLog {
  private readonly problems = new Map<string, { where?: string; detail?: string; repeats: number }>();
  private readonly notes: string[] = [];

  /**
   * `where` (e.g. `episode 1 step 3`) and `detail` (e.g. the offending value) are kept apart
   * from the message so that repeats collapse; both are shown for the first occurrence.
   */
  problem(message: string, where?: string, detail?: string): void {
    const seen = this.problems.get(message);
    if (seen) seen.repeats++;
    else this.problems.set(message, { where, detail, repeats: 0 });
  }

  note(message: string): void {
    if (!this.notes.includes(message)) this.notes.push(message);
  }

  result(name: string): CheckResult {
    if (this.problems.size === 0) return this.notes.length ? { name, passed: true, message: this.notes.join('\n') } : { name, passed: true };
    const lines = [...this.problems].slice(0, MAX_PROBLEMS_SHOWN).map(([message, { where, detail, repeats }]) => {
      const again = repeats ? ` (and ${repeats} more time${repeats > 1 ? 's' : ''})` : '';
      return `${where ? `${where}: ` : ''}${message}${detail ? `: ${detail}` : ''}${again}`;
    });
    const hidden = this.problems.size - MAX_PROBLEMS_SHOWN;
    if (hidden > 0) lines.push(`(and ${hidden} other problem${hidden > 1 ? 's' : ''})`);
    return { name, passed: false, message: lines.join('\n') };
  }
}

type CheckFn = (ctx: CheckContext, log: CheckLog) => void;

/** Thrown when a call into the env throws or returns something unusable; its message says which call. */
class EnvCallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnvCallError';
  }
}

/** The checks in report order; names are stable so CI scripts and tests can refer to them. */
const CHECKS: ReadonlyArray<{ name: string; run: CheckFn }> = [
  { name: 'possible-agents', run: checkPossibleAgents },
  { name: 'spaces', run: checkSpaces },
  { name: 'metadata', run: checkMetadata },
  { name: 'reset', run: checkReset },
  { name: 'observations-in-space', run: checkObservationsInSpace },
  { name: 'step-bookkeeping', run: checkStepBookkeeping },
  { name: 'episode-length', run: checkEpisodeLength },
  { name: 'action-masks', run: checkActionMasks },
  { name: 'state', run: checkState },
  { name: 'determinism', run: checkDeterminism },
  { name: 'reset-after-done', run: checkResetAfterDone },
  { name: 'rejects-out-of-space-action', run: checkRejectsOutOfSpaceAction },
  { name: 'rejects-masked-action', run: checkRejectsMaskedAction },
  { name: 'rejects-action-for-non-live-agent', run: checkRejectsActionForNonLiveAgent },
  { name: 'rejects-missing-action', run: checkRejectsMissingAction },
  { name: 'render', run: checkRender },
  { name: 'observations-not-mutated', run: checkObservationsNotMutated },
];

const CONSTRUCT_CHECK = 'construct';

/** Names of all checks `checkEnv` reports, in order. */
export const CHECK_NAMES: readonly string[] = [CONSTRUCT_CHECK, ...CHECKS.map((c) => c.name)];

/**
 * Runs every check on envs made by `makeEnv` and reports each one. Never throws for a broken
 * env (only for invalid options); `passed` is true only when every check passed.
 */
export function checkEnv(makeEnv: () => AnyEnv, opts: CheckOptions = {}): CheckReport {
  const seed = opts.seed ?? 0;
  const episodes = opts.episodes ?? DEFAULT_EPISODES;
  if (!Number.isInteger(episodes) || episodes < 1) throw new RangeError(`checkEnv: episodes must be a positive integer, got ${episodes}`);
  if (opts.maxSteps !== undefined && (!Number.isInteger(opts.maxSteps) || opts.maxSteps < 1)) {
    throw new RangeError(`checkEnv: maxSteps must be a positive integer, got ${opts.maxSteps}`);
  }

  const probe = probeEnv(makeEnv, opts.name ?? '<unknown>');
  const checks: CheckResult[] = [probe.result];
  const declaredMaxSteps = probe.maxEpisodeSteps;
  const episodeLimit = declaredMaxSteps !== undefined ? declaredMaxSteps + EPISODE_LENGTH_SLACK : FALLBACK_EPISODE_LIMIT;
  const ctx: CheckContext = { makeEnv, seed, episodes, stepCap: opts.maxSteps ?? episodeLimit, episodeLimit, declaredMaxSteps };

  for (const check of CHECKS) {
    if (!probe.result.passed) {
      // Every check would fail with the same construction error; say it once.
      checks.push({ name: check.name, passed: false, message: 'skipped: the env could not be constructed (see construct)' });
      continue;
    }
    const log = new CheckLog();
    try {
      check.run(ctx, log);
    } catch (err) {
      log.problem(err instanceof EnvCallError ? err.message : `the check stopped on an unexpected error: ${errorText(err)}`);
    }
    checks.push(log.result(check.name));
  }
  return { envId: probe.envId, checks, passed: checks.every((c) => c.passed) };
}

/** A readable listing of a report, one line per check with messages indented below. */
export function formatCheckReport(report: CheckReport): string {
  const lines = [`check-env ${report.envId}`];
  for (const check of report.checks) {
    lines.push(`  ${check.passed ? '✓' : '✗'} ${check.name}`);
    if (check.message) for (const line of check.message.split('\n')) lines.push(`      ${line}`);
  }
  const failed = report.checks.filter((c) => !c.passed).length;
  lines.push(failed === 0 ? `PASSED: all ${report.checks.length} checks` : `FAILED: ${failed} of ${report.checks.length} checks`);
  return lines.join('\n');
}

function probeEnv(makeEnv: () => AnyEnv, fallbackId: string): { envId: string; maxEpisodeSteps?: number; result: CheckResult } {
  let env: unknown;
  try {
    env = makeEnv();
  } catch (err) {
    return { envId: fallbackId, result: { name: CONSTRUCT_CHECK, passed: false, message: `makeEnv() threw: ${errorText(err)}` } };
  }
  const missing = ['reset', 'step', 'observationSpace', 'actionSpace', 'render'].filter(
    (method) => typeof (env as Record<string, unknown> | null)?.[method] !== 'function',
  );
  if (typeof env !== 'object' || env === null || missing.length) {
    const message = `makeEnv() returned ${describeBriefly(env)}, which lacks ${missing.join(', ')}; expected a ParallelEnv`;
    return { envId: fallbackId, result: { name: CONSTRUCT_CHECK, passed: false, message } };
  }
  const made = env as AnyEnv;
  let envId = fallbackId;
  let maxEpisodeSteps: number | undefined;
  try {
    const metadata: unknown = made.metadata;
    if (isRecord(metadata)) {
      if (typeof metadata.id === 'string' && metadata.id) envId = metadata.id;
      if (isPositiveInteger(metadata.maxEpisodeSteps)) maxEpisodeSteps = metadata.maxEpisodeSteps;
    }
  } catch {
    // A throwing metadata getter is reported by the metadata check.
  }
  closeQuietly(made);
  return { envId, maxEpisodeSteps, result: { name: CONSTRUCT_CHECK, passed: true } };
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

function checkPossibleAgents(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    const possible: unknown = envCall('env.possibleAgents', () => env.possibleAgents);
    if (!Array.isArray(possible)) {
      log.problem(`possibleAgents is ${describeValue(possible)}; expected an array of agent id strings`);
      return;
    }
    if (possible.length === 0) log.problem('possibleAgents is empty; an env needs at least one agent');
    for (const agent of possible) {
      if (typeof agent !== 'string' || agent === '') log.problem(`possibleAgents contains ${describeValue(agent)}; agent ids must be non-empty strings`);
    }
    const duplicates = possible.filter((a, i) => possible.indexOf(a) !== i);
    if (duplicates.length) log.problem(`possibleAgents has duplicates: ${duplicates.map(String).join(', ')}`);

    // possibleAgents must be fixed for the env's life: trainers size their buffers from it.
    const before = JSON.stringify(possible);
    resetEnv(env, { seed: ctx.seed });
    const live = agentsOf(env);
    if (live.length) stepEnv(env, legalActions(env, live, checkerRng(ctx, 'possible-agents')), 'the first step');
    const after = JSON.stringify(envCall('env.possibleAgents', () => env.possibleAgents));
    if (after !== before) log.problem(`possibleAgents changed from ${before} to ${after} after reset() and a step; it must never change`);
  });
}

function checkSpaces(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'spaces');
  withEnv(ctx, (env) => {
    // Before any reset: trainers build their networks from the spaces before the first episode.
    for (const agent of possibleOf(env)) {
      for (const kind of ['observationSpace', 'actionSpace'] as const) {
        const space: unknown = envCall(`env.${kind}('${agent}')`, () => env[kind](agent));
        if (!isSpaceLike(space)) {
          log.problem(`${kind}('${agent}') returned ${describeValue(space)}; expected a Space (with sample, contains and describe)`);
          continue;
        }
        for (let i = 0; i < 5; i++) {
          const sample = envCall(`${kind}('${agent}').sample()`, () => space.sample(rng));
          if (!spaceContains(space, sample)) {
            log.problem(`${kind}('${agent}') ${space.describe()} does not contain its own sample ${describeValue(sample)}`);
            break;
          }
        }
      }
    }
  });
}

function checkMetadata(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    const metadata: unknown = envCall('env.metadata', () => env.metadata);
    if (!isRecord(metadata)) {
      log.problem(`metadata is ${describeValue(metadata)}; expected { id, family, maxEpisodeSteps }`);
      return;
    }
    for (const key of ['id', 'family'] as const) {
      if (typeof metadata[key] !== 'string' || metadata[key] === '') log.problem(`metadata.${key} is ${describeValue(metadata[key])}; expected a non-empty string`);
    }
    if (!isPositiveInteger(metadata.maxEpisodeSteps)) {
      log.problem(`metadata.maxEpisodeSteps is ${describeValue(metadata.maxEpisodeSteps)}; expected a positive integer step limit`);
    }
    if (metadata.entityObservation !== undefined) checkEntityObservation(ctx, env, metadata.entityObservation, log);
  });
}

/**
 * `metadata.entityObservation`: positive integer block sizes, and every agent's observation (its
 * space's flat length, and what reset returns) is the self block plus whole entity blocks.
 */
function checkEntityObservation(ctx: CheckContext, env: AnyEnv, declared: unknown, log: CheckLog): void {
  const what = 'metadata.entityObservation';
  if (!isRecord(declared)) {
    log.problem(`${what} is ${describeValue(declared)}; expected { selfDim, entityDim } (positive integers) or no such key`);
    return;
  }
  const { selfDim, entityDim } = declared;
  let usable = true;
  for (const [key, value] of [['selfDim', selfDim], ['entityDim', entityDim]] as const) {
    if (!isPositiveInteger(value)) {
      log.problem(`${what}.${key} is ${describeValue(value)}; expected a positive integer`);
      usable = false;
    }
  }
  if (!usable) return;
  const self = selfDim as number;
  const entity = entityDim as number;
  const fits = (length: number) => length >= self && (length - self) % entity === 0;
  const misfit = (source: string, length: number) => {
    const blocks = (length - self) / entity;
    const why = length < self ? 'shorter than the self block' : `(${length} − ${self}) / ${entity} = ${Number(blocks.toFixed(3))} is not a whole number of entity blocks`;
    return `${what} is { selfDim: ${self}, entityDim: ${entity} }, but ${source} has ${length} numbers: ${why}`;
  };
  const possible = possibleOf(env);
  for (const agent of possible) {
    const length = observationSpaceOf(env, agent).flatDim;
    if (!fits(length)) log.problem(misfit(`the observation space of '${agent}'`, length));
  }
  const { observations } = resetEnv(env, { seed: ctx.seed });
  for (const [agent, observation] of Object.entries(observations)) {
    if (!possible.includes(agent) || !ArrayBuffer.isView(observation) || observation instanceof DataView) continue; // others: other checks report them
    const length = (observation as unknown as ArrayLike<number>).length;
    if (!fits(length)) log.problem(misfit(`the reset observation of '${agent}'`, length));
  }
}

function checkReset(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    const possible = possibleOf(env);
    // With a seed and then without one: the second continues the stream and must be just as valid.
    for (const args of [{ seed: ctx.seed }, {}] as ResetArgs[]) {
      const call = `reset(${args.seed === undefined ? '' : `{ seed: ${JSON.stringify(args.seed)} }`})`;
      const result = resetEnv(env, args);
      const live = agentsOf(env);
      for (const problem of liveAgentProblems(live, possible)) log.problem(`after ${call}: ${problem}`);
      if (live.length === 0) log.problem(`after ${call}: agents is empty, so the episode is over before it starts`);
      for (const [name, dict] of [['observations', result.observations], ['infos', result.infos]] as const) {
        const mismatch = keyMismatch(name, dict, live);
        if (mismatch) log.problem(`${call}: ${mismatch}`);
      }
      for (const [agent, info] of Object.entries(result.infos)) {
        if (!isRecord(info)) log.problem(`${call}: infos['${agent}'] is ${describeValue(info)}; expected an object`);
      }
    }
  });
}

function checkObservationsInSpace(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    const possible = possibleOf(env);
    const inspect = (observations: PerAgent<unknown>, where: string): void => {
      for (const [agent, observation] of Object.entries(observations)) {
        if (!possible.includes(agent)) continue; // keyed by a non-agent: step-bookkeeping reports it
        const space = observationSpaceOf(env, agent);
        if (!spaceContains(space, observation)) {
          log.problem(`the observation of '${agent}' is outside its observation space ${space.describe()}`, where, describeValue(observation));
        }
      }
    };
    runEpisodes(ctx, env, 'observations-in-space', {
      afterReset: (result, _live, where) => inspect(result.observations, where),
      afterStep: (event) => inspect(event.result.observations, event.where),
    });
  });
}

function checkStepBookkeeping(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    const possible = possibleOf(env);
    /** Agents that were terminated or truncated this episode, with the step that did it. */
    let doneAt = new Map<AgentId, string>();
    runEpisodes(ctx, env, 'step-bookkeeping', {
      afterReset: () => {
        doneAt = new Map();
      },
      afterStep: ({ where, acted, result, live }) => {
        for (const name of ['observations', 'rewards', 'terminations', 'truncations', 'infos'] as const) {
          const mismatch = keyMismatch(name, result[name], acted);
          if (mismatch) log.problem(mismatch, where);
        }
        const doneNow: AgentId[] = [];
        for (const agent of acted) {
          const reward = result.rewards[agent];
          if (agent in result.rewards && (typeof reward !== 'number' || !Number.isFinite(reward))) {
            log.problem(`the reward of '${agent}' is ${describeValue(reward)}; expected a finite number`, where);
          }
          for (const name of ['terminations', 'truncations'] as const) {
            const flag = result[name][agent];
            if (agent in result[name] && typeof flag !== 'boolean') log.problem(`${name}['${agent}'] is ${describeValue(flag)}; expected a boolean`, where);
          }
          if (result.terminations[agent] === true || result.truncations[agent] === true) doneNow.push(agent);
        }
        for (const agent of doneNow) doneAt.set(agent, where);
        const seen = new Set<AgentId>();
        for (const agent of live) {
          if (seen.has(agent)) log.problem(`agents lists '${agent}' twice`, where);
          seen.add(agent);
          if (!possible.includes(agent)) log.problem(`agent '${agent}' appeared in agents but is not one of possibleAgents`, where);
          else if (doneNow.includes(agent)) log.problem(`'${agent}' was terminated or truncated by this step but is still in agents`, where);
          else if (doneAt.has(agent)) log.problem(`'${agent}' was done at ${doneAt.get(agent)} but is back in agents before reset`, where);
        }
        for (const agent of acted) {
          if (!doneNow.includes(agent) && !live.includes(agent)) {
            log.problem(`'${agent}' left agents without being terminated or truncated`, where);
          }
        }
      },
    });
  });
}

function checkEpisodeLength(ctx: CheckContext, log: CheckLog): void {
  const limitText =
    ctx.declaredMaxSteps === undefined
      ? `${ctx.episodeLimit} steps (metadata.maxEpisodeSteps is unusable, so the checker's fallback limit)`
      : `metadata.maxEpisodeSteps (${ctx.declaredMaxSteps}) + ${EPISODE_LENGTH_SLACK}`;
  withEnv(ctx, (env) => {
    const outcomes = runEpisodes(ctx, env, 'episode-length', {});
    outcomes.forEach((outcome, i) => {
      const episode = i + 1;
      if (outcome.ended && outcome.steps > ctx.episodeLimit) {
        log.problem(`episode ${episode} lasted ${outcome.steps} steps, longer than ${limitText}`);
      } else if (!outcome.ended && ctx.stepCap >= ctx.episodeLimit) {
        log.problem(
          `episode ${episode} still had live agents [${outcome.live.join(', ')}] after ${outcome.steps} steps; ` +
            `every agent must be terminated or truncated within ${limitText}`,
        );
      } else if (!outcome.ended) {
        log.note(`episode ${episode} was stopped by maxSteps=${ctx.stepCap} before the env's own limit, so its end was not verified`);
      }
    });
  });
}

function checkActionMasks(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    if (typeof env.actionMask !== 'function') {
      log.note('no actionMask (every action is always legal)');
      return;
    }
    const inspect = (live: AgentId[], where: string): void => {
      for (const agent of live) {
        const space = actionSpaceOf(env, agent);
        const mask: unknown = envCall(`env.actionMask('${agent}') at ${where}`, () => env.actionMask?.(agent));
        if (!isDiscreteLike(space)) {
          log.problem(`actionMask is defined but the action space of '${agent}' is ${space.describe()}; masks are for Discrete action spaces`);
          continue;
        }
        if (!(mask instanceof Uint8Array)) {
          log.problem(`actionMask('${agent}') returned ${describeValue(mask)}; expected a Uint8Array`, where);
        } else if (mask.length !== space.n) {
          log.problem(`actionMask('${agent}') has length ${mask.length}, but the action space ${space.describe()} has ${space.n} actions`, where);
        } else if (!mask.some((allowed) => allowed !== 0)) {
          log.problem(`actionMask('${agent}') allows no action (all zeros); a live agent needs at least one legal action`, where);
        }
      }
    };
    runEpisodes(ctx, env, 'action-masks', {
      afterReset: (_result, live, where) => inspect(live, where),
      afterStep: (event) => inspect(event.live, event.where),
    });
  });
}

function checkState(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    const stateSpace: unknown = envCall('env.stateSpace', () => env.stateSpace);
    if (typeof env.state !== 'function') {
      if (stateSpace !== undefined) log.problem('stateSpace is set but state() is missing; define both or neither');
      else log.note('no state() (only needed for centralised critics)');
      return;
    }
    if (!isSpaceLike(stateSpace)) {
      log.problem(`state() is defined but stateSpace is ${describeValue(stateSpace)}; expected a Box`);
      return;
    }
    const state = env.state.bind(env);
    const inspect = (where: string): void => {
      const value = envCall(`env.state() at ${where}`, state);
      if (!spaceContains(stateSpace, value)) log.problem(`state() is outside stateSpace ${stateSpace.describe()}`, where, describeValue(value));
    };
    runEpisodes(ctx, env, 'state', {
      afterReset: (_result, _live, where) => inspect(where),
      afterStep: (event) => inspect(event.where),
    });
  });
}

function checkDeterminism(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'determinism');
  withEnv(ctx, (first) => {
    const traces: EpisodeTrace[] = [];
    for (let episode = 1; episode <= ctx.episodes; episode++) {
      traces.push(traceEpisode(first, resetArgsFor(ctx, episode), episode, ctx.stepCap, { rng }));
    }
    withEnv(ctx, (second) => {
      for (let episode = 1; episode <= ctx.episodes; episode++) {
        const replay = traceEpisode(second, resetArgsFor(ctx, episode), episode, ctx.stepCap, { replay: traces[episode - 1] });
        const difference = compareTraces(traces[episode - 1], replay);
        if (difference) {
          log.problem(`a second env from makeEnv(), reset with the same seed and given the same actions, differs in episode ${episode}: ${difference}`);
          break; // later episodes continue a diverged stream, so they would only repeat the news
        }
      }
    });
    const again = traceEpisode(first, { seed: ctx.seed }, 1, ctx.stepCap, { replay: traces[0] });
    const difference = compareTraces(traces[0], again);
    if (difference) log.problem(`resetting the same env again with seed ${JSON.stringify(ctx.seed)} does not repeat episode 1: ${difference}`);
  });
}

function checkResetAfterDone(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'reset-after-done');
  withEnv(ctx, (env) => {
    const possible = possibleOf(env);
    // Without a seed (continuing the stream) and with one (restarting it) after a finished episode.
    const resets: ResetArgs[] = [{}, { seed: ctx.seed }];
    let episode = 1;
    let outcome = runEpisode(env, { seed: ctx.seed }, episode, ctx.stepCap, randomActions(rng));
    for (const args of resets) {
      if (!outcome.ended) log.note(`episode ${episode} did not end within ${ctx.stepCap} steps; reset was tried on a running episode instead`);
      episode++;
      const call = `reset(${args.seed === undefined ? '' : `{ seed: ${JSON.stringify(args.seed)} }`}) after episode ${episode - 1}`;
      const result = resetEnv(env, args);
      const live = agentsOf(env);
      if (live.length === 0) log.problem(`${call}: agents is still empty; reset must bring the agents back`);
      for (const problem of liveAgentProblems(live, possible)) log.problem(`${call}: ${problem}`);
      const mismatch = keyMismatch('observations', result.observations, live);
      if (mismatch) log.problem(`${call}: ${mismatch}`);
      for (const agent of live) {
        const space = observationSpaceOf(env, agent);
        const observation = result.observations[agent];
        if (agent in result.observations && !spaceContains(space, observation)) {
          log.problem(`${call}: the observation of '${agent}' is outside ${space.describe()}: ${describeValue(observation)}`);
        }
      }
      outcome = continueEpisode(env, live, episode, ctx.stepCap, randomActions(rng));
    }
  });
}

function checkRejectsOutOfSpaceAction(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'rejects-out-of-space-action');
  withEnv(ctx, (env) => {
    resetEnv(env, { seed: ctx.seed });
    const live = agentsOf(env);
    if (live.length === 0) {
      log.note('not exercised: reset left no live agents');
      return;
    }
    const agent = live[0];
    const space = actionSpaceOf(env, agent);
    const bad = outOfSpaceAction(space);
    if (!bad) {
      log.note(`not exercised: could not build an action outside ${space.describe()}`);
      return;
    }
    const shown = describeValue(bad.value);
    const error = stepError(env, { ...legalActions(env, live, rng), [agent]: bad.value });
    if (error === undefined) {
      log.problem(`step() accepted action ${shown} for '${agent}', which is outside its action space ${space.describe()}; it must throw`);
    } else {
      const unnamed: string[] = [];
      if (!error.includes(agent)) unnamed.push(`the agent '${agent}'`);
      if (![space.describe(), shown, String(bad.value)].some((text) => error.includes(text))) unnamed.push(`the action (${shown}) or the space (${space.describe()})`);
      if (unnamed.length) log.problem(`step() threw for out-of-space action ${shown} of '${agent}', but the message does not name ${unnamed.join(' nor ')}: "${error}"`);
    }
    ensureUsableAfterReset(ctx, env, rng, log, 'the out-of-space action');
  });
}

function checkRejectsMaskedAction(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'rejects-masked-action');
  withEnv(ctx, (env) => {
    if (typeof env.actionMask !== 'function') {
      log.note('no actionMask, nothing to reject');
      return;
    }
    const found = findInRollout(ctx, env, rng, (live) => {
      for (const agent of live) {
        const space = actionSpaceOf(env, agent);
        // Ill-formed masks are the action-masks check's business; probe only well-formed ones.
        const mask = usableMask(env, agent, space);
        const index = mask ? mask.indexOf(0) : -1;
        if (index >= 0 && isDiscreteLike(space)) return { agent, action: space.start + index };
      }
      return undefined;
    });
    if (!found) {
      log.note('not exercised: no live agent had a masked-out action');
      return;
    }
    const { agent, action } = found.value;
    const error = stepError(env, { ...legalActions(env, found.live, rng), [agent]: action });
    if (error === undefined) log.problem(`step() accepted action ${action} for '${agent}', which its actionMask forbids; it must throw`, found.where);
    else if (!error.includes(agent)) log.problem(`step() threw for masked action ${action} of '${agent}', but the message does not name the agent: "${error}"`, found.where);
    ensureUsableAfterReset(ctx, env, rng, log, 'the masked action');
  });
}

function checkRejectsActionForNonLiveAgent(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'rejects-action-for-non-live-agent');
  withEnv(ctx, (env) => {
    const possible = possibleOf(env);
    const expectRejected = (live: AgentId[], agent: AgentId, action: unknown, why: string, where: string): void => {
      const error = stepError(env, { ...legalActions(env, live, rng), [agent]: action });
      if (error === undefined) log.problem(`step() accepted an action for '${agent}', which ${why}; it must throw`, where);
      else if (!error.includes(agent)) log.problem(`step() threw for an action of '${agent}' (${why}), but the message does not name the agent: "${error}"`, where);
    };

    resetEnv(env, { seed: ctx.seed });
    const live = agentsOf(env);
    if (live.length === 0) {
      log.note('not exercised: reset left no live agents');
      return;
    }
    let unknown = 'not-an-agent';
    while (possible.includes(unknown)) unknown += '_';
    expectRejected(live, unknown, legalAction(env, live[0], rng), 'is not an agent of this env', 'after reset');
    ensureUsableAfterReset(ctx, env, rng, log, 'the action for an unknown agent');

    const found = findInRollout(ctx, env, rng, (now) => possible.find((agent) => !now.includes(agent)));
    if (!found) {
      log.note('non-live possible agents not exercised: no agent was ever done while others were still live');
      return;
    }
    const dead = found.value;
    let action: unknown;
    try {
      action = actionSpaceOf(env, dead).sample(rng);
    } catch {
      action = legalAction(env, found.live[0], rng); // some envs only define spaces for live agents
    }
    expectRejected(found.live, dead, action, 'is not live (terminated, truncated or not yet spawned)', found.where);
    ensureUsableAfterReset(ctx, env, rng, log, `the action for non-live agent '${dead}'`);
  });
}

function checkRejectsMissingAction(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'rejects-missing-action');
  withEnv(ctx, (env) => {
    resetEnv(env, { seed: ctx.seed });
    const live = agentsOf(env);
    if (live.length === 0) {
      log.note('not exercised: reset left no live agents');
      return;
    }
    const omitted = live[0];
    const actions = legalActions(env, live, rng);
    delete actions[omitted];
    const error = stepError(env, actions);
    if (error === undefined) log.problem(`step() without an action for live agent '${omitted}' did not throw; every live agent must act`);
    else if (!error.includes(omitted)) log.problem(`step() threw for the missing action of '${omitted}', but the message does not name the agent: "${error}"`);
    ensureUsableAfterReset(ctx, env, rng, log, 'the missing action');
  });
}

function checkRender(ctx: CheckContext, log: CheckLog): void {
  const rng = checkerRng(ctx, 'render');
  withEnv(ctx, (env) => {
    const inspect = (where: string): void => {
      const text: unknown = envCall(`env.render() ${where}`, () => env.render());
      if (typeof text !== 'string') log.problem(`render() ${where} returned ${describeValue(text)}; expected a string`);
    };
    resetEnv(env, { seed: ctx.seed });
    inspect('after reset');
    const live = agentsOf(env);
    if (live.length) {
      stepEnv(env, legalActions(env, live, rng), 'the first step');
      inspect('after a step');
    }
  });
}

function checkObservationsNotMutated(ctx: CheckContext, log: CheckLog): void {
  withEnv(ctx, (env) => {
    const kept: Array<{ agent: AgentId; where: string; value: unknown; fingerprint: string }> = [];
    const verify = (by: string): void => {
      const changed = kept.filter((item) => fingerprint(item.value) !== item.fingerprint);
      if (changed.length === 0) return;
      const [first] = changed;
      const others = changed.length > 1 ? ` (and ${changed.length - 1} more kept observations)` : '';
      log.problem(
        `the observation of '${first.agent}' returned at ${first.where} was changed by ${by}${others}; ` +
          'return a fresh array each time (callers keep observations in replay buffers)',
      );
      // Report each observation once, at the first moment it was found changed.
      for (const item of changed) kept.splice(kept.indexOf(item), 1);
    };
    const keep = (observations: PerAgent<unknown>, where: string): void => {
      for (const [agent, value] of Object.entries(observations)) kept.push({ agent, where, value, fingerprint: fingerprint(value) });
    };
    let episode = 0;
    runEpisodes(ctx, env, 'observations-not-mutated', {
      afterReset: (result, _live, where) => {
        if (episode > 0) verify(`the end of episode ${episode} or the next reset`);
        episode++;
        keep(result.observations, where);
      },
      afterStep: (event) => keep(event.result.observations, event.where),
    });
    verify(`the end of episode ${episode}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Driving the env
// ---------------------------------------------------------------------------------------------

interface StepEvent {
  /** e.g. `episode 2 step 5`, for messages. */
  where: string;
  /** The live agents before the step: the ones that acted. */
  acted: AgentId[];
  actions: PerAgent<unknown>;
  result: StepResult<unknown>;
  /** The live agents after the step. */
  live: AgentId[];
}

interface EpisodeHooks {
  afterReset?(result: ResetResult<unknown>, live: AgentId[], where: string): void;
  afterStep?(event: StepEvent): void;
}

interface EpisodeOutcome {
  /** The env emptied `agents` by itself. */
  ended: boolean;
  steps: number;
  live: AgentId[];
}

/** Picks the next step's actions, or undefined to stop the episode. */
type ActionChooser = (env: AnyEnv, live: AgentId[], stepIndex: number) => PerAgent<unknown> | undefined;

function runEpisode(env: AnyEnv, resetArgs: ResetArgs, episode: number, stepCap: number, choose: ActionChooser, hooks: EpisodeHooks = {}): EpisodeOutcome {
  const result = resetEnv(env, resetArgs);
  const live = agentsOf(env);
  hooks.afterReset?.(result, live, `episode ${episode} reset`);
  return continueEpisode(env, live, episode, stepCap, choose, hooks);
}

function continueEpisode(env: AnyEnv, live: AgentId[], episode: number, stepCap: number, choose: ActionChooser, hooks: EpisodeHooks = {}): EpisodeOutcome {
  let steps = 0;
  while (live.length > 0 && steps < stepCap) {
    const actions = choose(env, live, steps);
    if (!actions) break;
    const where = `episode ${episode} step ${steps + 1}`;
    const result = stepEnv(env, actions, where);
    steps++;
    const acted = live;
    live = agentsOf(env);
    hooks.afterStep?.({ where, acted, actions, result, live });
  }
  return { ended: live.length === 0, steps, live };
}

/** The first reset is seeded; later ones continue the stream, as trainers do. */
function resetArgsFor(ctx: CheckContext, episode: number): ResetArgs {
  return episode === 1 ? { seed: ctx.seed } : {};
}

function runEpisodes(ctx: CheckContext, env: AnyEnv, purpose: string, hooks: EpisodeHooks): EpisodeOutcome[] {
  const choose = randomActions(checkerRng(ctx, purpose));
  const outcomes: EpisodeOutcome[] = [];
  for (let episode = 1; episode <= ctx.episodes; episode++) {
    outcomes.push(runEpisode(env, resetArgsFor(ctx, episode), episode, ctx.stepCap, choose, hooks));
  }
  return outcomes;
}

/**
 * Plays random legal episodes until `probe` finds something in the live agents (after a
 * reset or a step) and returns it with the moment it was found; the env is left there.
 */
function findInRollout<T>(
  ctx: CheckContext,
  env: AnyEnv,
  rng: Rng,
  probe: (live: AgentId[]) => T | undefined,
): { value: T; live: AgentId[]; where: string } | undefined {
  for (let episode = 1; episode <= ctx.episodes; episode++) {
    resetEnv(env, resetArgsFor(ctx, episode));
    let live = agentsOf(env);
    let where = `episode ${episode} after reset`;
    for (let step = 0; live.length > 0; step++) {
      const value = probe(live);
      if (value !== undefined) return { value, live, where };
      if (step >= ctx.stepCap) break;
      where = `episode ${episode} after step ${step + 1}`;
      stepEnv(env, legalActions(env, live, rng), where);
      live = agentsOf(env);
    }
  }
  return undefined;
}

function randomActions(rng: Rng): ActionChooser {
  return (env, live) => legalActions(env, live, rng);
}

/** One random legal action per live agent, honouring well-formed action masks. */
function legalActions(env: AnyEnv, live: AgentId[], rng: Rng): PerAgent<unknown> {
  const actions: PerAgent<unknown> = {};
  for (const agent of live) actions[agent] = legalAction(env, agent, rng);
  return actions;
}

function legalAction(env: AnyEnv, agent: AgentId, rng: Rng): unknown {
  const space = actionSpaceOf(env, agent);
  const mask = usableMask(env, agent, space);
  return envCall(`actionSpace('${agent}').sample()`, () => space.sample(rng, mask));
}

/**
 * The agent's mask when it can be sampled from; an unusable one (wrong type or length, all
 * zeros) is ignored here so that the action-masks check alone reports it.
 */
function usableMask(env: AnyEnv, agent: AgentId, space: Space<unknown>): Uint8Array | undefined {
  if (typeof env.actionMask !== 'function' || !isDiscreteLike(space)) return undefined;
  const mask: unknown = envCall(`env.actionMask('${agent}')`, () => env.actionMask?.(agent));
  if (!(mask instanceof Uint8Array) || mask.length !== space.n || !mask.some((allowed) => allowed !== 0)) return undefined;
  return mask;
}

/** Checks that a step with a bad action resets cleanly and can then step again. */
function ensureUsableAfterReset(ctx: CheckContext, env: AnyEnv, rng: Rng, log: CheckLog, after: string): void {
  try {
    const result = resetEnv(env, { seed: ctx.seed });
    const live = agentsOf(env);
    const mismatch = keyMismatch('observations', result.observations, live);
    if (live.length === 0 || mismatch) {
      log.problem(`after the error for ${after}, reset() did not start a valid episode: ${mismatch ?? 'agents is empty'}`);
      return;
    }
    stepEnv(env, legalActions(env, live, rng), 'the first step');
  } catch (err) {
    log.problem(`after the error for ${after}, the env is not usable again after reset(): ${errorText(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Determinism traces
// ---------------------------------------------------------------------------------------------

/** One compared value: `key` says what it is, `fingerprint` is its exact content. */
interface TracePart {
  key: string;
  fingerprint: string;
  shown: string;
}

interface EpisodeTrace {
  reset: TracePart[];
  steps: Array<{ actions: PerAgent<unknown>; parts: TracePart[] }>;
  /** Set when a replay could not go on: the live agents no longer matched the recorded actions. */
  divergence?: string;
}

/** Plays one episode choosing actions with `rng`, or replaying another trace's actions. */
function traceEpisode(env: AnyEnv, resetArgs: ResetArgs, episode: number, stepCap: number, source: { rng: Rng } | { replay: EpisodeTrace }): EpisodeTrace {
  const trace: EpisodeTrace = { reset: [], steps: [] };
  const choose: ActionChooser =
    'rng' in source
      ? randomActions(source.rng)
      : (_env, live, stepIndex) => {
          const recorded = source.replay.steps[stepIndex];
          if (!recorded) return undefined;
          const expected = Object.keys(recorded.actions);
          if (!sameMembers(live, expected)) {
            trace.divergence = `before step ${stepIndex + 1} the live agents are [${live.join(', ')}] instead of [${expected.join(', ')}]`;
            return undefined;
          }
          return recorded.actions;
        };
  runEpisode(env, resetArgs, episode, stepCap, choose, {
    afterReset: (result, live) => {
      trace.reset = [part('agents', live), ...dictParts('observation', result.observations)];
    },
    afterStep: ({ actions, result, live }) => {
      trace.steps.push({
        actions,
        parts: [
          ...dictParts('observation', result.observations),
          ...dictParts('reward', result.rewards),
          ...dictParts('termination', result.terminations),
          ...dictParts('truncation', result.truncations),
          part('agents after the step', live),
        ],
      });
    },
  });
  return trace;
}

/** Describes the first difference between two traces of the same episode, if any. */
function compareTraces(expected: EpisodeTrace, actual: EpisodeTrace): string | undefined {
  const atReset = compareParts(expected.reset, actual.reset);
  if (atReset) return `after reset, ${atReset}`;
  const common = Math.min(expected.steps.length, actual.steps.length);
  for (let i = 0; i < common; i++) {
    const atStep = compareParts(expected.steps[i].parts, actual.steps[i].parts);
    if (atStep) return `at step ${i + 1}, ${atStep}`;
  }
  if (actual.divergence) return actual.divergence;
  if (actual.steps.length !== expected.steps.length) return `the episode lasted ${actual.steps.length} steps instead of ${expected.steps.length}`;
  return undefined;
}

function compareParts(expected: TracePart[], actual: TracePart[]): string | undefined {
  const byKey = new Map(actual.map((p) => [p.key, p]));
  for (const want of expected) {
    const got = byKey.get(want.key);
    if (!got) return `${want.key} is missing`;
    if (got.fingerprint !== want.fingerprint) {
      const sameText = got.shown === want.shown ? ' (same printed value, different bytes)' : '';
      return `${want.key} is ${got.shown} instead of ${want.shown}${sameText}`;
    }
  }
  const expectedKeys = new Set(expected.map((p) => p.key));
  const extra = actual.find((p) => !expectedKeys.has(p.key));
  return extra ? `there is an extra ${extra.key}` : undefined;
}

function part(key: string, value: unknown): TracePart {
  return { key, fingerprint: fingerprint(value), shown: describeValue(value) };
}

function dictParts(kind: string, dict: PerAgent<unknown>): TracePart[] {
  return Object.keys(dict)
    .sort()
    .map((agent) => part(`the ${kind} of '${agent}'`, dict[agent]));
}

/**
 * The exact content of a value as a string: typed arrays by their raw bytes (so -0, NaN
 * payloads and float32 rounding all count), numbers by their shortest round-trip text.
 */
function fingerprint(value: unknown, depth = 0): string {
  if (depth > 32) return '…'; // cyclic or absurdly deep values: the prefix already tells them apart
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return `${value.constructor.name}:${bytes.toString('hex')}`;
  }
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (Array.isArray(value)) return `[${value.map((v) => fingerprint(v, depth + 1)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${fingerprint(record[k], depth + 1)}`)
      .join(',')}}`;
  }
  return `${typeof value}:${String(value)}`;
}

// ---------------------------------------------------------------------------------------------
// Calls into the env, with errors that say which call failed
// ---------------------------------------------------------------------------------------------

function envCall<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof EnvCallError) throw err;
    throw new EnvCallError(`${what} threw: ${errorText(err)}`);
  }
}

function withEnv(ctx: CheckContext, body: (env: AnyEnv) => void): void {
  const env = envCall('makeEnv()', ctx.makeEnv);
  try {
    body(env);
  } finally {
    closeQuietly(env);
  }
}

function closeQuietly(env: AnyEnv): void {
  try {
    env.close?.();
  } catch {
    // close() is outside the contract's checked rules; a failure here must not mask the check's result.
  }
}

function resetEnv(env: AnyEnv, args: ResetArgs): ResetResult<unknown> {
  const result: unknown = envCall(`env.reset(${describeValue(args)})`, () => env.reset(args));
  if (!isRecord(result) || !isRecord(result.observations) || !isRecord(result.infos)) {
    throw new EnvCallError(`env.reset() returned ${describeValue(result)}; expected { observations, infos } keyed by agent`);
  }
  return result as unknown as ResetResult<unknown>;
}

function stepEnv(env: AnyEnv, actions: PerAgent<unknown>, where: string): StepResult<unknown> {
  const result: unknown = envCall(`env.step() at ${where}`, () => env.step(actions));
  const dicts = ['observations', 'rewards', 'terminations', 'truncations', 'infos'];
  if (!isRecord(result) || dicts.some((name) => !isRecord(result[name]))) {
    throw new EnvCallError(`env.step() at ${where} returned ${describeValue(result)}; expected { ${dicts.join(', ')} } keyed by agent`);
  }
  return result as unknown as StepResult<unknown>;
}

/** The message of the error `step` throws, or undefined when it accepts the actions. */
function stepError(env: AnyEnv, actions: PerAgent<unknown>): string | undefined {
  try {
    env.step(actions);
    return undefined;
  } catch (err) {
    return errorText(err);
  }
}

/** A copy of `env.agents`: envs may hand out their internal array and mutate it later. */
function agentsOf(env: AnyEnv): AgentId[] {
  const agents: unknown = envCall('env.agents', () => env.agents);
  if (!Array.isArray(agents)) throw new EnvCallError(`env.agents is ${describeValue(agents)}; expected an array of agent ids`);
  return [...agents] as AgentId[];
}

function possibleOf(env: AnyEnv): AgentId[] {
  const possible: unknown = envCall('env.possibleAgents', () => env.possibleAgents);
  if (!Array.isArray(possible)) throw new EnvCallError(`env.possibleAgents is ${describeValue(possible)}; expected an array of agent ids`);
  return [...possible] as AgentId[];
}

function observationSpaceOf(env: AnyEnv, agent: AgentId): Space<unknown> {
  const space: unknown = envCall(`env.observationSpace('${agent}')`, () => env.observationSpace(agent));
  if (!isSpaceLike(space)) throw new EnvCallError(`env.observationSpace('${agent}') returned ${describeValue(space)}; expected a Space`);
  return space;
}

function actionSpaceOf(env: AnyEnv, agent: AgentId): Space<unknown> {
  const space: unknown = envCall(`env.actionSpace('${agent}')`, () => env.actionSpace(agent));
  if (!isSpaceLike(space)) throw new EnvCallError(`env.actionSpace('${agent}') returned ${describeValue(space)}; expected a Space`);
  return space;
}

function spaceContains(space: Space<unknown>, value: unknown): boolean {
  return envCall(`${space.describe()}.contains()`, () => space.contains(value));
}

function checkerRng(ctx: CheckContext, purpose: string): Rng {
  return new Rng(deriveSeed(ctx.seed, 'check-env', purpose));
}

// ---------------------------------------------------------------------------------------------
// Value helpers
// ---------------------------------------------------------------------------------------------

/**
 * Spaces are recognised by shape rather than `instanceof`, because a user's env may bring its
 * own copy of troupe's space classes.
 */
function isSpaceLike(x: unknown): x is Space<unknown> {
  const s = x as Record<string, unknown> | null;
  return typeof x === 'object' && x !== null && typeof s?.sample === 'function' && typeof s.contains === 'function' && typeof s.describe === 'function';
}

function isDiscreteLike(space: Space<unknown>): space is Space<unknown> & { n: number; start: number } {
  const s = space as unknown as Record<string, unknown>;
  return typeof s.n === 'number' && typeof s.start === 'number';
}

/** A value the space does not contain, preferring ones of the right kind (one past the range, NaNs of the right length). */
function outOfSpaceAction(space: Space<unknown>): { value: unknown } | undefined {
  const s = space as unknown as Record<string, unknown>;
  const candidates: unknown[] = [];
  if (isDiscreteLike(space)) candidates.push(space.start + space.n, space.start - 1);
  if (s.nvec instanceof Int32Array) candidates.push(Int32Array.from(s.nvec));
  if (typeof s.flatDim === 'number' && Number.isInteger(s.flatDim) && s.flatDim >= 0) {
    candidates.push(new Float32Array(s.flatDim).fill(Number.NaN), new Float32Array(s.flatDim + 1));
  }
  candidates.push(-1, 0.5, Number.NaN, 'not-an-action', null);
  for (const value of candidates) if (!spaceContains(space, value)) return { value };
  return undefined;
}

/** Problems with a list of live agents: duplicates and agents that are not possible. */
function liveAgentProblems(live: AgentId[], possible: AgentId[]): string[] {
  const problems: string[] = [];
  const duplicates = live.filter((a, i) => live.indexOf(a) !== i);
  if (duplicates.length) problems.push(`agents lists ${duplicates.join(', ')} more than once`);
  const strangers = live.filter((a) => !possible.includes(a));
  if (strangers.length) problems.push(`agents contains ${strangers.map((a) => `'${a}'`).join(', ')}, not in possibleAgents`);
  return problems;
}

/** Says how a per-agent dict's keys differ from the expected agents, or undefined if they match. */
function keyMismatch(name: string, dict: unknown, expected: AgentId[]): string | undefined {
  if (!isRecord(dict)) return `${name} is ${describeValue(dict)}; expected an object keyed by agent`;
  const keys = Object.keys(dict);
  const missing = expected.filter((a) => !keys.includes(a));
  const extra = keys.filter((k) => !expected.includes(k));
  if (!missing.length && !extra.length) return undefined;
  const parts = [missing.length ? `missing ${missing.map((a) => `'${a}'`).join(', ')}` : '', extra.length ? `unexpected ${extra.map((a) => `'${a}'`).join(', ')}` : ''];
  return `${name} must be keyed by exactly the agents [${expected.join(', ')}]: ${parts.filter(Boolean).join('; ')}`;
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isPositiveInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An object by its class and method names, not its data (which may be large or circular). */
function describeBriefly(x: unknown): string {
  if (typeof x !== 'object' || x === null) return describeValue(x);
  const ctor = (x as { constructor?: { name?: string } }).constructor?.name;
  return `${ctor && ctor !== 'Object' ? `a ${ctor}` : 'an object'} with keys [${Object.keys(x).slice(0, 12).join(', ')}]`;
}
