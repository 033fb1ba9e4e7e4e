import type { Graph } from '../ir/graph.js';
import { quadParamNames } from '../passes/quadratic-spec.js';
import type { QuadratizeOptions } from '../passes/quadratize.js';
import { quadratize } from '../passes/quadratize.js';
import { matchLinearBudget } from '../passes/linear-budget.js';
import { headParams, reinitialize } from '../passes/reinit.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type { TrainGroup } from '../runtime/trainer.js';
import { learnableParams } from './params.js';

/** How a method trains, beyond the shared optimizer settings. */
export interface MethodOptions {
  /** Learning rate of first-order parameters. */
  lr: number;
  /** Learning rate of quadratic (adapter) parameters (default: `lr`). */
  quadLr?: number;
  /** Options of the quadratic term (rank, φ, atrous, targets...). */
  quad?: QuadratizeOptions;
  /** quadratic-adapt: train the adapter only (default) or the whole network. */
  train?: 'adapter' | 'full';
  /**
   * Adapter methods: also train the classifier head (default true), as adapter libraries do for
   * classification (PEFT's modules_to_save): a new data distribution usually needs a new head.
   */
  trainHead?: boolean;
  /** Seed of re-initialisation and of new factors. */
  seed: number;
}

/** A method made concrete: the model to train, what trains at which rate, and BatchNorm mode. */
export interface PreparedMethod {
  model: Graph;
  groups: TrainGroup[];
  batchNorm: 'train' | 'frozen';
  /** Whether the trained model carries a quadratic/linear adapter (adapter files are written). */
  hasAdapter: boolean;
}

/** The classifier head's first-order parameters (not its quadratic ones, if it has any). */
function headGroup(model: Graph, o: MethodOptions): TrainGroup {
  const q = new Set(quadParamNames(model));
  return { name: 'head', params: headParams(model).filter((p) => !q.has(p)), lr: o.lr };
}

type Preparer = (base: Graph, o: MethodOptions) => PreparedMethod;

/** Each method's preparation, keyed by method name (see RunMethod). */
const METHODS: Record<RunMethod, Preparer> = {
  'quadratic-adapt': (base, o) => {
    const model = quadratize(base, { seed: o.seed, ...o.quad }).graph;
    const groups: TrainGroup[] = [
      { name: 'quadratic', params: quadParamNames(model), lr: o.quadLr ?? o.lr },
    ];
    if (o.train === 'full') groups.push({ name: 'base', params: learnableParams(base), lr: o.lr });
    else if (o.trainHead !== false) groups.push(headGroup(model, o));
    // Adapter-only training keeps the pretrained function's statistics, as the paper does.
    return { model, groups, batchNorm: o.train === 'full' ? 'train' : 'frozen', hasAdapter: true };
  },
  'linear-adapter': (base, o) => {
    const model = quadratize(base, {
      seed: o.seed,
      ...matchLinearBudget(base, { seed: o.seed, ...o.quad }),
    }).graph;
    const groups: TrainGroup[] = [
      { name: 'adapter', params: quadParamNames(model), lr: o.quadLr ?? o.lr },
    ];
    if (o.trainHead !== false) groups.push(headGroup(model, o));
    return { model, groups, batchNorm: 'frozen', hasAdapter: true };
  },
  'fine-tune': (base, o) => ({
    model: base,
    groups: [{ name: 'all', params: learnableParams(base), lr: o.lr }],
    batchNorm: 'train',
    hasAdapter: false,
  }),
  'head-only': (base, o) => ({
    model: base,
    groups: [{ name: 'head', params: headParams(base), lr: o.lr }],
    batchNorm: 'frozen',
    hasAdapter: false,
  }),
  scratch: (base, o) => {
    const model = reinitialize(base, { seed: o.seed });
    return {
      model,
      groups: [{ name: 'all', params: learnableParams(model), lr: o.lr }],
      batchNorm: 'train',
      hasAdapter: false,
    };
  },
  'scratch-quadratic': (base, o) => {
    const model = reinitialize(quadratize(base, { seed: o.seed, ...o.quad }).graph, {
      seed: o.seed,
    });
    const q = quadParamNames(model);
    const groups: TrainGroup[] = [
      { name: 'base', params: learnableParams(model).filter((p) => !q.includes(p)), lr: o.lr },
      { name: 'quadratic', params: q, lr: o.quadLr ?? o.lr },
    ];
    return { model, groups, batchNorm: 'train', hasAdapter: false };
  },
};

/** The methods a run can use. */
export const METHOD_NAMES = Object.keys(METHODS) as RunMethod[];

/** Prepares `base` for training with `method`. */
export function prepareMethod(method: RunMethod, base: Graph, o: MethodOptions): PreparedMethod {
  return METHODS[method](base, o);
}

/** The methods whose model carries quadratic (or the linear control's low-rank) terms. */
export const QUADRATIC_METHODS: readonly RunMethod[] = [
  'quadratic-adapt',
  'scratch-quadratic',
  'linear-adapter',
];
