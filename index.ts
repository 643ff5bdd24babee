export * from './envs/spaces';
export * from './envs/parallel-env';
export * from './envs/registry';
export * from './envs/validate-actions';
export { Rng, deriveSeed } from './runtime/rng';
