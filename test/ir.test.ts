import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '../src/ir/builder.js';
import { GraphError, validateGraph, emptyGraph } from '../src/ir/graph.js';
import { decodeModel, encodeModel, OnnxFormatError } from '../src/ir/onnx.js';
import { inferShapes } from '../src/ir/shapes/index.js';
import { int64s, scalar, tensor, toHalfBits } from '../src/ir/tensor.js';
import { cnn, convnext, resnet } from '../src/models/zoo.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { expectAllClose } from './helpers/allclose.js';

describe('tensors', () => {
  it('float16 constants hold IEEE half bits', () => {
    assert.deepEqual(
      Array.from(tensor('float16', [4], [0.5, 1, -2, 65504]).data as Uint16Array),
      [0x3800, 0x3c00, 0xc000, 0x7bff],
    );
    assert.equal(toHalfBits(1e6), 0x7c00);
  });
  it('int64 sentinels beyond 2^63 clamp instead of wrapping', () => {
    assert.equal(int64s([2 ** 63])[`data`][0], 9223372036854775807n);
    assert.equal(int64s([-(2 ** 63)])[`data`][0], -9223372036854775808n);
  });
});

describe('graph validation', () => {
  it('names the node that reads an undefined value', () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [2]);
    b.op('Add', [x, 'nope'], {}, { name: 'adder' });
    assert.throws(
      () => validateGraph(g),
      (e: Error) => e instanceof GraphError && /adder/.test(e.message) && /nope/.test(e.message),
    );
  });
  it('detects a cycle and names a node on it', () => {
    const g = emptyGraph('g');
    g.inputs.push({ name: 'x', dtype: 'float32', shape: [1] });
    g.nodes.push({
      name: 'n1',
      opType: 'Add',
      domain: '',
      inputs: ['x', 'b'],
      outputs: ['a'],
      attrs: {},
    });
    g.nodes.push({
      name: 'n2',
      opType: 'Relu',
      domain: '',
      inputs: ['a'],
      outputs: ['b'],
      attrs: {},
    });
    assert.throws(() => validateGraph(g), /cycle/);
  });
});

describe('shape inference', () => {
  it('infers the zoo models end to end with a symbolic batch', () => {
    for (const m of [cnn(), resnet(), convnext()]) {
      const info = inferShapes(m);
      assert.deepEqual(
        info.unsupported.map((n) => n.opType),
        [],
      );
      assert.deepEqual(info.values.get(m.outputs[0]!.name)!.shape, ['batch', 10]);
    }
  });
  it('ConvTranspose with auto_pad SAME_UPPER gives input × stride', () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [1, 2, 3, 3]);
    const w = b.constant(tensor('float32', [2, 4, 3, 3], new Array(72).fill(0.1)));
    const y = b.op('ConvTranspose', [x, w], { strides: [2, 2], auto_pad: 'SAME_UPPER' });
    assert.deepEqual(inferShapes(g).values.get(y)!.shape, [1, 4, 6, 6]);
  });
  it('folds Shape → Gather → Concat chains into static reshape targets', () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [2, 3, 4]);
    const shape = b.op('Shape', [x]);
    const n = b.op('Gather', [shape, b.constant(int64s([0]))], { axis: 0 });
    const y = b.op('Reshape', [x, b.concat([n, b.ints([-1])], 0)]);
    assert.deepEqual(inferShapes(g).values.get(y)!.shape, [2, 12]);
  });
  it("Reshape's -1 with a symbolic batch: matching symbols cancel, a mismatch stays unknown", () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', ['batch', 2, 4, 8, 8]);
    const dim = (i: number) =>
      b.op('Unsqueeze', [
        b.op('Gather', [b.op('Shape', [x]), b.constant(scalar(i, 'int64'))], { axis: 0 }),
        b.ints([0]),
      ]);
    // torch's channel shuffle: x.view(b, -1, h, w) with b read back from the shape.
    const shuffled = b.op('Reshape', [x, b.concat([dim(0), b.ints([-1, 8, 8])], 0)]);
    const flat = b.op('Reshape', [x, b.ints([-1, 512])]);
    // -1 here is 2·batch: not representable, so not the batch symbol.
    const twice = b.op('Reshape', [x, b.ints([-1, 256])]);
    const info = inferShapes(g);
    assert.deepEqual(info.values.get(shuffled)!.shape, ['batch', 8, 8, 8]);
    assert.deepEqual(info.values.get(flat)!.shape, ['batch', 512]);
    const d = info.values.get(twice)!.shape[0];
    assert.ok(typeof d === 'string' && d !== 'batch', String(d));
    const bad = emptyGraph('bad');
    const bb = new GraphBuilder(bad);
    bb.op('Reshape', [bb.input('x', 'float32', [2, 3]), bb.ints([-1, 4])]);
    assert.throws(() => inferShapes(bad), /cannot reshape \[2,3\] to \[-1,4\]/);
  });
});

