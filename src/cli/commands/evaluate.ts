import type { Command } from 'commander';
import { loadDataset } from '../../data/spec.js';
import { accountLayers } from '../../passes/accounting.js';
import type { Dataset } from '../../data/dataset.js';
import type { LatencySummary } from '../../io/formats/run-format.js';
import type { PhaseProgress, Task, TaskMetrics } from '../../workflow/evaluate.js';
import {
  SMALL_SPLIT,
  accuracyInterval,
  checkClassifierOutput,
  inPhase,
  measureLatency,
  taskMetrics,
  taskOf,
} from '../../workflow/evaluate.js';
import {
  costInputSize,
  describeInputSize,
  imageInputShape,
  loadModelSource,
  withInputShape,
} from '../../workflow/model-source.js';
import { dataShapeFor, fitToModel, sizeToData } from '../../workflow/run.js';
import { UserError } from '../errors.js';
import { inputShape, positiveInt, epOption } from '../options.js';
import { phaseReporter } from '../progress.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { formatNumber, table } from '../table.js';
import { modelLimits } from '../options.js';

/** Parses `--batch-sizes 1,32`. */
export function parseBatchSizes(v: string): number[] {
  const list = v.split(',').map((x) => Number(x));
  if (list.some((n) => !Number.isInteger(n) || n <= 0))
    throw new UserError(`--batch-sizes: expected e.g. 1,32, got '${v}'`);
  return list;
}

/** One evaluated model, as `eval` reports it. */
interface EvalRow {
  /** The model file or arch. */
  model: string;
  /** Its metrics on the data's task. */
  metrics: TaskMetrics;
  /** Latency per batch size. */
  latency: LatencySummary[];
  /** Its FLOPs per sample. */
  flops: ReturnType<typeof accountLayers>['totals'];
}

/** dB with two decimals; ∞ for an exact reproduction. */
function fmtDb(v: number | undefined): string {
  if (v === undefined) return '–';
  return v === Infinity ? '∞ dB' : `${v.toFixed(2)} dB`;
}

/** How each task shows in `eval`: JSON fields, table columns and the notes below the table. */
const TASK_VIEW: Record<
  Task,
  {
    json: (r: EvalRow) => Record<string, unknown>;
    columns: (test: Dataset) => string[];
    cells: (r: EvalRow) => (string | number)[];
    notes: (r: EvalRow, test: Dataset) => string[];
  }
> = {
  classification: {
    json: (r) => ({ model: r.model, ...r.metrics, latency: r.latency, flops: r.flops }),
    columns: () => ['accuracy', 'loss'],
    cells: (r) => [`${(r.metrics.accuracy * 100).toFixed(2)}%`, r.metrics.loss],
    notes: (r, test) => [
      `\n${r.model}: per-class accuracy ${r.metrics.perClassAccuracy.map((a, c) => `${test.classNames?.[c] ?? c}:${(a * 100).toFixed(1)}`).join(' ')}`,
      `FLOPs per sample ${formatNumber(r.flops.base.flops + r.flops.quadratic.flops)}; confusion (rows true, cols predicted):`,
      r.metrics.confusion.map((row) => row.map((v) => String(v).padStart(5)).join('')).join('\n'),
    ],
  },
  // psnr (of the global MSE) is Infinity for an exact reproduction: null in JSON.
  regression: {
    json: (r) => ({
      model: r.model,
      task: 'regression',
      n: r.metrics.n,
      ...r.metrics.regression,
      latency: r.latency,
      flops: r.flops,
    }),
    columns: (test) =>
      test.masks
        ? [
            'pixel accuracy',
            'mean IoU',
            test.masks === 'classes' ? 'cross-entropy' : 'BCE',
            'MSE of probabilities',
          ]
        : [
            'MSE',
            'RMSE',
            'MAE',
            ...(test.targetShape?.length === 3
              ? ['PSNR (global MSE)', 'PSNR (mean per image)']
              : []),
          ],
    cells: (r) => {
      const m = r.metrics.regression!;
      if (m.pixelAccuracy !== undefined)
        return [`${(m.pixelAccuracy * 100).toFixed(2)}%`, m.meanIou ?? NaN, m.loss ?? NaN, m.mse];
      return [
        m.mse,
        m.rmse,
        m.mae,
        ...(m.psnr !== undefined ? [fmtDb(m.psnr), fmtDb(m.meanPsnr)] : []),
      ];
    },
    notes: (r) => [
      `\n${r.model}: FLOPs per sample ${formatNumber(r.flops.base.flops + r.flops.quadratic.flops)}`,
    ],
  },
};

