import seedrandom from 'seedrandom';

/** Serialisable generator state, so checkpoints can restore a stream exactly. */
export type RngState = seedrandom.State.Alea;

/**
 * The one source of randomness in troupe. Every stream is seeded explicitly (never from the clock),
 * so the same seed reproduces the same numbers on every machine and in every thread.
 * Alea is used because it is the fastest of seedrandom's generators and its state is small.
 */
export class Rng {
  private readonly prng: seedrandom.StatefulPRNG<RngState>;

  constructor(seed: number | string, state?: RngState) {
    this.prng = state
      ? seedrandom.alea('', { state })
      : seedrandom.alea(String(seed), { state: true });
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.prng();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.prng() * n);
  }

  /** Uniform float in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.prng();
  }

  /** Standard normal sample (Box–Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.prng();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.prng());
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  state(): RngState {
    return this.prng.state();
  }

  static fromState(state: RngState): Rng {
    return new Rng('', state);
  }
}

/**
 * Derives an independent stream seed from a base seed and a path such as (envIndex) or
 * (envIndex, 'policy'). Streams depend only on the path, never on which thread runs them,
 * which is what makes results independent of the number of workers.
 */
export function deriveSeed(base: number | string, ...path: Array<number | string>): string {
  return [String(base), ...path.map(String)].join('/');
}

/** A 32-bit integer seed from a derived seed string (for APIs that take numeric seeds). */
export function seedToInt(seed: string): number {
  return Math.floor(new Rng(seed).next() * 0x7fffffff);
}
