import { attrString, GraphError } from '../../ir/graph.js';
import { registerGradient } from '../registry.js';

// Einsum without ellipsis or repeated subscripts within a term (the forms attention and
// bilinear layers write: 'bhqd,bhkd->bhqk', 'bij,bjk->bik', 'bi,oij,bj->bo', ...). The
// gradient of operand k is itself an Einsum of dy with the other operands onto k's
// subscripts; subscripts that appear only in operand k (summed away) are broadcast back.

/** Parsed equation: one subscript string per operand, and the output's. */
function parse(eq: string, node: string): { terms: string[]; out: string } {
  const clean = eq.replace(/\s+/g, '');
  const refuse = (why: string): never => {
    throw new GraphError(
      `node '${node}' (Einsum): equation '${eq}' ${why}; only explicit subscripts without '...' or repeated letters in one term are differentiable`,
      node,
    );
  };
  if (clean.includes('.')) refuse('uses an ellipsis');
  const [lhs, rhs] = clean.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  for (const t of [...terms, rhs ?? '']) {
    if (!/^[A-Za-z]*$/.test(t)) refuse('is malformed');
    if (new Set(t).size !== t.length) refuse(`repeats a subscript in '${t}'`);
  }
  let out = rhs;
  if (out === undefined) {
    // Implicit output: the letters that appear once, in alphabetical order.
    const counts = new Map<string, number>();
    for (const ch of lhs.replace(/,/g, '')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    out = [...counts]
      .filter(([, k]) => k === 1)
      .map(([ch]) => ch)
      .sort()
      .join('');
  }
  return { terms, out };
}

registerGradient('Einsum', (ctx, [dy]) => {
  const b = ctx.b;
  const node = ctx.node;
  const { terms, out } = parse(attrString(node, 'equation', ''), node.name);
  return node.inputs.map((x, k) => {
    if (!ctx.needs(k)) return undefined;
    const others = terms.filter((_, j) => j !== k);
    const visible = new Set(out + others.join(''));
    const term = terms[k]!;
    const target = [...term].filter((ch) => visible.has(ch)).join('');
    const eq = `${[out, ...others].join(',')}->${target}`;
    let g = b.op('Einsum', [dy!, ...node.inputs.filter((_, j) => j !== k)], { equation: eq });
    if (target.length === term.length) return g;
    // Letters summed inside operand k alone: every element got the same gradient.
    const xs = ctx.shape(x);
    const missing = [...term].flatMap((ch, i) => (visible.has(ch) ? [] : [i]));
    g = b.unsqueeze(g, missing);
    return b.op('Expand', [g, b.ints(xs)]);
  });
});
