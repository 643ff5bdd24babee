import type { Rng } from '../../runtime/core/rng';
import type { Space, SpaceJSON } from './space';

type ValueOf<S> = S extends Space<infer T> ? T : never;
export type DictValue<S extends Record<string, Space<unknown>>> = { [K in keyof S]: ValueOf<S[K]> };

/** Named sub-spaces; flattening concatenates them in key order, as Gymnasium's Dict does. */
export class DictSpace<S extends Record<string, Space<unknown>>> implements Space<DictValue<S>> {
  readonly keys: Array<keyof S & string>;
  readonly flatDim: number;

  constructor(readonly spaces: S) {
    this.keys = (Object.keys(spaces) as Array<keyof S & string>).sort();
    this.flatDim = this.keys.reduce((sum, k) => sum + spaces[k].flatDim, 0);
  }

  sample(rng: Rng): DictValue<S> {
    const out = {} as DictValue<S>;
    for (const k of this.keys) out[k] = this.spaces[k].sample(rng) as DictValue<S>[typeof k];
    return out;
  }

  contains(x: unknown): x is DictValue<S> {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
    const record = x as Record<string, unknown>;
    if (Object.keys(record).length !== this.keys.length) return false;
    return this.keys.every((k) => k in record && this.spaces[k].contains(record[k]));
  }

  flattenInto(x: DictValue<S>, out: Float32Array | Float64Array, offset: number): void {
    let at = offset;
    for (const k of this.keys) {
      this.spaces[k].flattenInto(x[k], out, at);
      at += this.spaces[k].flatDim;
    }
  }

  unflatten(flat: ArrayLike<number>, offset: number): DictValue<S> {
    const out = {} as DictValue<S>;
    let at = offset;
    for (const k of this.keys) {
      out[k] = this.spaces[k].unflatten(flat, at) as DictValue<S>[typeof k];
      at += this.spaces[k].flatDim;
    }
    return out;
  }

  describe(): string {
    return `Dict(${this.keys.map((k) => `${k}: ${this.spaces[k].describe()}`).join(', ')})`;
  }

  toJSON(): SpaceJSON {
    const spaces: Record<string, SpaceJSON> = {};
    for (const k of this.keys) spaces[k] = this.spaces[k].toJSON();
    return { type: 'Dict', spaces };
  }
}
