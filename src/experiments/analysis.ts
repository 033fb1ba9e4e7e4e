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
import type { ExperimentConfig } from './config.js';
import type { Backbone } from './config.js';
import type { HeadlineVerdict } from './headline.js';
import {
  epochMeanVal,
  headlineVerdict,
  smallestMatchingBudget,
  trainFlopsPerSample,
} from './headline.js';
import type { MemeffOutcome, RunOutcome } from './runner.js';

/** Mean test accuracies of the controls at a row's budget and seeds (null: not run). */
export interface ControlAccs {
  fine_tune_acc: number | null;
  linear_adapter_acc: number | null;
}

/**
 * One row of the headline study (issue #13): arm × backbone × target × adaptation mode × budget.
 * Accuracies and CPU/sample figures are means over the row's seeds; curves are seed 0's.
 * The keys up to `adapt_curve` are the old protocol's, kept (with the new meaning given).
 */
export interface TimeToAccuracyRow {
  backbone: Backbone;
  /** The target data set (arm B: the shifted target, e.g. `rotate@0.7`, `mnist→fashion`). */
  dataset: string;
  /** CPU-seconds the converged quadratic from scratch needed to first reach the target. */
  scratch_cpu_s: number;
  /** CPU-seconds adaptation needed to reach it within the budget; null when it did not. */
  adapt_cpu_s: number | null;
  /** (1 − adapt_cpu_s / scratch_cpu_s) × 100 (CPU time to the target); null when not reached. */
  saving_pct: number | null;
  /** Final test accuracies: from scratch (converged), adapted (at the budget). */
  scratch_acc: number;
  adapt_acc: number;
  scratch_samples: number;
  adapt_samples: number | null;
  /** (1 − adapt_samples / scratch_samples) × 100, to the target. */
  sample_saving_pct: number | null;
  /** Target: mean of the from-scratch runs' last-epoch validation readings. */
  target_val_acc: number;
  /** Whole runs' training CPU-seconds (adaptation: up to the budget). */
  scratch_total_cpu_s: number;
  adapt_total_cpu_s: number;
  /** The pretrained first-order network (= the adapted model at step 0). */
  pretrained_val_acc: number | null;
  pretrained_test_acc: number | null;
  /** Whether the pretrained network already met the target before adaptation. */
  reached_at_step0: boolean;
  /** CPU-seconds of pretraining the first-order network (paid once, not counted above). */
  pretrain_cpu_s: number;
  /** Training FLOPs to the target, pretraining charged: (1 − (pretrain + adapt) / scratch) × 100. */
  saving_incl_pretrain_pct: number | null;
  /** Best saving measurable after step 0: adaptation's first validation point (the resolution). */
  resolution_saving_pct: number;
  /** Validation noise band of the target: 2·√(2·p(1 − p)/n_val). */
  val_noise_band: number;
  /** CPU-seconds adaptation needed to come within the noise band of the target (step 0 counts). */
  adapt_cpu_s_within_noise: number | null;
  /** (1 − adapt_cpu_s_within_noise / scratch_cpu_s) × 100. */
  saving_within_noise_pct: number | null;
  /** Noise band of adapt_acc − scratch_acc (seeds and test sampling; fraction). */
  acc_noise_band: number;
  /** The verdict is `held` or `held-not-attributable`. */
  claim_a: boolean;
  scratch_curve: CurvePoint[];
  adapt_curve: CurvePoint[];
  // --- Added by the headline protocol (issue #13). ---
  /** A: the pretraining task (the paper's setting); B: a shifted target. */
  arm: 'A' | 'B';
  /** The adaptation budget in epochs. */
  budget_epochs: number;
  /** Adapter (+ head) only, or full (the primary term trains too, at the lower lr). */
  train: 'adapter' | 'full';
  /** Seeds of the adaptation runs (and the controls) of this row. */
  seeds: number[];
  /** Seeds of the converged from-scratch runs. */
  scratch_seeds: number[];
  /** Training FLOPs: adaptation up to the budget, the whole from-scratch run, pretraining. */
  adapt_train_flops: number;
  scratch_train_flops: number;
  pretrain_train_flops: number;
  /** (1 − adapt_train_flops / scratch_train_flops) × 100: the whole-run saving. */
  whole_run_saving_pct: number;
  /** The same with pretraining charged to adaptation. */
  whole_run_saving_incl_pretrain_pct: number;
  /** Whole-run saving in CPU-seconds and in samples (beside the FLOPs one). */
  whole_run_cpu_saving_pct: number;
  whole_run_sample_saving_pct: number;
  /** Training FLOPs to reach the target (null: not within the budget) and the saving. */
  adapt_flops_to_target: number | null;
  scratch_flops_to_target: number;
  flop_saving_to_target_pct: number | null;
  /** The same to the target minus its validation noise band. */
  flop_saving_to_target_within_noise_pct: number | null;
  /** Every from-scratch seed met the plateau rule (else it stopped at the epoch cap). */
  scratch_converged: boolean;
  /** Largest plateau gain of the from-scratch seeds (pts; null: not measurable). */
  scratch_plateau_gain_pts: number | null;
  /** Mean epochs the from-scratch runs trained. */
  scratch_epochs: number;
  controls: ControlAccs;
  /** acc_noise_band in percentage points. */
  acc_band_pts: number;
  verdict: HeadlineVerdict;
  /** Smallest budget of this arm × backbone × target × train whose accuracy matches. */
  smallest_matching_budget_epochs: number | null;
  /** Learning rates chosen by the sweep ([lr, quadLr]) per method key. */
  chosen_lr: Record<string, [number, number]>;
  /** Test examples per run. */
  n_test: number;
}

