/**
 * Profiles one train step with onnxruntime's profiler and prints where the time goes, by op type
 * and by node (the breakdown quoted in bench/PROFILE.md).
 *
 *   npx tsx bench/profile.ts [--case cnn_train|mnist_cnn_train] [--threads N] [--steps N]
 *                            [--strategy NAME] [--baseline] [--optimization LEVEL]
 *                            [--stat median|min] [--quiet] [--top N] [--json FILE]
 *
 * `--baseline` emits the gradient forms used before bench/PROFILE.md's changes (weight gradients
 * by the 'conv' strategy, stride-1 input gradients by ConvTranspose, MaxPool by argmax + scatter),
 * for the "before" table; `--strategy` then still overrides the weight-gradient strategy.
 *
 * The train step is the one the Trainer builds (buildTrainGraph, SGD momentum 0.9, cross-entropy,
 * batch 64), run with the same session options as bench/run.ts. Warm-up steps are dropped: only
 * the kernels of the `--steps` measured runs are aggregated. Node names are those onnxruntime reports
 * after its graph optimisations (fused nodes keep the name of their first node).
 *
 * On a machine shared with other work (Linux), `--quiet` waits before each step until the CPUs
 * are idle and drops the steps during which other processes used more than 8% of them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { GradForms } from '../src/autodiff/registry.js';
import type { Graph } from '../src/ir/graph.js';
import { benchCnn } from './nets.js';
import { cnn } from '../src/models/zoo.js';
import type { HostTensor, SessionOptions } from '../src/runtime/session.js';
import { Session } from '../src/runtime/session.js';
import { buildTrainGraph } from '../src/runtime/train-graph.js';
import { Rng } from '../src/util/random.js';

const { values: args } = parseArgs({
  options: {
    case: { type: 'string', default: 'cnn_train' },
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    strategy: { type: 'string' },
    baseline: { type: 'boolean', default: false },
    optimization: { type: 'string' },
    top: { type: 'string', default: '15' },
    stat: { type: 'string', default: 'median' },
    quiet: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});

const CASES: Record<string, { model: () => Graph; shape: number[] }> = {
  cnn_train: { model: benchCnn, shape: [3, 32, 32] },
  mnist_cnn_train: { model: () => cnn(), shape: [1, 28, 28] },
};

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  ts: number;
  args?: { op_name?: string };
}

/** Busy and total jiffies of the machine, and this process's own (Linux /proc). */
function cpuTicks(): { busy: number; total: number; self: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9);
  const v = f.map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const own = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return { busy: total - v[3]! - v[4]!, total, self: Number(own[11]) + Number(own[12]) };
}

/** The share of all CPUs used by other processes between two `cpuTicks` readings. */
function othersShare(a: ReturnType<typeof cpuTicks>, b: ReturnType<typeof cpuTicks>): number {
  return (b.busy - a.busy - (b.self - a.self)) / Math.max(1, b.total - a.total);
}

/** Waits (at most a minute) until other processes leave the CPUs ≥ 90% idle for ~1 s. */
async function waitIdle(): Promise<void> {
  const t0 = Date.now();
  let calm = 0;
  while (calm < 3 && Date.now() - t0 < 60_000) {
    const a = cpuTicks();
    await new Promise((r) => setTimeout(r, 300));
    calm = othersShare(a, cpuTicks()) < 0.1 ? calm + 1 : 0;
  }
}

