import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { QuadranetFileError } from '../src/io/errors.js';
import {
  ReportError,
  type ReportSummary,
  loadChartJs,
  markdownPathFor,
  writeReport,
} from '../src/report/index.js';
import type {
  EvalSummary,
  HistoryRecord,
  LatencySummary,
  RunInfo,
  RunMethod,
} from '../src/io/formats/run-format.js';
import { tempDirs } from './helpers/temp.js';

const tempDir = tempDirs('report');

const DATA = 'mnist:shift=contrast';
const EPOCH_SAMPLES = 60000;

interface Fixture {
  method: RunMethod;
  label: string;
  seed: number;
  /** Validation accuracy per epoch. */
  val: number[];
  /** Cumulative CPU-seconds per epoch. */
  cpu: number[];
  evalAcc?: number;
  params: RunInfo['params'];
  flops: RunInfo['flops'];
  latency?: LatencySummary[];
  base?: EvalSummary['base'];
  data?: string;
}

const lat = (batchSize: number, p50Ms: number, p95Ms: number): LatencySummary => ({
  batchSize,
  p50Ms,
  p95Ms,
  perSampleMs: p50Ms / batchSize,
});
const BASE_LATENCY = [lat(1, 1.0, 1.2), lat(32, 16, 20)];
const BASE: EvalSummary['base'] = { accuracy: 0.92, loss: 0.3, latency: BASE_LATENCY };
// A from-scratch run's eval.json "base" is its random initialisation, not the original model.
const SCRATCH_BASE: EvalSummary['base'] = { accuracy: 0.1, loss: 2.3, latency: [] };
const PRETRAINED = { total: 100000, trainable: 100000, base: 100000 };

/** The runs of the main scenario. Numbers chosen so every figure can be worked out by hand. */
const FIXTURES: Fixture[] = [
  {
    method: 'scratch-quadratic',
    label: 'quadratic from scratch',
    seed: 1,
    val: [0.8, 0.9, 0.94, 0.96],
    cpu: [50, 100, 150, 200],
    evalAcc: 0.955,
    params: { total: 104000, trainable: 104000, base: 100000 },
    flops: { model: 2.3e6, base: 2e6 },
    latency: [lat(1, 1.2, 1.5), lat(32, 20, 24)],
    base: SCRATCH_BASE,
  },
  {
    method: 'scratch',
    label: 'first-order from scratch',
    seed: 1,
    val: [0.78, 0.88, 0.92, 0.95],
    cpu: [40, 80, 120, 160],
    evalAcc: 0.945,
    params: PRETRAINED,
    flops: { model: 2e6, base: 2e6 },
    latency: [lat(1, 1.0, 1.2)],
    base: SCRATCH_BASE,
  },
  {
    method: 'fine-tune',
    label: 'fine-tune',
    seed: 1,
    val: [0.93, 0.945, 0.95],
    cpu: [10, 20, 30],
    evalAcc: 0.948,
    params: PRETRAINED,
    flops: { model: 2e6, base: 2e6 },
    latency: BASE_LATENCY,
    base: BASE,
  },
  {
    method: 'linear-adapter',
    label: 'linear adapter r=8',
    seed: 1,
    val: [0.935, 0.95, 0.955],
    cpu: [8, 16, 24],
    evalAcc: 0.952,
    params: { total: 104000, trainable: 4000, base: 100000 },
    flops: { model: 2.1e6, base: 2e6 },
    latency: [lat(1, 1.05, 1.3), lat(32, 17, 21)],
    base: BASE,
  },
  {
    method: 'quadratic-adapt',
    label: 'quadratic r=4',
    seed: 1,
    val: [0.94, 0.955, 0.962, 0.965],
    cpu: [6, 12, 18, 24],
    evalAcc: 0.963,
    params: { total: 104000, trainable: 4000, base: 100000 },
    flops: { model: 2.3e6, base: 2e6 },
    latency: [lat(1, 1.18, 1.5), lat(32, 20, 24)],
    base: BASE,
  },
  {
    method: 'quadratic-adapt',
    label: 'quadratic r=4',
    seed: 2,
    val: [0.945, 0.958, 0.96],
    cpu: [7, 14, 21],
    evalAcc: 0.959,
    params: { total: 104000, trainable: 4000, base: 100000 },
    flops: { model: 2.3e6, base: 2e6 },
    latency: [lat(1, 1.2, 1.5), lat(32, 20, 24)],
    base: BASE,
  },
];

