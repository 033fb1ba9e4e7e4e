/**
 * How the train-step cost grows: time per step of the benchmark CNN (quadranet) vs batch size,
 * width and thread count. Writes bench/results/scaling.json and scaling.md.
 *   npx tsx bench/scaling.ts [--quick]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchCnn } from './nets.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { learnableParams } from '../src/workflow/params.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });

async function stepMs(width: number, batchSize: number, threads: number): Promise<number> {
  const g = benchCnn(width);
  const t = await Trainer.create(g, {
    batchSize,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'sgd', momentum: 0.9 },
    groups: [{ name: 'all', params: learnableParams(g), lr: 0.01 }],
    session: { threads },
  });
  const rng = new Rng(0);
  const batch = {
    x: rng.uniformArray(batchSize * 3 * 32 * 32, 0, 1),
    y: Int32Array.from({ length: batchSize }, () => rng.int(10)),
    size: batchSize,
  };
  await t.trainStep(batch);
  const times: number[] = [];
  for (let i = 0; i < (args.quick ? 3 : 5); i++) {
    const t0 = performance.now();
    await t.trainStep(batch);
    times.push(performance.now() - t0);
  }
  await t.release();
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

const rows: {
  sweep: string;
  width: number;
  batch: number;
  threads: number;
  ms: number;
  msPerSample: number;
}[] = [];
const add = async (sweep: string, width: number, batch: number, threads: number) => {
  const ms = await stepMs(width, batch, threads);
  rows.push({ sweep, width, batch, threads, ms, msPerSample: ms / batch });
  console.log(
    `${sweep.padEnd(7)} width ${width} batch ${String(batch).padStart(3)} threads ${threads}: ${ms.toFixed(1)} ms/step, ${(ms / batch).toFixed(3)} ms/sample`,
  );
};
for (const b of args.quick ? [1, 16, 64] : [1, 8, 32, 64, 128, 256]) await add('batch', 1, b, 2);
for (const w of [0.5, 1, 2]) await add('width', w, 64, 2);
for (const th of [1, 2]) await add('threads', 1, 64, th);

const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
writeFileSync(`${dir}scaling.json`, JSON.stringify({ rows }, null, 2) + '\n');
writeFileSync(
  `${dir}scaling.md`,
  [
    '| sweep | width | batch | threads | ms/step | ms/sample |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.sweep} | ${r.width} | ${r.batch} | ${r.threads} | ${r.ms.toFixed(1)} | ${r.msPerSample.toFixed(3)} |`,
    ),
  ].join('\n') + '\n',
);
