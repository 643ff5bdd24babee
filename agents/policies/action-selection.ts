import type { Rng } from '../../runtime/core/rng';

/*
 * How discrete actions are picked from a network's per-action outputs (logits or Q-values) over
 * the legal actions of a mask. Row i of `values`/`masks` holds K numbers; every draw comes
 * from the caller's `Rng`, in row order, so acting is reproducible.
 */

/**
 * Draws row `i`'s action from the softmax of its logits over legal actions only (one uniform
 * number from `rng`); undefined when the row has no legal action.
 */
export function sampleLegal(logits: Float32Array, masks: Uint8Array, i: number, K: number, rng: Rng): { action: number; logp: number } | undefined {
  let max = -Infinity;
  for (let k = 0; k < K; k++) if (masks[i * K + k]) max = Math.max(max, logits[i * K + k]);
  if (max === -Infinity) return undefined;
  let z = 0;
  for (let k = 0; k < K; k++) if (masks[i * K + k]) z += Math.exp(logits[i * K + k] - max);
  let u = rng.next() * z;
  let pick = -1;
  for (let k = 0; k < K; k++) {
    if (!masks[i * K + k]) continue;
    pick = k;
    u -= Math.exp(logits[i * K + k] - max);
    if (u < 0) break;
  }
  return { action: pick, logp: logits[i * K + pick] - max - Math.log(z) };
}

/** Row `i`'s legal action with the largest value (ties to the lowest index); −1 when none is legal. */
export function greedyLegal(values: Float32Array, masks: Uint8Array, i: number, K: number): number {
  let best = -1;
  for (let k = 0; k < K; k++) {
    if (masks[i * K + k] && (best < 0 || values[i * K + k] > values[i * K + best])) best = k;
  }
  return best;
}

/**
 * ε-greedy over row `i`'s legal actions: with probability ε a uniform legal action, else the
 * greedy one. Draws one number (two when exploring); none and −1 when no action is legal.
 */
export function epsilonGreedyLegal(values: Float32Array, masks: Uint8Array, i: number, K: number, epsilon: number, rng: Rng): number {
  let legal = 0;
  for (let k = 0; k < K; k++) legal += masks[i * K + k];
  if (legal === 0) return -1;
  if (rng.next() < epsilon) {
    let r = rng.int(legal);
    for (let k = 0; k < K; k++) if (masks[i * K + k] && r-- === 0) return k;
  }
  return greedyLegal(values, masks, i, K);
}
