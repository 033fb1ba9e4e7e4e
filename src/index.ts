/**
 * quadranet's public API: QuadraNet V2 quadratic adaptation of pretrained networks, on ONNX
 * Runtime. Deliberately small: everything the CLI does is reachable from here, nothing else is
 * promised (modules under `dist/src/...` are internal and may change between versions).
 *
 * ```ts
 * import { cnn, quadratize, quadParamNames, Trainer, saveAdapter } from 'quadranet';
 *
 * const base = cnn();                                   // or (await importModel('model.onnx')).graph
 * const { graph } = quadratize(base, { rank: 4 });      // outputs still equal base's
 * const trainer = await Trainer.create(graph, {
 *   batchSize: 64,
 *   loss: { kind: 'cross_entropy' },
 *   optimizer: { kind: 'adamw' },
 *   groups: [{ name: 'quadratic', params: quadParamNames(graph), lr: 3e-3 }],
 * });
 * await trainer.trainStep({ x, y, size: 64 });
 * await saveAdapter('out/', trainer.currentModel());
 * ```
 *
 * The sections below: models in and out, the quadratic pass and adapter files, accounting,
 * training, workflow (one run end to end, evaluation, reports), data, built-in architectures.
 *
 * @packageDocumentation
 */

// ── Models in and out ─────────────────────────────────────────────────────────────────────
export {
  importModel,
  type ImportedModel,
  type ImportNotes,
  type ImportOptions,
} from './io/import/importers.js';
export type { FoldReport } from './passes/fold.js';
export type {
  FoldedWeight,
  NormalizeReport,
  UntiedInitializer,
} from './passes/normalize-export.js';
export type { UpgradeReport } from './passes/upgrade-opset.js';
export { importTfjs, type TfjsImportOptions } from './io/import/tfjs/index.js';
export {
  decodeModel,
  encodeModel,
  OnnxFormatError,
  type EncodeOptions,
  type ReadOptions,
} from './ir/onnx.js';
export {
  cloneGraph,
  GraphError,
  type Attribute,
  type Dim,
  type Graph,
  type Node,
  type ValueInfo,
} from './ir/graph.js';
export type { DType, Tensor, TypedArray } from './ir/tensor.js';
export type { AttrInput, GraphBuilder, OpOptions } from './ir/builder.js';
export { QuadranetFileError } from './io/errors.js';
export { QuadranetError, UserError } from './util/errors.js';

// ── The quadratic pass ────────────────────────────────────────────────────────────────────
export {
  quadratize,
  type QuadratizeOptions,
  type QuadratizeResult,
  type TargetReport,
} from './passes/quadratize.js';
export {
  quadParamNames,
  QuadratizeError,
  type AdapterConfig,
  type QuadLayerKind,
  type QuadMode,
  type QuadOp,
  type QuadParamSpec,
  type QuadPhi,
  type QuadRole,
  type QuadTargetSpec,
} from './passes/quadratic-spec.js';
export { isAdapterEnabled, setAdapterEnabled, unload } from './passes/adapter.js';
export { parseBudget, type QuadBudget } from './passes/budget/parse.js';
export {
  planBudget,
  type BudgetPlan,
  type BudgetPlanOptions,
  type TimedPlan,
} from './workflow/budget.js';
export type { PlannedLayer } from './passes/budget/plan.js';
export { QUAD_MODES } from './passes/quadratic-spec.js';
export { classifierLoss, describeEnding, detectOutputEnding } from './passes/output-ending.js';
export type { OutputActivation, OutputEnding } from './passes/output-ending.js';
export { replaceHead } from './passes/replace-head.js';
export type { HeadReplacement, ReplaceHeadOptions } from './passes/replace-head.js';

// ── Extension points: each registry takes one entry per file ──────────────────────────────
export {
  phiChoices,
  quadVariant,
  quadVariants,
  registerQuadVariant,
  type ChannelParam,
  type PhiContext,
  type QuadVariant,
} from './passes/variants/index.js';
export {
  emitPhi,
  quadOpTypes,
  registerQuadHandler,
  type EmitContext,
  type HandlerContext,
  type Inspection,
  type PlannedTarget,
  type QuadHandler,
  type TargetSettings,
} from './passes/quadratic-handlers.js';
export { registerImporter, type Importer } from './io/import/importers.js';
export {
  differentiableOps,
  registerGradient,
  type GradContext,
  type GradForms,
  type GradRule,
} from './autodiff/registry.js';
export { registerFlopRule, type FlopRule } from './passes/accounting.js';
export {
  registerShapeRule,
  type ShapeContext,
  type ShapeInfo,
  type ShapeResult,
  type ShapeRule,
} from './ir/shapes/index.js';

