/**
 * Executes an experiment plan: every run through runMethod (the random-init ablation through
 * runMethodFine: finer validation, random init), each in its own run directory under the output directory, with a cache:
 * a run directory holding a finished run of the same specification (experiment-run.json) is
 * reused, not trained again. That is how pretrained models are shared between invocations, and
 * how an interrupted full run continues. Identical runs of one plan (e.g. the ablations' default
 * setting and the shift study's quadratic adaptation) train once.
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { recoverDir, removeAtomic, writeFileAtomic } from '../io/atomic.js';
import type { QuadBudget } from '../passes/budget/parse.js';
import { budgetCandidates, optionsForRanks } from '../passes/budget/candidates.js';
import { placementRanks } from '../passes/budget/plan.js';
import type { QuadratizeOptions } from '../passes/quadratize.js';
import type { EvalSummary, HistoryRecord, RunInfo } from '../io/formats/run-format.js';
import type { ModelSource } from '../workflow/model-source.js';
import { loadModelSource } from '../workflow/model-source.js';
import type { RunOptions } from '../workflow/run.js';
import { runMethod } from '../workflow/run.js';
import type { ExperimentConfig } from './config.js';
import type { BudgetPoint } from './custom-run.js';
import { runMethodFine } from './custom-run.js';
import { chooseLr, epochMeanVal, plateauGainPts, plateauHolds } from './headline.js';
import type { MemeffMeasurement } from './memeff.js';
import { measureMemeffSetting } from './memeff.js';
import type { MemeffSpec, Plan, RunSpec } from './plan.js';
import { archSpec, runSteps } from './plan.js';
import { addStep0, step0Accuracies } from './step0.js';

/** Wall-clock and CPU time of a run as this runner measured it. */
export interface RunTiming {
  /** The whole run: loading data, preparing, training, evaluating, writing files (s). */
  totalWallSeconds: number;
  /** Training only (fit's cumulative wall and process CPU seconds). */
  fitWallSeconds: number;
  fitCpuSeconds: number;
  steps: number;
  /** Examples loaded (train + test), for scaling the overhead in estimates. */
  examples: number;
}

/** What a run left behind, as the analysis reads it. */
export interface RunOutcome {
  spec: RunSpec;
  /** Absolute (or out-relative as given) run directory. */
  dir: string;
  info: RunInfo;
  history: HistoryRecord[];
  eval: EvalSummary;
  timing: RunTiming;
  /** Whether a cached result was used. */
  reused: boolean;
  /** Test accuracy and loss before any training step (init ablation only). */
  step0TestAccuracy?: number;
  step0TestLoss?: number;
  /** The same on the clean (unshifted) test split (init ablation only). */
  step0CleanTestAccuracy?: number;
  /** Validation accuracy before any training step (time-to-accuracy adaptation runs only). */
  step0ValAccuracy?: number;
  /** Test accuracy at each budget (headline adaptation runs). */
  budgets?: BudgetPoint[];
  /** Where a plateau-rule run stopped: epochs, its last gain, whether the rule held. */
  stop?: RunStop;
  /** The learning-rate sweep the run's rates were chosen by (headline finals). */
  sweep?: SweepTrial[];
}

/** Where a run with a plateau rule stopped. */
export interface RunStop {
  epochs: number;
  /** Gain over the last window of epochs, percentage points (null: not measurable). */
  plateauGainPts: number | null;
  /** Whether the plateau rule held (false: stopped by the epoch cap, still rising). */
  converged: boolean;
}

/** One trial of a learning-rate sweep, as recorded. */
export interface SweepTrial {
  factor: number;
  lr: number;
  quadLr: number;
  /** Mean validation accuracy of the trial's last epoch. */
  score: number | null;
  chosen: boolean;
}

/** One memory-efficient-backward measurement's result. */
export interface MemeffOutcome {
  spec: MemeffSpec;
  result: MemeffMeasurement;
  wallSeconds: number;
}

