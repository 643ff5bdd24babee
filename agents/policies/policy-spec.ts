import { z } from 'zod';
import type { EnvShape } from '../../envs/env-shape';

/*
 * A policy spec says, in plain JSON, everything acting needs besides the weights: which network,
 * its sizes, how its inputs are formed, how actions are picked and under which checkpoint model
 * its weights are stored. Learners write one per task into every checkpoint
 * (`metadata.policies`), so `loadPolicy` can rebuild the policy without the learner, its
 * optimisers or its replay — and without knowing the algorithm at all.
 */

export const POLICY_SPEC_FORMAT = 1;

const shapeSchema = z.object({
  agentIds: z.array(z.string()).min(1),
  numAgents: z.number().int().positive(),
  obsDim: z.number().int().nonnegative(),
  agentObsDims: z.array(z.number().int().nonnegative()),
  actDim: z.number().int().positive(),
  numActions: z.number().int().nonnegative(),
  agentNumActions: z.array(z.number().int().nonnegative()),
  discreteActions: z.boolean(),
  // JSON has no infinities: an unbounded side is stored as null.
  actionLow: z.array(z.number().nullable().transform((v) => v ?? -Infinity)).optional(),
  actionHigh: z.array(z.number().nullable().transform((v) => v ?? Infinity)).optional(),
  stateDim: z.number().int().nonnegative(),
  maxEpisodeSteps: z.number().int().positive(),
  reportsSuccess: z.boolean(),
  sharedTeamReward: z.boolean(),
  numTasks: z.number().int().nonnegative().optional(),
  entityObservation: z.object({ selfDim: z.number().int().positive(), entityDim: z.number().int().positive() }).optional(),
});

const common = {
  format: z.literal(POLICY_SPEC_FORMAT),
  /** The checkpoint model (`models[model]`) holding the weights, by the network's variable names. */
  model: z.string().min(1),
  /** Appended to a policy's seed before it draws (so a loaded policy draws what the learner's evaluation drew). */
  seedPath: z.array(z.string()),
  /** The task shape the policy was trained on; it acts only in envs of this shape. */
  shape: shapeSchema,
};

/** An EPyMARL agent network (`agents/networks/agent-network.ts`) with a categorical, Q-value or Gaussian head. */
export const agentNetworkPolicySpecSchema = z.object({
  kind: z.literal('agent-network'),
  ...common,
  head: z.enum(['categorical', 'q-values', 'gaussian']),
  network: z.object({
    inputDim: z.number().int().positive(),
    hiddenDim: z.number().int().positive(),
    outputDim: z.number().int().positive(),
    recurrent: z.boolean(),
    copies: z.number().int().positive(),
  }),
  inputs: z.object({ obsLastAction: z.boolean(), obsAgentId: z.boolean() }),
  /** Q-value heads: the ε of greedy acting (EPyMARL's evaluation ε). */
  epsilon: z.number().min(0).max(1).optional(),
});

/** SAC's tanh-squashed Gaussian MLP (`squashed-gaussian-policy.ts`). */
export const squashedGaussianPolicySpecSchema = z.object({
  kind: z.literal('squashed-gaussian-mlp'),
  ...common,
  hiddenDims: z.array(z.number().int().positive()).min(1),
  heads: z.number().int().positive(),
  numTasks: z.number().int().nonnegative(),
  agentId: z.boolean(),
  logStdMin: z.number(),
  logStdMax: z.number(),
});

/**
 * MTMA's action-conditioned Q-network (`agents/networks/action-conditioned.ts`): a task's
 * perception layers and the shared decision network. The model holds the perception's
 * variables and the decision network's under `decl/`.
 */
export const actionConditionedPolicySpecSchema = z.object({
  kind: z.literal('action-conditioned-q'),
  ...common,
  network: z.object({
    /** Agent input width without the candidate action. */
    inputDim: z.number().int().positive(),
    hiddenDim: z.number().int().positive(),
    declHiddenDim: z.number().int().positive(),
    recurrent: z.boolean(),
  }),
  inputs: z.object({ obsLastAction: z.boolean(), obsAgentId: z.boolean() }),
  epsilon: z.number().min(0).max(1).optional(),
});

export const policySpecSchema = z.discriminatedUnion('kind', [agentNetworkPolicySpecSchema, squashedGaussianPolicySpecSchema, actionConditionedPolicySpecSchema]);

export type AgentNetworkPolicySpec = z.output<typeof agentNetworkPolicySpecSchema> & { shape: EnvShape };
export type SquashedGaussianPolicySpec = z.output<typeof squashedGaussianPolicySpecSchema> & { shape: EnvShape };
export type ActionConditionedPolicySpec = z.output<typeof actionConditionedPolicySpecSchema> & { shape: EnvShape };
export type PolicySpec = AgentNetworkPolicySpec | SquashedGaussianPolicySpec | ActionConditionedPolicySpec;

/** Validates a spec read from a file; errors name `source` and the field. */
export function parsePolicySpec(value: unknown, source: string): PolicySpec {
  const result = policySpecSchema.safeParse(value);
  if (result.success) return result.data as PolicySpec;
  const issue = result.error.issues[0];
  throw new Error(`${source}: invalid policy spec at '${issue.path.join('.') || '(root)'}': ${issue.message}`);
}

/** The spec as plain JSON (unbounded action sides become null, which `parsePolicySpec` reads back). */
export function policySpecJson(spec: PolicySpec): Record<string, unknown> {
  const bound = (values: number[] | undefined) => values?.map((v) => (Number.isFinite(v) ? v : null));
  const { actionLow, actionHigh, ...shape } = spec.shape;
  return JSON.parse(JSON.stringify({ ...spec, shape: { ...shape, ...(actionLow ? { actionLow: bound(actionLow) } : {}), ...(actionHigh ? { actionHigh: bound(actionHigh) } : {}) } })) as Record<string, unknown>;
}
