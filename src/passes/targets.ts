/**
 * Target selection for the quadratic pass: which nodes are constants, which layer is the head,
 * and the user's target/exclude/rank patterns.
 */

import type { Graph, Node } from '../ir/graph.js';
import { producers } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { QuadratizeError } from './quadratic-spec.js';

/** A lookup of constant values: initializers and the outputs of tensor-valued Constant nodes. */
export function constantLookup(graph: Graph): (name: string) => Tensor | undefined {
  const fromNodes = new Map<string, Tensor>();
  for (const n of graph.nodes) {
    const v = n.attrs['value'];
    if (n.opType === 'Constant' && n.domain === '' && v?.type === 'tensor' && n.outputs[0])
      fromNodes.set(n.outputs[0], v.value);
  }
  return (name) => (name ? (graph.initializers.get(name) ?? fromNodes.get(name)) : undefined);
}

/**
 * Ops that pass a head's output to a graph output without being a layer of their own: walking
 * back from a graph output through them finds the layer that produces the logits.
 */
const PASS_THROUGH = new Set([
  'Identity',
  'Flatten',
  'Reshape',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Softmax',
  'LogSoftmax',
  'Sigmoid',
  'Dropout',
  'Cast',
]);

/** Elementwise ops that are part of the head when their other operand is a constant (a bias). */
const WITH_CONSTANT = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * The head layers: for each graph output, the nearest node accepted by `isLayer` reached by
 * walking back through pass-through ops (Identity, Flatten, Reshape, Softmax, ...) and
 * elementwise ops with a constant operand (a MatMul's bias Add). Maps node name → output name.
 * When `paths` is given, it receives for each head the nodes walked between it and its first
 * graph output (e.g. the bias Add of a MatMul head), nearest to the output first.
 */
export function findHeads(
  graph: Graph,
  isLayer: (n: Node) => boolean,
  isConstant: (name: string) => boolean,
  paths?: Map<string, Node[]>,
): Map<string, string> {
  const prod = producers(graph);
  const heads = new Map<string, string>();
  for (const out of graph.outputs) {
    let name = out.name;
    const seen = new Set<string>();
    const walked: Node[] = [];
    for (;;) {
      const p = prod.get(name);
      if (!p || seen.has(p.name)) break;
      seen.add(p.name);
      if (isLayer(p)) {
        if (!heads.has(p.name)) {
          heads.set(p.name, out.name);
          paths?.set(p.name, walked);
        }
        break;
      }
      walked.push(p);
      if (PASS_THROUGH.has(p.opType) && p.inputs[0]) {
        name = p.inputs[0];
        continue;
      }
      if (WITH_CONSTANT.has(p.opType)) {
        const live = p.inputs.filter((i) => i && !isConstant(i));
        if (live.length === 1) {
          name = live[0]!;
          continue;
        }
      }
      break;
    }
  }
  return heads;
}

/** The names a pattern is matched against. */
export interface PatternSubject {
  node: string;
  op: string;
  weight?: string;
}

/**
 * A user pattern: an op type (exactly `Conv`, `Gemm` or `MatMul`) or else a regular expression
 * searched in the node name and in the weight name. Records whether it matched anything, so
 * patterns that match nothing can be reported (a typo must not silently select nothing).
 */
export class TargetPattern {
  /** Whether `matches` has returned true at least once. */
  used = false;
  private readonly re?: RegExp;
  private readonly op?: string;

  constructor(
    /** The pattern as the user wrote it. */
    readonly source: string,
    /** The option it came from, for messages (e.g. `targets`). */
    readonly option: string,
    opTypes: readonly string[],
  ) {
    if (opTypes.includes(source)) {
      this.op = source;
      return;
    }
    try {
      this.re = new RegExp(source);
    } catch (e) {
      throw new QuadratizeError(
        `${option} pattern '${source}' is not a valid regular expression (${(e as Error).message})`,
      );
    }
  }

  /** Whether the pattern selects this layer (by op type, node name or weight name). */
  matches(s: PatternSubject): boolean {
    const hit = this.op
      ? s.op === this.op
      : this.re!.test(s.node) || (s.weight !== undefined && this.re!.test(s.weight));
    if (hit) this.used = true;
    return hit;
  }
}

/** Compiles a list of patterns from one option. */
export function compilePatterns(
  list: string | readonly string[] | undefined,
  option: string,
  opTypes: readonly string[],
): TargetPattern[] {
  if (list === undefined) return [];
  const arr = typeof list === 'string' ? [list] : list;
  return arr.map((p) => {
    if (typeof p !== 'string' || p === '')
      throw new QuadratizeError(`${option} patterns must be non-empty strings`);
    return new TargetPattern(p, option, opTypes);
  });
}

/** Throws for the first pattern that matched no layer. */
export function assertPatternsUsed(patterns: readonly TargetPattern[], layers: string): void {
  for (const p of patterns) {
    if (!p.used) {
      throw new QuadratizeError(
        `${p.option} pattern '${p.source}' matches no layer (${layers}); check the spelling with a dry run`,
      );
    }
  }
}
