import type { Graph } from '../ir/graph.js';
import { consumers } from '../ir/graph.js';

/** Inputs (by op type and index) that hold learnable parameters. */
const PARAM_INPUTS: Record<string, number[]> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [1, 2],
  MatMul: [0, 1],
  Add: [0, 1],
  Mul: [0, 1],
  Sub: [0, 1],
  BatchNormalization: [1, 2],
  LayerNormalization: [1, 2],
  PRelu: [1],
};

/**
 * The float initializers that are learnable parameters: weights and biases, norm scales and
 * shifts. BatchNorm running statistics, shape constants and Resize scales are not.
 */
export function learnableParams(g: Graph): string[] {
  const cons = consumers(g);
  const out: string[] = [];
  for (const [name, t] of g.initializers) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
    const users = cons.get(name) ?? [];
    const learnable =
      users.length > 0 &&
      users.every((n) =>
        n.inputs.some((inp, i) => inp === name && (PARAM_INPUTS[n.opType] ?? []).includes(i)),
      );
    if (learnable) out.push(name);
  }
  return out;
}

/** Total number of elements of the named initializers. */
export function countParams(g: Graph, names: readonly string[]): number {
  return names.reduce((s, n) => s + (g.initializers.get(n)?.data.length ?? 0), 0);
}
