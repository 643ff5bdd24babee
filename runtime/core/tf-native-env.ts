/*
 * Threading and oneDNN settings of tfjs-node's libtensorflow. TensorFlow reads them from the
 * environment once, when the library loads, so the CLI applies them at startup, before anything
 * requires @tensorflow/tfjs-node; a value the user set is left alone.
 *
 * The defaults are measured (README, "Backends"; BENCHMARKS.md, issue 17): troupe's learners are
 * small networks whose speed on tfjs-node is set by per-op overhead, not arithmetic, and extra
 * threads compete with the env stepping and the rollout workers; one intra-op and one inter-op
 * thread was the fastest setting on the 2-core machine. oneDNN's kernels, on one thread, were as
 * fast or faster on every learner case after the kernel-count reductions, and twice as fast on
 * the decision transformer (alternated runs: DT 223–260 against 508–547 ms per step).
 */

/** What the CLI sets when the environment does not. */
export const NATIVE_TF_DEFAULTS: Readonly<Record<string, string>> = {
  TF_ENABLE_ONEDNN_OPTS: '1',
  TF_NUM_INTRAOP_THREADS: '1',
  TF_NUM_INTEROP_THREADS: '1',
  OMP_NUM_THREADS: '1',
};

/**
 * Names troupe itself set, passed down to child processes (studies, queue workers) so that they
 * record the values as troupe's defaults rather than as the user's.
 */
export const SET_BY_TROUPE_VAR = 'TROUPE_TF_ENV_DEFAULTS';

/** The settings in effect, for run records: each variable's value (null when unset) and who set it. */
export interface NativeTfSettings {
  values: Record<string, string | null>;
  /** Variables troupe's defaults set (the rest were the user's, or unset). */
  setByTroupe: string[];
}

function setByTroupe(env: NodeJS.ProcessEnv): string[] {
  return (env[SET_BY_TROUPE_VAR] ?? '').split(',').filter((name) => name in NATIVE_TF_DEFAULTS);
}

/** Sets every default the environment lacks (an empty value counts as set: the user's choice). */
export function applyNativeTfDefaults(env: NodeJS.ProcessEnv = process.env): NativeTfSettings {
  const ours = new Set(setByTroupe(env));
  for (const [name, value] of Object.entries(NATIVE_TF_DEFAULTS)) {
    if (env[name] !== undefined) continue;
    env[name] = value;
    ours.add(name);
  }
  if (ours.size > 0) env[SET_BY_TROUPE_VAR] = [...ours].join(',');
  return nativeTfSettings(env);
}

export function nativeTfSettings(env: NodeJS.ProcessEnv = process.env): NativeTfSettings {
  const values = Object.fromEntries(Object.keys(NATIVE_TF_DEFAULTS).map((name) => [name, env[name] ?? null]));
  return { values, setByTroupe: setByTroupe(env) };
}
