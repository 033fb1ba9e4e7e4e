/**
 * Estimates how long another preset's plan would take from the timings of runs already made.
 * Each planned run costs its training steps × a wall time per step, plus its work outside
 * training: forward passes over the validation and test examples (a forward pass costs about a
 * third of a train step per example) and a fixed part (loading data, building sessions, writing
 * files: the mean over the measured runs of what their wall time leaves unexplained).
 *
 * The time per step comes from the most similar measured run: same backbone, method and adapter
 * setting; else same backbone and method; else, for a backbone or method not measured, the
 * measured seconds per training FLOP (same method when there is one) × the planned run's
 * training FLOPs per step (3 × forward FLOPs × batch, as run.json's `trainFlopsPerSample`).
 * Rough by nature: step times on a shared machine vary with its load. A run with a plateau rule
 * is counted at its epoch cap (an upper bound: it may stop earlier).
 */

import { accountLayers } from '../passes/accounting.js';
import { prepareMethod } from '../workflow/methods.js';
import { loadModelSource } from '../workflow/model-source.js';
import type { MemeffOutcome, RunOutcome } from './runner.js';
import type { Plan, RunSpec } from './plan.js';
import { archSpec, runSteps } from './plan.js';

/** A key of what makes a train step cost what it costs. */
function costKey(r: RunSpec, coarse: boolean): string {
  const base = `${r.backbone}|${r.method}`;
  if (coarse) return base;
  return `${base}|${JSON.stringify({ ...r.quad, seed: undefined })}|${r.train ?? ''}|${r.init ?? ''}`;
}

/**
 * Examples passed forward outside training steps: validation after every epoch (or
 * `evalsPerEpoch` times), the test split at every budget, and the trained and the base model on
 * the test split.
 */
function forwardExamples(r: RunSpec): number {
  const val = (r.valFraction ?? 0.1) * r.limit * r.epochs * (r.evalsPerEpoch ?? 1);
  return val + (2 + (r.budgets?.length ?? 0)) * r.testLimit;
}

/** Training FLOPs per sample of a planned run's model (3 × forward). */
async function trainFlopsPerSample(r: RunSpec, width: number): Promise<number> {
  const src = await loadModelSource(archSpec(r.backbone, width));
  const m = prepareMethod(r.method, src.graph, { lr: 1e-3, quad: r.quad, seed: 0 }).model;
  const t = accountLayers(m).totals;
  return 3 * (t.base.flops + t.quadratic.flops);
}

/** Estimated wall seconds of `plan`, from `measured` runs (and memeff measurements). */
export async function estimatePlanSeconds(
  plan: Plan,
  measured: readonly RunOutcome[],
  memeff: readonly MemeffOutcome[],
  batchSize: number,
  /** Width of the planned runs' backbones (measured runs at another width scale by FLOPs). */
  width = 1,
): Promise<{ seconds: number; runs: number; byFlops: number }> {
  const usable = measured.filter((m) => m.timing.steps > 0);
  const widthOf = (r: RunSpec) => ('arch' in r.base ? (r.base.width ?? 1) : undefined);
  const measuredWidth = usable.map((m) => widthOf(m.spec)).find((w) => w !== undefined) ?? 1;
  const fine = new Map<string, RunOutcome[]>();
  const coarse = new Map<string, RunOutcome[]>();
  for (const m of usable) {
    for (const [map, key] of [
      [fine, costKey(m.spec, false)],
      [coarse, costKey(m.spec, true)],
    ] as const) {
      map.set(key, [...(map.get(key) ?? []), m]);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  const stepOf = (rs: readonly RunOutcome[]) =>
    mean(rs.map((r) => r.timing.fitWallSeconds / r.timing.steps));
  const perFlop = (rs: readonly RunOutcome[]) =>
    mean(
      rs
        .filter((r) => (r.info.trainFlopsPerSample ?? 0) > 0)
        .map(
          (r) =>
            r.timing.fitWallSeconds / r.timing.steps / (r.info.trainFlopsPerSample! * batchSize),
        ),
    );
  const forwardCost = (stepSeconds: number, r: RunSpec) =>
    ((stepSeconds / batchSize) * forwardExamples(r)) / 3;
  const fixed = mean(
    usable.map((r) =>
      Math.max(
        0,
        r.timing.totalWallSeconds -
          r.timing.fitWallSeconds -
          forwardCost(r.timing.fitWallSeconds / r.timing.steps, r.spec),
      ),
    ),
  );
  let seconds = 0;
  let byFlops = 0;
  const seen = new Set<string>();
  for (const r of plan.runs) {
    // Identical runs train once (the runner reuses them).
    const id = JSON.stringify({ ...r, dir: '', label: '', study: '', ablation: undefined });
    if (seen.has(id)) continue;
    seen.add(id);
    // Another width than measured: scale by training FLOPs, not by a measured step time.
    const like =
      width === measuredWidth
        ? (fine.get(costKey(r, false)) ?? coarse.get(costKey(r, true)))
        : undefined;
    let step: number;
    if (like) {
      step = stepOf(like);
    } else {
      byFlops++;
      const sameMethod = usable.filter((m) => m.spec.method === r.method);
      step =
        perFlop(sameMethod.length ? sameMethod : usable) *
        (await trainFlopsPerSample(r, width)) *
        batchSize;
    }
    // Identical adaptation trials and seed-0 finals train once (the runner reuses them).
    const sameAsTrial = r.lrFrom && r.seed === 0 && r.budgets !== undefined;
    if (sameAsTrial) continue;
    seconds += runSteps(r, batchSize) * step + forwardCost(step, r) + fixed;
  }
  const memeffMean =
    memeff.length > 0 ? memeff.reduce((s, m) => s + m.wallSeconds, 0) / memeff.length : 10;
  for (const m of plan.memeff) seconds += memeffMean * Math.max(1, m.batchSize / 64);
  return { seconds, runs: seen.size, byFlops };
}
