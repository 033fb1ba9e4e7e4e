/**
 * Synthetic run directories of a plausible MNIST-shift study (quadratic adaptation over three
 * seeds, a linear adapter, fine-tuning, both from-scratch baselines), for the report's screenshot
 * in the docs and for the report layout test.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  EvalSummary,
  HistoryRecord,
  LatencySummary,
  RunInfo,
  RunMethod,
} from '../src/io/formats/run-format.js';

const DATA = 'mnist:shift=contrast';
const EPOCH = 54000;

/** Deterministic noise in [−1, 1]. */
function noise(seed: number, i: number): number {
  const x = Math.sin(seed * 12.9898 + i * 78.233) * 43758.5453;
  return (x - Math.floor(x)) * 2 - 1;
}

interface Spec {
  method: RunMethod;
  label: string;
  seed: number;
  epochs: number;
  /** CPU-seconds per epoch. */
  epochCpu: number;
  /** Accuracy curve: start, plateau, rate. */
  start: number;
  plateau: number;
  rate: number;
  test: number;
  params: RunInfo['params'];
  flops: RunInfo['flops'];
  p50: number;
  fromPretrained: boolean;
}

const LENET = { total: 61706, trainable: 61706, base: 61706 };
const QUAD_PARAMS = { total: 64818, trainable: 3112, base: 61706 };
const LIN_PARAMS = { total: 64818, trainable: 3112, base: 61706 };
const BASE_FLOPS = 846_000;

const SPECS: Spec[] = [
  ...[1, 2, 3].map((seed): Spec => ({
    method: 'quadratic-adapt',
    label: 'quadratic r=4',
    seed,
    epochs: 4,
    epochCpu: 41 + seed,
    start: 0.951,
    plateau: 0.9735 - seed * 0.0012,
    rate: 1.1,
    test: 0.9712 - (seed - 2) * 0.0021,
    params: QUAD_PARAMS,
    flops: { model: 1_002_000, base: BASE_FLOPS },
    p50: 0.118,
    fromPretrained: true,
  })),
  {
    method: 'linear-adapter',
    label: 'linear adapter r=8',
    seed: 1,
    epochs: 4,
    epochCpu: 36,
    start: 0.941,
    plateau: 0.9585,
    rate: 1.0,
    test: 0.9571,
    params: LIN_PARAMS,
    flops: { model: 910_000, base: BASE_FLOPS },
    p50: 0.104,
    fromPretrained: true,
  },
  {
    method: 'fine-tune',
    label: 'fine-tune',
    seed: 1,
    epochs: 4,
    epochCpu: 44,
    start: 0.946,
    plateau: 0.9655,
    rate: 0.9,
    test: 0.9638,
    params: LENET,
    flops: { model: BASE_FLOPS, base: BASE_FLOPS },
    p50: 0.1,
    fromPretrained: true,
  },
  {
    method: 'scratch-quadratic',
    label: 'quadratic from scratch',
    seed: 1,
    epochs: 15,
    epochCpu: 58,
    start: 0.62,
    plateau: 0.9712,
    rate: 0.33,
    test: 0.9684,
    params: { total: 64818, trainable: 64818, base: 61706 },
    flops: { model: 1_002_000, base: BASE_FLOPS },
    p50: 0.118,
    fromPretrained: false,
  },
  {
    method: 'scratch',
    label: 'first-order from scratch',
    seed: 1,
    epochs: 15,
    epochCpu: 47,
    start: 0.65,
    plateau: 0.9627,
    rate: 0.35,
    test: 0.9602,
    params: LENET,
    flops: { model: BASE_FLOPS, base: BASE_FLOPS },
    p50: 0.1,
    fromPretrained: false,
  },
];

/** Writes the example runs under `root` and returns their directories. */
export async function writeExampleRuns(root: string): Promise<string[]> {
  const dirs: string[] = [];
  const baseLatency: LatencySummary[] = [
    { batchSize: 1, p50Ms: 0.1, p95Ms: 0.131, perSampleMs: 0.1 },
    { batchSize: 64, p50Ms: 2.9, p95Ms: 3.4, perSampleMs: 2.9 / 64 },
  ];
  for (const [i, s] of SPECS.entries()) {
    const dir = join(root, `${String(i + 1).padStart(2, '0')}-${s.method}-s${s.seed}`);
    await mkdir(dir, { recursive: true });
    const info: RunInfo = {
      format: 1,
      method: s.method,
      label: s.label,
      model: s.fromPretrained ? 'models/lenet5-mnist.onnx' : 'lenet5 (random init)',
      data: DATA,
      seed: s.seed,
      command: `quadranet ${s.method === 'quadratic-adapt' ? 'adapt' : 'train'} ... --seed ${s.seed}`,
      params: s.params,
      flops: s.flops,
      started: '2025-03-01T10:00:00.000Z',
      finished: '2025-03-01T10:20:00.000Z',
      status: 'done',
      env: {
        quadranet: '0.1.0',
        onnxruntime: '1.30.0',
        node: 'v20.19.0',
        cpu: 'Intel Xeon (2 vCPU)',
        threads: 2,
      },
    };
    const hist: HistoryRecord[] = [];
    for (let e = 1; e <= s.epochs; e++) {
      const clean = s.plateau - (s.plateau - s.start) * Math.exp(-s.rate * (e - 1));
      const val = Math.min(0.999, clean + noise(s.seed * 7 + i, e) * 0.0012);
      const cpu = s.epochCpu * e * (1 + noise(i, e) * 0.01);
      hist.push({
        step: e * Math.ceil(EPOCH / 64),
        epoch: e,
        loss: 0.05 + (1 - clean) * 2,
        trainAccuracy: Math.min(0.999, val + 0.006),
        valAccuracy: Number(val.toFixed(4)),
        valLoss: 0.06 + (1 - clean) * 2,
        wallSeconds: cpu / 1.8,
        cpuSeconds: Number(cpu.toFixed(2)),
        samples: e * EPOCH,
        samplesPerSecond: (EPOCH * 1.8) / s.epochCpu,
        lr: 0.01,
      });
    }
    const ratio = s.p50 / 0.1;
    const ev: EvalSummary = {
      n: 10000,
      accuracy: s.test,
      loss: 0.1,
      perClassAccuracy: [],
      confusion: [],
      latency: [],
    };
    // Paired timings as measureLatency records them: machine noise shared by each pair, a little
    // jitter of its own.
    const base: LatencySummary[] = [];
    for (const [b, l] of baseLatency.entries()) {
      const baseTimes = Array.from(
        { length: 30 },
        (_, k) => l.p50Ms * (1 + 0.3 * Math.abs(noise(100 + k, i * 2 + b))),
      );
      const times = baseTimes.map((t, k) => t * ratio * (1 + 0.03 * noise(200 + k, i * 2 + b)));
      ev.latency.push({
        batchSize: l.batchSize,
        p50Ms: l.p50Ms * ratio,
        p95Ms: l.p95Ms * ratio * 1.02,
        perSampleMs: l.perSampleMs * ratio,
        timesMs: times,
      });
      base.push({ ...l, timesMs: baseTimes });
    }
    if (s.fromPretrained) ev.base = { accuracy: 0.9283, loss: 0.25, latency: base };
    await writeFile(join(dir, 'run.json'), JSON.stringify(info, null, 2) + '\n');
    await writeFile(
      join(dir, 'history.jsonl'),
      hist.map((h) => JSON.stringify(h)).join('\n') + '\n',
    );
    await writeFile(join(dir, 'eval.json'), JSON.stringify(ev, null, 2) + '\n');
    dirs.push(dir);
  }
  return dirs;
}
