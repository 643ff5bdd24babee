/**
 * Fixed inputs for test/network-fastpaths.test.ts and its fixture generator: small sizes, smooth
 * deterministic values (no RNG, so the fixture does not depend on a generator's sequence).
 */
export interface FastPathInputs {
  agentSpec: { inputDim: number; hiddenDim: number; outputDim: number; outputGain: number; seed: string; role: string };
  xs: number[];
  xsShape: [number, number, number];
  resets: number[];
  resetsShape: [number, number];
  h0: number[];
  h0Shape: [number, number];
  agentLossWeights: number[];
  agentLossShape: [number, number, number];
  mlpSpec: { inputDim: number; hiddenDims: number[]; seed: string; role: string };
  mlpX: number[];
  mlpXShape: [number, number];
  mlpLossWeights: number[];
}

function values(count: number, phase: number, scale: number): number[] {
  return Array.from({ length: count }, (_, i) => scale * Math.sin(1.7 * i + phase) * Math.cos(0.37 * i * i + 2 * phase));
}

export function fixtureInputs(): FastPathInputs {
  const T = 6;
  const B = 4;
  const D = 7;
  const H = 8;
  const O = 5;
  const resetAt = new Set(['0,2', '2,1', '3,0', '4,3', '5,1']);
  const resets: number[] = [];
  for (let t = 0; t < T; t++) for (let b = 0; b < B; b++) resets.push(resetAt.has(`${t},${b}`) ? 1 : 0);
  return {
    agentSpec: { inputDim: D, hiddenDim: H, outputDim: O, outputGain: 0.5, seed: 'fast-paths', role: 'actor' },
    xs: values(T * B * D, 0.3, 1.5),
    xsShape: [T, B, D],
    resets,
    resetsShape: [T, B],
    h0: values(B * H, 1.1, 0.8),
    h0Shape: [B, H],
    agentLossWeights: values(T * B * O, 2.3, 1),
    agentLossShape: [T, B, O],
    mlpSpec: { inputDim: 6, hiddenDims: [16, 12], seed: 'fast-paths', role: 'critic' },
    mlpX: values(5 * 6, 0.7, 2),
    mlpXShape: [5, 6],
    mlpLossWeights: values(5 * 3, 1.9, 1),
  };
}
