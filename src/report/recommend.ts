/**
 * The report's recommendation: per data set, the cheapest way to get an accuracy within the noise
 * band of the best one, and a plain statement of whether the quadratic term paid for itself.
 *
 * Rules (stated in the report too):
 * - Options are the configurations (method + label, means over seeds) and the original model
 *   (no training, no inference overhead).
 * - Each option's accuracy has a standard error from its seeds and the test set's binomial error;
 *   an option is "within noise" of the most accurate one when the gap is at most the 95% band of
 *   the difference.
 * - The recommended option is the one within noise with the least training compute (the original
 *   model costs none); ties go to the lower inference cost.
 * - Inference cost is the paired latency ratio to the original model with its 95% interval; an
 *   interval that covers 1 is "no measurable difference". Without paired timings the ratio of
 *   medians is shown but never called a difference.
 */

import { fmtAcc, fmtCpu, fmtRatio, fmtSignedShare, fmtUsd } from './format.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type { Interval } from './stats.js';
import { accuracyStdError, differenceBandPts, pairedRatio, wilsonInterval } from './stats.js';
import type { BaseAccuracy, GroupSummary, RunSummary } from './summary.js';

/** Inference time of an option against the original model. */
export interface LatencyVerdict {
  /** Batch size compared. */
  batchSize: number;
  /** Median of the paired per-run ratios, else the ratio of the two medians. */
  ratio: number;
  /** 95% interval of the paired ratio; null without paired timings. */
  interval: Interval | null;
  /** 'slower'/'faster' only when the interval excludes 1; 'unknown' without an interval. */
  difference: 'slower' | 'faster' | 'none' | 'unknown';
}

/** One way to get a model for a data set: a trained configuration, or the original model. */
export interface RecommendationOption {
  /** GroupSummary.key, or null for the original model. */
  group: string | null;
  name: string;
  method: RunMethod | 'original';
  /** Mean test (else validation) accuracy over the seeds. */
  accuracy: number;
  /** 95% binomial interval of the accuracy over the test examples (null when their count is unknown). */
  interval: Interval | null;
  /** Test examples the accuracy is measured on (null when unknown). */
  testExamples: number | null;
  seeds: number;
  /** Standard error (fraction) from seeds and the test set. */
  stdError: number;
  /** Mean training CPU-seconds (0 for the original model). */
  cpuSeconds: number;
  costUsd: number;
  /** FLOPs over the original model's, in percent (0 for unchanged structure). */
  flopOverheadPct: number | null;
  latency: LatencyVerdict | null;
  /** Most accurate minus this, in points. */
  gapToBestPts: number;
  /** 95% band of that gap, in points. */
  bandPts: number;
  withinNoiseOfBest: boolean;
}

/** What the report recommends for one data set. */
export interface Recommendation {
  data: string;
  /** Every option, most accurate first. */
  options: RecommendationOption[];
  /** The recommended option (cheapest within noise of the best). */
  choice: RecommendationOption;
  /** Whether every option is within noise of the best. */
  allWithinNoise: boolean;
  /**
   * The quadratic term's case: 'wins' (best beyond noise), 'cheapest' (within noise of the best and
   * the cheapest such option), 'not-worth-it' (another option within noise costs less, or it is
   * below the best beyond noise), 'not-run'.
   */
  quadratic: 'wins' | 'cheapest' | 'not-worth-it' | 'not-run';
  /** The recommendation in plain sentences. */
  sentences: string[];
}

/** The inference-time comparison of runs' models with their base, pooled over the runs. */
export function latencyOf(runs: readonly RunSummary[]): LatencyVerdict | null {
  // Batch 1 when measured (what a user waits for), else the smallest batch with a base timing.
  const batches = [
    ...new Set(runs.flatMap((r) => r.latency.filter((l) => l.base).map((l) => l.batchSize))),
  ].sort((a, b) => a - b);
  if (batches.length === 0) return null;
  const batchSize = batches.includes(1) ? 1 : batches[0]!;
  const model: number[] = [];
  const base: number[] = [];
  // Every run's session sets are separate repeats; null once a run lacks them.
  let sets: number[] | null = [];
  let paired = true;
  const medians: number[] = [];
  for (const r of runs) {
    const l = r.latency.find((x) => x.batchSize === batchSize && x.base);
    if (!l) continue;
    if (l.p50Ratio !== null) medians.push(l.p50Ratio);
    const p = l.model.timesMs;
    const q = l.base!.timesMs;
    if (p && q && p.length === q.length && p.length > 0) {
      model.push(...p);
      base.push(...q);
      const s = l.model.setSizes;
      sets = sets && s && s.reduce((a, b) => a + b, 0) === p.length ? [...sets, ...s] : null;
    } else paired = false;
  }
  const pr = paired ? pairedRatio(model, base, sets ?? undefined) : null;
  if (pr) {
    const iv = pr.interval;
    const difference = !iv ? 'unknown' : iv[0] > 1 ? 'slower' : iv[1] < 1 ? 'faster' : 'none';
    return { batchSize, ratio: pr.median, interval: iv, difference };
  }
  if (medians.length === 0) return null;
  const ratio = medians.reduce((a, b) => a + b, 0) / medians.length;
  return { batchSize, ratio, interval: null, difference: 'unknown' };
}

