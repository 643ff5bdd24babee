/*
 * How `backend: auto` decides, apart from tfjs: given backends that may or may not load and the
 * run's own workload (a few learner updates and one batched act, timed on whichever backend is
 * active), take the one that is faster for this run. Which backend wins depends on the run: on a
 * small CPU machine tfjs-node loses whole runs to wasm through its per-op overhead, yet wins
 * wide-matmul updates; so the run itself is timed instead of trusting an order.
 *
 * Everything here works through the `BackendCandidate` and `BackendWorkload` interfaces, so the
 * rule can be checked with stub backends and fake timings (no tfjs-node needed).
 */

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** A backend `auto` may take. */
export interface BackendCandidate {
  readonly name: BackendName;
  /** Makes this backend the active one, resolving to a one-line description; rejects with the cause when it cannot. */
  activate(): Promise<string>;
}

/**
 * One timed call: its wall time and the CPU time the process spent in it (all threads). The
 * score uses CPU time: on a shared machine wall time favours a backend that runs more threads
 * (it gets more of the scheduler, not more done), while CPU time is what the run pays either way
 * and kept the order of backends that quiet-machine wall times show (README, Backends).
 */
export interface CallTime {
  wallMs: number;
  cpuMs: number;
}

/** What one backend took for the run's workload (medians of the timed calls). */
export interface WorkloadTiming {
  /** CPU ms of one learner update. */
  updateMs: number;
  /** CPU ms of one batched act for all of the run's envs. */
  actMs: number;
  updateWallMs: number;
  actWallMs: number;
  /** Updates and acts timed (after the warm-up). */
  updatesTimed: number;
  actsTimed: number;
}

/** The workload built on one backend, warmed up, ready to be timed piece by piece. */
export interface PreparedWorkload {
  /**
   * The warm-up update's time, when the workload measured it: an update that already outlasts the
   * timing budget is not run again (its first-run costs are small beside it).
   */
  readonly warmupUpdate?: CallTime;
  /** Runs one learner update; resolves to its time. */
  update(): Promise<CallTime>;
  /** Runs one batched act for all envs; resolves to its time. */
  act(): Promise<CallTime>;
  dispose(): void;
}

/**
 * The run's workload. The score of a backend is the ms it spends per env step:
 * `updateMs × updatesPerEnvStep + actMs / envStepsPerAct`.
 */
export interface BackendWorkload {
  /** What is timed, for the record (algorithm, shapes). */
  readonly description: string;
  /** Learner updates (as `update` runs one) per env step, from the config's update cadence. */
  readonly updatesPerEnvStep: number;
  /** Env steps one act covers: the run's number of envs. */
  readonly envStepsPerAct: number;
  /** Builds the workload on the backend active now (`backend` names it) and warms it up; may reject. */
  prepare(backend: BackendName): Promise<PreparedWorkload>;
}

export interface BackendTiming extends WorkloadTiming {
  backend: BackendName;
  /** The score: ms per env step (lower is faster). */
  msPerEnvStep: number;
}

export interface TimedBackendChoice {
  backend: BackendName;
  /** One line: why this backend (the timings, or why nothing was timed). */
  reason: string;
  timings: BackendTiming[];
  /** Backends left out, with why (did not load, or failed while timed). */
  skipped: { backend: BackendName; reason: string }[];
  /** What was timed, when something was. */
  workload?: { description: string; updatesPerEnvStep: number; envStepsPerAct: number };
  /** Wall time of the whole choice, loading included. */
  seconds: number;
}

function message(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.message;
  return String(err);
}

/** The score of a timing: ms per env step (see `BackendWorkload`). */
export function msPerEnvStep(timing: Pick<WorkloadTiming, 'updateMs' | 'actMs'>, workload: Pick<BackendWorkload, 'updatesPerEnvStep' | 'envStepsPerAct'>): number {
  return timing.updateMs * workload.updatesPerEnvStep + timing.actMs / workload.envStepsPerAct;
}

