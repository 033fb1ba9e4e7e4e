import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { GraphError, emptyGraph } from '../src/ir/graph.js';
import { tensor } from '../src/ir/tensor.js';
import { Session } from '../src/runtime/session.js';
import { expectAllClose } from './helpers/allclose.js';
import { buildCheck, gradcheck } from './helpers/gradcheck.js';

/**
 * Deterministic values with lo <= |v| <= hi and alternating signs (so finite differences never
 * straddle the kink of Relu / Abs / LeakyRelu at 0).
 */
function spread(n: number, lo = 0.2, hi = 2, positive = false): number[] {
  return Array.from({ length: n }, (_, i) => {
    const m = lo + ((hi - lo) * ((i * 7919) % n)) / Math.max(1, n - 1);
    return positive || i % 2 === 0 ? m : -m;
  });
}

const unary: [string, Record<string, number>, number[] | undefined][] = [
  ['Exp', {}, undefined],
  ['Log', {}, spread(24, 0.3, 3, true)],
  ['Sqrt', {}, spread(24, 0.3, 3, true)],
  ['Relu', {}, spread(24)],
  ['LeakyRelu', { alpha: 0.1 }, spread(24)],
  ['LeakyRelu', {}, spread(24)],
  ['Sigmoid', {}, undefined],
  ['Tanh', {}, undefined],
  ['Abs', {}, spread(24)],
  ['Reciprocal', {}, spread(24, 0.4, 2)],
  ['Softplus', {}, undefined],
  // The kinks of HardSigmoid (αx + β ∈ {0, 1}) and HardSwish (x = ±3) are avoided.
  ['HardSigmoid', {}, [...spread(12, 0.1, 2.3), ...spread(12, 2.7, 4)]],
  ['HardSigmoid', { alpha: 0.5, beta: 0.1 }, [...spread(12, 0.1, 1.6), ...spread(12, 2, 3)]],
  ['HardSwish', {}, [...spread(12, 0.1, 2.8), ...spread(12, 3.2, 5)]],
];

describe('gradients: unary activations (float64 finite differences)', () => {
  for (const [op, attrs, data] of unary) {
    it(`${op} ${JSON.stringify(attrs)}`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: [2, 3, 4], data } },
        build: (b, x) => b.op(op, [x.x!], attrs),
      });
    });
  }

  it('Pow with a broadcast tensor exponent (both gradients)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: {
        x: { dims: [2, 3], data: spread(6, 0.5, 2, true) },
        p: { dims: [3], data: [0.5, 2.5, -1.5] },
      },
      build: (b, x) => b.op('Pow', [x.x!, x.p!]),
    });
  });
  for (const [p, dtype] of [
    [2, 'float64'],
    [3, 'float64'],
    [-0.5, 'float64'],
    [3, 'int64'],
  ] as const) {
    it(`Pow with a constant ${dtype} exponent ${p}`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          x: { dims: [2, 3], data: spread(6, 0.5, 2, p !== -0.5 ? false : true) },
          p: { dims: [], data: [p], dtype, constant: true },
        },
        build: (b, x) => b.op('Pow', [x.x!, x.p!]),
      });
    });
  }

  for (const axis of [0, 1, -1]) {
    for (const op of ['Softmax', 'LogSoftmax']) {
      it(`${op} axis ${axis}`, async () => {
        await gradcheck({
          dtype: 'float64',
          inputs: { x: { dims: [2, 3, 4] } },
          build: (b, x) => b.op(op, [x.x!], { axis }),
        });
      });
    }
  }
  it('Softmax with the default axis (-1)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [3, 5] } },
      build: (b, x) => b.op('Softmax', [x.x!]),
    });
  });
});

describe('gradients: Clip (float64 finite differences)', () => {
  // x never within 0.1 of a bound, so no difference straddles a kink.
  const x = spread(24, 0.1, 2.2).map((v) => (Math.abs(Math.abs(v) - 1) < 0.1 ? v * 1.3 : v));
  it('min and max inputs (x, min and max gradients)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: {
        x: { dims: [2, 3, 4], data: x },
        lo: { dims: [], data: [-1] },
        hi: { dims: [], data: [1] },
      },
      build: (b, v) => b.op('Clip', [v.x!, v.lo!, v.hi!]),
    });
  });
  it('only min', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3, 4], data: x }, lo: { dims: [], data: [-1], constant: true } },
      build: (b, v) => b.op('Clip', [v.x!, v.lo!]),
    });
  });
  it('only max', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3, 4], data: x }, hi: { dims: [], data: [1], constant: true } },
      build: (b, v) => b.op('Clip', [v.x!, '', v.hi!]),
    });
  });
  it('no bounds (identity)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3, 4], data: x } },
      build: (b, v) => b.op('Clip', [v.x!]),
    });
  });
});

