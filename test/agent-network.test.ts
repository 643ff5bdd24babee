import * as tf from '@tensorflow/tfjs';
import { AgentNetwork, type AgentNetworkSpec } from '../agents/networks/agent-network';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const spec = (over: Partial<AgentNetworkSpec> = {}): AgentNetworkSpec => ({
  inputDim: 5,
  hiddenDim: 8,
  outputDim: 3,
  recurrent: true,
  outputGain: 1,
  seed: 'net',
  role: 'test',
  ...over,
});

function stepByStep(net: AgentNetwork, xs: tf.Tensor3D, resets: tf.Tensor2D): Float32Array {
  return tf.tidy(() => {
    const [T, B] = xs.shape;
    let h = net.initialHidden(B);
    const outs: tf.Tensor2D[] = [];
    for (let t = 0; t < T; t++) {
      const x = tf.squeeze(tf.slice(xs, [t, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
      const keep = tf.reshape(tf.sub(1, tf.slice(resets, [t, 0], [1, -1])), [B, 1]);
      const r = net.step(x, tf.mul(h, keep) as tf.Tensor2D);
      outs.push(r.out);
      h = r.h;
    }
    return tf.stack(outs).dataSync() as Float32Array;
  });
}

describe('AgentNetwork', () => {
  test.each([
    [true, 1],
    [true, 2],
    [false, 2],
  ])('recurrent %s, copies %s: unroll equals stepping with resets', (recurrent, copies) => {
    const net = new AgentNetwork(spec({ recurrent, copies }));
    const xs = tf.randomNormal([4, 6, 5], 0, 1, 'float32', 1) as tf.Tensor3D;
    const resets = tf.tensor2d([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]]);
    const unrolled = net.unroll(xs, resets, net.initialHidden(6));
    const a = unrolled.dataSync();
    const b = stepByStep(net, xs, resets);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 5);
    tf.dispose([xs, resets, unrolled]);
    net.dispose();
  });

  test('without sharing each agent has its own weights: equal inputs differ by agent; one agent\'s loss trains only its copy', () => {
    const before = tf.memory().numTensors;
    const net = new AgentNetwork(spec({ recurrent: false, copies: 2 }));
    const shared = new AgentNetwork(spec({ recurrent: false }));
    // Two envs × two agents (agent-fastest rows), every row the same input.
    const x = tf.tidy(() => tf.tile(tf.randomNormal([1, 5], 0, 1, 'float32', 2), [4, 1])) as tf.Tensor2D;
    const out = (n: AgentNetwork) => tf.tidy(() => n.step(x, n.initialHidden(4)).out.arraySync() as number[][]);
    const own = out(net);
    expect(own[0]).toEqual(own[2]); // agent 0 in env 0 and env 1
    expect(own[1]).toEqual(own[3]);
    expect(own[0]).not.toEqual(own[1]);
    const same = out(shared);
    expect(same[0]).toEqual(same[1]);
    // Copy 0 starts as the shared network does.
    expect(own[0]).toEqual(same[0]);

    const [norm0, norm1, shape] = tf.tidy(() => {
      const agent0 = tf.tensor2d([[1], [0], [1], [0]]);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(net.step(x, net.initialHidden(4)).out, agent0)) as tf.Scalar, net.variables());
      const gradOfW = grads[net.namedVariables()['fc1/w'].name];
      const [g0, g1] = tf.unstack(gradOfW);
      return [tf.sum(tf.abs(g0)).dataSync()[0], tf.sum(tf.abs(g1)).dataSync()[0], gradOfW.shape];
    });
    expect(shape).toEqual([2, 5, 8]);
    expect(norm0).toBeGreaterThan(0);
    expect(norm1).toBe(0);
    x.dispose();
    net.dispose();
    shared.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('rows that do not split over the agents are refused by name', () => {
    const net = new AgentNetwork(spec({ recurrent: false, copies: 3, role: 'actor' }));
    const x = tf.zeros([4, 5]) as tf.Tensor2D;
    expect(() => net.step(x, net.initialHidden(4))).toThrow(/AgentNetwork 'actor': 4 rows do not split over 3 agents' weight sets/);
    x.dispose();
    net.dispose();
  });

  test('copyFrom with τ < 1 moves part of the way; τ = 1 copies', () => {
    const a = new AgentNetwork(spec({ seed: 'a' }));
    const b = new AgentNetwork(spec({ seed: 'b' }));
    const w = (n: AgentNetwork) => n.namedVariables()['fc1/w'].dataSync()[0];
    const [wa, wb] = [w(a), w(b)];
    a.copyFrom(b, 0.25);
    expect(w(a)).toBeCloseTo(0.75 * wa + 0.25 * wb, 6);
    a.copyFrom(b);
    expect(w(a)).toBe(wb);
    a.dispose();
    b.dispose();
  });
});