/** "1.18× slower (95% interval 1.10–1.25×, batch 1)" and the like. */
export function describeLatency(l: LatencyVerdict | null): string {
  if (!l) return 'inference not timed against the original';
  const at = `batch ${l.batchSize}`;
  const iv = l.interval ? `95% interval ${fmtRatio(l.interval[0])}–${fmtRatio(l.interval[1])}` : '';
  switch (l.difference) {
    case 'slower':
      return `inference ${fmtRatio(l.ratio)} the original's time (${iv}, ${at})`;
    case 'faster':
      return `inference ${fmtRatio(l.ratio)} the original's time, faster (${iv}, ${at})`;
    case 'none':
      return `no measurable difference in inference time (${fmtRatio(l.ratio)}, ${iv}, ${at})`;
    case 'unknown':
      return `inference ${fmtRatio(l.ratio)} the original's time by single medians (${at}; no paired timings, so not evidence of a difference)`;
  }
}

/** The same, short enough for a table cell: "1.18× slower (1.10–1.25×)", "no difference (…)". */
export function shortLatency(l: LatencyVerdict | null): string {
  if (!l) return '—';
  const iv = l.interval ? ` (${fmtRatio(l.interval[0])}–${fmtRatio(l.interval[1])})` : '';
  switch (l.difference) {
    case 'slower':
      return `${fmtRatio(l.ratio)} slower${iv}`;
    case 'faster':
      return `${fmtRatio(1 / l.ratio)} faster${iv}`;
    case 'none':
      return `no difference${iv}`;
    case 'unknown':
      return `${fmtRatio(l.ratio)}, no interval`;
  }
}

/**
 * Inference cost for ranking: the measured slowdown, 1 when no difference is measurable or the
 * structure is the original's (0% FLOPs), +∞ when unknown (never offered as the lighter option).
 */
const inferenceRank = (o: RecommendationOption): number => {
  if (o.method === 'original') return 1;
  if (o.latency && o.latency.difference === 'slower') return o.latency.ratio;
  if (o.latency && (o.latency.difference === 'none' || o.latency.difference === 'faster')) return 1;
  return o.flopOverheadPct === 0 ? 1 : Number.POSITIVE_INFINITY;
};

function optionsFor(
  data: string,
  runs: readonly RunSummary[],
  groups: readonly GroupSummary[],
  base: BaseAccuracy | undefined,
  pricePerHour: number,
): RecommendationOption[] {
  const opts: RecommendationOption[] = [];
  for (const g of groups) {
    if (g.data !== data || g.meanAccuracy === null) continue;
    const members = g.runs.map((i) => runs[i]!).filter((r) => r.finalAccuracy !== null);
    const ns = members.map((r) => r.testExamples).filter((n): n is number => n !== null);
    const testExamples = ns.length === members.length && ns.length > 0 ? Math.min(...ns) : null;
    const cpuSeconds = g.meanCpuSeconds;
    opts.push({
      group: g.key,
      name: g.name,
      method: g.method,
      accuracy: g.meanAccuracy,
      interval: testExamples !== null ? wilsonInterval(g.meanAccuracy, testExamples) : null,
      testExamples,
      seeds: g.n,
      stdError: accuracyStdError(g.meanAccuracy, testExamples, g.stdAccuracy, g.n),
      cpuSeconds,
      costUsd: (cpuSeconds / 3600) * pricePerHour,
      flopOverheadPct: members[0]?.flopOverheadPct ?? null,
      latency: latencyOf(members),
      gapToBestPts: 0,
      bandPts: 0,
      withinNoiseOfBest: false,
    });
  }
  if (base) {
    const ns = runs
      .filter((r) => r.data === data && r.testExamples !== null)
      .map((r) => r.testExamples!);
    const testExamples = ns.length > 0 ? Math.min(...ns) : null;
    opts.push({
      group: null,
      name: 'the original model (no training)',
      method: 'original',
      accuracy: base.accuracy,
      interval: testExamples !== null ? wilsonInterval(base.accuracy, testExamples) : null,
      testExamples,
      seeds: 1,
      stdError: accuracyStdError(base.accuracy, testExamples, null, 1),
      cpuSeconds: 0,
      costUsd: 0,
      flopOverheadPct: 0,
      latency: null,
      gapToBestPts: 0,
      bandPts: 0,
      withinNoiseOfBest: false,
    });
  }
  opts.sort((a, b) => b.accuracy - a.accuracy);
  const best = opts[0];
  if (best) {
    for (const o of opts) {
      o.gapToBestPts = (best.accuracy - o.accuracy) * 100;
      o.bandPts = o === best ? 0 : differenceBandPts(o.stdError, best.stdError);
      o.withinNoiseOfBest = o === best || o.gapToBestPts <= o.bandPts;
    }
  }
  return opts;
}

