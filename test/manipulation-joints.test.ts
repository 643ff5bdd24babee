import { DEFAULT_GRIPPER_CONFIG, Gripper } from '../envs/manipulation/gripper';
import { createHinge, createSlide, createSpringSlide } from '../envs/manipulation/joints';
import { initPhysics, requirePhysics } from '../envs/manipulation/physics';
import { TabletopScene } from '../envs/manipulation/tabletop';
import type { Vec3 } from '../envs/manipulation/vec3';

beforeAll(async () => {
  await initPhysics();
});

/** A scene with a gripper starting at `handInit`; `drive` steps it with a constant action. */
function sceneWithHand(handInit: Vec3) {
  const scene = new TabletopScene(requirePhysics('joints-test'), 1);
  const gripper = new Gripper(scene, { ...DEFAULT_GRIPPER_CONFIG, handInit });
  const drive = (action: [number, number, number, number], steps: number) => {
    const a = Float32Array.from(action);
    for (let t = 0; t < steps; t++) {
      gripper.applyAction(a);
      scene.advance();
    }
  };
  return { scene, gripper, drive };
}

describe('joint helpers', () => {
  it('a hinge turns when the hand pushes the door, stops at its limit and reads its angle', () => {
    const { scene, drive } = sceneWithHand([0.15, 0.6, 0.1]);
    // A door panel hanging on a vertical hinge at x = 0, y = 0.7, reaching out along +x.
    const door = scene.createBody({ position: [0.1, 0.7, 0.1] });
    scene.addBoxCollider(door, [0.1, 0.01, 0.08], [0, 0, 0]);
    const hinge = createHinge(scene, { body: door, anchor: [0, 0.7, 0.1], axis: [0, 0, 1], limits: [0, Math.PI / 2], damping: 0.5 });
    expect(hinge.coordinate()).toBeCloseTo(0, 6);
    drive([0, 1, 0, 1], 30); // push the panel away (+y): it turns counter-clockwise about +z
    const angle = hinge.coordinate();
    expect(angle).toBeGreaterThan(0.3);
    expect(angle).toBeLessThanOrEqual(Math.PI / 2 + 0.05);
    scene.free();
  });

  it('a slide moves along its axis within its limits', () => {
    const { scene, drive } = sceneWithHand([0, 0.55, 0.05]);
    const drawer = scene.createBody({ position: [0, 0.7, 0.05] });
    scene.addBoxCollider(drawer, [0.08, 0.08, 0.04], [0, 0, 0]);
    const slide = createSlide(scene, { body: drawer, anchor: [0, 0.7, 0.05], axis: [0, 1, 0], limits: [0, 0.1], damping: 1 });
    drive([0, 1, 0, 1], 40); // push the drawer in (+y) as far as its limit
    expect(slide.coordinate()).toBeGreaterThan(0.08);
    expect(slide.coordinate()).toBeLessThanOrEqual(0.105);
    const p = drawer.translation();
    expect(Math.abs(p.x)).toBeLessThan(1e-3);
    scene.free();
  });

  it('a spring slide is pressed down by the hand and springs back when released', () => {
    const { scene, drive } = sceneWithHand([0, 0.7, 0.15]);
    const button = scene.createBody({ position: [0, 0.7, 0.08], linearDamping: 2 });
    scene.addBoxCollider(button, [0.02, 0.02, 0.01], [0, 0, 0]);
    const spring = createSpringSlide(scene, { body: button, anchor: [0, 0.7, 0.08], axis: [0, 0, 1], limits: [-0.04, 0], stiffness: 200, damping: 5 });
    drive([0, 0, 0, 1], 10); // let it settle under gravity against the spring
    expect(spring.coordinate()).toBeGreaterThan(-0.01);
    drive([0, 0, -1, 1], 15); // press
    expect(spring.coordinate()).toBeLessThan(-0.02);
    drive([0, 0, 1, 1], 40); // release
    expect(spring.coordinate()).toBeGreaterThan(-0.01);
    scene.free();
  });

  it('rejects a zero axis and bad limits', () => {
    const { scene } = sceneWithHand([0, 0.6, 0.2]);
    const body = scene.createBody({ position: [0, 0.8, 0.05] });
    scene.addBoxCollider(body, [0.02, 0.02, 0.02], [0, 0, 0]);
    expect(() => createSlide(scene, { body, anchor: [0, 0.8, 0.05], axis: [0, 0, 0] })).toThrow(/non-zero/);
    expect(() => createHinge(scene, { body, anchor: [0, 0.8, 0.05], axis: [0, 0, 1], limits: [1, 0] })).toThrow(/min ≤ max/);
    scene.free();
  });
});
