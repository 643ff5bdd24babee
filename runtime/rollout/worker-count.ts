import os from 'node:os';
import { RandomPolicy } from '../../agents/policies/random-policy';
import type { EnvSpec } from '../../envs/env-spec';
import { VectorEnv } from './vector-env';

/** A worker count as configs and flags give it: a number of threads (0 = in-process) or `auto`. */
export type WorkerSetting = number | 'auto';

/** What `workers: auto` decided for one vector, and why (recorded in run.json). */
export interface WorkerChoice {
  workers: number;
  reason: string;
  /** In-process time of one vector step of all the vector's envs, µs (measured on up to `MEASURED_ENVS` envs, scaled). */
  inProcessStepMicros: number;
  /** What a vector step over `workers` threads is expected to take, µs (the in-process one when workers = 0). */
  predictedStepMicros: number;
  cores: number;
}

/**
 * What a vector step over worker threads costs beyond its share of env stepping: the hand-off
 * (commands, wake-ups of workers and of the main thread, results in shared memory). Measured on
 * the 2-core reference VM (`troupe bench envs`, 64 envs, 2 workers): cheap envs lose ~120 µs
 * per vector step to it; a bare Atomics ping-pong between two threads costs 15–35 µs.
 */
export const WORKER_STEP_OVERHEAD_MICROS = 120;

/**
 * Workers must promise at least this speed-up over in-process to be chosen: the measurement is
 * short and the machine may be shared, so near-ties stay in-process (which costs no threads).
 */
export const AUTO_MIN_SPEEDUP = 1.3;

/** Envs timed for the decision (a larger vector is timed on this many and scaled). */
const MEASURED_ENVS = 64;
/** Consecutive vector steps per timed sample. */
const SAMPLE_STEPS = 8;

export interface ChooseWorkersOptions {
  /** CPU cores to plan for; default `os.availableParallelism()`. */
  cores?: number;
  /** Milliseconds of timed in-process stepping (after a warm-up of half as long, at least 20 steps); default 150. */
  measureMs?: number;
  /** Seed of the measuring vector and its random actions (the choice never changes results). */
  seed?: number | string;
}

/**
 * Chooses a worker count for `numEnvs` copies of `env` by timing a few in-process vector steps
 * with random legal actions: worker threads pay only where a step's share of env work outweighs
 * the hand-off between threads (`WORKER_STEP_OVERHEAD_MICROS`) by `AUTO_MIN_SPEEDUP`. The answer
 * is 0 (in-process) or one worker per core — the main thread waits while the envs step, so it
 * needs no core of its own — never more workers than envs. Workers never change results, so
 * neither does this choice.
 */
export async function chooseWorkers(env: EnvSpec, numEnvs: number, options: ChooseWorkersOptions = {}): Promise<WorkerChoice> {
  const cores = options.cores ?? os.availableParallelism();
  const measureMs = options.measureMs ?? 150;
  const measured = Math.min(numEnvs, MEASURED_ENVS);
  const vec = await VectorEnv.create({ env, numEnvs: measured, workers: 0, seed: options.seed ?? 'choose-workers' });
  let perEnvMicros: number;
  try {
    const policy = new RandomPolicy(vec.layout, options.seed ?? 'choose-workers');
    const b = vec.buffers;
    const step = async (): Promise<void> => {
      policy.writeActions(b.masks, b.alive, b.actions, 0, measured);
      await vec.step();
    };
    await vec.reset();
    // Warm-up: the JIT compiles the env's hot code over the first few dozen steps.
    const warmStart = performance.now();
    for (let k = 0; k < 20 || performance.now() - warmStart < measureMs / 2; k++) await step();
    // The median of many short samples: a sample other processes interrupted is slower than
    // the env's own cost, and one without an episode reset is faster (the fastest sample rated
    // combat-3v3 at a third of its cost: `troupe bench envs`, 2026-12-08), so neither end is used.
    const samples: number[] = [];
    const start = performance.now();
    do {
      const t0 = performance.now();
      for (let k = 0; k < SAMPLE_STEPS; k++) await step();
      samples.push((performance.now() - t0) / SAMPLE_STEPS);
    } while (performance.now() - start < measureMs || samples.length < 5);
    samples.sort((a, b) => a - b);
    perEnvMicros = (samples[Math.floor(samples.length / 2)] * 1000) / measured;
  } finally {
    await vec.close();
  }
  return decideWorkers(env.id, numEnvs, perEnvMicros, cores);
}

/** The rule behind `chooseWorkers`, given the measured in-process cost of one env step (µs). */
export function decideWorkers(envId: string, numEnvs: number, perEnvMicros: number, cores: number): WorkerChoice {
  const inProcess = perEnvMicros * numEnvs;
  const candidate = Math.min(cores, numEnvs);
  const stepText = `a vector step of ${numEnvs} '${envId}' envs takes ${formatMicros(inProcess)} in-process`;
  const stay = (why: string): WorkerChoice => ({ workers: 0, reason: `${stepText}; ${why}: in-process`, inProcessStepMicros: inProcess, predictedStepMicros: inProcess, cores });
  if (candidate < 2) return stay(cores < 2 ? 'one CPU core, so worker threads cannot step envs in parallel' : 'one env, so worker threads cannot step envs in parallel');
  const predicted = inProcess / candidate + WORKER_STEP_OVERHEAD_MICROS;
  const speedup = inProcess / predicted;
  if (speedup < AUTO_MIN_SPEEDUP) {
    return stay(`over ${candidate} worker threads it would take ~${formatMicros(predicted)} (~${formatMicros(WORKER_STEP_OVERHEAD_MICROS)} of hand-off between threads), a speed-up of only ×${speedup.toFixed(2)}`);
  }
  return {
    workers: candidate,
    reason: `${stepText}, ~${formatMicros(predicted)} over ${candidate} worker threads (one per core, ~${formatMicros(WORKER_STEP_OVERHEAD_MICROS)} of hand-off): ×${speedup.toFixed(2)}, so ${candidate} workers`,
    inProcessStepMicros: inProcess,
    predictedStepMicros: predicted,
    cores,
  };
}

function formatMicros(micros: number): string {
  return micros >= 1000 ? `${(micros / 1000).toFixed(1)} ms` : `${Math.round(micros)} µs`;
}

/**
 * Checks a worker setting from a config or flag (`what` names it, e.g. `run.workers`): a
 * non-negative integer or `auto`.
 */
export function parseWorkerSetting(value: unknown, what: string): WorkerSetting {
  if (value === 'auto') return 'auto';
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string' && /^\d+$/.test(value.trim()) && Number.isSafeInteger(Number(value))) return Number(value);
  throw new Error(`${what}: expected a non-negative integer (worker threads, 0 = in-process) or 'auto', got ${JSON.stringify(value)}`);
}
