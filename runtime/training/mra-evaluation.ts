import YAML from 'yaml';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { type EnvShape, envShape } from '../../envs/env-shape';
import type { ParallelEnv } from '../../envs/parallel-env';
import { RESOURCE_AGENT_SIZE, RESOURCE_COUNT } from '../../envs/navigation/resource';
import { makeEnv } from '../../envs/registry';
import { type AdaptationEpisode, MraLearner, type MraPolicy, softmax } from '../../trainers/mra';
import { locateCheckpoint } from '../core/checkpoint-locator';
import { deriveSeed } from '../core/rng';
import { type BackendPreference, selectBackend } from '../core/tf-backend';
import { parseSavedRunConfig } from './config-loader';
import { rebuildLearner } from './learner-checkpoint';

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

/** The env of population N (the game `resource-N`). */
export function resourceEnvId(numAgents: number): string {
  return `resource-${numAgents}`;
}

/** One played episode of a population. */
export interface PlayedEpisode extends AdaptationEpisode {
  agentReturns: Float64Array;
  occupied: number;
  collisions: number;
  /** [6]: agents on each resource at the last step. */
  agentsPerResource: number[];
}

/**
 * Plays `episodes` episodes of `envId` with `policy` on `policy.numEnvs` envs in this thread,
 * episode k reset with seed (seed, k), so two policies played with the same seed meet the same
 * starts. With `record`, episodes keep their observations and actions (for adapting the head).
 */
export async function playEpisodes(envId: string, policy: MraPolicy, episodes: number, seed: string, record = false): Promise<PlayedEpisode[]> {
  registerBuiltinEnvs();
  const E = policy.numEnvs;
  const envs: ParallelEnv<Float32Array, number>[] = Array.from({ length: E }, () => makeEnv<Float32Array, number>(envId));
  const shape = envShape(envs[0]);
  const { numAgents: A, obsDim: D, numActions: U, agentIds } = shape;
  if (A !== policy.shape.numAgents || D !== policy.shape.obsDim) throw new Error(`playEpisodes: the policy was built for ${policy.shape.numAgents} agents, ${envId} has ${A}`);
  const layout = { ...shape, numEnvs: E };
  const out: PlayedEpisode[] = [];
  const obs = new Float32Array(E * A * D);
  const masks = new Uint8Array(E * A * U).fill(1);
  const alive = new Uint8Array(E * A);
  const episodeStart = new Uint8Array(E);
  const actions = new Float32Array(E * A);
  const context = { taskIndex: new Int32Array(E), teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0), latentDim: 0 };
  try {
    for (let first = 0; first < episodes; first += E) {
      const count = Math.min(E, episodes - first);
      const running = new Uint8Array(E);
      const played: PlayedEpisode[] = [];
      const recorded: { obs: number[][]; actions: number[][] } [] = [];
      for (let e = 0; e < E; e++) {
        const { observations } = envs[e].reset({ seed: deriveSeed(seed, 'episode', first + e) });
        agentIds.forEach((a, i) => obs.set(observations[a], (e * A + i) * D));
        running[e] = e < count ? 1 : 0;
        episodeStart[e] = 1;
        played.push({ latents: new Int32Array(A), teamReturn: 0, agentReturns: new Float64Array(A), occupied: 0, collisions: 0, agentsPerResource: [], steps: 0 });
        recorded.push({ obs: [], actions: [] });
      }
      alive.fill(1);
      let steps = 0;
      while (running.some((r) => r === 1)) {
        actions.fill(0);
        await policy.act({ obs, state: new Float32Array(0), masks, alive, episodeStart, layout, context }, actions);
        if (steps === 0) for (let e = 0; e < E; e++) played[e].latents.set(policy.latents.subarray(e * A, (e + 1) * A));
        episodeStart.fill(0);
        for (let e = 0; e < E; e++) {
          if (!running[e]) continue;
          const ep = played[e];
          if (record) {
            recorded[e].obs.push(Array.from(obs.subarray(e * A * D, (e + 1) * A * D)));
            recorded[e].actions.push(Array.from(actions.subarray(e * A, (e + 1) * A)));
          }
          const act: Record<string, number> = {};
          agentIds.forEach((a, i) => (act[a] = actions[e * A + i]));
          const result = envs[e].step(act);
          let done = false;
          agentIds.forEach((a, i) => {
            const r = result.rewards[a] ?? 0;
            ep.agentReturns[i] += r;
            ep.teamReturn += r;
            if (result.observations[a]) obs.set(result.observations[a], (e * A + i) * D);
            if (result.terminations[a] || result.truncations[a]) done = true;
          });
          const info = result.infos[agentIds[0]] ?? {};
          ep.collisions += typeof info.collisions === 'number' ? info.collisions : 0;
          ep.steps = (ep.steps ?? 0) + 1;
          if (done) {
            running[e] = 0;
            ep.occupied = typeof info.occupied === 'number' ? info.occupied : NaN;
            ep.agentsPerResource = agentsOnResources(obs.subarray(e * A * D, (e + 1) * A * D), A, D);
          }
        }
        steps++;
      }
      for (let e = 0; e < count; e++) {
        const ep = played[e];
        if (record) {
          ep.obs = Float32Array.from(recorded[e].obs.flat());
          ep.actions = Int32Array.from(recorded[e].actions.flat());
        }
        out.push(ep);
      }
    }
  } finally {
    for (const env of envs) env.close?.();
  }
  return out;
}

