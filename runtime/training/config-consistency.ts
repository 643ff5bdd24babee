import { registerBuiltinEnvs } from '../../envs/builtin';
import { didYouMean } from '../../envs/close-match';
import { envOptionProblem, isRegistered } from '../../envs/registry';
import { trainerFor } from '../../trainers/index';

/*
 * Checks of a parsed run config whose keys are each valid alone but together ask for something
 * the run would not do: more worker threads than envs, a sampled evaluation of a greedy learner,
 * an algorithm's keys that rule out every update, an env option its env does not have. Each
 * would otherwise run and quietly do something else than the file says.
 */

/** One problem, at its key path. */
export interface ConsistencyIssue {
  path: Array<string | number>;
  message: string;
}

/** The parts of a parsed run config these checks read. */
interface EnvPart {
  id: string;
  options?: Record<string, unknown>;
  module?: string;
}
interface ParsedParts {
  env?: EnvPart;
  tasks?: Array<EnvPart & { num_envs?: number; workers?: number | 'auto' }>;
  algo: { name: string } & Record<string, unknown>;
  run: { num_envs: number; workers: number | 'auto'; total_env_steps: number; eval_greedy: boolean };
}

export function consistencyIssues(config: ParsedParts): ConsistencyIssue[] {
  return [...workerIssues(config), ...evaluationIssues(config), ...algoIssues(config), ...envOptionIssues(config)];
}

/** Each worker thread steps a slice of at least one env, so workers beyond num_envs would idle (and were silently dropped). */
function workerIssues({ env, tasks, run }: ParsedParts): ConsistencyIssue[] {
  const tooMany = (workers: number, numEnvs: number, envsKey: string) =>
    `${workers} worker threads for ${numEnvs} env${numEnvs === 1 ? '' : 's'} (${envsKey}); each worker steps at least one env, so at most ${numEnvs} can be used: lower workers or raise num_envs`;
  // `auto` never picks more workers than envs.
  if (env) return run.workers !== 'auto' && run.workers > run.num_envs ? [{ path: ['run', 'workers'], message: tooMany(run.workers, run.num_envs, 'run.num_envs') }] : [];
  const issues: ConsistencyIssue[] = [];
  (tasks ?? []).forEach((t, i) => {
    const workers = t.workers ?? run.workers;
    const numEnvs = t.num_envs ?? run.num_envs;
    if (workers === 'auto' || workers <= numEnvs) return;
    const path = t.workers !== undefined ? ['tasks', i, 'workers'] : ['run', 'workers'];
    const envsKey = t.num_envs !== undefined ? `tasks.${i}.num_envs` : `run.num_envs, used by tasks.${i}`;
    issues.push({ path, message: tooMany(workers, numEnvs, envsKey) });
  });
  return issues;
}

function evaluationIssues({ algo, run }: ParsedParts): ConsistencyIssue[] {
  if (run.eval_greedy || !trainerFor(algo.name).valueBased) return [];
  return [
    {
      path: ['run', 'eval_greedy'],
      message: `false asks evaluation to sample actions, but ${algo.name} is value-based and acts greedily (argmax of its Q-values); remove the key (algo.evaluation_epsilon gives ε-greedy evaluation)`,
    },
  ];
}

function algoIssues({ env, tasks, algo, run }: ParsedParts): ConsistencyIssue[] {
  const trainer = trainerFor(algo.name);
  if (!trainer.configIssues) return [];
  const numEnvs = env ? run.num_envs : (tasks ?? []).reduce((n, t) => n + (t.num_envs ?? run.num_envs), 0);
  return trainer.configIssues(algo, { totalEnvSteps: run.total_env_steps, numEnvs }).map((issue) => ({ path: ['algo', issue.key], message: issue.message }));
}

/** Options of built-in envs are checked against their registration; a user module's are its own business. */
function envOptionIssues({ env, tasks }: ParsedParts): ConsistencyIssue[] {
  registerBuiltinEnvs();
  const specs: Array<{ spec: EnvPart; at: Array<string | number> }> = env ? [{ spec: env, at: ['env'] }] : (tasks ?? []).map((t, i) => ({ spec: t, at: ['tasks', i] }));
  const issues: ConsistencyIssue[] = [];
  for (const { spec, at } of specs) {
    if (spec.module !== undefined || !spec.options || !isRegistered(spec.id)) continue;
    const problem = envOptionProblem(spec.id, spec.options);
    if (problem) {
      const message = `unknown option of env '${spec.id}' (known options: ${problem.known.join(', ')})${didYouMean(problem.option, problem.known)}`;
      issues.push({ path: [...at, 'options', problem.option], message });
    }
  }
  return issues;
}
