/**
 * The run directory written by `quadranet adapt` and `quadranet train`, read by `report`.
 *
 *   RUN_DIR/run.json        RunInfo (written at start, rewritten at the end)
 *   RUN_DIR/history.jsonl   one HistoryRecord per line (per epoch, plus a final line)
 *   RUN_DIR/eval.json       EvalSummary of the final model on the test split
 *   RUN_DIR/model.onnx      the trained model; adapt also writes adapter.safetensors + adapter_config.json
 *   RUN_DIR/checkpoints/    resumable checkpoints (see src/io/checkpoint.ts)
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
  method: RunMethod;
  /** A short label for charts, e.g. "quadratic r=4". */
  label: string;
  /** Base model file (or built-in architecture name) and its SHA-256. */
  model: string;
  modelSha256?: string;
  /** Data spec string, e.g. "mnist:shift=contrast". */
  data: string;
  seed: number;
  /** Full command line, for reproduction. */
  command: string;
  /** Parameters of the trained model, those that trained, and of the base model. */
  params: { total: number; trainable: number; base: number };
  /** FLOPs of one forward pass per sample (multiply-add = 2) of the trained and the base model. */
  flops: { model: number; base: number };
  /** Training FLOPs per sample of one train step (forward + backward), estimated. */
  trainFlopsPerSample?: number;
  started: string;
  finished?: string;
  /** Whether the run ended normally ('done'), was interrupted, or diverged. */
  status: 'running' | 'done' | 'interrupted' | 'diverged';
  /** Library and runtime versions, machine, threads. */
  env: { quadranet: string; onnxruntime: string; node: string; cpu: string; threads: number };
}

/** One line of history.jsonl. */
export interface HistoryRecord {
  step: number;
  epoch: number;
  /** Mean training loss over the epoch. */
  loss: number;
  trainAccuracy?: number;
  valAccuracy?: number;
  valLoss?: number;
  /** Cumulative wall-clock and process CPU seconds spent training (evaluation excluded). */
  wallSeconds: number;
  cpuSeconds: number;
  /** Cumulative training samples seen. */
  samples: number;
  samplesPerSecond: number;
  lr: number;
}

/** Latency of inference, per batch and per sample. */
export interface LatencySummary {
  batchSize: number;
  p50Ms: number;
  p95Ms: number;
  perSampleMs: number;
}

/** Final evaluation of a run's model (and of the base model for comparison). */
export interface EvalSummary {
  n: number;
  accuracy: number;
  loss: number;
  perClassAccuracy: number[];
  /** confusion[true][pred] counts. */
  confusion: number[][];
  latency: LatencySummary[];
  /** The same measurements of the original (base) model, when the run has one. */
  base?: { accuracy: number; loss: number; latency: LatencySummary[] };
}
