/**
 * Reading a classifier's output rows on the host (evaluation): the predicted class and the
 * per-example loss, by what the output is (logits, probabilities, log-probabilities or per-unit
 * sigmoid probabilities), so a softmax-ended model's validation loss is its cross-entropy and not
 * softmax applied twice. One output unit is a binary classifier: class 1 when its score says so.
 */

import type { OutputActivation } from '../passes/output-ending.js';

/** −log p is capped here, as PyTorch's BCELoss clamps its logs at −100 (a p of exactly 0 stays finite). */
const MAX_NEG_LOG = 100;

function negLog(p: number): number {
  return p > 0 ? Math.min(-Math.log(p), MAX_NEG_LOG) : MAX_NEG_LOG;
}

/** ln(1 + eˣ) without overflow. */
function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** How one activation's output rows are read. */
interface ScoreReader {
  /** The score above which a one-unit output predicts class 1. */
  threshold: number;
  /** Loss of the row `s[off .. off+k)` for label `y`. */
  loss(s: ArrayLike<number>, off: number, k: number, y: number): number;
}

/** Binary cross-entropy of per-unit probabilities against the label (one unit: y; k units: one-hot). */
function bceProbs(s: ArrayLike<number>, off: number, k: number, y: number): number {
  let sum = 0;
  for (let c = 0; c < k; c++) {
    const t = k === 1 ? y : c === y ? 1 : 0;
    const p = s[off + c]!;
    sum += t * negLog(p) + (1 - t) * negLog(1 - p);
  }
  return sum / k;
}

/** Each output activation's reader. */
const READERS: Record<OutputActivation, ScoreReader> = {
  none: {
    threshold: 0,
    loss(s, off, k, y) {
      if (k === 1) return softplus(s[off]!) - y * s[off]!;
      let max = -Infinity;
      for (let c = 0; c < k; c++) max = Math.max(max, s[off + c]!);
      let z = 0;
      for (let c = 0; c < k; c++) z += Math.exp(s[off + c]! - max);
      return Math.log(z) + max - s[off + y]!;
    },
  },
  softmax: { threshold: 0.5, loss: (s, off, _k, y) => negLog(s[off + y]!) },
  log_softmax: { threshold: Math.log(0.5), loss: (s, off, _k, y) => -s[off + y]! },
  sigmoid: { threshold: 0.5, loss: bceProbs },
};

/** Predicted class of each row: the largest score, or for one unit whether it passes the activation's threshold. */
export function predictRows(
  scores: ArrayLike<number>,
  rows: number,
  cols: number,
  activation: OutputActivation = 'none',
  out = new Int32Array(rows),
): Int32Array {
  const threshold = READERS[activation].threshold;
  for (let r = 0; r < rows; r++) {
    if (cols === 1) {
      out[r] = scores[r]! > threshold ? 1 : 0;
      continue;
    }
    let best = 0;
    let bv = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = scores[r * cols + c]!;
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[r] = best;
  }
  return out;
}

/** Loss of row `r` for label `y`: cross-entropy for class scores, binary cross-entropy for sigmoid or one-unit outputs. */
export function rowLoss(
  scores: ArrayLike<number>,
  r: number,
  cols: number,
  y: number,
  activation: OutputActivation = 'none',
): number {
  return READERS[activation].loss(scores, r * cols, cols, y);
}
