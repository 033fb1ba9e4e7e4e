/**
 * The options of the quadratize pass, its result types and their checks (one place: quadratize,
 * quadratizeFromConfig and the budget planner read them).
 */

import type { Graph } from '../ir/graph.js';
import type {
  QuadLayerKind,
  QuadMode,
  QuadPhi,
  QuadTargetSpec,
  AdapterConfig,
} from './quadratic-spec.js';
import { QUAD_MODES, QuadratizeError } from './quadratic-spec.js';
import { quadVariant, quadVariants, variantRefusal } from './variants/index.js';

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

export interface NormalizedOptions {
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

export function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

function checkKernelOption(v: unknown, name: string): void {
  if (v === undefined) return;
  const arr = Array.isArray(v) ? (v as unknown[]) : [v];
  if (arr.length === 0 || !arr.every(isPositiveInt))
    throw new QuadratizeError(`${name} must be a whole number ≥ 1 (or one per spatial axis)`);
}

export function normalize(o: QuadratizeOptions): NormalizedOptions {
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
