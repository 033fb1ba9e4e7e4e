import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport } from '../report/index.js';
import type { ReportSummary } from '../report/index.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type { FitProgress } from '../runtime/fit.js';
import { quadratize } from '../passes/quadratize.js';
import { Trainer } from '../runtime/trainer.js';
import { quadParamNames } from '../passes/quadratic-spec.js';
import { Rng } from '../util/random.js';
import { loadModelSource } from './model-source.js';
import type { RunResult } from './run.js';
import type { PhaseProgress } from './evaluate.js';
import { runMethod } from './run.js';

/** The embedded default: a small first-order CNN pretrained on MNIST (see README for the command). */
export function defaultModelPath(): string {
  for (const rel of ['../../models/mnist-cnn.onnx', '../../../models/mnist-cnn.onnx']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('the embedded model models/mnist-cnn.onnx is missing from the installation');
}

/** Settings of the demo. */
export interface DemoOptions {
  /** Output directory (default `demo-run`). */
  outDir?: string;
  /** The distribution shift the pretrained model is adapted to (default rotate, strength 0.7). */
  data?: string;
  /** Training examples per run (default 6000) and epochs (default 2). */
  limit?: number;
  epochs?: number;
  /** Test examples (default 5000). */
  testLimit?: number;
  seed?: number;
  threads?: number;
  /** Messages for the user (progress, estimate). */
  log?: (line: string) => void;
  onProgress?: (label: string, p: FitProgress) => void;
  /** Called through each run's phases around training (loading, evaluation, latency). */
  onPhase?: (label: string, p: PhaseProgress) => void;
  signal?: AbortSignal;
}

/** The runs of the demo: QuadraNet V2 against the alternatives a user would consider. */
const DEMO_RUNS: { method: RunMethod; label: string; epochsFactor: number; lr?: number }[] = [
  { method: 'quadratic-adapt', label: 'quadratic adaptation r=4', epochsFactor: 1 },
  { method: 'linear-adapter', label: 'linear adapter (same budget)', epochsFactor: 1 },
  { method: 'fine-tune', label: 'full fine-tuning', epochsFactor: 1 },
  { method: 'head-only', label: 'head-only fine-tuning', epochsFactor: 1 },
  {
    method: 'scratch-quadratic',
    label: 'quadratic from scratch (short)',
    epochsFactor: 2,
    lr: 2e-3,
  },
  { method: 'scratch', label: 'first-order from scratch (short)', epochsFactor: 2, lr: 2e-3 },
];

/** What the demo produced. */
export interface DemoResult {
  runs: RunResult[];
  report: ReportSummary;
  reportFile: string;
  seconds: number;
}

/**
 * The whole workflow on the embedded default: take stock of the pretrained CNN, adapt it to a
 * shifted MNIST with QuadraNet V2, compare with the alternatives, and write the report.
 */
export async function runDemo(o: DemoOptions = {}): Promise<DemoResult> {
  const log = o.log ?? (() => {});
  const outDir = o.outDir ?? 'demo-run';
  const data = o.data ?? 'mnist:shift=rotate,strength=0.7';
  const limit = o.limit ?? 6000;
  const epochs = o.epochs ?? 2;
  const seed = o.seed ?? 0;
  const threads = o.threads ?? 2;
  const t0 = performance.now();
  const base = await loadModelSource(defaultModelPath());
  log(`model: the embedded MNIST CNN (${base.graph.initializers.size} tensors); data: ${data}`);

  // Say how long it will take: time a few quadratic train steps and extrapolate.
  const probe = quadratize(base.graph, { seed }).graph;
  const trainer = await Trainer.create(probe, {
    batchSize: 64,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw' },
    groups: [{ name: 'q', params: quadParamNames(probe), lr: 1e-3 }],
    session: { threads },
  });
  const rng = new Rng(1);
  const batch = {
    x: rng.uniformArray(64 * 784, 0, 1),
    y: Int32Array.from({ length: 64 }, () => rng.int(10)),
    size: 64,
  };
  await trainer.trainStep(batch);
  const p0 = performance.now();
  for (let i = 0; i < 5; i++) await trainer.trainStep(batch);
  const stepMs = (performance.now() - p0) / 5;
  await trainer.release();
  const stepsPerRun = Math.floor((limit * 0.9) / 64) * epochs;
  const totalSteps = DEMO_RUNS.reduce((s, r) => s + stepsPerRun * r.epochsFactor, 0);
  // Loading, evaluation and latency measurements add roughly 8 s per run.
  const estimate = (totalSteps * stepMs) / 1000 + DEMO_RUNS.length * 8;
  log(
    `${DEMO_RUNS.length} runs, ${totalSteps} training steps; this will take about ${Math.ceil(estimate / 60)} minute(s) here`,
  );

  const runs: RunResult[] = [];
  for (const r of DEMO_RUNS) {
    if (o.signal?.aborted) break;
    log(`— ${r.label}`);
    const res = await runMethod({
      method: r.method,
      base,
      data,
      outDir: join(outDir, r.method),
      epochs: epochs * r.epochsFactor,
      batchSize: 64,
      lr: r.lr ?? 1e-3,
      quadLr: 3e-3,
      optimizer: 'adamw',
      quad: { rank: 4, seed },
      train: 'adapter',
      limit,
      testLimit: o.testLimit ?? 5000,
      seed,
      threads,
      label: r.label,
      command: `quadranet demo (${r.method})`,
      signal: o.signal,
      onProgress: (p) => o.onProgress?.(r.label, p),
      onPhase: (p) => o.onPhase?.(r.label, p),
      latency: { batchSizes: [1, 32], runs: 20 },
    });
    runs.push(res);
    if (res.eval)
      log(
        `  test accuracy ${(res.eval.accuracy * 100).toFixed(2)}% (original model ${((res.eval.base?.accuracy ?? 0) * 100).toFixed(2)}%), ${res.fit.cpuSeconds.toFixed(1)} CPU-s`,
      );
  }
  const reportFile = join(outDir, 'report.html');
  const report = await writeReport(
    runs.map((r) => join(outDir, r.info.method)),
    reportFile,
    { title: `Adapting the MNIST CNN to ${data}: QuadraNet V2 vs the alternatives` },
  );
  return { runs, report, reportFile, seconds: (performance.now() - t0) / 1000 };
}
