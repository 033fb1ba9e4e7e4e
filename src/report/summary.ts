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
import { RUN_METHODS } from './load.js';
import { describeLatency, latencyOf, recommend } from './recommend.js';
import { wilsonInterval } from './stats.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type {
  BaseAccuracy,
  ComputeSaving,
  CurvePoint,
  EnvSummary,
  GroupHeadline,
  GroupSummary,
  LatencyComparison,
  ReportSummary,
  RoiSummary,
  RunSummary,
  SummaryOptions,
} from './summary-types.js';
import { FALLBACK_BASELINE_METHOD, FROM_SCRATCH_METHODS } from './summary-types.js';

export * from './summary-types.js';

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

function overheadPct(value: number, base: number): number | null {
  return base > 0 ? ((value - base) / base) * 100 : null;
}

function methodOrder(m: RunMethod): number {
  return RUN_METHODS.indexOf(m);
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
 * same summary.
 */
export function summarize(
  loaded: readonly LoadedRun[],
  opts: SummaryOptions,
  files: { html: string; markdown: string } = { html: '', markdown: '' },
): ReportSummary {
  const warnings: string[] = loaded.flatMap((r) => r.warnings);
  const names = displayNames(loaded);
  const runs = loaded.map((r, i) => summarizeRun(r, i, names[i]!, opts.pricePerHour));

  // Groups of seeds.
  const groupMap = new Map<string, RunSummary[]>();
  for (const r of runs) {
    const key = JSON.stringify([r.method, r.label, r.data]);
    const g = groupMap.get(key);
    if (g) g.push(r);
    else groupMap.set(key, [r]);
  }
  const manyData = new Set(runs.map((r) => r.data)).size > 1;
  const groups: GroupSummary[] = [...groupMap.entries()].map(([key, rs]) => {
    const accs = rs.map((r) => r.finalAccuracy).filter((a): a is number => a !== null);
    const cpus = rs.map((r) => r.cpuSeconds);
    const first = rs[0]!;
    return {
      key,
      name: manyData ? `${first.label} · ${first.data}` : first.label,
      method: first.method,
      label: first.label,
      data: first.data,
      runs: rs.map((r) => r.index),
      seeds: rs.map((r) => r.seed),
      n: accs.length,
      meanAccuracy: accs.length > 0 ? mean(accs) : null,
      stdAccuracy: sampleStd(accs),
      minAccuracy: accs.length > 0 ? Math.min(...accs) : null,
      maxAccuracy: accs.length > 0 ? Math.max(...accs) : null,
      meanCpuSeconds: mean(cpus),
      stdCpuSeconds: sampleStd(cpus),
    };
  });
  groups.sort(
    (a, b) =>
      a.data.localeCompare(b.data) ||
      methodOrder(a.method) - methodOrder(b.method) ||
      a.label.localeCompare(b.label),
  );

  // Base-model accuracy per data set. A from-scratch run's "base" is its random initialisation,
  // not the original model: it is left out (unless only such runs are on that data).
  const baseAccuracies: BaseAccuracy[] = [];
  for (const data of [...new Set(runs.map((r) => r.data))]) {
    const withBase = runs.filter((r) => r.data === data && r.baseAccuracy !== null);
    const fromOriginal = withBase.filter((r) => !FROM_SCRATCH_METHODS.includes(r.method));
    const vals = (fromOriginal.length > 0 ? fromOriginal : withBase).map((r) => r.baseAccuracy!);
    if (vals.length === 0) continue;
    if (Math.max(...vals) - Math.min(...vals) > 1e-9) {
      warnings.push(
        `runs on ${data} report different base-model accuracies (${vals.map((v) => fmtAcc(v, 2)).join(', ')}); were they started from different models?`,
      );
    }
    baseAccuracies.push({ data, accuracy: mean(vals), n: vals.length });
  }

  // Baselines per data set.
  const baselineCache = new Map<string, { method: RunMethod; runs: RunSummary[] } | null>();
  const baselineFor = (data: string) => {
    if (baselineCache.has(data)) return baselineCache.get(data)!;
    const pick = (m: RunMethod) =>
      runs.filter((r) => r.method === m && r.data === data && r.curveFinalAccuracy !== null);
    let found: { method: RunMethod; runs: RunSummary[] } | null = null;
    const primary = pick(opts.baselineMethod);
    if (primary.length > 0) {
      found = { method: opts.baselineMethod, runs: primary };
    } else if (opts.baselineMethod !== FALLBACK_BASELINE_METHOD) {
      const fb = pick(FALLBACK_BASELINE_METHOD);
      if (fb.length > 0) {
        found = { method: FALLBACK_BASELINE_METHOD, runs: fb };
        warnings.push(
          `no ${opts.baselineMethod} run on ${data}; compute saved is measured against the ${FALLBACK_BASELINE_METHOD} run${fb.length > 1 ? 's' : ''} instead`,
        );
      }
    }
    baselineCache.set(data, found);
    return found;
  };

  const fineTuneMean = (data: string): number | null => {
    const accs = runs
      .filter((r) => r.method === 'fine-tune' && r.data === data && r.finalAccuracy !== null)
      .map((r) => r.finalAccuracy!);
    return accs.length > 0 ? mean(accs) : null;
  };

  const computeSavings: ComputeSaving[] = [];
  const roi: RoiSummary[] = [];
  const compared = runs.filter(
    (r) => !FROM_SCRATCH_METHODS.includes(r.method) && r.method !== opts.baselineMethod,
  );
  compared.sort(
    (a, b) =>
      a.data.localeCompare(b.data) ||
      methodOrder(a.method) - methodOrder(b.method) ||
      a.index - b.index,
  );
  const noBaselineData = new Set<string>();
  for (const run of compared) {
    const baseline = baselineFor(run.data);
    const saving: ComputeSaving = {
      run: run.index,
      name: run.name,
      baselineMethod: baseline?.method ?? null,
      baselineRuns: baseline?.runs.map((b) => b.index) ?? [],
      targetAccuracy: null,
      baselineCpuSeconds: null,
      timeToAccuracyCpuSeconds: null,
      timeToAccuracySamples: null,
      reached: false,
      savingPct: null,
      spentCpuSeconds: run.cpuSeconds,
      totalSavingPct: null,
    };
    if (baseline) {
      const target = mean(baseline.runs.map((b) => b.curveFinalAccuracy!));
      const baseCpu = mean(baseline.runs.map((b) => b.cpuSeconds));
      saving.targetAccuracy = target;
      saving.baselineCpuSeconds = baseCpu;
      const hit = run.curve.find((p) => p.accuracy >= target);
      if (hit) {
        saving.reached = true;
        saving.timeToAccuracyCpuSeconds = hit.cpuSeconds;
        saving.timeToAccuracySamples = hit.samples;
        saving.savingPct = baseCpu > 0 ? (1 - hit.cpuSeconds / baseCpu) * 100 : null;
      }
      saving.totalSavingPct = baseCpu > 0 ? (1 - run.cpuSeconds / baseCpu) * 100 : null;
      const metrics = new Set(baseline.runs.map((b) => b.curveMetric));
      if (!metrics.has(run.curveMetric) || metrics.size > 1) {
        warnings.push(
          `${run.name} records ${run.curveMetric} accuracy but its baseline records ${[...metrics].join('/')} accuracy; its time-to-accuracy compares different measurements`,
        );
      }
    } else if (!noBaselineData.has(run.data)) {
      noBaselineData.add(run.data);
      warnings.push(
        `no from-scratch run (${opts.baselineMethod} or ${FALLBACK_BASELINE_METHOD}) on ${run.data}, so compute saved cannot be measured there`,
      );
    }
    computeSavings.push(saving);

    const ft = run.method === 'fine-tune' ? null : fineTuneMean(run.data);
    const gainVsFineTunePts =
      ft !== null && run.finalAccuracy !== null ? (run.finalAccuracy - ft) * 100 : null;
    const withBase = run.latency.filter((l) => l.p50Ratio !== null);
    const ref = withBase.find((l) => l.batchSize === 1) ?? withBase[0] ?? null;
    const partial: Omit<RoiSummary, 'verdict'> = {
      run: run.index,
      name: run.name,
      method: run.method,
      computeHours: run.computeHours,
      costUsd: run.costUsd,
      finalAccuracy: run.finalAccuracy,
      baseAccuracy: run.baseAccuracy,
      gainVsBasePts: run.gainVsBasePts,
      fineTuneAccuracy: ft,
      gainVsFineTunePts,
      costPerPointUsd:
        run.gainVsBasePts !== null && run.gainVsBasePts > 0
          ? run.costUsd / run.gainVsBasePts
          : null,
      latencyBatchSize: ref?.batchSize ?? null,
      slowdown: ref?.p50Ratio ?? null,
    };
    roi.push({ ...partial, verdict: verdictFor(run, saving, partial) });
  }

  // Headlines: the compared runs aggregated per configuration.
  const headlines: GroupHeadline[] = [];
  for (const g of groups) {
    const members = roi.filter((o) => g.runs.includes(o.run));
    if (members.length === 0) continue;
    const savings = computeSavings.filter((c) => g.runs.includes(c.run));
    const meanOf = (xs: Array<number | null>): number | null => {
      const v = xs.filter((x): x is number => x !== null);
      return v.length > 0 ? mean(v) : null;
    };
    const first = runs[g.runs[0]!]!;
    const batch = members.map((o) => o.latencyBatchSize).find((b) => b !== null) ?? null;
    headlines.push({
      group: g.key,
      name: g.name,
      method: g.method,
      data: g.data,
      runs: g.runs.length,
      meanAccuracy: g.meanAccuracy,
      stdAccuracy: g.stdAccuracy,
      meanGainVsBasePts: meanOf(members.map((o) => o.gainVsBasePts)),
      meanGainVsFineTunePts: meanOf(members.map((o) => o.gainVsFineTunePts)),
      targetAccuracy: savings[0]?.targetAccuracy ?? null,
      reached: savings.filter((c) => c.reached).length,
      meanSavingPct: meanOf(savings.map((c) => c.savingPct)),
      meanCpuSeconds: mean(members.map((o) => runs[o.run]!.cpuSeconds)),
      meanCostUsd: mean(members.map((o) => o.costUsd)),
      meanSlowdown: meanOf(
        members.filter((o) => o.latencyBatchSize === batch).map((o) => o.slowdown),
      ),
      latencyBatchSize: batch,
      paramOverheadPct: first.paramOverheadPct,
      flopOverheadPct: first.flopOverheadPct,
    });
  }
  headlines.sort(
    (a, b) =>
      a.data.localeCompare(b.data) ||
      methodOrder(a.method) - methodOrder(b.method) ||
      a.name.localeCompare(b.name),
  );

  // Machines.
  const envMap = new Map<string, EnvSummary>();
  for (const r of runs) {
    const e = r.env;
    const key = JSON.stringify([e.cpu, e.threads, e.node, e.onnxruntime, e.quadranet]);
    const found = envMap.get(key);
    if (found) found.runs.push(r.index);
    else envMap.set(key, { ...e, runs: [r.index] });
  }
  const envs = [...envMap.values()];
  if (new Set(envs.map((e) => JSON.stringify([e.cpu, e.threads]))).size > 1) {
    warnings.push(
      'the runs used different machines or thread counts, so their CPU-seconds are not directly comparable',
    );
  }

  // Small evaluation sets: say how wide an accuracy's interval is before anyone compares two.
  for (const data of [...new Set(runs.map((r) => r.data))]) {
    const ns = runs
      .filter((r) => r.data === data && r.testExamples !== null)
      .map((r) => r.testExamples!);
    if (ns.length === 0) continue;
    const n = Math.min(...ns);
    const acc = runs.find((r) => r.data === data && r.testExamples === n)!.finalAccuracy!;
    const iv = wilsonInterval(acc, n)!;
    const half = ((iv[1] - iv[0]) / 2) * 100;
    if (half > 1) {
      warnings.push(
        `only ${n} test example${n === 1 ? '' : 's'} on ${data}: an accuracy of ${fmtAcc(acc)} is uncertain by ±${half.toFixed(1)} pts (95% binomial interval ${fmtAcc(iv[0])}–${fmtAcc(iv[1])}); smaller differences are noise`,
      );
    }
  }

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
