import { Rng } from '../../../runtime/core/rng';

export interface ExpertOptions {
  /** Standard deviation of Gaussian action noise (default 0). */
  noise?: number;
  /** Seed of the noise stream (default 0). */
  seed?: number | string;
  /** Proportional gain from TCP position error (m) to action (default 25: 1 cm/step beyond 4 cm). */
  gain?: number;
}

/** What `plan` returns: where the TCP should go and the gripper effort. */
export interface Waypoint {
  target: [number, number, number];
  effort: number;
}

/**
 * What every waypoint expert (single- and multi-arm) does with its plan: a proportional move
 * toward the target TCP position plus the gripper effort, Gaussian noise from the expert's own
 * seeded stream, clipped to [-1, 1]. Also validates the shared `noise`/`gain` options.
 */
export class WaypointActuator {
  readonly noise: number;
  readonly gain: number;
  private readonly rng: Rng;

  /** `stream` names the noise stream (seeded from `options.seed`), so expert families draw different noise. */
  constructor(options: ExpertOptions, stream: string) {
    const noise = options.noise ?? 0;
    if (!(noise >= 0 && Number.isFinite(noise))) throw new Error(`expert: noise must be a finite number ≥ 0, got ${noise}`);
    const gain = options.gain ?? 25;
    if (!(gain > 0 && Number.isFinite(gain))) throw new Error(`expert: gain must be a finite number > 0, got ${gain}`);
    this.noise = noise;
    this.gain = gain;
    this.rng = new Rng(`${stream}/${options.seed ?? 0}`);
  }

  /** The 4-number action (a fresh array) toward `w` for a TCP whose position is obs[handAt … handAt+2]. */
  action(w: Waypoint, obs: Float32Array, handAt: number): Float32Array {
    const action = new Float32Array(4);
    for (let i = 0; i < 3; i++) action[i] = this.gain * (w.target[i] - obs[handAt + i]);
    action[3] = w.effort;
    for (let i = 0; i < 4; i++) {
      const noisy = this.noise > 0 ? action[i] + this.noise * this.rng.normal() : action[i];
      action[i] = Math.min(1, Math.max(-1, noisy));
    }
    return action;
  }
}
