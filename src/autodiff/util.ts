import type { GradContext } from './registry.js';

/**
 * Sums a broadcast gradient `g` (shape `from`) back to the shape `to` of the operand that was
 * broadcast: leading extra axes and axes where `to` has 1 are summed.
 */
export function sumToShape(
  ctx: GradContext,
  g: string,
  from: readonly number[],
  to: readonly number[],
): string {
  if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead || (to[i - lead] === 1 && from[i] !== 1)) axes.push(i);
  }
  let r = g;
  if (axes.length > 0) r = ctx.b.reduceSum(r, axes, true);
  return ctx.b.reshape(r, [...to]);
}
