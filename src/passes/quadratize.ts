/**
 * The quadratize pass (DESIGN.md §3): every chosen Conv, Gemm or MatMul `y0 = L(x)` becomes
 * `y = L(x) + Q(x)` with `Q(x) = U(φ(A(x), B(x)))` (lowrank) or `φ(A(x), B(x))` (neuron),
 * emitted with standard ONNX ops. The base node is left exactly as it was: only its output is
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
import { QuadratizeError, readAdapterState, writeAdapterState } from './quadratic-spec.js';
import type { HandlerContext, PlannedTarget, TargetSettings } from './quadratic-handlers.js';
import { quadHandler, quadOpTypes } from './quadratic-handlers.js';
import { assertPatternsUsed, compilePatterns, constantLookup, findHeads } from './targets.js';

export { quadParamNames } from './quadratic-spec.js';
export type { AdapterConfig, QuadMode, QuadPhi, QuadTargetSpec } from './quadratic-spec.js';

/** Options of `quadratize`. Every field is optional; defaults follow DESIGN.md §3. */
export interface QuadratizeOptions {
  /** `lowrank` (default): Q = U(φ(A x, B x)) of rank r; `neuron`: Q = φ(A x, B x), full rank. */
  mode?: QuadMode;
  /** Rank r of lowrank targets (default 4; per group for grouped/depthwise convs). */
  rank?: number;
  /** Kernel function φ: `product` (default) a ⊙ b, or `rbf` exp(−γ (a − b)²) (lowrank only). */
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

const MODES: readonly QuadMode[] = ['lowrank', 'neuron'];
const PHIS: readonly QuadPhi[] = ['product', 'rbf'];

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
  if (!MODES.includes(mode))
    throw new QuadratizeError(`mode must be 'lowrank' or 'neuron', not '${String(mode)}'`);
  const phi = o.phi ?? 'product';
  if (!PHIS.includes(phi))
    throw new QuadratizeError(`phi must be 'product' or 'rbf', not '${String(phi)}'`);
  // φ_rbf(a, b) ∈ (0, 1] is never zero, so without a U factor (initialised to 0) the converted
  // model could not start at exactly the pretrained function.
  if (mode === 'neuron' && phi === 'rbf') {
    throw new QuadratizeError(
      `phi 'rbf' needs mode 'lowrank': in neuron mode there is no U factor to start exp(−γ(a−b)²) ≠ 0 at zero`,
    );
  }
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
 * converted graph computes exactly the base function.
 */
export function quadratize(graph: Graph, options: QuadratizeOptions = {}): QuadratizeResult {
  const o = normalize(options);
  refuseIfQuadratized(graph);
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
      report.reason = `head (produces output '${head}'); set includeHead to adapt it`;
    else if (weightOwner.has(ins.weight!))
      report.reason = `weight '${ins.weight}' is shared with adapted node '${weightOwner.get(ins.weight!)}'`;
    else {
      const rank = byRank.length > 0 ? options.rankOverrides![byRank[0]!.source]! : o.rank;
      const settings: TargetSettings = {
        mode: o.mode,
        rank,
        phi: o.phi,
        kernelSize: o.kernelSize,
        dilation: o.dilation,
      };
      const p = handler.plan(node, ctx.constant(ins.weight!)!, ins.kind!, settings, ctx);
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
  checkNameClashes(graph, planned);

  const config: AdapterConfig = {
    mode: o.mode,
    rank: o.rank,
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
  if (p.role === 'quad_gamma') data.fill(1);
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
