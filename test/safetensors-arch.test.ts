/**
 * safetensors checkpoints with a declared architecture (src/io/import/safetensors-arch.ts): PyTorch
 * checkpoints of quadranet's ResNet-style and ConvNeXt-style definitions
 * (fixtures/models/torch_{resnet,convnext}.safetensors, written by
 * scripts/gen_arch_checkpoints.py with python/quadranet_torch.py) import with PyTorch's outputs,
 * quadratize and adapt like any model, and every checkpoint that does not fit its declaration is
 * refused with one line naming the file and the key.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Graph } from '../src/ir/graph.js';
import { toHalfBits } from '../src/ir/tensor.js';
import { QuadranetFileError } from '../src/io/errors.js';
import { importModel } from '../src/io/import/importers.js';
import type { SafeTensor } from '../src/io/formats/safetensors.js';
import { decodeSafetensors, encodeSafetensors } from '../src/io/formats/safetensors.js';
import { checkpointLayout } from '../src/io/import/safetensors-arch.js';
import { halfToFloat } from '../src/io/import/tfjs/weights.js';
import { quadParamNames, quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { expectAllClose } from './helpers/allclose.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MODELS = join(ROOT, 'fixtures/models');
const dir = mkdtempSync(join(tmpdir(), 'qn-st-arch-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Io {
  input: { dims: number[]; data: number[] };
  logits: { dims: number[]; data: number[] };
}

const NETS = ['resnet', 'convnext'] as const;
const fixture = (net: string) => join(MODELS, `torch_${net}.safetensors`);
const io = (net: string): Io =>
  JSON.parse(readFileSync(join(MODELS, `torch_${net}.io.json`), 'utf8')) as Io;

async function forward(g: Graph, x: Io['input']): Promise<Float32Array> {
  const s = await Session.create(g);
  try {
    const out = await s.run({
      [g.inputs[0]!.name]: { dtype: 'float32', dims: x.dims, data: Float32Array.from(x.data) },
    });
    return out[g.outputs[0]!.name]!.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** The fixture's tensors and metadata, to write altered copies. */
function contents(net: string) {
  return decodeSafetensors(readFileSync(fixture(net)));
}

let folders = 0;
/** Writes `model.safetensors` (and a config.json when given) into a fresh folder. */
function write(
  tensors: Record<string, SafeTensor>,
  metadata: Record<string, string> | undefined,
  config?: unknown,
): string {
  const folder = join(dir, `case${folders++}`);
  mkdirSync(folder);
  const file = join(folder, 'model.safetensors');
  writeFileSync(file, encodeSafetensors(tensors, metadata));
  if (config !== undefined) {
    const text = typeof config === 'string' ? config : JSON.stringify(config);
    writeFileSync(join(folder, 'config.json'), text);
  }
  return file;
}

/** importModel must fail with a one-line QuadranetFileError naming the file and matching `re`. */
async function assertRefused(file: string, re: RegExp): Promise<void> {
  await assert.rejects(importModel(file), (e: unknown) => {
    assert.ok(e instanceof QuadranetFileError, `not a QuadranetFileError: ${String(e)}`);
    assert.equal(e.file, file);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.doesNotMatch(e.message, /\n/);
    assert.match(e.message, re);
    return true;
  });
}

