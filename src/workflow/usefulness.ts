/**
 * How useful a quadratic term would be on each candidate layer, before any training: the squared
 * norm of the loss gradient with respect to the layer's zero-initialised U over a batch of the
 * user's data. It is the first-order loss decrease of one gradient step on that U (ΔL ≈ −lr·‖g‖²),
 * and it is non-zero at step 0 because the other factor, φ(A(x), B(x)), is not (the adapter's
 * contract). Computed with the ordinary train step: SGD with lr 1 from U = 0 leaves U = −g.
 */

import { classifierLoss, detectOutputEnding } from '../passes/output-ending.js';
import type { Dataset } from '../data/dataset.js';
import { batches } from '../data/dataset.js';
import type { Graph } from '../ir/graph.js';
import type { BudgetCandidate } from '../passes/budget/plan.js';
import { optionsForRanks } from '../passes/budget/candidates.js';
import type { QuadratizeOptions } from '../passes/quadratize-options.js';
import { quadratize } from '../passes/quadratize.js';
import type { SessionOptions } from '../runtime/session.js';
import { Trainer } from '../runtime/trainer.js';
import { taskOf } from './evaluate.js';
import { lossFor } from './run-data.js';

/** Options of {@link usefulnessScores}. */
export interface UsefulnessOptions {
  /** Examples the gradient is averaged over (default 256, at most the data set). */
  examples?: number;
  /** Seed of which examples (default 0). */
  seed?: number;
  /** onnxruntime session settings. */
  session?: SessionOptions;
}

/**
 * The usefulness score of every candidate (node → ‖∂L/∂U‖² at its largest rank), on data that
 * fits `graph`'s input (see loadRunData). `quad`: the quadratize options the candidates came
 * from (φ, seed, geometry), so the scores are those of the terms that would be trained.
 */
export async function usefulnessScores(
  graph: Graph,
  quad: QuadratizeOptions,
  candidates: readonly BudgetCandidate[],
  data: Dataset,
  o: UsefulnessOptions = {},
): Promise<Map<string, number>> {
  const ranks = new Map(candidates.map((c) => [c.node, c.maxRank] as const));
  const res = quadratize(graph, optionsForRanks(quad, ranks));
  const uOf = new Map(
    res.config.targets.map((t) => [t.node, t.params.find((p) => p.role === 'quad_u')!.name]),
  );
  const size = Math.max(1, Math.min(o.examples ?? 256, data.n));
  const batch = batches(data, {
    batchSize: size,
    shuffle: true,
    seed: o.seed ?? 0,
    dropLast: true,
  }).next().value!;
  const loss =
    taskOf(data) === 'classification'
      ? { kind: classifierLoss(detectOutputEnding(graph)).kind }
      : lossFor(data);
  const trainer = await Trainer.create(res.graph, {
    batchSize: size,
    loss,
    optimizer: { kind: 'sgd' },
    groups: [{ name: 'u', params: [...uOf.values()], lr: 1 }],
    batchNorm: 'frozen',
    dropout: false,
    session: o.session,
  });
  try {
    await trainer.trainStep(batch);
    const out = new Map<string, number>();
    for (const [node, u] of uOf) {
      let s = 0;
      for (const v of trainer.params.get(u)!.data as Float32Array) s += v * v;
      out.set(node, s);
    }
    return out;
  } finally {
    await trainer.release();
  }
}
