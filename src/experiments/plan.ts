/**
 * The experiment plan: every training run and measurement of a preset, in execution order, as
 * plain data. The runner executes it; the duration estimate of another preset reads it.
 */

import type { QuadratizeOptions } from '../passes/quadratize.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type {
  AblationSetting,
  Backbone,
  CleanData,
  ExperimentConfig,
  PlacementSpec,
} from './config.js';
import type { PlateauRule } from './headline.js';

/** Which study a run belongs to (`sweep`: a learning-rate trial of the headline study). */
export type Study = 'pretrain' | 't2a' | 'shift' | 'ablation' | 'sweep';

/** The headline study's role of a run (issue #13). */
export interface HeadlineRole {
  /** A: adapted on its pretraining task; B: on a shifted target. */
  arm: 'A' | 'B';
  /** Target data name of the row (`mnist`, `rotate@0.7`, `fashion`). */
  target: string;
  /** The learning-rate sweep group (method × arm × backbone × target). */
  group: string;
}

/** One training run of the plan. */
export interface RunSpec {
  /** Run directory, relative to the output directory. */
  dir: string;
  study: Study;
  backbone: Backbone;
  /** The built-in architecture (from-scratch methods) or a pretraining run's `dir`. */
  base: { arch: Backbone; width?: number } | { pretrained: string };
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
  /** Where the quadratic terms go (placement ablation); default: every default target. */
  placement?: PlacementSpec;
  /** Headline study: arm, target and sweep group. */
  headline?: HeadlineRole;
  /** A learning-rate trial: `lr` and `quadLr` are the base rates × this factor. */
  sweepFactor?: number;
  /** Take `lr` and `quadLr` from the best trial of this sweep group (resolved by the runner). */
  lrFrom?: string;
  /** `constant`: constant learning rate after warm-up (headline study), else cosine. */
  lrSchedule?: 'cosine' | 'constant';
  /** Test accuracy is also measured after these many epochs (adaptation budgets). */
  budgets?: number[];
  /** Stop at the first epoch end where this plateau rule holds (else after `epochs`). */
  converge?: PlateauRule;
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

/** The built-in source of a backbone at the preset's width. */
export function archSpec(b: Backbone, width: number | undefined): string {
  return width === undefined || width === 1 ? `arch:${b}` : `arch:${b}:width=${width}`;
}

/** The pretraining run directory of a backbone on a clean data set. */
export function pretrainDir(b: Backbone, d: CleanData): string {
  return `pretrained/${b}-${d}`;
}

/** The adaptation methods and controls of the headline study, by row key. */
export const HEADLINE_ADAPT = [
  { key: 'quadratic-adapt', method: 'quadratic-adapt', train: 'adapter' },
  { key: 'quadratic-full', method: 'quadratic-adapt', train: 'full' },
  { key: 'fine-tune', method: 'fine-tune', train: undefined },
  { key: 'linear-adapter', method: 'linear-adapter', train: undefined },
] as const satisfies readonly { key: string; method: RunMethod; train?: 'adapter' | 'full' }[];

/** Builds the plan of `cfg`. `fashion` false leaves out every Fashion-MNIST run. */
export function buildPlan(
  cfg: ExperimentConfig,
  o: { fashion: boolean; fashionDir: string },
): Plan {
  const runs: RunSpec[] = [];
  const skipped: string[] = [];
  const t = cfg.timeToAccuracy;
  const datasets = t.datasets.filter((d) => d === 'mnist' || o.fashion);
  if (
    datasets.length < t.datasets.length ||
    ((cfg.shift.transferToFashion || t.transferToFashion) && !o.fashion)
  ) {
    skipped.push(
      `Fashion-MNIST not found at ${o.fashionDir}: its time-to-accuracy rows and the MNIST→Fashion-MNIST transfer are skipped (install it with \`apt-get install dataset-fashion-mnist\`)`,
    );
  }
  const arch = (b: Backbone) => ({ arch: b, width: cfg.width });
  const common = { limit: t.limit, testLimit: t.testLimit, valFraction: t.valFraction };

  /**
   * A learning-rate sweep group: one trial per factor (seed 0, `trialEpochs`), then the final
   * runs, whose rates the runner takes from the best trial. An adaptation trial is the same run
   * as its seed-0 final at that rate, so the runner trains it once.
   */
  const swept = (
    group: string,
    spec: Omit<RunSpec, 'dir' | 'seed' | 'lr' | 'quadLr' | 'study' | 'epochs'>,
    rates: { lr: number; quadLr: number },
    trialEpochs: number,
    finalEpochs: number,
    finals: { dir: string; seed: number; study: Study }[],
    finalExtra: Partial<RunSpec> = {},
  ) => {
    for (const f of t.sweep.factors) {
      runs.push({
        ...spec,
        study: 'sweep',
        dir: `sweep/${group}/lr-x${f.toPrecision(3)}`,
        seed: 0,
        lr: rates.lr * f,
        quadLr: rates.quadLr * f,
        epochs: trialEpochs,
        sweepFactor: f,
        label: `${spec.label}, lr trial ×${f.toPrecision(3)}`,
      });
    }
    for (const fin of finals) {
      runs.push({ ...spec, ...finalExtra, ...fin, ...rates, epochs: finalEpochs, lrFrom: group });
    }
  };

  const pretrained = new Set<string>();
  const pretrain = (b: Backbone, d: CleanData) => {
    const dir = pretrainDir(b, d);
    if (pretrained.has(dir)) return;
    pretrained.add(dir);
    const group = `pretrain/${b}-${d}`;
    swept(
      group,
      {
        ...common,
        backbone: b,
        base: arch(b),
        method: 'scratch',
        data: cleanSpec(d, o.fashionDir),
        dataName: d,
        evalsPerEpoch: t.scratchEvalsPerEpoch,
        lrSchedule: 'constant',
        label: 'first-order from scratch (pretraining)',
        headline: { arm: 'A', target: d, group },
      },
      { lr: cfg.scratchLr, quadLr: cfg.scratchLr },
      t.sweep.scratchEpochs,
      t.pretrainEpochs ?? t.scratchEpochs,
      [{ dir, seed: 0, study: 'pretrain' }],
      { converge: t.plateau },
    );
  };
  for (const b of t.backbones) for (const d of datasets) pretrain(b, d);
  if (!datasets.includes('mnist')) for (const b of t.backbones) pretrain(b, 'mnist');
  pretrain(cfg.shift.backbone, 'mnist');
  pretrain(cfg.ablations.backbone, 'mnist');

  // The headline study (issue #13): arm A adapts on the pretraining task, arm B on a shifted
  // target; each with the converged quadratic network from scratch on the target, quadratic
  // adaptation (adapter + head, and full) and the two first-order controls, all swept alike.
  const cell = (
    arm: 'A' | 'B',
    b: Backbone,
    target: { data: string; name: string },
    source: CleanData,
  ) => {
    const where = `${arm}/${b}-${slug(target.name)}`;
    const role = (key: string) => ({ arm, target: target.name, group: `${where}/${key}` });
    const spec = { ...common, backbone: b, data: target.data, dataName: target.name };
    swept(
      `${where}/scratch-quadratic`,
      {
        ...spec,
        base: arch(b),
        method: 'scratch-quadratic',
        quad: { rank: cfg.rank },
        evalsPerEpoch: t.scratchEvalsPerEpoch,
        lrSchedule: 'constant',
        label: `quadratic from scratch r=${cfg.rank}`,
        headline: role('scratch-quadratic'),
      },
      { lr: cfg.scratchLr, quadLr: cfg.scratchLr },
      t.sweep.scratchEpochs,
      t.scratchEpochs,
      t.scratchSeeds.map((seed) => ({
        dir: `t2a/${where}/scratch-quadratic-s${seed}`,
        seed,
        study: 't2a' as const,
      })),
      { converge: t.plateau },
    );
    for (const m of HEADLINE_ADAPT) {
      const adapterLike = m.method === 'quadratic-adapt' || m.method === 'linear-adapter';
      swept(
        `${where}/${m.key}`,
        {
          ...spec,
          base: { pretrained: pretrainDir(b, source) },
          method: m.method,
          quad: adapterLike ? { rank: cfg.rank } : undefined,
          train: m.train,
          evalsPerEpoch: t.evalsPerEpoch,
          lrSchedule: 'constant',
          budgets: t.budgets,
          label: headlineLabel(m.key, cfg.rank),
          headline: role(m.key),
        },
        { lr: cfg.adaptLr, quadLr: cfg.quadLr },
        t.adaptEpochs,
        t.adaptEpochs,
        t.adaptSeeds.map((seed) => ({
          dir: `t2a/${where}/${m.key}-s${seed}`,
          seed,
          study: 't2a' as const,
        })),
      );
    }
  };
  for (const b of t.backbones) {
    for (const d of datasets) cell('A', b, { data: cleanSpec(d, o.fashionDir), name: d }, d);
    const targets = t.targets.map((x) => ({
      data: `mnist:shift=${x.kind},strength=${x.strength}`,
      name: `${x.kind}@${x.strength}`,
    }));
    if (t.transferToFashion && o.fashion) {
      targets.push({ data: cleanSpec('fashion', o.fashionDir), name: 'mnist→fashion' });
    }
    for (const target of targets) cell('B', b, target, 'mnist');
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
    base: method === 'scratch' ? arch(b) : { pretrained: pretrainDir(b, 'mnist') },
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
          ...(set.placement ? { placement: set.placement } : {}),
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

/** Label of a headline method key (HEADLINE_ADAPT). */
export function headlineLabel(key: string, rank: number): string {
  switch (key) {
    case 'quadratic-adapt':
      return `quadratic adaptation r=${rank} (adapter + head)`;
    case 'quadratic-full':
      return `quadratic adaptation r=${rank} (full: primary term at the lower lr)`;
    case 'linear-adapter':
      return 'first-order low-rank adapter (same budget)';
    default:
      return 'first-order fine-tuning';
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
