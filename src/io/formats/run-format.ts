/**
 * The run directory written by `quadranet adapt` and `quadranet train`, read by `report`.
 *
 *   RUN_DIR/run.json        RunInfo (written at start, rewritten at the end)
 *   RUN_DIR/history.jsonl   one HistoryRecord per line (per epoch, plus a final line)
 *   RUN_DIR/eval.json       EvalSummary of the final model on the test split
 *   RUN_DIR/model.onnx      the trained model; adapt also writes adapter.safetensors + adapter_config.json
 *   RUN_DIR/checkpoints/    resumable checkpoints (see src/io/formats/checkpoint.ts)
 */

/** How a run trained, in the terms the report compares. */
export type RunMethod =
  | 'quadratic-adapt' // QuadraNet V2: pretrained primary term frozen or not, quadratic term added
  | 'fine-tune' // full first-order fine-tuning of the pretrained model
  | 'linear-adapter' // first-order low-rank adapter with the quadratic adapter's parameter budget
  | 'head-only' // only the classifier head trains
  | 'scratch' // first-order architecture from random init
  | 'scratch-quadratic'; // quadratic architecture from random init

/** What a run was: written once at start, completed at the end. */
export interface RunInfo {
  /** Format version of this file. */
  format: 1;
  /** The method trained. */
  method: RunMethod;
  /** A short label for charts, e.g. "quadratic r=4". */
  label: string;
  /** Base model file (or built-in architecture name) and its SHA-256. */
  model: string;
  /** SHA-256 of the base model (file bytes, or the encoded built-in graph). */
  modelSha256?: string;
  /** Data spec string, e.g. "mnist:shift=contrast". */
  data: string;
  /** Seed of the run. */
  seed: number;
  /** Full command line, for reproduction. */
  command: string;
  /** Parameters of the trained model, those that trained, and of the base model. */
  params: { total: number; trainable: number; base: number };
  /** FLOPs of one forward pass per sample (multiply-add = 2) of the trained and the base model. */
  flops: { model: number; base: number };
  /** Training FLOPs per sample of one train step (forward + backward), estimated. */
  trainFlopsPerSample?: number;
  /** ISO 8601 start time. */
  started: string;
  /** ISO 8601 end time (absent while running). */
  finished?: string;
  /** Whether the run ended normally ('done'), was interrupted, or diverged. */
  status: 'running' | 'done' | 'interrupted' | 'diverged';
  /** Library and runtime versions, machine, threads. */
  env: { quadranet: string; onnxruntime: string; node: string; cpu: string; threads: number };
  /**
   * Classification: the output activation found (softmax, log_softmax, sigmoid or none), the
   * loss trained with and what it read (the logits under the activation, or the output), and the
   * one-line description printed at the start of the run.
   */
  output?: { activation: string; loss: string; lossReads: 'logits' | 'output'; summary: string };
  /** The head replaced for a new class count (`--num-classes`): layer, op, widths and seed. */
  head?: { node: string; op: string; from: number; to: number; seed: number };
  /**
   * `--budget`: the budget, what the planned terms add and the ranks chosen per layer (and for a
   * latency budget the timings of the plans tried).
   */
  budget?: {
    spec: string;
    scores: 'gradient' | 'none';
    baseFlops: number;
    quadFlops: number;
    overheadPct: number;
    ranks: Record<string, number>;
    latency?: unknown;
  };
}

/** One line of history.jsonl. */
export interface HistoryRecord {
  /** Steps taken so far. */
  step: number;
  /** Epoch number (1-based: the epochs completed). */
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  /** Training accuracy over the epoch. */
  trainAccuracy?: number;
  /** Validation accuracy after the epoch. */
  valAccuracy?: number;
  /** Validation loss after the epoch. */
  valLoss?: number;
  /** Regression data: validation mean squared error after the epoch. */
  valMse?: number;
  /** Image targets: validation PSNR in dB (peak 1) of the validation MSE; null in JSON when infinite. */
  valPsnr?: number;
  /** Cumulative wall-clock and process CPU seconds spent training (evaluation excluded). */
  wallSeconds: number;
  /** Cumulative process CPU seconds spent training (evaluation excluded). */
  cpuSeconds: number;
  /** Cumulative training samples seen. */
  samples: number;
  /** Training samples per training wall-clock second, cumulative. */
  samplesPerSecond: number;
  /** Learning rate (of group 0) at the end of the epoch. */
  lr: number;
}

/** Latency of inference, per batch and per sample. */
export interface LatencySummary {
  /** Batch size timed. */
  batchSize: number;
  /** Median milliseconds per batch. */
  p50Ms: number;
  /** 95th-percentile milliseconds per batch. */
  p95Ms: number;
  /** Median milliseconds per sample (p50 / batch size). */
  perSampleMs: number;
  /**
   * Every timed run in the order it ran. Models timed together alternate run by run, so the i-th
   * timings of two models are a pair (the report's latency intervals come from these pairs).
   */
  timesMs?: number[];
  /**
   * How many of `timesMs` each fresh set of sessions ran, in order. A session keeps a speed of
   * its own, so the sets, not the runs, are the independent repeats of a comparison.
   */
  setSizes?: number[];
}

/**
 * Metrics of outputs against regression targets (see `RegressionMetrics` in
 * src/runtime/regression.ts): MSE, RMSE and MAE over all target values; for image targets PSNR
 * (dB, peak 1) of the global MSE (`psnr`, null in JSON when infinite) and the mean of per-image
 * PSNRs (`meanPsnr`).
 */
export interface RegressionSummary {
  /** Mean squared error. */
  mse: number;
  /** Root mean squared error. */
  rmse: number;
  /** Mean absolute error. */
  mae: number;
  /** PSNR of the global MSE (image targets). */
  psnr?: number;
  /** Mean per-image PSNR (image targets). */
  meanPsnr?: number;
  /** Mask targets (`pairs:DIR:loss=ce|bce`): fraction of pixels of the right class. */
  pixelAccuracy?: number;
  /** Mask targets: mean over classes of intersection over union. */
  meanIou?: number;
  /** Mask targets: mean per-pixel (binary) cross-entropy; `mse` is then that of the probabilities. */
  loss?: number;
}

/**
 * Final evaluation of a run's model (and of the base model for comparison). On data with
 * regression targets, `regression` holds the metrics, `loss` is the MSE, `accuracy` is NaN
 * (null in eval.json) and the per-class fields are empty; on mask targets `loss` is the mean
 * per-pixel (binary) cross-entropy and `accuracy` the pixel accuracy.
 */
export interface EvalSummary {
  /** Test examples. */
  n: number;
  /** Test accuracy (fraction); NaN for regression data. */
  accuracy: number;
  /** Mean test cross-entropy (MSE for regression data). */
  loss: number;
  /** Accuracy of each class. */
  perClassAccuracy: number[];
  /** confusion[true][pred] counts. */
  confusion: number[][];
  /** Inference latency per batch size. */
  latency: LatencySummary[];
  /** Regression data: MSE, RMSE, MAE, PSNR. */
  regression?: RegressionSummary;
  /** The same measurements of the original (base) model, when the run has one. */
  base?: {
    accuracy: number;
    loss: number;
    latency: LatencySummary[];
    regression?: RegressionSummary;
  };
}
