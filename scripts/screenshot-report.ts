/**
 * Renders a report HTML to a PNG with headless Chromium, to check the layout and to make the
 * picture in the docs.
 *
 *   npx tsx scripts/screenshot-report.ts REPORT.html -o OUT.png [--width 1280] [--height 2400]
 *   npx tsx scripts/screenshot-report.ts --example -o docs/img/report-example.png [--keep DIR]
 *
 * `--example` first writes synthetic run directories (a plausible MNIST-shift study: quadratic
 * adaptation over three seeds, a linear adapter, fine-tuning, and both from-scratch baselines) and
 * their report into a temp directory (or DIR with --keep), then screenshots that report. The
 * browser is Debian's /usr/bin/chromium (override with CHROMIUM=path), run with networking and
 * background services off, a throw-away profile, and scripts given a few seconds of virtual time
 * so the charts are drawn before the capture.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeReport } from '../src/report/index.js';
import type {
  EvalSummary,
  HistoryRecord,
  LatencySummary,
  RunInfo,
  RunMethod,
} from '../src/report/run-format.js';

interface Args {
  html?: string;
  out: string;
  width: number;
  height: number;
  example: boolean;
  keep?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { out: 'report.png', width: 1280, height: 2400, example: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    if (k === '-o' || k === '--out') a.out = next();
    else if (k === '--width') a.width = Number(next());
    else if (k === '--height') a.height = Number(next());
    else if (k === '--example') a.example = true;
    else if (k === '--keep') a.keep = next();
    else if (k.startsWith('-')) throw new Error(`unknown option ${k}`);
    else a.html = k;
  }
  if (!a.example && !a.html) throw new Error('give a report HTML file, or --example');
  if (!(a.width > 0 && a.height > 0)) throw new Error('--width and --height must be positive');
  return a;
}

// ---- Synthetic runs ----------------------------------------------------------------------------

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

async function writeExampleRuns(root: string): Promise<string[]> {
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
      latency: baseLatency.map((l) => ({
        batchSize: l.batchSize,
        p50Ms: l.p50Ms * ratio,
        p95Ms: l.p95Ms * ratio * 1.02,
        perSampleMs: l.perSampleMs * ratio,
      })),
    };
    if (s.fromPretrained) ev.base = { accuracy: 0.9283, loss: 0.25, latency: baseLatency };
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

// ---- Screenshot --------------------------------------------------------------------------------

/** Screenshots `html` into `png` with headless Chromium. */
export async function screenshot(
  html: string,
  png: string,
  width: number,
  height: number,
): Promise<void> {
  const chromium = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    throw new Error(`${chromium} not found; install Debian's chromium package or set CHROMIUM`);
  }
  const profile = await mkdtemp(join(tmpdir(), 'quadranet-chromium-'));
  try {
    const r = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        '--force-device-scale-factor=1',
        '--virtual-time-budget=5000',
        `--user-data-dir=${profile}`,
        `--window-size=${width},${height}`,
        `--screenshot=${resolve(png)}`,
        pathToFileURL(resolve(html)).href,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (r.error) throw r.error;
    if (r.status !== 0 || !existsSync(png)) {
      throw new Error(
        `chromium failed (exit ${r.status}): ${(r.stderr || '').trim().slice(-2000)}`,
      );
    }
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let html = args.html;
  let temp: string | undefined;
  if (args.example) {
    const root = resolve(
      args.keep ?? (temp = await mkdtemp(join(tmpdir(), 'quadranet-report-example-'))),
    );
    await mkdir(root, { recursive: true });
    // Relative run paths, as a user would type them, so the report shows no temp directory.
    const cwd = process.cwd();
    process.chdir(root);
    const dirs = await writeExampleRuns('runs');
    html = join(root, 'report.html');
    const s = await writeReport(dirs, 'report.html', {
      title: 'LeNet-5 on MNIST with a contrast shift: adapt or retrain?',
      date: new Date('2025-03-01T12:00:00Z'),
    });
    process.chdir(cwd);
    for (const v of s.verdicts) console.log(`- ${v}`);
  }
  try {
    await mkdir(resolve(args.out, '..'), { recursive: true });
    await screenshot(html!, args.out, args.width, args.height);
    const { size } = await stat(args.out);
    console.log(`wrote ${args.out} (${(size / 1024).toFixed(0)} KiB) from ${html}`);
  } finally {
    if (temp) await rm(temp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`screenshot-report: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
