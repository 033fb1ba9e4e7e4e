/**
 * The public API (src/index.ts, the package entry `quadranet`): exactly the promised names, with
 * the promised kinds, and a short end to end that uses nothing else: quadratize a built-in
 * architecture → the outputs are unchanged → one Trainer step moves the quadratic term → the
 * adapter files round-trip.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as api from '../src/index.js';
import type {
  AdapterConfig,
  AdapterFileConfig,
  Batch,
  Dataset,
  FitOptions,
  Graph,
  HostTensor,
  ImportedModel,
  LoadDatasetOptions,
  ModelAccount,
  QuadratizeOptions,
  QuadratizeResult,
  ReportOptions,
  RunOptions,
  Tensor,
  TrainerOptions,
} from '../src/index.js';
import {
  accountLayers,
  cnn,
  createDataset,
  decodeModel,
  encodeModel,
  fit,
  loadAdapter,
  quadParamNames,
  quadratize,
  saveAdapter,
  Session,
  setAdapterEnabled,
  Trainer,
  unload,
} from '../src/index.js';

/**
 * Every value the entry exports, by kind. The API is deliberately small: adding or removing a
 * name is a decision (update README's list and this table together).
 */
const VALUES: Record<string, 'function' | 'class' | 'string' | 'number' | 'object'> = {
  // models in and out
  importModel: 'function',
  importTfjs: 'function',
  decodeModel: 'function',
  encodeModel: 'function',
  cloneGraph: 'function',
  OnnxFormatError: 'class',
  GraphError: 'class',
  QuadranetFileError: 'class',
  QuadranetError: 'class',
  UserError: 'class',
  // the quadratic pass and adapter files
  quadratize: 'function',
  quadParamNames: 'function',
  QuadratizeError: 'class',
  unload: 'function',
  setAdapterEnabled: 'function',
  isAdapterEnabled: 'function',
  QUAD_MODES: 'object',
  parseBudget: 'function',
  planBudget: 'function',
  // extension points: one registry entry per file
  registerQuadVariant: 'function',
  quadVariant: 'function',
  quadVariants: 'function',
  phiChoices: 'function',
  registerQuadHandler: 'function',
  quadOpTypes: 'function',
  emitPhi: 'function',
  registerImporter: 'function',
  registerGradient: 'function',
  differentiableOps: 'function',
  registerFlopRule: 'function',
  registerShapeRule: 'function',
  // classifier outputs and heads
  detectOutputEnding: 'function',
  describeEnding: 'function',
  classifierLoss: 'function',
  replaceHead: 'function',
  saveAdapter: 'function',
  loadAdapter: 'function',
  readAdapterConfig: 'function',
  graphSha256: 'function',
  ADAPTER_WEIGHTS_FILE: 'string',
  AdapterBaseMismatchError: 'class',
  ADAPTER_CONFIG_FILE: 'string',
  // accounting
  accountLayers: 'function',
  learnableParams: 'function',
  // training
  Trainer: 'class',
  fit: 'function',
  Session: 'class',
  EXECUTION_PROVIDERS: 'object',
  ExecutionProviderError: 'class',
  // workflow, evaluation, reports
  runMethod: 'function',
  METHOD_NAMES: 'object',
  loadModelSource: 'function',
  evaluateModel: 'function',
  classificationMetrics: 'function',
  measureLatency: 'function',
  defaultModelPath: 'function',
  writeReport: 'function',
  ReportError: 'class',
  DEFAULT_PRICE_PER_HOUR: 'number',
  // data
  loadDataset: 'function',
  parseDataSpec: 'function',
  createDataset: 'function',
  batches: 'function',
  split: 'function',
  DataError: 'class',
  SHIFT_KINDS: 'object',
  // built-in architectures
  ARCHITECTURES: 'object',
  mlp: 'function',
  cnn: 'function',
  resnet: 'function',
  convnext: 'function',
  VERSION: 'string',
};

function kindOf(v: unknown): string {
  if (typeof v === 'function')
    return /^class\b/.test(Function.prototype.toString.call(v)) ? 'class' : 'function';
  return typeof v;
}

// Type-only exports are checked by the type checker: this must compile against the entry.
export type PromisedTypes = [
  AdapterConfig,
  AdapterFileConfig,
  Batch,
  Dataset,
  FitOptions,
  Graph,
  HostTensor,
  ImportedModel,
  LoadDatasetOptions,
  ModelAccount,
  QuadratizeOptions,
  QuadratizeResult,
  ReportOptions,
  RunOptions,
  Tensor,
  TrainerOptions,
];

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