function runInfo(f: Fixture): RunInfo {
  return {
    format: 1,
    method: f.method,
    label: f.label,
    model: 'lenet5.onnx',
    data: f.data ?? DATA,
    seed: f.seed,
    command: `quadranet ${f.method} lenet5.onnx --seed ${f.seed}`,
    params: f.params,
    flops: f.flops,
    started: '2025-01-01T00:00:00.000Z',
    finished: '2025-01-01T00:10:00.000Z',
    status: 'done',
    env: {
      quadranet: '0.1.0',
      onnxruntime: '1.30.0',
      node: 'v20.19.0',
      cpu: 'Test CPU',
      threads: 2,
    },
  };
}

function history(f: Fixture): HistoryRecord[] {
  return f.val.map((v, i) => ({
    step: (i + 1) * 100,
    epoch: i + 1,
    loss: 1 / (i + 2),
    trainAccuracy: v + 0.01,
    valAccuracy: v,
    valLoss: 1 / (i + 2),
    wallSeconds: f.cpu[i]! / 2,
    cpuSeconds: f.cpu[i]!,
    samples: (i + 1) * EPOCH_SAMPLES,
    samplesPerSecond: EPOCH_SAMPLES / (f.cpu[i]! / 2 / (i + 1)),
    lr: 0.01,
  }));
}

async function writeRun(root: string, name: string, f: Fixture): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'run.json'), JSON.stringify(runInfo(f), null, 2));
  await writeFile(
    join(dir, 'history.jsonl'),
    history(f)
      .map((h) => JSON.stringify(h))
      .join('\n') + '\n',
  );
  if (f.evalAcc !== undefined) {
    const ev: EvalSummary = {
      n: 10000,
      accuracy: f.evalAcc,
      loss: 0.2,
      perClassAccuracy: [],
      confusion: [],
      latency: f.latency ?? [],
    };
    if (f.base) ev.base = f.base;
    await writeFile(join(dir, 'eval.json'), JSON.stringify(ev));
  }
  return dir;
}

