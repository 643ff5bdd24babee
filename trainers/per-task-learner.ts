import type { Experience } from '../agents/experience';
import type { Policy } from '../agents/policies/policy';
import type { PolicySpec } from '../agents/policies/policy-spec';
import type { JsonObject } from '../runtime/core/checkpoint-format';
import { deriveSeed } from '../runtime/core/rng';
import type { Collection, EvaluationOptions, LearnerState, OnlineLearner, TaskSpec, TrainStats } from './learner';

/** Where a task's part of a checkpoint lives: `tasks/<key>/<name>` (the key escaped, so `a` never captures `a/b`'s entries). */
export function taskPrefix(key: string): string {
  return `tasks/${encodeURIComponent(key)}/`;
}

/**
 * Several tasks, one learner each, behind one learner interface: how an algorithm that knows
 * one task (MAPPO, QMIX, SAC, …) trains a multi-task run. Items are routed by their task key;
 * each task's learner is seeded from (seed, task key) and sees its own task's env steps (for
 * schedules such as ε or `learning_starts`), as it would in a run of that task alone.
 * Checkpoint entries are prefixed with `tasks/<key>/`.
 */
export class PerTaskLearner implements OnlineLearner {
  readonly kind = 'online';
  private readonly learners = new Map<string, OnlineLearner>();
  /** Env steps each task's items brought so far (what its learner's schedules count). */
  private taskEnvSteps: Record<string, number> = {};

  constructor(
    readonly tasks: readonly TaskSpec[],
    make: (task: TaskSpec, seed: string) => OnlineLearner,
    seed: number | string,
  ) {
    try {
      for (const task of tasks) {
        this.learners.set(task.key, make(task, deriveSeed(seed, 'task', task.key)));
        this.taskEnvSteps[task.key] = 0;
      }
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

  observe(item: Experience, _runEnvSteps: number): TrainStats | undefined {
    const learner = this.of(item.task);
    const steps = (this.taskEnvSteps[item.task] += (item.kind === 'chunk' ? item.length : 1) * item.layout.numEnvs);
    return learner.observe(item, steps);
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
      const spec = learner.policySpecs()[key];
      if (!spec) throw new Error(`the learner of task '${key}' describes no policy for it`);
      specs[key] = { ...spec, model: taskPrefix(key) + spec.model };
    }
    return specs;
  }

  async captureState(): Promise<LearnerState> {
    const out: LearnerState = { models: {}, optimizers: {}, rngs: {}, arrays: {}, json: {} };
    const tasks: JsonObject = {};
    for (const [key, learner] of this.learners) {
      const state = await learner.captureState();
      const prefix = taskPrefix(key);
      for (const part of ['models', 'optimizers', 'rngs', 'arrays'] as const) {
        for (const [name, value] of Object.entries(state[part])) (out[part] as Record<string, unknown>)[prefix + name] = value;
      }
      tasks[key] = state.json;
    }
    out.json = { tasks, taskEnvSteps: { ...this.taskEnvSteps } };
    return out;
  }

  async restoreState(state: LearnerState): Promise<void> {
    const tasks = state.json.tasks;
    if (typeof tasks !== 'object' || tasks === null || Array.isArray(tasks)) throw new Error("no per-task state (json 'tasks')");
    const steps = state.json.taskEnvSteps;
    if (typeof steps !== 'object' || steps === null || Array.isArray(steps)) throw new Error("no per-task env steps (json 'taskEnvSteps')");
    const taskEnvSteps: Record<string, number> = {};
    for (const key of this.learners.keys()) {
      const n = steps[key];
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Error(`json 'taskEnvSteps.${key}' must be a non-negative integer`);
      taskEnvSteps[key] = n;
    }
    for (const [key, learner] of this.learners) {
      const json = tasks[key];
      if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`no state for task '${key}'`);
      const prefix = taskPrefix(key);
      const pick = <T>(part: Record<string, T>): Record<string, T> =>
        Object.fromEntries(Object.entries(part).filter(([name]) => name.startsWith(prefix)).map(([name, value]) => [name.slice(prefix.length), value]));
      try {
        await learner.restoreState({ models: pick(state.models), optimizers: pick(state.optimizers), rngs: pick(state.rngs), arrays: pick(state.arrays), json });
      } catch (error) {
        throw new Error(`task '${key}': ${(error as Error).message}`);
      }
    }
    this.taskEnvSteps = taskEnvSteps;
  }

  dispose(): void {
    for (const learner of this.learners.values()) learner.dispose();
  }
}
