/**
 * The numbers of the report, computed from loaded run directories. Everything the HTML, the
 * markdown and the CLI show comes from the {@link ReportSummary} built here, so they always agree.
 *
 * Definitions (also stated in the report itself):
 *
 * - **Accuracy** values are fractions in [0, 1]; differences are in percentage points ("pts").
 * - **Final accuracy** of a run: `eval.json` `accuracy` (the test split) when present, otherwise
 *   the last accuracy in history.jsonl (validation, or training when there is no validation).
 * - **Training curve**: per history record, the validation accuracy (or training accuracy when the
 *   run has no validation accuracy at all) against cumulative CPU-seconds and samples seen.
 * - **Compute** is the cumulative `cpuSeconds` of the last history record: process CPU time (user +
 *   system, summed over all threads) spent training on the run's machine, evaluation excluded. It
 *   does not include the cost of pretraining the base model, which adaptation assumes exists.
 * - **Cost** = CPU-seconds / 3600 × `pricePerHour` (USD per CPU-hour).
 * - **Compute saved**: for each run that starts from the pretrained model (every method except the
 *   from-scratch ones and the baseline), against the baseline runs (method `baselineMethod`, else
 *   `scratch`) on the same data: the target is the baseline's final curve accuracy (mean over its
 *   seeds; the same metric as the curves, so the comparison is like for like); time-to-accuracy is
 *   the CPU-seconds of the run's first history record whose curve accuracy is ≥ the target ("not
 *   reached" when none is; resolution is one history record, usually an epoch); saving % =
 *   (1 − time-to-accuracy / baseline total CPU-seconds) × 100, the baseline total being the mean
 *   over its seeds of what it spent in all.
 * - **Groups** (final-accuracy bars): runs sharing method + label + data; mean and sample standard
 *   deviation (n − 1) over their seeds; no deviation for a single run.
 * - **Overheads**: params `(total − base) / base`, FLOPs `(model − base) / base`, in percent;
 *   latency ratios are the run's model over its base model at the same batch size.
 */

import { fmtAcc, fmtShare, fmtSigned, fmtSignedShare } from './format.js';
import type { LoadedRun } from './load.js';
import { describeLatency, latencyOf, recommend } from './recommend.js';
import {
  baseAccuraciesOf,
  comparePretrainedStarts,
  groupSeeds,
  headlinesOf,
  machinesOf,
  smallEvaluationWarnings,
} from './summary-sections.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type {
  ComputeSaving,
  CurvePoint,
  LatencyComparison,
  ReportSummary,
  RoiSummary,
  RunSummary,
  SummaryOptions,
} from './summary-types.js';

export * from './summary-types.js';

export { mean, sampleStd } from './summary-math.js';

function overheadPct(value: number, base: number): number | null {
  return base > 0 ? ((value - base) / base) * 100 : null;
}

/** Display names that are unique across the runs. */
function displayNames(runs: readonly LoadedRun[]): string[] {
  const manyData = new Set(runs.map((r) => r.info.data)).size > 1;
  let names = runs.map((r) => (manyData ? `${r.info.label} · ${r.info.data}` : r.info.label));
  const dup = (ns: string[]) => {
    const counts = new Map<string, number>();
    for (const n of ns) counts.set(n, (counts.get(n) ?? 0) + 1);
    return (n: string) => (counts.get(n) ?? 0) > 1;
  };
  let isDup = dup(names);
  names = names.map((n, i) => (isDup(n) ? `${n} · seed ${runs[i]!.info.seed}` : n));
  isDup = dup(names);
  names = names.map((n, i) => (isDup(n) ? `${n} #${i + 1}` : n));
  return names;
}

function summarizeRun(r: LoadedRun, index: number, name: string, price: number): RunSummary {
  const { info, history } = r;
  const hasVal = history.some((h) => h.valAccuracy !== undefined);
  const hasTrain = history.some((h) => h.trainAccuracy !== undefined);
  const curveMetric: RunSummary['curveMetric'] = hasVal ? 'val' : hasTrain ? 'train' : 'none';
  const curve: CurvePoint[] = [];
  for (const h of history) {
    const a = curveMetric === 'val' ? h.valAccuracy : h.trainAccuracy;
    if (a === undefined) continue;
    curve.push({
      epoch: h.epoch,
      step: h.step,
      cpuSeconds: h.cpuSeconds,
      wallSeconds: h.wallSeconds,
      samples: h.samples,
      accuracy: a,
    });
  }
  const last = history[history.length - 1]!;
  const curveFinalAccuracy = curve.length > 0 ? curve[curve.length - 1]!.accuracy : null;
  let finalAccuracy: number | null;
  let finalAccuracySource: RunSummary['finalAccuracySource'];
  // Regression runs have no accuracy (NaN in eval.json): the report shows none for them.
  if (r.eval && !Number.isNaN(r.eval.accuracy)) {
    finalAccuracy = r.eval.accuracy;
    finalAccuracySource = 'test';
  } else if (r.eval?.regression) {
    finalAccuracy = null;
    finalAccuracySource = 'none';
  } else {
    finalAccuracy = curveFinalAccuracy;
    finalAccuracySource = curveMetric;
  }
  const baseAccuracy = Number.isNaN(r.eval?.base?.accuracy)
    ? null
    : (r.eval?.base?.accuracy ?? null);
  const latency: LatencyComparison[] = (r.eval?.latency ?? [])
    .slice()
    .sort((a, b) => a.batchSize - b.batchSize)
    .map((m) => {
      const base = r.eval?.base?.latency.find((b) => b.batchSize === m.batchSize) ?? null;
      const ratio = (x: number, y: number | undefined) => (y !== undefined && y > 0 ? x / y : null);
      return {
        model: m,
        batchSize: m.batchSize,
        base,
        p50Ratio: ratio(m.p50Ms, base?.p50Ms),
        p95Ratio: ratio(m.p95Ms, base?.p95Ms),
        perSampleRatio: ratio(m.perSampleMs, base?.perSampleMs),
      };
    });
  const computeHours = last.cpuSeconds / 3600;
  return {
    index,
    name,
    dir: r.dir,
    label: info.label,
    method: info.method,
    data: info.data,
    seed: info.seed,
    model: info.model,
    status: info.status,
    command: info.command,
    params: info.params,
    flops: info.flops,
    paramOverheadPct: overheadPct(info.params.total, info.params.base),
    flopOverheadPct: overheadPct(info.flops.model, info.flops.base),
    finalAccuracy,
    finalAccuracySource,
    testExamples: finalAccuracySource === 'test' ? r.eval!.n : null,
    curveMetric,
    curve,
    curveFinalAccuracy,
    baseAccuracy,
    gainVsBasePts:
      finalAccuracy !== null && baseAccuracy !== null ? (finalAccuracy - baseAccuracy) * 100 : null,
    cpuSeconds: last.cpuSeconds,
    wallSeconds: last.wallSeconds,
    samples: last.samples,
    epochs: last.epoch,
    computeHours,
    costUsd: computeHours * price,
    latency,
    env: info.env,
  };
}

