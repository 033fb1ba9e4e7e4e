import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadedRun } from '../src/report/load.js';
import { renderMarkdown } from '../src/report/markdown.js';
import type { EvalSummary, LatencySummary, RunMethod } from '../src/io/formats/run-format.js';
import { medianInterval, pairedRatio, wilsonInterval } from '../src/report/stats.js';
import { summarize } from '../src/report/summary.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

const BASE_ACC = 0.9;

/** Timings of 30 runs around `ms`, the same machine noise for every model (`noiseSeed`). */
function timings(ms: number, noiseSeed: number, jitterSeed: number): number[] {
  const noise = new Rng(noiseSeed);
  const jitter = new Rng(jitterSeed);
  // Shared noise (load spikes hit both models of a pair) plus a little independent jitter.
  return Array.from(
    { length: 30 },
    () => ms * (1 + noise.uniform(0, 0.8)) * (1 + jitter.uniform(-0.02, 0.02)),
  );
}

function latency(ms: number, times?: number[]): LatencySummary {
  const out: LatencySummary = { batchSize: 1, p50Ms: ms, p95Ms: ms * 1.2, perSampleMs: ms };
  if (times) out.timesMs = times;
  return out;
}

interface Spec {
  method: RunMethod;
  label: string;
  seed: number;
  acc: number;
  cpu: number;
  /** Inference time relative to the base (paired timings when `paired`). */
  slowdown?: number;
  paired?: boolean;
  flops?: number;
  n?: number;
}

function run(spec: Spec, i: number): LoadedRun {
  const n = spec.n ?? 10000;
  const baseTimes = timings(1, 100 + i, 200 + i);
  const modelTimes = timings(spec.slowdown ?? 1, 100 + i, 300 + i);
  const ev: EvalSummary = {
    n,
    accuracy: spec.acc,
    loss: 0.2,
    perClassAccuracy: [],
    confusion: [],
    latency: [latency(spec.slowdown ?? 1, spec.paired ? modelTimes : undefined)],
    base: {
      accuracy: BASE_ACC,
      loss: 0.3,
      latency: [latency(1, spec.paired ? baseTimes : undefined)],
    },
  };
  return {
    dir: `runs/${i}`,
    info: {
      format: 1,
      method: spec.method,
      label: spec.label,
      model: 'm.onnx',
      data: 'mnist',
      seed: spec.seed,
      command: 'quadranet …',
      params: { total: 1000, trainable: 1000, base: 1000 },
      flops: { model: spec.flops ?? 1e6, base: 1e6 },
      started: '2025-01-01T00:00:00.000Z',
      finished: '2025-01-01T00:10:00.000Z',
      status: 'done',
      env: { quadranet: '0.1.0', onnxruntime: '1.30.0', node: 'v20', cpu: 'CPU', threads: 2 },
    },
    history: [
      {
        step: 100,
        epoch: 1,
        loss: 0.3,
        valAccuracy: spec.acc,
        wallSeconds: spec.cpu / 2,
        cpuSeconds: spec.cpu,
        samples: 6400,
        samplesPerSecond: 100,
        lr: 0.001,
      },
    ],
    eval: ev,
    warnings: [],
  };
}

const summary = (specs: Spec[]) =>
  summarize(specs.map(run), {
    title: 't',
    pricePerHour: 0.1,
    baselineMethod: 'scratch-quadratic',
    date: new Date(0),
  });

const seeds = (base: Omit<Spec, 'seed' | 'acc'>, accs: number[]): Spec[] =>
  accs.map((acc, k) => ({ ...base, seed: k, acc }));

