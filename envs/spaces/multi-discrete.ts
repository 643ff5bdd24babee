import type { Rng } from '../../runtime/core/rng';
import type { Space, SpaceJSON } from './space';

/** A vector of independent discrete choices; component i lies in [0, nvec[i]). */
export class MultiDiscrete implements Space<Int32Array> {
  readonly nvec: Int32Array;
  readonly flatDim: number;

  constructor(nvec: ArrayLike<number>) {
    this.nvec = Int32Array.from(nvec);
    if (this.nvec.length === 0 || this.nvec.some((n) => n <= 0)) {
      throw new Error(`MultiDiscrete: nvec must be non-empty positive integers, got [${Array.from(nvec).join(', ')}]`);
    }
    this.flatDim = this.nvec.length;
  }

  sample(rng: Rng): Int32Array {
    const out = new Int32Array(this.nvec.length);
    for (let i = 0; i < out.length; i++) out[i] = rng.int(this.nvec[i]);
    return out;
  }

  contains(x: unknown): x is Int32Array {
    if (!(x instanceof Int32Array) || x.length !== this.nvec.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] < 0 || x[i] >= this.nvec[i]) return false;
    return true;
  }

  flattenInto(x: Int32Array, out: Float32Array | Float64Array, offset: number): void {
    for (let i = 0; i < x.length; i++) out[offset + i] = x[i];
  }

  unflatten(flat: ArrayLike<number>, offset: number): Int32Array {
    const out = new Int32Array(this.nvec.length);
    for (let i = 0; i < out.length; i++) out[i] = flat[offset + i];
    return out;
  }

  describe(): string {
    return `MultiDiscrete([${Array.from(this.nvec).join(', ')}])`;
  }

  toJSON(): SpaceJSON {
    return { type: 'MultiDiscrete', nvec: Array.from(this.nvec) };
  }
}
