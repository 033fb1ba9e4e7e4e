/**
 * From run outcomes to the result tables and the claim verdicts. Pure functions of the recorded
 * histories and evaluations, so the tables can be recomputed from the run directories.
 *
 * Definitions:
 * - Accuracies are fractions in [0, 1] in the JSON and percent in the tables; differences in
 *   percentage points (pts). `*_acc` fields are test-split accuracies (eval.json).
 * - Compute is process CPU-seconds spent in training steps (fit's `cpuSeconds`; evaluation,
 *   data loading and pretraining excluded unless a field says otherwise).
 * - Time to accuracy: the cumulative CPU-seconds (and samples) of the first history record (one
 *   per validation point: `evalsPerEpoch` per epoch) whose validation accuracy is ≥ the target. For an adaptation run, the model before
 *   any step (the pretrained network: its quadratic term starts at zero) counts as a record at
 *   0 CPU-seconds, so a target the pretrained network already meets is reached at 0.
 * - The target of a backbone × data set is the final validation accuracy of the quadratic network
 *   trained from scratch; that run's own time to accuracy is when it first reached it.
 * - Saving % = (1 − adapt CPU-s / scratch CPU-s) × 100, both to the target.
 * - Noise band of a difference of two accuracies: 2 × √(se₁² + se₂²), with se² = std²/n over
 *   seeds (when n ≥ 2) plus the binomial p(1 − p)/(n · N_test) of the test split. With one seed
 *   only the test-sampling part is known: seed-to-seed variation is not in it.
 */

import type { HistoryRecord } from '../io/formats/run-format.js';
import { pairedRatio } from '../report/stats.js';
import type { Backbone } from './config.js';
import {
  epochMeanVal,
  headlineVerdict,
  smallestMatchingBudget,
  trainFlopsPerSample,
} from './headline.js';
import type { MemeffOutcome, RunOutcome } from './runner.js';

export type * from './rows.js';
import type { AblationRow, CurvePoint, ShiftRow, TimeToAccuracyRow } from './rows.js';

/** Sample mean and standard deviation (n − 1; null for n < 2). */
export function meanStd(xs: readonly number[]): { mean: number; std: number | null } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  if (n < 2) return { mean, std: null };
  const v = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  return { mean, std: Math.sqrt(v) };
}

/**
 * The first point of `history` whose validation accuracy is ≥ `target` (see the module
 * comment); `step0` is the validation accuracy before training, counted at 0 CPU-seconds.
 */
export function timeToAccuracy(
  history: readonly HistoryRecord[],
  target: number,
  step0?: number,
): { cpuSeconds: number; samples: number; epoch: number } | null {
  const eps = 1e-12;
  if (step0 !== undefined && step0 >= target - eps) return { cpuSeconds: 0, samples: 0, epoch: 0 };
  for (const r of history) {
    if (r.valAccuracy !== undefined && r.valAccuracy >= target - eps) {
      return { cpuSeconds: r.cpuSeconds, samples: r.samples, epoch: r.epoch };
    }
  }
  return null;
}

/** Saving percentage 1 − part / whole, or null. */
export function savingPct(part: number | null, whole: number): number | null {
  if (part === null || !(whole > 0)) return null;
  return (1 - part / whole) * 100;
}

const curve = (h: readonly HistoryRecord[]): CurvePoint[] =>
  h.map((r) => ({
    epoch: r.epoch,
    cpu_s: r.cpuSeconds,
    samples: r.samples,
    val_acc: r.valAccuracy ?? null,
  }));

const mean = (xs: readonly number[]) => meanStd(xs).mean;

/** Training FLOPs per sample of a run (headline rule; see headline.ts). */
export function runTrainFlopsPerSample(r: RunOutcome): number {
  const partial =
    (r.spec.method === 'quadratic-adapt' && r.spec.train !== 'full') ||
    r.spec.method === 'linear-adapter' ||
    r.spec.method === 'head-only';
  return trainFlopsPerSample({
    fullyTrained: !partial,
    forwardFlops: r.info.flops.model,
    adapterFlops: Math.max(0, r.info.flops.model - r.info.flops.base),
  });
}

