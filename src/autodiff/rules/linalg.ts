import { attrFloat, attrInt } from '../../ir/graph.js';
import type { GradContext } from '../registry.js';
import { registerGradient } from '../registry.js';
import { sumToShape } from '../util.js';

/** Swaps the last two axes of a value of rank `rank`. */
function swapLast(ctx: GradContext, x: string, rank: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return ctx.b.transpose(x, perm);
}

// MatMul with numpy semantics: 1-D operands are promoted to matrices, batch axes broadcast.
registerGradient('MatMul', (ctx, [dy]) => {
  const [a, b] = ctx.node.inputs as [string, string];
  const as = ctx.shape(a);
  const bs = ctx.shape(b);
  const as2 = as.length === 1 ? [1, as[0]!] : as;
  const bs2 = bs.length === 1 ? [bs[0]!, 1] : bs;
  const a2 = as.length === 1 ? ctx.b.unsqueeze(a, [0]) : a;
  const b2 = bs.length === 1 ? ctx.b.unsqueeze(b, [1]) : b;
  const batch = broadcast(as2.slice(0, -2), bs2.slice(0, -2));
  const m = as2[as2.length - 2]!;
  const k = as2[as2.length - 1]!;
  const n = bs2[bs2.length - 1]!;
  // dy lacks the promoted axes; give them back so both products are plain batched matmuls.
  const g = as.length === 1 || bs.length === 1 ? ctx.b.reshape(dy!, [...batch, m, n]) : dy!;
  const back = (d: string, full: number[], promoted: number[], orig: number[]) => {
    const r = sumToShape(ctx, d, full, promoted);
    return promoted.length === orig.length ? r : ctx.b.reshape(r, orig);
  };
  return [
    ctx.needs(0)
      ? back(ctx.b.matmul(g, swapLast(ctx, b2, bs2.length)), [...batch, m, k], as2, as)
      : undefined,
    ctx.needs(1)
      ? back(ctx.b.matmul(swapLast(ctx, a2, as2.length), g), [...batch, k, n], bs2, bs)
      : undefined,
  ];
});

function broadcast(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    out.push(x === 1 ? y : x);
  }
  return out;
}

// Gemm: Y = alpha * op(A) op(B) + beta * C, op = optional transpose.
registerGradient('Gemm', (ctx, [dy]) => {
  const n = ctx.node;
  const [a, b, c] = n.inputs as [string, string, string | undefined];
  const alpha = attrFloat(n, 'alpha', 1);
  const beta = attrFloat(n, 'beta', 1);
  const ta = attrInt(n, 'transA', 0) === 1;
  const tb = attrInt(n, 'transB', 0) === 1;
  const g = alpha === 1 ? dy! : ctx.b.mul(dy!, ctx.scalar(alpha));
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  // dA = g op(B)^T (transposed back if A was transposed); same pattern for B.
  if (ctx.needs(0)) {
    out[0] = ta
      ? ctx.b.op('Gemm', [b, g], { transA: tb ? 1 : 0, transB: 1 })
      : ctx.b.op('Gemm', [g, b], { transA: 0, transB: tb ? 0 : 1 });
  }
  if (ctx.needs(1)) {
    out[1] = tb
      ? ctx.b.op('Gemm', [g, a], { transA: 1, transB: ta ? 1 : 0 })
      : ctx.b.op('Gemm', [a, g], { transA: ta ? 0 : 1, transB: 0 });
  }
  if (c && ctx.needs(2)) {
    const gc = beta === 1 ? dy! : ctx.b.mul(dy!, ctx.scalar(beta));
    out[2] = sumToShape(ctx, gc, ctx.shape(n.outputs[0]!), ctx.shape(c));
  }
  return out;
});