/** A training curve point (validation accuracy after a number of CPU-seconds). */
export interface CurvePoint {
  epoch: number;
  cpu_s: number;
  samples: number;
  val_acc: number | null;
}

/** One row of the shift study: a method on a shift, over seeds. */
export interface ShiftRow {
  shift: string;
  method: string;
  acc_mean: number;
  acc_std: number | null;
  seeds: number[];
  accs: number[];
  cpu_s_mean: number;
  trainable_params: number;
  /** Test examples per run (for the noise band). */
  n_test: number;
}

/** One row of the ablation study. */
export interface AblationRow {
  name: string;
  setting: string;
  /** Final test accuracy, mean over seeds; null for measurements that do not train (memeff). */
  acc: number | null;
  acc_std: number | null;
  seeds: number[];
  /** Test accuracy and cross-entropy before any training step (init ablation). */
  step0_acc?: number | null;
  step0_loss?: number | null;
  /** Test accuracy before any training step on the clean (unshifted) data (init ablation). */
  step0_clean_acc?: number | null;
  cpu_s?: number;
  /** Training CPU-milliseconds per step (process CPU, both threads; less noisy than wall). */
  cpu_ms_per_step?: number;
  /** Median train-step wall time in ms (memory rows, measured in a fresh process). */
  step_ms?: number;
  trainable_params?: number;
  /** Parameters and FLOPs of the quadratic model over the base model, percent. */
  param_overhead_pct?: number;
  flop_overhead_pct?: number;
  peak_rss_mib?: number;
  n_test?: number;
  /**
   * Inference time over the original's at batch 1: median of the paired per-run ratios, mean
   * over seeds (placement rows show accuracy against latency).
   */
  latency_ratio?: number | null;
}

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

/** A run's state at a budget: the budget point, or the end of the run. */
function atBudget(r: RunOutcome, budget: number) {
  const bp = r.budgets?.find((b) => Math.abs(b.epochs - budget) < 0.02);
  if (bp) return { acc: bp.testAccuracy, samples: bp.samples, cpu: bp.cpuSeconds, n: bp.testN };
  return { acc: r.eval.accuracy, samples: runSamples(r), cpu: r.timing.fitCpuSeconds, n: r.eval.n };
}

/** The history up to a budget (epochs). */
const upTo = (h: readonly HistoryRecord[], budget: number) =>
  h.filter((r) => r.epoch <= budget + 1e-6);

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
          return pairedRatio(m?.timesMs, b?.timesMs)?.median;
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