describe('PyTorch checkpoints of the built-in architectures', () => {
  for (const net of NETS) {
    it(`${net}: imports with PyTorch's eval-mode outputs and identifies itself by the file's SHA-256`, async () => {
      const m = await importModel(fixture(net));
      assert.equal(m.format, 'safetensors');
      assert.equal(m.graph.name, net);
      const hash = createHash('sha256')
        .update(readFileSync(fixture(net)))
        .digest('hex');
      assert.equal(m.sha256, hash);
      const ref = io(net);
      assert.deepEqual(m.graph.inputs[0]!.shape, ['batch', ...ref.input.dims.slice(1)]);
      // PyTorch's kernels vs onnxruntime's, both float32 (logits are O(0.5)).
      expectAllClose(await forward(m.graph, ref.input), ref.logits.data, {
        rtol: 1e-4,
        atol: 1e-6,
        what: `${net} vs PyTorch`,
      });
    });
  }

  it('the resnet fixture holds num_batches_tracked (ignored) and non-trivial BatchNorm statistics', async () => {
    const { tensors } = contents('resnet');
    assert.equal(tensors['stem_bn.num_batches_tracked']?.dtype, 'I64');
    const mean = tensors['block2.down_bn.running_mean']!.data as Float32Array;
    assert.ok(mean.some((v) => v !== 0));
    const g = (await importModel(fixture('resnet'))).graph;
    assert.ok(![...g.initializers.keys()].some((k) => k.includes('num_batches_tracked')));
    assert.deepEqual(g.initializers.get('block2.down_bn.running_mean')!.data, mean);
  });

  it("convnext: nn.Linear's [out, in] pointwise weights become the MatMul's [in, out]", async () => {
    const { tensors } = contents('convnext');
    const g = (await importModel(fixture('convnext'))).graph;
    const w = tensors['block1.pwconv1.weight']!;
    const [out, inp] = w.shape as [number, number];
    const t = g.initializers.get('block1.pwconv1.weight')!;
    assert.deepEqual(t.dims, [inp, out]);
    const src = w.data as Float32Array;
    const dst = t.data as Float32Array;
    for (const [o, i] of [
      [0, 1],
      [out - 1, inp - 2],
      [3, 7],
    ] as const)
      assert.equal(dst[i * out + o], src[o * inp + i]);
    // The Gemm head keeps PyTorch's layout.
    assert.deepEqual(g.initializers.get('head.weight')!.data, tensors['head.weight']!.data);
    const layout = checkpointLayout({
      arch: 'convnext',
      inputShape: [1, 28, 28],
      classes: 7,
      width: 0.5,
      depth: 2,
      source: 'test',
    }).entries;
    assert.deepEqual(
      layout.filter((e) => e.transposed).map((e) => e.key),
      [
        'block0.pwconv1.weight',
        'block0.pwconv2.weight',
        'block1.pwconv1.weight',
        'block1.pwconv2.weight',
      ],
    );
  });

  for (const net of NETS) {
    it(`${net}: quadratize leaves the outputs unchanged and a few adapter steps lower the loss`, async () => {
      const base = (await importModel(fixture(net))).graph;
      const ref = io(net);
      const { graph } = quadratize(base, { rank: 2, seed: 1 });
      const y0 = await forward(base, ref.input);
      const y1 = await forward(graph, ref.input);
      const scale = y0.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      // DESIGN.md §3: equal to ≤ 1e-6 of the largest output magnitude.
      expectAllClose(y1, y0, { rtol: 0, atol: 1e-6 * scale, what: 'quadratized vs base' });

      const batch = { x: Float32Array.from(ref.input.data), y: Int32Array.from([0, 1]), size: 2 };
      const trainer = await Trainer.create(graph, {
        batchSize: 2,
        loss: { kind: 'cross_entropy' },
        optimizer: { kind: 'adamw' },
        groups: [{ name: 'quad', params: quadParamNames(graph), lr: 1e-2 }],
        batchNorm: 'frozen',
        dropout: false,
      });
      try {
        const losses: number[] = [];
        for (let i = 0; i < 6; i++) losses.push((await trainer.trainStep(batch)).loss);
        assert.ok(losses[5]! < losses[0]! - 1e-3, `loss did not go down: ${losses.join(', ')}`);
      } finally {
        await trainer.release();
      }
    });
  }

  it('a config.json next to the file declares the architecture; the header wins over it', async () => {
    const { tensors, metadata } = contents('convnext');
    const ref = io('convnext');
    const config = {
      architecture: 'convnext',
      input_shape: [1, 28, 28],
      classes: 7,
      width: 0.5,
      depth: 2,
      architectures: ['SomethingElse'], // other HF-style keys are ignored
    };
    const byConfig = await importModel(write(tensors, undefined, config));
    expectAllClose(await forward(byConfig.graph, ref.input), ref.logits.data, {
      rtol: 1e-4,
      atol: 1e-6,
      what: 'declared by config.json',
    });
    // A header declaration wins: a conflicting config.json is not read.
    const byHeader = await importModel(write(tensors, metadata, { architecture: 'resnet' }));
    assert.equal(byHeader.graph.name, 'convnext');
  });

  it('F64, F16 and BF16 weights are converted to float32', async () => {
    const { tensors, metadata } = contents('resnet');
    const f32 = tensors['head.weight']!.data as Float32Array;
    const conv = (dtype: 'F64' | 'F16' | 'BF16', f: (v: number) => number) => {
      const out: Record<string, SafeTensor> = {};
      for (const [k, t] of Object.entries(tensors)) {
        if (t.dtype !== 'F32') {
          out[k] = t;
          continue;
        }
        const src = t.data as Float32Array;
        const data = dtype === 'F64' ? Float64Array.from(src) : Uint16Array.from(src, (v) => f(v));
        out[k] = { dtype, shape: t.shape, data };
      }
      return out;
    };
    const bf16 = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0]! >>> 16;
    const cases = [
      ['F64', (v: number) => v, (v: number) => v],
      ['F16', toHalfBits, (v: number) => Math.fround(halfToFloat(toHalfBits(v)))],
      ['BF16', bf16, (v: number) => new Float32Array(Uint32Array.of(bf16(v) << 16).buffer)[0]!],
    ] as const;
    for (const [dtype, enc, expect] of cases) {
      const g = (await importModel(write(conv(dtype, enc), metadata))).graph;
      const got = g.initializers.get('head.weight')!;
      assert.equal(got.dtype, 'float32');
      assert.deepEqual(got.data, Float32Array.from(f32, expect), dtype);
    }
  });
});

