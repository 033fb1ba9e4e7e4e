/**
 * The data that describes a quadratic adapter (DESIGN.md §3): what `quadratize` decided for each
 * target layer, how it wired the quadratic term into the graph, and how that record travels in
 * `graph.metadata` so that `unload`, `setAdapterEnabled`, `saveAdapter` and the accounting can
 * find it again without guessing from node names.
 */

import type { Graph } from '../ir/graph.js';
import { GraphError } from '../ir/graph.js';

/** `lowrank`: Q(x) = U(φ(A(x), B(x))) with rank r; `neuron`: Q(x) = φ(A(x), B(x)), full rank. */
export type QuadMode = 'lowrank' | 'neuron';

/** Every mode, for option checks. */
export const QUAD_MODES: readonly QuadMode[] = ['lowrank', 'neuron'];

/**
 * The kernel function φ: the name of a registered variant (src/passes/variants): built in are
 * `product` (a ⊙ b), `rbf` (exp(−γ (a − b)²), learnable γ per channel), `square` (a ⊙ (a + b))
 * and `linear` (no B and no φ, Q(x) = U(A(x)): the first-order low-rank control, lowrank only).
 */
export type QuadPhi = string;

/** The op types the quadratic pass can adapt. */
export type QuadOp = 'Conv' | 'Gemm' | 'MatMul';

/**
 * What kind of layer a target is: a dense conv (groups 1), a depthwise conv (groups = Cin = Cout),
 * another grouped conv (rank r per group), a Gemm or a MatMul.
 */
export type QuadLayerKind = 'conv' | 'depthwise' | 'grouped' | 'gemm' | 'matmul';

/** The role of a quadratic parameter; also the suffix of its name (`W.quad_a`). */
export type QuadRole = 'quad_a' | 'quad_b' | 'quad_u' | 'quad_gamma';

/** The quadratic parameter roles in the order they are created and stored. */
export const QUAD_ROLES: readonly QuadRole[] = ['quad_a', 'quad_b', 'quad_u', 'quad_gamma'];

/** One quadratic parameter of a target: its initializer name and ONNX-layout shape. */
export interface QuadParamSpec {
  /** Which factor it is. */
  role: QuadRole;
  /** Initializer name and adapter-file key: `<weight>.<role>`. */
  name: string;
  /** Shape in ONNX layout (Conv: O × I/g × k…; Gemm: the base layer's transB layout). */
  shape: number[];
}

/**
 * Everything that defines one target's quadratic term. It is what `adapter_config.json` stores
 * per target, and all `loadAdapter` needs to rebuild the same term on the same base model.
 */
export interface QuadTargetSpec {
  /** Name of the base node (Conv, Gemm or MatMul). */
  node: string;
  /** Its op type. */
  op: QuadOp;
  /** Layer kind (dense/depthwise/grouped conv, gemm, matmul). */
  kind: QuadLayerKind;
  /** Name of the base weight initializer W (the parameters are named `W.quad_*`). */
  weight: string;
  /** Low-rank or full-rank (neuron) quadratic term. */
  mode: QuadMode;
  /** Rank r (per group for grouped and depthwise convs); null in neuron mode. */
  rank: number | null;
  /** The kernel function φ. */
  phi: QuadPhi;
  /** Conv only: kernel shape kq of A and B, per spatial axis. */
  kq?: number[];
  /** Conv only: dilation dq of A and B, per spatial axis. */
  dq?: number[];
  /** Conv only: strides of A and B (the base layer's). */
  strides?: number[];
  /** Conv only: explicit pads of A and B, [begins..., ends...], centring them on the base window. */
  pads?: number[];
  /** Conv only: group count of A, B and U (the base layer's). */
  group?: number;
  /** Gemm only: the base layer's transA (the branch reads the same input). */
  transA?: number;
  /** Gemm only: the base layer's transB; A, B and U are stored in the same convention. */
  transB?: number;
  /** The quadratic parameters, in `QUAD_ROLES` order. */
  params: QuadParamSpec[];
}

