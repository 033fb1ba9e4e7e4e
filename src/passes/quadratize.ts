/**
 * The quadratize pass (DESIGN.md §3): every chosen Conv, Gemm or MatMul `y0 = L(x)` becomes
 * `y = L(x) + Q(x)` with `Q(x) = U(φ(A(x), B(x)))` (lowrank) or `φ(A(x), B(x))` (neuron),
 * emitted with standard ONNX ops. φ `linear` gives the first-order baseline `Q(x) = U(A(x))`
 * (a LoRA-style adapter with the same targets, geometry and names), and `budgetOf` sizes its
 * ranks to another adapter's parameter count, for fair comparisons. The base node is left exactly as it was: only its output is
 * renamed, and an Add carrying the original output name computes `y0 + Q(x)`, so consumers and
 * graph outputs keep their names and `unload` can restore the base graph exactly.
 */

import type { Graph } from '../ir/graph.js';
import { cloneGraph } from '../ir/graph.js';
import type { ShapeInfo } from '../ir/shapes/index.js';
import { inferShapes } from '../ir/shapes/index.js';
import { build, checkNameClashes } from './quadratic-build.js';
import type { BudgetItem } from './quadratic-budget.js';
import { mostCommon, paramCount, spendBudget, tooDear } from './quadratic-budget.js';
import type { AdapterConfig } from './quadratic-spec.js';
import { QuadratizeError, readAdapterState } from './quadratic-spec.js';
import type { HandlerContext, PlannedTarget, TargetSettings } from './quadratic-handlers.js';
import { quadHandler, quadOpTypes } from './quadratic-handlers.js';
import type { QuadratizeOptions, QuadratizeResult, TargetReport } from './quadratize-options.js';
import { DEFAULT_RANKS, normalize } from './quadratize-options.js';
import { assertPatternsUsed, compilePatterns, constantLookup, findHeads } from './targets.js';

export { quadParamNames } from './quadratic-spec.js';
export { paramCount } from './quadratic-budget.js';
export { DEFAULT_RANKS, STEM_MAX_CHANNELS } from './quadratize-options.js';
export type { QuadratizeOptions, QuadratizeResult, TargetReport } from './quadratize-options.js';
export type { AdapterConfig, QuadMode, QuadPhi, QuadTargetSpec } from './quadratic-spec.js';

function handlerContext(graph: Graph, shapes: ShapeInfo): HandlerContext {
  return { graph, shapes, constant: constantLookup(graph) };
}

function refuseIfQuadratized(graph: Graph): void {
  if (readAdapterState(graph)) {
    throw new QuadratizeError(
      `graph '${graph.name}' already has a quadratic adapter; unload it before quadratizing again`,
    );
  }
}

/**
 * Adds quadratic terms to the chosen Conv/Gemm/MatMul layers of `graph` (DESIGN.md §3). Pure:
 * the input graph is never modified. Everything is validated before anything is built, so a
 * failure throws a one-line QuadratizeError (naming the node when it concerns one) and has no
 * effect. Initialisation: A, B Kaiming-uniform (seeded per target from `seed` and the weight
 * name, so adding a target does not change the others), U = 0 (neuron mode: A = 0), γ = 1; the
 * converted graph computes exactly the base function. φ `linear` builds the first-order
 * baseline U(A(x)) the same way (no B).
 */
