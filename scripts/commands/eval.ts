import { RandomPolicy } from '../../agents/random-policy';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { VectorEnv } from '../../runtime/vector-env';

export interface EvalSummary {
  env: string;
  policy: string;
  episodes: number;
  seed: string;
  meanReturn: number;
  stdReturn: number;
  meanLength: number;
  /** Win / success rate; null when the task defines none. */
  successRate: number | null;
}

function parsePositiveInt(value: string, flag: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`${flag} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got '${value}'`);
  return n;
}

/**
 * Runs `episodes` complete episodes. Episodes are counted in (step, env index) order, so the
 * selection, and hence the result, is the same for any number of workers.
 */
export async function evaluateRandomPolicy(envId: string, episodes: number, seed: string, numEnvs: number, workers: number): Promise<EvalSummary> {
  registerBuiltinEnvs();
  const vec = await VectorEnv.create({ env: { id: envId }, numEnvs, workers, seed });
  const policy = new RandomPolicy(vec.layout, `${seed}/policy`);
  const b = vec.buffers;
  const returns: number[] = [];
  const lengths: number[] = [];
  const successes: number[] = [];
  try {
    await vec.reset();
    while (returns.length < episodes) {
      policy.writeActions(b.masks, b.alive, b.actions);
      await vec.step();
      for (let e = 0; e < vec.numEnvs && returns.length < episodes; e++) {
        if (!b.episodeDone[e] || b.episodeAborted[e]) continue;
        returns.push(b.episodeReturn[e]);
        lengths.push(b.episodeLength[e]);
        if (!Number.isNaN(b.episodeSuccess[e])) successes.push(b.episodeSuccess[e]);
      }
    }
  } finally {
    await vec.close();
  }
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const meanReturn = mean(returns);
  const variance = mean(returns.map((r) => (r - meanReturn) ** 2));
  return {
    env: envId,
    policy: 'random',
    episodes,
    seed,
    meanReturn,
    stdReturn: Math.sqrt(variance),
    meanLength: mean(lengths),
    successRate: vec.layout.reportsSuccess ? mean(successes) : null,
  };
}

export async function runEvalCommand(envId: string, opts: { policy: string; episodes: string; seed: string; envs: string; workers: string; json?: boolean }): Promise<void> {
  const episodes = parsePositiveInt(opts.episodes, '--episodes');
  const numEnvs = parsePositiveInt(opts.envs, '--envs');
  const workers = parsePositiveInt(opts.workers, '--workers', true);
  const summary = await evaluateRandomPolicy(envId, episodes, opts.seed, numEnvs, workers);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return;
  }
  const lines = [
    `env ${summary.env}, policy ${summary.policy}, ${summary.episodes} episodes, seed ${summary.seed}`,
    `  team return     ${summary.meanReturn.toFixed(4)} ± ${summary.stdReturn.toFixed(4)} (mean ± std)`,
    `  episode length  ${summary.meanLength.toFixed(2)}`,
  ];
  if (summary.successRate !== null) lines.push(`  success rate    ${(summary.successRate * 100).toFixed(1)}%`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
