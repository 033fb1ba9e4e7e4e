/** The shapes of the report's numbers (see summary.ts for how they are computed) and its defaults. */

import type { LatencySummary, RunInfo, RunMethod } from '../io/formats/run-format.js';
import type { Recommendation } from './recommend.js';

/** USD per CPU-hour used when the caller gives no price (a modest cloud vCPU-hour, rounded up). */
export const DEFAULT_PRICE_PER_HOUR = 0.1;
/** The baseline of "compute saved" when the caller names none. */
export const DEFAULT_BASELINE_METHOD: RunMethod = 'scratch-quadratic';
/** The baseline used when no run of the requested baseline method exists on the same data. */
export const FALLBACK_BASELINE_METHOD: RunMethod = 'scratch';
/** Methods that train from random initialisation (never compared against a baseline). */
export const FROM_SCRATCH_METHODS: readonly RunMethod[] = ['scratch-quadratic', 'scratch'];

/** Options of the summary (all optional in {@link ReportOptions}; defaults filled in). */
export interface SummaryOptions {
  /** Report title. */
  title: string;
  /** USD per CPU-hour (one core busy for one hour). */
  pricePerHour: number;
  /** The method whose runs are "from scratch" for compute saved. */
  baselineMethod: RunMethod;
  /** When the report was made. */
  date: Date;
}

/** One point of a training curve. */
export interface CurvePoint {
  epoch: number;
  step: number;
  /** Cumulative process CPU-seconds of training. */
  cpuSeconds: number;
  /** Cumulative wall-clock seconds of training. */
  wallSeconds: number;
  /** Cumulative training samples seen. */
  samples: number;
  /** Accuracy (fraction) of the curve's metric at this point. */
  accuracy: number;
}

/** A run's model against its base model at one batch size. */
export interface LatencyComparison {
  batchSize: number;
  /** This run's model. */
  model: LatencySummary;
  /** The base model, when eval.json has it at this batch size. */
  base: LatencySummary | null;
  /** model / base of p50 batch latency; null without a base. */
  p50Ratio: number | null;
  /** model / base of p95 batch latency. */
  p95Ratio: number | null;
  /** model / base of per-sample latency. */
  perSampleRatio: number | null;
}

/** Everything the report says about one run. */
export interface RunSummary {
  /** Position in the input (stable id). */
  index: number;
  /** Unique display name: the label, plus data and/or seed when needed to tell runs apart. */
  name: string;
  dir: string;
  label: string;
  method: RunMethod;
  data: string;
  seed: number;
  model: string;
  status: RunInfo['status'];
  command: string;
  params: RunInfo['params'];
  flops: RunInfo['flops'];
  /** (params.total − params.base) / params.base × 100; null when base is 0. */
  paramOverheadPct: number | null;
  /** (flops.model − flops.base) / flops.base × 100; null when base is 0. */
  flopOverheadPct: number | null;
  /** Final accuracy (fraction): test accuracy from eval.json, else the last curve accuracy. */
  finalAccuracy: number | null;
  /** Where finalAccuracy comes from. */
  finalAccuracySource: 'test' | 'val' | 'train' | 'none';
  /** Test examples behind finalAccuracy (eval.json `n`); null when it is not a test accuracy. */
  testExamples: number | null;
  /** Which history accuracy the curve plots. */
  curveMetric: 'val' | 'train' | 'none';
  curve: CurvePoint[];
  /** Accuracy of the last curve point (what compute-saved targets compare). */
  curveFinalAccuracy: number | null;
  /** Test accuracy of the base model (eval.json base.accuracy). */
  baseAccuracy: number | null;
  /** (finalAccuracy − baseAccuracy) × 100. */
  gainVsBasePts: number | null;
  /** Total training compute: cumulative CPU-seconds of the last history record. */
  cpuSeconds: number;
  wallSeconds: number;
  samples: number;
  epochs: number;
  /** cpuSeconds / 3600. */
  computeHours: number;
  /** computeHours × pricePerHour. */
  costUsd: number;
  /** One entry per batch size the run's model was timed at. */
  latency: LatencyComparison[];
  env: RunInfo['env'];
}

/** Runs sharing method + label + data (seeds of one configuration). */
export interface GroupSummary {
  key: string;
  /** Display name: the label, plus the data when the report covers several data sets. */
  name: string;
  method: RunMethod;
  label: string;
  data: string;
  /** Indices into ReportSummary.runs. */
  runs: number[];
  seeds: number[];
  /** Number of runs with a final accuracy. */
  n: number;
  meanAccuracy: number | null;
  /** Sample standard deviation (n − 1); null when n < 2. */
  stdAccuracy: number | null;
  minAccuracy: number | null;
  maxAccuracy: number | null;
  meanCpuSeconds: number;
  stdCpuSeconds: number | null;
}

/** The base (original) model's test accuracy on one data set. */
export interface BaseAccuracy {
  data: string;
  /** Mean of eval.json base.accuracy over the runs on this data that report it. */
  accuracy: number;
  /** How many runs reported it. */
  n: number;
}