export function quadratize(graph: Graph, options: QuadratizeOptions = {}): QuadratizeResult {
  let o = normalize(options);
  refuseIfQuadratized(graph);
  const budget = options.budgetOf === undefined ? undefined : budgetReference(graph, options);
  if (budget) {
    options = budget.options;
    o = normalize(options);
  }
  const shapes = inferShapes(graph);
  const ctx = handlerContext(graph, shapes);
  const opTypes = quadOpTypes();
  const targetPats = compilePatterns(options.targets, 'targets', opTypes);
  const excludePats = compilePatterns(options.exclude, 'exclude', opTypes);
  const rankPats = compilePatterns(
    Object.keys(options.rankOverrides ?? {}),
    'rankOverrides',
    opTypes,
  );
  const heads = findHeads(
    graph,
    (n) => !!quadHandler(n),
    (name) => !!ctx.constant(name),
  );

  const reports: TargetReport[] = [];
  const planned: PlannedTarget[] = [];
  const budgetItems: BudgetItem[] = [];
  const weightOwner = new Map<string, string>();
  for (const node of graph.nodes) {
    const handler = quadHandler(node);
    if (!handler) continue;
    const ins = handler.inspect(node, ctx);
    const subject = { node: node.name, op: node.opType, weight: ins.weight };
    // Evaluate every pattern on every layer (no short-circuit) so unused ones can be reported.
    const byTarget = targetPats.filter((p) => p.matches(subject));
    const byExclude = excludePats.filter((p) => p.matches(subject));
    const byRank = rankPats.filter((p) => p.matches(subject));
    const report: TargetReport = {
      node: node.name,
      op: node.opType,
      weight: ins.weight,
      kind: ins.kind,
      matched: false,
      reason: '',
    };
    reports.push(report);
    const head = heads.get(node.name);
    if (targetPats.length > 0 && byTarget.length === 0) report.reason = 'not selected by targets';
    else if (byExclude.length > 0) report.reason = `excluded by exclude '${byExclude[0]!.source}'`;
    else if (ins.refusal) report.reason = ins.refusal;
    else if (head !== undefined && !o.includeHead)
      report.reason = `head (produces output '${head}'); adapt it with --include-head (includeHead in the API)`;
    else if (weightOwner.has(ins.weight!))
      report.reason = `weight '${ins.weight}' is shared with adapted node '${weightOwner.get(ins.weight!)}'`;
    else {
      const rank =
        byRank.length > 0
          ? options.rankOverrides![byRank[0]!.source]!
          : options.rank !== undefined || budget
            ? o.rank
            : DEFAULT_RANKS[ins.kind!];
      const settings: TargetSettings = {
        mode: o.mode,
        rank,
        phi: o.phi,
        kernelSize: o.kernelSize,
        dilation: o.dilation,
      };
      const weight = ctx.constant(ins.weight!)!;
      const replan = (r: number) =>
        handler.plan(node, weight, ins.kind!, { ...settings, rank: r }, ctx);
      if (budget) {
        const cap = budget.params.get(node.name);
        const refSkip = budget.skipped.get(node.name);
        if (cap === undefined && refSkip) {
          report.reason = refSkip; // the same targets as the reference (e.g. an image stem)
          continue;
        }
        if (cap === undefined) {
          throw new QuadratizeError(
            `node '${node.name}' (${node.opType}) is a target, but budgetOf does not adapt it; give both the same targets`,
            node.name,
          );
        }
        const count = (r: number) => paramCount(replan(r).spec);
        // Every lowrank parameter (A, B, U, γ) is linear in r, so cap / count(1) is the largest
        // rank that fits; the loop only guards that assumption.
        const unit = count(1);
        let r = Math.max(1, Math.floor(cap / unit));
        while (r > 1 && count(r) > cap) r--;
        settings.rank = r;
        budgetItems.push({ index: planned.length, cap, unit, replan, report });
      }
      const p = handler.plan(node, weight, ins.kind!, settings, ctx);
      // Only under the default lowrank ranks: an explicit rank means that rank on every default
      // target, and neuron mode (two copies of the layer) is dear by design.
      const dear =
        byTarget.length === 0 &&
        byRank.length === 0 &&
        options.rank === undefined &&
        o.mode === 'lowrank' &&
        !budget &&
        tooDear(ins.kind!, weight, p.spec);
      if (dear) {
        report.reason = dear;
        continue;
      }
      planned.push(p);
      weightOwner.set(ins.weight!, node.name);
      report.matched = true;
      report.spec = p.spec;
      report.reason =
        byTarget.length > 0 ? `selected by targets '${byTarget[0]!.source}'` : 'default target';
    }
  }
  const layers = `${reports.length} Conv/Gemm/MatMul layer${reports.length === 1 ? '' : 's'} in the graph`;
  assertPatternsUsed(targetPats, layers);
  assertPatternsUsed(excludePats, layers);
  assertPatternsUsed(rankPats, layers);
  if (budget) {
    const missing = [...budget.params.keys()].filter(
      (n) => !planned.some((p) => p.spec.node === n),
    );
    if (missing.length > 0) {
      throw new QuadratizeError(
        `budgetOf adapts ${missing.map((n) => `'${n}'`).join(', ')}, which this adapter does not; give both the same targets`,
      );
    }
    spendBudget(budgetItems, planned, budget.match);
  }
  checkNameClashes(graph, planned);

  const config: AdapterConfig = {
    mode: o.mode,
    // Under budgetOf every target has its own rank: record the most common one as the default.
    rank: budget && planned.length > 0 ? mostCommon(planned.map((p) => p.spec.rank!)) : o.rank,
    phi: o.phi,
    seed: o.seed,
    initScale: o.initScale,
    targets: planned.map((p) => p.spec),
  };
  if (o.dryRun) return { graph: cloneGraph(graph), targets: reports, config };
  if (planned.length === 0) {
    const why = [...new Set(reports.map((r) => r.reason))].slice(0, 3).join('; ');
    throw new QuadratizeError(
      `graph '${graph.name}': no layer to adapt (${layers}${why ? `: ${why}` : ''}); use a dry run to see every layer`,
    );
  }
  return { graph: build(graph, planned, config), targets: reports, config };
}

/**
 * Rebuilds the quadratic terms of an existing adapter configuration on `graph` (used by
 * `loadAdapter`): the same targets with the same mode, rank, φ, kq and dq. Throws a
 * QuadratizeError when a target does not exist or plans to a different term on this graph.
 * Parameters are initialised as by `quadratize`; the caller then overwrites them.
 */