/** The adapter as a whole: global settings and the per-target specs. */
export interface AdapterConfig {
  /** Default mode of the targets. */
  mode: QuadMode;
  /** Default rank of the targets (lowrank mode). */
  rank: number;
  /** Kernel function of every target. */
  phi: QuadPhi;
  /** Seed of the random initialisation of A and B. */
  seed: number;
  /** Multiplier of the Kaiming-uniform bound of A and B. */
  initScale: number;
  /** The targets, in graph order. */
  targets: QuadTargetSpec[];
}

/**
 * How one target's quadratic term is wired into the graph (graph-specific names, kept only in
 * the graph's metadata): what `unload` removes and what `setAdapterEnabled` rewires.
 */
export interface TargetWiring {
  /** The output name the base node had before quadratize (now carried by the Add). */
  output: string;
  /** The base node's output after quadratize. */
  baseOutput: string;
  /** The value holding Q(x). */
  quadOutput: string;
  /** The node computing `output = baseOutput + quadOutput` (an Identity while disabled). */
  addNode: string;
  /** Every node quadratize added for this target (including the Add). */
  nodes: string[];
  /** Every initializer quadratize added for this target (parameters and constants). */
  initializers: string[];
}

/** The record kept in `graph.metadata[ADAPTER_METADATA_KEY]` of a quadratized graph. */
export interface AdapterState extends AdapterConfig {
  /** Format marker and version of this record. */
  format: 'quadranet.adapter';
  version: 1;
  /** Whether the quadratic terms are added (true) or bypassed (false). */
  enabled: boolean;
  /** Wiring of each target, by base node name. */
  wiring: Record<string, TargetWiring>;
}

/** The metadata key under which a quadratized graph records its adapter. */
export const ADAPTER_METADATA_KEY = 'quadranet.adapter';

/**
 * A conversion that cannot be done as asked (bad option, pattern matching nothing, unsupported
 * setting for a layer). A GraphError, so the CLI prints its one-line message as it is.
 */
export class QuadratizeError extends GraphError {
  constructor(message: string, node?: string) {
    super(message, node);
    this.name = 'QuadratizeError';
  }
}

/** The adapter record of a graph, or undefined when the graph has no quadratic adapter. */
export function readAdapterState(graph: Graph): AdapterState | undefined {
  const raw = graph.metadata[ADAPTER_METADATA_KEY];
  if (raw === undefined) return undefined;
  let state: unknown;
  try {
    state = JSON.parse(raw);
  } catch {
    throw new QuadratizeError(
      `graph '${graph.name}': metadata '${ADAPTER_METADATA_KEY}' is not valid JSON; the model was edited or corrupted`,
    );
  }
  const s = state as Partial<AdapterState> | null;
  if (
    !s ||
    s.format !== 'quadranet.adapter' ||
    s.version !== 1 ||
    !Array.isArray(s.targets) ||
    typeof s.wiring !== 'object' ||
    s.wiring === null
  ) {
    throw new QuadratizeError(
      `graph '${graph.name}': metadata '${ADAPTER_METADATA_KEY}' is not a quadranet adapter record (version 1)`,
    );
  }
  return s as AdapterState;
}

/** Stores the adapter record in a graph's metadata (the graph is modified: call on a copy). */
export function writeAdapterState(graph: Graph, state: AdapterState): void {
  graph.metadata[ADAPTER_METADATA_KEY] = JSON.stringify(state);
}

/** The AdapterConfig part of a state (what the adapter files store). */
export function configOf(state: AdapterConfig): AdapterConfig {
  return {
    mode: state.mode,
    rank: state.rank,
    phi: state.phi,
    seed: state.seed,
    initScale: state.initScale,
    targets: state.targets.map((t) => structuredClone(t)),
  };
}

/**
 * Names of the quadratic parameters of a quadratized graph (every `W.quad_*` initializer, in
 * target order), e.g. the parameter group of adapter-mode training. Empty for a plain graph.
 */
export function quadParamNames(graph: Graph): string[] {
  const state = readAdapterState(graph);
  return state ? state.targets.flatMap((t) => t.params.map((p) => p.name)) : [];
}
