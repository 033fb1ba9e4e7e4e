/**
 * The report's noise statistics: how sure an accuracy is (binomial, over the test examples), how
 * sure a latency ratio is (paired timings), and when two accuracies differ beyond noise.
 */

/** z of a two-sided 95% interval. */
const Z95 = 1.959963984540054;

/** A closed interval [lo, hi]. */
export type Interval = readonly [number, number];

/**
 * Wilson score 95% interval of an accuracy measured on `n` examples (better than the normal
 * approximation near 0 and 1 and on small sets); null without examples.
 */
export function wilsonInterval(p: number, n: number): Interval | null {
  if (!(n > 0) || Number.isNaN(p)) return null;
  const z2 = Z95 * Z95;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (Z95 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** log C(n, k), exact enough for the sign-test tails below (n up to a few thousand). */
function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/**
 * Distribution-free 95% interval of the median of `values` (the sign-test interval: order
 * statistics k and n−k+1, with k the largest rank whose binomial tail is ≤ 2.5%). Null when there
 * are too few values for any such interval (n < 6).
 */
export function medianInterval(values: readonly number[]): Interval | null {
  const n = values.length;
  if (n < 6) return null;
  const sorted = [...values].sort((a, b) => a - b);
  // P(Binomial(n, 1/2) ≤ j) accumulated until it passes 2.5%.
  let tail = 0;
  let k = 0;
  for (let j = 0; j < n; j++) {
    tail += Math.exp(logChoose(n, j) - n * Math.LN2);
    if (tail > 0.025) break;
    k = j + 1;
  }
  if (k === 0) return null;
  return [sorted[k - 1]!, sorted[n - k]!];
}

/** Median of a non-empty list. */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Ratio of two models' inference times from timings taken alternately, run by run: the median of
 * the per-run ratios and its 95% interval. Pairing cancels most machine noise, which on a shared
 * machine swings single timings by far more than the difference between two similar models.
 *
 * With `setSizes` (how many runs each fresh set of sessions made, in order), the interval also
 * covers the median ratio of every set: a session keeps a speed of its own (two sessions of one
 * model differed by up to 1.6×), so runs within a set are not independent repeats, and an
 * interval from the runs alone would call one session's luck a difference between the models.
 * Null when the timings are missing or not paired (different counts).
 */
export function pairedRatio(
  modelMs: readonly number[] | undefined,
  baseMs: readonly number[] | undefined,
  setSizes?: readonly number[],
): { median: number; interval: Interval | null; setMedians?: number[] } | null {
  if (!modelMs || !baseMs || modelMs.length === 0 || modelMs.length !== baseMs.length) return null;
  const ratioAt = (i: number) => (baseMs[i]! > 0 ? modelMs[i]! / baseMs[i]! : null);
  const ratios: number[] = [];
  for (let i = 0; i < modelMs.length; i++) {
    const r = ratioAt(i);
    if (r !== null) ratios.push(r);
  }
  if (ratios.length === 0) return null;
  const out: { median: number; interval: Interval | null; setMedians?: number[] } = {
    median: median(ratios),
    interval: medianInterval(ratios),
  };
  const sets = setSizes ?? [];
  if (sets.length > 1 && sets.reduce((a, b) => a + b, 0) === modelMs.length) {
    const setMedians: number[] = [];
    let start = 0;
    for (const n of sets) {
      const rs: number[] = [];
      for (let i = start; i < start + n; i++) {
        const r = ratioAt(i);
        if (r !== null) rs.push(r);
      }
      if (rs.length > 0) setMedians.push(median(rs));
      start += n;
    }
    out.setMedians = setMedians;
    if (out.interval) {
      out.interval = [
        Math.min(out.interval[0], ...setMedians),
        Math.max(out.interval[1], ...setMedians),
      ];
    }
  }
  return out;
}

/**
 * The spread of one configuration's accuracy, as a standard error (fraction): over seeds when
 * there are several (sample std / √n), combined with the binomial error of the test set.
 */
export function accuracyStdError(
  meanAccuracy: number,
  testExamples: number | null,
  seedStd: number | null,
  seeds: number,
): number {
  const binomial =
    testExamples && testExamples > 0 ? (meanAccuracy * (1 - meanAccuracy)) / testExamples : 0;
  const overSeeds = seedStd !== null && seeds > 1 ? (seedStd * seedStd) / seeds : 0;
  return Math.sqrt(binomial + overSeeds);
}

/** Half-width (percentage points) of the 95% band of the difference of two accuracies. */
export function differenceBandPts(stdErrA: number, stdErrB: number): number {
  return Z95 * Math.sqrt(stdErrA * stdErrA + stdErrB * stdErrB) * 100;
}