const approx = (actual: number | null, expected: number, what: string) => {
  assert.ok(actual !== null, `${what} is null`);
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`);
};

/** Asserts that `fn` rejects with a one-line user-facing error whose message matches all patterns. */
async function rejectsOneLine(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof QuadranetFileError || err instanceof ReportError, String(err));
    assert.doesNotMatch(err.message, /\n/);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('report: numbers', () => {
  let root: string;
  let dirs: string[];
  let s: ReportSummary;
  let html: string;
  let md: string;
  before(async () => {
    root = await tempDir();
    dirs = [];
    for (const [i, f] of FIXTURES.entries()) dirs.push(await writeRun(root, `run${i}`, f));
    const out = join(root, 'out', 'report.html');
    s = await writeReport(dirs, out, {
      pricePerHour: 0.5,
      title: 'Test report',
      date: new Date('2025-02-03T04:05:06Z'),
    });
    html = await readFile(out, 'utf8');
    md = await readFile(join(root, 'out', 'report.md'), 'utf8');
  });

  const byName = (n: string) => {
    const r = s.runs.find((x) => x.name === n);
    assert.ok(r, `no run named ${n}: ${s.runs.map((x) => x.name).join(', ')}`);
    return r;
  };
  const saving = (n: string) => s.computeSavings.find((c) => c.name === n)!;
  const roi = (n: string) => s.roi.find((c) => c.name === n)!;

  it('names runs uniquely (seed added only where labels collide)', () => {
    assert.deepEqual(
      s.runs.map((r) => r.name),
      [
        'quadratic from scratch',
        'first-order from scratch',
        'fine-tune',
        'linear adapter r=8',
        'quadratic r=4 · seed 1',
        'quadratic r=4 · seed 2',
      ],
    );
    assert.equal(s.files.markdown, join(root, 'out', 'report.md'));
    assert.equal(s.generated, '2025-02-03T04:05:06.000Z');
  });

  it('takes total compute from the last history record and prices it', () => {
    const q = byName('quadratic r=4 · seed 1');
    assert.equal(q.cpuSeconds, 24);
    assert.equal(q.samples, 4 * EPOCH_SAMPLES);
    approx(q.computeHours, 24 / 3600, 'hours');
    approx(q.costUsd, (24 / 3600) * 0.5, 'cost'); // $0.00333...
    approx(byName('quadratic from scratch').costUsd, (200 / 3600) * 0.5, 'scratch cost');
  });

  it('time-to-accuracy and saving % against scratch-quadratic', () => {
    // Target = scratch-quadratic's final validation accuracy 0.96; its total compute 200 CPU-s.
    const q1 = saving('quadratic r=4 · seed 1');
    assert.equal(q1.baselineMethod, 'scratch-quadratic');
    approx(q1.targetAccuracy, 0.96, 'target');
    approx(q1.baselineCpuSeconds, 200, 'baseline cpu');
    assert.equal(q1.reached, true);
    assert.equal(q1.timeToAccuracyCpuSeconds, 18); // epoch 3: 0.962 ≥ 0.96
    assert.equal(q1.timeToAccuracySamples, 3 * EPOCH_SAMPLES);
    approx(q1.savingPct, 91, 'saving'); // 1 − 18/200
    approx(q1.totalSavingPct, 88, 'whole-run saving'); // 1 − 24/200
    const q2 = saving('quadratic r=4 · seed 2');
    assert.equal(q2.timeToAccuracyCpuSeconds, 21); // epoch 3: 0.96 ≥ 0.96 (equality counts)
    approx(q2.savingPct, 89.5, 'saving seed 2'); // 1 − 21/200
    const ft = saving('fine-tune'); // best 0.95 < 0.96
    assert.equal(ft.reached, false);
    assert.equal(ft.timeToAccuracyCpuSeconds, null);
    assert.equal(ft.savingPct, null);
    approx(ft.totalSavingPct, 85, 'fine-tune whole run'); // 1 − 30/200
    assert.equal(saving('linear adapter r=8').reached, false); // best 0.955
    // The from-scratch runs are baselines, not compared.
    assert.equal(s.computeSavings.length, 4);
    assert.ok(!s.computeSavings.some((c) => c.name.includes('from scratch')));
  });

  it('mean ± sample std over seeds per method+label+data', () => {
    const g = s.groups.find((x) => x.method === 'quadratic-adapt')!;
    assert.deepEqual(g.seeds, [1, 2]);
    assert.equal(g.n, 2);
    approx(g.meanAccuracy, 0.961, 'mean'); // (0.963 + 0.959) / 2
    approx(g.stdAccuracy, 0.002 * Math.SQRT2, 'std'); // sqrt((0.002² + 0.002²) / (2 − 1))
    approx(g.meanCpuSeconds, 22.5, 'mean cpu'); // (24 + 21) / 2
    const single = s.groups.find((x) => x.method === 'fine-tune')!;
    assert.equal(single.stdAccuracy, null);
    approx(single.meanAccuracy, 0.948, 'single mean');
    assert.equal(s.baseAccuracies.length, 1);
    // The original model's accuracy, not averaged with the scratch runs' random inits.
    approx(s.baseAccuracies[0]!.accuracy, 0.92, 'base accuracy');
    assert.ok(!s.warnings.some((w) => w.includes('different base-model')), s.warnings.join('; '));
  });

  it('inference overheads: params, FLOPs, latency ratios', () => {
    const q = byName('quadratic r=4 · seed 1');
    approx(q.paramOverheadPct, 4, 'param overhead'); // 104000 / 100000 − 1
    approx(q.flopOverheadPct, 15, 'flop overhead'); // 2.3e6 / 2e6 − 1
    assert.equal(q.latency.length, 2);
    approx(q.latency[0]!.p50Ratio, 1.18, 'p50 ratio b1');
    approx(q.latency[0]!.p95Ratio, 1.25, 'p95 ratio b1'); // 1.5 / 1.2
    approx(q.latency[1]!.p50Ratio, 1.25, 'p50 ratio b32'); // 20 / 16
    approx(q.latency[1]!.perSampleRatio, 1.25, 'per-sample ratio b32');
    // A run without base latency has no ratios.
    assert.equal(byName('first-order from scratch').latency[0]!.p50Ratio, null);
    assert.equal(byName('fine-tune').paramOverheadPct, 0);
  });

  it('ROI: gains vs original and fine-tuning, cost per point, verdict', () => {
    const o = roi('quadratic r=4 · seed 1');
    approx(o.gainVsBasePts, 4.3, 'gain vs base'); // (0.963 − 0.92) × 100
    approx(o.fineTuneAccuracy, 0.948, 'fine-tune accuracy');
    approx(o.gainVsFineTunePts, 1.5, 'gain vs fine-tune'); // (0.963 − 0.948) × 100
    approx(o.costPerPointUsd, ((24 / 3600) * 0.5) / 4.3, 'cost per point');
    approx(o.slowdown, 1.18, 'slowdown');
    assert.equal(o.latencyBatchSize, 1);
    assert.equal(roi('fine-tune').gainVsFineTunePts, null);
    assert.equal(
      o.verdict,
      'Quadratic adaptation (quadratic r=4 · seed 1) reached 96.3% (+4.3 pts over the original, ' +
        "+1.5 vs fine-tuning) and its validation curve matched the from-scratch run's final value (96.0%) using 9.0% of the " +
        "from-scratch compute; inference 1.18× the original's time by single medians (batch 1; no " +
        'paired timings, so not evidence of a difference) and the model has +4.0% parameters.',
    );
    assert.match(
      roi('fine-tune').verdict,
      /did not reach the from-scratch run's final value \(96\.0%\) with 15\.0% of/,
    );
    assert.deepEqual(
      s.verdicts,
      s.roi.map((r) => r.verdict),
    );
    // Ordered by method: quadratic-adapt first, then linear-adapter, then fine-tune.
    assert.deepEqual(
      s.roi.map((r) => r.method),
      ['quadratic-adapt', 'quadratic-adapt', 'linear-adapter', 'fine-tune'],
    );
  });

  it('headline per configuration: means over seeds', () => {
    assert.deepEqual(
      s.headlines.map((h) => h.name),
      ['quadratic r=4', 'linear adapter r=8', 'fine-tune'],
    );
    const h = s.headlines[0]!;
    assert.equal(h.runs, 2);
    assert.equal(h.reached, 2);
    approx(h.meanSavingPct, 90.25, 'mean saving'); // (91 + 89.5) / 2
    approx(h.meanGainVsBasePts, 4.1, 'mean gain'); // (4.3 + 3.9) / 2
    approx(h.meanCpuSeconds, 22.5, 'mean cpu');
    approx(h.meanCostUsd, (22.5 / 3600) * 0.5, 'mean cost');
    approx(h.meanSlowdown, 1.19, 'mean slowdown'); // (1.18 + 1.2) / 2
    assert.equal(s.headlines[2]!.meanSavingPct, null); // fine-tune never reached 0.96
  });

  it('HTML is one self-contained file with chart.js inlined and no external references', async () => {
    const chart = await loadChartJs();
    assert.ok(html.includes(chart.slice(200, 2200)), 'chart.js source is inlined');
    assert.match(html, /Chart\.js v4/);
    // No <script src>, no <link>, no external resource attributes anywhere.
    for (const tag of html.match(/<script\b[^>]*>/gi) ?? []) assert.doesNotMatch(tag, /\bsrc\s*=/i);
    assert.doesNotMatch(html, /<link\b/i);
    assert.doesNotMatch(html, /\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    assert.doesNotMatch(html, /@import|url\(\s*["']?https?:/i);
    // Outside the chart.js source, no URL at all.
    const withoutChart = html.replace(chart, '');
    assert.doesNotMatch(withoutChart, /https?:\/\//);
    // Data embedded as JSON that parses back to the summary.
    const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
    assert.ok(m);
    const payload = JSON.parse(m[1]!) as { summary: ReportSummary };
    assert.equal(payload.summary.runs.length, 6);
    for (const id of ['chart-curve', 'chart-final', 'chart-compute']) assert.ok(html.includes(id));
    assert.match(html, /<h1>Test report<\/h1>/);
    assert.ok(html.includes('91.0%'), 'compute saved shown');
    assert.ok(html.includes('not reached'));
  });

  it('markdown beside the HTML carries the same numbers', () => {
    assert.match(md, /^# Test report/);
    assert.match(md, /\| quadratic r=4 · seed 1 \| scratch-quadratic \(1 run\(s\)\) \| 96\.00% \|/);
    assert.ok(md.includes('| 91.0% |'));
    assert.ok(md.includes('89.5%'));
    assert.ok(md.includes('± 0.28'));
    assert.ok(md.includes('not reached'));
    assert.ok(md.includes(s.verdicts[0]!.replace(/[*_`[\]]/g, '\\$&')));
    assert.equal(markdownPathFor('a/report.html'), 'a/report.md');
    assert.equal(markdownPathFor('a/report'), 'a/report.md');
  });

  it('writes atomically: no temp files left beside the outputs', async () => {
    assert.deepEqual((await readdir(join(root, 'out'))).sort(), ['report.html', 'report.md']);
  });
});

