/**
 * Settings of `npm run experiments` (scripts/experiments.ts): the small-scale reproduction of
 * QuadraNet V2's claims. Three presets share one plan and differ only in sizes:
 *
 * - `micro`: a smoke setting for the test suite (seconds; numbers meaningless);
 * - `quick`: < 10 minutes on a 2-core machine; one seed everywhere;
 * - `full`: < 3 hours on a 2-core machine; three seeds for the shift study and the ablations.
 *
 * Every learning rate and strength below was fixed before the experiments were run, from the
 * CLI's defaults (adaptation: lr 1e-3, quadratic lr 3e-3) and one check that the from-scratch
 * networks train at all at 5e-3; none was changed to make a claim hold.
 */

import type { QuadratizeOptions } from '../passes/quadratize.js';

/** Preset names. */
export const PRESETS = ['micro', 'quick', 'full'] as const;
/** A preset name. */
export type PresetName = (typeof PRESETS)[number];

/** Built-in first-order backbones studied (`mlp` only in the micro smoke setting). */
export type Backbone = 'resnet' | 'convnext' | 'mlp';

/** A clean data set of the study. */
export type CleanData = 'mnist' | 'fashion';

/** Where Debian's `dataset-fashion-mnist` installs Fashion-MNIST. */
export const DEFAULT_FASHION_DIR = '/usr/share/datasets/fashion-mnist';

/** One ablation setting: a name (the axis), a setting (the value) and what it changes. */
export interface AblationSetting {
  /** The axis, e.g. `rank`, `kernel`, `phi`, `mode`, `init`, `train`, `memeff`. */
  name: string;
  /** The value on that axis, e.g. `8`, `atrous 3x3 d3`. */
  setting: string;
  /** Quadratize options (merged over the default rank 4, product, lowrank). */
  quad?: QuadratizeOptions;
  /** `full`: train base + quadratic term; default adapter (+ head). */
  train?: 'adapter' | 'full';
  /** `random`: both factors random (U ≠ 0) at step 0 instead of U = 0. */
  init?: 'zero' | 'random';
  /** Memory-efficient backward measurement instead of a training run (batch size). */
  memeff?: { memoryEfficient: boolean; batchSize: number };
}

/** Sizes and settings of one preset. */
export interface ExperimentConfig {
  preset: PresetName;
  batchSize: number;
  threads: number;
  /** Learning rate of every from-scratch run (pretraining and the quadratic from scratch). */
  scratchLr: number;
  /** Adaptation methods: first-order lr (head, fine-tuning) and quadratic/adapter lr. */
  adaptLr: number;
  quadLr: number;
  /** Rank of the default quadratic term. */
  rank: number;
  /** Inference-latency runs recorded in eval.json (batch 1). */
  latencyRuns: number;
  timeToAccuracy: {
    backbones: Backbone[];
    datasets: CleanData[];
    /** Training examples (before the validation split) and test examples. */
    limit: number;
    testLimit: number;
    /** Fraction of `limit` held out for validation (the time-to-accuracy target). */
    valFraction: number;
    /** Epochs of pretraining (first-order from scratch) and of the quadratic from scratch. */
    scratchEpochs: number;
    /** Epochs of quadratic adaptation. */
    adaptEpochs: number;
    /** Validation points per epoch of the quadratic-from-scratch and adaptation runs. */
    evalsPerEpoch: number;
  };
  shift: {
    backbone: Backbone;
    /** Shifts of MNIST (kind, strength) plus `fashion` (MNIST → Fashion-MNIST). */
    shifts: { kind: string; strength: number }[];
    transferToFashion: boolean;
    methods: ('quadratic-adapt' | 'fine-tune' | 'linear-adapter' | 'head-only' | 'scratch')[];
    seeds: number[];
    limit: number;
    testLimit: number;
    epochs: number;
  };
  ablations: {
    backbone: Backbone;
    shift: { kind: string; strength: number };
    seeds: number[];
    limit: number;
    testLimit: number;
    epochs: number;
    settings: AblationSetting[];
    /** Train steps timed per memory-efficient measurement. */
    memeffSteps: number;
  };
}

