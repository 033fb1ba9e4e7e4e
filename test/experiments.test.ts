import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { HistoryRecord } from '../src/io/formats/run-format.js';
import {
  meanStd,
  noiseBand,
  savingPct,
  timeToAccuracy,
  timeToAccuracyRows,
  type TimeToAccuracyRow,
} from '../src/experiments/analysis.js';
import type { AblationRow } from '../src/experiments/analysis.js';
import { claimA, claimB, placementFindings } from '../src/experiments/verdicts.js';
import type { RunOutcome } from '../src/experiments/runner.js';
import {
  chooseLr,
  epochMeanVal,
  headlineVerdict,
  plateauGainPts,
  plateauHolds,
  smallestMatchingBudget,
  trainFlopsPerSample,
} from '../src/experiments/headline.js';
import { buildPlan, type RunSpec } from '../src/experiments/plan.js';
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

  it('plateau rule: the last quarter of epochs (≥ 2) against the best epoch before, from each epoch’s mean reading', () => {
    const rule = { window: 0.25, minGainPts: 0.3, minEpochs: 4, minWindowEpochs: 2 };
    // Two readings per epoch; rising 2 pts per epoch, then flat from epoch 6 on.
    const acc = (e: number) => 0.8 + 0.02 * Math.min(e, 6);
    const h: HistoryRecord[] = [];
    for (let k = 1; k <= 16; k++) h.push(rec(k / 2, k, acc(Math.ceil(k / 2))));
    assert.equal(epochMeanVal(h, 3), acc(3));
    // After 4 epochs: k = 2, max(a3, a4) − max(a1, a2) = 4 pts: still rising.
    assert.ok(Math.abs(plateauGainPts(h, 4, rule)! - 4) < 1e-9);
    assert.equal(plateauHolds(h, 4, rule), false);
    // After 8 epochs: k = 2, max(a7, a8) − max(a1..a6) = 0: converged.
    assert.ok(Math.abs(plateauGainPts(h, 8, rule)!) < 1e-9);
    assert.equal(plateauHolds(h, 8, rule), true);
    // A one-epoch dip while still rising is not a plateau (the first form of the rule said it was).
    const dip = [0.25, 0.49, 0.826, 0.81].map((a, i) => rec(i + 1, i + 1, a));
    assert.ok(Math.abs(plateauGainPts(dip, 4, rule)! - 33.6) < 1e-9);
    assert.equal(plateauHolds(dip, 4, rule), false);
    // A noisy plateau: the last two epochs do not beat the best before them.
    const noisy = [0.23, 0.59, 0.79, 0.84, 0.898, 0.923, 0.906, 0.907].map((a, i) =>
      rec(i + 1, i + 1, a),
    );
    assert.ok(plateauGainPts(noisy, 8, rule)! < 0);
    assert.equal(plateauHolds(noisy, 8, rule), true);
    // Never before minEpochs, even when flat; not measurable without readings.
    const flat = [rec(1, 1, 0.9), rec(2, 2, 0.9), rec(3, 3, 0.9)];
    assert.equal(plateauHolds(flat, 3, rule), false);
    assert.equal(plateauGainPts([], 8, rule), null);
  });

  it('training FLOPs: 3× forward fully trained, 2× forward + adapter for adapter-only', () => {
    assert.equal(
      trainFlopsPerSample({ fullyTrained: true, forwardFlops: 100, adapterFlops: 20 }),
      300,
    );
    assert.equal(
      trainFlopsPerSample({ fullyTrained: false, forwardFlops: 100, adapterFlops: 20 }),
      220,
    );
  });

  it('learning-rate sweep: the best score wins, the first of equals, unscored trials lose', () => {
    const t = (lr: number, score: number | null) => ({ lr, quadLr: 3 * lr, score });
    assert.equal(chooseLr([t(1, 0.5), t(2, 0.7), t(3, 0.6)]).lr, 2);
    assert.equal(chooseLr([t(1, 0.7), t(2, 0.7)]).lr, 1);
    assert.equal(chooseLr([t(1, null), t(2, 0.1)]).lr, 2);
    assert.throws(() => chooseLr([]));
  });

  it('verdict rules: held, held-not-attributable, not-held (saving or accuracy), smallest budget', () => {
    const base = {
      wholeRunSavingPct: 95,
      adaptAcc: 0.9,
      scratchAcc: 0.905,
      band: 0.01,
      scratchConverged: true,
    };
    assert.equal(headlineVerdict({ ...base, controls: [{ acc: 0.85, band: 0.01 }] }), 'held');
    assert.equal(
      headlineVerdict({
        ...base,
        controls: [
          { acc: 0.85, band: 0.01 },
          { acc: 0.895, band: 0.01 },
        ],
      }),
      'held-not-attributable',
    );
    // From scratch not converged: its accuracy is no bar, so nothing holds against it.
    assert.equal(
      headlineVerdict({ ...base, scratchConverged: false, controls: [{ acc: 0.85, band: 0.01 }] }),
      'not-held',
    );
    // Saving below 90%: not held whatever the accuracy.
    assert.equal(headlineVerdict({ ...base, wholeRunSavingPct: 89.9, controls: [] }), 'not-held');
    // Accuracy below from scratch by more than the band.
    assert.equal(headlineVerdict({ ...base, adaptAcc: 0.89, controls: [] }), 'not-held');
    // A control that matches does not rescue a budget that did not hold.
    assert.equal(
      headlineVerdict({ ...base, adaptAcc: 0.8, controls: [{ acc: 0.95, band: 0.01 }] }),
      'not-held',
    );
    const rows = [0.5, 1, 2].map((budget, i) => ({
      budget,
      adaptAcc: [0.85, 0.9, 0.91][i]!,
      scratchAcc: 0.905,
      band: 0.01,
    }));
    assert.equal(smallestMatchingBudget(rows), 1);
    assert.equal(smallestMatchingBudget(rows.slice(0, 1)), null);
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
    const plan = buildPlan(presetConfig('full'), { fashion: false, fashionDir: '/nonexistent' });
    assert.ok(plan.runs.every((r) => !r.data.startsWith('idx:')));
    assert.match(plan.skipped.join(' '), /apt-get install dataset-fashion-mnist/);
    const full = buildPlan(presetConfig('full'), { fashion: true, fashionDir: '/x' });
    const shiftSeeds = new Set(full.runs.filter((r) => r.study === 'shift').map((r) => r.seed));
    assert.ok(shiftSeeds.size >= 3);
  });

  it('the full and gpu plans follow the headline protocol (seeds, budgets, sweeps, arms)', () => {
    for (const preset of ['full', 'gpu'] as const) {
      const cfg = presetConfig(preset);
      const plan = buildPlan(cfg, { fashion: true, fashionDir: '/x' });
      const t2a = plan.runs.filter((r) => r.study === 't2a');
      const groups = new Map<string, RunSpec[]>();
      for (const r of t2a) groups.set(r.lrFrom!, [...(groups.get(r.lrFrom!) ?? []), r]);
      for (const [group, rs] of groups) {
        const seeds = rs.map((r) => r.seed);
        if (group.endsWith('scratch-quadratic')) {
          assert.ok(seeds.length >= 2, group);
          assert.ok(
            rs.every((r) => r.converge && r.lrSchedule === 'constant'),
            group,
          );
        } else {
          assert.ok(seeds.length >= 3, group);
          assert.deepEqual(rs[0]!.budgets, [0.5, 1, 2]);
        }
        // The same number of learning-rate trials for every method.
        const trials = plan.runs.filter((r) => r.study === 'sweep' && r.headline?.group === group);
        assert.equal(trials.length, cfg.timeToAccuracy.sweep.factors.length, group);
      }
      const arms = new Set(t2a.map((r) => `${r.headline!.arm}:${r.dataName}`));
      for (const a of ['A:mnist', 'B:rotate@0.7', 'B:elastic@0.7', 'B:mnist→fashion'])
        assert.ok(arms.has(a), `${preset}: ${a}`);
      // Validation ≥ 5,000 examples; backbones wider than the capacity-starved width 1.
      const t = cfg.timeToAccuracy;
      assert.ok(Math.round(t.limit * t.valFraction) >= 5000);
      assert.ok(cfg.width > 1);
      assert.ok(
        plan.runs
          .filter((r) => 'arch' in r.base)
          .every((r) => 'arch' in r.base && r.base.width === cfg.width),
      );
    }
  });
});

