/**
 * Peak memory of a train step with and without memory-efficient backpropagation (QuadraNet V2's
 * recomputation of the quadratic branch). Each setting runs in a fresh process so the peak RSS
 * (getrusage maxrss) is its own. Used by bench/run.ts (`memeff_peak_rss`) and runnable alone:
 *   npx tsx bench/memeff.ts [--json]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NetBuilder } from '../src/models/net-builder.js';
import { quadParamNames } from '../src/passes/quadratic-spec.js';
import { quadratize } from '../src/passes/quadratize.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';

/** A conv stack with large activations: 64×64 images, wide layers, every conv quadratic. */
function bigNet() {
  return new NetBuilder([3, 64, 64], 0, 'memnet')
    .conv('conv1', 3, 32, 3)
    .relu()
    .conv('conv2', 32, 32, 3)
    .relu()
    .conv('conv3', 32, 32, 5, { dilation: 2 })
    .relu()
    .conv('conv4', 32, 32, 3)
    .relu()
    .globalAvgPool()
    .flatten()
    .linear('head', 32, 10)
    .finish(10);
}

export interface MemeffResult {
  /** Peak RSS in MiB with recomputation, and without. */
  withMiB: number;
  withoutMiB: number;
  ratio: number;
  /** Median step time in ms with and without. */
  withMs: number;
  withoutMs: number;
}

async function child(memoryEfficient: boolean): Promise<void> {
  const g = quadratize(bigNet(), {
    rank: Number(process.env['MEMEFF_RANK'] ?? 8),
    phi: 'rbf',
  }).graph;
  const batchSize = 64;
  const t = await Trainer.create(g, {
    batchSize,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'sgd', momentum: 0.9 },
    groups: [{ name: 'quad', params: quadParamNames(g), lr: 0.01 }],
    memoryEfficient,
    // MEMEFF_PATTERN=1: with onnxruntime's memory-pattern planner (off by default in training).
    session: { threads: 2, memoryPattern: process.env['MEMEFF_PATTERN'] === '1' },
  });
  const rng = new Rng(1);
  const batch = {
    x: rng.uniformArray(batchSize * 3 * 64 * 64, 0, 1),
    y: Int32Array.from({ length: batchSize }, () => rng.int(10)),
    size: batchSize,
  };
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await t.trainStep(batch);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  process.stdout.write(
    JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, ms: times[2] }) + '\n',
  );
}

/** Peak RSS (KiB) and median step time of one setting, in a fresh process. */
export function measureStep(memoryEfficient: boolean): { maxRssKiB: number; ms: number } {
  const self = fileURLToPath(import.meta.url);
  const flag = memoryEfficient ? '--child-memeff' : '--child-plain';
  const r = spawnSync(process.execPath, ['--import', 'tsx', self, flag], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`memeff child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { maxRssKiB: number; ms: number };
}

/** Runs both settings in fresh processes and compares. */
export function measureMemeff(): MemeffResult {
  const without = measureStep(false);
  const withR = measureStep(true);
  return {
    withMiB: withR.maxRssKiB / 1024,
    withoutMiB: without.maxRssKiB / 1024,
    ratio: withR.maxRssKiB / without.maxRssKiB,
    withMs: withR.ms,
    withoutMs: without.ms,
  };
}

const arg = process.argv[2];
if (arg === '--child-plain' || arg === '--child-memeff') {
  await child(arg === '--child-memeff');
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = measureMemeff();
  console.log(
    process.argv.includes('--json')
      ? JSON.stringify(r)
      : `peak RSS with recomputation ${r.withMiB.toFixed(0)} MiB, without ${r.withoutMiB.toFixed(0)} MiB (ratio ${r.ratio.toFixed(2)}); step ${r.withMs.toFixed(0)} vs ${r.withoutMs.toFixed(0)} ms`,
  );
}