/** Samples trained by a whole run (its last history record). */
const runSamples = (r: RunOutcome) => r.history.at(-1)?.samples ?? 0;

/**
 * How far a budget's reading may lie from the budget in epochs: a budget point falls on a whole
 * step (0.5 epoch of 31 steps is step 16, epoch 0.516).
 */
const BUDGET_TOLERANCE = 0.02;

/** A run's state at a budget: the budget point, or the end of the run. */
function atBudget(r: RunOutcome, budget: number) {
  const bp = r.budgets?.find((b) => Math.abs(b.epochs - budget) < BUDGET_TOLERANCE);
  if (bp) return { acc: bp.testAccuracy, samples: bp.samples, cpu: bp.cpuSeconds, n: bp.testN };
  return { acc: r.eval.accuracy, samples: runSamples(r), cpu: r.timing.fitCpuSeconds, n: r.eval.n };
}

/** The history up to a budget (epochs), including the reading at the budget's whole step. */
const upTo = (h: readonly HistoryRecord[], budget: number) =>
  h.filter((r) => r.epoch < budget + BUDGET_TOLERANCE);

/** Rows of the headline study (see TimeToAccuracyRow and docs/experiments.md). */
export function timeToAccuracyRows(runs: readonly RunOutcome[]): TimeToAccuracyRow[] {
  const rows: TimeToAccuracyRow[] = [];
  const t2a = runs.filter((r) => r.spec.study === 't2a' && r.spec.headline);
  const cells = [
    ...new Set(t2a.map((r) => `${r.spec.headline!.arm}|${r.spec.backbone}|${r.spec.dataName}`)),
  ];
  for (const c of cells) {
    const [arm, backbone, dataset] = c.split('|') as ['A' | 'B', Backbone, string];
    const here = t2a.filter(
      (r) =>
        r.spec.headline!.arm === arm && r.spec.backbone === backbone && r.spec.dataName === dataset,
    );
    const key = (r: RunOutcome) => r.spec.headline!.group.split('/').at(-1)!;
    const of = (k: string) => here.filter((r) => key(r) === k);
    const scratch = of('scratch-quadratic');
    const source = arm === 'A' ? dataset : 'mnist';
    const pre = runs.find(
      (r) =>
        r.spec.study === 'pretrain' && r.spec.backbone === backbone && r.spec.dataName === source,
    );
    if (!scratch.length || !pre) continue;
    const chosen: Record<string, [number, number]> = {};
    for (const r of here) chosen[key(r)] = [r.spec.lr, r.spec.quadLr];
    chosen['pretrain'] = [pre.spec.lr, pre.spec.quadLr];

    const target = mean(scratch.map((r) => epochMeanVal(r.history, lastEpoch(r)) ?? NaN));
    const sAcc = meanStd(scratch.map((r) => r.eval.accuracy));
    const nTest = scratch[0]!.eval.n;
    const sFps = runTrainFlopsPerSample(scratch[0]!);
    const sWholeSamples = mean(scratch.map(runSamples));
    const sWholeCpu = mean(scratch.map((r) => r.timing.fitCpuSeconds));
    const sTo = scratch.map((r) => timeToAccuracy(r.history, target));
    const sToSamples = mean(sTo.map((x, i) => x?.samples ?? runSamples(scratch[i]!)));
    const sToCpu = mean(sTo.map((x, i) => x?.cpuSeconds ?? scratch[i]!.timing.fitCpuSeconds));
    const gains = scratch.map((r) => r.stop?.plateauGainPts ?? null);
    const preFlops = runSamples(pre) * runTrainFlopsPerSample(pre);
    const nVal = Math.round(scratch[0]!.spec.limit * (scratch[0]!.spec.valFraction ?? 0.1));
    const valBand = 2 * Math.sqrt((2 * target * (1 - target)) / Math.max(nVal, 1));

    for (const train of ['adapter', 'full'] as const) {
      const adapt = of(train === 'adapter' ? 'quadratic-adapt' : 'quadratic-full');
      if (!adapt.length) continue;
      const budgets = [...new Set(adapt.flatMap((r) => r.spec.budgets ?? [r.spec.epochs]))];
      const aFps = runTrainFlopsPerSample(adapt[0]!);
      for (const budget of budgets) {
        const at = adapt.map((r) => atBudget(r, budget));
        const aAcc = meanStd(at.map((x) => x.acc));
        const aSamples = mean(at.map((x) => x.samples));
        const aCpu = mean(at.map((x) => x.cpu));
        const step0 = (r: RunOutcome) => r.step0ValAccuracy;
        const reach = (tg: number) =>
          adapt.map((r) => timeToAccuracy(upTo(r.history, budget), tg, step0(r)));
        const all = <T>(xs: (T | null)[]) => (xs.every((x) => x !== null) ? (xs as T[]) : null);
        const hit = all(reach(target));
        const hitLoose = all(reach(target - valBand));
        const band = noiseBand(
          { mean: aAcc.mean, std: aAcc.std, n: adapt.length, nTest },
          { mean: sAcc.mean, std: sAcc.std, n: scratch.length, nTest },
        );
        const control = (k: string) => {
          const rs = of(k);
          if (!rs.length) return null;
          return meanStd(rs.map((r) => atBudget(r, budget).acc));
        };
        const ft = control('fine-tune');
        const lin = control('linear-adapter');
        const controlBand = (x: { mean: number; std: number | null }, n: number) =>
          noiseBand(
            { mean: x.mean, std: x.std, n, nTest },
            { mean: aAcc.mean, std: aAcc.std, n: adapt.length, nTest },
          );
        const controls = [
          ft ? { acc: ft.mean, band: controlBand(ft, of('fine-tune').length) } : null,
          lin ? { acc: lin.mean, band: controlBand(lin, of('linear-adapter').length) } : null,
        ].filter((x): x is { acc: number; band: number } => x !== null);
        const aFlops = aSamples * aFps;
        const sFlops = sWholeSamples * sFps;
        const whole = savingPct(aFlops, sFlops)!;
        const scratchConverged = scratch.every((r) => r.stop?.converged === true);
        const verdict = headlineVerdict({
          scratchConverged,
          wholeRunSavingPct: whole,
          adaptAcc: aAcc.mean,
          scratchAcc: sAcc.mean,
          band,
          controls,
        });
        const aToCpu = hit ? mean(hit.map((x) => x.cpuSeconds)) : null;
        const aToSamples = hit ? mean(hit.map((x) => x.samples)) : null;
        const looseCpu = hitLoose ? mean(hitLoose.map((x) => x.cpuSeconds)) : null;
        const firstCpu = adapt[0]!.history[0]?.cpuSeconds ?? 0;
        const sToFlops = sToSamples * sFps;
        rows.push({
          backbone,
          dataset,
          scratch_cpu_s: sToCpu,
          adapt_cpu_s: aToCpu,
          saving_pct: savingPct(aToCpu, sToCpu),
          scratch_acc: sAcc.mean,
          adapt_acc: aAcc.mean,
          scratch_samples: sToSamples,
          adapt_samples: aToSamples,
          sample_saving_pct: savingPct(aToSamples, sToSamples),
          target_val_acc: target,
          scratch_total_cpu_s: sWholeCpu,
          adapt_total_cpu_s: aCpu,
          pretrained_val_acc: adapt[0]!.step0ValAccuracy ?? null,
          pretrained_test_acc: adapt[0]!.eval.base?.accuracy ?? null,
          reached_at_step0: hit !== null && hit.every((x) => x.epoch === 0),
          pretrain_cpu_s: pre.timing.fitCpuSeconds,
          saving_incl_pretrain_pct: savingPct(
            aToSamples === null ? null : aToSamples * aFps + preFlops,
            sToFlops,
          ),
          resolution_saving_pct: savingPct(firstCpu, sToCpu) ?? 0,
          val_noise_band: valBand,
          adapt_cpu_s_within_noise: looseCpu,
          saving_within_noise_pct: savingPct(looseCpu, sToCpu),
          acc_noise_band: band,
          claim_a: verdict !== 'not-held',
          scratch_curve: curve(scratch[0]!.history),
          adapt_curve: curve(upTo(adapt[0]!.history, budget)),
          arm,
          budget_epochs: budget,
          train,
          seeds: adapt.map((r) => r.spec.seed),
          scratch_seeds: scratch.map((r) => r.spec.seed),
          adapt_train_flops: aFlops,
          scratch_train_flops: sFlops,
          pretrain_train_flops: preFlops,
          whole_run_saving_pct: whole,
          whole_run_saving_incl_pretrain_pct: savingPct(aFlops + preFlops, sFlops)!,
          whole_run_cpu_saving_pct: savingPct(aCpu, sWholeCpu) ?? 0,
          whole_run_sample_saving_pct: savingPct(aSamples, sWholeSamples) ?? 0,
          adapt_flops_to_target: aToSamples === null ? null : aToSamples * aFps,
          scratch_flops_to_target: sToFlops,
          flop_saving_to_target_pct: savingPct(
            aToSamples === null ? null : aToSamples * aFps,
            sToFlops,
          ),
          flop_saving_to_target_within_noise_pct: savingPct(
            hitLoose ? mean(hitLoose.map((x) => x.samples)) * aFps : null,
            sToFlops,
          ),
          scratch_converged: scratchConverged,
          scratch_plateau_gain_pts: gains.some((g) => g === null)
            ? null
            : Math.max(...(gains as number[])),
          scratch_epochs: mean(scratch.map(lastEpoch)),
          controls: { fine_tune_acc: ft?.mean ?? null, linear_adapter_acc: lin?.mean ?? null },
          acc_band_pts: band * 100,
          verdict,
          smallest_matching_budget_epochs: null,
          chosen_lr: chosen,
          n_test: nTest,
        });
      }
    }
  }
  // The smallest matching budget of each arm × backbone × target × train.
  for (const r of rows) {
    r.smallest_matching_budget_epochs = smallestMatchingBudget(
      rows
        .filter(
          (x) =>
            x.arm === r.arm &&
            x.backbone === r.backbone &&
            x.dataset === r.dataset &&
            x.train === r.train,
        )
        .map((x) => ({
          budget: x.budget_epochs,
          adaptAcc: x.adapt_acc,
          scratchAcc: x.scratch_acc,
          band: x.acc_noise_band,
        })),
    );
  }
  return rows;
}

