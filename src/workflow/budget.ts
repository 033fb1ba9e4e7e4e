/**
 * Quadratic terms under a budget (`--budget flops=10%` or `latency=1.2x`): candidates and their
 * exact costs (passes/budget), usefulness from the user's data when given, the greedy plan, and
 * for a latency budget a search over FLOPs budgets with each plan timed against the original.
 * The result is ordinary quadratize options (exact targets and ranks), so what was planned is
 * what every later step builds.
 */

import type { Dataset } from '../data/dataset.js';
import type { Graph } from '../ir/graph.js';
import type { BudgetCandidate, PlannedLayer } from '../passes/budget/plan.js';
import { planWithinFlops, termFlops } from '../passes/budget/plan.js';
import type { QuadBudget } from '../passes/budget/parse.js';
import { describeBudget } from '../passes/budget/parse.js';
import { budgetCandidates, optionsForRanks } from '../passes/budget/candidates.js';
import { QuadratizeError } from '../passes/quadratic-spec.js';
import type { QuadratizeOptions } from '../passes/quadratize-options.js';
import { quadratize } from '../passes/quadratize.js';
import { pairedRatio } from '../report/stats.js';
import type { SessionOptions } from '../runtime/session.js';
import type { OnPhase } from './evaluate.js';
import { measureLatency } from './evaluate.js';
import { imageInputShape } from './model-source.js';
import { loadRunData, sizeToData } from './run-data.js';
import { usefulnessScores } from './usefulness.js';

/** Options of {@link planBudget}. */
export interface BudgetPlanOptions {
  /** The budget. */
  budget: QuadBudget;
  /** The quadratic term's other settings (targets, exclude, φ, seed, rank as the largest rank...). */
  quad?: QuadratizeOptions;
  /** Resolution of FLOPs and timings for a model with an open input size (dims after the batch). */
  inputShape?: readonly number[];
  /** Data that fits the model's input, for the usefulness scores (without: every layer scores 1). */
  data?: Dataset;
  /** The graph the scores are computed on when it differs (a model sized to the data). */
  scoreGraph?: Graph;
  /** Batch size of the latency measurement (default 1). */
  latencyBatch?: number;
  /** Timed runs per plan (default 20, alternating with the original). */
  latencyRuns?: number;
  /** onnxruntime session settings of the timings and the scores. */
  session?: SessionOptions;
  /** Reports slow phases. */
  onPhase?: OnPhase;
}

/** One plan timed against the original (latency budgets). */
export interface TimedPlan {
  /** FLOPs budget of the plan, as a fraction of the original's FLOPs. */
  flopsFraction: number;
  /** Its added FLOPs, as a fraction of the original's. */
  overhead: number;
  /** Median of the per-run time ratios (adapted / original) and its 95% interval. */
  ratio: number;
  interval: readonly [number, number] | null;
}

/** What {@link planBudget} chose. */
export interface BudgetPlan {
  /** The budget as written (`flops=10%`). */
  budget: string;
  /** The quadratize options that build the plan (exact targets and ranks). */
  options: QuadratizeOptions;
  /** Every candidate layer, with its rank in the plan (0: left out), cost and score. */
  layers: PlannedLayer[];
  /** Where the scores came from: the loss gradient on the data, or none (cost only). */
  scores: 'gradient' | 'none';
  /** FLOPs per sample of the original and of the planned quadratic terms. */
  baseFlops: number;
  quadFlops: number;
  /** Latency budgets: the timings of the plans tried, and the batch and input shape timed. */
  latency?: { batchSize: number; inputShape: number[]; tried: TimedPlan[]; chosen?: TimedPlan };
}

function fixedShape(graph: Graph, inputShape: readonly number[] | undefined): number[] {
  if (inputShape) return [...inputShape];
  const dims = graph.inputs[0]?.shape.slice(1) ?? [];
  if (!dims.every((d): d is number => typeof d === 'number'))
    throw new QuadratizeError(
      `a latency budget times the model at a fixed input size, but '${graph.inputs[0]?.name}' has open dims; give --input-shape`,
    );
  return dims;
}

/**
 * Plans the quadratic terms of `graph` within a budget (see the module comment). A FLOPs budget
 * gives added FLOPs ≤ the budget exactly (the accounting `inspect` and `quadratize` print); a
 * latency budget gives the largest FLOPs plan whose measured time ratio (median of paired runs)
 * is within it. An empty plan (nothing fits) throws a one-line QuadratizeError.
 */
export async function planBudget(graph: Graph, o: BudgetPlanOptions): Promise<BudgetPlan> {
  const quad = o.quad ?? {};
  const { candidates, baseFlops } = budgetCandidates(graph, quad, o.inputShape);
  if (candidates.length === 0)
    throw new QuadratizeError(`no layer to adapt in '${graph.name}', so no budget to plan`);
  let scores: BudgetPlan['scores'] = 'none';
  if (o.data) {
    const s = await usefulnessScores(o.scoreGraph ?? graph, quad, candidates, o.data, {
      session: o.session,
    });
    for (const c of candidates) c.score = s.get(c.node) ?? 0;
    scores = 'gradient';
  }
  const done = (layers: PlannedLayer[], latency?: BudgetPlan['latency']): BudgetPlan => {
    const ranks = new Map(layers.filter((l) => l.rank > 0).map((l) => [l.node, l.rank] as const));
    if (ranks.size === 0 && latency) {
      const t = latency.tried.map(
        (x) => `+${(100 * x.overhead).toFixed(1)}% FLOPs: ${x.ratio.toFixed(2)}×`,
      );
      throw new QuadratizeError(
        `--budget ${describeBudget(o.budget)}: no plan measured within it at batch ${latency.batchSize} (${t.join(', ') || 'nothing fits'}); raise the budget`,
      );
    }
    if (ranks.size === 0) {
      const cheapest = Math.min(...candidates.map((c) => termFlops(c, 1)));
      throw new QuadratizeError(
        `--budget ${describeBudget(o.budget)} fits no quadratic term: the cheapest (rank 1) adds ${((100 * cheapest) / baseFlops).toFixed(2)}% FLOPs; raise the budget`,
      );
    }
    return {
      budget: describeBudget(o.budget),
      options: optionsForRanks(quad, ranks),
      layers,
      scores,
      baseFlops,
      quadFlops: layers.reduce((s, l) => s + l.flops, 0),
      latency,
    };
  };
  if (o.budget.kind === 'flops')
    return done(planWithinFlops(candidates, o.budget.fraction * baseFlops));
  return done(...(await searchLatency(graph, candidates, baseFlops, quad, o, o.budget.ratio)));
}

