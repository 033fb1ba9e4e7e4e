/**
 * The verdicts on the paper's claims and on the placement study, from the result rows of
 * analysis.ts, by the rules docs/experiments.md states before any result.
 */

import type { ExperimentConfig } from './config.js';

/** Mean test accuracies of the controls at a row's budget and seeds (null: not run). */
import type { AblationRow, ShiftRow, TimeToAccuracyRow } from './analysis.js';
import { noiseBand } from './analysis.js';

/** The verdict on one claim: whether it held, and the measured numbers behind it. */
export interface ClaimVerdict {
  claim: 'a' | 'b' | 'c';
  /** The claim, in the paper's words (abridged). */
  statement: string;
  /**
   * `held`, `not held`, `partly` (held on some rows only), `inconclusive` (every difference
   * within the noise band: neither shown nor refuted) or `not measured`.
   */
  verdict: 'held' | 'not held' | 'partly' | 'inconclusive' | 'not measured';
  /** Plain sentences with the measured numbers. */
  details: string[];
}

const p2 = (x: number) => `${(x * 100).toFixed(2)}%`;
const pts = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} pts`;

function verdictOf(held: number, total: number): ClaimVerdict['verdict'] {
  if (total === 0) return 'not measured';
  if (held === total) return 'held';
  return held === 0 ? 'not held' : 'partly';
}

const f1 = (x: number | null) => (x === null ? '—' : `${x.toFixed(1)}%`);

/** One sentence on a headline row (budget × mode). */
function rowSentence(r: TimeToAccuracyRow): string {
  const ctl = [
    r.controls.fine_tune_acc === null ? '' : `fine-tuning ${p2(r.controls.fine_tune_acc)}`,
    r.controls.linear_adapter_acc === null
      ? ''
      : `linear adapter ${p2(r.controls.linear_adapter_acc)}`,
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `${r.train} ${r.budget_epochs} ep: test ${p2(r.adapt_acc)} vs ${p2(r.scratch_acc)} from scratch (${pts(r.adapt_acc - r.scratch_acc)}, band ±${r.acc_band_pts.toFixed(2)} pts); ` +
    `whole-run saving ${f1(r.whole_run_saving_pct)} of training FLOPs (${f1(r.whole_run_cpu_saving_pct)} CPU-s; pretraining charged ${f1(r.whole_run_saving_incl_pretrain_pct)}); ` +
    `to the target ${f1(r.flop_saving_to_target_pct)} (within noise ${f1(r.flop_saving_to_target_within_noise_pct)}); controls ${ctl || '—'} → ${r.verdict}`
  );
}

/**
 * Claim (a), by the headline protocol's rules (headline.ts) on arm A (the paper's setting): a
 * backbone × data set holds when some budget of quadratic adaptation is `held` or
 * `held-not-attributable`; the details say which, the smallest matching budget, and arm B.
 */
export function claimA(rows: readonly TimeToAccuracyRow[]): ClaimVerdict {
  const details: string[] = [];
  const cells = [...new Set(rows.map((r) => `${r.arm}|${r.backbone}|${r.dataset}`))];
  let held = 0;
  let total = 0;
  for (const c of cells) {
    const [arm, backbone, dataset] = c.split('|');
    const rs = rows.filter(
      (r) => r.arm === arm && r.backbone === backbone && r.dataset === dataset,
    );
    const r0 = rs[0]!;
    const best = rs.some((r) => r.verdict === 'held')
      ? 'held'
      : rs.some((r) => r.verdict === 'held-not-attributable')
        ? 'held-not-attributable'
        : 'not-held';
    if (arm === 'A') {
      total++;
      if (best !== 'not-held') held++;
    }
    const smallest = (['adapter', 'full'] as const)
      .map((t) => {
        const x = rs.find((r) => r.train === t);
        if (!x) return '';
        return `${t}: ${x.smallest_matching_budget_epochs === null ? 'no budget matches' : `smallest matching budget ${x.smallest_matching_budget_epochs} ep`}`;
      })
      .filter(Boolean)
      .join('; ');
    details.push(
      `arm ${arm}${arm === 'B' ? " (shifted target; not the paper's setting, no verdict)" : ''}, ${backbone} / ${dataset} — ${best}. From scratch: ${r0.scratch_seeds.length} seed(s), ${r0.scratch_epochs.toFixed(1)} epochs, ${r0.scratch_converged ? 'converged' : 'NOT converged (epoch cap)'} (plateau gain ${r0.scratch_plateau_gain_pts === null ? '—' : r0.scratch_plateau_gain_pts.toFixed(2)} pts), target ${p2(r0.target_val_acc)} validation; pretrained network ${p2(r0.pretrained_val_acc ?? NaN)} validation. ${smallest}. ` +
        rs.map(rowSentence).join('; ') +
        '.',
    );
  }
  return {
    claim: 'a',
    statement:
      'Adapting a pretrained first-order network costs 90–98.4% less training compute than training the quadratic network from scratch, at equal or better accuracy.',
    verdict: verdictOf(held, total),
    details,
  };
}

/** Claim (b): the quadratic term adapts to shift better than first-order fine-tuning. */
export function claimB(rows: readonly ShiftRow[]): ClaimVerdict {
  const shifts = [...new Set(rows.map((r) => r.shift))];
  const details: string[] = [];
  let held = 0;
  let worse = 0;
  let total = 0;
  const stat = (r: ShiftRow) => ({
    mean: r.acc_mean,
    std: r.acc_std,
    n: r.accs.length,
    nTest: r.n_test,
  });
  for (const sh of shifts) {
    const get = (m: string) => rows.find((r) => r.shift === sh && r.method === m);
    const q = get('quadratic-adapt');
    const f = get('fine-tune');
    if (!q || !f) continue;
    total++;
    const d = q.acc_mean - f.acc_mean;
    const band = noiseBand(stat(q), stat(f));
    const better = d > 0;
    // "Better" must be measurable: a difference inside the noise band shows nothing.
    if (d > band) held++;
    if (d < -band) worse++;
    const lin = get('linear-adapter');
    const linText = lin
      ? `; vs the linear adapter of the same budget ${p2(lin.acc_mean)} (${pts(q.acc_mean - lin.acc_mean)}, noise band ±${(noiseBand(stat(q), stat(lin)) * 100).toFixed(2)} pts)`
      : '';
    details.push(
      `${sh}: quadratic adaptation ${p2(q.acc_mean)} vs full fine-tuning ${p2(f.acc_mean)} (${pts(d)}, noise band ±${(band * 100).toFixed(2)} pts: ${Math.abs(d) > band ? (better ? 'better' : 'worse') : 'within noise'})${linText}; ${q.accs.length} seed(s).`,
    );
  }
  return {
    claim: 'b',
    statement:
      'The quadratic term adapts to non-linearity and distribution shift better than first-order fine-tuning.',
    verdict: held === 0 && worse === 0 && total > 0 ? 'inconclusive' : verdictOf(held, total),
    details,
  };
}

/** Claim (c): low rank and atrous kernels keep the cost low; kernel functions add capacity. */
export function claimC(rows: readonly AblationRow[], cfg: ExperimentConfig): ClaimVerdict {
  const details: string[] = [];
  const get = (name: string, setting: string) =>
    rows.find((r) => r.name === name && r.setting === setting);
  const band = (a: AblationRow, b: AblationRow) =>
    noiseBand(
      { mean: a.acc!, std: a.acc_std, n: a.seeds.length, nTest: a.n_test ?? 1 },
      { mean: b.acc!, std: b.acc_std, n: b.seeds.length, nTest: b.n_test ?? 1 },
    );
  const parts: boolean[] = [];
  const ranks = rows.filter((r) => r.name === 'rank');
  if (ranks.length) {
    details.push(
      'rank: ' +
        ranks
          .map(
            (r) =>
              `r=${r.setting}: ${p2(r.acc!)}, +${r.param_overhead_pct!.toFixed(1)}% params, +${r.flop_overhead_pct!.toFixed(1)}% FLOPs, ${r.cpu_ms_per_step!.toFixed(0)} CPU-ms/step`,
          )
          .join('; ') +
        '.',
    );
    const def = ranks.find((r) => r.setting === String(cfg.rank));
    const best = ranks.reduce((a, b) => (b.acc! > a.acc! ? b : a));
    if (def) {
      const ok = best.acc! - def.acc! <= band(def, best);
      parts.push(ok);
      details.push(
        `Cost grows linearly with the rank; the default rank ${cfg.rank} (+${def.flop_overhead_pct!.toFixed(1)}% FLOPs) is ${ok ? 'within the noise band of' : `${((best.acc! - def.acc!) * 100).toFixed(2)} pts below`} the most accurate rank (${best.setting}, +${best.flop_overhead_pct!.toFixed(1)}% FLOPs; band ±${(band(def, best) * 100).toFixed(2)} pts)${ok ? ': low rank keeps the cost low at no measurable loss' : ': here low rank trades accuracy for cost'}.`,
      );
    }
  }
  const atrous = rows.find((r) => r.name === 'kernel' && r.setting.startsWith('atrous'));
  const dense = rows.find((r) => r.name === 'kernel' && r.setting.startsWith('dense'));
  if (atrous && dense) {
    const cheaper =
      atrous.trainable_params! < dense.trainable_params! &&
      atrous.flop_overhead_pct! < dense.flop_overhead_pct!;
    const asGood = dense.acc! - atrous.acc! <= band(atrous, dense);
    parts.push(cheaper && asGood);
    details.push(
      `atrous vs dense quadratic kernels on the 7×7 depthwise convs: ${atrous.trainable_params} vs ${dense.trainable_params} trainable parameters, +${atrous.flop_overhead_pct!.toFixed(1)}% vs +${dense.flop_overhead_pct!.toFixed(1)}% FLOPs, ${atrous.cpu_ms_per_step!.toFixed(0)} vs ${dense.cpu_ms_per_step!.toFixed(0)} CPU-ms/step; accuracy ${p2(atrous.acc!)} vs ${p2(dense.acc!)} (${pts(atrous.acc! - dense.acc!)}, band ±${(band(atrous, dense) * 100).toFixed(2)} pts) — ${cheaper && asGood ? 'cheaper at no measurable loss' : cheaper ? 'cheaper but less accurate' : 'not cheaper'}.`,
    );
  }
  const prod = get('phi', 'product');
  const rbf = get('phi', 'rbf');
  if (prod && rbf) {
    const d = rbf.acc! - prod.acc!;
    const b = band(prod, rbf);
    parts.push(d > b);
    details.push(
      `kernel function: φ = rbf ${p2(rbf.acc!)} vs product ${p2(prod.acc!)} (${pts(d)}, band ±${(b * 100).toFixed(2)} pts) — ${d > b ? 'rbf adds measurable accuracy here' : d > 0 ? 'higher but within noise: no measurable added capacity' : 'no added accuracy here'}.`,
    );
  }
  const low = get('mode', 'lowrank');
  const neu = get('mode', 'neuron');
  if (low && neu) {
    details.push(
      `mode: lowrank ${p2(low.acc!)} with ${low.trainable_params} trainable params vs neuron (QuadraNet V1, full rank) ${p2(neu.acc!)} with ${neu.trainable_params} (${pts(low.acc! - neu.acc!)}).`,
    );
  }
  return {
    claim: 'c',
    statement:
      'Low rank and atrous kernels keep the cost of the quadratic term low; kernel functions add capacity.',
    verdict: verdictOf(parts.filter(Boolean).length, parts.length),
    details,
  };
}

/**
 * Verdicts of the placement study (issue #14; rules in docs/experiments.md, written before the
 * results): the budget plan *keeps the accuracy* when it is within the noise band of every
 * layer's terms (or above), and *usefulness matters* when it beats the last-stage and random
 * placements of the same cost by more than the band.
 */
export function placementFindings(rows: readonly AblationRow[]): string[] {
  const get = (prefix: string) =>
    rows.find((r) => r.name === 'placement' && r.setting.startsWith(prefix) && r.acc !== null);
  const all = get('all');
  const bud = get('budget');
  if (!all || !bud) return [];
  const stats = (r: AblationRow) => ({
    mean: r.acc!,
    std: r.acc_std,
    n: r.seeds.length,
    nTest: r.n_test ?? 1,
  });
  const cost = (r: AblationRow) =>
    `+${r.flop_overhead_pct!.toFixed(1)}% FLOPs` +
    (r.latency_ratio != null ? `, ${r.latency_ratio.toFixed(2)}× inference time at batch 1` : '');
  const band = noiseBand(stats(bud), stats(all));
  const d = bud.acc! - all.acc!;
  const out = [
    `Placement: the ${bud.setting} plan ${p2(bud.acc!)} (${cost(bud)}) vs every layer ${p2(all.acc!)} (${cost(all)}), ${pts(d)} (band ±${(band * 100).toFixed(2)} pts) — ${d >= -band ? 'KEEPS the accuracy at a fraction of the cost' : 'LOSES accuracy beyond the noise'}.`,
  ];
  for (const other of [get('last stage'), get('random')]) {
    if (!other) continue;
    const b2 = noiseBand(stats(bud), stats(other));
    const d2 = bud.acc! - other.acc!;
    out.push(
      `Placement: budget plan ${p2(bud.acc!)} vs ${other.setting} ${p2(other.acc!)} (${cost(other)}), ${pts(d2)} (band ±${(b2 * 100).toFixed(2)} pts) — ${d2 > b2 ? 'usefulness per FLOP MATTERS here' : d2 < -b2 ? `the ${other.setting} placement is BETTER` : 'within noise: usefulness scoring NOT SHOWN to matter here'}.`,
    );
  }
  return out;
}

/** Observations of the ablations that are not one of the three claims. */
export function otherFindings(rows: readonly AblationRow[]): string[] {
  const out: string[] = [...placementFindings(rows)];
  const zero = rows.find((r) => r.name === 'init' && r.setting.startsWith('zero'));
  const rnd = rows.find((r) => r.name === 'init' && r.setting.startsWith('random'));
  if (zero && rnd && zero.step0_acc != null && rnd.step0_acc != null) {
    out.push(
      `Initialisation: at step 0, on the shifted test split, the zero-U quadratic model has accuracy ${p2(zero.step0_acc)} (exactly the pretrained network; loss ${zero.step0_loss?.toFixed(4)}) and the one with A, B and U all random (PyTorch-default scale) ${p2(rnd.step0_acc)} (${pts(rnd.step0_acc - zero.step0_acc)}; loss ${rnd.step0_loss?.toFixed(4)})` +
        (zero.step0_clean_acc != null && rnd.step0_clean_acc != null
          ? `; on the clean test split ${p2(zero.step0_clean_acc)} vs ${p2(rnd.step0_clean_acc)} (${pts(rnd.step0_clean_acc - zero.step0_clean_acc)})`
          : '') +
        `; after training ${p2(zero.acc!)} vs ${p2(rnd.acc!)}. ` +
        (Math.max(
          zero.step0_acc - rnd.step0_acc,
          (zero.step0_clean_acc ?? 0) - (rnd.step0_clean_acc ?? 0),
        ) >= 0.01
          ? 'Random init visibly lowers the starting accuracy; zero U keeps the pretrained function exactly.'
          : 'Random init does not visibly lower the starting accuracy here: at the default init scale the random quadratic term is small next to the pretrained layers.'),
    );
  }
  const ad = rows.find((r) => r.name === 'train' && r.setting.startsWith('adapter'));
  const full = rows.find((r) => r.name === 'train' && r.setting.startsWith('full'));
  if (ad && full) {
    out.push(
      `Adapter-only vs full training: ${p2(ad.acc!)} with ${ad.trainable_params} trainable parameters (${ad.cpu_s!.toFixed(1)} CPU-s) vs ${p2(full.acc!)} with ${full.trainable_params} (${full.cpu_s!.toFixed(1)} CPU-s).`,
    );
  }
  const mem = rows.filter((r) => r.name === 'memeff');
  for (const on of mem.filter((r) => r.setting.startsWith('recompute on'))) {
    const off = mem.find((r) => r.setting === on.setting.replace('recompute on', 'recompute off'));
    if (!off) continue;
    out.push(
      `Memory-efficient backward (${on.setting.replace('recompute on, ', '')}): peak RSS ${on.peak_rss_mib!.toFixed(0)} MiB with recomputation vs ${off.peak_rss_mib!.toFixed(0)} MiB without (${(((on.peak_rss_mib! - off.peak_rss_mib!) / off.peak_rss_mib!) * 100).toFixed(1)}%), step ${on.step_ms!.toFixed(0)} vs ${off.step_ms!.toFixed(0)} ms (${(((on.step_ms! - off.step_ms!) / off.step_ms!) * 100).toFixed(1)}%).`,
    );
  }
  return out;
}