describe('experiments: headline rows from synthetic runs', () => {
  // Forward FLOPs: first-order 100 per sample, quadratic model 120 (adapter term 20).
  const run = (o: {
    dir: string;
    study: RunSpec['study'];
    method: RunSpec['method'];
    key: string;
    seed: number;
    train?: 'adapter' | 'full';
    acc: number;
    history: HistoryRecord[];
    budgets?: { epochs: number; samples: number; acc: number }[];
    stop?: { epochs: number; plateauGainPts: number | null; converged: boolean };
    flops: number;
    baseFlops: number;
    step0Val?: number;
  }): RunOutcome =>
    ({
      spec: {
        dir: o.dir,
        study: o.study,
        backbone: 'convnext',
        base: { arch: 'convnext' },
        method: o.method,
        data: 'mnist',
        dataName: 'mnist',
        epochs: o.stop?.epochs ?? 2,
        limit: 7000,
        testLimit: 2000,
        valFraction: 5000 / 7000,
        lr: 1e-3,
        quadLr: 3e-3,
        seed: o.seed,
        train: o.train,
        label: o.key,
        budgets: o.budgets?.map((b) => b.epochs),
        headline: { arm: 'A', target: 'mnist', group: `A/convnext-mnist/${o.key}` },
      },
      dir: o.dir,
      info: {
        flops: { model: o.flops, base: o.baseFlops },
        params: { trainable: 1, total: 1, base: 1 },
      },
      history: o.history,
      eval: { n: 2000, accuracy: o.acc, base: { accuracy: 0.95 } },
      timing: {
        totalWallSeconds: 1,
        fitWallSeconds: 1,
        fitCpuSeconds: o.history.at(-1)!.cpuSeconds,
        steps: 1,
        examples: 1,
      },
      reused: false,
      step0ValAccuracy: o.step0Val,
      budgets: o.budgets?.map((b) => ({
        epochs: b.epochs,
        step: b.epochs * 10,
        samples: b.samples,
        cpuSeconds: b.samples / 100,
        testAccuracy: b.acc,
        testN: 2000,
      })),
      stop: o.stop,
    }) as unknown as RunOutcome;
  // From scratch: 10 epochs of 640 samples, validation rising to 0.98 and flat from epoch 6.
  const scratchHistory = Array.from({ length: 10 }, (_, i) =>
    rec(i + 1, (i + 1) * 10, Math.min(0.98, 0.9 + 0.016 * (i + 1))),
  );
  const adaptHistory = (vals: number[]) => vals.map((v, i) => rec((i + 1) / 2, (i + 1) * 2, v));
  const outcomes = (
    adapt: number[],
    controls: number,
    adaptedHistory = adaptHistory([0.96, 0.97, 0.975, 0.98]),
  ) => {
    const rs: RunOutcome[] = [
      run({
        dir: 'pretrained/convnext-mnist',
        study: 'pretrain',
        method: 'scratch',
        key: 'pretrain',
        seed: 0,
        acc: 0.95,
        history: scratchHistory.slice(0, 5),
        flops: 100,
        baseFlops: 100,
      }),
    ];
    for (const seed of [0, 1]) {
      rs.push(
        run({
          dir: `s${seed}`,
          study: 't2a',
          method: 'scratch-quadratic',
          key: 'scratch-quadratic',
          seed,
          acc: 0.98,
          history: scratchHistory,
          stop: { epochs: 10, plateauGainPts: 0, converged: true },
          flops: 120,
          baseFlops: 100,
        }),
      );
    }
    for (const seed of [0, 1, 2]) {
      const b = [0.5, 1, 2].map((epochs, i) => ({ epochs, samples: epochs * 640, acc: adapt[i]! }));
      rs.push(
        run({
          dir: `q${seed}`,
          study: 't2a',
          method: 'quadratic-adapt',
          key: 'quadratic-adapt',
          seed,
          train: 'adapter',
          acc: adapt[2]!,
          history: adaptedHistory,
          budgets: b,
          flops: 120,
          baseFlops: 100,
          step0Val: 0.95,
        }),
      );
      const c = [0.5, 1, 2].map((epochs) => ({ epochs, samples: epochs * 640, acc: controls }));
      rs.push(
        run({
          dir: `f${seed}`,
          study: 't2a',
          method: 'fine-tune',
          key: 'fine-tune',
          seed,
          acc: controls,
          history: adaptHistory([0.9, 0.9, 0.9, 0.9]),
          budgets: c,
          flops: 100,
          baseFlops: 100,
        }),
      );
    }
    return rs;
  };

  it('whole-run saving in training FLOPs, the plateau facts, controls and verdicts per budget', () => {
    const rows = timeToAccuracyRows(outcomes([0.9, 0.98, 0.981], 0.5));
    assert.deepEqual(
      rows.map((r) => [r.budget_epochs, r.train]),
      [
        [0.5, 'adapter'],
        [1, 'adapter'],
        [2, 'adapter'],
      ],
    );
    const [r05, r1, r2] = rows as [TimeToAccuracyRow, TimeToAccuracyRow, TimeToAccuracyRow];
    // Scratch: 6400 samples × 3 × 120 FLOPs; adaptation at 1 epoch: 640 × (2 × 120 + 20).
    assert.equal(r1.scratch_train_flops, 6400 * 360);
    assert.equal(r1.adapt_train_flops, 640 * 260);
    assert.ok(Math.abs(r1.whole_run_saving_pct - (1 - (640 * 260) / (6400 * 360)) * 100) < 1e-9);
    // Pretraining (5 epochs, 3 × 100 FLOPs per sample) charged.
    assert.equal(r1.pretrain_train_flops, 3200 * 300);
    assert.ok(
      Math.abs(r1.whole_run_saving_incl_pretrain_pct - (1 - (640 * 260 + 960000) / 2304000) * 100) <
        1e-9,
    );
    assert.equal(r1.scratch_converged, true);
    assert.equal(r1.scratch_plateau_gain_pts, 0);
    assert.deepEqual(r1.seeds, [0, 1, 2]);
    assert.deepEqual(r1.scratch_seeds, [0, 1]);
    assert.equal(r1.controls.fine_tune_acc, 0.5);
    assert.equal(r1.controls.linear_adapter_acc, null);
    // The target is the mean of the last epoch's reading (0.98); adaptation reaches it at 2 epochs.
    assert.equal(r1.target_val_acc, 0.98);
    assert.equal(r1.adapt_flops_to_target, null);
    assert.equal(r2.adapt_flops_to_target, 1280 * 260);
    // 0.5 epoch: 8 pts below from scratch: not held; 1 epoch: as accurate, 92.8% saved: held;
    // 2 epochs: as accurate but only 85.6% saved: not held.
    assert.equal(r05.verdict, 'not-held');
    assert.equal(r1.verdict, 'held');
    assert.ok(r2.whole_run_saving_pct < 90 && r2.adapt_acc >= r2.scratch_acc);
    assert.equal(r2.verdict, 'not-held');
    for (const r of rows) assert.equal(r.smallest_matching_budget_epochs, 1);
    assert.equal(claimA(rows).verdict, 'held');
    // The same with a control as good as the adapted network: not attributable.
    const same = timeToAccuracyRows(outcomes([0.9, 0.98, 0.981], 0.981));
    assert.equal(same[1]!.verdict, 'held-not-attributable');
    assert.equal(claimA(same).verdict, 'held');
    // Adapted accuracy never within the band: not held at any budget.
    const worse = timeToAccuracyRows(outcomes([0.9, 0.91, 0.92], 0.5));
    assert.ok(
      worse.every((r) => r.verdict === 'not-held' && r.smallest_matching_budget_epochs === null),
    );
    assert.equal(claimA(worse).verdict, 'not held');
    // A budget's reading falls on a whole step (0.5 epoch of 31 steps: epoch 0.516); it counts
    // for that budget's time to target.
    const onSteps = [0.516, 1, 1.516, 2].map((e, i) => rec(e, (i + 1) * 2, 0.98));
    const stepped = timeToAccuracyRows(outcomes([0.9, 0.98, 0.981], 0.5, onSteps));
    assert.ok(stepped[0]!.adapt_flops_to_target !== null, 'the 0.516-epoch reading counts for 0.5');
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
        // The headline protocol's keys (issue #13).
        assert.equal(typeof r['budget_epochs'], 'number');
        assert.ok(r['train'] === 'adapter' || r['train'] === 'full');
        assert.ok(Array.isArray(r['seeds']) && (r['seeds'] as unknown[]).length >= 1);
        for (const k of [
          'whole_run_saving_pct',
          'acc_band_pts',
          'adapt_train_flops',
          'scratch_train_flops',
        ])
          assert.equal(typeof r[k], 'number', k);
        assert.ok((r['scratch_train_flops'] as number) > 0);
        assert.equal(typeof r['scratch_converged'], 'boolean');
        assert.ok(
          r['scratch_plateau_gain_pts'] === null ||
            typeof r['scratch_plateau_gain_pts'] === 'number',
        );
        const ctl = r['controls'] as Record<string, unknown>;
        assert.equal(typeof ctl['fine_tune_acc'], 'number');
        assert.equal(typeof ctl['linear_adapter_acc'], 'number');
        assert.ok(['held', 'held-not-attributable', 'not-held'].includes(r['verdict'] as string));
      }
      // Both arms, both modes and every budget of the micro setting.
      assert.deepEqual([...new Set(t2a.map((r) => r['arm']))].sort(), ['A', 'B']);
      assert.deepEqual([...new Set(t2a.map((r) => r['train']))].sort(), ['adapter', 'full']);
      assert.deepEqual([...new Set(t2a.map((r) => r['budget_epochs']))].sort(), [0.5, 1]);
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
      assert.match(md, /## \(a\) The headline claim/);
      // The protocol comes before any result.
      assert.ok(md.indexOf('## Protocol of the headline claim') < md.indexOf('## Verdicts'));
      for (const f of res.meta.reports) assert.ok(existsSync(f), f);
      assert.ok(res.meta.reports.some((f) => f.endsWith('report-shift.html')));
    },
  );
});

