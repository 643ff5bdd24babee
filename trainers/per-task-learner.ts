import type { Experience } from '../agents/experience';
import type { Policy } from '../agents/policies/policy';
import type { PolicySpec } from '../agents/policies/policy-spec';
import { type JsonObject, underPrefix, withPrefix } from '../runtime/core/checkpoint-format';
import { deriveSeed } from '../runtime/core/rng';
import type { Collection, EvaluationOptions, LearnerState, OnlineLearner, TaskSpec, TrainStats } from './learner';

/** Where a task's part of a checkpoint lives: `tasks/<key>/<name>` (the key escaped, so `a` never captures `a/b`'s entries). */
export function taskPrefix(key: string): string {
  return `tasks/${encodeURIComponent(key)}/`;
}

/**
 * Several tasks, one learner each, behind one learner interface: how an algorithm that knows
 * one task (MAPPO, QMIX, SAC, …) trains a multi-task run. Items are routed by their task key;
 * each task's learner is seeded from (seed, task key). Checkpoint entries are prefixed with
 * `tasks/<key>/`.
 */
export class PerTaskLearner implements OnlineLearner {
  readonly kind = 'online';
  private readonly learners = new Map<string, OnlineLearner>();

  constructor(
    readonly tasks: readonly TaskSpec[],
    make: (task: TaskSpec, seed: string) => OnlineLearner,
    seed: number | string,
  ) {
    try {
      for (const task of tasks) this.learners.set(task.key, make(task, deriveSeed(seed, 'task', task.key)));
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  private of(task: string): OnlineLearner {
    const learner = this.learners.get(task);
    if (!learner) throw new Error(`no task '${task}' in this run (tasks: ${[...this.learners.keys()].join(', ')})`);
    return learner;
  }

  collection(task: string): Collection {
    return this.of(task).collection(task);
  }

  collectionPolicy(task: string): Policy {
    return this.of(task).collectionPolicy(task);
  }

  policyVersion(task: string): number {
    return this.of(task).policyVersion(task);
  }

  observe(item: Experience, envSteps: number): TrainStats | undefined {
    return this.of(item.task).observe(item, envSteps);
  }

  episodesReset(task: string): void {
    this.of(task).episodesReset(task);
  }

  evaluationPolicy(task: string, numEnvs: number, seed: string, options?: EvaluationOptions): Policy {
    return this.of(task).evaluationPolicy(task, numEnvs, seed, options);
  }

  policySpecs(): Record<string, PolicySpec> {
    const specs: Record<string, PolicySpec> = {};
    for (const [key, learner] of this.learners) {
      // A learner that describes no policy (a test probe) leaves its task without one, as in a single-task run.
      const spec = learner.policySpecs()[key];
      if (spec) specs[key] = { ...spec, model: taskPrefix(key) + spec.model };
    }
    return specs;
  }

  async captureState(): Promise<LearnerState> {
    const out: LearnerState = { models: {}, optimizers: {}, rngs: {}, arrays: {}, json: {} };
    const tasks: JsonObject = {};
    for (const [key, learner] of this.learners) {
      const state = await learner.captureState();
      const prefix = taskPrefix(key);
      Object.assign(out.models, withPrefix(prefix, state.models));
      Object.assign(out.optimizers, withPrefix(prefix, state.optimizers));
      Object.assign(out.rngs, withPrefix(prefix, state.rngs));
      Object.assign(out.arrays, withPrefix(prefix, state.arrays));
      tasks[key] = state.json;
    }
    out.json = { tasks };
    return out;
  }

  async restoreState(state: LearnerState): Promise<void> {
    const tasks = state.json.tasks;
    if (typeof tasks !== 'object' || tasks === null || Array.isArray(tasks)) throw new Error("no per-task state (json 'tasks')");
    for (const [key, learner] of this.learners) {
      const json = tasks[key];
      if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`no state for task '${key}'`);
      const prefix = taskPrefix(key);
      try {
        const { models, optimizers, rngs, arrays } = state;
        await learner.restoreState({ models: underPrefix(prefix, models), optimizers: underPrefix(prefix, optimizers), rngs: underPrefix(prefix, rngs), arrays: underPrefix(prefix, arrays), json });
      } catch (error) {
        throw new Error(`task '${key}': ${(error as Error).message}`);
      }
    }
  }

  dispose(): void {
    for (const learner of this.learners.values()) learner.dispose();
  }
}
