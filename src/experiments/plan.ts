/**
 * The experiment plan: every training run and measurement of a preset, in execution order, as
 * plain data. The runner executes it; the duration estimate of another preset reads it.
 */

import type { QuadratizeOptions } from '../passes/quadratize.js';
import type { RunMethod } from '../report/run-format.js';
import type { AblationSetting, Backbone, CleanData, ExperimentConfig } from './config.js';

/** Which study a run belongs to. */
export type Study = 'pretrain' | 't2a' | 'shift' | 'ablation';

/** One training run of the plan. */
export interface RunSpec {
  /** Run directory, relative to the output directory. */
  dir: string;
  study: Study;
  backbone: Backbone;
  /** The built-in architecture (from-scratch methods) or a pretraining run's `dir`. */
  base: { arch: Backbone } | { pretrained: string };
  method: RunMethod;
  /** Data spec passed to runMethod. */
  data: string;
  /** Short data name for tables (`mnist`, `fashion`, `rotate@0.7`, `mnist→fashion`). */
  dataName: string;
  epochs: number;
  limit: number;
  testLimit: number;
  /** Fraction of `limit` held out for validation (default 0.1, runMethod's). */
  valFraction?: number;
  lr: number;
  quadLr: number;
  seed: number;
  quad?: QuadratizeOptions;
  train?: 'adapter' | 'full';
  /** Validation points per epoch (default 1: runMethod's per-epoch validation). */
  evalsPerEpoch?: number;
  /** `random`: start the quadratic term with all factors random (not runMethod's U = 0). */
  init?: 'zero' | 'random';
  label: string;
  /** Ablation axis and value, for ablation runs. */
  ablation?: { name: string; setting: string };
}

/** One memory-efficient-backward measurement. */
export interface MemeffSpec {
  name: string;
  setting: string;
  backbone: Backbone;
  /** The pretraining run whose model is quadratized. */
  pretrained: string;
  memoryEfficient: boolean;
  batchSize: number;
  steps: number;
  rank: number;
}

/** The whole plan of a preset. */
export interface Plan {
  runs: RunSpec[];
  memeff: MemeffSpec[];
  /** Why parts were left out (e.g. Fashion-MNIST missing). */
  skipped: string[];
}

/** Data spec of a clean data set. */
export function cleanSpec(d: CleanData, fashionDir: string): string {
  return d === 'mnist' ? 'mnist' : `idx:${fashionDir}`;
}

/** The pretraining run directory of a backbone on a clean data set. */
export function pretrainDir(b: Backbone, d: CleanData): string {
  return `pretrained/${b}-${d}`;
}

const fmtLr = (x: number) => x.toExponential(0);

