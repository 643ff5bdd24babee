import { TABLE, type TabletopScene } from './tabletop';

/**
 * Cuts a rectangular pocket into the table top of a scene (sweep-into's hole, sweep's gutter):
 * the solid top is replaced by four slabs around the opening and a floor `depth` below the
 * surface, so objects really fall in (and stay inside the observation bounds). Walls below the
 * slabs close the pocket when it is deeper than the table top is thick.
 */
export interface TablePocket {
  readonly xMin: number;
  readonly xMax: number;
  readonly yMin: number;
  readonly yMax: number;
  /** How far below the table surface the pocket's floor lies (m). */
  readonly depth: number;
}

const FLOOR_THICKNESS = 0.02;
const WALL_THICKNESS = 0.01;

export function cutTablePocket(scene: TabletopScene, pocket: TablePocket): void {
  const t = TABLE;
  const { xMin, xMax, yMin, yMax, depth } = pocket;
  if (!(t.xMin < xMin && xMin < xMax && xMax < t.xMax && t.yMin < yMin && yMin < yMax && yMax < t.yMax)) {
    throw new Error(`cutTablePocket: the pocket [${xMin}, ${xMax}] × [${yMin}, ${yMax}] must lie strictly inside the table top`);
  }
  if (!(depth > 0 && depth <= 0.1)) throw new Error(`cutTablePocket: depth must lie in (0, 0.1] m, got ${depth}`);
  const table = scene.table;
  const top = findTableTop(scene);
  scene.world.removeCollider(top, false);
  const origin = table.translation();
  const h = t.thickness / 2;
  // Slabs in the table body's frame: a full-width strip in front of and behind the pocket, and two beside it.
  const slab = (x0: number, x1: number, y0: number, y1: number) => {
    if (x1 - x0 <= 0 || y1 - y0 <= 0) return;
    scene.addBoxCollider(table, [(x1 - x0) / 2, (y1 - y0) / 2, h], [(x0 + x1) / 2 - origin.x, (y0 + y1) / 2 - origin.y, -h]);
  };
  slab(t.xMin, t.xMax, t.yMin, yMin);
  slab(t.xMin, t.xMax, yMax, t.yMax);
  slab(t.xMin, xMin, yMin, yMax);
  slab(xMax, t.xMax, yMin, yMax);
  const cx = (xMin + xMax) / 2 - origin.x;
  const cy = (yMin + yMax) / 2 - origin.y;
  const hx = (xMax - xMin) / 2;
  const hy = (yMax - yMin) / 2;
  scene.addBoxCollider(table, [hx + WALL_THICKNESS, hy + WALL_THICKNESS, FLOOR_THICKNESS / 2], [cx, cy, -depth - FLOOR_THICKNESS / 2]);
  if (depth > t.thickness) {
    const wallHalfZ = (depth - t.thickness) / 2;
    const wallZ = -t.thickness - wallHalfZ;
    const w = WALL_THICKNESS / 2;
    scene.addBoxCollider(table, [hx + WALL_THICKNESS, w, wallHalfZ], [cx, cy - hy - w, wallZ]);
    scene.addBoxCollider(table, [hx + WALL_THICKNESS, w, wallHalfZ], [cx, cy + hy + w, wallZ]);
    scene.addBoxCollider(table, [w, hy, wallHalfZ], [cx - hx - w, cy, wallZ]);
    scene.addBoxCollider(table, [w, hy, wallHalfZ], [cx + hx + w, cy, wallZ]);
  }
}

/** The table's top collider: the one whose upper face is the surface z = 0 and spans the whole table. */
function findTableTop(scene: TabletopScene) {
  const table = scene.table;
  for (let i = 0; i < table.numColliders(); i++) {
    const c = table.collider(i);
    const half = c.halfExtents();
    const z = c.translation().z;
    if (half && Math.abs(z + TABLE.thickness / 2) < 1e-5 && Math.abs(2 * half.x - (TABLE.xMax - TABLE.xMin)) < 1e-5) return c;
  }
  throw new Error('cutTablePocket: the table top is missing (was a pocket cut already?)');
}
