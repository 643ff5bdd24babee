/** FLOPs of the matrix-product kernels tfjs really ran (forward and backward), from its profiler. */
export function profiledMatmulFlops(kernels: ReadonlyArray<{ name: string; inputShapes: number[][]; outputShapes: number[][] }>): number {
  let flops = 0;
  for (const k of kernels) {
    if (k.name !== 'BatchMatMul' && k.name !== '_FusedMatMul') continue;
    const out = k.outputShapes[0];
    const batch = out.length === 3 ? out[0] : 1;
    const [M, N] = out.slice(-2);
    // The shared dimension from a's size, whichever way a is transposed (a may be one matrix broadcast over the batch).
    const a = k.inputShapes[0];
    const inner = a.reduce((x, y) => x * y, 1) / (a.length === 3 ? a[0] : 1) / M;
    flops += 2 * batch * M * N * inner;
  }
  return flops;
}
