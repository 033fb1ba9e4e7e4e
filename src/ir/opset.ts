import type { Graph, Node } from './graph.js';
import { cloneGraph, usedNames, uniqueName } from './graph.js';
import { int64s } from './tensor.js';

/** Reduce ops whose `axes` moved from an attribute to an input in opset 18. */
const REDUCE_18 = [
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
];

/**
 * Rewrites a graph written for an older opset into the form of `target` (≥ 13): attributes that
 * became inputs (axes of Squeeze/Unsqueeze/ReduceSum at 13, of other Reduce ops at 18; `split`
 * at 13) are moved to int64 initializers. Ops whose meaning did not change are kept as they are.
 */
export function upgradeOpset(g: Graph, target: number): Graph {
  if (g.opset >= target) return g;
  const out = cloneGraph(g);
  const names = usedNames(out);
  const moveToInput = (n: Node, attr: string, index: number): void => {
    const a = n.attrs[attr];
    if (!a || a.type !== 'ints') return;
    const name = uniqueName(names, `${n.name}_${attr}`);
    out.initializers.set(name, int64s(a.value));
    while (n.inputs.length < index) n.inputs.push('');
    n.inputs[index] = name;
    delete n.attrs[attr];
  };
  for (const n of out.nodes) {
    if (n.domain !== '') continue;
    if (g.opset < 13) {
      if (n.opType === 'Squeeze' || n.opType === 'Unsqueeze' || n.opType === 'ReduceSum')
        moveToInput(n, 'axes', 1);
      if (n.opType === 'Split') moveToInput(n, 'split', 1);
    }
    if (g.opset < 18 && REDUCE_18.includes(n.opType)) moveToInput(n, 'axes', 1);
    // Opset 18 asks Split for either a `split` input or `num_outputs`.
    if (g.opset < 18 && n.opType === 'Split' && !n.inputs[1] && !n.attrs['num_outputs']) {
      n.attrs['num_outputs'] = { type: 'int', value: n.outputs.length };
    }
  }
  out.opset = target;
  return out;
}
