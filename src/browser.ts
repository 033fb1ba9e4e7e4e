/**
 * The browser entry of quadranet, bundled by `scripts/build-browser.ts` into
 * `dist/browser/quadranet.mjs` (WebAssembly) and `dist/browser/quadranet.webgpu.mjs` (WebGPU, with
 * WebAssembly for the operators WebGPU lacks). Sessions run on onnxruntime-web there: the bundle
 * aliases `onnxruntime-node` to it. Nothing here may import a Node built-in (the build fails if
 * one is pulled in), and nothing here needs the DOM, so it also type-checks and runs in Node.
 */
import type { Dataset } from './data/dataset.js';
import { batches, createDataset } from './data/dataset.js';
import { fitLoop } from './runtime/fit-loop.js';
import { defaultSchedule } from './runtime/schedule.js';
import type { Graph } from './ir/graph.js';
import type { QuadratizeOptions } from './passes/quadratize.js';
import type { SessionOptions } from './runtime/session.js';
import { Session } from './runtime/session.js';
import type { EvalResult } from './runtime/trainer.js';
import { Trainer, evaluateSession } from './runtime/trainer.js';
import { backendSessionOptions, ort } from './runtime/ort.js';
import { prepareMethod } from './workflow/methods.js';
import { Rng } from './util/random.js';

export { decodeModel, encodeModel, OnnxFormatError } from './ir/onnx.js';
export type { Graph } from './ir/graph.js';
export type { Tensor, DType } from './ir/tensor.js';
export { quadratize, quadParamNames } from './passes/quadratize.js';
export type { QuadratizeOptions, QuadratizeResult } from './passes/quadratize.js';
export { headParams } from './passes/reinit.js';
export { createDataset, batches, split, subset } from './data/dataset.js';
export type { Dataset, Batch } from './data/dataset.js';
export { Session } from './runtime/session.js';
export type { HostTensor, SessionOptions } from './runtime/session.js';
export { Trainer, evaluateSession, argmaxRows } from './runtime/trainer.js';
export type { TrainerOptions, StepResult, EvalResult } from './runtime/trainer.js';
export { measureLatency, classificationMetrics } from './workflow/evaluate.js';
export { ort };

/** Where and how onnxruntime-web runs. */
export interface BackendOptions {
  /**
   * URL prefix (ending in `/`) of onnxruntime-web's `.wasm`/`.mjs` files. Default: onnxruntime-web
   * looks next to the bundle, where `scripts/build-browser.ts` copies them.
   */
  wasmPaths?: string;
  /**
   * WebAssembly threads. More than 1 needs a cross-origin-isolated page (COOP/COEP headers);
   * onnxruntime-web falls back to 1 otherwise. Default: onnxruntime-web's choice.
   */
  numThreads?: number;
  /**
   * `wasm` (default) or `webgpu`; `webgpu` needs the WebGPU bundle (`quadranet.webgpu.mjs`) and
   * runs the operators WebGPU lacks on WebAssembly.
   */
  device?: 'wasm' | 'webgpu';
}

/** Configures onnxruntime-web for every session created afterwards (browser only). */
export function configureBackend(o: BackendOptions = {}): void {
  if (o.wasmPaths !== undefined) ort.env.wasm.wasmPaths = o.wasmPaths;
  if (o.numThreads !== undefined) ort.env.wasm.numThreads = o.numThreads;
  if (o.device !== undefined)
    backendSessionOptions.executionProviders =
      o.device === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'];
}

/** Images and labels as a quadranet dataset (images NCHW float32 in [0, 1]). */
export function datasetFromImages(
  images: readonly Float32Array[],
  labels: readonly number[],
  shape: [c: number, h: number, w: number],
  numClasses: number,
  name = 'images',
): Dataset {
  const size = shape[0] * shape[1] * shape[2];
  const all = new Float32Array(images.length * size);
  images.forEach((im, i) => {
    if (im.length !== size)
      throw new Error(`image ${i} has ${im.length} values, expected ${size} (${shape.join('×')})`);
    all.set(im, i * size);
  });
  return createDataset({
    name,
    images: all,
    labels: Int32Array.from(labels),
    shape,
    numClasses,
  });
}

/** How far two models' outputs are apart on the same inputs. */
export interface OutputComparison {
  /** Largest absolute difference over every output value. */
  maxAbsDiff: number;
  /** Largest absolute output value of the reference model. */
  maxAbs: number;
  /** `maxAbsDiff / maxAbs`: DESIGN.md §3 requires ≤ 1e-6 for a freshly quadratized model. */
  relative: number;
}

/** Runs `model` and `reference` on the images of `ds` and compares their first outputs. */
export async function compareOutputs(
  model: Graph,
  reference: Graph,
  ds: Dataset,
  session?: SessionOptions,
): Promise<OutputComparison> {
  const [a, b] = await Promise.all([model, reference].map((g) => Session.create(g, session)));
  try {
    let maxAbsDiff = 0;
    let maxAbs = 0;
    for (const batch of batches(ds, { batchSize: 64 })) {
      const run = async (s: Session, g: Graph) => {
        const x = { dtype: 'float32' as const, dims: [batch.size, ...ds.shape], data: batch.x };
        const out = await s.run({ [g.inputs[0]!.name]: x }, [g.outputs[0]!.name]);
        return out[g.outputs[0]!.name]!.data as Float32Array;
      };
      const ya = await run(a!, model);
      const yb = await run(b!, reference);
      for (let i = 0; i < yb.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(yb[i]!));
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ya[i]! - yb[i]!));
      }
    }
    return { maxAbsDiff, maxAbs, relative: maxAbs > 0 ? maxAbsDiff / maxAbs : maxAbsDiff };
  } finally {
    await a!.release();
    await b!.release();
  }
}

