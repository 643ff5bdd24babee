import { BaseParallelEnv } from '../base-parallel-env';
import { allocateObservationArrays } from './observation-arrays';
import { z } from 'zod';
import type { AgentId, AgentInfo, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { registerEnv, registerScenarioParser } from '../registry';
import { Box } from '../spaces/box';
import { Discrete } from '../spaces/discrete';
import { EMPTY, Grid, MOVE_DELTAS, manhattan } from './grid';

/**
 * Cooperative navigation (`spread-N`), after MPE's simple_spread but discrete on troupe's grid:
 * N agents must cover N landmarks between them.
 *
 * - Board: `gridSize` × `gridSize`, by default N + 3 (5x5 for 2 agents up to 11x11 for 8), so the
 *   free area per landmark stays roughly constant, as in MPE where the arena is fixed and grows
 *   more crowded with N. Landmarks are not obstacles; agents may stand on them.
 * - Actions: Discrete(5) = none, N, S, W, E; the mask forbids moves off the board.
 * - Movement rule: an agent may only enter a cell that was empty at the start of the step and
 *   that no other agent also tries to enter. Otherwise its move fails (it stays) and the team pays
 *   `collisionPenalty` for that blocked agent. Order never matters, so no randomness is needed.
 * - Team reward (the same for every agent each step):
 *   `-(sum over landmarks of the Manhattan distance to the nearest agent) / (2 * (gridSize - 1))
 *    - collisionPenalty * (number of blocked moves)`. Each landmark term lies in [0, 1].
 * - Episodes only end by truncation at `maxSteps` (default 25 + 4 (N - 2), capped at 50: larger
 *   boards need longer walks). At the end `info.success` says whether every landmark is covered
 *   at that final step; `info.coverage` (fraction of covered landmarks) is reported every step.
 * - Observation, as in MPE: own last move (dr, dc) as a velocity, own (row, col) / (gridSize - 1),
 *   then every landmark's and every other agent's position relative to the agent, divided by
 *   (gridSize - 1), other agents in index order without the agent itself. Length 4N + 2.
 * - `state()`: every agent's position, every agent's last move, every landmark's position (6N).
 *
 * Positions can be hand-placed with `reset({ options: { layout } })` (see `SpreadLayout`).
 */

/** Cells as [row, col]; used by `reset({ options: { layout } })`. */
export interface SpreadLayout {
  /** Exactly `numAgents` distinct cells, in agent order. */
  agents: ReadonlyArray<readonly [number, number]>;
  /** Exactly `numAgents` distinct cells. */
  landmarks: ReadonlyArray<readonly [number, number]>;
}

export interface SpreadConfig {
  id: string;
  numAgents: number;
  gridSize: number;
  maxSteps: number;
  collisionPenalty: number;
  /**
   * Landmark cells fixed for every episode (a task of `spread-hidden-N`, see `spread-hidden.ts`);
   * random per episode when absent.
   */
  fixedLandmarks?: ReadonlyArray<readonly [number, number]>;
  /** false drops the landmarks from the observations (they stay in `state()`); default true. */
  observeLandmarks?: boolean;
  /** Overrides the metadata's description and family (for variants built on this env). */
  description?: string;
  family?: string;
}

const NUM_ACTIONS = 5;

const SpreadOptionsSchema = z
  .object({
    id: z.string().default('spread'),
    numAgents: z.number().int().min(1).max(16).default(3),
    gridSize: z.number().int().min(2).max(64).optional(),
    maxSteps: z.number().int().min(1).max(100_000).optional(),
    collisionPenalty: z.number().finite().min(0).default(1),
  })
  .strict();

function defaultGridSize(numAgents: number): number {
  return numAgents + 3;
}

function defaultMaxSteps(numAgents: number): number {
  return Math.min(50, 25 + 4 * (numAgents - 2));
}

/** Validates factory options (unknown names and bad values are errors naming the option). */
export function parseSpreadOptions(raw: Record<string, unknown>): SpreadConfig {
  const label = typeof raw.id === 'string' ? raw.id : 'spread';
  const parsed = SpreadOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${Object.keys(SpreadOptionsSchema.shape).join(', ')})`);
    }
    const name = String(issue.path[0]);
    throw new Error(`${label}: invalid option '${name}' = ${JSON.stringify(raw[name])}: ${issue.message}`);
  }
  const o = parsed.data;
  const gridSize = o.gridSize ?? defaultGridSize(o.numAgents);
  if (gridSize * gridSize < o.numAgents) {
    throw new Error(`${label}: invalid option 'gridSize' = ${gridSize}: a ${gridSize}x${gridSize} board cannot hold ${o.numAgents} agents`);
  }
  return { ...o, gridSize, maxSteps: o.maxSteps ?? defaultMaxSteps(o.numAgents) };
}

export class SpreadEnv extends BaseParallelEnv<Float32Array, number, Box, Discrete> {
  readonly stateSpace: Box;
  readonly config: Readonly<SpreadConfig>;

  private readonly grid: Grid;
  private readonly obsSize: number;
  /** Per-cell masks; they depend only on the cell, so callers may keep them. */
  private readonly cellMasks: Uint8Array[];

  private stepCount = 0;

  private readonly agentRow: Int32Array;
  private readonly agentCol: Int32Array;
  private readonly lastDr: Int32Array;
  private readonly lastDc: Int32Array;
  private readonly landmarkRow: Int32Array;
  private readonly landmarkCol: Int32Array;
  /** 1 where a landmark lies; used to draw distinct landmark cells. */
  private readonly landmarkCells: Uint8Array;
  /** How many agents try to enter each cell this step; reset to zero after use. */
  private readonly targetCount: Int32Array;
  private readonly targetCell: Int32Array;

  constructor(config: SpreadConfig) {
    const { numAgents: n, gridSize } = config;
    const obsSize = config.observeLandmarks === false ? 2 * n + 2 : 4 * n + 2;
    super({
      metadata: {
        id: config.id,
        family: config.family ?? 'gridworld/spread',
        maxEpisodeSteps: config.maxSteps,
        reportsSuccess: true,
        teamReward: 'shared',
        description: config.description ?? `${n} agents cover ${n} landmarks on a ${gridSize}x${gridSize} grid (cooperative navigation)`,
      },
      agents: n,
      observationSpace: new Box(-1, 1, [obsSize]),
      actionSpace: new Discrete(NUM_ACTIONS),
    });
    this.config = Object.freeze({ ...config });
    this.grid = new Grid(gridSize, gridSize);
    this.obsSize = obsSize;
    this.stateSpace = new Box(-1, 1, [6 * n]);
    this.agentRow = new Int32Array(n);
    this.agentCol = new Int32Array(n);
    this.lastDr = new Int32Array(n);
    this.lastDc = new Int32Array(n);
    this.landmarkRow = new Int32Array(n);
    this.landmarkCol = new Int32Array(n);
    this.landmarkCells = new Uint8Array(gridSize * gridSize);
    this.targetCount = new Int32Array(gridSize * gridSize);
    this.targetCell = new Int32Array(n);
    this.cellMasks = [];
    for (let r = 0; r < gridSize; r++) {
      for (let c = 0; c < gridSize; c++) {
        this.cellMasks.push(Uint8Array.from(MOVE_DELTAS, ([dr, dc]) => (this.grid.inBounds(r + dr, c + dc) ? 1 : 0)));
      }
    }
  }

  /** Shared per-cell array: read it, do not write to it. */
  actionMask(agent: AgentId): Uint8Array {
    const i = this.indexOf(agent);
    return this.cellMasks[this.agentRow[i] * this.config.gridSize + this.agentCol[i]];
  }

  override reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    this.seedRng(args);
    this.abandonEpisode();
    this.grid.clear();
    this.landmarkCells.fill(0);
    this.lastDr.fill(0);
    this.lastDc.fill(0);
    const layout = args.options?.layout;
    if (layout !== undefined && this.config.fixedLandmarks) {
      throw new Error(`${this.metadata.id}: reset option 'layout' cannot move the landmarks, which this task fixes (choose the task with the env option 'task')`);
    }
    if (layout !== undefined) this.placeLayout(layout);
    else this.placeRandomly();
    this.stepCount = 0;
    this.startEpisode();
    const coverage = this.coverage();
    const observations = this.observeAll();
    const infos: PerAgent<AgentInfo> = {};
    for (const agent of this.possibleAgents) infos[agent] = { coverage };
    return { observations, infos };
  }

  override step(actions: PerAgent<number>): StepResult<Float32Array> {
    // Every agent is live until all are truncated together, so the loops below run over all of them.
    this.beginStep(actions);
    const { numAgents: n, gridSize, collisionPenalty } = this.config;
    const cells = this.grid.cells;
    this.stepCount++;

    for (let i = 0; i < n; i++) {
      const action = actions[this.possibleAgents[i]];
      this.lastDr[i] = 0;
      this.lastDc[i] = 0;
      if (action === 0) {
        this.targetCell[i] = -1;
        continue;
      }
      const cell = (this.agentRow[i] + MOVE_DELTAS[action][0]) * gridSize + this.agentCol[i] + MOVE_DELTAS[action][1];
      this.targetCell[i] = cell;
      this.targetCount[cell]++;
    }
    let blocked = 0;
    for (let i = 0; i < n; i++) {
      const cell = this.targetCell[i];
      if (cell < 0) continue;
      if (cells[cell] !== EMPTY || this.targetCount[cell] > 1) {
        blocked++;
        continue;
      }
      // Targets were empty at the start and are unique, so applying moves in index order is safe.
      const r = Math.floor(cell / gridSize);
      const c = cell - r * gridSize;
      this.lastDr[i] = r - this.agentRow[i];
      this.lastDc[i] = c - this.agentCol[i];
      this.grid.move(this.agentRow[i], this.agentCol[i], r, c);
      this.agentRow[i] = r;
      this.agentCol[i] = c;
    }
    for (let i = 0; i < n; i++) if (this.targetCell[i] >= 0) this.targetCount[this.targetCell[i]] = 0;

    let distanceSum = 0;
    for (let l = 0; l < n; l++) {
      let nearest = Infinity;
      for (let i = 0; i < n; i++) {
        const d = manhattan(this.landmarkRow[l], this.landmarkCol[l], this.agentRow[i], this.agentCol[i]);
        if (d < nearest) nearest = d;
      }
      distanceSum += nearest;
    }
    const reward = 0 - distanceSum / (2 * (gridSize - 1)) - collisionPenalty * blocked; // 0 - … never yields -0
    const coverage = this.coverage();
    const truncated = this.stepCount >= this.config.maxSteps;

    const observations = this.observeAll();
    const rewards: PerAgent<number> = {};
    const terminations: PerAgent<boolean> = {};
    const truncations: PerAgent<boolean> = {};
    const infos: PerAgent<AgentInfo> = {};
    for (let i = 0; i < n; i++) {
      const agent = this.possibleAgents[i];
      rewards[agent] = reward;
      terminations[agent] = false;
      truncations[agent] = truncated;
      infos[agent] = truncated ? { coverage, blockedMoves: blocked, success: coverage === 1 } : { coverage, blockedMoves: blocked };
    }
    return this.finishStep({ observations, rewards, terminations, truncations, infos }, truncated);
  }

  state(): Float32Array {
    const { numAgents: n } = this.config;
    const scale = this.positionScale();
    const out = new Float32Array(6 * n);
    for (let i = 0; i < n; i++) {
      out[2 * i] = this.agentRow[i] * scale;
      out[2 * i + 1] = this.agentCol[i] * scale;
      out[2 * n + 2 * i] = this.lastDr[i];
      out[2 * n + 2 * i + 1] = this.lastDc[i];
      out[4 * n + 2 * i] = this.landmarkRow[i] * scale;
      out[4 * n + 2 * i + 1] = this.landmarkCol[i] * scale;
    }
    return out;
  }

  /** Digits are agents, `*` an uncovered landmark, a digit followed by `*` an agent on a landmark. */
  override render(mode = 'ansi'): string {
    if (mode !== 'ansi') throw new Error(`${this.metadata.id}: render mode '${mode}' is not supported (only 'ansi')`);
    const { gridSize, numAgents: n } = this.config;
    const LANDMARK = n;
    const picture = new Grid(gridSize, gridSize);
    picture.cells.set(this.grid.cells);
    for (let l = 0; l < n; l++) {
      if (picture.get(this.landmarkRow[l], this.landmarkCol[l]) === EMPTY) picture.set(this.landmarkRow[l], this.landmarkCol[l], LANDMARK);
    }
    const text = picture.render((entity, r, c) => {
      if (entity === LANDMARK) return '*';
      const glyph = entity < 10 ? String(entity) : 'A';
      return this.landmarkCells[r * gridSize + c] ? `${glyph}*` : glyph;
    });
    return `${text}\nstep ${this.stepCount}/${this.config.maxSteps}, coverage ${Math.round(this.coverage() * 100)}%`;
  }

  private coverage(): number {
    const { numAgents: n, gridSize } = this.config;
    let covered = 0;
    for (let l = 0; l < n; l++) if (this.grid.cells[this.landmarkRow[l] * gridSize + this.landmarkCol[l]] !== EMPTY) covered++;
    return covered / n;
  }

  private positionScale(): number {
    return 1 / (this.config.gridSize - 1);
  }

  /** One step's observations, in arrays from `allocateObservationArrays` (see there about `.buffer`). */
  private observeAll(): PerAgent<Float32Array> {
    const observations: PerAgent<Float32Array> = {};
    const arrays = allocateObservationArrays(this.possibleAgents.length, this.obsSize);
    for (let i = 0; i < arrays.length; i++) observations[this.possibleAgents[i]] = this.observe(i, arrays[i]);
    return observations;
  }

  private observe(i: number, out: Float32Array): Float32Array {
    const { numAgents: n } = this.config;
    const scale = this.positionScale();
    const r = this.agentRow[i];
    const c = this.agentCol[i];
    out[0] = this.lastDr[i];
    out[1] = this.lastDc[i];
    out[2] = r * scale;
    out[3] = c * scale;
    let at = 4;
    for (let l = 0; l < n && this.config.observeLandmarks !== false; l++) {
      out[at++] = (this.landmarkRow[l] - r) * scale;
      out[at++] = (this.landmarkCol[l] - c) * scale;
    }
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      out[at++] = (this.agentRow[j] - r) * scale;
      out[at++] = (this.agentCol[j] - c) * scale;
    }
    return out;
  }

  private placeRandomly(): void {
    const { numAgents: n, gridSize } = this.config;
    const cellCount = gridSize * gridSize;
    const fixed = this.config.fixedLandmarks;
    for (let l = 0; l < n && fixed; l++) {
      const [row, col] = fixed[l];
      this.landmarkCells[row * gridSize + col] = 1;
      this.landmarkRow[l] = row;
      this.landmarkCol[l] = col;
    }
    for (let l = 0; l < n && !fixed; l++) {
      let cell = this.rng.int(cellCount);
      while (this.landmarkCells[cell]) cell = this.rng.int(cellCount);
      this.landmarkCells[cell] = 1;
      this.landmarkRow[l] = Math.floor(cell / gridSize);
      this.landmarkCol[l] = cell % gridSize;
    }
    for (let i = 0; i < n; i++) {
      let cell = this.rng.int(cellCount);
      while (this.grid.cells[cell] !== EMPTY) cell = this.rng.int(cellCount);
      this.grid.cells[cell] = i;
      this.agentRow[i] = Math.floor(cell / gridSize);
      this.agentCol[i] = cell % gridSize;
    }
  }

  private placeLayout(raw: unknown): void {
    const { gridSize } = this.config;
    const where = `${this.metadata.id}: reset option 'layout'`;
    if (typeof raw !== 'object' || raw === null) throw new Error(`${where} must be an object { agents, landmarks }`);
    const layout = raw as Partial<SpreadLayout>;
    const agents = this.checkCells(layout.agents, `${where}.agents`);
    const landmarks = this.checkCells(layout.landmarks, `${where}.landmarks`);
    landmarks.forEach(([r, c], l) => {
      if (this.landmarkCells[r * gridSize + c]) throw new Error(`${where}.landmarks[${l}] = [${r}, ${c}] repeats another landmark's cell`);
      this.landmarkCells[r * gridSize + c] = 1;
      this.landmarkRow[l] = r;
      this.landmarkCol[l] = c;
    });
    agents.forEach(([r, c], i) => {
      if (this.grid.get(r, c) !== EMPTY) throw new Error(`${where}.agents[${i}] = [${r}, ${c}] repeats another agent's cell`);
      this.grid.set(r, c, i);
      this.agentRow[i] = r;
      this.agentCol[i] = c;
    });
  }

  private checkCells(value: unknown, where: string): Array<readonly [number, number]> {
    const n = this.config.numAgents;
    if (!Array.isArray(value)) throw new Error(`${where} must be an array of ${n} [row, col] cells`);
    if (value.length !== n) throw new Error(`${where} needs exactly ${n} cells, got ${value.length}`);
    return value.map((cell: unknown, k) => {
      if (!Array.isArray(cell) || cell.length !== 2 || !Number.isInteger(cell[0]) || !Number.isInteger(cell[1]) || !this.grid.inBounds(cell[0], cell[1])) {
        throw new Error(`${where}[${k}] = ${JSON.stringify(cell)} is not a [row, col] cell inside the ${this.config.gridSize}x${this.config.gridSize} grid`);
      }
      return [cell[0], cell[1]] as const;
    });
  }
}

