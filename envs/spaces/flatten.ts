import { Box } from './box';
import { DictSpace } from './dict-space';
import { Discrete } from './discrete';
import { MultiDiscrete } from './multi-discrete';
import type { Space, SpaceJSON } from './space';
import { TupleSpace } from './tuple-space';

/** Flattens a value of `space` into a new Float32Array of length `space.flatDim`. */
export function flatten<T>(space: Space<T>, x: T): Float32Array {
  const out = new Float32Array(space.flatDim);
  space.flattenInto(x, out, 0);
  return out;
}

/** Inverse of `flatten`. */
export function unflatten<T>(space: Space<T>, flat: ArrayLike<number>): T {
  if (flat.length !== space.flatDim) throw new Error(`unflatten: ${space.describe()} needs ${space.flatDim} numbers, got ${flat.length}`);
  return space.unflatten(flat, 0);
}

/** The Box a flattened value of `space` lives in (Gymnasium's `flatten_space`). */
export function flattenSpace(space: Space<unknown>): Box {
  if (space instanceof Box) return new Box(space.low, space.high, [space.flatDim], space.dtype);
  if (space instanceof Discrete) return new Box(space.start, space.start + space.n - 1, [1], 'int32');
  if (space instanceof MultiDiscrete) return new Box(0, Array.from(space.nvec, (n) => n - 1), [space.flatDim], 'int32');
  if (space instanceof DictSpace || space instanceof TupleSpace) {
    const parts = space instanceof DictSpace ? space.keys.map((k) => flattenSpace(space.spaces[k])) : space.spaces.map(flattenSpace);
    const low = parts.flatMap((p) => Array.from(p.low));
    const high = parts.flatMap((p) => Array.from(p.high));
    const allInt = parts.every((p) => p.dtype === 'int32');
    return new Box(low, high, [low.length], allInt ? 'int32' : 'float32');
  }
  throw new Error(`flattenSpace: unsupported space ${space.describe()}`);
}

/** Rebuilds a space from its JSON description (checkpoints, messages to workers). */
export function spaceFromJSON(json: SpaceJSON): Space<unknown> {
  switch (json.type) {
    case 'Discrete':
      return new Discrete(json.n, json.start);
    case 'MultiDiscrete':
      return new MultiDiscrete(json.nvec);
    case 'Box':
      return new Box(json.low, json.high, json.shape, json.dtype);
    case 'Dict': {
      const spaces: Record<string, Space<unknown>> = {};
      for (const [k, v] of Object.entries(json.spaces)) spaces[k] = spaceFromJSON(v);
      return new DictSpace(spaces);
    }
    case 'Tuple':
      return new TupleSpace(json.spaces.map(spaceFromJSON));
  }
}