/** Epochs a run trained (where a plateau rule stopped it, else all). */
const lastEpoch = (r: RunOutcome) => r.stop?.epochs ?? r.spec.epochs;

/** The method name of the pretrained network evaluated without adaptation. */
export const NO_ADAPTATION = 'pretrained, not adapted';

/** Rows of the shift study (plus the pretrained network without adaptation per shift). */
export function shiftRows(runs: readonly RunOutcome[]): ShiftRow[] {
  const shift = runs.filter((r) => r.spec.study === 'shift');
  const rows: ShiftRow[] = [];
  const shifts = [...new Set(shift.map((r) => r.spec.dataName))];
  for (const sh of shifts) {
    const here = shift.filter((r) => r.spec.dataName === sh);
    const q = here.filter((r) => r.spec.method === 'quadratic-adapt' && r.eval.base);
    if (q.length) {
      const accs = q.map((r) => r.eval.base!.accuracy);
      const ms = meanStd(accs);
      rows.push({
        shift: sh,
        method: NO_ADAPTATION,
        acc_mean: ms.mean,
        acc_std: ms.std,
        seeds: q.map((r) => r.spec.seed),
        accs,
        cpu_s_mean: 0,
        trainable_params: 0,
        n_test: q[0]!.eval.n,
      });
    }
    for (const m of [...new Set(here.map((r) => r.spec.method))]) {
      const rs = here.filter((r) => r.spec.method === m);
      const accs = rs.map((r) => r.eval.accuracy);
      const ms = meanStd(accs);
      rows.push({
        shift: sh,
        method: m,
        acc_mean: ms.mean,
        acc_std: ms.std,
        seeds: rs.map((r) => r.spec.seed),
        accs,
        cpu_s_mean: meanStd(rs.map((r) => r.timing.fitCpuSeconds)).mean,
        trainable_params: rs[0]!.info.params.trainable,
        n_test: rs[0]!.eval.n,
      });
    }
  }
  return rows;
}

