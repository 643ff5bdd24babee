import type { JsonObject } from '../runtime/core/checkpoint-format';

/** Running mean/variance (parallel-variance merge), in float64 on the JS side. */
export class RunningMeanStd {
  mean = 0;
  var = 1;
  count = 1e-4;

  update(xs: ArrayLike<number>, n = xs.length): void {
    if (n === 0) return;
    let m = 0;
    for (let i = 0; i < n; i++) m += xs[i];
    m /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (xs[i] - m) ** 2;
    v /= n;
    const delta = m - this.mean;
    const tot = this.count + n;
    this.mean += (delta * n) / tot;
    this.var = (this.var * this.count + v * n + (delta * delta * this.count * n) / tot) / tot;
    this.count = tot;
  }

  get std(): number {
    return Math.sqrt(this.var + 1e-8);
  }

  toJSON(): JsonObject {
    return { mean: this.mean, var: this.var, count: this.count };
  }

  /** Loads `toJSON()` output; `where` names the field in errors. */
  load(json: unknown, where: string): void {
    const o = json as Record<string, unknown> | null;
    for (const key of ['mean', 'var', 'count'] as const) {
      const v = o?.[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}.${key} must be a finite number`);
    }
    this.mean = o!.mean as number;
    this.var = o!.var as number;
    this.count = o!.count as number;
  }
}
