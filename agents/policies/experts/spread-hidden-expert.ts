import { parseSpreadHiddenOptions } from '../../../envs/gridworld/spread-hidden';
import { MOVE_DELTAS } from '../../../envs/gridworld/grid';
import type { VectorLayout } from '../../../envs/env-shape';
import { Rng, deriveSeed } from '../../../runtime/core/rng';
import type { Policy, PolicyBatch } from '../policy';

/**
 * The scripted team of `spread-hidden-N`: it knows the task's landmarks from the env options
 * that fix them (like `point-robot`'s expert knows the goal), assigns agents to landmarks by the
 * assignment of least total Manhattan distance (exhaustive up to 6 agents, greedy beyond), and
 * moves every agent one cell toward its landmark along the axis with the larger gap (the other
 * axis when that cell is taken), staying once there. It never makes a move that would be blocked;
 * an agent without a free move toward its landmark waits or sidesteps, so the team is
 * near-optimal rather than optimal. `noise` is, for these discrete actions, the
 * probability of a uniformly random action among those that cannot be blocked (staying included)
 * instead, drawn from each env's own stream; so its data has no collision penalties.
 */
export class SpreadHiddenExpertPolicy implements Policy {
  private readonly landmarks: Array<[number, number]>;
  private readonly gridSize: number;
  private readonly rngs: Rng[];
  private readonly noise: number;

  constructor(
    private readonly layout: VectorLayout,
    envOptions: Record<string, unknown>,
    options: { noise?: number; seed?: number | string } = {},
  ) {
    const config = parseSpreadHiddenOptions(envOptions);
    const n = config.spread.numAgents;
    if (layout.numAgents !== n || layout.numActions !== MOVE_DELTAS.length) {
      throw new Error(`spread-hidden expert: expected ${n} agents with ${MOVE_DELTAS.length} actions, the env has ${layout.numAgents} agents and ${layout.numActions} actions`);
    }
    this.noise = options.noise ?? 0;
    if (!(this.noise >= 0 && this.noise <= 1)) throw new Error(`spread-hidden expert: noise is the probability of a random action, in [0, 1]; got ${options.noise}`);
    this.landmarks = config.landmarks;
    this.gridSize = config.spread.gridSize;
    this.rngs = Array.from({ length: layout.numEnvs }, (_, e) => new Rng(deriveSeed('spread-hidden-expert', options.seed ?? 0, e)));
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    const { numEnvs: E, numAgents: A, obsDim, numActions: K } = this.layout;
    const toCell = (x: number) => Math.round(x * (this.gridSize - 1));
    for (let e = 0; e < E; e++) {
      const positions: Array<[number, number]> = [];
      for (let a = 0; a < A; a++) {
        const at = (e * A + a) * obsDim;
        positions.push([toCell(batch.obs[at + 2]), toCell(batch.obs[at + 3])]);
      }
      const target = assign(positions, this.landmarks);
      // A move only succeeds into a cell empty at the step's start that no other agent enters:
      // cells are claimed in agent order, and an agent with no free move toward its landmark
      // waits (a blocked move costs the team), sidestepping now and then so that no two agents
      // wait on each other for ever.
      const occupied = new Set(positions.map(([r, c]) => r * this.gridSize + c));
      const claimed = new Set<number>();
      const rng = this.rngs[e];
      for (let a = 0; a < A; a++) {
        const slot = e * A + a;
        if (!batch.alive[slot]) continue;
        const [r, c] = positions[a];
        const free = (k: number) => {
          if (batch.masks[slot * K + k] !== 1) return false;
          if (k === 0) return true;
          const cell = (r + MOVE_DELTAS[k][0]) * this.gridSize + c + MOVE_DELTAS[k][1];
          return !occupied.has(cell) && !claimed.has(cell);
        };
        const take = (k: number) => {
          actions[slot] = k;
          if (k > 0) claimed.add((r + MOVE_DELTAS[k][0]) * this.gridSize + c + MOVE_DELTAS[k][1]);
        };
        const safe = Array.from({ length: K }, (_, k) => k).filter(free);
        if (this.noise > 0 && rng.next() < this.noise) {
          take(safe[rng.int(safe.length)]);
          continue;
        }
        const [tr, tc] = this.landmarks[target[a]];
        const dr = Math.sign(tr - r);
        const dc = Math.sign(tc - c);
        const byRows = dr === 0 ? -1 : MOVE_DELTAS.findIndex(([mr, mc]) => mr === dr && mc === 0);
        const byCols = dc === 0 ? -1 : MOVE_DELTAS.findIndex(([mr, mc]) => mr === 0 && mc === dc);
        const order = Math.abs(tr - r) >= Math.abs(tc - c) ? [byRows, byCols] : [byCols, byRows];
        const toward = order.find((k) => k > 0 && free(k));
        if (toward !== undefined) take(toward);
        else if (dr === 0 && dc === 0) take(0);
        else take(rng.next() < 0.3 ? safe[rng.int(safe.length)] : 0);
      }
    }
  }
}

/** For each agent, the index of its landmark under the least total Manhattan distance. */
function assign(agents: ReadonlyArray<readonly [number, number]>, landmarks: ReadonlyArray<readonly [number, number]>): number[] {
  const n = agents.length;
  const cost = (a: number, l: number) => Math.abs(agents[a][0] - landmarks[l][0]) + Math.abs(agents[a][1] - landmarks[l][1]);
  if (n <= 6) {
    let best: number[] = [];
    let bestCost = Infinity;
    const perm: number[] = [];
    const used = new Array<boolean>(n).fill(false);
    const search = (a: number, total: number) => {
      if (total >= bestCost) return;
      if (a === n) {
        best = [...perm];
        bestCost = total;
        return;
      }
      for (let l = 0; l < n; l++) {
        if (used[l]) continue;
        used[l] = true;
        perm.push(l);
        search(a + 1, total + cost(a, l));
        perm.pop();
        used[l] = false;
      }
    };
    search(0, 0);
    return best;
  }
  // Greedy: the closest remaining (agent, landmark) pair first.
  const out = new Array<number>(n).fill(-1);
  const taken = new Array<boolean>(n).fill(false);
  for (let k = 0; k < n; k++) {
    let pick: [number, number] = [-1, -1];
    let pickCost = Infinity;
    for (let a = 0; a < n; a++) {
      if (out[a] >= 0) continue;
      for (let l = 0; l < n; l++) if (!taken[l] && cost(a, l) < pickCost) [pick, pickCost] = [[a, l], cost(a, l)];
    }
    out[pick[0]] = pick[1];
    taken[pick[1]] = true;
  }
  return out;
}
