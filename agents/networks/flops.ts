/*
 * Matrix-product FLOP counts of troupe's networks, for `troupe bench learner` (achieved GFLOP/s
 * against the backend's matmul peak).
 *
 * Counted: matrix products only, at 2 FLOPs per multiply-add, so a dense layer costs
 * 2·in·out per row forward. In backward, a layer costs 2·in·out per row for its weight
 * gradient and another 2·in·out for its input gradient, but tfjs only differentiates towards
 * inputs that depend on a trained variable: a layer fed with data (the first layer, a
 * hypernetwork reading the state, the GRU's hidden matmul at the first step of a sequence,
 * whose state comes from data) costs only its weight gradient. Target networks run forward
 * only. Biases, activations, GRU gate arithmetic, softmax, losses, gradient clipping and
 * Adam are element-wise and not counted.
 *
 *  - Agent network, feed-forward: fc1 D→H, fc2 H→H, out H→K.
 *  - Agent network, GRU: fc1 D→H, input gates H→3H, hidden gates H→3H (one per unroll step),
 *    out H→K.
 *  - MAPPO/IPPO, per update: every epoch runs each of the T·E·A rows once through the actor
 *    (GRU or MLP) and the critic (MLP, output 1), forward and backward (the minibatches of an
 *    epoch partition the rows); plus the critic's forward pass for the bootstrap row and for
 *    the final observation of every episode that ended inside the chunk.
 *  - QMIX/VDN/IQL, per update on B episodes of T steps: the online agent forward and backward
 *    over (T+1)·B·A rows, the target agent forward over the same rows; for QMIX the online
 *    mixer forward and backward and the target mixer forward over T·B rows. The mixer counts
 *    its hypernetworks (state → |W1| [A×embed], state → |W_final| [embed], each one layer or
 *    two with hypernet_embed between), b1 and V(s) (state → embed → 1), and the per-row
 *    products q·W1 (A·embed multiply-adds) and hidden·W_final (embed), which tfjs computes as
 *    broadcast multiply-and-sum rather than matmul but are the same arithmetic.
 *  - SAC, per critic step on B transitions: both critics forward and backward, both target
 *    critics and the actor forward at s'; per actor step the actor forward and backward and
 *    both critics forward and backward towards the action input only (every layer's input
 *    gradient and no weight gradient: as many FLOPs as the forward pass).
 *  - Decision transformer, per pass over S sequences of K steps after a k-step prompt (N = 3(k + K)
 *    tokens each): the modality embeddings (return 1→d, state S→d or S→E then (E ⊕ z)→d, action
 *    A→d; the prompt's own return, state and action layers on its k steps), which read data and
 *    so cost only weight gradients, except the context layer's input gradient towards the
 *    trained state encoding; per block the token-wise Q/K/V d→3d, attention output d→d and MLP
 *    d→inner→d, and the two N×N attention products (QKᵀ and weights·V, N²·d multiply-adds each,
 *    all of them: the causal mask hides half the results but not the work); the action head d→A
 *    on the K state tokens. The return embedding is a broadcast multiply, the timestep embedding
 *    a gather (not counted).
 */

/** FLOPs of one pass over a batch of rows: forward, and backward (weight plus input gradients). */
export interface PassFlops {
  forward: number;
  backward: number;
}

export interface NetworkShape {
  inputDim: number;
  hiddenDim: number;
  outputDim: number;
  recurrent: boolean;
}

/**
 * Matmul FLOPs of an `AgentNetwork` over `rows` rows that form `sequences` unrolled sequences
 * (rows = steps × sequences; a feed-forward network ignores the split).
 */