// onnxruntime-node 1.30 has no float64 kernel for Erf (so neither for Gelu, which it expands into
// Erf): session creation fails with "Could not find an implementation for Erf(13)". These checks
// run in float32 with gradcheck's float32 defaults (eps 1e-2, rtol 2e-2, atol 2e-3); the PyTorch
// fixtures in fixtures-ops-norm.test.ts check Gelu's gradient to rtol 1e-4 / atol 1e-5.
describe('gradients: Erf and Gelu (float32 finite differences; no float64 Erf kernel)', () => {
  it('Erf', async () => {
    await gradcheck({
      dtype: 'float32',
      inputs: { x: { dims: [2, 3, 4] } },
      build: (b, x) => b.op('Erf', [x.x!]),
    });
  });
  for (const approximate of ['none', 'tanh']) {
    it(`Gelu approximate=${approximate}`, async () => {
      await gradcheck({
        dtype: 'float32',
        inputs: { x: { dims: [2, 3, 4], data: spread(24, 0.05, 3.5) } },
        build: (b, x) => b.op('Gelu', [x.x!], { approximate }),
      });
    });
  }
  it("Gelu's gradient is composed without Gelu", async () => {
    const { graph } = await buildCheck({
      dtype: 'float32',
      inputs: { x: { dims: [4] } },
      build: (b, x) => b.op('Gelu', [x.x!], { approximate: 'tanh' }),
    });
    assert.equal(graph.nodes.filter((n) => n.opType === 'Gelu').length, 1);
    assert.ok(graph.nodes.every((n) => n.domain === ''));
  });
});

describe('gradients: Dropout', () => {
  const trueConst = (b: GraphBuilder) => b.constant(tensor('bool', [], [1]), 'tm');

  it('inference mode (no training_mode input) is the identity', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [3, 4] } },
      build: (b, x) => b.op('Dropout', [x.x!, b.scalar(0.5, 'float64')]),
    });
  });
  it('training mode with ratio 0 has the identity gradient', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [3, 4] } },
      build: (b, x) =>
        b.opN('Dropout', [x.x!, b.scalar(0, 'float64'), trueConst(b)], {}, { outputs: 2 })[0]!,
    });
  });

  /** y = Dropout(x) in training mode, its mask and dX for a given dy, from one run. */
  async function dropoutRun(ratio: number | undefined, dynamic: boolean, training = true) {
    const g = emptyGraph('t');
    const b = new GraphBuilder(g);
    const n = 60;
    b.input('x', 'float64', [6, 10]);
    const tm = dynamic ? b.input('tm', 'bool', []) : trueConst(b);
    const ratioIn = ratio === undefined ? '' : b.scalar(ratio, 'float64');
    const [y, mask] = b.opN(
      'Dropout',
      ['x', ratioIn, tm],
      { seed: { type: 'int', value: 7 } },
      {
        outputs: 2,
      },
    );
    const dyData = spread(n, 0.5, 1.5);
    const dy = b.constant(tensor('float64', [6, 10], dyData), 'dy');
    const loss = b.op('ReduceSum', [b.mul(y!, dy)], { keepdims: 0 });
    b.output(loss, 'float64', []);
    const { graph, grads } = backward(g, { loss, wrt: ['x'] });
    const dx = grads.get('x')!;
    graph.outputs.push(
      { name: y!, dtype: 'float64', shape: [6, 10] },
      { name: mask!, dtype: 'bool', shape: [6, 10] },
      { name: dx, dtype: 'float64', shape: [6, 10] },
    );
    const s = await Session.create(graph);
    const xData = spread(n, 0.3, 2);
    const feeds: Parameters<Session['run']>[0] = {
      x: { dtype: 'float64', dims: [6, 10], data: Float64Array.from(xData) },
    };
    if (dynamic)
      feeds['tm'] = { dtype: 'bool', dims: [], data: Uint8Array.from([training ? 1 : 0]) };
    const r = await s.run(feeds);
    await s.release();
    return {
      x: xData,
      dy: dyData,
      y: Array.from(r[y!]!.data as Float64Array),
      mask: Array.from(r[mask!]!.data as Uint8Array),
      dx: Array.from(r[dx]!.data as Float64Array),
    };
  }

  for (const [ratio, label] of [
    [0.3, 'ratio 0.3'],
    [undefined, 'default ratio 0.5'],
  ] as const) {
    it(`training mode, ${label}: dX = dy * mask / (1 - ratio) with the forward's mask`, async () => {
      const r = await dropoutRun(ratio, false);
      const scale = 1 / (1 - (ratio ?? 0.5));
      const kept = r.mask.filter((m) => m).length;
      assert.ok(kept > 5 && kept < 55, `a mask that drops some and keeps some (kept ${kept})`);
      // onnxruntime's forward computes its scale 1/(1 - ratio) in float32 even for float64 data.
      expectAllClose(
        r.y,
        r.x.map((v, i) => v * r.mask[i]! * scale),
        { rtol: 1e-7, what: 'y' },
      );
      expectAllClose(
        r.dx,
        r.dy.map((v, i) => v * r.mask[i]! * scale),
        { rtol: 1e-12, what: 'dX' },
      );
    });
  }
  it('a training_mode fed at run time selects the scale', async () => {
    const on = await dropoutRun(0.3, true, true);
    expectAllClose(
      on.dx,
      on.dy.map((v, i) => (v * on.mask[i]!) / 0.7),
      { rtol: 1e-12 },
    );
    const off = await dropoutRun(0.3, true, false);
    expectAllClose(off.y, off.x, { rtol: 0 });
    expectAllClose(off.dx, off.dy, { rtol: 0 });
  });
  it('training mode without a mask output asks for setTrainingMode', () => {
    const g = emptyGraph('t');
    const b = new GraphBuilder(g);
    b.input('x', 'float32', [2, 3]);
    const y = b.op('Dropout', ['x', b.scalar(0.2), trueConst(b)]);
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    assert.throws(
      () => backward(g, { loss, wrt: ['x'] }),
      (e: unknown) => e instanceof GraphError && /setTrainingMode/.test(e.message),
    );
  });
});