describe('report statistics', () => {
  it('Wilson interval matches the textbook values', () => {
    // p = 0.5, n = 100 → 0.4038–0.5962; p = 0.95, n = 500 → 0.9272–0.9659 (Wilson, z = 1.96).
    expectAllClose(wilsonInterval(0.5, 100)!, [0.40383, 0.59617], { atol: 1e-5 });
    expectAllClose(wilsonInterval(0.95, 500)!, [0.92723, 0.9659], { atol: 1e-5 });
    assert.equal(wilsonInterval(0.5, 0), null);
  });

  it('median interval: sign-test order statistics (n = 30 → 10th and 21st)', () => {
    const xs = Array.from({ length: 30 }, (_, i) => 30 - i); // 30..1, unsorted on purpose
    assert.deepEqual(medianInterval(xs), [10, 21]);
    assert.deepEqual(medianInterval([1, 2, 3, 4, 5, 6]), [1, 6]); // P(0 of 6) = 1.6% ≤ 2.5%
    assert.equal(medianInterval([1, 2, 3, 4, 5]), null);
  });

  it('paired ratio: machine noise shared by a pair cancels, a real difference shows', () => {
    // Two equally fast models: the 95% interval covers 1 in about 95% of 200 measurements.
    let covered = 0;
    for (let k = 0; k < 200; k++) {
      const iv = pairedRatio(
        timings(1, 1000 + k, 2000 + k),
        timings(1, 1000 + k, 3000 + k),
      )!.interval!;
      if (iv[0] <= 1 && iv[1] >= 1) covered++;
    }
    assert.ok(covered >= 180 && covered < 200, `covered ${covered} of 200`);
    const base = timings(1, 7, 8);
    const slower = pairedRatio(timings(1.3, 7, 9), base)!;
    assert.ok(slower.interval![0] > 1.2 && slower.interval![1] < 1.4, `${slower.interval}`);
    assert.equal(pairedRatio([1, 2], [1]), null);
  });

  it('paired ratio over session sets: the interval covers every set’s median', () => {
    // Three sets of 10 runs whose ratios sit around 1.10, 1.12 and 1.03 (±4% run to run), as
    // when each onnxruntime session keeps a speed of its own. The runs' interval (10th and 21st
    // of 30) starts near the top of the slow set; the sets are the independent repeats, so the
    // interval reaches down to that set's median.
    const base = Array.from({ length: 30 }, (_, i) => 10 + (i % 3));
    const setRatio = [1.1, 1.12, 1.03];
    const model = base.map(
      (t, i) => t * setRatio[Math.floor(i / 10)]! * (1 + ((i % 5) - 2) * 0.02),
    );
    const pooled = pairedRatio(model, base)!;
    assert.ok(pooled.interval![0] > 1.05, `pooled interval ${pooled.interval}`);
    const bySets = pairedRatio(model, base, [10, 10, 10])!;
    expectAllClose(bySets.setMedians!, setRatio, { rtol: 1e-9 });
    expectAllClose(bySets.interval!, [1.03, pooled.interval![1]], { rtol: 1e-9 });
    assert.equal(bySets.median, pooled.median);
    // Set sizes that do not add up to the runs are ignored (not a partial split).
    assert.deepEqual(pairedRatio(model, base, [10, 10])!.interval, pooled.interval);
  });
});

