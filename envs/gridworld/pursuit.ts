import { BaseParallelEnv } from '../base-parallel-env';
import { allocateObservationArrays } from './observation-arrays';
import { z } from 'zod';
import type { AgentId, AgentInfo, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { registerEnv, registerScenarioParser } from '../registry';
import { Box } from '../spaces/box';
import { Discrete } from '../spaces/discrete';
import { EMPTY, Grid, MOVE_DELTAS, manhattan } from './grid';

/**
 * Pursuit (predator–prey), after PettingZoo's SISL pursuit but on troupe's discrete grid.
 *
 * - The agents are `numPredators` predators (`predator_0`, …); `numPrey` prey are part of the
 *   environment and move by `preyMovement` each step.
 * - Capture rule: a prey is caught when at least `needed` of its 4-neighbour cells hold predators,
 *   where `needed = clamp(catchNeighbours, 1, open)` and `open` counts the neighbour cells that are
 *   inside the grid and not walls. So `catchNeighbours: 4` means "fully surrounded, with the grid
 *   edge and walls blocking for the predators"; `catchNeighbours: 2` is the easier "two adjacent
 *   predators" variant. Cells held by other prey are open but not predators, so they prevent a full
 *   surround until that prey moves away.
 * - Step order: predators move (in a freshly shuffled order, a move into an occupied cell fails),
 *   then captures are checked and caught prey leave the grid, then the remaining prey move.
 *   Checking before the prey move makes a capture the direct result of the predators' actions.
 * - Rewards: every predator pays `stepPenalty` each step; each predator adjacent to a prey at its
 *   capture gets `captureReward`; each predator gets `tagReward` per surviving prey it is adjacent
 *   to. With `sharedReward` (default, as PettingZoo's `shared_reward`) every predator receives the
 *   mean of these individual rewards, which is the team reward cooperative learners (QMIX) need.
 * - All predators terminate together when the last prey is caught; otherwise all are truncated
 *   at `maxSteps`. At the end `info.success` says whether every prey was caught.
 * - Actions: Discrete(5) = none, N, S, W, E. The mask forbids moves off the grid or into walls;
 *   cells held by predators or prey are not masked because their occupants may move first.
 * - Observation: an `obsRange` × `obsRange` window centred on the predator, channels-last with
 *   channels [wall or outside the grid, predator (the observer included), prey], flattened, then
 *   the predator's own (row, col) divided by (rows - 1, cols - 1).
 * - `state()`: the whole grid as rows × cols × [wall, predator, prey], flattened.
 * - Defaults: `catchNeighbours` 2 (3 when there are at least 3 predators per prey), `maxSteps`
 *   10 × (rows + cols). A uniform random policy then catches every prey in about 34% of
 *   episodes on 7x7-2p-1prey, 30% on 10x10-4p-2prey and 13% on 16x16-8p-4prey: solvable, with
 *   plenty of room for a learned policy to do better.
 *
 * A scenario can be hand-placed with `reset({ options: { layout } })` (see `PursuitLayout`),
 * which tests use to check the capture rule.
 */

export type PreyMovement = 'random' | 'evasive' | 'stationary';

/** Cells as [row, col]; used by `reset({ options: { layout } })` to place every entity by hand. */
export interface PursuitLayout {
  /** Exactly `numPredators` cells, in agent order. */
  predators: ReadonlyArray<readonly [number, number]>;
  /** Exactly `numPrey` cells. */
  prey: ReadonlyArray<readonly [number, number]>;
  /** Interior obstacles for this episode (the grid edge always blocks). */
  walls?: ReadonlyArray<readonly [number, number]>;
}

export interface PursuitConfig {
  id: string;
  rows: number;
  cols: number;
  numPredators: number;
  numPrey: number;
  /** Adjacent predators needed for a capture, capped at the prey's open neighbours (4 = surround). */
  catchNeighbours: number;
  /** Side of the square observation window; odd. */
  obsRange: number;
  maxSteps: number;
  preyMovement: PreyMovement;
  captureReward: number;
  /** Subtracted from every predator's reward each step (urgency). */
  stepPenalty: number;
  tagReward: number;
  sharedReward: boolean;
}

const WALL_CHANNEL = 0;
const PREDATOR_CHANNEL = 1;
const PREY_CHANNEL = 2;
const CHANNELS = 3;
const NUM_ACTIONS = 5;

const coordinate = z.number().int().min(1).max(64);

const PursuitOptionsSchema = z
  .object({
    id: z.string().default('pursuit'),
    rows: coordinate.default(10),
    cols: coordinate.default(10),
    numPredators: z.number().int().min(1).max(64).default(4),
    numPrey: z.number().int().min(1).max(64).default(2),
    catchNeighbours: z.number().int().min(1).max(4).optional(),
    obsRange: z
      .number()
      .int()
      .min(1)
      .max(31)
      .refine((n) => n % 2 === 1, 'must be odd so the window has a centre')
      .default(7),
    maxSteps: z.number().int().min(1).max(100_000).optional(),
    preyMovement: z.enum(['random', 'evasive', 'stationary']).default('random'),
    captureReward: z.number().finite().default(5),
    stepPenalty: z.number().finite().min(0).default(0.05),
    tagReward: z.number().finite().default(0),
    sharedReward: z.boolean().default(true),
  })
  .strict();

/**
 * Default capture difficulty: two adjacent predators when there are few predators per prey
 * (with 2 predators a full surround is only possible against an edge or in a corner), and
 * three when every prey can be chased by at least three predators.
 */
function defaultCatchNeighbours(numPredators: number, numPrey: number): number {
  return numPredators / numPrey >= 3 ? 3 : 2;
}

/** Enough steps for a random-walking team to have a fair chance on small boards. */
function defaultMaxSteps(rows: number, cols: number): number {
  return 10 * (rows + cols);
}

/** Validates factory options (unknown names and bad values are errors naming the option). */
export function parsePursuitOptions(raw: Record<string, unknown>): PursuitConfig {
  const label = typeof raw.id === 'string' ? raw.id : 'pursuit';
  const parsed = PursuitOptionsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(describeOptionIssue(label, parsed.error.issues[0], raw, Object.keys(PursuitOptionsSchema.shape)));
  const o = parsed.data;
  if (o.numPredators + o.numPrey > o.rows * o.cols) {
    throw new Error(`${label}: invalid options 'numPredators' + 'numPrey' = ${o.numPredators + o.numPrey} exceed the ${o.rows}x${o.cols} grid's ${o.rows * o.cols} cells`);
  }
  return {
    ...o,
    catchNeighbours: o.catchNeighbours ?? defaultCatchNeighbours(o.numPredators, o.numPrey),
    maxSteps: o.maxSteps ?? defaultMaxSteps(o.rows, o.cols),
  };
}

function describeOptionIssue(label: string, issue: z.ZodIssue, raw: Record<string, unknown>, known: string[]): string {
  if (issue.code === 'unrecognized_keys') {
    return `${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${known.join(', ')})`;
  }
  const name = String(issue.path[0]);
  return `${label}: invalid option '${name}' = ${JSON.stringify(raw[name])}: ${issue.message}`;
}

export class PursuitEnv extends BaseParallelEnv<Float32Array, number, Box, Discrete> {
  readonly stateSpace: Box;
  readonly config: Readonly<PursuitConfig>;

  private readonly grid: Grid;
  private readonly obsSize: number;
  private readonly radius: number;
  /** Grid codes: predators 0..P-1, prey P..P+M-1, then walls. */
  private readonly preyBase: number;
  private readonly wallCode: number;

  private stepCount = 0;
  private preyLeft = 0;

  private readonly predatorRow: Int32Array;
  private readonly predatorCol: Int32Array;
  private readonly preyRow: Int32Array;
  private readonly preyCol: Int32Array;
  private readonly preyAlive: Uint8Array;
  private readonly moveOrder: number[];
  private readonly captureCredit: Int32Array;
  private readonly tagCredit: Int32Array;
  private readonly individualReward: Float64Array;
  private hasWalls = false;
  /**
   * One mask per cell, rebuilt as new arrays (never overwritten) when the walls change, so a mask
   * returned by `actionMask` stays correct for as long as the caller keeps it.
   */
  private cellMasks: Uint8Array[] = [];

  constructor(config: PursuitConfig) {
    const { rows, cols, numPredators, numPrey, obsRange } = config;
    const obsSize = obsRange * obsRange * CHANNELS + 2;
    super({
      metadata: {
        id: config.id,
        family: 'gridworld/pursuit',
        maxEpisodeSteps: config.maxSteps,
        reportsSuccess: true,
        teamReward: config.sharedReward ? 'shared' : 'sum',
        description:
          `${numPredators} predators hunt ${numPrey} ${config.preyMovement} prey on a ${rows}x${cols} grid; ` +
          `a prey is caught by ${config.catchNeighbours === 4 ? 'a full surround' : `${config.catchNeighbours} adjacent predators`}`,
      },
      agents: Array.from({ length: numPredators }, (_, i) => `predator_${i}`),
      observationSpace: new Box(0, 1, [obsSize]),
      actionSpace: new Discrete(NUM_ACTIONS),
    });
    this.config = Object.freeze({ ...config });
    this.grid = new Grid(rows, cols);
    this.radius = (obsRange - 1) / 2;
    this.obsSize = obsSize;
    this.stateSpace = new Box(0, 1, [rows * cols * CHANNELS]);
    this.preyBase = numPredators;
    this.wallCode = numPredators + numPrey;
    this.predatorRow = new Int32Array(numPredators);
    this.predatorCol = new Int32Array(numPredators);
    this.preyRow = new Int32Array(numPrey);
    this.preyCol = new Int32Array(numPrey);
    this.preyAlive = new Uint8Array(numPrey);
    this.moveOrder = Array.from({ length: numPredators }, (_, i) => i);
    this.captureCredit = new Int32Array(numPredators);
    this.tagCredit = new Int32Array(numPredators);
    this.individualReward = new Float64Array(numPredators);
    this.rebuildMasks();
  }

  /** Shared per-cell array: read it, do not write to it. */
  actionMask(agent: AgentId): Uint8Array {
    const i = this.indexOf(agent);
    return this.cellMasks[this.predatorRow[i] * this.config.cols + this.predatorCol[i]];
  }

  override reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    this.seedRng(args);
    this.abandonEpisode();
    const layout = args.options?.layout;
    this.grid.clear();
    this.preyAlive.fill(1);
    this.preyLeft = this.config.numPrey;
    // The order is shuffled in place each step; restoring it makes an episode depend on the seed only.
    for (let i = 0; i < this.moveOrder.length; i++) this.moveOrder[i] = i;
    if (layout !== undefined) this.placeLayout(layout);
    else this.placeRandomly();
    this.stepCount = 0;
    this.startEpisode();
    const observations = this.observeAll();
    const infos: PerAgent<AgentInfo> = {};
    for (const agent of this.possibleAgents) infos[agent] = { preyRemaining: this.preyLeft };
    return { observations, infos };
  }

  override step(actions: PerAgent<number>): StepResult<Float32Array> {
    // Every predator is live until all leave together, so the loops below run over all of them.
    this.beginStep(actions);
    const { numPredators } = this.config;
    this.stepCount++;

    this.rng.shuffle(this.moveOrder);
    for (let k = 0; k < numPredators; k++) {
      const i = this.moveOrder[k];
      const action = actions[this.possibleAgents[i]];
      if (action === 0) continue;
      const [dr, dc] = MOVE_DELTAS[action];
      const r = this.predatorRow[i];
      const c = this.predatorCol[i];
      if (this.grid.isFree(r + dr, c + dc)) {
        this.grid.move(r, c, r + dr, c + dc);
        this.predatorRow[i] = r + dr;
        this.predatorCol[i] = c + dc;
      }
    }

    this.captureCredit.fill(0);
    this.tagCredit.fill(0);
    const caught = this.resolveCaptures();
    this.movePrey();

    const terminated = this.preyLeft === 0;
    const truncated = !terminated && this.stepCount >= this.config.maxSteps;
    const done = terminated || truncated;

    const { captureReward, stepPenalty, tagReward, sharedReward } = this.config;
    let total = 0;
    for (let i = 0; i < numPredators; i++) {
      const r = -stepPenalty + captureReward * this.captureCredit[i] + tagReward * this.tagCredit[i];
      this.individualReward[i] = r;
      total += r;
    }
    const mean = total / numPredators;

    const observations = this.observeAll();
    const rewards: PerAgent<number> = {};
    const terminations: PerAgent<boolean> = {};
    const truncations: PerAgent<boolean> = {};
    const infos: PerAgent<AgentInfo> = {};
    for (let i = 0; i < numPredators; i++) {
      const agent = this.possibleAgents[i];
      rewards[agent] = sharedReward ? mean : this.individualReward[i];
      terminations[agent] = terminated;
      truncations[agent] = truncated;
      infos[agent] = done
        ? { preyRemaining: this.preyLeft, preyCaughtThisStep: caught, success: terminated }
        : { preyRemaining: this.preyLeft, preyCaughtThisStep: caught };
    }
    return this.finishStep({ observations, rewards, terminations, truncations, infos }, done);
  }

  state(): Float32Array {
    const { rows, cols } = this.config;
    const out = new Float32Array(rows * cols * CHANNELS);
    const cells = this.grid.cells;
    for (let cell = 0; cell < cells.length; cell++) {
      const channel = this.channelOf(cells[cell]);
      if (channel >= 0) out[cell * CHANNELS + channel] = 1;
    }
    return out;
  }

  override render(mode = 'ansi'): string {
    if (mode !== 'ansi') throw new Error(`${this.metadata.id}: render mode '${mode}' is not supported (only 'ansi')`);
    const picture = this.grid.render((entity) => {
      if (entity === this.wallCode) return '#';
      if (entity >= this.preyBase) return 'x';
      return entity < 10 ? String(entity) : 'P';
    });
    return `${picture}\nstep ${this.stepCount}/${this.config.maxSteps}, prey left ${this.preyLeft}/${this.config.numPrey}`;
  }

  /** Removes every prey that meets the capture rule and credits the predators next to it. */
  private resolveCaptures(): number {
    const { numPrey, catchNeighbours } = this.config;
    const cells = this.grid.cells;
    const cols = this.config.cols;
    let caught = 0;
    for (let j = 0; j < numPrey; j++) {
      if (!this.preyAlive[j]) continue;
      const r = this.preyRow[j];
      const c = this.preyCol[j];
      let open = 0;
      let adjacent = 0;
      for (let m = 1; m < NUM_ACTIONS; m++) {
        const nr = r + MOVE_DELTAS[m][0];
        const nc = c + MOVE_DELTAS[m][1];
        if (!this.grid.inBounds(nr, nc)) continue;
        const e = cells[nr * cols + nc];
        if (e === this.wallCode) continue;
        open++;
        if (e >= 0 && e < this.preyBase) adjacent++;
      }
      const needed = Math.max(1, Math.min(catchNeighbours, open));
      const isCaught = adjacent >= needed;
      if (adjacent === 0) continue;
      for (let m = 1; m < NUM_ACTIONS; m++) {
        const nr = r + MOVE_DELTAS[m][0];
        const nc = c + MOVE_DELTAS[m][1];
        if (!this.grid.inBounds(nr, nc)) continue;
        const e = cells[nr * cols + nc];
        if (e >= 0 && e < this.preyBase) {
          if (isCaught) this.captureCredit[e]++;
          else this.tagCredit[e]++;
        }
      }
      if (isCaught) {
        this.preyAlive[j] = 0;
        this.preyLeft--;
        this.grid.set(r, c, EMPTY);
        caught++;
      }
    }
    return caught;
  }

  private movePrey(): void {
    const { numPrey, preyMovement } = this.config;
    if (preyMovement === 'stationary') return;
    for (let j = 0; j < numPrey; j++) {
      if (!this.preyAlive[j]) continue;
      const move = preyMovement === 'random' ? this.rng.int(NUM_ACTIONS) : this.evasiveMove(j);
      if (move === 0) continue;
      const r = this.preyRow[j];
      const c = this.preyCol[j];
      const nr = r + MOVE_DELTAS[move][0];
      const nc = c + MOVE_DELTAS[move][1];
      if (this.grid.isFree(nr, nc)) {
        this.grid.move(r, c, nr, nc);
        this.preyRow[j] = nr;
        this.preyCol[j] = nc;
      }
    }
  }

  /** The reachable cell (staying included) farthest from the nearest predator; ties at random. */
  private evasiveMove(j: number): number {
    const r = this.preyRow[j];
    const c = this.preyCol[j];
    let best = 0;
    let bestScore = -1;
    let ties = 0;
    for (let m = 0; m < NUM_ACTIONS; m++) {
      const nr = r + MOVE_DELTAS[m][0];
      const nc = c + MOVE_DELTAS[m][1];
      if (m !== 0 && !this.grid.isFree(nr, nc)) continue;
      let nearest = Infinity;
      for (let i = 0; i < this.config.numPredators; i++) {
        const d = manhattan(nr, nc, this.predatorRow[i], this.predatorCol[i]);
        if (d < nearest) nearest = d;
      }
      if (nearest > bestScore) {
        bestScore = nearest;
        best = m;
        ties = 1;
      } else if (nearest === bestScore && this.rng.int(++ties) === 0) {
        best = m;
      }
    }
    return best;
  }

  /** One step's observations, in arrays from `allocateObservationArrays` (see there about `.buffer`). */
  private observeAll(): PerAgent<Float32Array> {
    const observations: PerAgent<Float32Array> = {};
    const arrays = allocateObservationArrays(this.possibleAgents.length, this.obsSize);
    for (let i = 0; i < arrays.length; i++) observations[this.possibleAgents[i]] = this.observe(i, arrays[i]);
    return observations;
  }

  private observe(i: number, out: Float32Array): Float32Array {
    const { rows, cols, obsRange } = this.config;
    const cells = this.grid.cells;
    const R = this.radius;
    const pr = this.predatorRow[i];
    const pc = this.predatorCol[i];
    for (let dr = -R; dr <= R; dr++) {
      const r = pr + dr;
      const rowBase = (dr + R) * obsRange;
      for (let dc = -R; dc <= R; dc++) {
        const c = pc + dc;
        const base = (rowBase + dc + R) * CHANNELS;
        if (r < 0 || r >= rows || c < 0 || c >= cols) {
          out[base + WALL_CHANNEL] = 1;
          continue;
        }
        const channel = this.channelOf(cells[r * cols + c]);
        if (channel >= 0) out[base + channel] = 1;
      }
    }
    out[this.obsSize - 2] = rows > 1 ? pr / (rows - 1) : 0;
    out[this.obsSize - 1] = cols > 1 ? pc / (cols - 1) : 0;
    return out;
  }

  private channelOf(entity: number): number {
    if (entity === EMPTY) return -1;
    if (entity === this.wallCode) return WALL_CHANNEL;
    return entity < this.preyBase ? PREDATOR_CHANNEL : PREY_CHANNEL;
  }

  private placeRandomly(): void {
    if (this.hasWalls) {
      this.hasWalls = false;
      this.rebuildMasks();
    }
    for (let i = 0; i < this.config.numPredators; i++) {
      const cell = this.randomFreeCell();
      this.predatorRow[i] = Math.floor(cell / this.config.cols);
      this.predatorCol[i] = cell % this.config.cols;
      this.grid.cells[cell] = i;
    }
    for (let j = 0; j < this.config.numPrey; j++) {
      const cell = this.randomFreeCell();
      this.preyRow[j] = Math.floor(cell / this.config.cols);
      this.preyCol[j] = cell % this.config.cols;
      this.grid.cells[cell] = this.preyBase + j;
    }
  }

  /** Rejection sampling: the grid is at most full, and usually far from it. */
  private randomFreeCell(): number {
    const cells = this.grid.cells;
    for (;;) {
      const cell = this.rng.int(cells.length);
      if (cells[cell] === EMPTY) return cell;
    }
  }

  private placeLayout(raw: unknown): void {
    const { numPredators, numPrey } = this.config;
    const layout = raw as Partial<PursuitLayout> | null;
    const where = `${this.metadata.id}: reset option 'layout'`;
    if (typeof layout !== 'object' || layout === null) throw new Error(`${where} must be an object { predators, prey, walls? }`);
    const predators = this.checkCells(layout.predators, `${where}.predators`, numPredators);
    const prey = this.checkCells(layout.prey, `${where}.prey`, numPrey);
    const walls = layout.walls === undefined ? [] : this.checkCells(layout.walls, `${where}.walls`, undefined);
    const put = (cell: readonly [number, number], code: number, what: string): void => {
      if (this.grid.get(cell[0], cell[1]) !== EMPTY) throw new Error(`${where}: ${what} at [${cell[0]}, ${cell[1]}] overlaps another entity`);
      this.grid.set(cell[0], cell[1], code);
    };
    walls.forEach((cell) => put(cell, this.wallCode, 'wall'));
    predators.forEach((cell, i) => {
      put(cell, i, `predator ${i}`);
      this.predatorRow[i] = cell[0];
      this.predatorCol[i] = cell[1];
    });
    prey.forEach((cell, j) => {
      put(cell, this.preyBase + j, `prey ${j}`);
      this.preyRow[j] = cell[0];
      this.preyCol[j] = cell[1];
    });
    if (walls.length > 0 || this.hasWalls) {
      this.hasWalls = walls.length > 0;
      this.rebuildMasks();
    }
  }

  private checkCells(value: unknown, where: string, count: number | undefined): Array<readonly [number, number]> {
    if (!Array.isArray(value)) throw new Error(`${where} must be an array of [row, col] cells`);
    if (count !== undefined && value.length !== count) throw new Error(`${where} needs exactly ${count} cells, got ${value.length}`);
    return value.map((cell: unknown, k) => {
      if (!Array.isArray(cell) || cell.length !== 2 || !Number.isInteger(cell[0]) || !Number.isInteger(cell[1]) || !this.grid.inBounds(cell[0], cell[1])) {
        throw new Error(`${where}[${k}] = ${JSON.stringify(cell)} is not a [row, col] cell inside the ${this.config.rows}x${this.config.cols} grid`);
      }
      return [cell[0], cell[1]] as const;
    });
  }

  private rebuildMasks(): void {
    const { rows, cols } = this.config;
    const table = new Uint8Array(rows * cols * NUM_ACTIONS);
    const masks: Uint8Array[] = [];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const cell = r * cols + c;
        const mask = table.subarray(cell * NUM_ACTIONS, (cell + 1) * NUM_ACTIONS);
        for (let m = 0; m < NUM_ACTIONS; m++) {
          const nr = r + MOVE_DELTAS[m][0];
          const nc = c + MOVE_DELTAS[m][1];
          mask[m] = m === 0 || (this.grid.inBounds(nr, nc) && this.grid.get(nr, nc) !== this.wallCode) ? 1 : 0;
        }
        masks.push(mask);
      }
    }
    this.cellMasks = masks;
  }
}

