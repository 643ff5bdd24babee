import { Box, DictSpace, Discrete, MultiDiscrete, TupleSpace, flatten, flattenSpace, spaceFromJSON, unflatten } from '../envs/spaces';
import { Rng } from '../runtime/core/rng';

describe('spaces', () => {
  const rng = new Rng(1);

  test('Discrete samples, contains and respects masks', () => {
    const d = new Discrete(5);
    for (let i = 0; i < 50; i++) expect(d.contains(d.sample(rng))).toBe(true);
    expect(d.contains(5)).toBe(false);
    expect(d.contains(1.5)).toBe(false);
    expect(d.contains('1')).toBe(false);
    const mask = Uint8Array.from([0, 0, 1, 0, 1]);
    for (let i = 0; i < 50; i++) expect([2, 4]).toContain(d.sample(rng, mask));
    expect(() => d.sample(rng, new Uint8Array(5))).toThrow(/allows no action/);
  });

  test('Box checks shape, bounds and NaN', () => {
    const b = new Box(-1, 1, [2, 3]);
    expect(b.flatDim).toBe(6);
    expect(b.contains(b.sample(rng))).toBe(true);
    expect(b.contains(new Float32Array(5))).toBe(false);
    expect(b.contains(Float32Array.from([0, 0, 0, 0, 0, 2]))).toBe(false);
    expect(b.contains(Float32Array.from([0, 0, 0, 0, 0, NaN]))).toBe(false);
    expect(b.contains([0, 0, 0, 0, 0, 0])).toBe(false);
    expect(() => new Box(2, 1, [1])).toThrow(/exceeds/);
  });

  test('MultiDiscrete, Dict and Tuple round-trip through flatten', () => {
    const space = new DictSpace({
      pos: new Box(0, 7, [2]),
      kind: new Discrete(3),
      dirs: new MultiDiscrete([2, 4]),
      pair: new TupleSpace([new Discrete(2), new Box(-1, 1, [1])]),
    });
    expect(space.flatDim).toBe(2 + 1 + 2 + 2);
    for (let i = 0; i < 20; i++) {
      const x = space.sample(rng);
      expect(space.contains(x)).toBe(true);
      const flat = flatten(space, x);
      expect(flat.length).toBe(space.flatDim);
      expect(space.contains(unflatten(space, flat))).toBe(true);
      expect(flattenSpace(space).contains(flat)).toBe(true);
    }
    expect(space.contains({ pos: new Float32Array(2), kind: 0 })).toBe(false);
    const back = spaceFromJSON(space.toJSON());
    expect(back.toJSON()).toEqual(space.toJSON());
  });

  test('same seed gives the same samples', () => {
    const a = new Rng('s');
    const b = new Rng('s');
    const box = new Box(0, 1, [4]);
    expect(Array.from(box.sample(a))).toEqual(Array.from(box.sample(b)));
    const restored = Rng.fromState(a.state());
    expect(restored.next()).toBe(a.next());
  });
});