describe('report recommendation', () => {
  it('(a) fine-tuning dominates: within noise, half the compute, no inference cost', () => {
    const s = summary([
      ...seeds(
        { method: 'fine-tune', label: 'fine-tune', cpu: 30, paired: true },
        [0.95, 0.951, 0.949],
      ),
      ...seeds(
        {
          method: 'quadratic-adapt',
          label: 'quadratic r=4',
          cpu: 60,
          slowdown: 1.3,
          paired: true,
          flops: 1.15e6,
        },
        [0.951, 0.95, 0.952],
      ),
    ]);
    const rec = s.recommendations[0]!;
    assert.equal(rec.choice.name, 'fine-tune');
    assert.equal(rec.quadratic, 'not-worth-it');
    const q = rec.options.find((o) => o.method === 'quadratic-adapt')!;
    assert.equal(q.withinNoiseOfBest, true);
    assert.equal(q.latency!.difference, 'slower');
    const ft = rec.options.find((o) => o.method === 'fine-tune')!;
    assert.equal(ft.latency!.difference, 'none');
    assert.match(rec.sentences.join(' '), /A quadratic term is not worth it here: fine-tune/);
    assert.match(rec.sentences.join(' '), /quadratic model is slower to run/);
    // The original model (90%) is far outside the band.
    assert.equal(rec.options.find((o) => o.method === 'original')!.withinNoiseOfBest, false);
    // The markdown has the section with the choice marked.
    assert.match(renderMarkdown(s), /## Recommendation[\s\S]*\| fine-tune \(recommended\) \|/);
  });

  it('(b) the quadratic run wins beyond noise', () => {
    const s = summary([
      ...seeds(
        { method: 'fine-tune', label: 'fine-tune', cpu: 30, paired: true },
        [0.95, 0.951, 0.949],
      ),
      ...seeds(
        { method: 'linear-adapter', label: 'linear', cpu: 40, paired: true },
        [0.952, 0.953, 0.951],
      ),
      ...seeds(
        { method: 'quadratic-adapt', label: 'quadratic r=4', cpu: 60, slowdown: 1.3, paired: true },
        [0.97, 0.971, 0.969],
      ),
    ]);
    const rec = s.recommendations[0]!;
    assert.equal(rec.quadratic, 'wins');
    assert.equal(rec.choice.name, 'quadratic r=4');
    assert.match(
      rec.sentences.join(' '),
      /The quadratic term is worth it here: it beats the next option \(linear\) by 1\.8 pts, beyond the noise band/,
    );
    // Its inference cost is stated with the interval.
    assert.match(rec.sentences[0]!, /inference 1\.\d\d× the original's time \(95% interval/);
  });

  it('(c) differences within noise on a small test set: the cheapest option, said plainly', () => {
    const s = summary([
      { method: 'fine-tune', label: 'fine-tune', seed: 0, acc: 0.95, cpu: 30, n: 500 },
      {
        method: 'quadratic-adapt',
        label: 'quadratic r=4',
        seed: 0,
        acc: 0.912,
        cpu: 60,
        n: 500,
        slowdown: 0.68, // unpaired medians: a "1.47× faster" that no interval supports
      },
    ]);
    const rec = s.recommendations[0]!;
    // Original 90.0%, quadratic 91.2%, fine-tune 95.0% on 500 examples: the original is outside
    // the band of fine-tune (5 pts > ~3.3), quadratic is just inside it (3.8 vs band).
    const byName = (n: string) => rec.options.find((o) => o.name === n)!;
    assert.equal(byName('fine-tune').gapToBestPts, 0);
    assert.ok(byName('quadratic r=4').bandPts > 3, `band ${byName('quadratic r=4').bandPts}`);
    assert.equal(rec.quadratic, 'not-worth-it');
    assert.match(s.warnings.join('\n'), /only 500 test examples on mnist: .* ±\d\.\d pts/);
    // Unpaired timings are never called faster.
    const verdict = s.roi.find((r) => r.method === 'quadratic-adapt')!.verdict;
    assert.match(verdict, /by single medians .* not evidence of a difference/);
    assert.doesNotMatch(verdict, /faster/);
  });

  it('(c′) everything within noise: the original model is recommended, nothing to pay for', () => {
    const s = summary([
      { method: 'fine-tune', label: 'fine-tune', seed: 0, acc: 0.905, cpu: 30, n: 500 },
      { method: 'quadratic-adapt', label: 'q', seed: 0, acc: 0.91, cpu: 60, n: 500 },
    ]);
    const rec = s.recommendations[0]!;
    assert.equal(rec.allWithinNoise, true);
    assert.equal(rec.choice.method, 'original');
    assert.equal(rec.quadratic, 'not-worth-it');
    assert.match(rec.sentences.join(' '), /Every option is within noise of the best/);
  });
});
