/**
 * `npm run experiments`: reproduces QuadraNet V2's claims at small scale (see config.ts for the
 * presets, plan.ts for the runs, analysis.ts for the definitions) and writes the results as JSON,
 * markdown and one HTML report per study.
 *
 * ```ts
 * const res = await runExperiments({ preset: 'quick', outDir: 'runs/experiments/quick' });
 * for (const c of res.claims) console.log(c.claim, c.verdict);
 * ```
 */

import { existsSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ensureWritableDir, writeFileAtomic, writeFilesAtomic } from '../io/atomic.js';
import { writeReport } from '../report/index.js';
import { backendSessionOptions } from '../runtime/ort.js';
import { VERSION } from '../version.js';
import type { AblationRow, ShiftRow, TimeToAccuracyRow } from './analysis.js';
import { ablationRows, shiftRows, timeToAccuracyRows } from './analysis.js';
import type { ClaimVerdict } from './verdicts.js';
import { claimA, claimB, claimC, otherFindings } from './verdicts.js';
import type { ExperimentConfig, PresetName } from './config.js';
import { DEFAULT_FASHION_DIR, presetConfig } from './config.js';
import { estimatePlanSeconds } from './estimate.js';
import { renderExperimentsMarkdown } from './markdown.js';
import { buildPlan } from './plan.js';
import type { Study } from './plan.js';
import { executePlan } from './runner.js';

export { PRESETS, presetConfig } from './config.js';
export type { PresetName, ExperimentConfig } from './config.js';

/** Options of {@link runExperiments}. */
export interface ExperimentOptions {
  preset: PresetName;
  /** Output directory: run directories, reports, results.json, experiments.md. */
  outDir: string;
  /** Also write the results JSON here. */
  jsonFile?: string;
  /** Also write the markdown here (e.g. docs/experiments.md). */
  docsFile?: string;
  /** Fashion-MNIST directory (default Debian's /usr/share/datasets/fashion-mnist). */
  fashionDir?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** The command line, recorded in the results. */
  command?: string;
  /** The source revision that ran (e.g. `git describe --always --dirty`), recorded in the results. */
  source?: string;
  /** Override parts of the preset's settings (tests). */
  config?: ExperimentConfig;
}

/** Facts about the invocation, recorded with the results. */
export interface ExperimentMeta {
  preset: PresetName;
  command: string;
  /** The source revision that ran, when the caller knew it (`git describe --always --dirty`). */
  source?: string;
  config: ExperimentConfig;
  started: string;
  finished: string;
  wall_seconds: number;
  study_wall_seconds: Record<Study | 'memeff', number>;
  total_runs: number;
  reused_runs: number;
  skipped: string[];
  out_dir: string;
  reports: string[];
  quadranet: string;
  onnxruntime: string;
  node: string;
  cpu: string;
  cores: number;
  loadavg_start: number[];
  loadavg_end: number[];
  /** Estimated wall seconds of the full preset, from this invocation's timings (not for full). */
  estimate_full_seconds?: number;
  estimate_full_runs?: number;
}

/** The results: the three tables (the `--json` contract), verdicts and facts. */
export interface ExperimentResults {
  time_to_accuracy: TimeToAccuracyRow[];
  shift: ShiftRow[];
  ablations: AblationRow[];
  claims: ClaimVerdict[];
  other_findings: string[];
  meta: ExperimentMeta;
}

/** Whether an MNIST-format directory holds the four IDX files (raw or gzipped). */
export function hasIdxData(dir: string): boolean {
  return [
    'train-images-idx3-ubyte',
    'train-labels-idx1-ubyte',
    't10k-images-idx3-ubyte',
    't10k-labels-idx1-ubyte',
  ].every((f) => existsSync(join(dir, f)) || existsSync(join(dir, `${f}.gz`)));
}

