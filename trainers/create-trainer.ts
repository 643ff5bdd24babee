import type { RunConfig } from '../runtime/training/run-config';
import type { VectorLayout } from '../runtime/rollout/vector-layout';
import { Mappo } from './mappo';
import { QLearner } from './qmix';
import { Sac } from './sac';
import type { Trainer } from './trainer';

/** The trainer a run config names, for envs of `layout`. */
export function createTrainer(layout: VectorLayout, config: RunConfig): Trainer {
  const algo = config.algo;
  if (algo.name === 'sac' && layout.discreteActions) {
    throw new Error(`algo 'sac' needs continuous actions, but env '${config.env.id}' has discrete action spaces (use qmix, vdn, iql, mappo or ippo)`);
  }
  if (!layout.discreteActions && algo.name !== 'mappo' && algo.name !== 'ippo' && algo.name !== 'sac') {
    throw new Error(`algo '${algo.name}' needs discrete actions, but env '${config.env.id}' has continuous (Box) action spaces`);
  }
  switch (algo.name) {
    case 'mappo':
    case 'ippo':
      return new Mappo({ layout, config: algo, seed: config.run.seed });
    case 'qmix':
    case 'vdn':
    case 'iql':
      return new QLearner({ layout, config: algo, seed: config.run.seed });
    case 'sac':
      return new Sac({ layout, config: algo, seed: config.run.seed });
  }
}