/** The largest FLOPs plan whose measured time ratio is within `limit` (bisection on the FLOPs). */
async function searchLatency(
  graph: Graph,
  candidates: BudgetCandidate[],
  baseFlops: number,
  quad: QuadratizeOptions,
  o: BudgetPlanOptions,
  limit: number,
): Promise<[PlannedLayer[], BudgetPlan['latency']]> {
  const shape = fixedShape(graph, o.inputShape);
  const batchSize = o.latencyBatch ?? 1;
  const tried: TimedPlan[] = [];
  const time = async (fraction: number): Promise<[PlannedLayer[], TimedPlan | undefined]> => {
    const layers = planWithinFlops(candidates, fraction * baseFlops);
    const ranks = new Map(layers.filter((l) => l.rank > 0).map((l) => [l.node, l.rank] as const));
    if (ranks.size === 0) return [layers, undefined];
    const adapted = quadratize(graph, optionsForRanks(quad, ranks)).graph;
    const [base, model] = await measureLatency([graph, adapted], shape, {
      batchSizes: [batchSize],
      runs: o.latencyRuns ?? 20,
      session: o.session,
      onPhase: o.onPhase,
    });
    const r = pairedRatio(model![0]!.timesMs, base![0]!.timesMs, model![0]!.setSizes)!;
    const t: TimedPlan = {
      flopsFraction: fraction,
      overhead: layers.reduce((s, l) => s + l.flops, 0) / baseFlops,
      ratio: r.median,
      interval: r.interval,
    };
    tried.push(t);
    return [layers, t];
  };
  const all = candidates.reduce((s, c) => s + termFlops(c, c.maxRank), 0) / baseFlops;
  let [bestLayers, best] = await time(all);
  if (!best || best.ratio > limit) {
    bestLayers = candidates.map((c) => ({
      node: c.node,
      rank: 0,
      flops: 0,
      score: c.score,
      scorePerFlop: 0,
    }));
    best = undefined;
    let lo = 0;
    let hi = all;
    for (let i = 0; i < 5; i++) {
      const mid = (lo + hi) / 2;
      const [layers, t] = await time(mid);
      if (t && t.ratio <= limit) {
        lo = mid;
        bestLayers = layers;
        best = t;
      } else hi = mid;
    }
  }
  return [bestLayers, { batchSize, inputShape: shape, tried, chosen: best }];
}

/** A plan in JSON (the `budget` key of `quadratize --json` and of run.json). */
export function budgetJson(plan: BudgetPlan) {
  return {
    spec: plan.budget,
    scores: plan.scores,
    baseFlops: plan.baseFlops,
    quadFlops: plan.quadFlops,
    overheadPct: (100 * plan.quadFlops) / plan.baseFlops,
    ranks: Object.fromEntries(plan.layers.filter((l) => l.rank > 0).map((l) => [l.node, l.rank])),
    ...(plan.latency ? { latency: plan.latency } : {}),
  };
}

/** One line saying what a plan spends and, for a latency budget, what was measured. */
export function budgetLine(plan: BudgetPlan): string {
  const used = plan.layers.filter((l) => l.rank > 0).length;
  const pct = ((100 * plan.quadFlops) / plan.baseFlops).toFixed(2);
  const how =
    plan.scores === 'gradient'
      ? 'by usefulness per FLOP'
      : 'cheapest first (no --data: no usefulness scores)';
  let line = `budget ${plan.budget}: ${used} of ${plan.layers.length} candidate layers, +${pct}% FLOPs, chosen ${how}`;
  const c = plan.latency?.chosen;
  if (c) {
    const iv = c.interval
      ? ` (95% interval ${c.interval[0].toFixed(2)}–${c.interval[1].toFixed(2)})`
      : '';
    line += `; measured ${c.ratio.toFixed(2)}× the original's time at batch ${plan.latency!.batchSize}${iv}`;
  }
  return line;
}

/**
 * Data for usefulness scores from a spec: up to 256 training examples fitted to the model's
 * input (an open-size model is sized to the data, and the scores are computed on that copy).
 */
export async function scoringData(
  graph: Graph,
  spec: string,
  modelName: string,
  seed: number,
): Promise<{ graph: Graph; data: Dataset }> {
  const sized = await sizeToData(graph, spec, { seed, modelName });
  const data = await loadRunData(spec, imageInputShape(sized, modelName), {
    limit: 256,
    testLimit: 1,
    seed,
    modelName,
  });
  return { graph: sized, data: data.train };
}
