/**
 * The PyTorch bridge (python/quadranet_torch.py) against quadranet: an adapter made here runs in
 * PyTorch with the same outputs as onnxruntime, trains there (one step, one case under
 * DistributedDataParallel), and comes back through `loadAdapter` with PyTorch's outputs.
 *
 * Needs Debian's python3-torch at /usr/bin/python3 (`apt-get install -y python3-torch`); skipped,
 * with the reason, where `import torch` fails there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { QuadratizeOptions } from '../src/index.js';
import { graphSha256, loadAdapter, quadParamNames, quadratize } from '../src/index.js';
import type { Graph } from '../src/ir/graph.js';
import { cloneGraph } from '../src/ir/graph.js';
import { encodeModel } from '../src/ir/onnx.js';
import { numel } from '../src/ir/tensor.js';
import { saveAdapter } from '../src/workflow/adapter-files.js';
import type { SafeTensor } from '../src/io/formats/safetensors.js';
import { decodeSafetensors, encodeSafetensors } from '../src/io/formats/safetensors.js';
import { toSafeTensor } from '../src/io/formats/tensors.js';
import type { ArchName, ImageShape } from '../src/models/zoo.js';
import { ARCHITECTURES, convnext } from '../src/models/zoo.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';

const PYTHON = '/usr/bin/python3';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHECK = join(ROOT, 'python/tests/torch_bridge_check.py');

/** Why the bridge cannot be tested here, or false when it can. */
function torchMissing(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error)
    return `${PYTHON} cannot run (${r.error.message}); install python3-torch to run this test`;
  if (r.status !== 0) {
    const why = r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`;
    return `${PYTHON} -c 'import torch' fails (${why}); install python3-torch to run this test`;
  }
  return false;
}

interface Case {
  name: string;
  arch: ArchName;
  archOptions?: { width?: number; depth?: number };
  quad: QuadratizeOptions;
  /** Train the step under DistributedDataParallel (world size 1, gloo). */
  ddp?: boolean;
}

const CASES: Case[] = [
  // The basic case: both convs and the Gemm head, product, rank 2, through DDP.
  { name: 'cnn-product-head', arch: 'cnn', quad: { rank: 2, includeHead: true }, ddp: true },
  // rbf with a user kq/dq: the padding rule pad_q = pad − ((k−1)d − (kq−1)dq)/2 gives 2.
  {
    name: 'cnn-rbf-dilated',
    arch: 'cnn',
    quad: { rank: 3, phi: 'rbf', kernelSize: 3, dilation: 2 },
  },
  { name: 'cnn-neuron', arch: 'cnn', quad: { mode: 'neuron' } },
  { name: 'cnn-linear-1x1', arch: 'cnn', quad: { rank: 2, phi: 'linear', kernelSize: 1 } },
  // BatchNorm, a strided conv, a dilated conv (dq = d) and a 1×1 projection.
  { name: 'resnet-product', arch: 'resnet', quad: { rank: 2 } },
  // Depthwise 7×7 → atrous 3×3 dilation 3 (channel multiplier r), an even-kernel stem, MatMul.
  {
    name: 'convnext-rbf',
    arch: 'convnext',
    archOptions: { width: 0.5, depth: 1 },
    quad: { rank: 2, phi: 'rbf' },
  },
];

const INPUT: ImageShape = [1, 28, 28];
const BATCH = 3;

function buildBase(c: Case): Graph {
  if (c.arch === 'convnext') return convnext({ inputShape: INPUT, seed: 5, ...c.archOptions });
  return ARCHITECTURES[c.arch]({ inputShape: INPUT, seed: 5, ...c.archOptions });
}

/** The quadratized model with a live quadratic term: U (and a neuron-mode A, γ) random. */
function liveAdapter(base: Graph, quad: QuadratizeOptions, seed: number): Graph {
  const g = cloneGraph(quadratize(base, { seed, ...quad }).graph);
  const rng = new Rng(seed + 100);
  for (const name of quadParamNames(g)) {
    const t = g.initializers.get(name)!;
    const n = numel(t.dims);
    if (name.endsWith('.quad_gamma')) {
      g.initializers.set(name, { ...t, data: rng.uniformArray(n, 0.5, 1.5) });
    } else if (name.endsWith('.quad_u') || (quad.mode === 'neuron' && name.endsWith('.quad_a'))) {
      g.initializers.set(name, {
        ...t,
        data: Float32Array.from({ length: n }, () => 0.3 * rng.normal()),
      });
    }
  }
  return g;
}

async function forward(g: Graph, x: Float32Array): Promise<Float32Array> {
  const s = await Session.create(g);
  try {
    const out = await s.run({
      [g.inputs[0]!.name]: { dtype: 'float32', dims: [BATCH, ...INPUT], data: x },
    });
    return out[g.outputs[0]!.name]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** max |a − b| / max |ref|: the relative error the checks bound. */
function relErr(a: Float32Array, ref: Float32Array): number {
  assert.equal(a.length, ref.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - ref[i]!));
  return m / Math.max(maxAbs(ref), 1e-12);
}

interface Prepared {
  c: Case;
  dir: string;
  base: Graph;
  x: Float32Array;
  yBase: Float32Array;
  yQuad: Float32Array;
}

const missing = torchMissing();

describe('PyTorch bridge (python/quadranet_torch.py)', { skip: missing }, () => {
  let work: string;
  const prepared = new Map<string, Prepared>();
  let python: ReturnType<typeof spawnSync>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'quadranet-torch-'));
    const cases: unknown[] = [];
    for (const [i, c] of CASES.entries()) {
      const dir = join(work, c.name);
      const base = buildBase(c);
      const q = liveAdapter(base, c.quad, 10 + i);
      await saveAdapter(join(dir, 'adapter'), q, graphSha256(base));
      await writeFile(join(dir, 'base.onnx'), encodeModel(base));
      const weights: Record<string, SafeTensor> = {};
      for (const [name, t] of base.initializers) weights[name] = toSafeTensor(t);
      await writeFile(join(dir, 'base.safetensors'), encodeSafetensors(weights));
      const rng = new Rng(20 + i);
      const x = rng.uniformArray(BATCH * numel(INPUT), 0, 1);
      const labels = Int32Array.from({ length: BATCH }, (_, k) => (k * 3 + i) % 10);
      await writeFile(
        join(dir, 'io.safetensors'),
        encodeSafetensors({
          x: { dtype: 'F32', shape: [BATCH, ...INPUT], data: x },
          labels: { dtype: 'I32', shape: [BATCH], data: labels },
        }),
      );
      prepared.set(c.name, {
        c,
        dir,
        base,
        x,
        yBase: await forward(base, x),
        yQuad: await forward(q, x),
      });
      cases.push({ ...c, dir, inputShape: INPUT });
    }
    await writeFile(join(work, 'cases.json'), JSON.stringify(cases));
    const other = ARCHITECTURES.cnn({ inputShape: INPUT, seed: 99 });
    await writeFile(join(work, 'other.onnx'), encodeModel(other));
    python = spawnSync(PYTHON, [CHECK, work], {
      encoding: 'utf8',
      // A guard against a hung interpreter, not a speed requirement (a loaded machine is slow).
      timeout: 30 * 60_000,
      // No __pycache__ left in python/.
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
  });
  after(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the PyTorch side runs every case', () => {
    assert.equal(python.status, 0, `${CHECK} failed:\n${String(python.stderr).slice(-3000)}`);
    assert.match(String(python.stdout), new RegExp(`${CASES.length} cases done`));
  });

  for (const c of CASES) {
    it(`${c.name}: outputs match onnxruntime, the trained adapter loads back`, async () => {
      assert.equal(python.status, 0, 'the PyTorch side failed (see above)');
      const p = prepared.get(c.name)!;
      const out = decodeSafetensors(
        await readFile(join(p.dir, 'torch/outputs.safetensors')),
      ).tensors;
      const y = (k: string) => out[k]!.data as Float32Array;
      // The torch replica of the base network is the same function (isolates bridge failures).
      assert.ok(
        relErr(y('y_base'), p.yBase) <= 1e-4,
        `base replica: ${relErr(y('y_base'), p.yBase)}`,
      );
      // The quadratic term is live, so the comparison below has teeth.
      assert.ok(relErr(p.yQuad, p.yBase) > 1e-3, 'the random adapter changes the outputs');
      const err = relErr(y('y_quad'), p.yQuad);
      assert.ok(err <= 1e-4, `PyTorch vs onnxruntime with the adapter: relative error ${err}`);
      assert.deepEqual(y('y_off'), y('y_base'), 'a disabled adapter is the base model');

      // Saved back untouched: byte-identical to quadranet's files.
      for (const f of ['adapter.safetensors', 'adapter_config.json']) {
        const a = await readFile(join(p.dir, 'adapter', f));
        const b = await readFile(join(p.dir, 'torch/resaved', f));
        assert.ok(a.equals(b), `${f} re-saved by PyTorch is byte-identical`);
      }

      // Trained in PyTorch, loaded here: the same outputs as PyTorch's.
      const trained = await loadAdapter(join(p.dir, 'torch/trained'), p.base);
      const yTrained = await forward(trained, p.x);
      const errAfter = relErr(yTrained, y('y_after'));
      assert.ok(errAfter <= 1e-4, `after training: relative error ${errAfter}`);
      assert.ok(relErr(y('y_after'), p.yQuad) > 1e-6, 'the training step changed the adapter');
      const before = JSON.parse(await readFile(join(p.dir, 'adapter/adapter_config.json'), 'utf8'));
      const afterCfg = JSON.parse(
        await readFile(join(p.dir, 'torch/trained/adapter_config.json'), 'utf8'),
      );
      assert.notEqual(afterCfg.weightsSha256, before.weightsSha256);
      assert.deepEqual({ ...afterCfg, weightsSha256: '' }, { ...before, weightsSha256: '' });
      const info = JSON.parse(await readFile(join(p.dir, 'torch/info.json'), 'utf8'));
      assert.equal(info.ddp, !!c.ddp);
      assert.ok(Number.isFinite(info.loss));
    });
  }

  it('the PyTorch side refuses an adapter for another base model', async () => {
    assert.equal(python.status, 0, 'the PyTorch side failed (see above)');
    const said = await readFile(join(work, 'refusal.txt'), 'utf8');
    assert.match(said, /^refused: .*belongs to a base model with SHA-256/);
  });
});
