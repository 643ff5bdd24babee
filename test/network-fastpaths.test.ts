import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { AgentNetwork } from '../agents/networks/agent-network';
import { setFusedGruKernels } from '../agents/networks/gru-kernels';
import { Mlp } from '../agents/networks/mlp';
import { selectBackend } from '../runtime/core/tf-backend';
import { fixtureInputs } from './network-fastpaths-inputs';

/*
 * The fused dense op and the one-op GRU unroll (custom gradients) against the numbers of the
 * code before them: test/fixtures/network-fastpaths/old-code.json, made by generate.js there at
 * 35d2519 with autodiff through matMul/add/relu and a step-by-step GRU.
 *
 * Tolerance 1e-5 abs + 1e-4 rel: float32 has a relative epsilon of 1.2e-7; the new backward sums
 * the same products in another order (dW_h as one matmul over all steps instead of T per-step
 * matmuls added up, bias gradients as one sum), and each of the ≤ 6 BPTT steps and 24-wide
 * reductions can add a few ulps, so differences of ~1e-6 on O(1) values are expected. Any wrong
 * term (a missing gate derivative, a reset not applied, a transposed weight) changes gradients by
 * O(0.01–1), far above the bound.
 */

interface AgentCase {
  recurrent: boolean;
  copies: number;
  out: number[];
  grads: Record<string, number[]>;
}
interface MlpCase {
  outputDim: number;
  out: number[];
  grads: Record<string, number[]>;
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../../test/fixtures/network-fastpaths/old-code.json'), 'utf8')) as {
  agentNetworks: AgentCase[];
  mlps: MlpCase[];
};
const inputs = fixtureInputs();

function expectClose(actual: ArrayLike<number>, expected: number[], what: string): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (1e-5 + 1e-4 * Math.abs(expected[i]));
    if (excess > worst) {
      worst = excess;
      worstAt = i;
    }
  }
  if (worstAt >= 0) throw new Error(`${what}: element ${worstAt} is ${actual[worstAt]}, old code gave ${expected[worstAt]}`);
}

/** Outputs and gradients of the fixture's loss, all read back, plus the live tensor count after. */
function agentRun(net: AgentNetwork, h0: tf.Variable<tf.Rank.R2>): { out: Float32Array; grads: Record<string, Float32Array> } {
  const xs = tf.tensor3d(inputs.xs, inputs.xsShape);
  const resets = tf.tensor2d(inputs.resets, inputs.resetsShape);
  const lossWeights = tf.tensor3d(inputs.agentLossWeights, inputs.agentLossShape);
  const out = net.unroll(xs, resets, h0);
  const named = net.namedVariables();
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(net.unroll(xs, resets, h0), lossWeights)) as tf.Scalar, [...Object.values(named), h0]);
  const result = { out: out.dataSync() as Float32Array, grads: {} as Record<string, Float32Array> };
  for (const [name, v] of Object.entries(named)) result.grads[name] = grads[v.name].dataSync() as Float32Array;
  if (net.recurrent) result.grads.h0 = grads[h0.name].dataSync() as Float32Array;
  tf.dispose([xs, resets, lossWeights, out, value, ...Object.values(grads)]);
  return result;
}