const describeOption = (o: RecommendationOption): string =>
  o.method === 'original'
    ? `${o.name}: ${fmtAcc(o.accuracy)}, no training compute and no inference overhead`
    : `${o.name}: ${fmtAcc(o.accuracy)} (${o.seeds} seed${o.seeds === 1 ? '' : 's'}), ` +
      `${fmtCpu(o.cpuSeconds)} of training (${fmtUsd(o.costUsd)}), ` +
      `${fmtSignedShare(o.flopOverheadPct)} FLOPs, ${describeLatency(o.latency)}`;

function sentencesFor(r: Omit<Recommendation, 'sentences'>): string[] {
  const best = r.options[0]!;
  const out: string[] = [`Recommended on ${r.data}: ${describeOption(r.choice)}.`];
  if (r.choice !== best) {
    out.push(
      `The most accurate option, ${best.name} (${fmtAcc(best.accuracy)}), is ` +
        `${r.choice.gapToBestPts.toFixed(1)} pts ahead, within the noise band (±${r.choice.bandPts.toFixed(1)} pts), ` +
        `so it does not earn its extra cost.`,
    );
  }
  if (r.allWithinNoise && r.options.length > 1) {
    out.push(
      'Every option is within noise of the best: these runs cannot tell them apart; more test examples or seeds would.',
    );
  }
  const q = r.options.filter((o) => o.method === 'quadratic-adapt');
  const bestQ = q[0];
  switch (r.quadratic) {
    case 'wins': {
      const next = r.options.find((o) => o.method !== 'quadratic-adapt');
      out.push(
        `The quadratic term is worth it here: it beats the next option${next ? ` (${next.name}) by ${next.gapToBestPts.toFixed(1)} pts, beyond the noise band (±${next.bandPts.toFixed(1)} pts)` : ''}.`,
      );
      break;
    }
    case 'cheapest': {
      const others = r.options.filter((o) => o.withinNoiseOfBest && o !== r.choice);
      out.push(
        'Quadratic adaptation is the cheapest option within noise of the best' +
          (others.length > 0
            ? `; ${others.map((o) => o.name).join(', ')} ${others.length > 1 ? 'are' : 'is'} as accurate within noise but cost${others.length > 1 ? '' : 's'} more to train.`
            : ', and beyond noise more accurate than every other option.'),
      );
      break;
    }
    case 'not-worth-it':
      if (bestQ && bestQ.withinNoiseOfBest) {
        out.push(
          `A quadratic term is not worth it here: ${r.choice.name} is as accurate within noise ` +
            `for ${fmtCpu(r.choice.cpuSeconds)} against ${fmtCpu(bestQ.cpuSeconds)}` +
            (inferenceRank(bestQ) > inferenceRank(r.choice)
              ? ', and the quadratic model is slower to run'
              : '') +
            '.',
        );
      } else if (bestQ) {
        out.push(
          `A quadratic term is not worth it here: quadratic adaptation (${fmtAcc(bestQ.accuracy)}) is ` +
            `${bestQ.gapToBestPts.toFixed(1)} pts below the best, beyond the noise band (±${bestQ.bandPts.toFixed(1)} pts).`,
        );
      }
      break;
    case 'not-run':
      out.push(
        'No quadratic adaptation run on this data, so the report cannot say whether the quadratic term pays off.',
      );
      break;
  }
  // For deployments where inference dominates: a within-noise option that runs faster.
  const lighter = r.options
    .filter((o) => o.withinNoiseOfBest && inferenceRank(o) < inferenceRank(r.choice))
    .sort((a, b) => inferenceRank(a) - inferenceRank(b))[0];
  if (lighter) {
    out.push(
      `If inference cost matters more than training cost: ${lighter.name} is within noise too and has no measurable inference overhead.`,
    );
  }
  return out;
}

/** The recommendation for each data set that has at least one option. */
export function recommend(
  runs: readonly RunSummary[],
  groups: readonly GroupSummary[],
  baseAccuracies: readonly BaseAccuracy[],
  pricePerHour: number,
): Recommendation[] {
  const out: Recommendation[] = [];
  for (const data of [...new Set(runs.map((r) => r.data))]) {
    const base = baseAccuracies.find((b) => b.data === data);
    const options = optionsFor(data, runs, groups, base, pricePerHour);
    if (options.length === 0) continue;
    const within = options.filter((o) => o.withinNoiseOfBest);
    const choice = [...within].sort(
      (a, b) => a.cpuSeconds - b.cpuSeconds || inferenceRank(a) - inferenceRank(b),
    )[0]!;
    const quads = options.filter((o) => o.method === 'quadratic-adapt');
    let quadratic: Recommendation['quadratic'];
    if (quads.length === 0) quadratic = 'not-run';
    else if (within.every((o) => o.method === 'quadratic-adapt')) quadratic = 'wins';
    else if (choice.method === 'quadratic-adapt') quadratic = 'cheapest';
    else quadratic = 'not-worth-it';
    const partial = {
      data,
      options,
      choice,
      allWithinNoise: within.length === options.length,
      quadratic,
    };
    out.push({ ...partial, sentences: sentencesFor(partial) });
  }
  return out;
}
