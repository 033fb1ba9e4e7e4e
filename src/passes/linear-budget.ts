/**
 * The first-order baseline QuadraNet V2 is compared against: a linear low-rank (LoRA-style)
 * adapter `Q(x) = U(A(x))` (φ `linear` of the quadratize pass) with the same targets, the same
 * atrous geometry and the same trainable-parameter budget as a given quadratic adapter.
 */

import type { Graph } from '../ir/graph.js';
import type { QuadratizeOptions } from './quadratize.js';
import { quadratize } from './quadratize.js';

/** A regular expression that matches exactly `s`. */
function exactPattern(s: string): string {
  return `^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
}

/**
 * Options for a linear low-rank adapter with the trainable-parameter budget of the quadratic
 * adapter `quadOptions` would build on `graph` (the ranks `quadratize`'s `budgetOf` chooses):
 * per target, the largest rank r' whose A + U parameters do not exceed that layer's quadratic
 * A + B + U (+ γ) parameters (r' = 1 when even rank 1 exceeds them); with `match` `total`
 * (default), the leftover then buys r' + 1 for the targets closest to their next rank while the
 * total stays at most the quadratic total, so the totals differ by less than one rank of the
 * smallest target (`target`: per-target only, up to one rank per target short).
 *
 * The options are self-contained (no `budgetOf`), so they can be written into a run
 * configuration: φ `linear`, mode `lowrank`, the reference's `targets`, `exclude` (plus the
 * exact names of the layers it left out as too dear under its default ranks),
 * `includeHead`, `kernelSize`, `dilation`, `seed` and `initScale`, the most common rank as
 * `rank`, and one `rankOverrides` entry per target keyed by its exact node name (`^name$`,
 * regex-escaped). Pure: plans with dry runs, builds nothing.
 */
export function matchLinearBudget(
  graph: Graph,
  quadOptions: QuadratizeOptions = {},
  match: 'total' | 'target' = 'total',
): QuadratizeOptions {
  const res = quadratize(graph, {
    phi: 'linear',
    budgetOf: quadOptions,
    budgetMatch: match,
    seed: quadOptions.seed,
    initScale: quadOptions.initScale,
    dryRun: true,
  });
  const lin = res.config;
  // Layers the reference left out as too dear under its default ranks (image stems, 3×3
  // depthwise convs): excluded by name, since these options give explicit ranks.
  const dear = res.targets
    .filter((t) => !t.matched && / term would cost more than the layer/.test(t.reason))
    .map((t) => exactPattern(t.node));
  const options: QuadratizeOptions = {
    mode: 'lowrank',
    phi: 'linear',
    rank: lin.rank,
    rankOverrides: Object.fromEntries(lin.targets.map((t) => [exactPattern(t.node), t.rank!])),
  };
  for (const k of [
    'targets',
    'exclude',
    'includeHead',
    'kernelSize',
    'dilation',
    'seed',
    'initScale',
  ] as const) {
    if (quadOptions[k] !== undefined) Object.assign(options, { [k]: quadOptions[k] });
  }
  if (dear.length > 0) {
    const given = quadOptions.exclude;
    options.exclude = [
      ...(given === undefined ? [] : typeof given === 'string' ? [given] : given),
      ...dear,
    ];
  }
  return options;
}