export function quadratizeFromConfig(graph: Graph, config: AdapterConfig): QuadratizeResult {
  refuseIfQuadratized(graph);
  const shapes = inferShapes(graph);
  const ctx = handlerContext(graph, shapes);
  const byName = new Map(graph.nodes.map((n) => [n.name, n] as const));
  const planned: PlannedTarget[] = [];
  const reports: TargetReport[] = [];
  for (const t of config.targets) {
    const node = byName.get(t.node);
    if (!node || node.opType !== t.op)
      throw new QuadratizeError(
        `target node '${t.node}' (${t.op}) is not in graph '${graph.name}'`,
        t.node,
      );
    const handler = quadHandler(node)!;
    const ins = handler.inspect(node, ctx);
    if (ins.refusal)
      throw new QuadratizeError(`node '${t.node}' (${t.op}): ${ins.refusal}`, t.node);
    if (ins.weight !== t.weight) {
      throw new QuadratizeError(
        `node '${t.node}' (${t.op}) has weight '${ins.weight}', but the adapter was made for '${t.weight}'`,
        t.node,
      );
    }
    const settings: TargetSettings = {
      mode: t.mode,
      rank: t.rank ?? config.rank,
      phi: t.phi,
      kernelSize: t.kq,
      dilation: t.dq,
    };
    const p = handler.plan(node, ctx.constant(ins.weight)!, ins.kind!, settings, ctx);
    if (stableJson(p.spec) !== stableJson(t)) {
      throw new QuadratizeError(
        `node '${t.node}' (${t.op}): the adapter's term ${stableJson(t)} does not fit this layer (it gives ${stableJson(p.spec)})`,
        t.node,
      );
    }
    planned.push(p);
    reports.push({
      node: node.name,
      op: node.opType,
      weight: ins.weight,
      kind: ins.kind,
      matched: true,
      reason: 'adapter configuration',
      spec: p.spec,
    });
  }
  checkNameClashes(graph, planned);
  const cfg: AdapterConfig = {
    mode: config.mode,
    rank: config.rank,
    phi: config.phi,
    seed: config.seed,
    initScale: config.initScale,
    targets: planned.map((p) => p.spec),
  };
  return { graph: build(graph, planned, cfg), targets: reports, config: cfg };
}

/** JSON with object keys sorted, so specs compare equal whatever order their fields were written in. */
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) =>
            a < b ? -1 : a > b ? 1 : 0,
          ),
        )
      : x,
  );
}

/**
 * For `budgetOf`: checks the options, plans the reference adapter (a dry run) and returns its
 * per-target parameter counts, and the options with the reference's target selection and
 * geometry filled in where they were not given.
 */
function budgetReference(
  graph: Graph,
  options: QuadratizeOptions,
): {
  options: QuadratizeOptions;
  params: Map<string, number>;
  /** Layers the reference left out by a default rule (image stems), with its reason. */
  skipped: Map<string, string>;
  match: 'total' | 'target';
} {
  const ref = options.budgetOf!;
  if (typeof ref !== 'object' || ref === null)
    throw new QuadratizeError('budgetOf must be the options of the reference adapter');
  if ((options.mode ?? 'lowrank') !== 'lowrank')
    throw new QuadratizeError(
      `budgetOf needs mode 'lowrank': a neuron-mode term has no rank to size`,
    );
  const match = options.budgetMatch ?? 'total';
  if (match !== 'total' && match !== 'target')
    throw new QuadratizeError(`budgetMatch must be 'total' or 'target', not '${String(match)}'`);
  if (options.rank !== undefined || options.rankOverrides !== undefined)
    throw new QuadratizeError(
      'budgetOf chooses every rank itself; do not also give rank or rankOverrides',
    );
  let res: QuadratizeResult;
  try {
    res = quadratize(graph, { ...ref, dryRun: true });
  } catch (e) {
    if (e instanceof QuadratizeError) throw new QuadratizeError(`budgetOf: ${e.message}`, e.node);
    throw e;
  }
  const params = new Map(res.config.targets.map((t) => [t.node, paramCount(t)] as const));
  const skipped = new Map(
    res.targets
      .filter((t) => / term would cost more than the layer/.test(t.reason))
      .map((t) => [t.node, t.reason]),
  );
  const filled: QuadratizeOptions = {
    ...options,
    targets: options.targets ?? ref.targets,
    exclude: options.exclude ?? ref.exclude,
    includeHead: options.includeHead ?? ref.includeHead,
    kernelSize: options.kernelSize ?? ref.kernelSize,
    dilation: options.dilation ?? ref.dilation,
  };
  delete filled.budgetOf;
  delete filled.budgetMatch;
  return { options: filled, params, skipped, match };
}
