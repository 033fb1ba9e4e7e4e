/**
 * Soak test: 10,000 training steps of a tiny MLP (batch 8, 8×8 inputs) through `fit`, with
 * history, epoch-end checkpoints and a checkpoint every 1,000 steps, as a long run does. Every
 * 1,000 steps it records RSS, the JS heap and ArrayBuffer memory, and the mean, median and CPU
 * step time of the block. It asserts that memory does not grow (RSS at the end within 10% + 20 MiB
 * of RSS at step 2,000) and that steps do not slow down (the last block's median step time within
 * 1.5× of the second block's).
 * Prints a table and writes bench/results/soak.json.
 *
 *   npx tsx bench/soak.ts [--steps N] [--json FILE]
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createDataset } from '../src/data/dataset.js';
import { mlp } from '../src/models/zoo.js';
import { fit } from '../src/runtime/fit.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { VERSION } from '../src/version.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '10000' },
    json: { type: 'string' },
  },
});
const STEPS = Number(args.steps);
const BLOCK = 1000;
const BATCH = 8;
const MIB = 2 ** 20;
if (!Number.isInteger(STEPS) || STEPS < 3 * BLOCK || STEPS % BLOCK !== 0) {
  throw new Error(`--steps ${args.steps} must be a multiple of ${BLOCK}, at least ${3 * BLOCK}`);
}
const out = args.json ?? fileURLToPath(new URL('./results/soak.json', import.meta.url));

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// 800 synthetic 8×8 images of 10 classes: the class sets a bright row, plus noise.
const rng = new Rng(1);
const n = 800;
const images = new Float32Array(n * 64);
const labels = new Int32Array(n);
for (let i = 0; i < n; i++) {
  const y = i % 10;
  labels[i] = y;
  for (let p = 0; p < 64; p++) {
    images[i * 64 + p] = (Math.floor(p / 8) === y % 8 ? 0.8 : 0.1) + 0.2 * rng.next();
  }
}
const train = createDataset({ name: 'soak', images, labels, shape: [1, 8, 8], numClasses: 10 });
const stepsPerEpoch = n / BATCH;

const model = mlp({ inputShape: [1, 8, 8], classes: 10, width: 0.25, seed: 1 });
const trainer = await Trainer.create(model, {
  batchSize: BATCH,
  loss: { kind: 'cross_entropy' },
  optimizer: { kind: 'adamw' },
  groups: [{ name: 'all', params: [...model.initializers.keys()], lr: 1e-3, weightDecay: 1e-4 }],
  session: { threads: 1 },
});

interface Block {
  step: number;
  /** Mean wall time of the block's steps, including fit's bookkeeping and checkpoints, in ms. */
  msPerStep: number;
  /** Median wall time of one step of the block: the step itself, without the I/O outliers. */
  medianMs: number;
  /** Process CPU time (all threads) per step of the block, in ms. */
  cpuMsPerStep: number;
  rssMiB: number;
  heapUsedMiB: number;
  arrayBuffersMiB: number;
}
const blocks: Block[] = [];
const runDir = mkdtempSync(join(os.tmpdir(), 'quadranet-soak-'));
let t0 = performance.now();
const started = t0;
let cpu0 = process.cpuUsage();
let last = t0;
const stepMs = new Float64Array(BLOCK);
const median = (xs: Float64Array): number => {
  const sorted = Float64Array.from(xs).sort();
  return (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
};
try {
  const result = await fit(trainer, {
    train,
    epochs: Math.ceil(STEPS / stepsPerEpoch),
    seed: 1,
    maxSteps: STEPS,
    runDir,
    checkpointEvery: BLOCK,
    onProgress: (p) => {
      if (p.kind !== 'step') return;
      const now = performance.now();
      stepMs[(p.step - 1) % BLOCK] = now - last;
      last = now;
      if (p.step % BLOCK !== 0) return;
      const cpu = process.cpuUsage(cpu0);
      const rss = process.memoryUsage.rss();
      gc();
      const mem = process.memoryUsage();
      blocks.push({
        step: p.step,
        msPerStep: (now - t0) / BLOCK,
        medianMs: median(stepMs),
        cpuMsPerStep: (cpu.user + cpu.system) / 1000 / BLOCK,
        rssMiB: rss / MIB,
        heapUsedMiB: mem.heapUsed / MIB,
        arrayBuffersMiB: mem.arrayBuffers / MIB,
      });
      const b = blocks.at(-1)!;
      console.log(
        `step ${String(p.step).padStart(6)}  ${b.msPerStep.toFixed(3)} ms/step ` +
          `(median ${b.medianMs.toFixed(3)}, CPU ${b.cpuMsPerStep.toFixed(3)})  ` +
          `RSS ${b.rssMiB.toFixed(1)} MiB  heap ${b.heapUsedMiB.toFixed(1)} MiB  ` +
          `loss ${p.loss.toFixed(4)}`,
      );
      // The measurement itself (GC included) is left out of the next block.
      t0 = last = performance.now();
      cpu0 = process.cpuUsage();
    },
  });
  if (result.status !== 'done')
    throw new Error(`the run ended ${result.status}: ${result.message}`);
} finally {
  await trainer.release();
  rmSync(runDir, { recursive: true, force: true });
}
const wallSeconds = (performance.now() - started) / 1000;

const at2000 = blocks.find((b) => b.step === 2 * BLOCK)!;
const final = blocks.at(-1)!;
const rssLimit = at2000.rssMiB * 1.1 + 20;
// Medians: the machine is shared, and an fsync or a neighbour's burst must not count as a slowdown.
const timeLimit = blocks[1]!.medianMs * 1.5;
const checks = {
  rssBounded: final.rssMiB <= rssLimit,
  stepTimeConstant: final.medianMs <= timeLimit,
};

const rows = [
  [
    'step',
    'mean ms/step',
    'median ms/step',
    'CPU ms/step',
    'RSS MiB',
    'heap MiB (after GC)',
    'ArrayBuffers MiB',
  ],
  ...blocks.map((b) => [
    String(b.step),
    b.msPerStep.toFixed(3),
    b.medianMs.toFixed(3),
    b.cpuMsPerStep.toFixed(3),
    b.rssMiB.toFixed(1),
    b.heapUsedMiB.toFixed(1),
    b.arrayBuffersMiB.toFixed(2),
  ]),
];
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`\n${rows.map((r) => r.map((v, c) => v.padStart(widths[c]!)).join('  ')).join('\n')}`);
console.log(
  `\n${STEPS} steps in ${wallSeconds.toFixed(1)} s. RSS at the end ${final.rssMiB.toFixed(1)} MiB ` +
    `(limit ${rssLimit.toFixed(1)} = 1.1 × ${at2000.rssMiB.toFixed(1)} at step ${at2000.step} + 20): ` +
    `${checks.rssBounded ? 'ok' : 'FAIL'}. Last block's median step ${final.medianMs.toFixed(3)} ms ` +
    `(limit ${timeLimit.toFixed(3)} = 1.5 × the second block's): ${checks.stepTimeConstant ? 'ok' : 'FAIL'}.`,
);

mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      quadranet: VERSION,
      date: new Date().toISOString(),
      node: process.version,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cpus: os.cpus().length,
      model: 'mlp 64-32-32-10 (width 0.25), AdamW, batch 8, 8x8 inputs, threads 1',
      steps: STEPS,
      checkpointEvery: BLOCK,
      wallSeconds: Number(wallSeconds.toFixed(2)),
      blocks: blocks.map((b) => ({
        step: b.step,
        msPerStep: Number(b.msPerStep.toFixed(4)),
        medianMsPerStep: Number(b.medianMs.toFixed(4)),
        cpuMsPerStep: Number(b.cpuMsPerStep.toFixed(4)),
        rssMiB: Number(b.rssMiB.toFixed(2)),
        heapUsedMiB: Number(b.heapUsedMiB.toFixed(2)),
        arrayBuffersMiB: Number(b.arrayBuffersMiB.toFixed(3)),
      })),
      limits: {
        rssMiB: Number(rssLimit.toFixed(2)),
        medianMsPerStep: Number(timeLimit.toFixed(4)),
      },
      checks,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${out}`);
if (!checks.rssBounded || !checks.stepTimeConstant) process.exitCode = 1;