export function createSpread(options: Record<string, unknown>): SpreadEnv {
  return new SpreadEnv(parseSpreadOptions(options));
}

/** Reads `spread-N` into options; undefined for other ids. */
export function parseSpreadId(id: string): { numAgents: number } | undefined {
  const m = /^spread-(\d+)$/.exec(id);
  return m ? { numAgents: Number(m[1]) } : undefined;
}

let spreadRegistered = false;

/** Registers `spread` (hidden base), the listed `spread-2` … `spread-8` and the `spread-N` parser. */
export function registerSpread(): void {
  if (spreadRegistered) return;
  spreadRegistered = true;
  const family = 'gridworld/spread';
  const optionKeys = Object.keys(SpreadOptionsSchema.shape);
  registerEnv('spread', createSpread, { family, listed: false, optionKeys, description: 'Cooperative navigation; size from options' });
  for (let n = 2; n <= 8; n++) {
    registerEnv(`spread-${n}`, createSpread, {
      family,
      options: { numAgents: n },
      optionKeys,
      description: `${n} agents cover ${n} landmarks on a ${defaultGridSize(n)}x${defaultGridSize(n)} grid`,
    });
  }
  registerScenarioParser((id) => {
    const options = parseSpreadId(id);
    return options && { baseId: 'spread', options };
  });
}
