/**
 * The quadratize pass (DESIGN.md §3): every chosen Conv, Gemm or MatMul `y0 = L(x)` becomes
 * `y = L(x) + Q(x)` with `Q(x) = U(φ(A(x), B(x)))` (lowrank) or `φ(A(x), B(x))` (neuron),
 * emitted with standard ONNX ops. φ `linear` gives the first-order baseline `Q(x) = U(A(x))`
 * (a LoRA-style adapter with the same targets, geometry and names), and `budgetOf` sizes its
 * ranks to another adapter's parameter count, for fair comparisons. The base node is left exactly as it was: only its output is
 * renamed, and an Add carrying the original output name computes `y0 + Q(x)`, so consumers and
 * graph outputs keep their names and `unload` can restore the base graph exactly.
 */

import { GraphBuilder } from '../ir/builder.js';
import type { Graph, Node } from '../ir/graph.js';
import { cloneGraph, validateGraph } from '../ir/graph.js';
import type { ShapeInfo } from '../ir/shapes.js';
import { inferShapes } from '../ir/shapes.js';
import type { Tensor } from '../ir/tensor.js';
import { allocate, numel } from '../ir/tensor.js';
import { Rng } from '../util/random.js';
import type {
  AdapterConfig,
  AdapterState,
  QuadLayerKind,
  QuadMode,
  QuadParamSpec,
  QuadPhi,
  QuadTargetSpec,
  TargetWiring,
} from './quadratic-spec.js';
import {
  QUAD_MODES,
  QuadratizeError,
  readAdapterState,
  writeAdapterState,
} from './quadratic-spec.js';
import type { HandlerContext, PlannedTarget, TargetSettings } from './quadratic-handlers.js';
import { quadHandler, quadOpTypes } from './quadratic-handlers.js';
import { assertPatternsUsed, compilePatterns, constantLookup, findHeads } from './targets.js';
import { quadVariant, quadVariants, requireVariant, variantRefusal } from './variants/index.js';

export { quadParamNames } from './quadratic-spec.js';
export type { AdapterConfig, QuadMode, QuadPhi, QuadTargetSpec } from './quadratic-spec.js';

/** Options of `quadratize`. Every field is optional; defaults follow DESIGN.md §3. */
export interface QuadratizeOptions {
  /** `lowrank` (default): Q = U(φ(A x, B x)) of rank r; `neuron`: Q = φ(A x, B x), full rank. */
  mode?: QuadMode;
  /**
   * Rank r of every lowrank target (per group for grouped/depthwise convs). When absent, each
   * target gets its kind's default (`DEFAULT_RANKS`): 4 for Conv (groups 1), Gemm and MatMul,
   * 1 for depthwise and grouped convs, whose rank-4 term would cost several times the layer.
   */
  rank?: number;
  /**
   * Kernel function φ: `product` (default) a ⊙ b, `rbf` exp(−γ (a − b)²) (lowrank only), or
   * `linear`: no B and no φ, Q(x) = U(A(x)), the first-order low-rank (LoRA-style) baseline
   * (lowrank only; parameters `W.quad_a`, `W.quad_u`, initialised like the quadratic ones).
   */
  phi?: QuadPhi;
  /**
   * Kernel size kq of the convolutions A and B (one value for all spatial axes, or one per
   * axis). Default: the atrous rule (odd k > 3 → 3; otherwise k; neuron mode keeps k).
   */
  kernelSize?: number | readonly number[];
  /**
   * Dilation dq of the convolutions A and B (one value or one per axis). Default: the atrous
   * rule (odd k > 3 → d·(k − 1)/2; otherwise d).
   */
  dilation?: number | readonly number[];
  /**
   * Which layers to adapt: each entry is an op type (`Conv`, `Gemm`, `MatMul`) or a regular
   * expression searched in the node name and the weight name. Default: every Conv, Gemm and
   * MatMul with a constant weight. A pattern that matches no layer is an error.
   */
  targets?: readonly string[];
  /** Layers to leave out: op types or regular expressions (node or weight name). */
  exclude?: string | readonly string[];
  /** Per-layer ranks: pattern (as in `targets`) → rank; the first matching pattern wins. */
  rankOverrides?: Readonly<Record<string, number>>;
  /**
   * Also adapt the head: the layer whose output reaches a graph output through pass-through ops
   * (Identity, Flatten, Reshape, Softmax, a bias Add...). Default false: the head is left as is.
   */
  includeHead?: boolean;
  /** Seed of the random initialisation of A and B (default 0). */
  seed?: number;
  /**
   * Multiplier of the Kaiming-uniform bound of A and B: U(−s·√(6/fan_in), s·√(6/fan_in)) with
   * fan_in the inputs per output of A (Cin/g·∏kq for convs, n for Gemm/MatMul). Default 1.
   */
  initScale?: number;
  /** Only plan: list every candidate layer and why it is or is not adapted; build nothing. */
  dryRun?: boolean;
  /**
   * Size the ranks to another adapter's parameter budget (e.g. a `linear` baseline against a
   * quadratic adapter, for a fair comparison). First each target gets the largest rank r' whose
   * trainable parameters do not exceed those of the same layer's term under these options
   * (r' = 1 when even that exceeds them); then, with `budgetMatch` `total` (default), the
   * parameters left over are spent giving r' + 1 to the targets closest to their next rank
   * (largest remainder first) as long as the total stays within the reference's total. So every
   * target's rank is within one of its own budget and the totals differ by less than one rank of
   * the smallest target. Needs lowrank mode; `rank` and `rankOverrides` are then refused.
   * `targets`, `exclude`, `includeHead`, `kernelSize` and `dilation` default to the reference's,
   * and the targets must be exactly the reference's (otherwise the budgets are not comparable).
   */
  budgetOf?: QuadratizeOptions;
  /**
   * With `budgetOf`: `total` (default) matches the total parameter count (each target within one
   * rank of its own budget); `target` matches each target alone, never above its budget unless
   * r' = 1 (the totals can then be up to one rank per target short).
   */
  budgetMatch?: 'total' | 'target';
}