export function agentNetworkFlops(net: NetworkShape, rows: number, sequences: number): PassFlops {
  const { inputDim: D, hiddenDim: H, outputDim: O } = net;
  const fc1 = 2 * D * H * rows;
  const out = 2 * H * O * rows;
  if (!net.recurrent) {
    const fc2 = 2 * H * H * rows;
    return { forward: fc1 + fc2 + out, backward: fc1 + 2 * fc2 + 2 * out };
  }
  const gates = 2 * H * 3 * H * rows;
  // The hidden matmul's input gradient is skipped at each sequence's first step (h0 is data).
  const hiddenInputGrad = 2 * H * 3 * H * (rows - sequences);
  return { forward: fc1 + 2 * gates + out, backward: fc1 + 2 * gates + gates + hiddenInputGrad + 2 * out };
}

export interface MixerShape {
  numAgents: number;
  stateDim: number;
  embedDim: number;
  hypernetLayers: 1 | 2;
  hypernetEmbed: number;
}

/** Matmul FLOPs of the QMIX mixer over `rows` (time step, episode) rows. */
export function mixerFlops(m: MixerShape, rows: number): PassFlops {
  const { numAgents: A, stateDim: S, embedDim: E, hypernetEmbed: Hh } = m;
  // Layers that read the state (data) need only weight gradients; later ones need both.
  let fromState: number;
  let fromHidden: number;
  if (m.hypernetLayers === 1) {
    fromState = S * E * A + S * E;
    fromHidden = 0;
  } else {
    fromState = 2 * S * Hh;
    fromHidden = Hh * E * A + Hh * E;
  }
  fromState += 2 * S * E; // b1 and V's hidden layer
  fromHidden += E; // V's output
  const products = A * E + E;
  const forward = 2 * rows * (fromState + fromHidden + products);
  const backward = 2 * rows * (fromState + 2 * fromHidden + 2 * products);
  return { forward, backward };
}

/** Matmul FLOPs of an `Mlp` (ReLU hidden layers `hiddenDims`) over `rows` rows fed with data. */
export function mlpFlops(inputDim: number, hiddenDims: readonly number[], outputDim: number, rows: number): PassFlops {
  const sizes = [inputDim, ...hiddenDims, outputDim];
  let forward = 0;
  let backward = 0;
  for (let i = 0; i + 1 < sizes.length; i++) {
    const layer = 2 * sizes[i] * sizes[i + 1] * rows;
    forward += layer;
    // The first layer reads data: weight gradient only.
    backward += i === 0 ? layer : 2 * layer;
  }
  return { forward, backward };
}

export interface DecisionTransformerShape {
  stateDim: number;
  /** Head width: the action dimension, or the number of discrete actions. */
  actionDim: number;
  embedDim: number;
  innerDim: number;
  numLayers: number;
  /** 0 without a task representation. */
  contextDim: number;
  stateEmbedDim: number;
}

/**
 * Matmul FLOPs of a `DecisionTransformer` over `sequences` sequences of `steps` steps, each after
 * a prompt of `promptSteps` steps (0 = none).
 */
export function decisionTransformerFlops(net: DecisionTransformerShape, sequences: number, steps: number, promptSteps: number): PassFlops {
  const { stateDim: S, actionDim: A, embedDim: d, innerDim: I, numLayers: L, contextDim: Z, stateEmbedDim: E } = net;
  const N = 3 * (promptSteps + steps);
  const stateEmbed = Z > 0 ? S * E + (E + Z) * d : S * d;
  const embed = 2 * sequences * (steps * (d + stateEmbed + A * d) + promptSteps * (d + S * d + A * d));
  // With a context, the (E ⊕ z)→d layer's input gradient reaches the trained state encoder.
  const embedInputGrad = Z > 0 ? 2 * sequences * steps * (E + Z) * d : 0;
  const dense = 2 * sequences * N * L * (3 * d * d + d * d + 2 * d * I);
  const attention = 2 * sequences * L * 2 * N * N * d;
  const head = 2 * sequences * steps * d * A;
  return {
    forward: embed + dense + attention + head,
    backward: embed + embedInputGrad + 2 * (dense + attention + head),
  };
}
