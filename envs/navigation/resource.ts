import { z } from 'zod';
import { BaseParallelEnv } from '../base-parallel-env';
import { allocateObservationArrays } from '../gridworld/observation-arrays';
import type { AgentInfo, EntityObservationLayout, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { registerEnv, registerScenarioParser } from '../registry';
import { Box } from '../spaces/box';
import { Discrete } from '../spaces/discrete';

/**
 * Resource occupation (`resource-N`, family `navigation/resource`): the multi-agent particle
 * scenario of MRA (shenao-zhang/MRA, `envs/mpe_scenarios/resource.py`), with MPE's physics
 * re-implemented here. N agents share 6 resources of different sizes; an agent earns a resource's
 * size only while it stands on it, and agents on the same resource split it.
 *
 * - Agents: radius 0.05, mass 1, movable, colliding with each other. Resources (MPE landmarks):
 *   radius 0.05·(i + 1) for i = 0 … 5, neither movable nor colliding. Each reset draws every agent's
 *   position from U(−1, 1)² (x then y, agents in order), velocities 0, then every resource's
 *   position from U(−1, 1)². No walls: the plane is unbounded.
 * - Actions: Discrete(5), MPE's (PettingZoo's) discrete semantics: 0 none, 1 u = (−1, 0),
 *   2 u = (+1, 0), 3 u = (0, −1), 4 u = (0, +1); the force is 5·u (MPE's default sensitivity).
 *   Every action is always legal (no action mask).
 * - Physics, MPE's `World.step` with dt 0.1, damping 0.25, contact force 100 and contact margin
 *   0.001: each agent's force is its action's plus, for every overlapping-or-near pair of agents,
 *   the soft contact force 100 · Δ/|Δ| · k·log(1 + exp(−(|Δ| − 0.1)/k)), k = 0.001, pushing them
 *   apart (agents at exactly the same point exert none: there is no direction to push along).
 *   Then v ← v·(1 − 0.25) + F·dt, p ← p + v·dt. No speed limit.
 * - Reward, per agent and step (after the move; agents earn their own, `teamReward: 'sum'`): the sum
 *   over the resources the agent overlaps (centre distance < 0.05 + the resource's radius) of
 *   10 · radius / (number of agents overlapping that resource).
 * - Episodes end only by truncation after `maxSteps` steps (default 20).
 * - Observation per agent, length 22 + 22·(N − 1):
 *   - the self block (22): own velocity (2), own position (2), then for each resource in order its
 *     position relative to the agent (2) and its radius (1);
 *   - one block of 22 per other agent, in index order: its position relative to the agent (2), its
 *     velocity (2), then for each resource its position relative to that other agent (2) and its
 *     radius (1).
 *   The reference appends the resources after the other agents; here they belong to the self block,
 *   so that a permutation-invariant network can split every observation into a self block and a set
 *   of equally sized entity blocks, which `metadata.entityObservation` declares
 *   ({ selfDim: 22, entityDim: 22 }). The bounds are unbounded (±Infinity): nothing stops agents.
 * - `state()`: every agent's position and velocity (x, y, vx, vy per agent), then every resource's
 *   position: 4N + 12 numbers.
 * - Infos every step (and at reset), the same for every agent: `occupied`, the number of resources
 *   whose nearest agent's centre is closer than 0.1 (the reference's benchmark data), and
 *   `collisions`, the number of agent pairs that overlap (centre distance < 0.1).
 *
 * Positions can be placed by hand with `reset({ options: { layout } })` (see `ResourceLayout`).
 */

export const RESOURCE_FAMILY = 'navigation/resource';
/** Resources per episode. */
export const RESOURCE_COUNT = 6;
/** Every agent's radius. */
export const RESOURCE_AGENT_SIZE = 0.05;
/** Resource i's radius: 0.05·(i + 1). */
export const RESOURCE_SIZES: readonly number[] = Object.freeze(Array.from({ length: RESOURCE_COUNT }, (_, i) => 0.05 * (i + 1)));
/** Numbers per observation block: the self block and every other agent's block alike. */
export const RESOURCE_BLOCK_DIM = 4 + 3 * RESOURCE_COUNT;
/** The largest `numAgents` (and N of a `resource-N` id). */
export const RESOURCE_MAX_AGENTS = 64;
/** Reward for occupying resource i alone is RESOURCE_REWARD_SCALE · its radius. */
export const RESOURCE_REWARD_SCALE = 10;

// MPE's World / Agent defaults.
const DT = 0.1;
const DAMPING = 0.25;
const CONTACT_FORCE = 100;
const CONTACT_MARGIN = 0.001;
const SENSITIVITY = 5;
const MASS = 1;
/** Benchmark data: a resource counts as occupied when its nearest agent is closer than this. */
const OCCUPIED_DISTANCE = 0.1;
const NUM_ACTIONS = 5;
/** Unit force direction of each action: none, −x, +x, −y, +y. */
const ACTION_DIRECTIONS: ReadonlyArray<readonly [number, number]> = [[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]];

/** Positions as [x, y]; used by `reset({ options: { layout } })`. Velocities start at 0. */
export interface ResourceLayout {
  /** Exactly `numAgents` positions, in agent order. */
  agents: ReadonlyArray<readonly [number, number]>;
  /** Exactly 6 positions, in resource order (resource i has radius 0.05·(i + 1)). */
  resources: ReadonlyArray<readonly [number, number]>;
}

export interface ResourceConfig {
  id: string;
  numAgents: number;
  maxSteps: number;
}

const ResourceOptionsSchema = z
  .object({
    id: z.string().default('resource'),
    numAgents: z.number().int().min(1).max(RESOURCE_MAX_AGENTS).default(3),
    maxSteps: z.number().int().min(1).max(100_000).default(20),
  })
  .strict();

/** The option names `resource` accepts (the registry refuses others by name). */
export const RESOURCE_OPTION_KEYS: readonly string[] = Object.keys(ResourceOptionsSchema.shape);

/** Validates factory options (unknown names and bad values are errors naming the option). */
export function parseResourceOptions(raw: Record<string, unknown>): ResourceConfig {
  const label = typeof raw.id === 'string' ? raw.id : 'resource';
  const parsed = ResourceOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${RESOURCE_OPTION_KEYS.join(', ')})`);
    }
    const name = String(issue.path[0]);
    throw new Error(`${label}: invalid option '${name}' = ${JSON.stringify(raw[name])}: ${issue.message}`);
  }
  return parsed.data;
}

/** k·log(1 + exp(x / k)) without overflow: MPE's softened penetration depth `logaddexp(0, x/k)·k`. */
function softPenetration(x: number): number {
  const z = x / CONTACT_MARGIN;
  return CONTACT_MARGIN * (Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))));
}

export class ResourceEnv extends BaseParallelEnv<Float32Array, number, Box, Discrete> {
  readonly stateSpace: Box;
  readonly config: Readonly<ResourceConfig>;

  private readonly obsSize: number;
  private stepCount = 0;
  /** Float64 like MPE's numpy state; observations round to float32 only when written. */
  private readonly pos: Float64Array;
  private readonly vel: Float64Array;
  private readonly force: Float64Array;
  private readonly resourcePos = new Float64Array(2 * RESOURCE_COUNT);

  constructor(config: ResourceConfig) {
    const n = config.numAgents;
    const obsSize = RESOURCE_BLOCK_DIM * n;
    const entityObservation: EntityObservationLayout = { selfDim: RESOURCE_BLOCK_DIM, entityDim: RESOURCE_BLOCK_DIM };
    super({
      metadata: {
        id: config.id,
        family: RESOURCE_FAMILY,
        maxEpisodeSteps: config.maxSteps,
        reportsSuccess: false,
        teamReward: 'sum',
        entityObservation,
        description: `${n} agent${n === 1 ? '' : 's'} share ${RESOURCE_COUNT} resources of different sizes (MRA's resource occupation)`,
      },
      agents: n,
      observationSpace: new Box(-Infinity, Infinity, [obsSize]),
      actionSpace: new Discrete(NUM_ACTIONS),
    });
    this.config = Object.freeze({ ...config });
    this.obsSize = obsSize;
    this.stateSpace = new Box(-Infinity, Infinity, [4 * n + 2 * RESOURCE_COUNT]);
    this.pos = new Float64Array(2 * n);
    this.vel = new Float64Array(2 * n);
    this.force = new Float64Array(2 * n);
  }

  override reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    this.seedRng(args);
    this.abandonEpisode();
    const options = args.options ?? {};
    const unknown = Object.keys(options).filter((k) => k !== 'layout');
    if (unknown.length > 0) {
      throw new Error(`${this.metadata.id}: unknown reset option ${unknown.map((k) => `'${k}'`).join(', ')} (known reset options: layout)`);
    }
    if (options.layout !== undefined) this.placeLayout(options.layout);
    else this.placeRandomly();
    this.vel.fill(0);
    this.stepCount = 0;
    this.startEpisode();
    const info = this.episodeFacts();
    const infos: PerAgent<AgentInfo> = {};
    for (const agent of this.possibleAgents) infos[agent] = { ...info };
    return { observations: this.observeAll(), infos };
  }

  override step(actions: PerAgent<number>): StepResult<Float32Array> {
    // Every agent is live until all are truncated together, so the loops below run over all of them.
    this.beginStep(actions);
    const n = this.config.numAgents;
    const { pos, vel, force } = this;
    this.stepCount++;

    for (let i = 0; i < n; i++) {
      const [ux, uy] = ACTION_DIRECTIONS[actions[this.possibleAgents[i]]];
      force[2 * i] = ux * SENSITIVITY;
      force[2 * i + 1] = uy * SENSITIVITY;
    }
    const minDistance = 2 * RESOURCE_AGENT_SIZE;
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) {
        const dx = pos[2 * a] - pos[2 * b];
        const dy = pos[2 * a + 1] - pos[2 * b + 1];
        const dist = Math.sqrt(dx * dx + dy * dy);
        if (dist === 0) continue; // no direction to push along (MPE would produce NaN)
        const scale = (CONTACT_FORCE * softPenetration(minDistance - dist)) / dist;
        force[2 * a] += scale * dx;
        force[2 * a + 1] += scale * dy;
        force[2 * b] -= scale * dx;
        force[2 * b + 1] -= scale * dy;
      }
    }
    for (let k = 0; k < 2 * n; k++) {
      vel[k] = vel[k] * (1 - DAMPING) + (force[k] / MASS) * DT;
      pos[k] += vel[k] * DT;
    }

    const rewards = this.rewards();
    const truncated = this.stepCount >= this.config.maxSteps;
    const info = this.episodeFacts();
    const observations = this.observeAll();
    const terminations: PerAgent<boolean> = {};
    const truncations: PerAgent<boolean> = {};
    const infos: PerAgent<AgentInfo> = {};
    for (const agent of this.possibleAgents) {
      terminations[agent] = false;
      truncations[agent] = truncated;
      infos[agent] = { ...info };
    }
    return this.finishStep({ observations, rewards, terminations, truncations, infos }, truncated);
  }

  state(): Float32Array {
    const n = this.config.numAgents;
    const out = new Float32Array(4 * n + 2 * RESOURCE_COUNT);
    for (let i = 0; i < n; i++) {
      out[4 * i] = this.pos[2 * i];
      out[4 * i + 1] = this.pos[2 * i + 1];
      out[4 * i + 2] = this.vel[2 * i];
      out[4 * i + 3] = this.vel[2 * i + 1];
    }
    out.set(this.resourcePos, 4 * n);
    return out;
  }

  /** One line per agent and per resource (with the agents on it). */
  override render(mode = 'ansi'): string {
    if (mode !== 'ansi') throw new Error(`${this.metadata.id}: render mode '${mode}' is not supported (only 'ansi')`);
    const n = this.config.numAgents;
    const f = (v: number) => v.toFixed(3);
    const lines = [`step ${this.stepCount}/${this.config.maxSteps}`];
    for (let i = 0; i < n; i++) {
      lines.push(`${this.possibleAgents[i]} at (${f(this.pos[2 * i])}, ${f(this.pos[2 * i + 1])}), velocity (${f(this.vel[2 * i])}, ${f(this.vel[2 * i + 1])})`);
    }
    for (let l = 0; l < RESOURCE_COUNT; l++) {
      const on = this.possibleAgents.filter((_, i) => this.overlaps(i, l));
      lines.push(`resource ${l} (radius ${RESOURCE_SIZES[l].toFixed(2)}) at (${f(this.resourcePos[2 * l])}, ${f(this.resourcePos[2 * l + 1])}): ${on.length ? on.join(', ') : 'free'}`);
    }
    return lines.join('\n');
  }

  private overlaps(agent: number, resource: number): boolean {
    const dx = this.pos[2 * agent] - this.resourcePos[2 * resource];
    const dy = this.pos[2 * agent + 1] - this.resourcePos[2 * resource + 1];
    return Math.sqrt(dx * dx + dy * dy) < RESOURCE_AGENT_SIZE + RESOURCE_SIZES[resource];
  }

  private rewards(): PerAgent<number> {
    const n = this.config.numAgents;
    const reward = new Float64Array(n);
    const on: number[] = [];
    for (let l = 0; l < RESOURCE_COUNT; l++) {
      on.length = 0;
      for (let i = 0; i < n; i++) if (this.overlaps(i, l)) on.push(i);
      for (const i of on) reward[i] += (RESOURCE_SIZES[l] / on.length) * RESOURCE_REWARD_SCALE;
    }
    const out: PerAgent<number> = {};
    for (let i = 0; i < n; i++) out[this.possibleAgents[i]] = reward[i];
    return out;
  }

  /** The infos every agent gets: occupied resources and overlapping agent pairs. */
  private episodeFacts(): { occupied: number; collisions: number } {
    const n = this.config.numAgents;
    const { pos, resourcePos } = this;
    let occupied = 0;
    for (let l = 0; l < RESOURCE_COUNT; l++) {
      let nearest = Infinity;
      for (let i = 0; i < n; i++) nearest = Math.min(nearest, Math.hypot(pos[2 * i] - resourcePos[2 * l], pos[2 * i + 1] - resourcePos[2 * l + 1]));
      if (nearest < OCCUPIED_DISTANCE) occupied++;
    }
    let collisions = 0;
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) {
        if (Math.hypot(pos[2 * a] - pos[2 * b], pos[2 * a + 1] - pos[2 * b + 1]) < 2 * RESOURCE_AGENT_SIZE) collisions++;
      }
    }
    return { occupied, collisions };
  }

  /** One step's observations, in arrays from `allocateObservationArrays` (see there about `.buffer`). */
  private observeAll(): PerAgent<Float32Array> {
    const observations: PerAgent<Float32Array> = {};
    const arrays = allocateObservationArrays(this.possibleAgents.length, this.obsSize);
    for (let i = 0; i < arrays.length; i++) observations[this.possibleAgents[i]] = this.observe(i, arrays[i]);
    return observations;
  }

  private observe(i: number, out: Float32Array): Float32Array {
    const n = this.config.numAgents;
    const { pos, vel } = this;
    const x = pos[2 * i];
    const y = pos[2 * i + 1];
    out[0] = vel[2 * i];
    out[1] = vel[2 * i + 1];
    out[2] = x;
    out[3] = y;
    let at = this.writeResources(x, y, out, 4);
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const ox = pos[2 * j];
      const oy = pos[2 * j + 1];
      out[at++] = ox - x;
      out[at++] = oy - y;
      out[at++] = vel[2 * j];
      out[at++] = vel[2 * j + 1];
      at = this.writeResources(ox, oy, out, at);
    }
    return out;
  }

  /** Every resource's position relative to (x, y) and its radius, from `at`; returns the next index. */
  private writeResources(x: number, y: number, out: Float32Array, at: number): number {
    for (let l = 0; l < RESOURCE_COUNT; l++) {
      out[at++] = this.resourcePos[2 * l] - x;
      out[at++] = this.resourcePos[2 * l + 1] - y;
      out[at++] = RESOURCE_SIZES[l];
    }
    return at;
  }

  private placeRandomly(): void {
    for (let k = 0; k < this.pos.length; k++) this.pos[k] = this.rng.uniform(-1, 1);
    for (let k = 0; k < this.resourcePos.length; k++) this.resourcePos[k] = this.rng.uniform(-1, 1);
  }

  /** Validates the whole layout before placing anything. */
  private placeLayout(raw: unknown): void {
    const where = `${this.metadata.id}: reset option 'layout'`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where} must be an object { agents, resources }`);
    const extra = Object.keys(raw).filter((k) => k !== 'agents' && k !== 'resources');
    if (extra.length > 0) throw new Error(`${where} has unknown key ${extra.map((k) => `'${k}'`).join(', ')} (expected agents, resources)`);
    const layout = raw as Partial<ResourceLayout>;
    const agents = checkPoints(layout.agents, this.config.numAgents, `${where}.agents`, 'agent');
    const resources = checkPoints(layout.resources, RESOURCE_COUNT, `${where}.resources`, 'resource');
    agents.forEach(([x, y], i) => {
      this.pos[2 * i] = x;
      this.pos[2 * i + 1] = y;
    });
    resources.forEach(([x, y], l) => {
      this.resourcePos[2 * l] = x;
      this.resourcePos[2 * l + 1] = y;
    });
  }
}

function checkPoints(value: unknown, count: number, where: string, what: string): Array<readonly [number, number]> {
  if (!Array.isArray(value)) throw new Error(`${where} must be an array of ${count} [x, y] positions, one per ${what}; got ${JSON.stringify(value)}`);
  if (value.length !== count) throw new Error(`${where} needs exactly ${count} [x, y] positions, one per ${what}; got ${value.length}`);
  return value.map((point: unknown, k) => {
    if (!Array.isArray(point) || point.length !== 2 || !point.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new Error(`${where}[${k}] (${what} ${k}) = ${JSON.stringify(point)} is not an [x, y] pair of finite numbers`);
    }
    return [point[0] as number, point[1] as number] as const;
  });
}

export function createResource(options: Record<string, unknown>): ResourceEnv {
  return new ResourceEnv(parseResourceOptions(options));
}

/** Reads `resource-N` into options; undefined for other ids. */
export function parseResourceId(id: string): { numAgents: number } | undefined {
  const m = /^resource-(\d+)$/.exec(id);
  return m ? { numAgents: Number(m[1]) } : undefined;
}

/** `resource-1` … `resource-12` are listed; the scenario parser makes any `resource-N` up to 64. */
const LISTED_MAX_AGENTS = 12;

let registered = false;

/** Registers `resource` (hidden base), the listed `resource-1` … `resource-12` and the `resource-N` parser. Idempotent. */
export function registerResource(): void {
  if (registered) return;
  registered = true;
  const family = RESOURCE_FAMILY;
  const optionKeys = RESOURCE_OPTION_KEYS;
  registerEnv('resource', createResource, { family, listed: false, optionKeys, description: "MRA's resource occupation; number of agents from options" });
  for (let n = 1; n <= LISTED_MAX_AGENTS; n++) {
    registerEnv(`resource-${n}`, createResource, {
      family,
      options: { numAgents: n },
      optionKeys,
      description: `${n} agent${n === 1 ? '' : 's'} share ${RESOURCE_COUNT} resources of different sizes (MRA's resource occupation)`,
    });
  }
  registerScenarioParser((id) => {
    const options = parseResourceId(id);
    return options && { baseId: 'resource', options };
  });
}
