import type { Command } from 'commander';
import { loadDataset } from '../../data/spec.js';
import { accountLayers } from '../../passes/accounting.js';
import { classificationMetrics, measureLatency } from '../../workflow/evaluate.js';
import { imageInputShape, loadModelSource } from '../../workflow/model-source.js';
import { dataShapeFor, fitToModel } from '../../workflow/run.js';
import { UserError } from '../errors.js';
import { positiveInt } from '../options.js';
import { formatNumber, table } from '../table.js';

function parseBatchSizes(v: string): number[] {
  const list = v.split(',').map((x) => Number(x));
  if (list.some((n) => !Number.isInteger(n) || n <= 0))
    throw new UserError(`--batch-sizes: expected e.g. 1,32, got '${v}'`);
  return list;
}

/** `quadranet eval` (metrics and latency) and `quadranet bench` (latency side by side). */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'accuracy, per-class accuracy, confusion matrix and latency (p50/p95) of one or several models',
    )
    .argument('<models...>', 'model files or arch:NAME')
    .requiredOption('--data <spec>', 'data spec (the test split is used)')
    .option('--limit <n>', 'use only the first N test examples', positiveInt)
    .option('--batch-sizes <list>', 'latency batch sizes', parseBatchSizes, [1, 32])
    .option('--runs <n>', 'timed runs per batch size', positiveInt, 30)
    .option('--threads <n>', 'onnxruntime threads', positiveInt, 2)
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
          json?: boolean;
        },
      ) => {
        const sources = await Promise.all(models.map((m) => loadModelSource(m)));
        const shapes = sources.map((s) => imageInputShape(s.graph, s.name));
        const shape = shapes[0]!;
        for (const [i, s] of shapes.entries()) {
          if (s.join() !== shape.join())
            throw new UserError(
              `${models[i]}: input [${s}] differs from ${models[0]}'s [${shape}]; compare models with the same input`,
            );
        }
        const ds = await loadDataset(o.data, {
          split: 'test',
          limit: o.limit,
          shape: dataShapeFor(shape),
        });
        if (ds.shape.reduce((a, b) => a * b, 1) !== shape.reduce((a, b) => a * b, 1)) {
          throw new UserError(
            `${models[0]}: the model takes [${shape.join(',')}] but '${o.data}' gives [${ds.shape.join(',')}]`,
          );
        }
        const test = fitToModel(ds, shape);
        const metrics: Awaited<ReturnType<typeof classificationMetrics>>[] = [];
        for (const s of sources)
          metrics.push(await classificationMetrics(s.graph, test, { threads: o.threads }));
        const latency = await measureLatency(
          sources.map((s) => s.graph),
          shape,
          { batchSizes: o.batchSizes, runs: o.runs, session: { threads: o.threads } },
        );
        const results = sources.map((s, i) => ({
          model: s.name,
          ...metrics[i]!,
          latency: latency[i]!,
          flops: accountLayers(s.graph).totals,
        }));
        if (o.json) {
          console.log(JSON.stringify({ data: o.data, n: test.n, results }, null, 2));
          return;
        }
        console.log(`${o.data}: ${test.n} test examples\n`);
        const ref = results[0]!;
        console.log(
          table(
            [
              'model',
              'accuracy',
              'loss',
              ...o.batchSizes.flatMap((b) => [`p50 ms (b${b})`, `p95 ms (b${b})`]),
              'vs first (b1 p50)',
            ],
            results.map((r) => [
              r.model,
              `${(r.accuracy * 100).toFixed(2)}%`,
              r.loss,
              ...r.latency.flatMap((l) => [l.p50Ms, l.p95Ms]),
              `${(r.latency[0]!.p50Ms / ref.latency[0]!.p50Ms).toFixed(2)}×`,
            ]),
          ),
        );
        for (const r of results) {
          console.log(
            `\n${r.model}: per-class accuracy ${r.perClassAccuracy.map((a, c) => `${test.classNames?.[c] ?? c}:${(a * 100).toFixed(1)}`).join(' ')}`,
          );
          console.log(
            `FLOPs per sample ${formatNumber(r.flops.base.flops + r.flops.quadratic.flops)}; confusion (rows true, cols predicted):`,
          );
          console.log(
            r.confusion.map((row) => row.map((v) => String(v).padStart(5)).join('')).join('\n'),
          );
        }
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
    .option('--json', 'print the result as JSON')
    .action(
      async (
        models: string[],
        o: { batchSizes: number[]; runs: number; threads: number; json?: boolean },
      ) => {
        const sources = await Promise.all(models.map((m) => loadModelSource(m)));
        const shape = imageInputShape(sources[0]!.graph, models[0]!);
        const lat = await measureLatency(
          sources.map((s) => s.graph),
          shape,
          { batchSizes: o.batchSizes, runs: o.runs, session: { threads: o.threads } },
        );
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
          console.log(JSON.stringify({ threads: o.threads, results }, null, 2));
          return;
        }
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
