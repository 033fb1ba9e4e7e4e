import type { GraphBuilder } from '../ir/builder.js';
import type { Graph, Node } from '../ir/graph.js';
import { cloneNode } from '../ir/graph.js';
import type { DType } from '../ir/tensor.js';
import { tensor } from '../ir/tensor.js';

/**
 * A forward subgraph whose activations the backward pass recomputes instead of keeping alive
 * (QuadraNet V2's memory-efficient backpropagation of the quadratic branch).
 */
export interface RecomputeSegment {
  /** Names of the forward nodes to recompute, in forward order. */
  nodes: string[];
  /** The forward value whose gradient gates the recomputation (the branch's output). */
  anchor: string;
  /** Parameters read by the segment; their recomputed use is gated on the anchor's gradient. */
  gated: string[];
}

/**
 * Rewires gradient nodes (those at index ≥ `forwardCount`) that read values produced by a
 * segment to read recomputed copies instead. The copies read `param + 0·g` where g is one
 * element of the anchor's gradient: numerically the same parameter (so gradients are bitwise
 * identical), but a data dependency that makes onnxruntime run the copy during the backward
 * pass (freeing the forward activations early) and keeps its common-subexpression elimination
 * from merging the copy back into the forward nodes.
 */
export function applyRecompute(
  g: Graph,
  b: GraphBuilder,
  forwardCount: number,
  segments: readonly RecomputeSegment[],
  gradOf: (value: string) => string | undefined,
  dtypeOf: (value: string) => DType,
): void {
  const byName = new Map(g.nodes.slice(0, forwardCount).map((n) => [n.name, n] as const));
  for (const seg of segments) {
    const dAnchor = gradOf(seg.anchor);
    if (!dAnchor) continue;
    const nodes = seg.nodes.map((n) => byName.get(n)).filter((n): n is Node => !!n);
    const produced = new Set(nodes.flatMap((n) => n.outputs));
    const gradientStart = forwardCount;
    const gradientNodes = g.nodes.slice(gradientStart);
    const readers = gradientNodes.filter((n) => n.inputs.some((i) => produced.has(i)));
    if (readers.length === 0) continue;
    const first = b.op(
      'Slice',
      [b.reshape(dAnchor, [-1]), b.ints([0]), b.ints([1])],
      {},
      { name: 'recompute/gate' },
    );
    const dtype = dtypeOf(seg.anchor);
    const zero = b.op(
      'Mul',
      [first, b.constant(tensor(dtype, [1], [0]), 'zero')],
      {},
      { name: 'recompute/zero' },
    );
    const mapped = new Map<string, string>();
    for (const p of seg.gated) mapped.set(p, b.add(p, zero));
    for (const n of nodes) {
      const c = cloneNode(n);
      c.name = b.fresh(`recompute/${n.name}`);
      c.inputs = n.inputs.map((i) => mapped.get(i) ?? i);
      c.outputs = n.outputs.map((o) => {
        if (!o) return o;
        const r = b.fresh(`recompute/${o}`);
        mapped.set(o, r);
        return r;
      });
      g.nodes.push(c);
    }
    for (const r of readers) r.inputs = r.inputs.map((i) => (produced.has(i) ? mapped.get(i)! : i));
  }
}
