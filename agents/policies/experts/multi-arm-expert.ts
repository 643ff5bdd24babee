import type { AgentId, PerAgent } from '../../../envs/parallel-env';
import { presenceFlagOffset, type MultiArmLayout } from '../../../envs/manipulation/multi-arm/multi-arm-task';
import type { ExpertOptions, Waypoint } from './manipulation-expert';
import { WaypointActuator } from './waypoint-actuator';

/**
 * Scripted teams for the multi-arm manipulation tasks: one waypoint controller per arm, each
 * deciding from its own observation only (its hand, the other hands, the objects, the goal), so
 * the team is a decentralised policy like the ones MAPPO learns. Coordination comes from what
 * each arm sees of the others (e.g. arm_0 lets go once arm_1's gripper has closed on the object).
 * Stateless: one expert may act in many envs. `noise` adds Gaussian noise (own seeded `Rng`) to
 * every action component, then clips to [-1, 1].
 */
export interface MultiArmExpert {
  readonly kind: string;
  /** One arm's action (a fresh array) from that arm's observation; `arm` is its index (arm_i). */
  actArm(arm: number, observation: Float32Array): Float32Array;
  /** Actions for every agent present in `observations` (keys `arm_i`). */
  act(observations: PerAgent<Float32Array>): PerAgent<Float32Array>;
}

export abstract class MultiArmWaypointExpert implements MultiArmExpert {
  abstract readonly kind: string;
  private readonly actuator: WaypointActuator;
  private readonly waypoint: Waypoint = { target: [0, 0, 0], effort: 0 };

  constructor(
    readonly layout: MultiArmLayout,
    options: ExpertOptions = {},
  ) {
    this.actuator = new WaypointActuator(options, 'multi-arm-expert');
  }

  /** Where arm `arm`'s TCP should go and its effort, from its observation (write into `out`). */
  protected abstract plan(arm: number, obs: Float32Array, out: Waypoint): void;

  actArm(arm: number, observation: Float32Array): Float32Array {
    if (observation.length !== this.layout.SIZE) throw new Error(`${this.kind} expert: expected a ${this.layout.SIZE}-number observation for arm_${arm}, got ${observation.length}`);
    if (!(Number.isInteger(arm) && arm >= 0 && arm < this.layout.numArms)) throw new Error(`${this.kind} expert: arm must be 0 … ${this.layout.numArms - 1}, got ${arm}`);
    this.plan(arm, observation, this.waypoint);
    // An arm's own hand leads its observation.
    return this.actuator.action(this.waypoint, observation, 0);
  }

  act(observations: PerAgent<Float32Array>): PerAgent<Float32Array> {
    const out: PerAgent<Float32Array> = {};
    for (const [agent, obs] of Object.entries(observations)) out[agent] = this.actArm(armIndex(agent), obs);
    return out;
  }
}

/** `arm_3` → 3; other names throw. */
export function armIndex(agent: AgentId): number {
  const m = /^arm_(\d+)$/.exec(agent);
  if (!m) throw new Error(`multi-arm expert: '${agent}' is not an arm agent (expected arm_<i>)`);
  return Number(m[1]);
}

/** Observation readers (triples as plain arrays; experts are not on the env's hot path). */
export function ownHand(obs: Float32Array): [number, number, number] {
  return [obs[0], obs[1], obs[2]];
}

export function ownOpening(obs: Float32Array): number {
  return obs[3];
}

/** The hand and opening of arm `other` as seen by arm `self`. */
export function otherArm(layout: MultiArmLayout, obs: Float32Array, self: number, other: number): { hand: [number, number, number]; opening: number } {
  const at = layout.OTHERS + 4 * (other < self ? other : other - 1);
  return { hand: [obs[at], obs[at + 1], obs[at + 2]], opening: obs[at + 3] };
}

/** Whether arm `other` takes part in this episode, as arm `self` sees it (always, in a layout without presence flags). */
export function otherArmPresent(layout: MultiArmLayout, obs: Float32Array, self: number, other: number): boolean {
  const at = presenceFlagOffset(layout, self, other);
  return at === undefined || obs[at] > 0.5;
}

/** Object slot k: position and quaternion (x, y, z, w); `previous` reads the previous frame. */
export function objectPose(layout: MultiArmLayout, obs: Float32Array, k: number, previous = false): { position: [number, number, number]; quat: [number, number, number, number] } {
  const at = (previous ? layout.PREV : 0) + layout.OBJECTS + 7 * k;
  return { position: [obs[at], obs[at + 1], obs[at + 2]], quat: [obs[at + 3], obs[at + 4], obs[at + 5], obs[at + 6]] };
}

export function goalOf(layout: MultiArmLayout, obs: Float32Array): [number, number, number] {
  return [obs[layout.GOAL], obs[layout.GOAL + 1], obs[layout.GOAL + 2]];
}

/** A point at local offset (lx, ly, lz) of a body with this pose. */
export function pointOnBody(position: readonly number[], q: readonly number[], lx: number, ly: number, lz: number): [number, number, number] {
  const [x, y, z, w] = q;
  const cx = y * lz - z * ly;
  const cy = z * lx - x * lz;
  const cz = x * ly - y * lx;
  return [
    position[0] + lx + 2 * (w * cx + y * cz - z * cy),
    position[1] + ly + 2 * (w * cy + z * cx - x * cz),
    position[2] + lz + 2 * (w * cz + x * cy - y * cx),
  ];
}

export function dist(a: readonly number[], b: readonly number[]): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/**
 * Whether a hand with this opening holds the grasp point `p`: the pads stopped at the object's
 * width (the grasp rule's tell) and the TCP is at the point.
 */
export function holdsPoint(hand: readonly number[], opening: number, heldOpening: number, p: readonly number[]): boolean {
  return Math.abs(opening - heldOpening) < 0.05 && dist(hand, p) < 0.03;
}

/**
 * Open, go above the grasp point `p`, come down level with it, close (the single-arm puck grasp,
 * for any point). `heldOpening` is obs's opening while holding there; below it the fingers closed
 * on nothing, so the hand opens and backs off.
 */
export function planPointGrasp(hand: readonly number[], opening: number, heldOpening: number, p: readonly number[], out: Waypoint): void {
  const [hx, hy, hz] = hand;
  if (opening < heldOpening - 0.1) {
    out.target = [hx, hy, hz + 0.02];
    out.effort = -1;
  } else if (Math.hypot(hx - p[0], hy - p[1]) > 0.01) {
    out.target = [p[0], p[1], Math.max(p[2] + 0.1, Math.min(hz, p[2] + 0.15))];
    out.effort = -1;
  } else if (hz - p[2] > 0.012) {
    out.target = [p[0], p[1], p[2]];
    out.effort = -1;
  } else {
    out.target = [p[0], p[1], p[2]];
    out.effort = 1;
  }
}