const omit = <T>(o: Record<string, T>, key: string): Record<string, T> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
const { tensors, metadata } = contents('resnet');
const without = (key: string) => omit(tensors, key);

describe('checkpoints that do not fit their declaration are refused with one line', () => {
  it('a missing key', async () => {
    await assertRefused(
      write(without('block2.down.weight'), metadata),
      /tensor "block2\.down\.weight" is missing \(1 of the \d+ tensors of resnet \(input 3x32x32, 10 classes, width 1\).*save the full state_dict/,
    );
  });

  it('a renamed key (missing, and the unexpected name is shown)', async () => {
    const renamed = { ...without('head.weight'), 'fc.weight': tensors['head.weight']! };
    await assertRefused(
      write(renamed, metadata),
      /"head\.weight" is missing.*unexpected "fc\.weight"/,
    );
  });

  it('an unexpected key', async () => {
    const extra = { ...tensors, 'block3.conv1.weight': tensors['block1.conv1.weight']! };
    await assertRefused(
      write(extra, metadata),
      /unexpected tensor "block3\.conv1\.weight" \(1 not in resnet .*remove it/,
    );
  });

  it('a wrong shape', async () => {
    await assertRefused(
      write(tensors, { ...metadata, 'quadranet.classes': '12' }),
      /tensor "head\.weight" has shape \[10,32\] but resnet \(input 3x32x32, 12 classes, width 1\) expects \[12,32\]; fix the declaration/,
    );
  });

  it('an integer dtype', async () => {
    const t = tensors['head.bias']!;
    const bad = {
      ...tensors,
      'head.bias': { dtype: 'I32' as const, shape: t.shape, data: new Int32Array(10) },
    };
    await assertRefused(write(bad, metadata), /tensor "head\.bias" is I32; weights must be F32/);
  });

  it('an unknown architecture', async () => {
    await assertRefused(
      write(tensors, { ...metadata, 'quadranet.arch': 'vgg16' }),
      /unknown architecture "vgg16" \(__metadata__ "quadranet\.arch"\); declare one of: resnet, convnext/,
    );
    await assertRefused(
      write(tensors, undefined, { architecture: 'vit', input_shape: [3, 32, 32] }),
      /unknown architecture "vit" \(.*config\.json "architecture"\)/,
    );
  });

  it('no declaration (and an adapter file is told apart)', async () => {
    await assertRefused(
      write(tensors, { format: 'pt' }),
      /declares no architecture \(no "quadranet\.arch" in __metadata__, no .*config\.json\); save it with quadranet_torch\.save_checkpoint/,
    );
    await assertRefused(
      write(tensors, undefined, { model_type: 'resnet' }),
      /declares no architecture \(.*no "architecture" in .*config\.json\)/,
    );
    await assertRefused(
      write(tensors, { format: 'quadranet-adapter' }),
      /is a quadranet adapter, not a model/,
    );
  });

  it('bad metadata and a bad config.json', async () => {
    const meta = (extra: Record<string, string>) => write(tensors, { ...metadata, ...extra });
    await assertRefused(
      meta({ 'quadranet.classes': 'ten' }),
      /__metadata__ "quadranet\.classes" is "ten", not a whole number from 1 to 100000; fix the declaration/,
    );
    await assertRefused(
      meta({ 'quadranet.input_shape': '3x32' }),
      /__metadata__ "quadranet\.input_shape" is "3x32", not "CxHxW"/,
    );
    await assertRefused(
      meta({ 'quadranet.width': '0' }),
      /"quadranet\.width" is "0", not a number above 0/,
    );
    await assertRefused(
      meta({ 'quadranet.depth': '2' }),
      /"quadranet\.depth" is "2", but resnet has no depth/,
    );
    await assertRefused(meta({ 'quadranet.widht': '1' }), /unknown key "quadranet\.widht"/);
    await assertRefused(
      write(tensors, omit(metadata, 'quadranet.arch')),
      /has "quadranet\.\w+" but no "quadranet\.arch"/,
    );
    await assertRefused(
      write(tensors, omit(metadata, 'quadranet.input_shape')),
      /__metadata__ "quadranet\.input_shape" is missing; declare the input images' C, H, W/,
    );
    await assertRefused(
      write(tensors, undefined, '{"architecture": '),
      /config\.json is not valid JSON/,
    );
    await assertRefused(
      write(tensors, undefined, { architecture: 'resnet', input_shape: [3, 32, 32], classes: 2.5 }),
      /config\.json "classes" is 2\.5, not a whole number/,
    );
  });
});

describe('the CLI reads a checkpoint as a MODEL', () => {
  it('quadranet inspect fixtures/models/torch_resnet.safetensors', () => {
    // bin/quadranet.js runs the compiled dist/; this runs the CLI from the sources.
    const runner = join(dir, 'cli.mts');
    writeFileSync(
      runner,
      `const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'src/cli/main.ts')).href)});\n` +
        'process.exitCode = await main(process.argv.slice(2));\n',
    );
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', runner, ...args], {
        cwd: ROOT,
        encoding: 'utf8',
      });
    const r = cli(
      'inspect',
      'fixtures/models/torch_resnet.safetensors',
      '--json',
      '--latency-runs',
      '0',
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { layers: { node: string; adaptable: boolean }[] };
    assert.deepEqual(
      j.layers.map((l) => l.node),
      [
        'stem',
        'block1.conv1',
        'block1.conv2',
        'block2.conv1',
        'block2.conv2',
        'block2.down',
        'head',
      ],
    );
    const bad = write(without('stem.weight'), metadata);
    const e = cli('inspect', bad, '--latency-runs', '0');
    assert.notEqual(e.status, 0);
    const lines = e.stderr.split('\n').filter((l) => l.trim() && !/onnxruntime|\[W:/.test(l));
    assert.equal(lines.length, 1, e.stderr);
    assert.match(lines[0]!, /model\.safetensors: tensor "stem\.weight" is missing/);
  });
});
