/** The result rows of the experiments (the JSON's tables), as analysis.ts computes them. */

import type { Backbone } from './config.js';
import type { HeadlineVerdict } from './headline.js';

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
