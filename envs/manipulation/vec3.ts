/** A point or direction in the tabletop frame (metres; x right, y away from the robot, z up). */
export type Vec3 = readonly [number, number, number];

/** An axis-aligned region, e.g. a task's range of object or goal positions. */
export interface Range3 {
  readonly low: Vec3;
  readonly high: Vec3;
}

export function distance3(ax: number, ay: number, az: number, bx: number, by: number, bz: number): number {
  const dx = ax - bx;
  const dy = ay - by;
  const dz = az - bz;
  return Math.sqrt(dx * dx + dy * dy + dz * dz);
}

/** Euclidean distance between two points stored as triples (arrays or typed arrays). */
export function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return distance3(a[0], a[1], a[2], b[0], b[1], b[2]);
}

export function clamp(x: number, low: number, high: number): number {
  return x < low ? low : x > high ? high : x;
}

/** `(x, y, z)` to the millimetre, from a triple or a Rapier vector. */
export function formatVec3(v: ArrayLike<number> | { x: number; y: number; z: number }): string {
  const [x, y, z] = 'x' in v ? [v.x, v.y, v.z] : [v[0], v[1], v[2]];
  return `(${x.toFixed(3)}, ${y.toFixed(3)}, ${z.toFixed(3)})`;
}
