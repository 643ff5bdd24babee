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

/** What one backend took for the run's workload. */
export interface WorkloadTiming {
  /** ms of one learner update (median of the timed ones). */
  updateMs: number;
  /** ms of one batched act for all of the run's envs (median). */
  actMs: number;
  /** Updates and acts timed (after the warm-up). */
  updatesTimed: number;
  actsTimed: number;
}

/**
 * The run's workload, timed on the active backend. The score of a backend is the ms it spends
 * per env step: `updateMs × updatesPerEnvStep + actMs / envStepsPerAct`.
 */
export interface BackendWorkload {
  /** What is timed, for the record (algorithm, shapes). */
  readonly description: string;
  /** Learner updates (as `time` measures one) per env step, from the config's update cadence. */
  readonly updatesPerEnvStep: number;
  /** Env steps one act covers: the run's number of envs. */
  readonly envStepsPerAct: number;
  /** Times the workload on the backend active now (`backend` names it); may reject. */
  time(backend: BackendName): Promise<WorkloadTiming>;
}

export interface BackendTiming extends WorkloadTiming {
  backend: BackendName;
  /** The score: ms per env step (lower is faster). */
  msPerEnvStep: number;
  /** Wall time this backend's measurement took, building the learner included. */
  seconds: number;
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

const fmt = (ms: number) => (ms >= 10 ? ms.toFixed(1) : ms.toPrecision(3));

/**
 * Chooses among `candidates` (in order of preference: it breaks ties and decides when nothing is
 * timed); `fallbacks` are tried only when no candidate loads. With one backend loaded, or no
 * `workload` (`untimedWhy` says why), the first that loads is taken without timing. Otherwise
 * each loaded backend is activated and the workload timed on it; one that fails while timed is
 * skipped with the cause; the lowest ms per env step wins, and it is left active.
 */
export async function chooseBackend(
  candidates: readonly BackendCandidate[],
  workload: BackendWorkload | undefined,
  options: { fallbacks?: readonly BackendCandidate[]; untimedWhy?: string; now?: () => number } = {},
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

  const timings: BackendTiming[] = [];
  for (const { candidate } of loaded) {
    const began = now();
    try {
      await candidate.activate();
      const t = await workload.time(candidate.name);
      timings.push({ backend: candidate.name, ...t, msPerEnvStep: msPerEnvStep(t, workload), seconds: (now() - began) / 1000 });
    } catch (err) {
      skipped.push({ backend: candidate.name, reason: `failed while timed: ${message(err)}` });
    }
  }
  const record = { description: workload.description, updatesPerEnvStep: workload.updatesPerEnvStep, envStepsPerAct: workload.envStepsPerAct };
  if (timings.length === 0) return { ...(await untimed('every backend failed while timed')), workload: record };
  // Strictly lower wins, so a tie keeps the earlier (preferred) candidate.
  const best = timings.reduce((a, b) => (b.msPerEnvStep < a.msPerEnvStep ? b : a));
  const winner = loaded.find((l) => l.candidate.name === best.backend)!;
  await winner.candidate.activate();
  const shown = timings.map((t) => `${t.backend} ${fmt(t.msPerEnvStep)} ms/env step (update ${fmt(t.updateMs)} ms, act ${fmt(t.actMs)} ms)`).join(' vs ');
  return {
    backend: best.backend,
    reason: `auto: ${best.backend} (${winner.detail}), faster on this run's workload: ${shown}${skippedText()}`,
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
