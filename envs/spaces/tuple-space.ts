import type { Rng } from '../../runtime/core/rng';
import type { Space, SpaceJSON } from './space';

/** An ordered product of spaces; values are arrays with one entry per sub-space. */
export class TupleSpace implements Space<unknown[]> {
  readonly flatDim: number;

  constructor(readonly spaces: ReadonlyArray<Space<unknown>>) {
    this.flatDim = spaces.reduce((sum, s) => sum + s.flatDim, 0);
  }

  sample(rng: Rng): unknown[] {
    return this.spaces.map((s) => s.sample(rng));
  }

  contains(x: unknown): x is unknown[] {
    return Array.isArray(x) && x.length === this.spaces.length && this.spaces.every((s, i) => s.contains(x[i]));
  }

  flattenInto(x: unknown[], out: Float32Array | Float64Array, offset: number): void {
    let at = offset;
    this.spaces.forEach((s, i) => {
      s.flattenInto(x[i], out, at);
      at += s.flatDim;
    });
  }

  unflatten(flat: ArrayLike<number>, offset: number): unknown[] {
    let at = offset;
    return this.spaces.map((s) => {
      const v = s.unflatten(flat, at);
      at += s.flatDim;
      return v;
    });
  }

  describe(): string {
    return `Tuple(${this.spaces.map((s) => s.describe()).join(', ')})`;
  }

  toJSON(): SpaceJSON {
    return { type: 'Tuple', spaces: this.spaces.map((s) => s.toJSON()) };
  }
}
