/**
 * The grid engine shared by the gridworld tasks: a width × height board whose cells hold at
 * most one entity, addressed by (row, col) with row 0 at the top. Entities are small integer
 * codes chosen by each task; EMPTY marks a free cell. Storage is one Int32Array so stepping
 * allocates nothing.
 */
export const EMPTY = -1;

/** Movement actions in the order lbforaging (and EPyMARL's gridworlds) use. */
export const enum Move {
  None = 0,
  North = 1,
  South = 2,
  West = 3,
  East = 4,
}

/** Row and column deltas indexed by `Move`. */
export const MOVE_DELTAS: ReadonlyArray<readonly [number, number]> = [
  [0, 0],
  [-1, 0],
  [1, 0],
  [0, -1],
  [0, 1],
];

export class Grid {
  readonly cells: Int32Array;

  constructor(
    readonly rows: number,
    readonly cols: number,
  ) {
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
      throw new Error(`Grid: size must be positive integers, got ${rows}x${cols}`);
    }
    this.cells = new Int32Array(rows * cols).fill(EMPTY);
  }

  clear(): void {
    this.cells.fill(EMPTY);
  }

  inBounds(row: number, col: number): boolean {
    return row >= 0 && row < this.rows && col >= 0 && col < this.cols;
  }

  get(row: number, col: number): number {
    return this.cells[row * this.cols + col];
  }

  set(row: number, col: number, entity: number): void {
    this.cells[row * this.cols + col] = entity;
  }

  isFree(row: number, col: number): boolean {
    return this.inBounds(row, col) && this.cells[row * this.cols + col] === EMPTY;
  }

  /** Moves whatever is at (fromRow, fromCol) to a free (toRow, toCol). */
  move(fromRow: number, fromCol: number, toRow: number, toCol: number): void {
    const entity = this.get(fromRow, fromCol);
    this.set(fromRow, fromCol, EMPTY);
    this.set(toRow, toCol, entity);
  }

  /** Text picture: one character per cell from `glyph(entity)`, '.' for empty cells. */
  render(glyph: (entity: number, row: number, col: number) => string): string {
    const lines: string[] = [];
    for (let r = 0; r < this.rows; r++) {
      let line = '';
      for (let c = 0; c < this.cols; c++) {
        const e = this.get(r, c);
        line += (e === EMPTY ? '.' : glyph(e, r, c)).padEnd(2, ' ');
      }
      lines.push(line.trimEnd());
    }
    return lines.join('\n');
  }
}

/** Chebyshev distance: the number of king moves between two cells. */
export function chebyshev(r1: number, c1: number, r2: number, c2: number): number {
  return Math.max(Math.abs(r1 - r2), Math.abs(c1 - c2));
}

/** Manhattan distance between two cells. */
export function manhattan(r1: number, c1: number, r2: number, c2: number): number {
  return Math.abs(r1 - r2) + Math.abs(c1 - c2);
}
