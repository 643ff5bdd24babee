import { OBS } from '../../../envs/manipulation/observation-layout';
import { type ExpertOptions, type Waypoint, WaypointActuator } from './waypoint-actuator';

/**
 * Scripted experts for the manipulation tasks, in the style of Meta-World's `policies/`:
 * waypoint controllers that read the 39-number observation (goal visible) and return a
 * 4-number action. They are stateless (every decision comes from the observation), so one
 * expert can act in many envs; `noise` adds Gaussian noise of that standard deviation to every
 * action component (then clipped to [-1, 1]), drawn from the expert's own seeded `Rng`
 * (Meta-DT-style "medium" data = expert + noise).
 *
 * To add an expert: subclass `WaypointExpert`, implement `plan` (write a target TCP position and
 * an effort into `out`), and list its constructor in `expert-registry.ts`.
 */
export interface ManipulationExpert {
  /** The task kind it solves, e.g. `push`. */
  readonly kind: string;
  /** An action in [-1, 1]⁴ for this observation (a fresh array the caller may keep). */
  act(observation: Float32Array): Float32Array;
}

export type { ExpertOptions, Waypoint } from './waypoint-actuator';

export abstract class WaypointExpert implements ManipulationExpert {
  abstract readonly kind: string;
  private readonly actuator: WaypointActuator;
  private readonly waypoint: Waypoint = { target: [0, 0, 0], effort: 0 };

  constructor(options: ExpertOptions = {}) {
    this.actuator = new WaypointActuator(options, 'expert');
  }

  /** Decides the waypoint for this observation (write into `out`). */
  protected abstract plan(obs: Float32Array, out: Waypoint): void;

  act(observation: Float32Array): Float32Array {
    if (observation.length !== OBS.SIZE) throw new Error(`${this.kind} expert: expected a ${OBS.SIZE}-number observation, got ${observation.length}`);
    this.plan(observation, this.waypoint);
    return this.actuator.action(this.waypoint, observation, OBS.HAND);
  }
}

/** Reads observation triples. */
export function hand(obs: Float32Array): [number, number, number] {
  return [obs[OBS.HAND], obs[OBS.HAND + 1], obs[OBS.HAND + 2]];
}

export function object1(obs: Float32Array): [number, number, number] {
  return [obs[OBS.OBJ1_POS], obs[OBS.OBJ1_POS + 1], obs[OBS.OBJ1_POS + 2]];
}

export function goal(obs: Float32Array): [number, number, number] {
  return [obs[OBS.GOAL], obs[OBS.GOAL + 1], obs[OBS.GOAL + 2]];
}
