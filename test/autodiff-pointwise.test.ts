import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { emptyGraph } from '../src/ir/graph.js';
import { ONNX_DTYPE } from '../src/ir/tensor.js';
import { gradcheck } from './helpers/gradcheck.js';

// Pointwise ops of exported models (issue #18). onnxruntime 1.30 CPU has float64 kernels for
// all of them except Mean, Celu and Atan, which are checked in float32 with gradcheck's float32
// defaults (eps 1e-2, rtol 2e-2, atol 2e-3): they are smooth, so central differences are
// accurate to O(eps²) there.

/** Values with lo <= |v| <= hi and alternating signs (differences never straddle 0). */
function spread(n: number, lo = 0.2, hi = 2): number[] {
  return Array.from({ length: n }, (_, i) => {
    const m = lo + ((hi - lo) * ((i * 7919) % n)) / Math.max(1, n - 1);
    return i % 2 === 0 ? m : -m;
  });
}

describe('gradients: Max / Min / Mean (finite differences)', () => {
  for (const op of ['Max', 'Min']) {
    it(`${op} of three broadcast inputs, no ties`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          a: { dims: [2, 3, 4], data: spread(24, 0.1, 3) },
          b: { dims: [3, 1], data: [0.55, -0.45, 1.05] },
          c: { dims: [4], data: [0.35, -1.15, 2.25, -0.05] },
        },
        build: (b, v) => b.op(op, [v.a!, v.b!, v.c!]),
      });
    });
    // Central differences at a tie of two inputs give exactly ½ each: the split rule.
    it(`${op} of two inputs with ties splits the gradient equally`, async () => {
      const a = [0.5, -1, 2, 0.25, 3, -2];
      await gradcheck({
        dtype: 'float64',
        inputs: {
          a: { dims: [2, 3], data: a },
          b: { dims: [2, 3], data: [0.5, 1, 2, -0.75, 3, -1] },
        },
        build: (b, v) => b.op(op, [v.a!, v.b!]),
      });
    });
    it(`${op} with a constant clipping bound (tf2onnx clip form)`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          a: { dims: [3, 4], data: spread(12, 0.1, 2.5) },
          lim: { dims: [], data: [op === 'Max' ? -0.7 : 0.7], constant: true },
        },
        build: (b, v) => b.op(op, [v.a!, v.lim!]),
      });
    });
    it(`${op} of one input is the identity`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { a: { dims: [2, 3] } },
        build: (b, v) => b.op(op, [v.a!]),
      });
    });
  }
  it('Mean of three broadcast inputs (float32: no float64 kernel)', async () => {
    await gradcheck({
      dtype: 'float32',
      inputs: { a: { dims: [2, 3, 4] }, b: { dims: [3, 1] }, c: { dims: [4] } },
      build: (b, v) => b.op('Mean', [v.a!, v.b!, v.c!]),
    });
  });
});

describe('gradients: Where (float64 finite differences)', () => {
  it('both branches, broadcast condition and operands', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3, 4] }, y: { dims: [3, 1] }, s: { dims: [4], grad: false } },
      build: (b, v) => b.op('Where', [b.op('Greater', [v.s!, b.scalar(0, 'float64')]), v.x!, v.y!]),
    });
  });
});

const unary: [string, Record<string, number>, number[] | undefined, 'float32' | 'float64'][] = [
  ['Elu', {}, spread(24), 'float64'],
  ['Elu', { alpha: 0.4 }, spread(24), 'float64'],
  ['Selu', {}, spread(24), 'float64'],
  ['Selu', { alpha: 1.2, gamma: 0.9 }, spread(24), 'float64'],
  ['Celu', {}, spread(24), 'float32'],
  ['Celu', { alpha: 2 }, spread(24), 'float32'],
  ['Mish', {}, undefined, 'float64'],
  ['Softsign', {}, spread(24), 'float64'],
  [
    'ThresholdedRelu',
    {},
    spread(24, 0.1, 0.8)
      .concat(spread(24, 1.2, 3))
      .slice(0, 24),
    'float64',
  ],
  ['ThresholdedRelu', { alpha: 0.5 }, spread(24, 0.6, 2), 'float64'],
  ['Sin', {}, undefined, 'float64'],
  ['Cos', {}, undefined, 'float64'],
  ['Atan', {}, undefined, 'float32'],
];

