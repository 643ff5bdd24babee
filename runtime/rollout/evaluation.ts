import type { Policy } from '../../agents/policies/policy';
import type { VectorEnv } from './vector-env';

export interface EvaluationResult {
  /** Episodes that ended and count (the requested number unless the step cap stopped the evaluation). */
  episodes: number;
  meanReturn: number;
  stdReturn: number;
  meanLength: number;
  /** Win / success rate; null when the task defines none. */
  successRate: number | null;
  /**
   * Present only when the step cap stopped the evaluation before the requested episodes ended:
   * the cap (vector steps) and how many episodes were asked for. The means then cover the episodes
   * that did end (NaN when none did).
   */
  stepCapHit?: { maxSteps: number; requestedEpisodes: number };
}

/** Vector steps an evaluation may take when the env declares no usable episode limit. */
export const FALLBACK_EVAL_STEP_CAP = 1_000_000;

/**
 * The default step cap of an evaluation of `episodes` episodes on `numEnvs` envs: with a declared
 * limit of M steps per episode every env ends an episode at least every M + 1 steps (one step of
 * slack for the common off-by-one), so ⌈episodes / numEnvs⌉ · (M + 1) vector steps finish them all;
 * twice that leaves room for envs that end episodes late or episodes a worker restart aborted.
 * An env that declares no positive integer limit gets `FALLBACK_EVAL_STEP_CAP`.
 */
export function defaultEvalStepCap(maxEpisodeSteps: number, episodes: number, numEnvs: number): number {
  if (!Number.isSafeInteger(maxEpisodeSteps) || maxEpisodeSteps < 1) return FALLBACK_EVAL_STEP_CAP;
  return Math.min(FALLBACK_EVAL_STEP_CAP, 2 * Math.ceil(episodes / numEnvs) * (maxEpisodeSteps + 1));
}

export interface EvaluationContext {
  /** `PolicyContext.taskIndex` of every env (the task's index in its run); default 0. */
  taskIndex?: number;
  /** `PolicyContext.latent`: [E, dim] values per env; default none. */
  latent?: { values: Float32Array; dim: number };
  /** Vector steps after which the evaluation stops with the episodes that ended; default `defaultEvalStepCap`. */
  maxSteps?: number;
}

/**
 * Runs `policy` on `vec` from a reset (epoch `resetEpoch`) until `episodes` complete episodes
 * have ended. Episodes are counted in (step, env index) order, so which episodes count, and so
 * the result, is the same for any number of workers. Episodes cut by a worker restart are not
 * outcomes and are skipped. After `context.maxSteps` vector steps it stops with the episodes
 * that ended and says so (`stepCapHit`), so an env that never ends cannot hang it.
 */
export async function evaluatePolicy(vec: VectorEnv, policy: Policy, episodes: number, resetEpoch = 0, context: EvaluationContext = {}): Promise<EvaluationResult> {
  if (!Number.isInteger(episodes) || episodes < 1) throw new Error(`evaluatePolicy: episodes must be a positive integer, got ${episodes}`);
  const b = vec.buffers;
  const E = vec.numEnvs;
  const maxSteps = context.maxSteps ?? defaultEvalStepCap(vec.layout.maxEpisodeSteps, episodes, E);
  if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new Error(`evaluatePolicy: maxSteps must be a positive integer, got ${context.maxSteps}`);
  const episodeStart = new Uint8Array(E).fill(1);
  const batch = vec.policyBatch(episodeStart, context.taskIndex ?? 0, context.latent);
  const returns: number[] = [];
  const lengths: number[] = [];
  const successes: number[] = [];
  await vec.reset(resetEpoch);
  let steps = 0;
  while (returns.length < episodes && steps < maxSteps) {
    steps++;
    b.actions.fill(0);
    await policy.act(batch, b.actions);
    await vec.step();
    episodeStart.set(b.episodeDone);
    for (let e = 0; e < E && returns.length < episodes; e++) {
      if (!b.episodeDone[e] || b.episodeAborted[e]) continue;
      returns.push(b.episodeReturn[e]);
      lengths.push(b.episodeLength[e]);
      if (!Number.isNaN(b.episodeSuccess[e])) successes.push(b.episodeSuccess[e]);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const meanReturn = mean(returns);
  return {
    episodes: returns.length,
    meanReturn,
    stdReturn: Math.sqrt(mean(returns.map((r) => (r - meanReturn) ** 2))),
    meanLength: mean(lengths),
    successRate: vec.layout.reportsSuccess && successes.length > 0 ? mean(successes) : null,
    ...(returns.length < episodes ? { stepCapHit: { maxSteps, requestedEpisodes: episodes } } : {}),
  };
}