describe('ONNX read/write', () => {
  it('round trip IR → ONNX → IR → ONNX gives identical outputs in onnxruntime', async () => {
    for (const m of [cnn({ seed: 3 }), resnet({ seed: 3 }), convnext({ seed: 3 })]) {
      const bytes = encodeModel(m);
      const back = decodeModel(bytes, { file: 'model.onnx' });
      assert.deepEqual([...back.initializers.keys()].sort(), [...m.initializers.keys()].sort());
      const bytes2 = encodeModel(back);
      const rng = new Rng(1);
      const x = rng.uniformArray(2 * 28 * 28, 0, 1);
      const feeds = { input: { dtype: 'float32' as const, dims: [2, 1, 28, 28], data: x } };
      const a = await (await Session.create(m)).run(feeds);
      const c = await (await Session.create(decodeModel(bytes2))).run(feeds);
      expectAllClose(c['logits']!.data as Float32Array, a['logits']!.data as Float32Array, {
        rtol: 0,
        atol: 0,
      });
    }
  });
  it('turns Constant-node weights into initializers', () => {
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [1, 3]);
    g.nodes.push({
      name: 'w_const',
      opType: 'Constant',
      domain: '',
      inputs: [],
      outputs: ['w'],
      attrs: { value: { type: 'tensor', value: tensor('float32', [3, 2], [1, 2, 3, 4, 5, 6]) } },
    });
    const y = b.matmul(x, 'w');
    b.output(y, 'float32', [1, 2]);
    const back = decodeModel(encodeModel(g));
    assert.ok(back.initializers.has('w'));
    assert.equal(back.nodes.filter((n) => n.opType === 'Constant').length, 0);
  });
  it('upgrades opset-11 axes attributes to inputs', () => {
    const g = emptyGraph('g');
    g.opset = 11;
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [2, 3]);
    const y = b.op('ReduceMean', [x], { axes: [1], keepdims: 0 });
    const z = b.op('Unsqueeze', [y], { axes: [0] });
    b.output(z, 'float32', [1, 2]);
    const bytes = encodeModel(g, { opset: 11 });
    const back = decodeModel(bytes);
    assert.equal(back.opset, 18);
    assert.equal(back.nodes[0]!.inputs.length, 2);
    assert.deepEqual(inferShapes(back).values.get(z)!.shape, [1, 2]);
  });
  it('refuses garbage, empty models, bad opsets and external data with one-line errors naming the file', () => {
    assert.throws(
      () => decodeModel(new Uint8Array([1, 2, 3, 250, 251]), { file: 'junk.onnx' }),
      (e: Error) =>
        e instanceof OnnxFormatError &&
        e.message.startsWith('junk.onnx:') &&
        !e.message.includes('\n'),
    );
    const g = emptyGraph('g');
    const b = new GraphBuilder(g);
    const x = b.input('x', 'float32', [1]);
    b.output(b.relu(x), 'float32', [1]);
    assert.throws(
      () => decodeModel(encodeModel(g, { opset: 6 }), { file: 'old.onnx' }),
      /old\.onnx: opset 6 is not supported \(supported: 7–21\)/,
    );
  });
});

describe('models exported by torch.onnx.export', () => {
  for (const opset of [13, 17]) {
    it(`opset ${opset}: import → IR → ONNX runs with PyTorch's outputs and the same outputs as the original file`, async () => {
      const { readFileSync } = await import('node:fs');
      const file = new URL(`../fixtures/models/torch_cnn_opset${opset}.onnx`, import.meta.url);
      const io = JSON.parse(
        readFileSync(new URL('../fixtures/models/torch_cnn.io.json', import.meta.url), 'utf8'),
      );
      const bytes = readFileSync(file);
      const g = decodeModel(bytes, { file: 'torch_cnn.onnx' });
      assert.equal(g.nodes.filter((n) => n.opType === 'Constant').length, 0);
      assert.deepEqual(
        inferShapes(g).unsupported.map((n) => n.opType),
        [],
      );
      const feeds = {
        input: {
          dtype: 'float32' as const,
          dims: io.input.dims,
          data: Float32Array.from(io.input.data),
        },
      };
      const ours = await (await Session.create(decodeModel(encodeModel(g)))).run(feeds);
      const ort = await import('onnxruntime-node');
      const orig = await (
        await ort.InferenceSession.create(bytes)
      ).run({ input: new ort.Tensor('float32', feeds.input.data, io.input.dims) });
      expectAllClose(ours['logits']!.data as Float32Array, orig['logits']!.data as Float32Array, {
        rtol: 0,
        atol: 0,
        what: 'vs original file',
      });
      // PyTorch computed in its own kernels: agreement to float32 rounding.
      expectAllClose(ours['logits']!.data as Float32Array, io.logits.data, {
        rtol: 1e-4,
        atol: 1e-5,
        what: 'vs PyTorch',
      });
    });
  }
});
