import type { Policy } from '../../agents/policies/policy';
import type { VectorEnv } from './vector-env';

export interface EvaluationResult {
  episodes: number;
  meanReturn: number;
  stdReturn: number;
  meanLength: number;
  /** Win / success rate; null when the task defines none. */
  successRate: number | null;
}

export interface EvaluationContext {
  /** `PolicyContext.taskIndex` of every env (the task's index in its run); default 0. */
  taskIndex?: number;
  /** `PolicyContext.latent`: [E, dim] values per env; default none. */
  latent?: { values: Float32Array; dim: number };
}

/**
 * Runs `policy` on `vec` from a reset (epoch `resetEpoch`) until `episodes` complete episodes
 * have ended. Episodes are counted in (step, env index) order, so which episodes count, and so
 * the result, is the same for any number of workers. Episodes cut by a worker restart are not
 * outcomes and are skipped.
 */
export async function evaluatePolicy(vec: VectorEnv, policy: Policy, episodes: number, resetEpoch = 0, context: EvaluationContext = {}): Promise<EvaluationResult> {
  if (!Number.isInteger(episodes) || episodes < 1) throw new Error(`evaluatePolicy: episodes must be a positive integer, got ${episodes}`);
  const b = vec.buffers;
  const E = vec.numEnvs;
  const episodeStart = new Uint8Array(E).fill(1);
  const batch = vec.policyBatch(episodeStart, context.taskIndex ?? 0, context.latent);
  const returns: number[] = [];
  const lengths: number[] = [];
  const successes: number[] = [];
  await vec.reset(resetEpoch);
  while (returns.length < episodes) {
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
    episodes,
    meanReturn,
    stdReturn: Math.sqrt(mean(returns.map((r) => (r - meanReturn) ** 2))),
    meanLength: mean(lengths),
    successRate: vec.layout.reportsSuccess && successes.length > 0 ? mean(successes) : null,
  };
}