/** Rows of the ablation study, in the plan's order. */
export function ablationRows(
  runs: readonly RunOutcome[],
  memeff: readonly MemeffOutcome[],
): AblationRow[] {
  const abl = runs.filter((r) => r.spec.study === 'ablation' && r.spec.ablation);
  const rows: AblationRow[] = [];
  const keys = [...new Set(abl.map((r) => `${r.spec.ablation!.name}|${r.spec.ablation!.setting}`))];
  for (const key of keys) {
    const rs = abl.filter((r) => `${r.spec.ablation!.name}|${r.spec.ablation!.setting}` === key);
    const [name, setting] = key.split('|') as [string, string];
    const accs = meanStd(rs.map((r) => r.eval.accuracy));
    const info = rs[0]!.info;
    const step0 = rs.map((r) => r.step0TestAccuracy).filter((x): x is number => x !== undefined);
    const row: AblationRow = {
      name,
      setting,
      acc: accs.mean,
      acc_std: accs.std,
      seeds: rs.map((r) => r.spec.seed),
      cpu_s: meanStd(rs.map((r) => r.timing.fitCpuSeconds)).mean,
      cpu_ms_per_step: meanStd(rs.map((r) => (r.timing.fitCpuSeconds / r.timing.steps) * 1000))
        .mean,
      trainable_params: info.params.trainable,
      param_overhead_pct: ((info.params.total - info.params.base) / info.params.base) * 100,
      flop_overhead_pct: ((info.flops.model - info.flops.base) / info.flops.base) * 100,
      n_test: rs[0]!.eval.n,
    };
    if (name === 'placement') {
      const ratios = rs
        .map((r) => {
          const m = r.eval.latency.find((l) => l.batchSize === 1);
          const b = r.eval.base?.latency.find((l) => l.batchSize === 1);
          return pairedRatio(m?.timesMs, b?.timesMs, m?.setSizes)?.median;
        })
        .filter((x): x is number => x !== undefined);
      row.latency_ratio = ratios.length ? meanStd(ratios).mean : null;
    }
    if (name === 'init') {
      row.step0_acc = step0.length ? meanStd(step0).mean : null;
      const loss = rs.map((r) => r.step0TestLoss).filter((x): x is number => x !== undefined);
      row.step0_loss = loss.length ? meanStd(loss).mean : null;
      const clean = rs
        .map((r) => r.step0CleanTestAccuracy)
        .filter((x): x is number => x !== undefined);
      row.step0_clean_acc = clean.length ? meanStd(clean).mean : null;
    }
    rows.push(row);
  }
  for (const m of memeff) {
    rows.push({
      name: m.spec.name,
      setting: m.spec.setting,
      acc: null,
      acc_std: null,
      seeds: [],
      step_ms: m.result.stepMs,
      peak_rss_mib: m.result.peakRssMiB,
    });
  }
  return rows;
}

/** ≈95% noise band of the difference of two mean accuracies (see the module comment). */
export function noiseBand(
  a: { mean: number; std: number | null; n: number; nTest: number },
  b: { mean: number; std: number | null; n: number; nTest: number },
): number {
  const se2 = (x: typeof a) =>
    (x.std !== null && x.n >= 2 ? x.std ** 2 / x.n : 0) +
    (x.mean * (1 - x.mean)) / (Math.max(x.n, 1) * x.nTest);
  return 2 * Math.sqrt(se2(a) + se2(b));
}
