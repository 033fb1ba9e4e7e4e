/**
 * Index arithmetic every stage shares (shape inference, folding, gradient rules, importers):
 * negative axes and ONNX Slice bounds, once.
 */

/** A possibly negative axis counted from the end (`-1` → `rank - 1`); not range-checked. */
export function wrapAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** A possibly negative axis as `0 … rank − 1`, or undefined when it is out of range. */
export function axisInRange(axis: number, rank: number): number | undefined {
  const a = wrapAxis(axis, rank);
  return a >= 0 && a < rank ? a : undefined;
}

/**
 * ONNX Slice on one axis of length `d`: the first index, the element count and the step after
 * the operator's rules (negative starts/ends count from the end, then clamp to [0, d] for a
 * positive step and to [−1, d − 1] for a negative one).
 */
export function sliceBounds(
  start: number,
  end: number,
  step: number,
  d: number,
): { start: number; end: number; count: number } {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = wrapAxis(start, d);
  let e = wrapAxis(end, d);
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
  } else {
    s = clamp(s, 0, d - 1);
    e = clamp(e, -1, d - 1);
  }
  return { start: s, end: e, count: Math.max(0, Math.ceil((e - s) / step)) };
}
