import { envShape } from '../envs/env-shape';
import { instantiateEnv, prepareEnvSpec } from '../envs/env-from-spec';
import type { EnvSpec } from '../envs/env-spec';
import type { CheckpointData, JsonObject } from '../runtime/core/checkpoint';
import { locateCheckpoint } from '../runtime/core/checkpoint-locator';
import { type BuildPolicyOptions, buildPolicy } from './policies/build-policy';
import { legacyPolicySpec } from './policies/legacy-policy-specs';
import type { DisposablePolicy } from './policies/policy';
import { type PolicySpec, parsePolicySpec } from './policies/policy-spec';

export interface LoadPolicyOptions extends BuildPolicyOptions {
  /** Which task's policy, for a multi-task run (default: the run's only task). */
  task?: string;
}

/** A policy loaded from a checkpoint, with where it came from. */
export interface LoadedPolicy extends DisposablePolicy {
  readonly spec: PolicySpec;
  readonly task: string;
  /** The checkpoint file and the run directory it belongs to. */
  readonly checkpoint: string;
  readonly runDir: string;
  /** The run's saved config and how many env steps it had trained for. */
  readonly config: JsonObject;
  readonly trainedEnvSteps: number;
}

/**
 * Loads the policy of a training run for acting only: from a run directory (its newest
 * checkpoint), its `checkpoints/` folder or a `.ckpt` file, it builds the network from the
 * checkpoint's policy spec and weights — no learner, optimiser or replay — for any `numEnvs`
 * (acting memory is sized here, not by the run's `num_envs`). Checkpoints of format 1 and 2,
 * which predate stored specs, get theirs derived from their saved config.
 */
export async function loadPolicy(target: string, options: LoadPolicyOptions): Promise<LoadedPolicy> {
  const located = await locateCheckpoint(target);
  const specs = await policySpecsOf(located.data, located.path);
  const tasks = Object.keys(specs);
  const task = options.task ?? (tasks.length === 1 ? tasks[0] : undefined);
  if (task === undefined) throw new Error(`${located.path} holds the policies of ${tasks.length} tasks (${tasks.join(', ')}); name one (--task)`);
  const spec = specs[task];
  if (!spec) throw new Error(`${located.path} has no policy for task '${task}' (tasks: ${tasks.join(', ')})`);
  const weights = located.data.models[spec.model];
  if (!weights) throw new Error(`${located.path}: its policy spec names model '${spec.model}', which the checkpoint does not hold`);
  let policy: DisposablePolicy;
  try {
    policy = buildPolicy(spec, weights, options);
  } catch (error) {
    throw new Error(`${located.path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { ...policy, spec, task, checkpoint: located.path, runDir: located.runDir, config: located.data.config, trainedEnvSteps: located.data.counters.envSteps };
}

/** The policy specs a checkpoint holds by task (derived from the saved config for checkpoints that predate them). */
export async function policySpecsOf(data: CheckpointData, file: string): Promise<Record<string, PolicySpec>> {
  const stored = data.metadata.policies;
  if (stored !== undefined) {
    if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) throw new Error(`${file}: field 'metadata.policies' must be a map of task → policy spec`);
    return Object.fromEntries(Object.entries(stored).map(([task, spec]) => [task, parsePolicySpec(spec, `${file} (metadata.policies.${task})`)]));
  }
  const env = data.config.env;
  if (typeof env !== 'object' || env === null || Array.isArray(env) || typeof env.id !== 'string') {
    throw new Error(`${file}: checkpoint has no policy specs and no saved 'env' to derive one from`);
  }
  const spec = env as unknown as EnvSpec;
  await prepareEnvSpec(spec);
  const probe = instantiateEnv(spec);
  try {
    return { [spec.id]: legacyPolicySpec(data.config, envShape(probe), file) };
  } finally {
    probe.close?.();
  }
}
