import { GraphBuilder } from '../ir/builder.js';
import type { Graph, Node } from '../ir/graph.js';
import { cloneGraph } from '../ir/graph.js';
import { inferShapes } from '../ir/shapes/index.js';

/**
 * Keeps onnxruntime from computing a graph wrongly. onnxruntime-node 1.30's PadFusion (on at every
 * optimization level above 'disabled') folds a constant Pad into a following MaxPool's pads, which
 * MaxPool fills with −inf instead of the Pad's value: a window whose real values are all below the
 * pad value returns the wrong maximum (Pad 0 → MaxPool over [−1, −2] gives −1, not 0). A
 * Clip(x, −inf, +inf) between them is the identity and stops the fusion. Applied to the graphs of
 * sessions only; written models keep the user's graph.
 */
export function guardPadBeforeMaxPool(graph: Graph): Graph {
  const constPads = new Set(
    graph.nodes
      .filter((n) => n.opType === 'Pad' && (n.attrs['mode']?.value ?? 'constant') === 'constant')
      .map((n) => n.outputs[0]!),
  );
  const hazard = (n: Node) => n.opType === 'MaxPool' && constPads.has(n.inputs[0] ?? '');
  if (!graph.nodes.some(hazard)) return graph;
  const dtypes = inferShapes(graph).values;
  const g = cloneGraph(graph);
  const b = new GraphBuilder(g, 'pad_guard/');
  const nodes = g.nodes;
  g.nodes = [];
  for (const n of nodes) {
    const x = n.inputs[0] ?? '';
    if (hazard(n)) {
      const dtype = dtypes.get(x)?.dtype ?? 'float32';
      // The builder appends the Clip to g.nodes, right before its MaxPool.
      const kept = b.op('Clip', [x, b.scalar(-Infinity, dtype), b.scalar(Infinity, dtype)]);
      g.nodes.push({ ...n, inputs: [kept, ...n.inputs.slice(1)] });
    } else g.nodes.push(n);
  }
  return g;
}
