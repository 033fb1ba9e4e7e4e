/**
 * Where the quadratic terms go and how large they are, under a FLOPs budget (pure: no graphs,
 * no sessions). Each candidate layer's term costs `c0 + c1·r` FLOPs at rank r (exact for
 * lowrank terms: A, B, φ and U are linear in r, the Add is not) and has a usefulness score (see
 * workflow/usefulness.ts). Greedy by score per FLOP at the layer's largest rank: each layer, best
 * first, gets the largest rank up to its own that still fits what is left of the budget. Greedy
 * rather than an exact knapsack: the scores are first-order estimates, so an exact optimum of
 * an estimate buys nothing, and greedy is what a person would check by hand.
 */

import { Rng } from '../../util/random.js';

/** One layer the planner may give a quadratic term. */
export interface BudgetCandidate {
  /** The node's name. */
  node: string;
  /** The largest rank it may get (its default or the user's rank). */
  maxRank: number;
  /** FLOPs per sample of its term at rank r: `c0 + c1 · r`. */
  c0: number;
  c1: number;
  /** Usefulness (higher is better); equal for all when no data was given. */
  score: number;
  /** The layer's position in the graph (0 = first), for placements by depth. */
  index: number;
}

/** A candidate's place in a plan. */
export interface PlannedLayer {
  node: string;
  /** Its rank in the plan; 0 when left out. */
  rank: number;
  /** FLOPs per sample of its term at that rank (0 when left out). */
  flops: number;
  /** Its usefulness score and score per FLOP at its largest rank. */
  score: number;
  scorePerFlop: number;
}

/** FLOPs of a candidate's term at rank r. */
export function termFlops(c: BudgetCandidate, rank: number): number {
  return rank > 0 ? c.c0 + c.c1 * rank : 0;
}

/** Greedy plan within `budgetFlops` (see the module comment); layers in graph order. */
export function planWithinFlops(
  candidates: readonly BudgetCandidate[],
  budgetFlops: number,
): PlannedLayer[] {
  const perFlop = (c: BudgetCandidate) => c.score / Math.max(termFlops(c, c.maxRank), 1);
  // Best score per FLOP first; ties (e.g. no data: equal scores) go to the cheaper term, then
  // to the later layer.
  const order = [...candidates].sort(
    (a, b) =>
      perFlop(b) - perFlop(a) ||
      termFlops(a, a.maxRank) - termFlops(b, b.maxRank) ||
      b.index - a.index,
  );
  const rank = new Map<string, number>();
  let left = budgetFlops;
  for (const c of order) {
    let r = c.maxRank;
    while (r > 0 && termFlops(c, r) > left) r--;
    if (r === 0) continue;
    rank.set(c.node, r);
    left -= termFlops(c, r);
  }
  return candidates.map((c) => {
    const r = rank.get(c.node) ?? 0;
    return {
      node: c.node,
      rank: r,
      flops: termFlops(c, r),
      score: c.score,
      scorePerFlop: perFlop(c),
    };
  });
}

/** How a placement ablation chooses layers (the experiments compare them at equal cost). */
export type Placement = 'all' | 'last-stage' | 'random';

/**
 * The ranks of a placement: `all` (every candidate at its largest rank), `last-stage` (the
 * deepest candidates, at their largest rank, until their cost reaches `budgetFlops` — the
 * last stage of a backbone at a comparable cost) or `random` (candidates in a seeded random
 * order, each at the largest rank that fits `budgetFlops`: random placement with the same cost).
 */
export function placementRanks(
  candidates: readonly BudgetCandidate[],
  placement: Placement,
  budgetFlops: number,
  seed = 0,
): Map<string, number> {
  const out = new Map<string, number>();
  if (placement === 'all') {
    for (const c of candidates) out.set(c.node, c.maxRank);
    return out;
  }
  let order = [...candidates].sort((a, b) => b.index - a.index);
  if (placement === 'random') {
    const rng = new Rng(seed);
    order = [...candidates];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  }
  let left = budgetFlops;
  for (const c of order) {
    let r = c.maxRank;
    while (r > 0 && termFlops(c, r) > left) r--;
    if (r === 0) {
      if (placement === 'last-stage') break; // the deepest layers only: no skipping ahead
      continue;
    }
    out.set(c.node, r);
    left -= termFlops(c, r);
  }
  return out;
}
