import { registerEnv } from '../registry';
import { createManipulationEnv, DEFAULT_HORIZON } from './manipulation-env';
import { TABLETOP_OPTION_KEYS } from './env-options';
import { initPhysics } from './physics';
import { sampleTaskParamsFor, type ManipulationTask, type TaskParamsBase } from './task';
import { pickPlaceTask } from './tasks/pick-place';
import { pushTask } from './tasks/push';
import { reachTask } from './tasks/reach';
import { doorOpenTask } from './tasks/door-open';
import { doorCloseTask } from './tasks/door-close';
import { drawerOpenTask } from './tasks/drawer-open';
import { drawerCloseTask } from './tasks/drawer-close';
import { pegInsertSideTask } from './tasks/peg-insert-side';
import { sweepIntoTask } from './tasks/sweep-into';
import { sweepTask } from './tasks/sweep';
import { basketballTask } from './tasks/basketball';
import { shelfPlaceTask } from './tasks/shelf-place';
import { windowOpenTask } from './tasks/window-open';
import { windowCloseTask } from './tasks/window-close';
import { buttonPressTopdownTask } from './tasks/button-press-topdown';
import { leverPullTask } from './tasks/lever-pull';

/**
 * Every single-arm manipulation task, in registration order. A new task file adds one entry here;
 * it is then registered under its `kind` (family `manipulation`) and known to `manipulationTask`.
 */
export const MANIPULATION_TASKS: ReadonlyArray<ManipulationTask<TaskParamsBase>> = [
  reachTask as unknown as ManipulationTask<TaskParamsBase>,
  pushTask as unknown as ManipulationTask<TaskParamsBase>,
  pickPlaceTask as unknown as ManipulationTask<TaskParamsBase>,
  doorOpenTask as unknown as ManipulationTask<TaskParamsBase>,
  doorCloseTask as unknown as ManipulationTask<TaskParamsBase>,
  drawerOpenTask as unknown as ManipulationTask<TaskParamsBase>,
  drawerCloseTask as unknown as ManipulationTask<TaskParamsBase>,
  pegInsertSideTask as unknown as ManipulationTask<TaskParamsBase>,
  sweepIntoTask as unknown as ManipulationTask<TaskParamsBase>,
  sweepTask as unknown as ManipulationTask<TaskParamsBase>,
  basketballTask as unknown as ManipulationTask<TaskParamsBase>,
  shelfPlaceTask as unknown as ManipulationTask<TaskParamsBase>,
  windowOpenTask as unknown as ManipulationTask<TaskParamsBase>,
  windowCloseTask as unknown as ManipulationTask<TaskParamsBase>,
  buttonPressTopdownTask as unknown as ManipulationTask<TaskParamsBase>,
  leverPullTask as unknown as ManipulationTask<TaskParamsBase>,
];

/** The task of a kind, e.g. `manipulationTask('push')`; unknown kinds throw with the list. */
export function manipulationTask(kind: string): ManipulationTask<TaskParamsBase> {
  const task = MANIPULATION_TASKS.find((t) => t.kind === kind);
  if (!task) throw new Error(`unknown manipulation task '${kind}' (known: ${MANIPULATION_TASKS.map((t) => t.kind).join(', ')})`);
  return task;
}

/**
 * `n` configurations of a task drawn from `seed` (the same list in every thread and run); Meta-World's
 * ML1 uses 50 from seed s to train and 50 from seed s + 1 to test. Pass them as `options.tasks`.
 */
export function sampleTaskParams(kind: string, n: number, seed: number | string): TaskParamsBase[] {
  return sampleTaskParamsFor(manipulationTask(kind), n, seed);
}

let registered = false;

/** Registers every task id (family `manipulation`, with `prepare: initPhysics`). Idempotent. */
export function registerManipulationEnvs(): void {
  if (registered) return;
  registered = true;
  for (const task of MANIPULATION_TASKS) {
    registerEnv(task.kind, (options) => createManipulationEnv(task, options), {
      family: 'manipulation',
      description: `${task.description}; Box(39) obs, Box(4) actions, ${DEFAULT_HORIZON} steps`,
      optionKeys: TABLETOP_OPTION_KEYS,
      prepare: initPhysics,
    });
  }
}