const METHOD_PHRASE: Record<RunMethod, string> = {
  'quadratic-adapt': 'Quadratic adaptation',
  'linear-adapter': 'The linear adapter',
  'fine-tune': 'Fine-tuning',
  'head-only': 'Head-only training',
  scratch: 'Training from scratch',
  'scratch-quadratic': 'Training the quadratic network from scratch',
};

/** The plain-language verdict for one pretrained-start run. */
function verdictFor(
  run: RunSummary,
  saving: ComputeSaving,
  roi: Omit<RoiSummary, 'verdict'>,
): string {
  let s = `${METHOD_PHRASE[run.method]} (${run.name})`;
  if (run.finalAccuracy === null) {
    s += ' recorded no accuracy';
  } else {
    s += ` reached ${fmtAcc(run.finalAccuracy)}`;
    if (run.finalAccuracySource === 'val') s += ' validation accuracy';
    if (run.finalAccuracySource === 'train') s += ' training accuracy';
    const gains: string[] = [];
    if (roi.gainVsBasePts !== null)
      gains.push(`${fmtSigned(roi.gainVsBasePts)} pts over the original`);
    if (roi.gainVsFineTunePts !== null)
      gains.push(`${fmtSigned(roi.gainVsFineTunePts)} vs fine-tuning`);
    if (gains.length > 0) s += ` (${gains.join(', ')})`;
  }
  if (saving.baselineMethod !== null && saving.baselineCpuSeconds !== null) {
    const target = fmtAcc(saving.targetAccuracy);
    if (saving.reached && saving.timeToAccuracyCpuSeconds !== null) {
      const share = (saving.timeToAccuracyCpuSeconds / saving.baselineCpuSeconds) * 100;
      // The comparison is on the training curves (validation accuracy), not the test accuracy above.
      s += ` and its validation curve matched the from-scratch run's final value (${target}) using ${fmtShare(share)} of the from-scratch compute`;
    } else {
      const share = (saving.spentCpuSeconds / saving.baselineCpuSeconds) * 100;
      s += `, but its validation curve did not reach the from-scratch run's final value (${target}) with ${fmtShare(share)} of the from-scratch compute`;
    }
  } else {
    s += `; there is no from-scratch run on ${run.data} to compare compute with`;
  }
  const tail: string[] = [];
  const latency = latencyOf([run]);
  if (latency) tail.push(describeLatency(latency));
  if (run.paramOverheadPct !== null && run.paramOverheadPct !== 0) {
    tail.push(`the model has ${fmtSignedShare(run.paramOverheadPct)} parameters`);
  }
  if (tail.length > 0) s += `; ${tail.join(' and ')}`;
  return `${s}.`;
}

/**
 * Computes every number of the report from loaded runs. Pure: the same runs and options give the
 * same summary. Each section is its own function (summary-sections.ts); warnings collect in order.
 */
export function summarize(
  loaded: readonly LoadedRun[],
  opts: SummaryOptions,
  files: { html: string; markdown: string } = { html: '', markdown: '' },
): ReportSummary {
  const warnings: string[] = loaded.flatMap((r) => r.warnings);
  const names = displayNames(loaded);
  const runs = loaded.map((r, i) => summarizeRun(r, i, names[i]!, opts.pricePerHour));
  const groups = groupSeeds(runs);
  const baseAccuracies = baseAccuraciesOf(runs, warnings);
  const { computeSavings, roi } = comparePretrainedStarts(
    runs,
    opts.baselineMethod,
    warnings,
    verdictFor,
  );
  const headlines = headlinesOf(groups, runs, computeSavings, roi);
  const envs = machinesOf(runs, warnings);
  warnings.push(...smallEvaluationWarnings(runs));
  return {
    title: opts.title,
    generated: opts.date.toISOString(),
    pricePerHour: opts.pricePerHour,
    baselineMethod: opts.baselineMethod,
    runs,
    groups,
    baseAccuracies,
    computeSavings,
    roi,
    headlines,
    envs,
    verdicts: roi.map((r) => r.verdict),
    recommendations: recommend(runs, groups, baseAccuracies, opts.pricePerHour),
    warnings,
    files,
  };
}
