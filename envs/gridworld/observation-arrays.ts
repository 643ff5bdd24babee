/** V8 keeps typed arrays of up to this many bytes on its heap; larger ones get separately allocated memory. */
const V8_ON_HEAP_TYPED_ARRAY_BYTES = 64;

/**
 * Fresh arrays for one step's observations (callers may keep them, so they are never reused).
 * A separately allocated typed array costs more than the rest of a small env's step, so small
 * observations get their own on-heap arrays and larger ones are views into one buffer per step.
 * Copy an observation before transferring its `.buffer` to another thread: it may hold others'.
 */
export function allocateObservationArrays(count: number, size: number): Float32Array[] {
  const out: Float32Array[] = new Array<Float32Array>(count);
  if (size * 4 <= V8_ON_HEAP_TYPED_ARRAY_BYTES) {
    for (let i = 0; i < count; i++) out[i] = new Float32Array(size);
    return out;
  }
  const block = new Float32Array(count * size);
  for (let i = 0; i < count; i++) out[i] = block.subarray(i * size, (i + 1) * size);
  return out;
}