// ── Adapter files ─────────────────────────────────────────────────────────────────────────
export {
  AdapterBaseMismatchError,
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  readAdapterConfig,
  type AdapterFileConfig,
  type AdapterHeadRecord,
} from './io/formats/adapter-config.js';
export {
  graphSha256,
  loadAdapter,
  saveAdapter,
  type LoadAdapterOptions,
  type SaveAdapterOptions,
} from './workflow/adapter-files.js';

// ── Parameters and FLOPs ──────────────────────────────────────────────────────────────────
export {
  accountLayers,
  type AccountOptions,
  type Cost,
  type LayerAccount,
  type ModelAccount,
} from './passes/accounting.js';
export { learnableParams } from './workflow/params.js';

// ── Training ──────────────────────────────────────────────────────────────────────────────
export {
  Trainer,
  type EvalResult,
  type StepResult,
  type TrainerOptions,
  type TrainGroup,
} from './runtime/trainer.js';
export { fit, type FitOptions, type FitProgress, type FitResult } from './runtime/fit.js';
export type { LossKind, LossOptions } from './autodiff/losses.js';
export type { AdamWOptions, OptimizerOptions, SgdOptions } from './autodiff/optimizers.js';
export type { ScheduleOptions } from './runtime/schedule.js';
export {
  EXECUTION_PROVIDERS,
  ExecutionProviderError,
  Session,
  type ExecutionProvider,
  type HostTensor,
  type SessionOptions,
} from './runtime/session.js';

// ── Workflow: one run end to end, evaluation, reports ─────────────────────────────────────
export { runMethod, type RunOptions, type RunResult } from './workflow/run.js';
export { METHOD_NAMES } from './workflow/methods.js';
export {
  loadModelSource,
  type ArchSourceOptions,
  type ModelSource,
} from './workflow/model-source.js';
import { classificationMetrics, evaluateModel } from './workflow/evaluate.js';
export { classificationMetrics, evaluateModel, measureLatency } from './workflow/evaluate.js';
export type { EvalNames, LatencyOptions, OnPhase, PhaseProgress } from './workflow/evaluate.js';
export type { AtomicFileHandle, AtomicFs } from './io/atomic.js';
export type { RegressionMetrics } from './runtime/regression.js';
/** What {@link classificationMetrics} returns: accuracy, loss, per-class accuracy, confusion. */
export type ClassificationMetrics = Awaited<ReturnType<typeof classificationMetrics>>;
/** The options of {@link evaluateModel}: the base model to compare with, latency, session. */
export type EvaluateModelOptions = NonNullable<Parameters<typeof evaluateModel>[2]>;
export { defaultModelPath } from './workflow/demo.js';
export {
  DEFAULT_PRICE_PER_HOUR,
  ReportError,
  writeReport,
  type BaseAccuracy,
  type ComputeSaving,
  type CurvePoint,
  type EnvSummary,
  type GroupHeadline,
  type GroupSummary,
  type LatencyComparison,
  type ReportOptions,
  type ReportSummary,
  type RoiSummary,
  type LatencyVerdict,
  type Recommendation,
  type RecommendationOption,
  type Interval,
  type RunSummary,
} from './report/index.js';
export type {
  EvalSummary,
  HistoryRecord,
  LatencySummary,
  RegressionSummary,
  RunInfo,
  RunMethod,
} from './io/formats/run-format.js';

// ── Data ──────────────────────────────────────────────────────────────────────────────────
export {
  loadDataset,
  parseDataSpec,
  type CsvSpec,
  type DataSpec,
  type FolderSpec,
  type IdxSpec,
  type LoadDatasetOptions,
  type MnistSpec,
  type PairsSpec,
  type ShiftSpec,
} from './data/spec.js';
export type { Split } from './data/mnist.js';
export { SHIFT_KINDS, type ShiftKind } from './data/shifts.js';
export {
  batches,
  createDataset,
  split,
  type Batch,
  type BatchOptions,
  type Dataset,
  type DatasetFields,
  type MaskKind,
  type SplitOptions,
} from './data/dataset.js';
export { DataError } from './data/errors.js';

// ── Built-in first-order architectures ────────────────────────────────────────────────────
export {
  ARCHITECTURES,
  cnn,
  convnext,
  mlp,
  resnet,
  type ArchName,
  type ArchOptions,
  type ImageShape,
} from './models/zoo.js';

export { VERSION } from './version.js';