/** A small deterministic generator (the test uses only the public API). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function forward(g: Graph, x: Float32Array, n: number): Promise<Float32Array> {
  const s = await Session.create(g);
  try {
    const dims = [n, ...g.inputs[0]!.shape.slice(1).map(Number)];
    const out = await s.run({ [g.inputs[0]!.name]: { dtype: 'float32', dims, data: x } });
    return out[g.outputs[0]!.name]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

describe('public API (src/index.ts)', () => {
  it('exports exactly the promised values, each of the promised kind', () => {
    const exported = Object.keys(api).sort();
    assert.deepEqual(exported, Object.keys(VALUES).sort());
    for (const [name, kind] of Object.entries(VALUES))
      assert.equal(kindOf((api as Record<string, unknown>)[name]), kind, name);
    assert.deepEqual(Object.keys(api.ARCHITECTURES).sort(), ['cnn', 'convnext', 'mlp', 'resnet']);
    assert.ok(api.METHOD_NAMES.includes('quadratic-adapt'));
  });

  const pkgEntry = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
  it(
    'the package entry `quadranet` (exports map → dist) exports the same names',
    {
      skip: existsSync(pkgEntry) ? false : 'dist/ is not built (npm run build builds it)',
    },
    async () => {
      // A package may import itself by name through its own exports map.
      const entry = (await import('quadranet' as string)) as Record<string, unknown>;
      assert.deepEqual(Object.keys(entry).sort(), Object.keys(VALUES).sort());
    },
  );

  it('quadratize an architecture → outputs equal → one Trainer step → adapter round trip', async () => {
    const base = cnn({ seed: 3 });
    const { graph, targets, config } = quadratize(base, { rank: 2, seed: 1 });
    assert.deepEqual(
      targets.filter((t) => t.matched).map((t) => t.node),
      config.targets.map((t) => t.node),
    );
    assert.ok(config.targets.length >= 2, 'both convolutions are adapted');
    const names = quadParamNames(graph);
    assert.ok(names.includes('conv1.weight.quad_u'));

    const n = 4;
    const rnd = lcg(7);
    const x = Float32Array.from({ length: n * 28 * 28 }, rnd);
    const y0 = await forward(base, x, n);
    const y1 = await forward(graph, x, n);
    assert.ok(maxAbsDiff(y0, y1) <= 1e-6 * maxAbs(y0), 'the converted model is the base function');
    // The graph survives ONNX bytes, and unload gives the base model back exactly.
    assert.deepEqual(encodeModel(unload(decodeModel(encodeModel(graph)))), encodeModel(base));
    const acc = accountLayers(graph);
    assert.ok(acc.totals.quadratic.params > 0 && acc.totals.quadratic.flops > 0);

    const batchSize = 8;
    const trainer = await Trainer.create(graph, {
      batchSize,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'adamw' },
      groups: [{ name: 'quadratic', params: names, lr: 1e-2 }],
    });
    let trained: Graph;
    try {
      const batch = {
        x: Float32Array.from({ length: batchSize * 28 * 28 }, rnd),
        y: Int32Array.from({ length: batchSize }, (_, i) => i % 10),
        size: batchSize,
      };
      const step = await trainer.trainStep(batch);
      assert.ok(Number.isFinite(step.loss) && step.gradNorm > 0);
      trained = trainer.currentModel();
    } finally {
      await trainer.release();
    }
    const u = trained.initializers.get('conv1.weight.quad_u')!.data as Float32Array;
    assert.ok(maxAbs(u) > 0, 'U (initialised to zero) moved in one step');
    for (const w of ['conv1.weight', 'head.weight'])
      assert.deepEqual(trained.initializers.get(w)!.data, base.initializers.get(w)!.data, w);
    const y2 = await forward(trained, x, n);
    assert.ok(maxAbsDiff(y2, y0) > 0, 'the trained quadratic term changes the outputs');
    const off = await forward(setAdapterEnabled(trained, false), x, n);
    assert.equal(maxAbsDiff(off, y0), 0, 'a disabled adapter is exactly the base model');

    const dir = await mkdtemp(join(tmpdir(), 'quadranet-api-'));
    roots.push(dir);
    const saved = await saveAdapter(dir, trained);
    assert.equal(saved.targets.length, config.targets.length);
    const loaded = await loadAdapter(dir, base);
    assert.equal(maxAbsDiff(await forward(loaded, x, n), y2), 0, 'the loaded adapter is the same');
  });

  it('fit trains through the public API on an in-memory dataset', async () => {
    const base = cnn({ seed: 0 });
    const { graph } = quadratize(base, { rank: 1 });
    const rnd = lcg(11);
    const n = 32;
    const ds = createDataset({
      name: 'random',
      images: Float32Array.from({ length: n * 28 * 28 }, rnd),
      labels: Int32Array.from({ length: n }, (_, i) => i % 10),
      shape: [1, 28, 28],
      numClasses: 10,
    });
    const trainer = await Trainer.create(graph, {
      batchSize: 16,
      loss: { kind: 'cross_entropy' },
      optimizer: { kind: 'sgd', momentum: 0.9 },
      groups: [{ name: 'q', params: quadParamNames(graph), lr: 1e-2 }],
    });
    try {
      const r = await fit(trainer, { train: ds, epochs: 1, seed: 0 });
      assert.equal(r.status, 'done');
      assert.equal(r.history.length, 1);
      assert.equal(r.history[0]!.step, 2);
    } finally {
      await trainer.release();
    }
  });
});
