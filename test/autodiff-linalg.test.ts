import { describe, it } from 'node:test';
import { gradcheck } from './helpers/gradcheck.js';

describe('gradients: elementwise arithmetic (float64 finite differences)', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div'] as const) {
    it(`${op} with broadcasting`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          a: { dims: [2, 3, 4] },
          b: { dims: [3, 1], data: op === 'Div' ? [1.5, -2, 2.5] : undefined },
        },
        build: (b, x) => b.op(op, [x.a!, x.b!]),
      });
    });
  }
  it('Neg and Sum', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { a: { dims: [2, 3] }, b: { dims: [3] } },
      build: (b, x) => b.op('Sum', [b.neg(x.a!), x.b!, x.a!]),
    });
  });
  it('a value used twice accumulates its gradient', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { a: { dims: [4] } },
      build: (b, x) => b.mul(x.a!, x.a!),
    });
  });
});

describe('gradients: MatMul and Gemm (float64 finite differences)', () => {
  const shapes: [number[], number[]][] = [
    [
      [3, 4],
      [4, 5],
    ],
    [
      [2, 3, 4],
      [4, 5],
    ],
    [
      [2, 3, 4],
      [2, 4, 5],
    ],
    [
      [2, 1, 3, 4],
      [3, 4, 2],
    ],
    [[4], [4, 5]],
    [[2, 3, 4], [4]],
  ];
  for (const [as, bs] of shapes) {
    it(`MatMul [${as}] x [${bs}]`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { a: { dims: as }, b: { dims: bs } },
        build: (b, x) => b.matmul(x.a!, x.b!),
      });
    });
  }
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      it(`Gemm transA=${transA} transB=${transB} alpha/beta and broadcast C`, async () => {
        await gradcheck({
          dtype: 'float64',
          inputs: {
            a: { dims: transA ? [4, 3] : [3, 4] },
            w: { dims: transB ? [5, 4] : [4, 5] },
            c: { dims: [5] },
          },
          build: (b, x) =>
            b.op('Gemm', [x.a!, x.w!, x.c!], { transA, transB, alpha: 0.7, beta: 1.3 }),
        });
      });
    }
  }
});