async function main(): Promise<void> {
  const c = CASES[args.case!];
  if (!c) throw new Error(`unknown case '${args.case}' (known: ${Object.keys(CASES).join(', ')})`);
  const gradForms: GradForms = args.baseline
    ? { convWeightGrad: 'conv', convInputGrad: 'convtranspose', maxPoolMask: false }
    : {};
  if (args.strategy) gradForms.convWeightGrad = args.strategy as GradForms['convWeightGrad'];
  const batch = 64;
  const steps = Number(args.steps);
  const warmup = Number(args.warmup);
  const model = c.model();
  const train = buildTrainGraph(model, {
    batchSize: batch,
    gradForms,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'sgd', momentum: 0.9 },
    groups: [{ name: 'all', params: [...model.initializers.keys()] }],
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qn-profile-'));
  const session = await Session.create(train.graph, {
    threads: Number(args.threads),
    optimization: args.optimization as SessionOptions['optimization'],
    profilePrefix: path.join(dir, 'train'),
    memoryPattern: false, // as the Trainer
  });

  const rng = new Rng(0);
  const x = new Float32Array(batch * c.shape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const feeds: Record<string, HostTensor> = {
    [train.input]: { dtype: 'float32', dims: [batch, ...c.shape], data: x },
    [train.labels]: {
      dtype: 'int64',
      dims: [batch],
      data: BigInt64Array.from({ length: batch }, () => BigInt(rng.int(10))),
    },
    [train.lrInputs.get('all')!]: { dtype: 'float32', dims: [], data: Float32Array.of(0.01) },
  };
  for (const u of train.updates) {
    feeds[u.param] = model.initializers.get(u.param)!;
    for (const s of u.state) {
      const p = model.initializers.get(u.param)!;
      feeds[s.input] = { dtype: 'float32', dims: p.dims, data: new Float32Array(p.data.length) };
    }
  }
  const wall: number[] = [];
  /** Indices (among all runs, warm-up included) of the measured runs. */
  const measured: number[] = [];
  let dropped = 0;
  for (let i = 0; measured.length < steps; i++) {
    if (i >= warmup + 5 * steps) throw new Error(`fewer than ${steps} undisturbed steps`);
    if (args.quiet && i >= warmup) await waitIdle();
    const c0 = args.quiet ? cpuTicks() : undefined;
    const t0 = performance.now();
    await session.run(feeds);
    const dt = performance.now() - t0;
    if (i < warmup) continue;
    if (c0 && othersShare(c0, cpuTicks()) > 0.08) {
      dropped++;
      continue;
    }
    wall.push(dt);
    measured.push(i);
  }
  session.endProfiling();
  await session.release();
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  if (!file) throw new Error(`no profile written in ${dir}`);
  const events = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as ProfileEvent[];
  rmSync(dir, { recursive: true, force: true });

  // Keep the kernels of the measured runs.
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const kept = measured.map((i) => runs[i]!);
  const runMs = kept.map((e) => e.dur / 1000);
  const kernels = events.filter(
    (e) =>
      e.cat === 'Node' &&
      e.name.endsWith('_kernel_time') &&
      kept.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur),
  );
  // Each node's kernel time per step: the median over the kept steps, or with `--stat min` the
  // minimum (the least disturbed run of each node, for a machine shared with other work).
  const samples = new Map<string, { op: string; us: number[] }>();
  for (const e of kernels) {
    const node = e.name.slice(0, -'_kernel_time'.length);
    const n = samples.get(node) ?? { op: e.args?.op_name ?? '?', us: [] };
    n.us.push(e.dur);
    samples.set(node, n);
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
  const stat = args.stat === 'min' ? (a: number[]) => Math.min(...a) : median;
  const byOp = new Map<string, { us: number; count: number }>();
  const byNode = new Map<string, { op: string; us: number }>();
  let total = 0;
  for (const [node, { op, us }] of samples) {
    const t = stat(us) * steps; // per-step statistic, scaled back to `steps` steps
    byNode.set(node, { op, us: t });
    const o = byOp.get(op) ?? { us: 0, count: 0 };
    o.us += t;
    o.count += steps;
    byOp.set(op, o);
    total += t;
  }
  const perStep = (us: number) => us / 1000 / steps;
  const ops = [...byOp.entries()].sort((a, b) => b[1].us - a[1].us);
  const nodes = [...byNode.entries()].sort((a, b) => b[1].us - a[1].us);
  const lines = [
    `case ${args.case}${args.baseline ? ' (baseline forms)' : ''}, ${args.threads} threads, ` +
      `${steps} steps after ${warmup} warm-up` +
      (args.quiet ? ` (${dropped} disturbed steps dropped); ` : '; ') +
      `wall median ${median(wall).toFixed(1)} (min ${Math.min(...wall).toFixed(1)}) ms/step, model_run median ${median(runMs).toFixed(1)} ms, ` +
      `kernels (${args.stat} per node) ${perStep(total).toFixed(1)} ms/step (${train.graph.nodes.length} graph nodes)`,
    '',
    '| op type | nodes | ms/step | % |',
    '|---|---:|---:|---:|',
    ...ops.map(
      ([op, o]) =>
        `| ${op} | ${o.count / steps} | ${perStep(o.us).toFixed(2)} | ${((100 * o.us) / total).toFixed(1)} |`,
    ),
    '',
    '| node | op type | ms/step | % |',
    '|---|---|---:|---:|',
    ...nodes
      .slice(0, Number(args.top))
      .map(
        ([name, n]) =>
          `| ${name} | ${n.op} | ${perStep(n.us).toFixed(2)} | ${((100 * n.us) / total).toFixed(1)} |`,
      ),
  ];
  console.log(lines.join('\n'));
  if (args.json) {
    const doc = {
      case: args.case,
      threads: Number(args.threads),
      steps,
      wallMs: median(wall),
      kernelMs: perStep(total),
      byOp: Object.fromEntries(ops.map(([op, o]) => [op, perStep(o.us)])),
      byNode: Object.fromEntries(nodes.map(([n, o]) => [n, { op: o.op, ms: perStep(o.us) }])),
    };
    writeFileSync(args.json, JSON.stringify(doc, null, 2) + '\n');
  }
}

await main();
