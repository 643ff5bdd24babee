/*
 * Env throughput (`troupe bench envs`): one env through the dict API, and vectors in-process and
 * over worker threads, with a random policy.
 */
import type { ShardTransportFactory } from './shard-protocol';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { makeEnv, prepareEnv } from '../../envs/registry';
import { RandomPolicy } from '../../agents/policies/random-policy';
import { Rng } from '../core/rng';
import { VectorEnv } from './vector-env';
import { type WorkerChoice, chooseWorkers } from './worker-count';

/** One scenario per gridworld task, plus the reference scenario first, and a physics task (Box actions). */
export const DEFAULT_BENCH_IDS = ['lbf-8x8-2p-2f-coop', 'lbf-15x15-4p-5f', 'pursuit-10x10-4p-2prey', 'combat-3v3', 'combat-5v6', 'spread-3', 'spread-8', 'reach', 'pick-place', 'door-open', 'MT10', 'bar-lift'];

export interface Throughput {
  envStepsPerSec: number;
  agentStepsPerSec: number;
}

export interface EnvBenchResult {
  id: string;
  /** One env stepped through the dict API in this thread (random actions from its masks). */
  single: Throughput;
  /** A VectorEnv of `numEnvs` copies in this thread (lock-step: one group). */
  vectorInProcess: Throughput;
  /** Sharded over 1 and 2 worker threads, double-buffered (2 env groups). */
  vectorWorkers1: Throughput;
  vectorWorkers2: Throughput;
  /** 2 workers in lock-step (1 group): what double buffering is measured against. */
  vectorWorkers2LockStep: Throughput;
  /** vectorWorkers2 / vectorInProcess, as the median of per-repeat ratios measured back to back. */
  speedup2Workers: number;
  /** What `workers: auto` chose for this vector, and the vector run that way (2 groups when over workers). */
  auto: WorkerChoice;
  vectorAuto: Throughput;
  /** vectorAuto / vectorInProcess, median of per-repeat ratios. */
  speedupAuto: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function medianThroughput(samples: Throughput[]): Throughput {
  return { envStepsPerSec: median(samples.map((s) => s.envStepsPerSec)), agentStepsPerSec: median(samples.map((s) => s.agentStepsPerSec)) };
}

/**
 * Steps one env with uniformly random legal actions for about `seconds` (discrete actions from
 * the mask, Box actions via `space.sample`). Await `prepareEnv(id)` first for envs that need it.
 */
export function benchSingleEnv(id: string, seconds: number): Throughput {
  const env = makeEnv<Float32Array, unknown>(id);
  const rng = new Rng('bench');
  env.reset({ seed: 0 });
  let envSteps = 0;
  let agentSteps = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (true) {
    // Check the clock every 256 steps so timing does not dominate tiny steps.
    for (let k = 0; k < 256; k++) {
      const actions: Record<string, unknown> = {};
      for (const agent of env.agents) actions[agent] = env.actionSpace(agent).sample(rng, env.actionMask?.(agent));
      agentSteps += env.agents.length;
      env.step(actions);
      envSteps++;
      if (env.agents.length === 0) env.reset();
    }
    if (performance.now() >= deadline) break;
  }
  const elapsed = (performance.now() - start) / 1000;
  env.close?.();
  return { envStepsPerSec: envSteps / elapsed, agentStepsPerSec: agentSteps / elapsed };
}

/**
 * Steps a VectorEnv with a random policy acting in this thread for about `seconds`. With
 * G ≥ 2 groups the loop is pipelined: while one group simulates, the policy acts on another.
 * With `transport`, the envs step there (e.g. on rollout hosts) instead of on `workers` threads.
 */
export async function benchVectorEnv(id: string, numEnvs: number, workers: number, groups: number, seconds: number, transport?: ShardTransportFactory): Promise<Throughput> {
  // A transport (remote hosts) replaces the worker threads.
  const vec = await VectorEnv.create({ env: { id }, numEnvs, groups, seed: 0, ...(transport ? { transport } : { workers }) });
  const policy = new RandomPolicy(vec.layout, 'bench');
  const b = vec.buffers;
  const A = vec.layout.numAgents;
  let envSteps = 0;
  let agentSteps = 0;
  const actAndSend = (g: number) => {
    const [start, end] = vec.groupRanges[g];
    policy.writeActions(b.masks, b.alive, b.actions, start, end);
    for (let i = start * A; i < end * A; i++) agentSteps += b.alive[i];
    envSteps += end - start;
    vec.sendStep(g);
  };
  try {
    await vec.reset();
    for (let g = 0; g < groups; g++) actAndSend(g);
    const round = async () => {
      for (let g = 0; g < groups; g++) {
        await vec.awaitStep(g);
        actAndSend(g);
      }
    };
    // Warm-up: each worker thread compiles the env's code afresh (JIT, and WebAssembly tiers for
    // physics), which takes up to a second or two of stepping; a run lasts far longer.
    const warmUntil = performance.now() + Math.min(2000, Math.max(300, seconds * 1000));
    do await round();
    while (performance.now() < warmUntil);
    envSteps = 0;
    agentSteps = 0;
    const start = performance.now();
    const deadline = start + seconds * 1000;
    while (performance.now() < deadline) for (let k = 0; k < 16; k++) await round();
    const elapsed = (performance.now() - start) / 1000;
    for (let g = 0; g < groups; g++) await vec.awaitStep(g);
    return { envStepsPerSec: envSteps / elapsed, agentStepsPerSec: agentSteps / elapsed };
  } finally {
    await vec.close();
  }
}

/** Measures every id (medians of `repeats` × `seconds`), handing each result to `onResult` as it is ready. */
export async function benchEnvs(ids: string[], numEnvs: number, seconds: number, repeats: number, onResult: (result: EnvBenchResult) => void = () => undefined): Promise<EnvBenchResult[]> {
  registerBuiltinEnvs();
  const results: EnvBenchResult[] = [];
  for (const id of ids) {
    await prepareEnv(id);
    const single: Throughput[] = [];
    const inProcess: Throughput[] = [];
    const w1: Throughput[] = [];
    const w2: Throughput[] = [];
    const w2LockStep: Throughput[] = [];
    const auto: Throughput[] = [];
    const choice = await chooseWorkers({ id }, numEnvs);
    // Interleave the modes so slow phases of a shared machine hit all of them alike.
    for (let r = 0; r < repeats; r++) {
      single.push(benchSingleEnv(id, seconds));
      inProcess.push(await benchVectorEnv(id, numEnvs, 0, 1, seconds));
      w1.push(await benchVectorEnv(id, numEnvs, 1, 2, seconds));
      w2.push(await benchVectorEnv(id, numEnvs, 2, 2, seconds));
      w2LockStep.push(await benchVectorEnv(id, numEnvs, 2, 1, seconds));
      auto.push(choice.workers === 0 ? await benchVectorEnv(id, numEnvs, 0, 1, seconds) : await benchVectorEnv(id, numEnvs, choice.workers, 2, seconds));
    }
    const result: EnvBenchResult = {
      id,
      single: medianThroughput(single),
      vectorInProcess: medianThroughput(inProcess),
      vectorWorkers1: medianThroughput(w1),
      vectorWorkers2: medianThroughput(w2),
      vectorWorkers2LockStep: medianThroughput(w2LockStep),
      speedup2Workers: median(w2.map((w, i) => w.envStepsPerSec / inProcess[i].envStepsPerSec)),
      auto: choice,
      vectorAuto: medianThroughput(auto),
      speedupAuto: median(auto.map((a, i) => a.envStepsPerSec / inProcess[i].envStepsPerSec)),
    };
    results.push(result);
    onResult(result);
  }
  return results;
}