describe('report: baseline fallback and escaping', () => {
  it('falls back to scratch when there is no scratch-quadratic run, with a warning', async () => {
    const root = await tempDir();
    const dirs = [];
    for (const [i, f] of FIXTURES.entries()) {
      if (f.method !== 'scratch-quadratic') dirs.push(await writeRun(root, `run${i}`, f));
    }
    const s = await writeReport(dirs, join(root, 'r.html'), {});
    // Target = scratch's final 0.95, its compute 160 CPU-s.
    const q = s.computeSavings.find((c) => c.name === 'quadratic r=4 · seed 1')!;
    assert.equal(q.baselineMethod, 'scratch');
    approx(q.targetAccuracy, 0.95, 'target');
    assert.equal(q.timeToAccuracyCpuSeconds, 12); // epoch 2: 0.955
    approx(q.savingPct, 92.5, 'saving'); // 1 − 12/160
    const ft = s.computeSavings.find((c) => c.name === 'fine-tune')!;
    assert.equal(ft.timeToAccuracyCpuSeconds, 30);
    approx(ft.savingPct, 81.25, 'fine-tune saving'); // 1 − 30/160
    assert.ok(
      s.warnings.some((w) => /no scratch-quadratic run .* against the scratch run instead/.test(w)),
    );
    approx(s.pricePerHour, 0.1, 'default price');
    approx(s.runs[0]!.costUsd, (160 / 3600) * 0.1, 'default-priced cost');
  });

  it('without any from-scratch run, compute saved is reported as unmeasurable', async () => {
    const root = await tempDir();
    const d = await writeRun(root, 'q', FIXTURES[4]!);
    const s = await writeReport([d], join(root, 'r.html'), {});
    assert.equal(s.computeSavings[0]!.baselineMethod, null);
    assert.equal(s.computeSavings[0]!.savingPct, null);
    assert.match(s.verdicts[0]!, /no from-scratch run on mnist:shift=contrast/);
  });

  it('escapes user strings in the HTML', async () => {
    const root = await tempDir();
    const evil = '<img src=x onerror=alert(1)> & "q" </script>';
    const d = await writeRun(root, 'q', { ...FIXTURES[4]!, label: evil, data: 'd<b>' });
    const out = join(root, 'r.html');
    await writeReport([d], out, { title: '<script>alert(1)</script>' });
    const html = await readFile(out, 'utf8');
    assert.ok(!html.includes('<img src=x'), 'label is escaped');
    assert.ok(!html.includes('<script>alert(1)'), 'title is escaped');
    assert.ok(!html.includes('d<b>'), 'data is escaped');
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot;'));
    // Exactly three script elements: data, chart.js, the page code.
    assert.equal((html.match(/<script\b/gi) ?? []).length, 3);
    assert.equal((html.match(/<\/script>/gi) ?? []).length, 3);
  });
});

