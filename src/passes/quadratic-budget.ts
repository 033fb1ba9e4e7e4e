/**
 * Sizing quadratic terms by parameter budget: `budgetOf` (a linear control sized to a
 * quadratic adapter's parameters) spends a budget over targets rank by rank, and the default
 * placement leaves out terms dearer than their layer.
 */

import type { Tensor } from '../ir/tensor.js';
import { numel } from '../ir/tensor.js';
import type { PlannedTarget } from './quadratic-handlers.js';
import type { QuadLayerKind, QuadTargetSpec } from './quadratic-spec.js';
import type { TargetReport } from './quadratize-options.js';
import { STEM_MAX_CHANNELS } from './quadratize-options.js';

/** A target sized by `budgetOf`: its budget, the cost of one rank, and how to re-plan it. */
export interface BudgetItem {
  /** Its index in `planned`. */
  index: number;
  /** The reference term's parameter count. */
  cap: number;
  /** Parameters at rank 1. */
  unit: number;
  replan: (rank: number) => PlannedTarget;
  report: TargetReport;
}

/**
 * With `match` `total`, gives rank r' + 1 to the targets with the largest remainder
 * cap / unit − r' (each at most once) while the total stays within the reference's total; then
 * notes each target's rank and budget in its reason.
 */
export function spendBudget(
  items: readonly BudgetItem[],
  planned: PlannedTarget[],
  match: 'total' | 'target',
): void {
  const total = (xs: readonly PlannedTarget[]) => xs.reduce((n, p) => n + paramCount(p.spec), 0);
  if (match === 'total') {
    let slack =
      items.reduce((n, it) => n + it.cap, 0) - total(items.map((it) => planned[it.index]!));
    const order = items
      .map((it) => ({ it, rem: it.cap / it.unit - planned[it.index]!.spec.rank! }))
      .filter((x) => x.rem > 0)
      .sort((a, b) => b.rem - a.rem || a.it.index - b.it.index);
    for (const { it } of order) {
      const cur = planned[it.index]!;
      const next = it.replan(cur.spec.rank! + 1);
      const extra = paramCount(next.spec) - paramCount(cur.spec);
      if (extra > slack) continue;
      slack -= extra;
      planned[it.index] = next;
      it.report.spec = next.spec;
    }
  }
  for (const it of items) {
    const spec = planned[it.index]!.spec;
    it.report.reason += `; rank ${spec.rank} (${paramCount(spec)} parameters) for budgetOf's ${it.cap}`;
  }
}

/** The most frequent value (the smallest among ties). */
export function mostCommon(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0]!;
  for (const [v, c] of counts) {
    const bc = counts.get(best)!;
    if (c > bc || (c === bc && v < best)) best = v;
  }
  return best;
}

/**
 * Why a default-target Conv is left out as too dear, or undefined when it is not: an image stem
 * (≤ STEM_MAX_CHANNELS input channels) or a depthwise conv whose term has more weights than the
 * layer. For a conv, FLOPs per output position are twice the weights, so such a term would cost
 * more than the layer it adapts (a 3×3 depthwise conv: 19 weights per channel at rank 1 against
 * 9; a 7×7 one keeps its atrous rank-1 term: 19 against 49).
 */
export function tooDear(
  kind: QuadLayerKind,
  weight: Tensor,
  spec: QuadTargetSpec,
): string | undefined {
  if (weight.dims.length < 3) return undefined;
  const cin = weight.dims[1]!;
  const stem = kind === 'conv' && cin <= STEM_MAX_CHANNELS;
  if (!stem && kind !== 'depthwise') return undefined;
  const base = numel(weight.dims);
  const term = paramCount(spec);
  if (term <= base) return undefined;
  const what = stem ? `image stem (${cin} input channel${cin === 1 ? '' : 's'})` : 'depthwise';
  return `${what}: its term would cost more than the layer (${term} > ${base} weights, so more FLOPs); name it in targets to adapt it`;
}

/** Trainable parameters of one target's term (A, B, U, γ: whatever its spec has). */
export function paramCount(spec: QuadTargetSpec): number {
  return spec.params.reduce((n, p) => n + numel(p.shape), 0);
}
