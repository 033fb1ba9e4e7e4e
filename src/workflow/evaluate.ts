import type { Dataset } from '../data/dataset.js';
import type { Graph } from '../ir/graph.js';
import type { EvalSummary, LatencySummary } from '../report/run-format.js';
import type { SessionOptions } from '../runtime/session.js';
import { Session } from '../runtime/session.js';
import { evaluateSession } from '../runtime/trainer.js';
import { Rng } from '../util/random.js';

/** How latency is measured. */
export interface LatencyOptions {
  /** Batch sizes to time (default [1, 32]). */
  batchSizes?: number[];
  /** Timed runs per batch size after warm-up (default 30). */
  runs?: number;
  /** onnxruntime session settings of the timed sessions. */
  session?: SessionOptions;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * p50/p95 inference latency per batch and per sample, on random inputs of the models' shape.
 * Several models are timed alternately, run by run, so machine noise hits them alike.
 */
export async function measureLatency(
  models: readonly Graph[],
  shape: readonly number[],
  opts: LatencyOptions = {},
): Promise<LatencySummary[][]> {
  const sessions = await Promise.all(models.map((m) => Session.create(m, opts.session)));
  const rng = new Rng(0);
  const out: LatencySummary[][] = models.map(() => []);
  try {
    for (const bs of opts.batchSizes ?? [1, 32]) {
      const n = bs * shape.reduce((p, d) => p * d, 1);
      const data = rng.uniformArray(n, 0, 1);
      const feeds = models.map((m) => ({
        [m.inputs[0]!.name]: { dtype: 'float32' as const, dims: [bs, ...shape], data },
      }));
      for (let i = 0; i < 3; i++)
        for (let k = 0; k < models.length; k++) await sessions[k]!.run(feeds[k]!);
      const times: number[][] = models.map(() => []);
      for (let i = 0; i < (opts.runs ?? 30); i++) {
        for (let k = 0; k < models.length; k++) {
          const t0 = performance.now();
          await sessions[k]!.run(feeds[k]!);
          times[k]!.push(performance.now() - t0);
        }
      }
      times.forEach((t, k) => {
        t.sort((a, b) => a - b);
        const p50 = percentile(t, 0.5);
        out[k]!.push({
          batchSize: bs,
          p50Ms: p50,
          p95Ms: percentile(t, 0.95),
          perSampleMs: p50 / bs,
        });
      });
    }
  } finally {
    for (const s of sessions) await s.release();
  }
  return out;
}

/** Accuracy, loss, per-class accuracy and confusion matrix of a classifier on a dataset. */
export async function classificationMetrics(model: Graph, ds: Dataset, session?: SessionOptions) {
  const s = await Session.create(model, session);
  try {
    const r = await evaluateSession(s, model, ds, 256);
    const k = ds.numClasses;
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    for (let i = 0; i < ds.n; i++) confusion[ds.labels[i]!]![r.predictions[i]!]!++;
    const perClassAccuracy = confusion.map((row, c) => {
      const total = row.reduce((a, b) => a + b, 0);
      return total ? row[c]! / total : 0;
    });
    return { n: ds.n, accuracy: r.accuracy, loss: r.loss, perClassAccuracy, confusion };
  } finally {
    await s.release();
  }
}

/** The full evaluation summary of a model (and optionally its base model) on a test set. */
export async function evaluateModel(
  model: Graph,
  test: Dataset,
  opts: { base?: Graph; latency?: LatencyOptions; session?: SessionOptions } = {},
): Promise<EvalSummary> {
  const m = await classificationMetrics(model, test, opts.session);
  const models = opts.base ? [model, opts.base] : [model];
  const [latency, baseLatency] = await measureLatency(models, test.shape, {
    session: opts.session,
    ...opts.latency,
  });
  const summary: EvalSummary = { ...m, latency: latency! };
  if (opts.base) {
    const b = await classificationMetrics(opts.base, test, opts.session);
    summary.base = { accuracy: b.accuracy, loss: b.loss, latency: baseLatency! };
  }
  return summary;
}
