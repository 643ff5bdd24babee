import type { Rng } from '../../runtime/core/rng';

/** JSON description of a space, used by `troupe envs --json` and in checkpoints. */
export type SpaceJSON =
  | { type: 'Discrete'; n: number; start: number }
  | { type: 'MultiDiscrete'; nvec: number[] }
  | { type: 'Box'; shape: number[]; low: number[]; high: number[]; dtype: BoxDtype }
  | { type: 'Dict'; spaces: Record<string, SpaceJSON> }
  | { type: 'Tuple'; spaces: SpaceJSON[] };

export type BoxDtype = 'float32' | 'int32';

/**
 * A set of valid values, as in Gymnasium: every observation and action lives in one.
 * `T` is the value type the space produces and accepts.
 */
export interface Space<T> {
  /** Number of scalars in the flattened value (see `flatten`). */
  readonly flatDim: number;
  /** Draws a uniform sample using the given stream (never Math.random). */
  sample(rng: Rng, mask?: Uint8Array): T;
  /** True when `x` is a valid member: right type, right shape, within bounds. */
  contains(x: unknown): x is T;
  /** Writes `x` as `flatDim` numbers into `out` starting at `offset`. */
  flattenInto(x: T, out: Float32Array | Float64Array, offset: number): void;
  /** Reads a value back from `flatDim` numbers at `offset`. */
  unflatten(flat: ArrayLike<number>, offset: number): T;
  /** Short human-readable form, e.g. `Box(0, 8, [12], float32)`. */
  describe(): string;
  toJSON(): SpaceJSON;
}

/** Describes any value briefly for error messages (never dumps a whole large array). */
export function describeValue(x: unknown): string {
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) {
    const arr = Array.from(x as unknown as ArrayLike<number>);
    const head = arr.slice(0, 8).join(', ');
    return `${x.constructor.name}(${arr.length}) [${head}${arr.length > 8 ? ', …' : ''}]`;
  }
  if (Array.isArray(x)) return `[${x.slice(0, 8).map(describeValue).join(', ')}${x.length > 8 ? ', …' : ''}]`;
  if (typeof x === 'object' && x !== null) return JSON.stringify(x).slice(0, 120);
  return String(x);
}