/** One Conv/Gemm/MatMul of the graph and what quadratize decided for it. */
export interface TargetReport {
  /** Node name. */
  node: string;
  /** Op type. */
  op: string;
  /** Name of its weight value, when it has one. */
  weight?: string;
  /** Layer kind, when it can be adapted at all. */
  kind?: QuadLayerKind;
  /** Whether it gets a quadratic term. */
  matched: boolean;
  /** Why it is (e.g. `default target`) or is not (e.g. `head (produces output 'logits')`) adapted. */
  reason: string;
  /** The planned quadratic term (matched layers only). */
  spec?: QuadTargetSpec;
}

/** The result of `quadratize`. */
export interface QuadratizeResult {
  /** The new graph (a copy of the input with the quadratic terms; unchanged copy in a dry run). */
  graph: Graph;
  /** Every candidate layer, in graph order, with the decision and its reason. */
  targets: TargetReport[];
  /** The adapter's configuration (also recorded in the new graph's metadata). */
  config: AdapterConfig;
}

interface NormalizedOptions {
  mode: QuadMode;
  rank: number;
  phi: QuadPhi;
  kernelSize?: number | readonly number[];
  dilation?: number | readonly number[];
  seed: number;
  initScale: number;
  includeHead: boolean;
  dryRun: boolean;
}

/**
 * Default rank per layer kind when no `rank` is given. DESIGN.md §3's rank 4 for dense layers;
 * rank 1 for depthwise/grouped convs: their term at channel multiplier r costs about 2r + 1
 * times the layer's FLOPs (A and B are depthwise convs with r outputs per channel), so rank 4
 * made a MobileNet-style net's depthwise layers 9× dearer.
 */
export const DEFAULT_RANKS: Readonly<Record<QuadLayerKind, number>> = {
  conv: 4,
  depthwise: 1,
  grouped: 1,
  gemm: 4,
  matmul: 4,
};

/**
 * Input channels up to which a default-target Conv counts as an image stem: it is left out when
 * its term has more weights than the layer (for a conv, FLOPs per output position are twice the
 * weights, so the term would cost more than the layer it adapts). Naming it in `targets` adapts it.
 */
export const STEM_MAX_CHANNELS = 3;

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

function checkKernelOption(v: unknown, name: string): void {
  if (v === undefined) return;
  const arr = Array.isArray(v) ? (v as unknown[]) : [v];
  if (arr.length === 0 || !arr.every(isPositiveInt))
    throw new QuadratizeError(`${name} must be a whole number ≥ 1 (or one per spatial axis)`);
}

function normalize(o: QuadratizeOptions): NormalizedOptions {
  const mode = o.mode ?? 'lowrank';
  if (!QUAD_MODES.includes(mode))
    throw new QuadratizeError(`mode must be 'lowrank' or 'neuron', not '${String(mode)}'`);
  const phi = o.phi ?? 'product';
  if (!quadVariant(phi)) {
    const names = quadVariants().map((n) => `'${n}'`);
    throw new QuadratizeError(`phi must be one of ${names.join(', ')}, not '${String(phi)}'`);
  }
  const refusal = variantRefusal(phi, mode);
  if (refusal) throw new QuadratizeError(refusal);
  if (o.budgetMatch !== undefined && o.budgetOf === undefined)
    throw new QuadratizeError('budgetMatch needs budgetOf (the adapter whose budget to match)');
  const rank = o.rank ?? 4;
  if (!isPositiveInt(rank))
    throw new QuadratizeError(`rank must be a whole number ≥ 1, not ${rank}`);
  checkKernelOption(o.kernelSize, 'kernelSize');
  checkKernelOption(o.dilation, 'dilation');
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed))
    throw new QuadratizeError(`seed must be a whole number, not ${seed}`);
  const initScale = o.initScale ?? 1;
  if (!(Number.isFinite(initScale) && initScale > 0))
    throw new QuadratizeError(`initScale must be a finite number > 0, not ${initScale}`);
  for (const [p, r] of Object.entries(o.rankOverrides ?? {})) {
    if (!isPositiveInt(r))
      throw new QuadratizeError(`rankOverrides['${p}'] must be a whole number ≥ 1, not ${r}`);
  }
  return {
    mode,
    rank,
    phi,
    kernelSize: o.kernelSize,
    dilation: o.dilation,
    seed,
    initScale,
    includeHead: o.includeHead ?? false,
    dryRun: o.dryRun ?? false,
  };
}

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