/** The ablation grid (the default setting is rank 4, product, lowrank, zero init, adapter). */
export function ablationGrid(o: {
  ranks: number[];
  memeffBatches: number[];
  /** Also a plain 3×3 (dilation 1) quadratic kernel on the 7×7 depthwise convs. */
  localKernel: boolean;
}): AblationSetting[] {
  const noStem = { exclude: ['^stem$'] };
  return [
    ...o.ranks.map((r) => ({ name: 'rank', setting: String(r), quad: { rank: r } })),
    { name: 'kernel', setting: 'atrous 3x3 d3 (default)', quad: { ...noStem } },
    { name: 'kernel', setting: 'dense 7x7 d1', quad: { ...noStem, kernelSize: 7, dilation: 1 } },
    ...(o.localKernel
      ? [
          {
            name: 'kernel',
            setting: 'local 3x3 d1',
            quad: { ...noStem, kernelSize: 3, dilation: 1 },
          },
        ]
      : []),
    { name: 'phi', setting: 'product', quad: {} },
    { name: 'phi', setting: 'rbf', quad: { phi: 'rbf' } },
    { name: 'mode', setting: 'lowrank', quad: {} },
    { name: 'mode', setting: 'neuron', quad: { mode: 'neuron' } },
    { name: 'init', setting: 'zero U (default)', init: 'zero' },
    { name: 'init', setting: 'random A, B, U', init: 'random' },
    { name: 'train', setting: 'adapter + head (default)', train: 'adapter' },
    { name: 'train', setting: 'full (base + quadratic)', train: 'full' },
    ...o.memeffBatches.flatMap((b) => [
      {
        name: 'memeff',
        setting: `recompute on, batch ${b}`,
        memeff: { memoryEfficient: true, batchSize: b },
      },
      {
        name: 'memeff',
        setting: `recompute off, batch ${b}`,
        memeff: { memoryEfficient: false, batchSize: b },
      },
    ]),
  ];
}

const SHIFTS = [
  { kind: 'contrast', strength: 0.7 },
  { kind: 'gamma', strength: 0.7 },
  { kind: 'elastic', strength: 0.7 },
  { kind: 'rotate', strength: 0.7 },
];
const ALL_METHODS: ExperimentConfig['shift']['methods'] = [
  'quadratic-adapt',
  'fine-tune',
  'linear-adapter',
  'head-only',
  'scratch',
];

/** The settings of a preset. */
export function presetConfig(preset: PresetName): ExperimentConfig {
  const common = {
    preset,
    batchSize: 64,
    threads: 2,
    scratchLr: 5e-3,
    adaptLr: 1e-3,
    quadLr: 3e-3,
    rank: 4,
  };
  if (preset === 'micro') {
    return {
      ...common,
      latencyRuns: 2,
      timeToAccuracy: {
        backbones: ['mlp'],
        datasets: ['mnist'],
        limit: 150,
        testLimit: 50,
        valFraction: 0.2,
        scratchEpochs: 1,
        adaptEpochs: 1,
        evalsPerEpoch: 2,
      },
      shift: {
        backbone: 'mlp',
        shifts: [{ kind: 'rotate', strength: 0.7 }],
        transferToFashion: false,
        methods: ['quadratic-adapt'],
        seeds: [0],
        limit: 150,
        testLimit: 50,
        epochs: 1,
      },
      ablations: {
        backbone: 'mlp',
        shift: { kind: 'rotate', strength: 0.7 },
        seeds: [0],
        limit: 150,
        testLimit: 50,
        epochs: 1,
        settings: ablationGrid({ ranks: [], memeffBatches: [], localKernel: false }).filter(
          (s) => s.name === 'init',
        ),
        memeffSteps: 2,
      },
    };
  }
  if (preset === 'quick') {
    // MNIST only in (a): the Fashion-MNIST rows are in the full setting.
    return {
      ...common,
      latencyRuns: 3,
      timeToAccuracy: {
        backbones: ['resnet', 'convnext'],
        datasets: ['mnist'],
        limit: 2500,
        testLimit: 1000,
        valFraction: 0.2,
        scratchEpochs: 8,
        adaptEpochs: 2,
        evalsPerEpoch: 4,
      },
      shift: {
        backbone: 'convnext',
        shifts: SHIFTS,
        transferToFashion: true,
        methods: ALL_METHODS,
        seeds: [0],
        limit: 800,
        testLimit: 1000,
        epochs: 3,
      },
      ablations: {
        backbone: 'convnext',
        shift: { kind: 'rotate', strength: 0.7 },
        seeds: [0],
        limit: 800,
        testLimit: 1000,
        epochs: 3,
        settings: ablationGrid({
          ranks: [1, 2, 4, 8, 16],
          memeffBatches: [64],
          localKernel: false,
        }),
        memeffSteps: 8,
      },
    };
  }
  return {
    ...common,
    latencyRuns: 20,
    timeToAccuracy: {
      backbones: ['resnet', 'convnext'],
      datasets: ['mnist', 'fashion'],
      limit: 10000,
      testLimit: 10000,
      valFraction: 0.1,
      scratchEpochs: 10,
      adaptEpochs: 3,
      evalsPerEpoch: 4,
    },
    shift: {
      backbone: 'convnext',
      shifts: SHIFTS,
      transferToFashion: true,
      methods: ALL_METHODS,
      seeds: [0, 1, 2],
      limit: 4000,
      testLimit: 5000,
      epochs: 3,
    },
    ablations: {
      backbone: 'convnext',
      shift: { kind: 'rotate', strength: 0.7 },
      seeds: [0, 1, 2],
      limit: 4000,
      testLimit: 5000,
      epochs: 3,
      settings: ablationGrid({
        ranks: [1, 2, 4, 8, 16],
        memeffBatches: [64, 256],
        localKernel: true,
      }),
      memeffSteps: 6,
    },
  };
}