/** Compute saved by one pretrained-start run against the from-scratch baseline. */
export interface ComputeSaving {
  /** Index into ReportSummary.runs. */
  run: number;
  name: string;
  /** The baseline method actually used (the requested one or the fallback); null when none. */
  baselineMethod: RunMethod | null;
  /** Indices of the baseline runs (same data). */
  baselineRuns: number[];
  /** The baseline's final curve accuracy, mean over its runs. */
  targetAccuracy: number | null;
  /** The baseline's total CPU-seconds, mean over its runs. */
  baselineCpuSeconds: number | null;
  /** CPU-seconds at the first record reaching the target; null when not reached (or no baseline). */
  timeToAccuracyCpuSeconds: number | null;
  /** Samples seen at that record. */
  timeToAccuracySamples: number | null;
  /** Whether the run's curve reached the target. */
  reached: boolean;
  /** (1 − timeToAccuracy / baselineCpuSeconds) × 100; null when not reached. */
  savingPct: number | null;
  /** The run's total CPU-seconds. */
  spentCpuSeconds: number;
  /** (1 − spent / baselineCpuSeconds) × 100: the whole run against the whole baseline. */
  totalSavingPct: number | null;
}

/** Return on investment of one pretrained-start run. */
export interface RoiSummary {
  run: number;
  name: string;
  method: RunMethod;
  computeHours: number;
  costUsd: number;
  finalAccuracy: number | null;
  baseAccuracy: number | null;
  gainVsBasePts: number | null;
  /** Mean final accuracy of the fine-tune runs on the same data; null for fine-tune runs. */
  fineTuneAccuracy: number | null;
  gainVsFineTunePts: number | null;
  /** costUsd / gainVsBasePts; null unless the gain is positive. */
  costPerPointUsd: number | null;
  /** The batch size the slowdown is quoted at (1 when measured, else the smallest common). */
  latencyBatchSize: number | null;
  /** p50 latency of the model / of its base at latencyBatchSize. */
  slowdown: number | null;
  /** One plain-language sentence. */
  verdict: string;
}

/**
 * One pretrained-start configuration (method + label + data) summed up over its seeds: the
 * figures of the report's headline tiles.
 */
export interface GroupHeadline {
  /** GroupSummary.key of the configuration. */
  group: string;
  name: string;
  method: RunMethod;
  data: string;
  /** Runs in the configuration. */
  runs: number;
  meanAccuracy: number | null;
  stdAccuracy: number | null;
  /** Mean over the runs of gainVsBasePts (runs with a base accuracy). */
  meanGainVsBasePts: number | null;
  meanGainVsFineTunePts: number | null;
  /** The baseline's target accuracy (null without a baseline). */
  targetAccuracy: number | null;
  /** How many runs reached the target. */
  reached: number;
  /** Mean saving % over the runs that reached the target; null when none did. */
  meanSavingPct: number | null;
  meanCpuSeconds: number;
  meanCostUsd: number;
  /** Mean slowdown (p50 ratio at each run's reference batch size). */
  meanSlowdown: number | null;
  latencyBatchSize: number | null;
  /** Of the first run (configurations share the architecture). */
  paramOverheadPct: number | null;
  flopOverheadPct: number | null;
}

/** One machine/runtime configuration and the runs that used it. */
export interface EnvSummary {
  cpu: string;
  threads: number;
  node: string;
  onnxruntime: string;
  quadranet: string;
  /** Indices into ReportSummary.runs. */
  runs: number[];
}

/** Everything the report shows, for the CLI and for programs. */
export interface ReportSummary {
  /** Report title. */
  title: string;
  /** ISO 8601 time the report was made. */
  generated: string;
  /** USD per CPU-hour used for every cost. */
  pricePerHour: number;
  /** The baseline method requested. */
  baselineMethod: RunMethod;
  /** Every run, summarised. */
  runs: RunSummary[];
  /** Runs grouped by data and method (means and spread over seeds). */
  groups: GroupSummary[];
  /** The original model's accuracy on each data set. */
  baseAccuracies: BaseAccuracy[];
  /** Compute of adaptation against training from scratch, per data set. */
  computeSavings: ComputeSaving[];
  /** Cost and return of adaptation against the alternatives, per configuration. */
  roi: RoiSummary[];
  /** Per pretrained-start configuration, over its seeds (same order as roi). */
  headlines: GroupHeadline[];
  /** The machines and versions the runs used. */
  envs: EnvSummary[];
  /** The verdict sentences of roi, in order. */
  verdicts: string[];
  /** Per data set: the cheapest option within noise of the best, and whether the quadratic term paid. */
  recommendations: Recommendation[];
  /** Things the reader should know (missing files, fallbacks, mixed machines...). */
  warnings: string[];
  /** The files written (empty strings when only summarised). */
  files: { html: string; markdown: string };
}
