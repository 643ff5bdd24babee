import type { Rng } from '../../runtime/core/rng';
import type { Space, SpaceJSON } from './space';

/** Integers `start, …, start + n - 1`; the usual space for a single discrete action. */
export class Discrete implements Space<number> {
  readonly flatDim = 1;

  constructor(readonly n: number, readonly start = 0) {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Discrete: n must be a positive integer, got ${n}`);
    if (!Number.isInteger(start)) throw new Error(`Discrete: start must be an integer, got ${start}`);
  }

  /** With a mask (1 = allowed), samples uniformly among the allowed values. */
  sample(rng: Rng, mask?: Uint8Array): number {
    if (!mask) return this.start + rng.int(this.n);
    let allowed = 0;
    for (let i = 0; i < this.n; i++) allowed += mask[i] ? 1 : 0;
    if (allowed === 0) throw new Error(`Discrete(${this.n}).sample: the action mask allows no action`);
    let pick = rng.int(allowed);
    for (let i = 0; i < this.n; i++) {
      if (mask[i] && pick-- === 0) return this.start + i;
    }
    /* istanbul ignore next: unreachable */
    throw new Error('unreachable');
  }

  contains(x: unknown): x is number {
    return typeof x === 'number' && Number.isInteger(x) && x >= this.start && x < this.start + this.n;
  }

  flattenInto(x: number, out: Float32Array | Float64Array, offset: number): void {
    out[offset] = x;
  }

  unflatten(flat: ArrayLike<number>, offset: number): number {
    return flat[offset];
  }

  describe(): string {
    return this.start === 0 ? `Discrete(${this.n})` : `Discrete(${this.n}, start=${this.start})`;
  }

  toJSON(): SpaceJSON {
    return { type: 'Discrete', n: this.n, start: this.start };
  }
}