// wasm and cpu run the GRU gates as one hand-written kernel each way; other backends (tfjs-node)
// compose tfjs ops, checked here on wasm with the kernels turned off.
describe.each([
  ['wasm', true],
  ['wasm', false],
  ['cpu', true],
] as const)('on %s, fused GRU kernels %s', (backend, fusedKernels) => {
  beforeAll(async () => {
    await selectBackend(backend);
    setFusedGruKernels(fusedKernels);
  });
  afterAll(() => setFusedGruKernels(true));

describe('AgentNetwork fast paths equal the old code', () => {
  test.each(fixture.agentNetworks.map((c) => [c.recurrent, c.copies, c] as const))('recurrent %s, copies %s', (recurrent, copies, expected) => {
    const net = new AgentNetwork({ ...inputs.agentSpec, recurrent, copies });
    const h0 = tf.variable(tf.tensor2d(inputs.h0, inputs.h0Shape)) as tf.Variable<tf.Rank.R2>;
    agentRun(net, h0); // warm-up: kernels' one-off allocations are not leaks
    const before = tf.memory().numTensors;
    const first = agentRun(net, h0);
    expect(tf.memory().numTensors).toBe(before);
    expectClose(first.out, expected.out, 'unroll output');
    expect(Object.keys(first.grads).sort()).toEqual(Object.keys(expected.grads).sort());
    for (const [name, g] of Object.entries(expected.grads)) expectClose(first.grads[name], g, `gradient of ${name}`);
    const again = agentRun(net, h0);
    expect(Array.from(again.out)).toEqual(Array.from(first.out));
    for (const name of Object.keys(first.grads)) expect(Array.from(again.grads[name])).toEqual(Array.from(first.grads[name]));
    h0.dispose();
    net.dispose();
  });

  test.each([
    [true, 1],
    [true, 2],
    [false, 2],
  ])('recurrent %s, copies %s: step t reproduces unroll step t', (recurrent, copies) => {
    const net = new AgentNetwork({ ...inputs.agentSpec, recurrent, copies });
    const [T, B, D] = inputs.xsShape;
    const before = tf.memory().numTensors;
    const [unrolled, stepped] = tf.tidy(() => {
      const xs = tf.tensor3d(inputs.xs, inputs.xsShape);
      const resets = tf.tensor2d(inputs.resets, inputs.resetsShape);
      let h = tf.tensor2d(inputs.h0, inputs.h0Shape);
      const u = net.unroll(xs, resets, h).dataSync();
      const outs: tf.Tensor2D[] = [];
      for (let t = 0; t < T; t++) {
        const keep = tf.reshape(tf.sub(1, tf.slice(resets, [t, 0], [1, B])), [B, 1]);
        const r = net.step(tf.reshape(tf.slice(xs, [t, 0, 0], [1, B, D]), [B, D]), tf.mul(h, keep) as tf.Tensor2D);
        outs.push(r.out);
        h = r.h;
      }
      return [u, tf.stack(outs).dataSync()];
    });
    expect(tf.memory().numTensors).toBe(before);
    // Same kernels on the same rows, so the same numbers up to the batched-vs-per-step input matmul.
    for (let i = 0; i < unrolled.length; i++) expect(Math.abs(unrolled[i] - stepped[i])).toBeLessThan(1e-6);
    net.dispose();
  });
});

describe('Mlp fast path equals the old code', () => {
  test.each(fixture.mlps.map((c) => [c.outputDim, c] as const))('output width %s', (outputDim, expected) => {
    const mlp = new Mlp({ ...inputs.mlpSpec, outputDim });
    const x = tf.variable(tf.tensor2d(inputs.mlpX, inputs.mlpXShape));
    const lw = tf.tensor2d(inputs.mlpLossWeights.slice(0, inputs.mlpXShape[0] * outputDim), [inputs.mlpXShape[0], outputDim]);
    const run = () => {
      const out = mlp.forward(x);
      const named = mlp.namedVariables();
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(mlp.forward(x), lw)) as tf.Scalar, [...Object.values(named), x]);
      const r = { out: Array.from(out.dataSync()), grads: { x: Array.from(grads[x.name].dataSync()) } as Record<string, number[]> };
      for (const [name, v] of Object.entries(named)) r.grads[name] = Array.from(grads[v.name].dataSync());
      tf.dispose([out, value, ...Object.values(grads)]);
      return r;
    };
    run();
    const before = tf.memory().numTensors;
    const first = run();
    expect(tf.memory().numTensors).toBe(before);
    expectClose(first.out, expected.out, 'forward output');
    expect(Object.keys(first.grads).sort()).toEqual(Object.keys(expected.grads).sort());
    for (const [name, g] of Object.entries(expected.grads)) expectClose(first.grads[name], g, `gradient of ${name}`);
    expect(run()).toEqual(first);
    tf.dispose([x, lw]);
    mlp.dispose();
  });
});
});
