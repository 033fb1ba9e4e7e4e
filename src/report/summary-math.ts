/** Small statistics and orderings shared by the summary's sections. */

import { RUN_METHODS } from '../io/formats/run-schemas.js';
import type { RunMethod } from '../io/formats/run-format.js';

/** Mean of a non-empty list. */
export function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n − 1); null for fewer than two values. */
export function sampleStd(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

/** A method's place in the report's lists (the run format's order). */
export function methodOrder(m: RunMethod): number {
  return RUN_METHODS.indexOf(m);
}
