import type { Collider } from '@dimforge/rapier3d-deterministic-compat';
import { TABLE, type TabletopScene } from './tabletop';
import type { Vec3 } from './vec3';

/**
 * Draws a scene as SVG: a top-down view (x right, y up the page) and a side view (y right, z up),
 * every collider as the bounding rectangle of its projection, coloured by body type (table grey,
 * hands blue, held or dynamic objects orange, fixtures brown), the goal as a green ring.
 * Generic over colliders, so new tasks' objects appear without any drawing code.
 */

export interface SvgOptions {
  title?: string;
  /** Pixels per metre (default 400). */
  scale?: number;
}

const MARGIN = 10;
const SIDE_Z_MAX = 0.6;
const SIDE_Z_MIN = -0.05;

export function renderManipulationSvg(scene: TabletopScene, goal: Vec3, options: SvgOptions = {}): string {
  const s = options.scale ?? 400;
  const widthTop = (TABLE.xMax - TABLE.xMin + 0.1) * s;
  const heightTop = (TABLE.yMax - TABLE.yMin + 0.1) * s;
  const widthSide = (TABLE.yMax - TABLE.yMin + 0.1) * s;
  const heightSide = (SIDE_Z_MAX - SIDE_Z_MIN) * s;
  const titleHeight = options.title ? 20 : 0;
  const width = widthTop + widthSide + 3 * MARGIN;
  const height = Math.max(heightTop, heightSide) + 2 * MARGIN + titleHeight;
  // Top view: world (x, y) → page; side view: world (y, z) → page.
  const topX = (x: number) => MARGIN + (x - TABLE.xMin + 0.05) * s;
  const topY = (y: number) => titleHeight + MARGIN + (TABLE.yMax + 0.05 - y) * s;
  const sideX = (y: number) => 2 * MARGIN + widthTop + (y - TABLE.yMin + 0.05) * s;
  const sideY = (z: number) => titleHeight + MARGIN + (SIDE_Z_MAX - z) * s;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${r(width)}" height="${r(height)}" viewBox="0 0 ${r(width)} ${r(height)}">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  if (options.title) parts.push(`<text x="${MARGIN}" y="15" font-family="monospace" font-size="13">${escapeXml(options.title)}</text>`);
  parts.push(`<text x="${r(topX(TABLE.xMin))}" y="${r(titleHeight + MARGIN - 2)}" font-family="monospace" font-size="10">top (x→, y↑)</text>`);
  parts.push(`<text x="${r(sideX(TABLE.yMin))}" y="${r(titleHeight + MARGIN - 2)}" font-family="monospace" font-size="10">side (y→, z↑)</text>`);
  const drawn: Array<{ z: number; top: string; side: string }> = [];
  scene.world.forEachCollider((collider) => {
    const box = projectedBounds(scene, collider);
    const color = colorOf(scene, collider);
    const top = `<rect x="${r(topX(box.min[0]))}" y="${r(topY(box.max[1]))}" width="${r((box.max[0] - box.min[0]) * s)}" height="${r((box.max[1] - box.min[1]) * s)}" fill="${color}" fill-opacity="0.8" stroke="black" stroke-width="0.5"/>`;
    const side = `<rect x="${r(sideX(box.min[1]))}" y="${r(sideY(box.max[2]))}" width="${r((box.max[1] - box.min[1]) * s)}" height="${r((box.max[2] - box.min[2]) * s)}" fill="${color}" fill-opacity="0.8" stroke="black" stroke-width="0.5"/>`;
    drawn.push({ z: box.max[2], top, side });
  });
  // Higher things are drawn last in the top view, so the hand covers what it is above.
  drawn.sort((a, b) => a.z - b.z);
  for (const d of drawn) parts.push(d.top, d.side);
  parts.push(`<circle cx="${r(topX(goal[0]))}" cy="${r(topY(goal[1]))}" r="${r(0.02 * s)}" fill="none" stroke="green" stroke-width="2"/>`);
  parts.push(`<circle cx="${r(sideX(goal[1]))}" cy="${r(sideY(goal[2]))}" r="${r(0.02 * s)}" fill="none" stroke="green" stroke-width="2"/>`);
  parts.push('</svg>');
  return parts.join('\n');
}

function colorOf(scene: TabletopScene, collider: Collider): string {
  const body = collider.parent();
  if (!body) return '#999';
  if (body.handle === scene.table.handle) return '#ccc';
  if (scene.heldBodies.has(body.handle)) return '#f80';
  if (scene.handBodies.has(body.handle) || body.isKinematic()) return '#38c';
  if (body.isFixed()) return '#a75';
  return '#f80';
}

/** The axis-aligned bounds of a collider in world space (from its shape's corners). */
function projectedBounds(scene: TabletopScene, collider: Collider): { min: number[]; max: number[] } {
  const t = collider.translation();
  const q = collider.rotation();
  const cuboid = collider.halfExtents();
  const R = scene.rapier;
  const type = collider.shapeType();
  const round = type === R.ShapeType.Cylinder || type === R.ShapeType.Cone || type === R.ShapeType.Capsule || type === R.ShapeType.RoundCylinder;
  // Round shapes stand along their local y (Rapier's convention); a ball is its radius all round.
  const half: [number, number, number] = cuboid
    ? [cuboid.x, cuboid.y, cuboid.z]
    : round
      ? [collider.radius(), collider.halfHeight(), collider.radius()]
      : [collider.radius() || 0.01, collider.radius() || 0.01, collider.radius() || 0.01];
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let c = 0; c < 8; c++) {
    const local = [c & 1 ? half[0] : -half[0], c & 2 ? half[1] : -half[1], c & 4 ? half[2] : -half[2]];
    const w = rotate(q, local);
    const p = [t.x + w[0], t.y + w[1], t.z + w[2]];
    for (let i = 0; i < 3; i++) {
      if (p[i] < min[i]) min[i] = p[i];
      if (p[i] > max[i]) max[i] = p[i];
    }
  }
  return { min, max };
}

function rotate(q: { x: number; y: number; z: number; w: number }, v: number[]): number[] {
  // v' = v + 2w(u × v) + 2u × (u × v), u = q.xyz
  const [x, y, z] = v;
  const cx = q.y * z - q.z * y;
  const cy = q.z * x - q.x * z;
  const cz = q.x * y - q.y * x;
  return [x + 2 * (q.w * cx + q.y * cz - q.z * cy), y + 2 * (q.w * cy + q.z * cx - q.x * cz), z + 2 * (q.w * cz + q.x * cy - q.y * cx)];
}

function r(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
