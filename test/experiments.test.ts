import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { HistoryRecord } from '../src/report/run-format.js';
import {
  claimA,
  claimB,
  meanStd,
  noiseBand,
  savingPct,
  timeToAccuracy,
  type TimeToAccuracyRow,
} from '../src/experiments/analysis.js';
import { buildPlan } from '../src/experiments/plan.js';
import { presetConfig, runExperiments } from '../src/experiments/index.js';

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

const rec = (epoch: number, cpu: number, val: number): HistoryRecord => ({
  step: epoch * 10,
  epoch,
  loss: 1,
  valAccuracy: val,
  wallSeconds: cpu,
  cpuSeconds: cpu,
  samples: epoch * 640,
  samplesPerSecond: 1,
  lr: 1e-3,
});

describe('experiments: analysis', () => {
  it('time to accuracy is the first epoch at or above the target, step 0 counting at 0', () => {
    const h = [rec(1, 10, 0.8), rec(2, 20, 0.9), rec(3, 30, 0.95)];
    assert.deepEqual(timeToAccuracy(h, 0.9), { cpuSeconds: 20, samples: 1280, epoch: 2 });
    assert.equal(timeToAccuracy(h, 0.96), null);
    assert.deepEqual(timeToAccuracy(h, 0.9, 0.91), { cpuSeconds: 0, samples: 0, epoch: 0 });
    assert.deepEqual(timeToAccuracy(h, 0.9, 0.5)?.epoch, 2);
  });

  it('mean, sample std, saving and noise band', () => {
    assert.deepEqual(meanStd([0.5]), { mean: 0.5, std: null });
    const ms = meanStd([1, 2, 3]);
    assert.equal(ms.mean, 2);
    assert.equal(ms.std, 1);
    assert.equal(savingPct(5, 100), 95);
    assert.equal(savingPct(null, 100), null);
    // One seed: only the binomial test-sampling part, 2·√(2·0.25/100) = 0.1414.
    const b = noiseBand(
      { mean: 0.5, std: null, n: 1, nTest: 100 },
      { mean: 0.5, std: null, n: 1, nTest: 100 },
    );
    assert.ok(Math.abs(b - 2 * Math.sqrt(0.005)) < 1e-12);
  });

  it('claim (a) holds only with ≥ 90% saving and no test accuracy loss beyond noise', () => {
    const row = (saving: number | null, adapt: number, scratch: number): TimeToAccuracyRow => ({
      backbone: 'convnext',
      dataset: 'mnist',
      scratch_cpu_s: 100,
      adapt_cpu_s: saving === null ? null : 100 - saving,
      saving_pct: saving,
      scratch_acc: scratch,
      adapt_acc: adapt,
      scratch_samples: 1000,
      adapt_samples: 100,
      sample_saving_pct: 90,
      target_val_acc: 0.9,
      scratch_total_cpu_s: 100,
      adapt_total_cpu_s: 20,
      pretrained_val_acc: 0.8,
      pretrained_test_acc: 0.8,
      reached_at_step0: false,
      pretrain_cpu_s: 50,
      saving_incl_pretrain_pct: 40,
      resolution_saving_pct: 95,
      acc_noise_band: 0.01,
      val_noise_band: 0.02,
      adapt_cpu_s_within_noise: null,
      saving_within_noise_pct: null,
      claim_a: saving !== null && saving >= 90 && adapt >= scratch - 0.01,
      scratch_curve: [],
      adapt_curve: [],
    });
    assert.equal(claimA([row(95, 0.91, 0.9)]).verdict, 'held');
    assert.equal(claimA([row(95, 0.91, 0.9), row(80, 0.91, 0.9)]).verdict, 'partly');
    assert.equal(claimA([row(null, 0.85, 0.9)]).verdict, 'not held');
    assert.equal(claimA([]).verdict, 'not measured');
  });

  it('claim (b) needs a difference beyond the noise band', () => {
    const row = (method: string, acc: number) => ({
      shift: 'rotate@0.7',
      method,
      acc_mean: acc,
      acc_std: 0.005,
      seeds: [0, 1, 2],
      accs: [acc, acc, acc],
      cpu_s_mean: 1,
      trainable_params: 1,
      n_test: 10000,
    });
    assert.equal(claimB([row('quadratic-adapt', 0.9), row('fine-tune', 0.8)]).verdict, 'held');
    assert.equal(
      claimB([row('quadratic-adapt', 0.801), row('fine-tune', 0.8)]).verdict,
      'inconclusive',
    );
    assert.equal(claimB([row('quadratic-adapt', 0.7), row('fine-tune', 0.8)]).verdict, 'not held');
  });

  it('the plan skips Fashion-MNIST rows when the data is missing and says how to install it', () => {
    const plan = buildPlan(presetConfig('quick'), { fashion: false, fashionDir: '/nonexistent' });
    assert.ok(plan.runs.every((r) => !r.data.startsWith('idx:')));
    assert.match(plan.skipped.join(' '), /apt-get install dataset-fashion-mnist/);
    const full = buildPlan(presetConfig('full'), { fashion: true, fashionDir: '/x' });
    const shiftSeeds = new Set(full.runs.filter((r) => r.study === 'shift').map((r) => r.seed));
    assert.ok(shiftSeeds.size >= 3);
  });
});