/** The verdict on one claim: whether it held, and the measured numbers behind it. */
export interface ClaimVerdict {
  claim: 'a' | 'b' | 'c';
  /** The claim, in the paper's words (abridged). */
  statement: string;
  /**
   * `held`, `not held`, `partly` (held on some rows only), `inconclusive` (every difference
   * within the noise band: neither shown nor refuted) or `not measured`.
   */
  verdict: 'held' | 'not held' | 'partly' | 'inconclusive' | 'not measured';
  /** Plain sentences with the measured numbers. */
  details: string[];
}

const p2 = (x: number) => `${(x * 100).toFixed(2)}%`;
const pts = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} pts`;

function verdictOf(held: number, total: number): ClaimVerdict['verdict'] {
  if (total === 0) return 'not measured';
  if (held === total) return 'held';
  return held === 0 ? 'not held' : 'partly';
}

const f1 = (x: number | null) => (x === null ? '—' : `${x.toFixed(1)}%`);

/** One sentence on a headline row (budget × mode). */
function rowSentence(r: TimeToAccuracyRow): string {
  const ctl = [
    r.controls.fine_tune_acc === null ? '' : `fine-tuning ${p2(r.controls.fine_tune_acc)}`,
    r.controls.linear_adapter_acc === null
      ? ''
      : `linear adapter ${p2(r.controls.linear_adapter_acc)}`,
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `${r.train} ${r.budget_epochs} ep: test ${p2(r.adapt_acc)} vs ${p2(r.scratch_acc)} from scratch (${pts(r.adapt_acc - r.scratch_acc)}, band ±${r.acc_band_pts.toFixed(2)} pts); ` +
    `whole-run saving ${f1(r.whole_run_saving_pct)} of training FLOPs (${f1(r.whole_run_cpu_saving_pct)} CPU-s; pretraining charged ${f1(r.whole_run_saving_incl_pretrain_pct)}); ` +
    `to the target ${f1(r.flop_saving_to_target_pct)} (within noise ${f1(r.flop_saving_to_target_within_noise_pct)}); controls ${ctl || '—'} → ${r.verdict}`
  );
}

/**
 * Claim (a), by the headline protocol's rules (headline.ts) on arm A (the paper's setting): a
 * backbone × data set holds when some budget of quadratic adaptation is `held` or
 * `held-not-attributable`; the details say which, the smallest matching budget, and arm B.
 */
export function claimA(rows: readonly TimeToAccuracyRow[]): ClaimVerdict {
  const details: string[] = [];
  const cells = [...new Set(rows.map((r) => `${r.arm}|${r.backbone}|${r.dataset}`))];
  let held = 0;
  let total = 0;
  for (const c of cells) {
    const [arm, backbone, dataset] = c.split('|');
    const rs = rows.filter(
      (r) => r.arm === arm && r.backbone === backbone && r.dataset === dataset,
    );
    const r0 = rs[0]!;
    const best = rs.some((r) => r.verdict === 'held')
      ? 'held'
      : rs.some((r) => r.verdict === 'held-not-attributable')
        ? 'held-not-attributable'
        : 'not-held';
    if (arm === 'A') {
      total++;
      if (best !== 'not-held') held++;
    }
    const smallest = (['adapter', 'full'] as const)
      .map((t) => {
        const x = rs.find((r) => r.train === t);
        if (!x) return '';
        return `${t}: ${x.smallest_matching_budget_epochs === null ? 'no budget matches' : `smallest matching budget ${x.smallest_matching_budget_epochs} ep`}`;
      })
      .filter(Boolean)
      .join('; ');
    details.push(
      `arm ${arm}${arm === 'B' ? " (shifted target; not the paper's setting, no verdict)" : ''}, ${backbone} / ${dataset} — ${best}. From scratch: ${r0.scratch_seeds.length} seed(s), ${r0.scratch_epochs.toFixed(1)} epochs, ${r0.scratch_converged ? 'converged' : 'NOT converged (epoch cap)'} (plateau gain ${r0.scratch_plateau_gain_pts === null ? '—' : r0.scratch_plateau_gain_pts.toFixed(2)} pts), target ${p2(r0.target_val_acc)} validation; pretrained network ${p2(r0.pretrained_val_acc ?? NaN)} validation. ${smallest}. ` +
        rs.map(rowSentence).join('; ') +
        '.',
    );
  }
  return {
    claim: 'a',
    statement:
      'Adapting a pretrained first-order network costs 90–98.4% less training compute than training the quadratic network from scratch, at equal or better accuracy.',
    verdict: verdictOf(held, total),
    details,
  };
}

/** Claim (b): the quadratic term adapts to shift better than first-order fine-tuning. */
export function claimB(rows: readonly ShiftRow[]): ClaimVerdict {
  const shifts = [...new Set(rows.map((r) => r.shift))];
  const details: string[] = [];
  let held = 0;
  let worse = 0;
  let total = 0;
  const stat = (r: ShiftRow) => ({
    mean: r.acc_mean,
    std: r.acc_std,
    n: r.accs.length,
    nTest: r.n_test,
  });
  for (const sh of shifts) {
    const get = (m: string) => rows.find((r) => r.shift === sh && r.method === m);
    const q = get('quadratic-adapt');
    const f = get('fine-tune');
    if (!q || !f) continue;
    total++;
    const d = q.acc_mean - f.acc_mean;
    const band = noiseBand(stat(q), stat(f));
    const better = d > 0;
    // "Better" must be measurable: a difference inside the noise band shows nothing.
    if (d > band) held++;
    if (d < -band) worse++;
    const lin = get('linear-adapter');
    const linText = lin
      ? `; vs the linear adapter of the same budget ${p2(lin.acc_mean)} (${pts(q.acc_mean - lin.acc_mean)}, noise band ±${(noiseBand(stat(q), stat(lin)) * 100).toFixed(2)} pts)`
      : '';
    details.push(
      `${sh}: quadratic adaptation ${p2(q.acc_mean)} vs full fine-tuning ${p2(f.acc_mean)} (${pts(d)}, noise band ±${(band * 100).toFixed(2)} pts: ${Math.abs(d) > band ? (better ? 'better' : 'worse') : 'within noise'})${linText}; ${q.accs.length} seed(s).`,
    );
  }
  return {
    claim: 'b',
    statement:
      'The quadratic term adapts to non-linearity and distribution shift better than first-order fine-tuning.',
    verdict: held === 0 && worse === 0 && total > 0 ? 'inconclusive' : verdictOf(held, total),
    details,
  };
}

/** Claim (c): low rank and atrous kernels keep the cost low; kernel functions add capacity. */
export function claimC(rows: readonly AblationRow[], cfg: ExperimentConfig): ClaimVerdict {
  const details: string[] = [];
  const get = (name: string, setting: string) =>
    rows.find((r) => r.name === name && r.setting === setting);
  const band = (a: AblationRow, b: AblationRow) =>
    noiseBand(
      { mean: a.acc!, std: a.acc_std, n: a.seeds.length, nTest: a.n_test ?? 1 },
      { mean: b.acc!, std: b.acc_std, n: b.seeds.length, nTest: b.n_test ?? 1 },
    );
  const parts: boolean[] = [];
  const ranks = rows.filter((r) => r.name === 'rank');
  if (ranks.length) {
    details.push(
      'rank: ' +
        ranks
          .map(
            (r) =>
              `r=${r.setting}: ${p2(r.acc!)}, +${r.param_overhead_pct!.toFixed(1)}% params, +${r.flop_overhead_pct!.toFixed(1)}% FLOPs, ${r.cpu_ms_per_step!.toFixed(0)} CPU-ms/step`,
          )
          .join('; ') +
        '.',
    );
    const def = ranks.find((r) => r.setting === String(cfg.rank));
    const best = ranks.reduce((a, b) => (b.acc! > a.acc! ? b : a));
    if (def) {
      const ok = best.acc! - def.acc! <= band(def, best);
      parts.push(ok);
      details.push(
        `Cost grows linearly with the rank; the default rank ${cfg.rank} (+${def.flop_overhead_pct!.toFixed(1)}% FLOPs) is ${ok ? 'within the noise band of' : `${((best.acc! - def.acc!) * 100).toFixed(2)} pts below`} the most accurate rank (${best.setting}, +${best.flop_overhead_pct!.toFixed(1)}% FLOPs; band ±${(band(def, best) * 100).toFixed(2)} pts)${ok ? ': low rank keeps the cost low at no measurable loss' : ': here low rank trades accuracy for cost'}.`,
      );
    }
  }
  const atrous = rows.find((r) => r.name === 'kernel' && r.setting.startsWith('atrous'));
  const dense = rows.find((r) => r.name === 'kernel' && r.setting.startsWith('dense'));
  if (atrous && dense) {
    const cheaper =
      atrous.trainable_params! < dense.trainable_params! &&
      atrous.flop_overhead_pct! < dense.flop_overhead_pct!;
    const asGood = dense.acc! - atrous.acc! <= band(atrous, dense);
    parts.push(cheaper && asGood);
    details.push(
      `atrous vs dense quadratic kernels on the 7×7 depthwise convs: ${atrous.trainable_params} vs ${dense.trainable_params} trainable parameters, +${atrous.flop_overhead_pct!.toFixed(1)}% vs +${dense.flop_overhead_pct!.toFixed(1)}% FLOPs, ${atrous.cpu_ms_per_step!.toFixed(0)} vs ${dense.cpu_ms_per_step!.toFixed(0)} CPU-ms/step; accuracy ${p2(atrous.acc!)} vs ${p2(dense.acc!)} (${pts(atrous.acc! - dense.acc!)}, band ±${(band(atrous, dense) * 100).toFixed(2)} pts) — ${cheaper && asGood ? 'cheaper at no measurable loss' : cheaper ? 'cheaper but less accurate' : 'not cheaper'}.`,
    );
  }
  const prod = get('phi', 'product');
  const rbf = get('phi', 'rbf');
  if (prod && rbf) {
    const d = rbf.acc! - prod.acc!;
    const b = band(prod, rbf);
    parts.push(d > b);
    details.push(
      `kernel function: φ = rbf ${p2(rbf.acc!)} vs product ${p2(prod.acc!)} (${pts(d)}, band ±${(b * 100).toFixed(2)} pts) — ${d > b ? 'rbf adds measurable accuracy here' : d > 0 ? 'higher but within noise: no measurable added capacity' : 'no added accuracy here'}.`,
    );
  }
  const low = get('mode', 'lowrank');
  const neu = get('mode', 'neuron');
  if (low && neu) {
    details.push(
      `mode: lowrank ${p2(low.acc!)} with ${low.trainable_params} trainable params vs neuron (QuadraNet V1, full rank) ${p2(neu.acc!)} with ${neu.trainable_params} (${pts(low.acc! - neu.acc!)}).`,
    );
  }
  return {
    claim: 'c',
    statement:
      'Low rank and atrous kernels keep the cost of the quadratic term low; kernel functions add capacity.',
    verdict: verdictOf(parts.filter(Boolean).length, parts.length),
    details,
  };
}

/**
 * Verdicts of the placement study (issue #14; rules in docs/experiments.md, written before the
 * results): the budget plan *keeps the accuracy* when it is within the noise band of every
 * layer's terms (or above), and *usefulness matters* when it beats the last-stage and random
 * placements of the same cost by more than the band.
 */
export function placementFindings(rows: readonly AblationRow[]): string[] {
  const get = (prefix: string) =>
    rows.find((r) => r.name === 'placement' && r.setting.startsWith(prefix) && r.acc !== null);
  const all = get('all');
  const bud = get('budget');
  if (!all || !bud) return [];
  const stats = (r: AblationRow) => ({
    mean: r.acc!,
    std: r.acc_std,
    n: r.seeds.length,
    nTest: r.n_test ?? 1,
  });
  const cost = (r: AblationRow) =>
    `+${r.flop_overhead_pct!.toFixed(1)}% FLOPs` +
    (r.latency_ratio != null ? `, ${r.latency_ratio.toFixed(2)}× inference time at batch 1` : '');
  const band = noiseBand(stats(bud), stats(all));
  const d = bud.acc! - all.acc!;
  const out = [
    `Placement: the ${bud.setting} plan ${p2(bud.acc!)} (${cost(bud)}) vs every layer ${p2(all.acc!)} (${cost(all)}), ${pts(d)} (band ±${(band * 100).toFixed(2)} pts) — ${d >= -band ? 'KEEPS the accuracy at a fraction of the cost' : 'LOSES accuracy beyond the noise'}.`,
  ];
  for (const other of [get('last stage'), get('random')]) {
    if (!other) continue;
    const b2 = noiseBand(stats(bud), stats(other));
    const d2 = bud.acc! - other.acc!;
    out.push(
      `Placement: budget plan ${p2(bud.acc!)} vs ${other.setting} ${p2(other.acc!)} (${cost(other)}), ${pts(d2)} (band ±${(b2 * 100).toFixed(2)} pts) — ${d2 > b2 ? 'usefulness per FLOP MATTERS here' : d2 < -b2 ? `the ${other.setting} placement is BETTER` : 'within noise: usefulness scoring NOT SHOWN to matter here'}.`,
    );
  }
  return out;
}

/** Observations of the ablations that are not one of the three claims. */
export function otherFindings(rows: readonly AblationRow[]): string[] {
  const out: string[] = [...placementFindings(rows)];
  const zero = rows.find((r) => r.name === 'init' && r.setting.startsWith('zero'));
  const rnd = rows.find((r) => r.name === 'init' && r.setting.startsWith('random'));
  if (zero && rnd && zero.step0_acc != null && rnd.step0_acc != null) {
    out.push(
      `Initialisation: at step 0, on the shifted test split, the zero-U quadratic model has accuracy ${p2(zero.step0_acc)} (exactly the pretrained network; loss ${zero.step0_loss?.toFixed(4)}) and the one with A, B and U all random (PyTorch-default scale) ${p2(rnd.step0_acc)} (${pts(rnd.step0_acc - zero.step0_acc)}; loss ${rnd.step0_loss?.toFixed(4)})` +
        (zero.step0_clean_acc != null && rnd.step0_clean_acc != null
          ? `; on the clean test split ${p2(zero.step0_clean_acc)} vs ${p2(rnd.step0_clean_acc)} (${pts(rnd.step0_clean_acc - zero.step0_clean_acc)})`
          : '') +
        `; after training ${p2(zero.acc!)} vs ${p2(rnd.acc!)}. ` +
        (Math.max(
          zero.step0_acc - rnd.step0_acc,
          (zero.step0_clean_acc ?? 0) - (rnd.step0_clean_acc ?? 0),
        ) >= 0.01
          ? 'Random init visibly lowers the starting accuracy; zero U keeps the pretrained function exactly.'
          : 'Random init does not visibly lower the starting accuracy here: at the default init scale the random quadratic term is small next to the pretrained layers.'),
    );
  }
  const ad = rows.find((r) => r.name === 'train' && r.setting.startsWith('adapter'));
  const full = rows.find((r) => r.name === 'train' && r.setting.startsWith('full'));
  if (ad && full) {
    out.push(
      `Adapter-only vs full training: ${p2(ad.acc!)} with ${ad.trainable_params} trainable parameters (${ad.cpu_s!.toFixed(1)} CPU-s) vs ${p2(full.acc!)} with ${full.trainable_params} (${full.cpu_s!.toFixed(1)} CPU-s).`,
    );
  }
  const mem = rows.filter((r) => r.name === 'memeff');
  for (const on of mem.filter((r) => r.setting.startsWith('recompute on'))) {
    const off = mem.find((r) => r.setting === on.setting.replace('recompute on', 'recompute off'));
    if (!off) continue;
    out.push(
      `Memory-efficient backward (${on.setting.replace('recompute on, ', '')}): peak RSS ${on.peak_rss_mib!.toFixed(0)} MiB with recomputation vs ${off.peak_rss_mib!.toFixed(0)} MiB without (${(((on.peak_rss_mib! - off.peak_rss_mib!) / off.peak_rss_mib!) * 100).toFixed(1)}%), step ${on.step_ms!.toFixed(0)} vs ${off.step_ms!.toFixed(0)} ms (${(((on.step_ms! - off.step_ms!) / off.step_ms!) * 100).toFixed(1)}%).`,
    );
  }
  return out;
}