/** Options of {@link executePlan}. */
export interface ExecuteOptions {
  outDir: string;
  config: ExperimentConfig;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** What the cache file of a finished run holds. */
interface CacheRecord {
  fingerprint: string;
  timing: RunTiming;
  step0TestAccuracy?: number;
  step0TestLoss?: number;
  step0CleanTestAccuracy?: number;
  step0ValAccuracy?: number;
  budgets?: BudgetPoint[];
  stop?: RunStop;
}

const CACHE_FILE = 'experiment-run.json';

/** What determines a run's result (not its directory, label or study). */
function fingerprintOf(spec: RunSpec, cfg: ExperimentConfig, baseFp: string | undefined): string {
  const adapterLike = spec.method === 'quadratic-adapt';
  const key = {
    base: 'arch' in spec.base ? spec.base : { pretrained: baseFp },
    method: spec.method,
    data: spec.data,
    epochs: spec.epochs,
    limit: spec.limit,
    testLimit: spec.testLimit,
    valFraction: spec.valFraction ?? 0.1,
    lr: spec.lr,
    quadLr: spec.quadLr,
    seed: spec.seed,
    quad: spec.quad ?? null,
    train: adapterLike ? (spec.train ?? 'adapter') : null,
    init: adapterLike ? (spec.init ?? 'zero') : null,
    evalsPerEpoch: spec.evalsPerEpoch ?? 1,
    lrSchedule: spec.lrSchedule ?? 'cosine',
    budgets: spec.budgets ?? null,
    converge: spec.converge ?? null,
    ...(spec.placement ? { placement: spec.placement } : {}),
    batchSize: cfg.batchSize,
    threads: cfg.threads,
    latencyRuns: cfg.latencyRuns,
    version: 3,
  };
  return createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function readHistory(dir: string): Promise<HistoryRecord[]> {
  const text = await readFile(join(dir, 'history.jsonl'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as HistoryRecord);
}

/** Loads a finished run of the given fingerprint from `dir`, or undefined. */
async function loadCached(
  dir: string,
  fingerprint: string,
): Promise<Omit<RunOutcome, 'spec'> | undefined> {
  const cache = await readJson<CacheRecord>(join(dir, CACHE_FILE));
  if (!cache || cache.fingerprint !== fingerprint) return undefined;
  const info = await readJson<RunInfo>(join(dir, 'run.json'));
  const ev = await readJson<EvalSummary>(join(dir, 'eval.json'));
  if (!info || info.status !== 'done' || !ev) return undefined;
  return {
    dir,
    info,
    eval: ev,
    history: await readHistory(dir),
    timing: cache.timing,
    reused: true,
    step0TestAccuracy: cache.step0TestAccuracy,
    step0TestLoss: cache.step0TestLoss,
    step0CleanTestAccuracy: cache.step0CleanTestAccuracy,
    step0ValAccuracy: cache.step0ValAccuracy,
    budgets: cache.budgets,
    stop: cache.stop,
  };
}

const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(2)}%`);

function fmtElapsed(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

/** Runs (or reuses) every run and measurement of the plan, in order. */
export async function executePlan(
  plan: Plan,
  o: ExecuteOptions,
): Promise<{ runs: RunOutcome[]; memeff: MemeffOutcome[] }> {
  const cfg = o.config;
  const t0 = performance.now();
  const sources = new Map<string, ModelSource>();
  const fingerprints = new Map<string, string>();
  const byFingerprint = new Map<string, RunOutcome>();
  const outcomes: RunOutcome[] = [];
  const total = plan.runs.length + plan.memeff.length;
  let k = 0;
  const head = () => `[${++k}/${total} ${fmtElapsed((performance.now() - t0) / 1000)}]`;
  // What an earlier, killed execution left beside the run directories (half-deleted ones).
  for (const parent of new Set(plan.runs.map((r) => dirname(join(o.outDir, r.dir))))) {
    await recoverDir(parent);
  }

  const sourceFor = async (spec: RunSpec): Promise<ModelSource> => {
    const key =
      'arch' in spec.base ? archSpec(spec.base.arch, spec.base.width) : spec.base.pretrained;
    let s = sources.get(key);
    if (!s) {
      s = await loadModelSource(
        'arch' in spec.base ? key : join(o.outDir, spec.base.pretrained, 'model.onnx'),
      );
      sources.set(key, s);
    }
    return s;
  };

  // Learning-rate trials by sweep group, for the final runs that take their rates from them.
  const trials = new Map<string, RunOutcome[]>();
  for (const planned of plan.runs) {
    if (o.signal?.aborted) throw new Error('interrupted');
    let spec = planned;
    let sweep: SweepTrial[] | undefined;
    if (spec.lrFrom) {
      const ts = trials.get(spec.lrFrom) ?? [];
      if (!ts.length) throw new Error(`${spec.dir}: no learning-rate trials of ${spec.lrFrom} ran`);
      const scored = ts.map((t) => ({
        factor: t.spec.sweepFactor ?? 1,
        lr: t.spec.lr,
        quadLr: t.spec.quadLr,
        score: epochMeanVal(t.history, t.spec.epochs),
      }));
      const best = chooseLr(scored);
      sweep = scored.map((t) => ({ ...t, chosen: t === best }));
      spec = { ...spec, lr: best.lr, quadLr: best.quadLr };
    }
    const baseFp = 'pretrained' in spec.base ? fingerprints.get(spec.base.pretrained) : undefined;
    const fp = fingerprintOf(spec, cfg, baseFp);
    const dir = join(o.outDir, spec.dir);
    fingerprints.set(spec.dir, fp);
    const what = `${spec.study} ${spec.backbone} ${spec.dataName} ${spec.label} seed ${spec.seed}`;
    const same = byFingerprint.get(fp);
    if (same) {
      o.log(`${head()} ${what}: same run as ${same.spec.dir}, reused`);
      const dup: RunOutcome = { ...same, spec, reused: true, sweep };
      await addStep0(dup, await sourceFor(spec), o);
      outcomes.push(dup);
      if (spec.study === 'sweep' && spec.headline) {
        trials.set(spec.headline.group, [...(trials.get(spec.headline.group) ?? []), dup]);
      }
      continue;
    }
    let outcome: RunOutcome | undefined;
    const cached = await loadCached(dir, fp);
    if (cached) {
      outcome = { ...cached, spec };
      await addStep0(outcome, await sourceFor(spec), o);
      o.log(
        `${head()} ${what}: reused ${spec.dir} (test ${pct(cached.eval.accuracy)}, ${cached.timing.fitCpuSeconds.toFixed(1)} CPU-s)`,
      );
    } else {
      // Renamed aside, then deleted: a kill mid-delete must not leave a half-deleted run
      // directory whose cache record survived, which a later run would reuse.
      await removeAtomic(dir);
      o.log(`${head()} ${what}: training (${spec.epochs} epochs, ${spec.limit} examples)…`);
      outcome = await trainOne(spec, dir, fp, await sourceFor(spec), o);
      o.log(
        `    → test ${pct(outcome.eval.accuracy)} (base model ${pct(outcome.eval.base?.accuracy)}), ` +
          `${outcome.timing.fitCpuSeconds.toFixed(1)} CPU-s training, ${outcome.timing.totalWallSeconds.toFixed(1)} s wall`,
      );
    }
    outcome.sweep = sweep;
    byFingerprint.set(fp, outcome);
    outcomes.push(outcome);
    if (spec.study === 'sweep' && spec.headline) {
      trials.set(spec.headline.group, [...(trials.get(spec.headline.group) ?? []), outcome]);
    }
  }

  const memeff: MemeffOutcome[] = [];
  for (const m of plan.memeff) {
    if (o.signal?.aborted) throw new Error('interrupted');
    o.log(`${head()} memory-efficient backward: ${m.setting}…`);
    const w0 = performance.now();
    const result = measureMemeffSetting({
      model: join(o.outDir, m.pretrained, 'model.onnx'),
      rank: m.rank,
      batchSize: m.batchSize,
      steps: m.steps,
      memoryEfficient: m.memoryEfficient,
      threads: cfg.threads,
    });
    const wallSeconds = (performance.now() - w0) / 1000;
    o.log(
      `    → peak RSS ${result.peakRssMiB.toFixed(0)} MiB, step ${result.stepMs.toFixed(0)} ms`,
    );
    memeff.push({ spec: m, result, wallSeconds });
  }
  return { runs: outcomes, memeff };
}

/**
 * A run's quadratic options after its placement (the placement ablation): a FLOPs budget that
 * runMethod plans by usefulness on the training split, or the last-stage / random layers that
 * fit the same cost, resolved here on the pretrained model.
 */
function placed(
  spec: RunSpec,
  source: ModelSource,
): { quad?: QuadratizeOptions; budget?: QuadBudget } {
  const quad = spec.quad ? { seed: spec.seed, ...spec.quad } : undefined;
  const p = spec.placement;
  if (!p) return { quad };
  if (p.kind === 'budget') return { quad, budget: { kind: 'flops', fraction: p.flopsPct / 100 } };
  const { candidates, baseFlops } = budgetCandidates(source.graph, quad ?? {});
  const ranks = placementRanks(candidates, p.kind, (p.flopsPct / 100) * baseFlops, spec.seed);
  return { quad: optionsForRanks(quad ?? {}, ranks) };
}

async function trainOne(
  spec: RunSpec,
  dir: string,
  fingerprint: string,
  source: ModelSource,
  o: ExecuteOptions,
): Promise<RunOutcome> {
  const cfg = o.config;
  const w0 = performance.now();
  const { quad, budget } = placed(spec, source);
  const runOpts: RunOptions = {
    method: spec.method,
    base: source,
    data: spec.data,
    outDir: dir,
    epochs: spec.epochs,
    batchSize: cfg.batchSize,
    lr: spec.lr,
    quadLr: spec.quadLr,
    optimizer: 'adamw',
    quad,
    budget,
    train: spec.train,
    limit: spec.limit,
    testLimit: spec.testLimit,
    valFraction: spec.valFraction,
    seed: spec.seed,
    threads: cfg.threads,
    label: spec.label,
    command: `npm run experiments -- ${cfg.preset === 'full' ? '' : `--${cfg.preset} `}(${spec.dir})`,
    signal: o.signal,
    latency: { batchSizes: [1], runs: cfg.latencyRuns },
    lrSchedule: spec.lrSchedule,
    onProgress: (p) => {
      if (p.kind === 'epoch' && p.record) {
        const r = p.record;
        o.log(
          `    epoch ${Number(r.epoch.toFixed(2))}/${spec.epochs}: loss ${r.loss.toFixed(3)}, val ${pct(r.valAccuracy)}, ${r.cpuSeconds.toFixed(1)} CPU-s`,
        );
      }
    },
  };
  const step0 = await step0Accuracies(spec, source, o);
  const rule = spec.converge;
  const fine =
    spec.init === 'random' || spec.evalsPerEpoch || spec.budgets || rule
      ? await runMethodFine({
          ...runOpts,
          randomInit: spec.init === 'random',
          evalEvery: spec.evalsPerEpoch
            ? Math.max(
                1,
                Math.round(runSteps(spec, cfg.batchSize) / spec.epochs / spec.evalsPerEpoch),
              )
            : undefined,
          testAtEpochs: spec.budgets,
          stopWhen: rule ? (h, e) => plateauHolds(h, e, rule) : undefined,
          // Later runs start from a pretraining run's model.
          saveModel: spec.study === 'pretrain',
          // The headline reads the base model's test accuracy of quadratic adaptation only.
          evalBase: !(spec.headline && spec.method !== 'quadratic-adapt'),
        })
      : undefined;
  const res = fine ?? (await runMethod(runOpts));
  if (res.fit.status !== 'done' || !res.eval) {
    throw new Error(`${spec.dir}: the run ended ${res.fit.status}: ${res.fit.message ?? ''}`);
  }
  const timing: RunTiming = {
    totalWallSeconds: (performance.now() - w0) / 1000,
    fitWallSeconds: res.fit.wallSeconds,
    fitCpuSeconds: res.fit.cpuSeconds,
    steps: fine
      ? Math.round(fine.epochsTrained * (runSteps(spec, cfg.batchSize) / spec.epochs))
      : runSteps(spec, cfg.batchSize),
    examples: spec.limit + spec.testLimit,
  };
  let stop: RunStop | undefined;
  if (rule && fine) {
    const gain = plateauGainPts(fine.fit.history, fine.epochsTrained, rule);
    stop = {
      epochs: fine.epochsTrained,
      plateauGainPts: gain,
      converged: plateauHolds(fine.fit.history, fine.epochsTrained, rule),
    };
    o.log(
      `    stopped after ${stop.epochs} epochs: plateau gain ${gain === null ? '—' : gain.toFixed(2)} pts (${stop.converged ? 'converged' : 'NOT converged: epoch cap'})`,
    );
  }
  const budgets = fine?.budgets.length ? fine.budgets : undefined;
  const cache: CacheRecord = { fingerprint, timing, ...step0, budgets, stop };
  await writeFileAtomic(join(dir, CACHE_FILE), JSON.stringify(cache, null, 2) + '\n');
  return {
    spec,
    dir,
    info: res.info,
    history: res.fit.history,
    eval: res.eval,
    timing,
    reused: false,
    ...step0,
    budgets,
    stop,
  };
}
