/**
 * The layers a budget may spend on, with the exact cost of their terms: the targets quadratize
 * would adapt with the user's options (defaults, targets, exclude), each with its largest rank
 * and the FLOPs of its term as `c0 + c1·r`, read from the accounting of the model built at rank
 * 1 and at rank 2 (so the planner and `inspect` count FLOPs the same way).
 */

import type { Graph } from '../../ir/graph.js';
import { accountLayers } from '../accounting.js';
import { QuadratizeError } from '../quadratic-spec.js';
import type { QuadratizeOptions } from '../quadratize-options.js';
import { quadratize } from '../quadratize.js';
import type { BudgetCandidate } from './plan.js';

/** A regular expression that matches exactly this node name. */
function exactly(node: string): string {
  return `^${node.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
}

/** The quadratize options that adapt exactly these layers at these ranks (others as `quad`). */
export function optionsForRanks(
  quad: QuadratizeOptions,
  ranks: ReadonlyMap<string, number>,
): QuadratizeOptions {
  const nodes = [...ranks.keys()];
  return {
    ...quad,
    rank: undefined,
    exclude: undefined,
    targets: nodes.map(exactly),
    rankOverrides: Object.fromEntries(nodes.map((n) => [exactly(n), ranks.get(n)!])),
  };
}

/** The candidates of a budget and the FLOPs the budget is a fraction of. */
export interface BudgetCandidates {
  candidates: BudgetCandidate[];
  /** FLOPs per sample of the original model's Conv/Gemm/MatMul layers (what overheads divide by). */
  baseFlops: number;
}

/**
 * Every layer `quadratize(graph, quad)` would adapt, with its cost per rank. Scores start equal
 * (1); workflow/usefulness.ts fills them from data. `inputShape`: the resolution of the FLOPs
 * for a model with an open input size (as in `accountLayers`).
 */
export function budgetCandidates(
  graph: Graph,
  quad: QuadratizeOptions,
  inputShape?: readonly number[],
): BudgetCandidates {
  if ((quad.mode ?? 'lowrank') !== 'lowrank')
    throw new QuadratizeError(
      `a budget needs mode 'lowrank': a neuron-mode term has no rank to size`,
    );
  if (quad.budgetOf !== undefined)
    throw new QuadratizeError('a budget and budgetOf both size the terms: give one of them');
  const dry = quadratize(graph, { ...quad, dryRun: true });
  const chosen = dry.targets.filter((t) => t.matched);
  const baseFlops = accountLayers(graph, { inputShape }).totals.base.flops;
  if (chosen.length === 0) return { candidates: [], baseFlops };
  const at = (r: number) => {
    const ranks = new Map(chosen.map((t) => [t.node, r] as const));
    const acc = accountLayers(quadratize(graph, optionsForRanks(quad, ranks)).graph, {
      inputShape,
    });
    return new Map(acc.layers.map((l) => [l.node, l.quadratic?.flops ?? 0] as const));
  };
  const f1 = at(1);
  const f2 = at(2);
  const index = new Map(graph.nodes.map((n, i) => [n.name, i] as const));
  const candidates = chosen.map((t) => {
    const c1 = f2.get(t.node)! - f1.get(t.node)!;
    return {
      node: t.node,
      maxRank: t.spec!.rank!,
      c0: f1.get(t.node)! - c1,
      c1,
      score: 1,
      index: index.get(t.node)!,
    };
  });
  return { candidates, baseFlops };
}