/** Agents on each resource, read from the agents' self blocks (vel 2, pos 2, then per resource rel pos 2 and size 1). */
function agentsOnResources(obs: Float32Array, A: number, D: number): number[] {
  const counts = new Array<number>(RESOURCE_COUNT).fill(0);
  for (let i = 0; i < A; i++) {
    for (let l = 0; l < RESOURCE_COUNT; l++) {
      const at = i * D + 4 + 3 * l;
      if (Math.hypot(obs[at], obs[at + 1]) < RESOURCE_AGENT_SIZE + obs[at + 2]) counts[l]++;
    }
  }
  return counts;
}


/** Means of played episodes. */
export function scoreOf(episodes: readonly PlayedEpisode[]): MraScore {
  const n = episodes.length;
  const mean = (f: (e: PlayedEpisode) => number) => episodes.reduce((s, e) => s + f(e), 0) / n;
  const A = episodes[0]?.agentReturns.length ?? 1;
  return {
    returnPerAgent: mean((e) => e.teamReturn / A),
    teamReturn: mean((e) => e.teamReturn),
    occupied: mean((e) => e.occupied),
    collisions: mean((e) => e.collisions),
    episodes: n,
    agentsPerResource: Array.from({ length: RESOURCE_COUNT }, (_, l) => mean((e) => e.agentsPerResource[l] ?? 0)),
  };
}

/** The shape of `resource-N`. */
export function populationShape(numAgents: number): EnvShape {
  registerBuiltinEnvs();
  const env = makeEnv(resourceEnvId(numAgents));
  try {
    return envShape(env);
  } finally {
    env.close?.();
  }
}

