/*
 * A process started by a study or a queue worker stops when its starter is gone (even SIGKILLed),
 * so no orphan keeps writing a run directory another worker may be given.
 */

/** The environment variable a starter sets to its own pid. */
export const PARENT_PID_ENV = 'TROUPE_PARENT_PID';

/**
 * Watches the starter named by TROUPE_PARENT_PID (if set) and calls `onGone` once it is gone.
 * The variable is removed, so this process's own children do not inherit the watch.
 */
export function watchParentProcess(onGone: (parentPid: number) => void, intervalMs = 500): void {
  const parentPid = Number(process.env[PARENT_PID_ENV]);
  delete process.env[PARENT_PID_ENV];
  if (!Number.isInteger(parentPid) || parentPid <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid === parentPid) return;
    clearInterval(timer);
    onGone(parentPid);
  }, intervalMs);
  timer.unref();
}