describe('gradients: pointwise activations (finite differences)', () => {
  for (const [op, attrs, data, dtype] of unary) {
    it(`${op} ${JSON.stringify(attrs)} (${dtype})`, async () => {
      await gradcheck({
        dtype,
        inputs: { x: { dims: [2, 3, 4], data } },
        build: (b, x) => b.op(op, [x.x!], attrs),
      });
    });
  }
  for (const slope of [[2, 3, 4], [3, 1], [1], [4]]) {
    it(`PRelu with slope [${slope}] (x and slope gradients)`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: [2, 3, 4], data: spread(24) }, slope: { dims: slope } },
        build: (b, v) => b.op('PRelu', [v.x!, v.slope!]),
      });
    });
  }
  it('Cast float64 → float32 → float64 (the gradient is cast back)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3] } },
      // The float32 round trip limits the differences to ~1e-7 · |x²| / eps.
      eps: 1e-2,
      rtol: 1e-4,
      atol: 1e-4,
      build: (b, v) => {
        const f = b.op('Cast', [v.x!], { to: ONNX_DTYPE.float32 });
        return b.op('Cast', [b.mul(f, f)], { to: ONNX_DTYPE.float64 });
      },
    });
  });
  // Floor/Ceil/Round/Sign are piecewise constant: away from their jumps the differences are 0,
  // and the path through them must contribute nothing (x also reaches the output directly).
  for (const op of ['Floor', 'Ceil', 'Round', 'Sign']) {
    it(`${op} has a zero gradient`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: [2, 3], data: [0.3, -1.2, 2.2, -0.4, 1.7, -2.7] } },
        build: (b, v) => b.add(b.mul(b.op(op, [v.x!]), v.x!), v.x!),
      });
    });
  }
});

describe('integer-valued ops pass through without gradient rules', () => {
  it('Shape, Size, ArgMax, NonZero and comparisons on the path are not blocking', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3], data: spread(6, 0.3, 2) } },
      build: (b, v) => {
        // y = x · (x > 0) + x · Cast(argmax(x) == 1) + reshape(x, Shape(x)) · Size(x)
        const pos = b.cast(b.op('Greater', [v.x!, b.scalar(0, 'float64')]), 'float64');
        const am = b.op('ArgMax', [v.x!], { axis: 1, keepdims: 1 });
        const is1 = b.cast(b.op('Equal', [am, b.ints([1])]), 'float64');
        const nz = b.cast(
          b.op('ReduceSum', [b.op('NonZero', [b.cast(v.x!, 'float32')])], { keepdims: 0 }),
          'float64',
        );
        const size = b.cast(b.op('Size', [v.x!]), 'float64');
        const re = b.op('Reshape', [v.x!, b.op('Shape', [v.x!])]);
        const parts = [b.mul(v.x!, pos), b.mul(v.x!, is1), b.mul(re, size)];
        return b.add(
          b.add(b.op('Sum', parts), b.mul(v.x!, b.scalar(0, 'float64'))),
          b.mul(nz, b.scalar(0, 'float64')),
        );
      },
    });
  });
  it('backward does not ask for a rule of an integer-output op', () => {
    const g = emptyGraph('t');
    const b = new GraphBuilder(g);
    b.input('x', 'float32', [2, 3]);
    const y = b.op('Reshape', [
      b.mul('x', 'x'),
      b.op('Shape', [b.op('ArgMax', ['x'], { axis: 0 })]),
    ]);
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    const { grads } = backward(g, { loss, wrt: ['x'] });
    assert.ok(grads.get('x'));
  });
});
