/**
 * The sections of the report's summary, one function each, in the order `summarize` builds them:
 * seed groups, base-model accuracies, compute saved and ROI of each pretrained start, headlines
 * per configuration, machines, and the small-evaluation-set warnings. Definitions: summary.ts.
 */

import { fmtAcc } from './format.js';
import { methodOrder, mean, sampleStd } from './summary-math.js';
import { wilsonInterval } from './stats.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type {
  BaseAccuracy,
  ComputeSaving,
  EnvSummary,
  GroupHeadline,
  GroupSummary,
  RoiSummary,
  RunSummary,
} from './summary-types.js';
import { FALLBACK_BASELINE_METHOD, FROM_SCRATCH_METHODS } from './summary-types.js';

/** Runs sharing method, label and data, with mean and spread over their seeds. */
export function groupSeeds(runs: readonly RunSummary[]): GroupSummary[] {
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
  return groups.sort(
    (a, b) =>
      a.data.localeCompare(b.data) ||
      methodOrder(a.method) - methodOrder(b.method) ||
      a.label.localeCompare(b.label),
  );
}

/**
 * Base-model accuracy per data set. A from-scratch run's "base" is its random initialisation,
 * not the original model: it is left out (unless only such runs are on that data).
 */
export function baseAccuraciesOf(runs: readonly RunSummary[], warnings: string[]): BaseAccuracy[] {
  const out: BaseAccuracy[] = [];
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
    out.push({ data, accuracy: mean(vals), n: vals.length });
  }
  return out;
}

/** The plain-language verdict of one pretrained-start run (summary.ts writes it). */
export type VerdictWriter = (
  run: RunSummary,
  saving: ComputeSaving,
  roi: Omit<RoiSummary, 'verdict'>,
) => string;

/**
 * For every run that starts from the pretrained model (not from scratch, not the baseline): the
 * compute it saved against the from-scratch baseline on its data, and its ROI row.
 */
export function comparePretrainedStarts(
  runs: readonly RunSummary[],
  baselineMethod: RunMethod,
  warnings: string[],
  verdictFor: VerdictWriter,
): { computeSavings: ComputeSaving[]; roi: RoiSummary[] } {
  const baselineCache = new Map<string, { method: RunMethod; runs: RunSummary[] } | null>();
  const baselineFor = (data: string) => {
    if (baselineCache.has(data)) return baselineCache.get(data)!;
    const pick = (m: RunMethod) =>
      runs.filter((r) => r.method === m && r.data === data && r.curveFinalAccuracy !== null);
    let found: { method: RunMethod; runs: RunSummary[] } | null = null;
    const primary = pick(baselineMethod);
    if (primary.length > 0) {
      found = { method: baselineMethod, runs: primary };
    } else if (baselineMethod !== FALLBACK_BASELINE_METHOD) {
      const fb = pick(FALLBACK_BASELINE_METHOD);
      if (fb.length > 0) {
        found = { method: FALLBACK_BASELINE_METHOD, runs: fb };
        warnings.push(
          `no ${baselineMethod} run on ${data}; compute saved is measured against the ${FALLBACK_BASELINE_METHOD} run${fb.length > 1 ? 's' : ''} instead`,
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
    (r) => !FROM_SCRATCH_METHODS.includes(r.method) && r.method !== baselineMethod,
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
        `no from-scratch run (${baselineMethod} or ${FALLBACK_BASELINE_METHOD}) on ${run.data}, so compute saved cannot be measured there`,
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
  return { computeSavings, roi };
}

/** The compared runs aggregated per configuration (seed group). */
export function headlinesOf(
  groups: readonly GroupSummary[],
  runs: readonly RunSummary[],
  computeSavings: readonly ComputeSaving[],
  roi: readonly RoiSummary[],
): GroupHeadline[] {
  const headlines: GroupHeadline[] = [];
  const meanOf = (xs: Array<number | null>): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length > 0 ? mean(v) : null;
  };
  for (const g of groups) {
    const members = roi.filter((o) => g.runs.includes(o.run));
    if (members.length === 0) continue;
    const savings = computeSavings.filter((c) => g.runs.includes(c.run));
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
  return headlines.sort(
    (a, b) =>
      a.data.localeCompare(b.data) ||
      methodOrder(a.method) - methodOrder(b.method) ||
      a.name.localeCompare(b.name),
  );
}

/** The machines (CPU, threads, versions) the runs ran on; warns when CPU-seconds mix machines. */
export function machinesOf(runs: readonly RunSummary[], warnings: string[]): EnvSummary[] {
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
  return envs;
}

/** Small evaluation sets: how wide an accuracy's interval is, before anyone compares two. */
export function smallEvaluationWarnings(runs: readonly RunSummary[]): string[] {
  const out: string[] = [];
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
      out.push(
        `only ${n} test example${n === 1 ? '' : 's'} on ${data}: an accuracy of ${fmtAcc(acc)} is uncertain by ±${half.toFixed(1)} pts (95% binomial interval ${fmtAcc(iv[0])}–${fmtAcc(iv[1])}); smaller differences are noise`,
      );
    }
  }
  return out;
}