/** Builds the plan of `cfg`. `fashion` false leaves out every Fashion-MNIST run. */
export function buildPlan(
  cfg: ExperimentConfig,
  o: { fashion: boolean; fashionDir: string },
): Plan {
  const runs: RunSpec[] = [];
  const skipped: string[] = [];
  const t = cfg.timeToAccuracy;
  const datasets = t.datasets.filter((d) => d === 'mnist' || o.fashion);
  if (datasets.length < t.datasets.length || (cfg.shift.transferToFashion && !o.fashion)) {
    skipped.push(
      `Fashion-MNIST not found at ${o.fashionDir}: its time-to-accuracy rows and the MNIST→Fashion-MNIST transfer are skipped (install it with \`apt-get install dataset-fashion-mnist\`)`,
    );
  }
  const common = { limit: t.limit, testLimit: t.testLimit, valFraction: t.valFraction, seed: 0 };
  const pretrained = new Set<string>();
  const pretrain = (b: Backbone, d: CleanData) => {
    const dir = pretrainDir(b, d);
    if (pretrained.has(dir)) return;
    pretrained.add(dir);
    runs.push({
      ...common,
      dir,
      study: 'pretrain',
      backbone: b,
      base: { arch: b },
      method: 'scratch',
      data: cleanSpec(d, o.fashionDir),
      dataName: d,
      epochs: t.scratchEpochs,
      lr: cfg.scratchLr,
      quadLr: cfg.quadLr,
      label: `first-order from scratch (pretraining, lr ${fmtLr(cfg.scratchLr)})`,
    });
  };
  for (const b of t.backbones) for (const d of datasets) pretrain(b, d);
  pretrain(cfg.shift.backbone, 'mnist');
  pretrain(cfg.ablations.backbone, 'mnist');

  // Time-to-accuracy: the quadratic network from scratch vs adapting the pretrained network.
  for (const b of t.backbones) {
    for (const d of datasets) {
      const data = cleanSpec(d, o.fashionDir);
      runs.push({
        ...common,
        dir: `t2a/${b}-${d}/scratch-quadratic`,
        study: 't2a',
        backbone: b,
        base: { arch: b },
        method: 'scratch-quadratic',
        data,
        dataName: d,
        epochs: t.scratchEpochs,
        lr: cfg.scratchLr,
        quadLr: cfg.scratchLr,
        quad: { rank: cfg.rank },
        evalsPerEpoch: t.evalsPerEpoch,
        label: `quadratic from scratch r=${cfg.rank}`,
      });
      runs.push({
        ...common,
        dir: `t2a/${b}-${d}/quadratic-adapt`,
        study: 't2a',
        backbone: b,
        base: { pretrained: pretrainDir(b, d) },
        method: 'quadratic-adapt',
        data,
        dataName: d,
        epochs: t.adaptEpochs,
        lr: cfg.adaptLr,
        quadLr: cfg.quadLr,
        quad: { rank: cfg.rank },
        evalsPerEpoch: t.evalsPerEpoch,
        label: `quadratic adaptation r=${cfg.rank}`,
      });
    }
  }

  // Distribution shift: pretrained on clean MNIST, adapted to shifted data.
  const s = cfg.shift;
  const shiftData: { data: string; name: string }[] = s.shifts.map((x) => ({
    data: `mnist:shift=${x.kind},strength=${x.strength}`,
    name: `${x.kind}@${x.strength}`,
  }));
  if (s.transferToFashion && o.fashion) {
    shiftData.push({ data: cleanSpec('fashion', o.fashionDir), name: 'mnist→fashion' });
  }
  const adaptRun = (
    study: Study,
    b: Backbone,
    method: RunMethod,
    sd: { data: string; name: string },
    seed: number,
    sizes: { limit: number; testLimit: number; epochs: number },
    extra: Partial<RunSpec> & { dir: string },
  ): RunSpec => ({
    study,
    backbone: b,
    base: method === 'scratch' ? { arch: b } : { pretrained: pretrainDir(b, 'mnist') },
    method,
    data: sd.data,
    dataName: sd.name,
    seed,
    ...sizes,
    lr: method === 'scratch' ? cfg.scratchLr : cfg.adaptLr,
    quadLr: cfg.quadLr,
    quad:
      method === 'quadratic-adapt' || method === 'linear-adapter' ? { rank: cfg.rank } : undefined,
    label: methodLabel(method, cfg.rank),
    ...extra,
  });
  for (const sd of shiftData) {
    for (const m of s.methods) {
      for (const seed of s.seeds) {
        runs.push(
          adaptRun('shift', s.backbone, m, sd, seed, s, {
            dir: `shift/${slug(sd.name)}/${m}-s${seed}`,
          }),
        );
      }
    }
  }

  // Ablations: one backbone, one shift.
  const a = cfg.ablations;
  const memeff: MemeffSpec[] = [];
  const asd = {
    data: `mnist:shift=${a.shift.kind},strength=${a.shift.strength}`,
    name: `${a.shift.kind}@${a.shift.strength}`,
  };
  for (const set of a.settings) {
    if (set.memeff) {
      memeff.push({
        name: set.name,
        setting: set.setting,
        backbone: a.backbone,
        pretrained: pretrainDir(a.backbone, 'mnist'),
        memoryEfficient: set.memeff.memoryEfficient,
        batchSize: set.memeff.batchSize,
        steps: a.memeffSteps,
        rank: cfg.rank,
      });
      continue;
    }
    for (const seed of a.seeds) {
      runs.push(
        adaptRun('ablation', a.backbone, 'quadratic-adapt', asd, seed, a, {
          dir: `ablations/${slug(set.name)}-${slug(set.setting)}/s${seed}`,
          quad: { rank: cfg.rank, ...set.quad },
          train: set.train ?? 'adapter',
          init: set.init ?? 'zero',
          label: ablationLabel(set),
          ablation: { name: set.name, setting: set.setting },
        }),
      );
    }
  }
  return { runs, memeff, skipped };
}

/** Chart label of a method in the shift study. */
export function methodLabel(m: RunMethod, rank: number): string {
  switch (m) {
    case 'quadratic-adapt':
      return `quadratic adaptation r=${rank}`;
    case 'linear-adapter':
      return 'linear adapter (same budget)';
    case 'fine-tune':
      return 'full fine-tuning';
    case 'head-only':
      return 'head-only';
    case 'scratch':
      return 'first-order from scratch';
    case 'scratch-quadratic':
      return `quadratic from scratch r=${rank}`;
  }
}

function ablationLabel(s: AblationSetting): string {
  return `${s.name}: ${s.setting}`;
}

/** A file-name-safe form of a setting. */
export function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/→/g, '-to-')
    .replace(/[^a-z0-9.@-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Training steps of a run (batches per epoch × epochs; `valFraction` of the examples validate). */
export function runSteps(r: RunSpec, batchSize: number): number {
  const train = r.limit - Math.round(r.limit * (r.valFraction ?? 0.1));
  return Math.floor(train / batchSize) * r.epochs;
}