/** Accuracy and mean cross-entropy of a classifier on a dataset. */
export async function evaluateModel(
  model: Graph,
  ds: Dataset,
  session?: SessionOptions,
): Promise<EvalResult> {
  const s = await Session.create(model, session);
  try {
    return await evaluateSession(s, model, ds, 64);
  } finally {
    await s.release();
  }
}

/** Settings of `adapt` (QuadraNet V2 quadratic adaptation, as `quadranet adapt`). */
export interface AdaptOptions {
  /** Rank of the quadratic terms (default 4). */
  rank?: number;
  /** Further options of the quadratic term (targets, φ, atrous...). */
  quad?: QuadratizeOptions;
  /** Passes over the data (default 5). */
  epochs?: number;
  /** Examples per step (default 32; at most the dataset size). */
  batchSize?: number;
  /** Learning rate of the head (default 1e-3, AdamW). */
  lr?: number;
  /** Learning rate of the quadratic terms (default 3e-3). */
  quadLr?: number;
  /** Also train the classifier head (default true). */
  trainHead?: boolean;
  /** Seed of the quadratic factors and the shuffles (default 0). */
  seed?: number;
  session?: SessionOptions;
  /** Called with the quadratized model before training starts (e.g. to check its outputs). */
  onQuadratized?: (model: Graph) => void | Promise<void>;
  /** Called after every step; may return a promise (e.g. to let the page repaint). */
  onStep?: (s: AdaptStep) => void | Promise<void>;
  /** Stops after the current step. */
  signal?: AbortSignal;
}

/** Progress of `adapt`. */
export interface AdaptStep {
  epoch: number;
  step: number;
  totalSteps: number;
  loss: number;
  /** Mean loss of the epoch so far. */
  epochLoss: number;
  ms: number;
}

/** What `adapt` produced. */
export interface AdaptResult {
  /** The quadratized model before training (computes the pretrained function exactly). */
  quadratized: Graph;
  /** The adapted model (inference mode), ready to run or export with `encodeModel`. */
  model: Graph;
  /** Mean training loss of each epoch. */
  epochLosses: number[];
  steps: number;
  /** Mean wall time of a training step, in milliseconds. */
  stepMs: number;
  /** Trainable parameters (quadratic terms, plus the head unless `trainHead` is false). */
  trainableParams: number;
}

/**
 * Quadratic adaptation of a pretrained classifier on a (small) dataset: quadratize (the outputs
 * stay those of `base`), then train the quadratic terms and the head with AdamW, cosine schedule.
 */
export async function adapt(
  base: Graph,
  train: Dataset,
  o: AdaptOptions = {},
): Promise<AdaptResult> {
  const seed = o.seed ?? 0;
  const prepared = prepareMethod('quadratic-adapt', base, {
    lr: o.lr ?? 1e-3,
    quadLr: o.quadLr ?? 3e-3,
    quad: { rank: o.rank ?? 4, ...o.quad },
    trainHead: o.trainHead,
    seed,
  });
  await o.onQuadratized?.(prepared.model);
  const batchSize = Math.max(1, Math.min(o.batchSize ?? 32, train.n));
  const epochs = o.epochs ?? 5;
  const perEpoch = Math.floor(train.n / batchSize);
  const totalSteps = perEpoch * epochs;
  const trainer = await Trainer.create(prepared.model, {
    batchSize,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw' },
    groups: prepared.groups,
    // The CLI's schedule and dropout: the same settings train the same way in both hosts.
    schedule: defaultSchedule(totalSteps),
    batchNorm: prepared.batchNorm,
    dropout: true,
    session: o.session,
  });
  let trainableParams = 0;
  for (const g of prepared.groups)
    for (const p of g.params) trainableParams += prepared.model.initializers.get(p)!.data.length;
  // The same shuffles as before the one loop: epoch e's order seed is the e-th draw of Rng(seed).
  const rng = new Rng(seed);
  const orderSeeds = Array.from({ length: epochs }, () => rng.int(2 ** 31));
  try {
    const result = await fitLoop(trainer, {
      train,
      epochs,
      orderSeed: (epoch) => orderSeeds[epoch]!,
      signal: o.signal,
      onProgress: async (p) => {
        if (p.kind !== 'step') return;
        await o.onStep?.({
          epoch: p.epoch,
          step: p.step,
          totalSteps,
          loss: p.loss,
          epochLoss: p.windowLoss!,
          ms: p.stepMs!,
        });
      },
    });
    if (result.status === 'diverged') throw new Error(result.message);
    const epochLosses = result.history.map((r) => r.loss);
    return {
      quadratized: prepared.model,
      model: trainer.currentModel(),
      epochLosses,
      steps: trainer.step,
      stepMs: trainer.step > 0 ? (result.wallSeconds * 1000) / trainer.step : 0,
      trainableParams,
    };
  } finally {
    await trainer.release();
  }
}
