import assert from 'node:assert/strict';

/** Tolerances for `expectAllClose`: |a - e| <= atol + rtol * |e| elementwise (numpy's rule). */
export interface AllCloseOptions {
  /** Relative tolerance. */
  rtol?: number;
  /** Absolute tolerance. */
  atol?: number;
  /** Prefix for the failure message. */
  what?: string;
}

type NumArray = ArrayLike<number> | ArrayLike<bigint>;

/**
 * The one tolerance check of the test suite. Fails with the worst element, its index and the
 * counts, and fails on any NaN mismatch or length mismatch.
 */
export function expectAllClose(
  actual: NumArray,
  expected: NumArray,
  { rtol = 1e-5, atol = 1e-8, what = 'values' }: AllCloseOptions = {},
): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: length ${actual.length} != ${expected.length}`,
  );
  let worst = -1;
  let worstExcess = 0;
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    if (Number.isNaN(a) || Number.isNaN(e)) {
      if (Number.isNaN(a) && Number.isNaN(e)) continue;
      bad++;
      if (worst < 0 || worstExcess !== Infinity) {
        worst = i;
        worstExcess = Infinity;
      }
      continue;
    }
    if (a === e) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (excess > 0) {
      bad++;
      if (excess > worstExcess || worst < 0) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (bad > 0) {
    assert.fail(
      `${what}: ${bad}/${actual.length} elements differ beyond rtol=${rtol} atol=${atol}; ` +
        `worst at [${worst}]: actual ${Number(actual[worst])}, expected ${Number(expected[worst])}`,
    );
  }
}
