import type { Rng } from '../../runtime/core/rng';

/*
 * Meta-DT's self-guided prompt: the k-step segment of a trajectory, starting at j, where the
 * context world model predicts worst (ContextWorldModel.predictionErrors), on the idea that
 * those steps carry the task information z missed. The paper's text and its code disagree
 * (/work/shared/papers-2.md §2.2), so all three readings are here:
 *
 *  - 'argmax-window': the j maximising Σ e[j .. j+k), the paper's "segment with the largest
 *    prediction error". Ties go to the earliest j.
 *  - 'proportional-window': j sampled with probability ∝ Σ e[j .. j+k), what the reference's
 *    training code does (`meta_dt/dataset.py`, `MetaDT_Dataset.parse_trajectory_segment`).
 *  - 'proportional-tail': j sampled ∝ Σ e[j .. T), what the reference's evaluation code does
 *    (`train_meta_dt.py`, its train- and test-task blocks slice errors[j : j + max_ep_len]). The
 *    tail sum shrinks as j grows, so this favours early segments.
 *
 * In all three the candidates are j ∈ [h, T − k], h the context horizon and k the prompt length,
 * as in the reference (`np.arange(context_horizon, max_ep_len - prompt_length + 1)`): the first
 * h steps are skipped, and the segment fits in the trajectory. Here T is the length of the
 * errors given, where the reference uses the env's max episode length.
 *
 * When every candidate scores 0 (a world model that predicts the trajectory exactly), the
 * proportional variants draw j uniformly and argmax takes the first candidate. The reference
 * would divide 0 by 0 there and numpy's sampler would raise.
 */

export type PromptSelectionVariant = 'argmax-window' | 'proportional-window' | 'proportional-tail';

export const PROMPT_SELECTION_VARIANTS: readonly PromptSelectionVariant[] = ['argmax-window', 'proportional-window', 'proportional-tail'];

export interface PromptWindow {
  /** h: the earliest start. */
  contextHorizon: number;
  /** k: the segment's length in steps. */
  promptLength: number;
}

/** Options of selectPromptStart: the proportional variants draw from `rng`. */
export type PromptSelectionOptions = PromptWindow &
  ({ variant: 'argmax-window' } | { variant: 'proportional-window' | 'proportional-tail'; rng: Rng });

/** Candidate starts j = firstStart … firstStart + scores.length − 1 and the score of each. */
export interface PromptStartScores {
  firstStart: number;
  scores: Float64Array;
}

/** Every candidate start's score under `variant` (window sum, or tail sum for 'proportional-tail'). */
export function promptStartScores(errors: ArrayLike<number>, window: PromptWindow, variant: PromptSelectionVariant): PromptStartScores {
  const { contextHorizon: h, promptLength: k } = window;
  if (!Number.isInteger(h) || h < 0) throw new Error(`prompt selection: contextHorizon must be an integer ≥ 0, got ${h}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`prompt selection: promptLength must be a positive integer, got ${k}`);
  if (!PROMPT_SELECTION_VARIANTS.includes(variant)) throw new Error(`prompt selection: unknown variant '${variant}' (one of ${PROMPT_SELECTION_VARIANTS.join(', ')})`);
  const T = errors.length;
  for (let t = 0; t < T; t++) {
    const e = errors[t];
    if (!Number.isFinite(e) || e < 0) throw new Error(`prompt selection: errors must be finite and ≥ 0, got ${e} at step ${t}`);
  }
  const count = T - k - h + 1;
  if (count < 1) throw new RangeError(`prompt selection: a trajectory of ${T} steps has no ${k}-step segment starting at or after step ${h}`);
  const scores = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const j = h + i;
    const end = variant === 'proportional-tail' ? T : j + k;
    let sum = 0;
    for (let t = j; t < end; t++) sum += errors[t];
    scores[i] = sum;
  }
  return { firstStart: h, scores };
}

/** The start step j of the prompt segment, chosen from per-step errors e[0 .. T) as `options.variant` says. */
export function selectPromptStart(errors: ArrayLike<number>, options: PromptSelectionOptions): number {
  const { firstStart, scores } = promptStartScores(errors, options, options.variant);
  if (options.variant === 'argmax-window') {
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
    return firstStart + best;
  }
  return firstStart + sampleProportional(scores, options.rng);
}

/** An index drawn with probability ∝ weight; uniform when all weights are 0. */
function sampleProportional(weights: Float64Array, rng: Rng): number {
  let total = 0;
  for (const w of weights) total += w;
  if (!(total > 0)) return rng.int(weights.length);
  const u = rng.next() * total;
  let cumulative = 0;
  let lastPositive = 0;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] <= 0) continue;
    cumulative += weights[i];
    lastPositive = i;
    if (u < cumulative) return i;
  }
  // Rounding can leave u just above the running sum; the draw belongs to the last positive weight.
  return lastPositive;
}