describe('experiments: placement study (issue #14)', () => {
  it('the full preset plans all / budget / last-stage / random placement rows for every seed', () => {
    const cfg = presetConfig('full');
    const plan = buildPlan(cfg, { fashion: true, fashionDir: '/x' });
    const rows = plan.runs.filter((r) => r.ablation?.name === 'placement');
    const kinds = new Set(rows.map((r) => r.placement?.kind ?? 'all'));
    assert.deepEqual([...kinds].sort(), ['all', 'budget', 'last-stage', 'random']);
    assert.equal(rows.length, 4 * cfg.ablations.seeds.length);
    assert.ok(rows.every((r) => r.placement === undefined || r.placement.flopsPct === 10));
  });

  it('verdicts follow the written rules', () => {
    const row = (setting: string, acc: number, flops: number): AblationRow => ({
      name: 'placement',
      setting,
      acc,
      acc_std: 0.002,
      seeds: [0, 1, 2],
      flop_overhead_pct: flops,
      latency_ratio: 1 + flops / 100,
      n_test: 1000,
    });
    const keep = placementFindings([
      row('all layers (default)', 0.9, 60),
      row('budget flops=10%', 0.895, 9),
      row('last stage, same cost', 0.8, 9),
      row('random layers, same cost', 0.893, 9),
    ]);
    assert.match(keep[0]!, /KEEPS the accuracy/);
    assert.match(keep[1]!, /last stage.*MATTERS/);
    assert.match(keep[2]!, /random.*NOT SHOWN to matter/);
    const lose = placementFindings([
      row('all layers (default)', 0.95, 60),
      row('budget flops=10%', 0.85, 9),
    ]);
    assert.match(lose[0]!, /LOSES accuracy beyond the noise/);
  });
});
