export { Box } from './box';
export { DictSpace } from './dict-space';
export { Discrete } from './discrete';
export { MultiDiscrete } from './multi-discrete';
export { TupleSpace } from './tuple-space';
export { flatten, flattenSpace, spaceFromJSON, unflatten } from './flatten';
export type { Space, SpaceJSON, BoxDtype } from './space';
export { describeValue } from './space';
