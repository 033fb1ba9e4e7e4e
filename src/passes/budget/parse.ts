/**
 * The `--budget` spec of quadratize and adapt: `flops=10%` (added FLOPs of the whole model, as
 * a percentage of the original's) or `latency=1.2x` (measured inference time over the
 * original's).
 */

import { UserError } from '../../util/errors.js';

/** A cost budget for the quadratic terms. */
export type QuadBudget =
  | {
      /** Added FLOPs of the quadratic terms, as a fraction of the original model's FLOPs. */
      kind: 'flops';
      fraction: number;
    }
  | {
      /** Measured inference time of the adapted model over the original's. */
      kind: 'latency';
      ratio: number;
    };

/** Parses `flops=P%` or `latency=Fx`; a one-line error naming --budget otherwise. */
export function parseBudget(spec: string): QuadBudget {
  const m = /^\s*(flops|latency)\s*=\s*([0-9]*\.?[0-9]+)\s*(%|x)?\s*$/i.exec(spec);
  const usage = `--budget '${spec}': write flops=P% (e.g. flops=10%) or latency=Fx (e.g. latency=1.2x)`;
  if (!m) throw new UserError(usage);
  const kind = m[1]!.toLowerCase();
  const value = Number(m[2]);
  const unit = m[3]?.toLowerCase();
  if (kind === 'flops') {
    if (unit === 'x') throw new UserError(`${usage}; a FLOPs budget is a percentage`);
    if (!(value > 0)) throw new UserError(`--budget '${spec}': the FLOPs budget must be above 0%`);
    return { kind: 'flops', fraction: value / 100 };
  }
  if (unit === '%') throw new UserError(`${usage}; a latency budget is a factor`);
  if (!(value > 1))
    throw new UserError(
      `--budget '${spec}': the latency budget is a factor above 1 (1.2x: at most 20% slower than the original)`,
    );
  return { kind: 'latency', ratio: value };
}

/** The budget as the user would write it. */
export function describeBudget(b: QuadBudget): string {
  return b.kind === 'flops'
    ? `flops=${+(b.fraction * 100).toPrecision(6)}%`
    : `latency=${b.ratio}x`;
}
