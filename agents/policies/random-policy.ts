import type { Policy, PolicyBatch } from './policy';
import { Rng, deriveSeed } from '../../runtime/core/rng';
import type { VectorLayout } from '../../envs/env-shape';

/**
 * Uniformly random legal actions: a uniform pick among unmasked discrete actions, or, for
 * continuous spaces, uniform within each dimension's Box bounds (in [-1, 1] where a bound is
 * infinite or unknown). Dead agents get 0. Each env slot draws from its own stream derived
 * from (seed, env index), so env e's actions do not depend on how many envs run beside it.
 */
export class RandomPolicy implements Policy {
  private readonly rngs: Rng[];
  /** Per agent slot and action dimension [A · actDim]: where continuous draws lie. */
  private readonly low: Float64Array;
  private readonly high: Float64Array;

  constructor(
    readonly layout: VectorLayout,
    seed: number | string,
  ) {
    this.rngs = Array.from({ length: layout.numEnvs }, (_, e) => new Rng(deriveSeed(seed, e)));
    const n = layout.numAgents * layout.actDim;
    this.low = new Float64Array(n).fill(-1);
    this.high = new Float64Array(n).fill(1);
    // Boxes narrower than [-1, 1] (point-robot's ±0.1) would refuse draws outside them; a side
    // without a finite bound keeps [-1, 1], so that such envs see what they saw before.
    const { actionLow, actionHigh } = layout;
    if (actionLow && actionHigh) {
      for (let i = 0; i < n; i++) {
        if (Number.isFinite(actionLow[i]) && Number.isFinite(actionHigh[i])) {
          this.low[i] = actionLow[i];
          this.high[i] = actionHigh[i];
        }
      }
    }
  }

  act(batch: PolicyBatch, actions: Float32Array): void {
    this.writeActions(batch.masks, batch.alive, actions);
  }

  /**
   * Buffer-level entry point for loops that drive a VectorEnv directly; `envStart`/`envEnd`
   * restrict it to one env group (double buffering).
   */
  writeActions(masks: Uint8Array, alive: Uint8Array, actions: Float32Array, envStart = 0, envEnd = this.layout.numEnvs): void {
    const { numAgents: A, actDim, numActions, discreteActions } = this.layout;
    for (let e = envStart; e < envEnd; e++) {
      const rng = this.rngs[e];
      for (let a = 0; a < A; a++) {
        const i = e * A + a;
        const at = i * actDim;
        if (!alive[i]) {
          actions.fill(0, at, at + actDim);
          continue;
        }
        if (!discreteActions) {
          for (let k = 0; k < actDim; k++) actions[at + k] = rng.uniform(this.low[a * actDim + k], this.high[a * actDim + k]);
          continue;
        }
        const m = i * numActions;
        let allowed = 0;
        for (let k = 0; k < numActions; k++) allowed += masks[m + k];
        // A live agent with no legal action is an env bug the checker reports; 0 keeps the rollout going.
        let pick = allowed > 0 ? rng.int(allowed) : -1;
        actions[at] = 0;
        for (let k = 0; k < numActions && pick >= 0; k++) {
          if (masks[m + k] && pick-- === 0) actions[at] = k;
        }
      }
    }
  }
}