describe('report: bad input gives one-line errors naming the file', () => {
  let root: string;
  before(async () => {
    root = await tempDir();
  });
  const fresh = async (name: string) => writeRun(root, name, FIXTURES[4]!);
  const out = () => join(root, 'out.html');

  it('missing run directory', async () => {
    const d = join(root, 'nope');
    await rejectsOneLine(() => writeReport([d], out()), /run directory .*nope not found/);
  });

  it('missing run.json', async () => {
    const d = await fresh('no-run-json');
    await rm(join(d, 'run.json'));
    await rejectsOneLine(
      () => writeReport([d], out()),
      new RegExp(`${join(d, 'run.json')} not found`),
      /run directory written by quadranet/,
    );
  });

  it('garbled run.json', async () => {
    const d = await fresh('bad-run-json');
    await writeFile(join(d, 'run.json'), '{"format": 1, "method": ');
    await rejectsOneLine(() => writeReport([d], out()), /run\.json: not valid JSON/);
  });

  it('run.json with a wrong field', async () => {
    const d = await fresh('bad-method');
    const info = { ...runInfo(FIXTURES[4]!), method: 'magic' };
    await writeFile(join(d, 'run.json'), JSON.stringify(info));
    await rejectsOneLine(
      () => writeReport([d], out()),
      /run\.json: field "method" is "magic"; expected one of quadratic-adapt/,
    );
    const noParams: Partial<RunInfo> = runInfo(FIXTURES[4]!);
    delete noParams.params;
    await writeFile(join(d, 'run.json'), JSON.stringify(noParams));
    await rejectsOneLine(() => writeReport([d], out()), /run\.json: field "params" is missing/);
    await writeFile(join(d, 'run.json'), JSON.stringify({ ...noParams, params: [1] }));
    await rejectsOneLine(
      () => writeReport([d], out()),
      /run\.json: field "params" must be a JSON object/,
    );
    await writeFile(join(d, 'run.json'), JSON.stringify({ ...runInfo(FIXTURES[4]!), format: 7 }));
    await rejectsOneLine(() => writeReport([d], out()), /run\.json: unsupported format 7/);
  });

  it('missing history.jsonl', async () => {
    const d = await fresh('no-history');
    await rm(join(d, 'history.jsonl'));
    await rejectsOneLine(() => writeReport([d], out()), /history\.jsonl not found/);
  });

  it('garbled history.jsonl line, named with its line number', async () => {
    const d = await fresh('bad-history');
    const lines = history(FIXTURES[4]!).map((h) => JSON.stringify(h));
    lines[1] = '{"step": 200, "epoch"';
    await writeFile(join(d, 'history.jsonl'), lines.join('\n') + '\n');
    await rejectsOneLine(() => writeReport([d], out()), /history\.jsonl: line 2: not valid JSON/);
    lines[1] = JSON.stringify({ ...history(FIXTURES[4]!)[1], cpuSeconds: 'fast' });
    await writeFile(join(d, 'history.jsonl'), lines.join('\n') + '\n');
    await rejectsOneLine(
      () => writeReport([d], out()),
      /history\.jsonl: line 2: field "cpuSeconds" must be a number/,
    );
    lines[1] = JSON.stringify({ ...history(FIXTURES[4]!)[1], cpuSeconds: 1 });
    await writeFile(join(d, 'history.jsonl'), lines.join('\n') + '\n');
    await rejectsOneLine(
      () => writeReport([d], out()),
      /history\.jsonl: line 2: "cpuSeconds" goes backwards/,
    );
    await writeFile(join(d, 'history.jsonl'), '\n');
    await rejectsOneLine(() => writeReport([d], out()), /history\.jsonl: has no records/);
  });

  it('a cut-off last history line is skipped with a warning', async () => {
    const d = await fresh('cut-history');
    const lines = history(FIXTURES[4]!).map((h) => JSON.stringify(h));
    await writeFile(join(d, 'history.jsonl'), lines.join('\n') + '\n{"step": 5');
    const s = await writeReport([d], out());
    assert.equal(s.runs[0]!.epochs, 4);
    assert.ok(s.warnings.some((w) => /line 5 is incomplete/.test(w)));
  });

  it('garbled eval.json; missing eval.json only warns', async () => {
    const d = await fresh('bad-eval');
    await writeFile(join(d, 'eval.json'), 'not json');
    await rejectsOneLine(() => writeReport([d], out()), /eval\.json: not valid JSON/);
    await writeFile(join(d, 'eval.json'), JSON.stringify({ n: 1, accuracy: 97, loss: 0 }));
    await rejectsOneLine(() => writeReport([d], out()), /eval\.json: field "accuracy" must be ≤ 1/);
    await rm(join(d, 'eval.json'));
    const s = await writeReport([d], out());
    assert.equal(s.runs[0]!.finalAccuracySource, 'val');
    approx(s.runs[0]!.finalAccuracy, 0.965, 'final from history');
    assert.ok(s.warnings.some((w) => /eval\.json is missing/.test(w)));
  });

  it('bad options and duplicate directories', async () => {
    const d = await fresh('ok');
    await rejectsOneLine(() => writeReport([], out()), /no run directories given/);
    await rejectsOneLine(() => writeReport([d], out(), { pricePerHour: -1 }), /price per hour/);
    await rejectsOneLine(() => writeReport([d, `${d}/`], out()), /given twice/);
  });
});
