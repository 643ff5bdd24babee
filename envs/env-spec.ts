/**
 * Everything a thread needs to build an env by itself: worker threads cannot share the main
 * thread's objects, so envs cross threads as specs and are re-created on the other side.
 */
export interface EnvSpec {
  /** Registry id (a built-in, or one that `module` registers). */
  id: string;
  options?: Record<string, unknown>;
  /**
   * Path of a user module (.js/.cjs/.mjs, or .ts when typescript is installed). It may export a
   * factory or class (`default` or `createEnv`, see `loadEnvModule`), used whatever `id` says,
   * or register `id` itself when imported.
   */
  module?: string;
}