/** Scores closer than this fraction are a tie (kept by the preferred backend). */
export const DEFAULT_TIE_FRACTION = 0.05;
/**
 * Seconds of alternating timing rounds, after every backend is built and warmed up. The choice's
 * cost is part of the run's wall time: with 1.5 s of rounds (3.7 s in all, tfjs-node's loading
 * aside) a 65-s quickstart on auto took 10% longer than on wasm alone.
 */
export const DEFAULT_TIMING_SECONDS = 0.75;
const MIN_ROUNDS = 1;
const MAX_ROUNDS = 15;
const ACTS_PER_ROUND = 3;

/** Times one call of `f`: wall time and the process's CPU time (user + system, all threads). */
export async function timeCall(f: () => unknown): Promise<CallTime> {
  const cpu = process.cpuUsage();
  const began = performance.now();
  await f();
  const wallMs = performance.now() - began;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const fmt = (ms: number) => (ms >= 10 ? ms.toFixed(1) : ms.toPrecision(3));

/**
 * Chooses among `candidates` (in order of preference: it breaks ties and decides when nothing is
 * timed); `fallbacks` are tried only when no candidate loads. With one backend loaded, or no
 * `workload` (`untimedWhy` says why), the first that loads is taken without timing. Otherwise
 * the workload is built on each loaded backend and timed in alternating rounds (at least 3, for
 * about `timingSeconds`); a backend that fails while built or timed is skipped with the cause.
 * The lowest CPU ms per env step wins and is left active; a later candidate must beat an earlier
 * one by more than `tieFraction` (default 5%) of its score: closer is a tie, the earlier one's.
 */
export async function chooseBackend(
  candidates: readonly BackendCandidate[],
  workload: BackendWorkload | undefined,
  options: { fallbacks?: readonly BackendCandidate[]; untimedWhy?: string; tieFraction?: number; timingSeconds?: number; now?: () => number } = {},
): Promise<TimedBackendChoice> {
  const now = options.now ?? (() => performance.now());
  const start = now();
  const seconds = () => (now() - start) / 1000;
  const skipped: TimedBackendChoice['skipped'] = [];
  const loaded: { candidate: BackendCandidate; detail: string }[] = [];
  const load = async (list: readonly BackendCandidate[]) => {
    for (const candidate of list) {
      try {
        loaded.push({ candidate, detail: await candidate.activate() });
      } catch (err) {
        skipped.push({ backend: candidate.name, reason: `did not load: ${message(err)}` });
      }
    }
  };
  await load(candidates);
  if (loaded.length === 0) await load(options.fallbacks ?? []);
  const skippedText = () => (skipped.length > 0 ? `; skipped ${skipped.map((s) => `${s.backend} (${s.reason})`).join(', ')}` : '');
  if (loaded.length === 0) throw new Error(`no tfjs backend could be initialised${skippedText()}`);

  const untimed = async (why: string): Promise<TimedBackendChoice> => {
    const first = loaded[0];
    // Loading the later ones may have switched the active backend away from the first.
    await first.candidate.activate();
    return { backend: first.candidate.name, reason: `auto: ${first.candidate.name} (${first.detail}), not timed: ${why}${skippedText()}`, timings: [], skipped, seconds: seconds() };
  };
  if (loaded.length === 1) return untimed(`the only backend that loaded`);
  if (!workload) return untimed(options.untimedWhy ?? 'no workload to time');

  // Every backend is built first, then timed in alternating rounds, so a busy spell of a shared
  // machine slows all of them alike instead of deciding the choice.
  const prepared: { name: BackendName; activate: () => Promise<string>; work: PreparedWorkload; updates: CallTime[]; acts: CallTime[] }[] = [];
  for (const { candidate } of loaded) {
    try {
      await candidate.activate();
      prepared.push({ name: candidate.name, activate: () => candidate.activate(), work: await workload.prepare(candidate.name), updates: [], acts: [] });
    } catch (err) {
      skipped.push({ backend: candidate.name, reason: `failed while timed: ${message(err)}` });
    }
  }
  const budget = options.timingSeconds ?? DEFAULT_TIMING_SECONDS;
  const timing = () => prepared.filter((p) => !skipped.some((s) => s.backend === p.name));
  // Updates that each outlast the whole budget (a bar-lift MAPPO update: ~1.7 s on wasm, ~1.9 s on
  // tfjs-node) are scored from their warm-up runs plus one round of acting: running them again
  // would add seconds to the run's start for a difference already plain.
  const heavy = timing().length > 0 && timing().every((p) => p.work.warmupUpdate !== undefined && p.work.warmupUpdate.wallMs > budget * 1000);
  if (heavy) {
    for (const p of timing()) {
      try {
        await p.activate();
        p.updates.push(p.work.warmupUpdate!);
        for (let i = 0; i < ACTS_PER_ROUND; i++) p.acts.push(await p.work.act());
      } catch (err) {
        skipped.push({ backend: p.name, reason: `failed while timed: ${message(err)}` });
      }
    }
  }
  const timingStart = now();
  // At least one round; more only while the budget lasts. The choice's cost is part of the run's
  // wall time: a bar-lift MAPPO update takes ~0.6 s on wasm and ~1.1 s on tfjs-node, and three
  // forced rounds of it added ~10 s to the run's start.
  for (let round = 0; !heavy && round < MAX_ROUNDS && timing().length > 0 && (round < MIN_ROUNDS || now() - timingStart < budget * 1000); round++) {
    for (const p of timing()) {
      try {
        await p.activate();
        p.updates.push(await p.work.update());
        for (let i = 0; i < ACTS_PER_ROUND; i++) p.acts.push(await p.work.act());
      } catch (err) {
        skipped.push({ backend: p.name, reason: `failed while timed: ${message(err)}` });
      }
    }
  }
  for (const p of prepared) {
    await p.activate();
    p.work.dispose();
  }
  const timings: BackendTiming[] = timing().map((p) => {
    const t = {
      updateMs: median(p.updates.map((c) => c.cpuMs)), actMs: median(p.acts.map((c) => c.cpuMs)),
      updateWallMs: median(p.updates.map((c) => c.wallMs)), actWallMs: median(p.acts.map((c) => c.wallMs)),
      updatesTimed: p.updates.length, actsTimed: p.acts.length,
    };
    return { backend: p.name, ...t, msPerEnvStep: msPerEnvStep(t, workload) };
  });
  const record = { description: workload.description, updatesPerEnvStep: workload.updatesPerEnvStep, envStepsPerAct: workload.envStepsPerAct };
  if (timings.length === 0) return { ...(await untimed('every backend failed while timed')), workload: record };
  // Timings on a busy machine wobble by a few percent from one measurement to the next; within
  // that band the earlier (preferred) candidate stays, so the choice does not flip on noise.
  const tie = options.tieFraction ?? DEFAULT_TIE_FRACTION;
  const best = timings.reduce((a, b) => (b.msPerEnvStep < a.msPerEnvStep * (1 - tie) ? b : a));
  const winner = loaded.find((l) => l.candidate.name === best.backend)!;
  await winner.candidate.activate();
  const close = best.backend === timings[0].backend && timings.some((t) => t !== best && t.msPerEnvStep < best.msPerEnvStep) ? ` (within ${Math.round(tie * 100)}%: a tie, kept by the preferred backend)` : '';
  const shown = timings.map((t) => `${t.backend} ${fmt(t.msPerEnvStep)} ms/env step (CPU ms: update ${fmt(t.updateMs)}, act ${fmt(t.actMs)})`).join(' vs ');
  return {
    backend: best.backend,
    reason: `auto: ${best.backend} (${winner.detail}), faster on this run's workload: ${shown}${close}${skippedText()}`,
    timings,
    skipped,
    workload: record,
    seconds: seconds(),
  };
}

/**
 * The backend a run continued or evaluated from its record should use: an explicit preference
 * stands; `auto` takes the recorded backend (results are bit-identical only on the backend that
 * produced them), and is left to choose afresh only when nothing was recorded.
 */
export function backendFromRecord(preference: string, recorded: string | undefined, source: string): { backend: BackendName | 'auto'; why?: string } {
  if (preference !== 'auto') return { backend: preference as BackendName };
  if (recorded === 'tensorflow' || recorded === 'wasm' || recorded === 'cpu') return { backend: recorded, why: `the backend ${source} recorded` };
  return { backend: 'auto' };
}
