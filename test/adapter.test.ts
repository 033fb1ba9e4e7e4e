import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { graphSha256, loadAdapter, saveAdapter } from '../src/workflow/adapter-files.js';
import {
  AdapterBaseMismatchError,
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  readAdapterConfig,
  sha256Hex,
} from '../src/io/formats/adapter-config.js';
import { readCommittedFile, recoverDir } from '../src/io/atomic.js';
import { QuadranetFileError } from '../src/io/errors.js';
import type { SafeTensor } from '../src/io/formats/safetensors.js';
import { decodeSafetensors, encodeSafetensors } from '../src/io/formats/safetensors.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph } from '../src/ir/graph.js';
import { decodeModel, encodeModel } from '../src/ir/onnx.js';
import { numel } from '../src/ir/tensor.js';
import { convnext, mlp, resnet } from '../src/models/zoo.js';
import { Session } from '../src/runtime/session.js';
import { accountLayers } from '../src/passes/accounting.js';
import { isAdapterEnabled, setAdapterEnabled, unload } from '../src/passes/adapter.js';
import { quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { QuadratizeError } from '../src/passes/quadratic-spec.js';
import { VERSION } from '../src/version.js';
import { Rng } from '../src/util/random.js';
import { atEveryKillPoint } from './helpers/kill-fs.js';
import { tempDirs } from './helpers/temp.js';

const tempDir = tempDirs('adapter');

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

/** A copy whose quadratic parameters are random (as after adaptation): the branch is live. */
function trained(q: Graph, seed = 50): Graph {
  const g = cloneGraph(q);
  let k = seed;
  for (const name of quadParamNames(g)) {
    const t = g.initializers.get(name)!;
    g.initializers.set(name, { ...t, data: randomArray(numel(t.dims), k++, 0.2) });
  }
  return g;
}

async function forward(g: Graph, x: Float32Array): Promise<Float32Array> {
  const s = await Session.create(g);
  const dims = g.inputs[0]!.shape.map((d, i) => (i === 0 ? 2 : (d as number)));
  const out = await s.run({ [g.inputs[0]!.name]: { dtype: 'float32', dims, data: x } });
  await s.release();
  return out[g.outputs[0]!.name]!.data as Float32Array;
}

function inputSize(g: Graph): number {
  return 2 * numel(g.inputs[0]!.shape.slice(1) as number[]);
}

function assertFileError(e: unknown, ...patterns: RegExp[]): true {
  assert.ok(e instanceof QuadranetFileError, `expected QuadranetFileError, got ${String(e)}`);
  assert.ok(!/[\r\n]/.test(e.message), 'one line');
  for (const p of patterns) assert.match(e.message, p);
  return true;
}

const MODELS: [string, () => Graph][] = [
  ['mlp', () => mlp({ width: 0.25 })],
  ['resnet', () => resnet({ width: 0.5 })],
  ['convnext (rbf)', () => convnext({ width: 0.5, depth: 1 })],
];

describe('unload and enable/disable', () => {
  for (const [name, make] of MODELS) {
    it(`${name}: unload gives exactly the base graph (deep equality and equal ONNX bytes)`, () => {
      const base = make();
      const q = trained(
        quadratize(base, { phi: name.includes('rbf') ? 'rbf' : 'product', includeHead: true })
          .graph,
      );
      const u = unload(q);
      assert.deepStrictEqual(u, base);
      assert.deepEqual(encodeModel(u), encodeModel(base));
      assert.equal(graphSha256(u), graphSha256(base));
    });

    it(`${name}: a disabled adapter gives the base outputs; enabling restores the graph`, async () => {
      const base = make();
      const q = trained(quadratize(base).graph);
      const x = randomArray(inputSize(base), 4);
      const off = setAdapterEnabled(q, false);
      assert.equal(isAdapterEnabled(off), false);
      const yb = await forward(base, x);
      assert.deepEqual(await forward(off, x), yb, 'disabled output is not bitwise the base output');
      assert.notDeepEqual(await forward(q, x), yb, 'the trained adapter should change the output');
      assert.deepStrictEqual(setAdapterEnabled(off, true), q);
      assert.deepStrictEqual(unload(off), base);
    });
  }

  it('the adapter record survives ONNX export: unload works on a decoded model', () => {
    const base = resnet({ width: 0.5 });
    const q = trained(quadratize(base).graph);
    const decoded = decodeModel(encodeModel(q));
    assert.deepEqual(quadParamNames(decoded), quadParamNames(q));
    assert.deepEqual(encodeModel(unload(decoded)), encodeModel(base));
  });

  it('refuses to unload a plain graph or one whose adapter values are used elsewhere', () => {
    const base = mlp({ width: 0.25 });
    assert.throws(() => unload(base), QuadratizeError);
    const q = quadratize(base).graph;
    const g = cloneGraph(q);
    const phi = g.nodes.find((n) => n.name === 'fc1/quad/phi')!;
    g.nodes.push({
      name: 'spy',
      opType: 'Identity',
      domain: '',
      inputs: [phi.outputs[0]!],
      outputs: ['spy_out'],
      attrs: {},
    });
    g.outputs.push({ name: 'spy_out', dtype: 'float32', shape: ['batch', 4] });
    assert.throws(() => unload(g), /node 'spy' reads the adapter's value/);
  });
});

describe('adapter files', () => {
  const base = resnet({ width: 0.5 });
  const baseBytes = encodeModel(base);
  const baseSha = sha256Hex(baseBytes);
  const q = trained(quadratize(base, { seed: 1, rank: 3, phi: 'rbf', exclude: 'down' }).graph);

  it('saves only the quadratic parameters, with a config, atomically', async () => {
    const dir = await tempDir();
    const cfg = await saveAdapter(dir, q, baseBytes);
    assert.deepEqual(
      (await readdir(dir)).sort(),
      [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE].sort(),
    );
    const st = decodeSafetensors(await readFile(join(dir, ADAPTER_WEIGHTS_FILE)));
    assert.deepEqual(Object.keys(st.tensors).sort(), quadParamNames(q).sort());
    for (const [k, t] of Object.entries(st.tensors)) {
      assert.equal(t.dtype, 'F32');
      assert.deepEqual(t.data, q.initializers.get(k)!.data, k);
    }
    const onDisk = await readAdapterConfig(dir);
    assert.deepEqual(onDisk, cfg);
    assert.equal(cfg.baseModelSha256, baseSha);
    assert.equal(cfg.libraryVersion, VERSION);
    assert.deepEqual([cfg.mode, cfg.rank, cfg.phi, cfg.seed], ['lowrank', 3, 'rbf', 1]);
    const t = cfg.targets.find((x) => x.node === 'block2.conv2')!;
    assert.deepEqual(
      [t.op, t.weight, t.kq, t.dq, t.rank, t.phi],
      ['Conv', 'block2.conv2.weight', [3, 3], [2, 2], 3, 'rbf'],
    );
    assert.ok(cfg.keyLayout.quad_u.includes('Conv'));
  });

  it('round trip: loading onto the same base reproduces the graph and outputs exactly', async () => {
    const dir = await tempDir();
    await saveAdapter(dir, q, baseSha);
    const loaded = await loadAdapter(dir, base, baseSha);
    assert.deepStrictEqual(loaded, q);
    const x = randomArray(inputSize(base), 9);
    assert.deepEqual(await forward(loaded, x), await forward(q, x));
    // Without a SHA, the SHA-256 of encodeModel(base) identifies the base (same bytes here).
    assert.deepStrictEqual(await loadAdapter(dir, base), q);
    // A fresh quadratize with another seed is unloaded first and gets the saved values.
    const other = quadratize(base, { seed: 99 }).graph;
    const reloaded = await loadAdapter(dir, other, baseSha);
    for (const name of quadParamNames(q))
      assert.deepEqual(reloaded.initializers.get(name)!.data, q.initializers.get(name)!.data, name);
  });

  it('refuses a different base model, naming both files', async () => {
    const dir = await tempDir();
    await saveAdapter(dir, q, baseBytes);
    const otherBase = resnet({ width: 0.5, seed: 1 });
    await assert.rejects(
      () => loadAdapter(dir, otherBase, graphSha256(otherBase), { modelFile: 'other.onnx' }),
      (e) => assertFileError(e, /adapter_config\.json/, /other\.onnx/, /SHA-256/),
    );
    // The refusal is typed, carrying both SHA-256s for callers that handle it.
    const err = await loadAdapter(dir, otherBase).catch((e: unknown) => e);
    assert.ok(err instanceof AdapterBaseMismatchError, String(err));
    assert.equal(err.expectedSha256, sha256Hex(baseBytes));
    assert.equal(err.actualSha256, graphSha256(otherBase));
    await assert.rejects(
      () => loadAdapter(dir, otherBase),
      (e) => assertFileError(e, /SHA-256/),
    );
  });

  it('a kill at any step of saving over an adapter leaves the old or the new one loadable', async () => {
    const dir = await tempDir();
    const older = trained(q, 7);
    const model = async (): Promise<string> =>
      (await readCommittedFile(dir, 'model.onnx')).toString();
    const seen = new Set<string>();
    const points = await atEveryKillPoint(
      async () => {
        await rm(dir, { recursive: true, force: true });
        await saveAdapter(dir, older, baseSha, { alongside: { 'model.onnx': 'older' } });
      },
      (fs) => saveAdapter(dir, q, baseSha, { alongside: { 'model.onnx': 'newer' }, fs }),
      async (at) => {
        // The adapter and the file saved with it are both old or both new, for every reader.
        const loaded = await loadAdapter(dir, base, baseSha);
        const which = (await model()) === 'newer' ? q : older;
        assert.deepStrictEqual(loaded, which, `killed at ${at}`);
        seen.add(await model());
        await recoverDir(dir);
        assert.deepStrictEqual(await loadAdapter(dir, base, baseSha), which, `recovered (${at})`);
        assert.equal(await readFile(join(dir, 'model.onnx'), 'utf8'), await model());
        assert.deepEqual(
          (await readdir(dir)).sort(),
          ['model.onnx', ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE].sort(),
        );
      },
    );
    assert.deepEqual([...seen].sort(), ['newer', 'older']);
    assert.ok(
      points.some((p) => p.includes(`.staged-${ADAPTER_CONFIG_FILE}`) && p.startsWith('rename')),
    );
  });

  /** Rewrites the weights of a saved adapter (keeping the config's checksum consistent). */
  async function tamper(dir: string, edit: (t: Record<string, SafeTensor>) => void): Promise<void> {
    const wPath = join(dir, ADAPTER_WEIGHTS_FILE);
    const tensors = decodeSafetensors(await readFile(wPath)).tensors;
    edit(tensors);
    const bytes = encodeSafetensors(tensors);
    await writeFile(wPath, bytes);
    const cPath = join(dir, ADAPTER_CONFIG_FILE);
    const cfg = JSON.parse(await readFile(cPath, 'utf8')) as Record<string, unknown>;
    cfg['weightsSha256'] = sha256Hex(bytes);
    await writeFile(cPath, JSON.stringify(cfg));
  }

  const broken: [string, (dir: string) => Promise<void>, RegExp[]][] = [
    [
      'a missing key',
      (d) => tamper(d, (t) => delete t['stem.weight.quad_u']),
      [/lacks 'stem\.weight\.quad_u'/],
    ],
    [
      'an extra key',
      (d) =>
        tamper(d, (t) => (t['stray'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) })),
      [/has 'stray'/],
    ],
    [
      'a wrong shape',
      (d) =>
        tamper(
          d,
          (t) =>
            (t['stem.weight.quad_gamma'] = { dtype: 'F32', shape: [4], data: new Float32Array(4) }),
        ),
      [/'stem\.weight\.quad_gamma' has shape \[4\]/, /says \[3\]/],
    ],
    [
      'weights from another save',
      async (d) => {
        const w = join(d, ADAPTER_WEIGHTS_FILE);
        const bytes = await readFile(w);
        bytes[bytes.length - 1] ^= 1;
        await writeFile(w, bytes);
      },
      [/does not match/, /different saves/],
    ],
    [
      'a config that is not JSON',
      (d) => writeFile(join(d, ADAPTER_CONFIG_FILE), '{'),
      [/not valid JSON/],
    ],
    [
      'a config of another format version',
      async (d) => {
        const p = join(d, ADAPTER_CONFIG_FILE);
        const cfg = JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
        await writeFile(p, JSON.stringify({ ...cfg, formatVersion: 2 }));
      },
      [/formatVersion 2 is not supported/],
    ],
    ['no adapter at all', (d) => rm(join(d, ADAPTER_CONFIG_FILE)), [/not found/]],
  ];
  for (const [what, breakIt, patterns] of broken) {
    it(`refuses ${what} with a one-line error`, async () => {
      const dir = await tempDir();
      await saveAdapter(dir, q, baseSha);
      await breakIt(dir);
      await assert.rejects(
        () => loadAdapter(dir, base, baseSha),
        (e) => assertFileError(e, ...patterns),
      );
    });
  }

  it('refuses to save a graph without adapter', async () => {
    const dir = await tempDir();
    await assert.rejects(() => saveAdapter(dir, base, baseSha), QuadratizeError);
  });
});

describe('accounting', () => {
  it('counts params and FLOPs (2 per multiply-add, 1 per elementwise op) of base and quadratic terms', () => {
    const base = mlp({ width: 0.25 }); // 784 → 32 → 32 → 10
    const q = quadratize(base, { rank: 4 }).graph;
    const acc = accountLayers(q);
    const fc1 = acc.layers.find((l) => l.node === 'fc1')!;
    assert.deepEqual(fc1.base, { params: 784 * 32 + 32, flops: 2 * 32 * 784 + 32 });
    // A, B: 2 × (2·4·784); φ: 4; U: 2·32·4; Add: 32.
    assert.deepEqual(fc1.quadratic, {
      params: 2 * 4 * 784 + 32 * 4,
      flops: 2 * 2 * 4 * 784 + 4 + 2 * 32 * 4 + 32,
    });
    const head = acc.layers.find((l) => l.node === 'head')!;
    assert.equal(head.quadratic, undefined);
    assert.deepEqual(
      acc.layers.map((l) => l.node),
      ['fc1', 'fc2', 'head'],
    );
    const sum = acc.layers.reduce((s, l) => s + (l.quadratic?.params ?? 0), 0);
    assert.equal(acc.totals.quadratic.params, sum);
    assert.equal(
      acc.totals.quadratic.params,
      quadParamNames(q).reduce((s, n) => s + numel(q.initializers.get(n)!.dims), 0),
    );
    // FLOPs scale with the batch; params do not.
    const acc4 = accountLayers(q, { batchSize: 4 });
    assert.equal(acc4.totals.base.flops, 4 * acc.totals.base.flops);
    assert.equal(acc4.totals.quadratic.params, acc.totals.quadratic.params);
  });

  it('counts a depthwise atrous conv term (rbf)', () => {
    const base = convnext({ width: 0.5, depth: 1 }); // 16 channels at 14×14
    const q = quadratize(base, { rank: 2, phi: 'rbf', targets: ['dwconv'] }).graph;
    const dw = accountLayers(q).layers.find((l) => l.node === 'block0.dwconv')!;
    const hw = 14 * 14;
    assert.deepEqual(dw.outputShape, [1, 16, 14, 14]);
    assert.deepEqual(dw.base, { params: 16 * 49 + 16, flops: 2 * 16 * hw * 49 + 16 * hw });
    const branch = 32 * hw; // C·r channels
    assert.deepEqual(dw.quadratic, {
      params: 2 * 32 * 9 + 16 * 2 + 32,
      // A, B: 2·branch·9 each; rbf: Sub, Mul, Mul γ, Neg, Exp (5 per element); U: 2·16·hw·2; Add.
      flops: 2 * (2 * branch * 9) + 5 * branch + 2 * 16 * hw * 2 + 16 * hw,
    });
  });
});
