/** Shape rules: If: its branches are inferred as subgraphs. */

import type { Node, ValueInfo } from '../graph.js';
import { implicitInputs, untypedValues } from '../graph.js';
import { fail, registerShapeRule } from './registry.js';
import type { ShapeInfo } from './infer.js';
import { inferShapes } from './infer.js';

// If whose condition is not a constant (constant ones are folded on import): each branch is
// inferred with the outer values it reads, and the outputs merged (a dimension the branches
// disagree on becomes symbolic). Where a branch cannot be inferred, its declared output types are
// used; without those the node is left unknown. Loop and Scan have no rule.
registerShapeRule('If', (ctx) => {
  const branch = (k: string): ValueInfo[] | undefined => {
    const a = ctx.node.attrs[k];
    if (a?.type !== 'graph') return undefined;
    const sub = a.value;
    const probe: Node = { ...ctx.node, attrs: { b: a } };
    const outer = implicitInputs(probe).map((v) => ctx.lookup(v));
    let inferred: ShapeInfo | undefined;
    if (outer.every((v) => v))
      try {
        inferred = inferShapes({ ...sub, inputs: [...sub.inputs, ...(outer as ValueInfo[])] });
      } catch {
        inferred = undefined;
      }
    return sub.outputs.map((o) => {
      const v = inferred?.values.get(o.name);
      if (v) return v;
      return untypedValues.has(o) ? { ...o, dtype: 'bool' as const, shape: ['?'] } : o;
    });
  };
  const [t, e] = [branch('then_branch'), branch('else_branch')];
  if (!t || !e) fail(ctx, `then_branch and else_branch are needed`);
  const known = ctx.node.outputs.every((_, i) => {
    const [a, b] = [t[i], e[i]];
    return (
      a && b && a.dtype === b.dtype && a.shape.length === b.shape.length && !a.shape.includes('?')
    );
  });
  if (!known) return { outputs: [], unknown: true };
  return {
    outputs: ctx.node.outputs.map((_, i) => {
      const [a, b] = [t[i]!, e[i]!];
      const shape = a.shape.map((d, k) => (d === b.shape[k] ? d : `if_${ctx.node.name}_${i}_${k}`));
      return { dtype: a.dtype, shape };
    }),
  };
});