export function createPursuit(options: Record<string, unknown>): PursuitEnv {
  return new PursuitEnv(parsePursuitOptions(options));
}

const PURSUIT_ID = /^pursuit-(\d+)x(\d+)-(\d+)p-(\d+)prey$/;

/** Reads `pursuit-{rows}x{cols}-{N}p-{M}prey` into options; undefined for other ids. */
export function parsePursuitId(id: string): { rows: number; cols: number; numPredators: number; numPrey: number } | undefined {
  const m = PURSUIT_ID.exec(id);
  if (!m) return undefined;
  return { rows: Number(m[1]), cols: Number(m[2]), numPredators: Number(m[3]), numPrey: Number(m[4]) };
}

const LISTED_PURSUIT_IDS = ['pursuit-7x7-2p-1prey', 'pursuit-10x10-4p-2prey', 'pursuit-16x16-8p-4prey'];

let pursuitRegistered = false;

/** Registers `pursuit` (hidden base), the listed scenarios and the parser for every `pursuit-RxC-Np-Mprey`. */
export function registerPursuit(): void {
  if (pursuitRegistered) return;
  pursuitRegistered = true;
  const family = 'gridworld/pursuit';
  const optionKeys = Object.keys(PursuitOptionsSchema.shape);
  registerEnv('pursuit', createPursuit, { family, listed: false, optionKeys, description: 'Pursuit; size and counts from options' });
  for (const id of LISTED_PURSUIT_IDS) {
    const options = parsePursuitId(id);
    if (!options) throw new Error(`registerPursuit: listed id '${id}' does not parse`);
    registerEnv(id, createPursuit, {
      family,
      options,
      optionKeys,
      description: `${options.numPredators} predators catch ${options.numPrey} random prey on a ${options.rows}x${options.cols} grid`,
    });
  }
  registerScenarioParser((id) => {
    const options = parsePursuitId(id);
    return options && { baseId: 'pursuit', options };
  });
}
