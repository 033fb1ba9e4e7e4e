/**
 * Peak memory and step time of quadratic adaptation with memory-efficient backpropagation (the
 * quadratic factors recomputed in the backward pass) on and off, bench/memeff.ts's approach on
 * the ablation's own model: each setting trains a few steps in a fresh Node process, so the
 * process's peak RSS (getrusage maxrss) is that setting's alone.
 */

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Trainer } from '../runtime/trainer.js';
import { Rng } from '../util/random.js';
import { prepareMethod } from '../workflow/methods.js';
import { imageInputShape, loadModelSource } from '../workflow/model-source.js';

/** What the child process is asked to do. */
export interface MemeffJob {
  /** Pretrained model file. */
  model: string;
  rank: number;
  batchSize: number;
  steps: number;
  memoryEfficient: boolean;
  threads: number;
}

/** What one setting measured. */
export interface MemeffMeasurement {
  /** Peak resident set size of the process, MiB. */
  peakRssMiB: number;
  /** Median train-step wall time, ms (the first step, which builds sessions, excluded). */
  stepMs: number;
}

async function child(job: MemeffJob): Promise<void> {
  const src = await loadModelSource(job.model);
  const prepared = prepareMethod('quadratic-adapt', src.graph, {
    lr: 1e-3,
    quadLr: 3e-3,
    quad: { rank: job.rank },
    seed: 0,
  });
  const t = await Trainer.create(prepared.model, {
    batchSize: job.batchSize,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw' },
    groups: prepared.groups,
    batchNorm: prepared.batchNorm,
    memoryEfficient: job.memoryEfficient,
    session: { threads: job.threads },
  });
  const shape = imageInputShape(src.graph, job.model);
  const rng = new Rng(1);
  const batch = {
    x: rng.uniformArray(job.batchSize * shape[0] * shape[1] * shape[2], 0, 1),
    y: Int32Array.from({ length: job.batchSize }, () => rng.int(10)),
    size: job.batchSize,
  };
  await t.trainStep(batch);
  const times: number[] = [];
  for (let i = 0; i < job.steps; i++) {
    const t0 = performance.now();
    await t.trainStep(batch);
    times.push(performance.now() - t0);
  }
  await t.release();
  times.sort((a, b) => a - b);
  const out: MemeffMeasurement = {
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    stepMs: times[Math.floor(times.length / 2)]!,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

/** Runs one setting in a fresh process (node --import tsx this file). */
export function measureMemeffSetting(job: MemeffJob): MemeffMeasurement {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', self, '--memeff-child', JSON.stringify(job)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    throw new Error(`memory-efficient measurement failed: ${r.stderr.trim().split('\n').pop()}`);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as MemeffMeasurement;
}

if (process.argv[2] === '--memeff-child' && process.argv[1] === fileURLToPath(import.meta.url)) {
  await child(JSON.parse(process.argv[3]!) as MemeffJob);
}