describe('experiments: micro end to end', () => {
  // The timeout guards against a hang, not a slow machine: far above a loaded machine's time.
  it(
    'writes the JSON contract, markdown and per-study reports',
    { timeout: 30 * 60_000 },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'quadranet-exp-'));
      roots.push(dir);
      const jsonFile = join(dir, 'out.json');
      const res = await runExperiments({ preset: 'micro', outDir: join(dir, 'out'), jsonFile });
      const json = JSON.parse(await readFile(jsonFile, 'utf8')) as Record<string, unknown[]>;
      assert.deepEqual(JSON.parse(JSON.stringify(res)), json);

      const t2a = json['time_to_accuracy'] as Record<string, unknown>[];
      assert.ok(t2a.length >= 1);
      for (const r of t2a) {
        assert.equal(typeof r['backbone'], 'string');
        assert.equal(typeof r['dataset'], 'string');
        for (const k of ['scratch_cpu_s', 'scratch_acc', 'adapt_acc'])
          assert.equal(typeof r[k], 'number', k);
        for (const k of ['adapt_cpu_s', 'saving_pct'])
          assert.ok(r[k] === null || typeof r[k] === 'number', k);
      }
      const shift = json['shift'] as Record<string, unknown>[];
      assert.ok(shift.length >= 1);
      for (const r of shift) {
        assert.equal(typeof r['shift'], 'string');
        assert.equal(typeof r['method'], 'string');
        assert.equal(typeof r['acc_mean'], 'number');
        assert.ok(r['acc_std'] === null || typeof r['acc_std'] === 'number');
        assert.ok(Array.isArray(r['seeds']));
      }
      assert.ok(shift.some((r) => r['method'] === 'quadratic-adapt'));
      const abl = json['ablations'] as Record<string, unknown>[];
      assert.ok(abl.length >= 1);
      for (const r of abl) {
        assert.equal(typeof r['name'], 'string');
        assert.equal(typeof r['setting'], 'string');
        assert.ok(r['acc'] === null || typeof r['acc'] === 'number');
      }
      const init = abl.filter((r) => r['name'] === 'init');
      assert.equal(init.length, 2);
      for (const r of init) assert.equal(typeof r['step0_acc'], 'number');

      assert.equal(res.claims.length, 3);
      assert.ok(existsSync(join(dir, 'out', 'results.json')));
      const md = await readFile(join(dir, 'out', 'experiments.md'), 'utf8');
      assert.match(md, /MICRO setting/);
      assert.match(md, /## \(a\) Time to accuracy/);
      for (const f of res.meta.reports) assert.ok(existsSync(f), f);
      assert.ok(res.meta.reports.some((f) => f.endsWith('report-shift.html')));
    },
  );
});