/** `quadranet eval` (metrics and latency) and `quadranet bench` (latency side by side). */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'accuracy, per-class accuracy, confusion matrix (or MSE, RMSE, MAE and PSNR on regression / image targets) and latency (p50/p95) of one or several models',
    )
    .argument('<models...>', 'model files or arch:NAME')
    .requiredOption('--data <spec>', 'data spec (the test split is used)')
    .option('--limit <n>', 'use only the first N test examples', positiveInt)
    .option('--batch-sizes <list>', 'latency batch sizes', parseBatchSizes, [1, 32])
    .option('--runs <n>', 'timed runs per batch size', positiveInt, 30)
    .option('--threads <n>', 'onnxruntime threads', positiveInt, 2)
    .addOption(epOption())
    .option('--plain', 'plain progress lines even on a terminal')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        models: string[],
        o: {
          data: string;
          limit?: number;
          batchSizes: number[];
          runs: number;
          threads: number;
          ep?: ExecutionProvider;
          plain?: boolean;
          json?: boolean;
        },
      ) => {
        const phases = phaseReporter({ label: 'eval', plain: o.plain, quiet: o.json });
        const onPhase = (p: PhaseProgress) => phases.update(p);
        const sources = await Promise.all(models.map((m) => loadModelSource(m, modelLimits(o))));
        // Models with an open input size run at the data's resolution.
        const open = sources.some((s) =>
          s.graph.inputs[0]?.shape.slice(1).some((d) => typeof d === 'string'),
        );
        for (const s of sources)
          s.graph = await sizeToData(s.graph, o.data, { seed: 0, modelName: s.name });
        const shapes = sources.map((s) => imageInputShape(s.graph, s.name));
        const shape = shapes[0]!;
        for (const [i, s] of shapes.entries()) {
          if (s.join() !== shape.join())
            throw new UserError(
              `${models[i]}: input [${s}] differs from ${models[0]}'s [${shape}]; compare models with the same input`,
            );
        }
        const ds = await inPhase(onPhase, `loading '${o.data}'`, () =>
          loadDataset(o.data, { split: 'test', limit: o.limit, shape: dataShapeFor(shape) }),
        );
        if (ds.shape.reduce((a, b) => a * b, 1) !== shape.reduce((a, b) => a * b, 1)) {
          throw new UserError(
            `${models[0]}: the model takes [${shape.join(',')}] but '${o.data}' gives [${ds.shape.join(',')}]`,
          );
        }
        const test = fitToModel(ds, shape);
        for (const s of sources)
          checkClassifierOutput(s.graph, test, { model: s.name, data: o.data });
        if (taskOf(test) === 'classification' && test.n < SMALL_SPLIT.test) {
          const [lo, hi] = accuracyInterval(1, test.n);
          console.error(
            `quadranet: warning: only ${test.n} test examples: even ${test.n} of ${test.n} right leaves the accuracy anywhere in ${(lo * 100).toFixed(0)}–${(hi * 100).toFixed(0)}% (95% interval); differences between models this small say little`,
          );
        }
        const metrics: TaskMetrics[] = [];
        for (const s of sources)
          metrics.push(
            await taskMetrics(
              s.graph,
              test,
              { model: s.name, data: o.data },
              { threads: o.threads, ep: o.ep },
              { onPhase, phase: `evaluating ${s.name}` },
            ),
          );
        const latency = await measureLatency(
          sources.map((s) => s.graph),
          shape,
          {
            batchSizes: o.batchSizes,
            runs: o.runs,
            session: { threads: o.threads, ep: o.ep },
            onPhase,
          },
        );
        phases.stop();
        const rows: EvalRow[] = sources.map((s, i) => ({
          model: s.name,
          metrics: metrics[i]!,
          latency: latency[i]!,
          flops: accountLayers(s.graph).totals,
        }));
        const view = TASK_VIEW[taskOf(test)];
        if (o.json) {
          const results = rows.map(view.json);
          console.log(
            JSON.stringify({ data: o.data, n: test.n, inputShape: shape, results }, null, 2),
          );
          return;
        }
        const at = open ? ` at the data's size, input [${shape.join(',')}]` : '';
        console.log(`${o.data}: ${test.n} test examples${at}\n`);
        const ref = rows[0]!;
        console.log(
          table(
            [
              'model',
              ...view.columns(test),
              ...o.batchSizes.flatMap((b) => [`p50 ms (b${b})`, `p95 ms (b${b})`]),
              'vs first (b1 p50)',
            ],
            rows.map((r) => [
              r.model,
              ...view.cells(r),
              ...r.latency.flatMap((l) => [l.p50Ms, l.p95Ms]),
              `${(r.latency[0]!.p50Ms / ref.latency[0]!.p50Ms).toFixed(2)}×`,
            ]),
          ),
        );
        for (const r of rows) for (const line of view.notes(r, test)) console.log(line);
      },
    );

  program
    .command('bench')
    .description(
      'inference latency of models side by side (alternating runs), with parameter and FLOP overhead',
    )
    .argument('<models...>', 'model files or arch:NAME; ratios are against the first')
    .option('--batch-sizes <list>', 'batch sizes', parseBatchSizes, [1, 64])
    .option('--runs <n>', 'timed runs per batch size', positiveInt, 50)
    .option('--threads <n>', 'onnxruntime threads', positiveInt, 2)
    .addOption(epOption())
    .option(
      '--input-shape <dims>',
      'resolution for models with an open input size: dims after the batch (e.g. 3x512x512; default: open dims 224)',
      inputShape,
    )
    .option('--plain', 'plain progress lines even on a terminal')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        models: string[],
        o: {
          batchSizes: number[];
          runs: number;
          threads: number;
          ep?: ExecutionProvider;
          plain?: boolean;
          json?: boolean;
          inputShape?: number[];
        },
      ) => {
        const sources = await Promise.all(models.map((m) => loadModelSource(m, modelLimits(o))));
        // Open input sizes are timed and costed at one resolution, the same for every model.
        const size = costInputSize(sources[0]!.graph, o.inputShape);
        for (const s of sources)
          if (size.source !== 'model') s.graph = withInputShape(s.graph, size.dims, s.name);
        const shape = imageInputShape(sources[0]!.graph, models[0]!);
        const phases = phaseReporter({ label: 'bench', plain: o.plain, quiet: o.json });
        const lat = await measureLatency(
          sources.map((s) => s.graph),
          shape,
          {
            batchSizes: o.batchSizes,
            runs: o.runs,
            session: { threads: o.threads, ep: o.ep },
            onPhase: (p) => phases.update(p),
          },
        );
        phases.stop();
        const acc = sources.map((s) => accountLayers(s.graph).totals);
        const params = sources.map((s) =>
          [...s.graph.initializers.values()]
            .filter((t) => t.dtype === 'float32')
            .reduce((a, t) => a + t.data.length, 0),
        );
        const results = sources.map((s, i) => ({
          model: s.name,
          params: params[i]!,
          flops: acc[i]!.base.flops + acc[i]!.quadratic.flops,
          latency: lat[i]!,
          ratio: lat[i]!.map((l, k) => l.p50Ms / lat[0]![k]!.p50Ms),
        }));
        if (o.json) {
          console.log(
            JSON.stringify(
              { threads: o.threads, inputShape: size.dims, inputShapeSource: size.source, results },
              null,
              2,
            ),
          );
          return;
        }
        console.log(`${describeInputSize(size)}, ${o.threads} threads\n`);
        console.log(
          table(
            [
              'model',
              'params',
              'FLOPs/sample',
              ...o.batchSizes.flatMap((b) => [`p50 ms b${b}`, `ratio b${b}`]),
            ],
            results.map((r) => [
              r.model,
              r.params,
              r.flops,
              ...r.latency.flatMap((l, k) => [l.p50Ms, `${r.ratio[k]!.toFixed(2)}×`]),
            ]),
          ),
        );
      },
    );
}
