/**
 * The fair test of the headline claim (issue #13), as pure functions of recorded curves: the
 * plateau rule, the learning-rate choice, training FLOPs, both definitions of saving and the
 * verdict rules. docs/experiments.md states the protocol these implement.
 *
 * - Plateau rule: after epoch E (E ≥ `minEpochs`), the gain of the last `window` of the epochs
 *   is max a(e) over e in (E − k, E] minus max a(e) over e ≤ E − k, k = max(`minWindowEpochs`,
 *   round(window · E)), where a(e) is the mean of the validation readings in epoch (e − 1, e].
 *   The run has converged when the gain is < `minGainPts` points: its last k epochs did not beat
 *   its best before them. (Amended before any verdict: the first form, a(E) − a(E − k) with
 *   k ≥ 1, declared convergence on a one-epoch dip at a constant learning rate, e.g. at epoch 4
 *   of a from-scratch run whose training loss was still halving each epoch.)
 * - Training FLOPs per sample (forward FLOPs F of the trained model, F_q those of its quadratic or
 *   adapter term): fully trained 3·F (forward, input gradient, weight gradient); adapter-only
 *   2·F + F_q (the input-gradient pass still runs back through every frozen layer; only the
 *   adapter's weight gradients are added; the head's are negligible and not counted).
 * - Whole-run saving: 1 − adaptation FLOPs at the budget / FLOPs of the converged from-scratch run
 *   (pretraining not charged). Saving to accuracy: 1 − adaptation FLOPs to first reach the target
 *   / from-scratch FLOPs to first reach it. Saving with pretraining charged: 1 − (pretraining +
 *   adaptation) / from scratch.
 * - Verdict of a budget: `held` when the from-scratch runs converged (plateau rule), the
 *   whole-run saving is ≥ 90% and the adapted test accuracy is ≥ the from-scratch one − the band; `held-not-attributable` when it held and a control
 *   (first-order fine-tuning or the equal-budget linear adapter, same budget and seeds) matches
 *   the adapted accuracy within their band; `not-held` otherwise.
 */

import type { HistoryRecord } from '../io/formats/run-format.js';

/** The plateau rule of convergence (see the module comment). */
export interface PlateauRule {
  /** Fraction of the epochs the gain is measured over (e.g. 0.25: the last quarter). */
  window: number;
  /** Converged when the gain is below this many percentage points. */
  minGainPts: number;
  /** Never converged before this many epochs. */
  minEpochs: number;
  /** The window is at least this many epochs (one epoch's dip is not a plateau). */
  minWindowEpochs: number;
}

/** Mean validation accuracy of the readings in epoch (e − 1, e]; null without readings. */
export function epochMeanVal(history: readonly HistoryRecord[], e: number): number | null {
  const eps = 1e-9;
  const xs = history
    .filter((r) => r.epoch > e - 1 + eps && r.epoch <= e + eps && r.valAccuracy !== undefined)
    .map((r) => r.valAccuracy!);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/**
 * The gain in points of the last `window` of `epochs` epochs over the best epoch before them
 * (null if not measurable: too few epochs, or an epoch without readings).
 */
export function plateauGainPts(
  history: readonly HistoryRecord[],
  epochs: number,
  rule: PlateauRule,
): number | null {
  const k = Math.max(rule.minWindowEpochs, Math.round(rule.window * epochs));
  if (epochs - k < 1) return null;
  const a: number[] = [];
  for (let e = 1; e <= epochs; e++) {
    const v = epochMeanVal(history, e);
    if (v === null) return null;
    a.push(v);
  }
  return (Math.max(...a.slice(epochs - k)) - Math.max(...a.slice(0, epochs - k))) * 100;
}

/** Whether the plateau rule holds after `epochs` whole epochs. */
export function plateauHolds(
  history: readonly HistoryRecord[],
  epochs: number,
  rule: PlateauRule,
): boolean {
  if (epochs < rule.minEpochs) return false;
  const g = plateauGainPts(history, epochs, rule);
  return g !== null && g < rule.minGainPts;
}

/** Training FLOPs per sample (see the module comment). */
export function trainFlopsPerSample(o: {
  /** Every parameter trained (from scratch, fine-tuning, full adaptation). */
  fullyTrained: boolean;
  /** Forward FLOPs per sample of the trained model. */
  forwardFlops: number;
  /** Forward FLOPs per sample of its quadratic / adapter term. */
  adapterFlops: number;
}): number {
  return o.fullyTrained ? 3 * o.forwardFlops : 2 * o.forwardFlops + o.adapterFlops;
}

/** One trial of a learning-rate sweep: its rates and its score (mean of the last readings). */
export interface LrTrial {
  lr: number;
  quadLr: number;
  score: number | null;
}

/** The trial with the highest score (the first of equals; trials without a score lose). */
export function chooseLr<T extends LrTrial>(trials: readonly T[]): T {
  if (!trials.length) throw new Error('chooseLr: no trials');
  let best = trials[0]!;
  for (const t of trials.slice(1)) {
    if (t.score !== null && (best.score === null || t.score > best.score)) best = t;
  }
  return best;
}

/** The verdicts of one budget. */
export type HeadlineVerdict = 'held' | 'held-not-attributable' | 'not-held';

/** The verdict rule (see the module comment); accuracies and bands are fractions. */
export function headlineVerdict(o: {
  wholeRunSavingPct: number;
  adaptAcc: number;
  scratchAcc: number;
  /** Noise band of adaptAcc − scratchAcc. */
  band: number;
  /** Controls at the same budget: mean accuracy and the band of its difference to adaptAcc. */
  controls: { acc: number; band: number }[];
  /** Whether every from-scratch run met the plateau rule (else its accuracy is no bar to match). */
  scratchConverged: boolean;
}): HeadlineVerdict {
  const held =
    o.scratchConverged && o.wholeRunSavingPct >= 90 && o.adaptAcc >= o.scratchAcc - o.band;
  if (!held) return 'not-held';
  return o.controls.some((c) => c.acc >= o.adaptAcc - c.band) ? 'held-not-attributable' : 'held';
}

/** The smallest budget whose adapted accuracy is within the band of from scratch, or null. */
export function smallestMatchingBudget(
  rows: readonly { budget: number; adaptAcc: number; scratchAcc: number; band: number }[],
): number | null {
  const ok = rows.filter((r) => r.adaptAcc >= r.scratchAcc - r.band).map((r) => r.budget);
  return ok.length ? Math.min(...ok) : null;
}
