import type { Rng } from '../../runtime/core/rng';
import type { BoxDtype, Space, SpaceJSON } from './space';

/**
 * An n-dimensional box `[low, high]` of float32 (or int32) values, stored flat in row-major order.
 * Unbounded sides (±Infinity) sample from a normal / exponential like Gymnasium does.
 */
export class Box implements Space<Float32Array> {
  readonly low: Float32Array;
  readonly high: Float32Array;
  readonly flatDim: number;

  constructor(
    low: number | ArrayLike<number>,
    high: number | ArrayLike<number>,
    readonly shape: readonly number[],
    readonly dtype: BoxDtype = 'float32',
  ) {
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`Box: shape must be non-negative integers, got [${shape.join(', ')}]`);
    this.flatDim = shape.reduce((a, b) => a * b, 1);
    this.low = broadcast(low, this.flatDim, 'low');
    this.high = broadcast(high, this.flatDim, 'high');
    for (let i = 0; i < this.flatDim; i++) {
      if (!(this.low[i] <= this.high[i])) throw new Error(`Box: low[${i}]=${this.low[i]} exceeds high[${i}]=${this.high[i]}`);
    }
  }

  sample(rng: Rng): Float32Array {
    const out = new Float32Array(this.flatDim);
    for (let i = 0; i < out.length; i++) {
      const lo = this.low[i];
      const hi = this.high[i];
      let v: number;
      if (Number.isFinite(lo) && Number.isFinite(hi)) v = this.dtype === 'int32' ? lo + rng.int(hi - lo + 1) : rng.uniform(lo, hi);
      else if (Number.isFinite(lo)) v = lo - Math.log(1 - rng.next());
      else if (Number.isFinite(hi)) v = hi + Math.log(1 - rng.next());
      else v = rng.normal();
      out[i] = this.dtype === 'int32' ? Math.round(v) : v;
    }
    return out;
  }

  contains(x: unknown): x is Float32Array {
    if (!(x instanceof Float32Array) || x.length !== this.flatDim) return false;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (Number.isNaN(v) || v < this.low[i] || v > this.high[i]) return false;
      if (this.dtype === 'int32' && !Number.isInteger(v)) return false;
    }
    return true;
  }

  flattenInto(x: Float32Array, out: Float32Array | Float64Array, offset: number): void {
    out.set(x, offset);
  }

  unflatten(flat: ArrayLike<number>, offset: number): Float32Array {
    const out = new Float32Array(this.flatDim);
    for (let i = 0; i < out.length; i++) out[i] = flat[offset + i];
    return out;
  }

  /** Clips a value into the box (used for continuous actions). */
  clip(x: Float32Array): Float32Array {
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = Math.min(this.high[i], Math.max(this.low[i], x[i]));
    return out;
  }

  describe(): string {
    const lo = uniformOrRange(this.low);
    const hi = uniformOrRange(this.high);
    return `Box(${lo}, ${hi}, [${this.shape.join(', ')}], ${this.dtype})`;
  }

  toJSON(): SpaceJSON {
    return { type: 'Box', shape: [...this.shape], low: Array.from(this.low), high: Array.from(this.high), dtype: this.dtype };
  }
}

function broadcast(v: number | ArrayLike<number>, n: number, name: string): Float32Array {
  if (typeof v === 'number') return new Float32Array(n).fill(v);
  if (v.length !== n) throw new Error(`Box: ${name} has ${v.length} entries, shape needs ${n}`);
  return Float32Array.from(v);
}

function uniformOrRange(a: Float32Array): string {
  if (a.length === 0) return '[]';
  const first = a[0];
  if (a.every((v) => v === first)) return String(first);
  return `[${Math.min(...a)}..${Math.max(...a)}]`;
}
