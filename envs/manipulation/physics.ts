import * as RAPIER from '@dimforge/rapier3d-deterministic-compat';

/**
 * The rigid-body engine behind the manipulation family: Rapier's deterministic build, whose
 * results are bit-identical across runs and machines (cross-platform determinism is the reason
 * for this package over the SIMD build). Its WebAssembly must be instantiated once per thread
 * (`initPhysics`, ~100 ms) before any world is made; env factories then run synchronously.
 */
export type Rapier = typeof RAPIER;

let ready = false;
let initialising: Promise<void> | undefined;

/** Instantiates the engine in this thread; cheap and safe to call again. The registry's `prepare` hook. */
export function initPhysics(): Promise<void> {
  if (ready) return Promise.resolve();
  initialising ??= RAPIER.init().then(() => {
    ready = true;
  });
  return initialising;
}

/** Whether `initPhysics()` has finished in this thread. */
export function physicsReady(): boolean {
  return ready;
}

/** The engine, or a clear error naming `who` when this thread has not initialised it yet. */
export function requirePhysics(who: string): Rapier {
  if (!ready) {
    throw new Error(`${who}: the physics engine is not initialised in this thread; await prepareEnv('${who}') (or initPhysics()) first`);
  }
  return RAPIER;
}
