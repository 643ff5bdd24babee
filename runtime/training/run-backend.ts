import { backendFromRecord } from '../core/backend-choice';
import type { TimedBackendChoice, BackendWorkload } from '../core/backend-choice';
import { type BackendChoice, type BackendPreference, chooseBackendForWorkload, selectBackend } from '../core/tf-backend';
import { runWorkload } from './backend-workload';
import type { RunConfig } from './run-config';

/** The backend a run trains on, as run.json records it: name, reason and, for a timed `auto`, the timings. */
export interface RunBackend {
  name: string;
  reason: string;
  /** `backend_choice` of run.json: the timed choice's workload, timings and skipped backends. */
  choice?: Record<string, unknown>;
}

/** How `activateRunBackend` reaches tfjs; tests give stubs. */
export interface RunBackendDeps {
  select(preference: BackendPreference): Promise<BackendChoice>;
  workload(config: RunConfig): Promise<{ workload: BackendWorkload; close: () => void } | { untimedWhy: string }>;
  choose(workload: BackendWorkload | undefined, untimedWhy?: string): Promise<TimedBackendChoice>;
}

const realDeps: RunBackendDeps = { select: selectBackend, workload: runWorkload, choose: chooseBackendForWorkload };

/**
 * Makes `run.backend` active for `troupe train`. A resume with `auto` continues on the backend
 * the run recorded (its numbers are bit-identical only there), choosing afresh only when that
 * backend does not load here (`warn` says so); otherwise `auto` times the run's own workload on
 * every backend that loads and takes the faster (`chooseBackend`).
 */
export async function activateRunBackend(
  config: RunConfig,
  resume: { path: string; recordedBackend: string | undefined; recordedChoice?: Record<string, unknown> } | undefined,
  warn: (message: string) => void,
  deps: RunBackendDeps = realDeps,
): Promise<RunBackend> {
  const fromRecord = resume ? backendFromRecord(config.run.backend, resume.recordedBackend, resume.path) : { backend: config.run.backend as BackendPreference };
  if (fromRecord.backend !== 'auto') {
    try {
      const chosen = await deps.select(fromRecord.backend);
      if (!fromRecord.why) return { name: chosen.backend, reason: chosen.reason };
      // The timings that chose the backend stay in run.json, which the resume rewrites.
      return { name: chosen.backend, reason: `auto on resume: ${fromRecord.why} (${chosen.reason})`, ...(resume?.recordedChoice ? { choice: resume.recordedChoice } : {}) };
    } catch (error) {
      if (!fromRecord.why) throw error;
      warn(`${resume?.path} was trained on the ${fromRecord.backend} backend, which does not load here (${(error as Error).message}); choosing afresh`);
    }
  }
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  // The workload's shapes come from a learner built once on the always-present cpu backend.
  await deps.select('cpu');
  // A run whose learner cannot be built fails later with its own error, where the run reports it;
  // here that only means nothing is timed.
  const measured = await deps.workload(config).catch((error: unknown) => ({ untimedWhy: `the workload could not be built (${error instanceof Error ? error.message.split('\n')[0] : String(error)})` }));
  try {
    const choice = 'workload' in measured ? await deps.choose(measured.workload) : await deps.choose(undefined, measured.untimedWhy);
    // `seconds`: what the choice added to the run's start, the workload's setup included.
    // `cpu_seconds`: the same in CPU time, which a busy machine inflates far less than wall time.
    const cpu = process.cpuUsage(cpuStart);
    const record = { seconds: Number(((performance.now() - start) / 1000).toFixed(2)), cpu_seconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)), ...(choice.workload ? { workload: choice.workload } : {}), timings: choice.timings, skipped: choice.skipped };
    return { name: choice.backend, reason: choice.reason, choice: record };
  } finally {
    if ('close' in measured) measured.close();
  }
}
