import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import { loadAdapter, saveAdapter } from '../src/workflow/adapter-files.js';
import { GraphBuilder } from '../src/ir/builder.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph, emptyGraph } from '../src/ir/graph.js';
import { numel, tensor } from '../src/ir/tensor.js';
import { convnext, resnet } from '../src/models/zoo.js';
import type { QuadMode } from '../src/passes/quadratic-spec.js';
import { quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { phiChoices, quadVariant, quadVariants } from '../src/passes/variants/index.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';
import { gradcheck } from './helpers/gradcheck.js';

// The `square` variant, φ(a, b) = a ⊙ (a + b), exists only as one registry file
// (src/passes/variants/square.ts): this checks that the registry alone makes it a full variant.

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

const BATCH = 3;
const dims = (g: Graph) => g.inputs[0]!.shape.map((d, i) => (i === 0 ? BATCH : (d as number)));

async function forward(g: Graph, x: Float32Array): Promise<Float32Array> {
  const s = await Session.create(g);
  const name = g.outputs[0]!.name;
  const out = await s.run({ [g.inputs[0]!.name]: { dtype: 'float32', dims: dims(g), data: x } });
  await s.release();
  return out[name]!.data as Float32Array;
}

describe('quadratic variant: square, φ(a, b) = a ⊙ (a + b)', () => {
  it('is registered and offered by --phi', () => {
    assert.equal(quadVariant('square')?.usesB, true);
    assert.ok(phiChoices().includes('square'));
  });

  it('emits a ⊙ (a + b), with gradients equal to central finite differences (float64)', async () => {
    const v = quadVariant('square')!;
    const build = (b: GraphBuilder, x: Record<string, string>) =>
      v.emit({ b, param: () => assert.fail('no parameters'), channelShape: undefined }, x.a!, x.b);
    await gradcheck({
      build,
      inputs: { a: { dims: [2, 3] }, b: { dims: [2, 3] } },
      dtype: 'float64',
    });
    // The values: the formula, not only consistent gradients.
    const a = [0.5, -1, 2, 0, 1.5, -0.25];
    const b = [1, 2, -3, 4, 0.5, 0.75];
    const g = emptyGraph('phi');
    const gb = new GraphBuilder(g);
    gb.input('a', 'float32', [6]);
    gb.input('b', 'float32', [6]);
    gb.output(build(gb, { a: 'a', b: 'b' }), 'float32', [6]);
    const s = await Session.create(g);
    const out = await s.run({
      a: { dtype: 'float32', dims: [6], data: Float32Array.from(a) },
      b: { dtype: 'float32', dims: [6], data: Float32Array.from(b) },
    });
    await s.release();
    expectAllClose(
      out[g.outputs[0]!.name]!.data as Float32Array,
      a.map((ai, i) => ai * (ai + b[i]!)),
      { rtol: 1e-6, atol: 0, what: 'φ values' },
    );
  });

  for (const mode of ['lowrank', 'neuron'] as QuadMode[]) {
    const zeroFactor = mode === 'neuron' ? 'quad_a' : 'quad_u';
    it(`${mode}: outputs identical at init and every ${zeroFactor} gets a non-zero gradient at step 0`, async () => {
      const base = convnext({ width: 0.5, depth: 1 });
      const q = quadratize(base, { phi: 'square', mode, rank: 2 }).graph;
      const x = randomArray(numel(dims(base)), 3);
      const yb = await forward(base, x);
      expectAllClose(await forward(q, x), yb, { rtol: 0, atol: 1e-6, what: 'outputs at init' });

      const g = cloneGraph(q);
      g.inputs[0]!.shape = dims(g);
      const b = new GraphBuilder(g);
      const out = g.outputs[0]!.name;
      const dy = b.constant(
        tensor('float32', [BATCH, yb.length / BATCH], randomArray(yb.length, 5)),
        'dy',
      );
      const loss = b.op('ReduceSum', [b.mul(out, dy)], { keepdims: 0 });
      const wrt = quadParamNames(q).filter((n) => n.endsWith(zeroFactor));
      assert.ok(wrt.length > 0);
      const { graph, grads } = backward(g, { loss, wrt });
      for (const w of wrt) graph.outputs.push({ name: grads.get(w)!, dtype: 'float32', shape: [] });
      const s = await Session.create(graph);
      const res = await s.run({
        [g.inputs[0]!.name]: { dtype: 'float32', dims: dims(g), data: x },
      });
      await s.release();
      for (const w of wrt) {
        const d = res[grads.get(w)!]!.data as Float32Array;
        assert.ok(
          d.some((v) => v !== 0),
          `${w}: zero gradient at step 0`,
        );
      }
    });
  }

  it('save → load round trip onto a quadratized copy with another seed gives equal outputs', async () => {
    const base = resnet({ width: 0.5 });
    const q = cloneGraph(quadratize(base, { phi: 'square', seed: 1, rank: 2 }).graph);
    let k = 40;
    for (const name of quadParamNames(q)) {
      const t = q.initializers.get(name)!;
      q.initializers.set(name, { ...t, data: randomArray(numel(t.dims), k++, 0.2) });
    }
    const dir = await mkdtemp(join(tmpdir(), 'quadranet-square-'));
    roots.push(dir);
    const cfg = await saveAdapter(dir, q);
    assert.equal(cfg.phi, 'square');
    assert.ok(cfg.targets.every((t) => t.phi === 'square'));
    const other = quadratize(base, { phi: 'square', seed: 99, rank: 2 }).graph;
    const loaded = await loadAdapter(dir, other);
    const x = randomArray(numel(dims(base)), 8);
    assert.deepEqual(await forward(loaded, x), await forward(q, x));
  });
});

describe('quadratic variant registry', () => {
  it('every registered variant has its PyTorch twin in python/quadranet_torch.py PHIS', async () => {
    const { readFile } = await import('node:fs/promises');
    const py = await readFile(new URL('../python/quadranet_torch.py', import.meta.url), 'utf8');
    const table = py.slice(py.indexOf('PHIS:'), py.indexOf('}', py.indexOf('PHIS:')));
    for (const name of quadVariants()) assert.ok(table.includes(`"${name}":`), name);
  });

  it('refuses a variant/mode pair the registry forbids, in quadratize and in adapter configs', () => {
    assert.throws(
      () => quadratize(resnet({ width: 0.5 }), { phi: 'rbf', mode: 'neuron' }),
      /phi 'rbf' needs mode 'lowrank'/,
    );
    assert.throws(() => quadratize(resnet({ width: 0.5 }), { phi: 'cubic' }), /'square'/);
  });
});