/** Evaluates a built learner on the populations of `spec` (see `evaluateMraRun`). */
export async function evaluateMraLearner(learner: MraLearner, spec: MraEvaluationSpec, log: (line: string) => void = () => {}): Promise<Omit<MraRunEvaluation, 'run'>> {
  const L = learner.config.num_latents;
  const trained = learner.tasks.map((t) => t.shape.numAgents);
  const training: MraTrainingEvidence[] = [];
  for (const t of learner.tasks) {
    const evidence = learner.latentEvidence(t.key);
    if (evidence) training.push({ task: t.key, numAgents: t.shape.numAgents, ...evidence });
  }
  const populations: MraPopulationResult[] = [];
  for (const N of spec.populations) {
    const envId = resourceEnvId(N);
    const shape = populationShape(N);
    const T = shape.maxEpisodeSteps;
    const evalSeed = deriveSeed(spec.seed, 'evaluate', N);
    const play = (policy: MraPolicy, episodes: number, seed: string, record = false) => playEpisodes(envId, policy, episodes, seed, record);
    // Actions are sampled from π everywhere: the stochastic policy is what soft actor-critic
    // trains and what the reference acts with (it has no greedy mode); argmax play of a barely
    // trained policy mostly repeats one action, which would hide what z changes.
    const sampled = (choice: Parameters<MraLearner['latentPolicy']>[3], what: string) => learner.latentPolicy(shape, spec.numEnvs, deriveSeed(spec.seed, what, N), choice, { sample: true });
    const zeroShot = scoreOf(await play(sampled({ kind: 'prior' }, 'zero-shot'), spec.episodes, evalSeed));
    const perLatent: MraScore[] = [];
    for (let z = 0; z < L; z++) perLatent.push(scoreOf(await play(sampled({ kind: 'fixed', z }, `sweep-${z}`), spec.sweepEpisodes, deriveSeed(spec.seed, 'sweep', N))));
    let best = 0;
    perLatent.forEach((s, z) => (s.teamReturn > perLatent[best].teamReturn ? (best = z) : 0));
    const bestLatent = { z: best, score: scoreOf(await play(sampled({ kind: 'fixed', z: best }, 'best'), spec.episodes, evalSeed)), envStepsUsed: L * spec.sweepEpisodes * T };
    const adaptation: MraAdaptationPoint[] = [];
    const { steps, episodesPerStep, lr, params, evalEvery } = spec.adaptation;
    const adapter = learner.createAdapter(N, { params, lr });
    try {
      const probs = () => softmax(adapter.logits);
      const evaluateNow = async (step: number, used: number) => {
        const score = scoreOf(await play(adapter.policy(shape, spec.numEnvs, deriveSeed(spec.seed, 'adapted', N, step), { sample: true }), spec.episodes, evalSeed));
        adaptation.push({ step, episodesUsed: used, envStepsUsed: used * T, score, latentProbs: probs() });
      };
      await evaluateNow(0, 0);
      const record = params.includes('policy_head');
      for (let s = 1; s <= steps; s++) {
        const policy = adapter.policy(shape, spec.numEnvs, deriveSeed(spec.seed, 'adapt', N, s), { sample: true });
        adapter.update(await play(policy, episodesPerStep, deriveSeed(spec.seed, 'adapt-episodes', N, s), record));
        if (s % evalEvery === 0 || s === steps) await evaluateNow(s, s * episodesPerStep);
      }
    } finally {
      adapter.dispose();
    }
    const last = adaptation[adaptation.length - 1];
    log(`N=${N}: zero-shot ${zeroShot.returnPerAgent.toFixed(3)}, best z=${best} ${bestLatent.score.returnPerAgent.toFixed(3)}, adapted (${last.step} steps) ${last.score.returnPerAgent.toFixed(3)} per agent`);
    populations.push({ numAgents: N, trained: trained.includes(N), latentProbs: learner.latentProbs(N), zeroShot, perLatent, bestLatent, adaptation });
  }
  return { numLatents: L, trainedPopulations: trained, populations, training };
}

/** Rebuilds the `mra` run in `runDir` from its latest checkpoint and evaluates it per `spec`. */
export async function evaluateMraRun(runDir: string, spec: MraEvaluationSpec, log: (line: string) => void = () => {}, backendPreference?: string): Promise<MraRunEvaluation> {
  registerBuiltinEnvs();
  const located = await locateCheckpoint(runDir);
  const config = parseSavedRunConfig(YAML.stringify(located.data.config), `${located.path} (saved config)`);
  if (config.algo.name !== 'mra') throw new Error(`${located.path}: a '${config.algo.name}' run; MRA evaluation needs an 'mra' run`);
  await selectBackend((backendPreference ?? located.data.backend ?? config.run.backend) as BackendPreference);
  const { learner } = await rebuildLearner(located);
  try {
    if (!(learner instanceof MraLearner)) throw new Error(`${located.path}: the run's learner is not an MRA learner`);
    return { run: runDir, ...(await evaluateMraLearner(learner, spec, log)) };
  } finally {
    learner.dispose();
  }
}
