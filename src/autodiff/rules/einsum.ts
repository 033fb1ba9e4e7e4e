import { attrString, GraphError } from '../../ir/graph.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';

// Einsum without ellipsis or repeated subscripts within a term (the forms attention and
// bilinear layers write: 'bhqd,bhkd->bhqk', 'bij,bjk->bik', 'bi,oij,bj->bo', ...). The
// gradient of operand k is itself an Einsum of dy with the other operands onto k's
// subscripts; subscripts that appear only in operand k (summed away) are broadcast back. With
// two operands (attention, bilinear forms) that Einsum is emitted as Transpose / Reshape /
// MatMul, which every onnxruntime execution provider runs fast.

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

/**
 * A two-operand Einsum `p,q->r` as Transpose / Reshape / MatMul: letters in p, q and r are batch
 * axes, in p and r (q and r) rows (columns), in p and q the contraction; letters in one operand
 * only are summed first. Undefined when a letter's sizes differ between the operands
 * (broadcasting), where the Einsum op is kept.
 */
function einsumAsMatMul(
  ctx: GradContext,
  [p, q]: [string, string],
  r: string,
  [x, y]: string[],
  [sx, sy]: number[][],
): string | undefined {
  const b = ctx.b;
  const size = new Map<string, number>();
  for (const [t, s] of [
    [p, sx!],
    [q, sy!],
  ] as const) {
    for (let i = 0; i < t.length; i++) {
      const prev = size.get(t[i]!);
      if (prev !== undefined && prev !== s[i]) return undefined;
      size.set(t[i]!, s[i]!);
    }
  }
  const only = (t: string, o1: string, o2: string) =>
    [...t].filter((ch) => !o1.includes(ch) && !o2.includes(ch));
  /** Sums an operand's private letters away; returns the value and its remaining letters. */
  const reduce = (v: string, t: string, other: string): [string, string] => {
    const priv = only(t, other, r);
    if (priv.length === 0) return [v, t];
    const axes = priv.map((ch) => t.indexOf(ch));
    return [b.reduceSum(v, axes, false), [...t].filter((ch) => !priv.includes(ch)).join('')];
  };
  const [xv, pt] = reduce(x!, p, q);
  const [yv, qt] = reduce(y!, q, p);
  const batch = [...r].filter((ch) => pt.includes(ch) && qt.includes(ch));
  const rows = [...r].filter((ch) => pt.includes(ch) && !qt.includes(ch));
  const cols = [...r].filter((ch) => qt.includes(ch) && !pt.includes(ch));
  const inner = [...pt].filter((ch) => qt.includes(ch) && !r.includes(ch));
  const prod = (ls: string[]) => ls.reduce((a, ch) => a * size.get(ch)!, 1);
  /** Transposes an operand to `order` (skipped when already there) and folds it to 3-D. */
  const arrange = (v: string, t: string, order: string[], dims: number[]) => {
    const perm = order.map((ch) => t.indexOf(ch));
    const moved = perm.every((a, i) => a === i) ? v : b.transpose(v, perm);
    return b.reshape(moved, dims);
  };
  const nb = prod(batch);
  const xm = arrange(xv, pt, [...batch, ...rows, ...inner], [nb, prod(rows), prod(inner)]);
  const ym = arrange(yv, qt, [...batch, ...inner, ...cols], [nb, prod(inner), prod(cols)]);
  const mm = b.matmul(xm, ym);
  const have = [...batch, ...rows, ...cols];
  const z = b.reshape(
    mm,
    have.map((ch) => size.get(ch)!),
  );
  const perm = [...r].map((ch) => have.indexOf(ch));
  return perm.every((a, i) => a === i) ? z : b.transpose(z, perm);
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
    const ins = [dy!, ...node.inputs.filter((_, j) => j !== k)];
    const shapes = [ctx.shape(node.outputs[0]!), ...ins.slice(1).map((v) => ctx.shape(v))];
    let g =
      ins.length === 2
        ? (einsumAsMatMul(ctx, [out, others[0]!], target, ins, shapes) ??
          b.op('Einsum', ins, { equation: eq }))
        : b.op('Einsum', ins, { equation: eq });
    if (target.length === term.length) return g;
    // Letters summed inside operand k alone: every element got the same gradient.
    const xs = ctx.shape(x);
    const missing = [...term].flatMap((ch, i) => (visible.has(ch) ? [] : [i]));
    g = b.unsqueeze(g, missing);
    return b.op('Expand', [g, b.ints(xs)]);
  });
});