/** Refuses parameter names that already exist (e.g. a graph quadratized and then exported). */
function checkNameClashes(graph: Graph, planned: PlannedTarget[]): void {
  const taken = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((v) => v.name)]);
  for (const n of graph.nodes) for (const o of n.outputs) taken.add(o);
  for (const { spec } of planned) {
    for (const p of spec.params) {
      if (taken.has(p.name)) {
        throw new QuadratizeError(
          `node '${spec.node}' (${spec.op}): the graph already has a value named '${p.name}'; was it quadratized and exported before?`,
          spec.node,
        );
      }
    }
  }
}

/** A target sized by `budgetOf`: its budget, the cost of one rank, and how to re-plan it. */
interface BudgetItem {
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
function spendBudget(
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
function mostCommon(values: readonly number[]): number {
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
function tooDear(kind: QuadLayerKind, weight: Tensor, spec: QuadTargetSpec): string | undefined {
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

/** A 32-bit seed for one target: FNV-1a of the weight name mixed with the global seed. */
function targetSeed(seed: number, weight: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
  for (let i = 0; i < weight.length; i++) {
    h ^= weight.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Initial value of one quadratic parameter (see `quadratize`). */
function initParam(
  p: QuadParamSpec,
  spec: QuadTargetSpec,
  fanIn: number,
  like: Tensor,
  rng: Rng,
  initScale: number,
): Tensor {
  const n = numel(p.shape);
  const data = allocate(like.dtype, n) as Float32Array | Float64Array;
  const zero = p.role === 'quad_u' || (p.role === 'quad_a' && spec.mode === 'neuron');
  const channel = requireVariant(spec.phi).channelParams?.find((c) => c.role === p.role);
  if (channel) data.fill(channel.init);
  else if (!zero) {
    const bound = initScale * Math.sqrt(6 / fanIn);
    for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
  }
  return { dtype: like.dtype, dims: [...p.shape], data };
}

/** Builds the quadratized copy of `graph` from validated plans. */
function build(graph: Graph, planned: PlannedTarget[], config: AdapterConfig): Graph {
  const g = cloneGraph(graph);
  const b = new GraphBuilder(g);
  const constant = constantLookup(g);
  const wiring: Record<string, TargetWiring> = {};
  for (const { spec, fanIn } of planned) {
    const node = g.nodes.find((n) => n.name === spec.node)!;
    const handler = quadHandler(node)!;
    const firstNew = g.nodes.length;
    const initsBefore = new Set(g.initializers.keys());
    const weight = constant(spec.weight)!;
    const rng = new Rng(targetSeed(config.seed, spec.weight));
    const names = new Map<string, string>();
    for (const p of spec.params) {
      b.reserve(p.name);
      g.initializers.set(p.name, initParam(p, spec, fanIn, weight, rng, config.initScale));
      names.set(p.role, p.name);
    }
    b.prefix = `${node.name}/quad/`;
    const quadOutput = handler.emit({
      b,
      node,
      spec,
      param: (role) => {
        const name = names.get(role);
        if (!name) throw new Error(`target '${spec.node}' has no ${role} parameter`);
        return name;
      },
    });
    b.prefix = '';
    const output = node.outputs[0]!;
    const baseOutput = b.fresh(`${output}/base`);
    node.outputs[0] = baseOutput;
    // The Add takes over the original output name, so every consumer and graph output now sees
    // y0 + Q(x) without being touched. (Built by hand: the builder would rename the output.)
    const add: Node = {
      name: b.fresh(`${node.name}/quad/add`),
      opType: 'Add',
      domain: '',
      inputs: [baseOutput, quadOutput],
      outputs: [output],
      attrs: {},
    };
    g.nodes.push(add);
    // Keep the graph in topological order: the new nodes go right after the base node.
    const added = g.nodes.splice(firstNew);
    g.nodes.splice(g.nodes.indexOf(node) + 1, 0, ...added);
    wiring[node.name] = {
      output,
      baseOutput,
      quadOutput,
      addNode: add.name,
      nodes: added.map((n) => n.name),
      initializers: [...g.initializers.keys()].filter((k) => !initsBefore.has(k)),
    };
  }
  const state: AdapterState = {
    format: 'quadranet.adapter',
    version: 1,
    enabled: true,
    ...config,
    wiring,
  };
  writeAdapterState(g, state);
  validateGraph(g);
  return g;
}
