/**
 * MRA on populations a run did or did not train on (issue 14): a finished `mra` run is rebuilt
 * from its checkpoint and played on `resource-N` for each N asked, (1) zero-shot with z drawn from
 * p(z | N) queried at the new N, (2) with each single z for every agent (the best-z sweep), (3)
 * after k first-order policy-gradient steps on the p(z | N) logits (our addition: the reference
 * has no adaptation code). Plus the run's own evidence that z matters: the I(a; z | o) estimate
 * and the game classifier's accuracy on each training population.
 */

/** One measurement: means over `episodes` finished episodes. */
export interface MraScore {
  /** Mean over episodes and agents of an agent's episode return. */
  returnPerAgent: number;
  /** Mean episode return summed over agents. */
  teamReturn: number;
  /** Resources occupied at the episode's last step (nearest agent closer than 0.1), mean over episodes. */
  occupied: number;
  /** Overlapping agent pairs summed over an episode's steps, mean over episodes. */
  collisions: number;
  episodes: number;
  /** Per resource (index 0 smallest … 5 largest): mean number of agents on it at the last step. */
  agentsPerResource: number[];
}

export interface MraAdaptationPoint {
  /** Policy-gradient steps taken (0 = zero-shot). */
  step: number;
  /** Adaptation episodes played so far (sweeps not counted). */
  episodesUsed: number;
  /** Env steps those episodes took (each step of one env counts once). */
  envStepsUsed: number;
  score: MraScore;
  /** softmax of the adapted logits. */
  latentProbs: number[];
}

export interface MraPopulationResult {
  numAgents: number;
  /** Whether the run trained on this population. */
  trained: boolean;
  /** p(z | N) from the task encoder at this N. */
  latentProbs: number[];
  zeroShot: MraScore;
  /** Every agent playing the same fixed z, for each z (`sweep_episodes` each). */
  perLatent: MraScore[];
  /** The z with the best team return in the sweep, re-evaluated on fresh episodes. */
  bestLatent: { z: number; score: MraScore; envStepsUsed: number };
  /** The curve over adaptation steps (step 0 is zero-shot). */
  adaptation: MraAdaptationPoint[];
}

export interface MraTrainingEvidence {
  task: string;
  numAgents: number;
  /** Contrastive I(a; z | o) estimate on a replay batch of the task (nats; ≈ 0 when π ignores z). */
  informationEstimate: number;
  /** Game classifier accuracy on a replay batch of the task (chance is 1 / number of training games). */
  classifierAccuracy: number;
}

export interface MraEvaluationSpec {
  /** Populations to play (held-out ones, and training ones if wanted). */
  populations: number[];
  /** Episodes per measurement. */
  episodes: number;
  numEnvs: number;
  seed: string;
  /** Episodes per z in the best-z sweep. */
  sweepEpisodes: number;
  adaptation: {
    /** k: policy-gradient steps. */
    steps: number;
    /** Episodes played per step. */
    episodesPerStep: number;
    lr: number;
    /** What adaptation may change: the p(z | N) logits, and optionally the policy's output layer. */
    params: Array<'latent_logits' | 'policy_head'>;
    /** Evaluate after every this many steps (and after the last). */
    evalEvery: number;
  };
}

export interface MraRunEvaluation {
  run: string;
  numLatents: number;
  trainedPopulations: number[];
  populations: MraPopulationResult[];
  /** Empty for a run with one latent (nothing to estimate). */
  training: MraTrainingEvidence[];
}

/** Rebuilds the `mra` run in `runDir` from its final checkpoint and evaluates it per `spec`. */
export async function evaluateMraRun(runDir: string, spec: MraEvaluationSpec, log: (line: string) => void = () => {}): Promise<MraRunEvaluation> {
  void runDir;
  void spec;
  void log;
  throw new Error('evaluateMraRun: not implemented yet');
}