/** Runs the experiments of a preset end to end (see the module comment). */
export async function runExperiments(o: ExperimentOptions): Promise<ExperimentResults> {
  const log = o.log ?? (() => {});
  const t0 = performance.now();
  const started = new Date();
  const loadStart = os.loadavg();
  const cfg = o.config ?? presetConfig(o.preset);
  if (cfg.executionProviders) backendSessionOptions.executionProviders = cfg.executionProviders;
  const fashionDir = o.fashionDir ?? DEFAULT_FASHION_DIR;
  const fashion = hasIdxData(fashionDir);
  const plan = buildPlan(cfg, { fashion, fashionDir });
  for (const s of plan.skipped) log(`note: ${s}`);
  await ensureWritableDir(o.outDir);
  log(
    `experiments (${o.preset}): ${plan.runs.length} training runs and ${plan.memeff.length} memory measurements; output in ${o.outDir}`,
  );
  const { runs, memeff } = await executePlan(plan, {
    outDir: o.outDir,
    config: cfg,
    log,
    signal: o.signal,
  });

  const t2a = timeToAccuracyRows(runs);
  const shift = shiftRows(runs);
  const ablations = ablationRows(runs, memeff);
  const claims = [claimA(t2a), claimB(shift), claimC(ablations, cfg)];

  // One HTML report per study (time to accuracy: one per backbone, so that "compute saved"
  // compares each adaptation only with the quadratic network from scratch of its own backbone).
  const reports: string[] = [];
  const report = async (file: string, dirs: string[], title: string) => {
    const unique = [...new Set(dirs)];
    if (!unique.length) return;
    const out = join(o.outDir, file);
    await writeReport(unique, out, { title });
    reports.push(out);
  };
  for (const b of cfg.timeToAccuracy.backbones) {
    await report(
      `report-time-to-accuracy-${b}.html`,
      runs
        .filter(
          (r) => r.spec.backbone === b && (r.spec.study === 't2a' || r.spec.study === 'pretrain'),
        )
        .filter((r) => cfg.timeToAccuracy.datasets.includes(r.spec.dataName as 'mnist'))
        .map((r) => r.dir),
      `Claim (a), ${b}: quadratic adaptation vs the quadratic network from scratch (${o.preset})`,
    );
  }
  await report(
    'report-shift.html',
    runs.filter((r) => r.spec.study === 'shift').map((r) => r.dir),
    `Claim (b): adapting ${cfg.shift.backbone} (pretrained on MNIST) to shifted data (${o.preset})`,
  );
  await report(
    'report-ablations.html',
    runs.filter((r) => r.spec.study === 'ablation').map((r) => r.dir),
    `Claim (c): ablations on ${cfg.ablations.backbone}, ${cfg.ablations.shift.kind}@${cfg.ablations.shift.strength} (${o.preset})`,
  );

  const studyWall: Record<Study | 'memeff', number> = {
    pretrain: 0,
    t2a: 0,
    shift: 0,
    ablation: 0,
    sweep: 0,
    memeff: memeff.reduce((s, m) => s + m.wallSeconds, 0),
  };
  for (const r of runs) if (!r.reused) studyWall[r.spec.study] += r.timing.totalWallSeconds;
  const meta: ExperimentMeta = {
    preset: o.preset,
    command: o.command ?? `npm run experiments -- --${o.preset}`,
    ...(o.source ? { source: o.source } : {}),
    config: cfg,
    started: started.toISOString(),
    finished: new Date().toISOString(),
    wall_seconds: (performance.now() - t0) / 1000,
    study_wall_seconds: studyWall,
    total_runs: runs.length,
    reused_runs: runs.filter((r) => r.reused).length,
    skipped: plan.skipped,
    out_dir: o.outDir,
    reports,
    quadranet: VERSION,
    onnxruntime: (
      createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }
    ).version,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadavg_start: loadStart,
    loadavg_end: os.loadavg(),
  };
  if (o.preset !== 'full' && o.preset !== 'gpu') {
    const full = presetConfig('full');
    const est = await estimatePlanSeconds(
      buildPlan(full, { fashion, fashionDir }),
      runs,
      memeff,
      full.batchSize,
      full.width,
    );
    meta.estimate_full_seconds = est.seconds;
    meta.estimate_full_runs = est.runs;
  }
  const results: ExperimentResults = {
    time_to_accuracy: t2a,
    shift,
    ablations,
    claims,
    other_findings: otherFindings(ablations),
    meta,
  };
  const json = JSON.stringify(results, null, 2) + '\n';
  const md = renderExperimentsMarkdown(results);
  await writeFilesAtomic(o.outDir, { 'results.json': json, 'experiments.md': md });
  if (o.jsonFile) await writeFileAtomic(o.jsonFile, json);
  if (o.docsFile) await writeFileAtomic(o.docsFile, md);
  return results;
}
