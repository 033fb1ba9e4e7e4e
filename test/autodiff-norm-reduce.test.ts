import { describe, it } from 'node:test';
import { gradcheck } from './helpers/gradcheck.js';

// InstanceNormalization has no float64 kernel in onnxruntime 1.30, so it is checked in float32
// with eps 1e-2 and rtol 2e-2 / atol 3e-3 (normalisation is smooth; float32 rounding of the
// forward dominates). GroupNormalization (a function op, expanded by onnxruntime), the Reduce
// ops and LpNormalization run in float64 with gradcheck's float64 defaults.
const F32 = { dtype: 'float32', rtol: 2e-2, atol: 3e-3 } as const;

describe('gradients: InstanceNormalization (float32 finite differences)', () => {
  for (const dims of [
    [2, 3, 4, 5],
    [2, 3, 6],
  ]) {
    it(`[${dims}]: X, scale, B`, async () => {
      await gradcheck({
        ...F32,
        inputs: { x: { dims }, scale: { dims: [3] }, bias: { dims: [3] } },
        build: (b, v) =>
          b.op('InstanceNormalization', [v.x!, v.scale!, v.bias!], { epsilon: 1e-3 }),
      });
    });
  }
});

describe('gradients: GroupNormalization (float64 finite differences)', () => {
  it('per-group scale and bias (opset 18), 2 groups of 2 channels', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 4, 3, 2] }, scale: { dims: [2] }, bias: { dims: [2] } },
      build: (b, v) =>
        b.op('GroupNormalization', [v.x!, v.scale!, v.bias!], { num_groups: 2, epsilon: 1e-3 }),
    });
  });
  it('one group per channel (the scale size equals C)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3, 4] }, scale: { dims: [3] }, bias: { dims: [3] } },
      build: (b, v) =>
        b.op('GroupNormalization', [v.x!, v.scale!, v.bias!], { num_groups: 3, epsilon: 1e-3 }),
    });
  });
});

// Values without ties (so Max / Min pick one element and differences stay on one side).
const distinct = (n: number) =>
  Array.from({ length: n }, (_, i) => (((i * 37) % n) - n / 2) / 7 + 0.05);

describe('gradients: Reduce ops and LpNormalization (float64 finite differences)', () => {
  for (const op of ['ReduceMax', 'ReduceMin', 'ReduceL2', 'ReduceLogSumExp', 'ReduceProd']) {
    for (const [axes, keepdims] of [
      [[1], 1],
      [[0, 2], 0],
      [[], 1],
    ] as const) {
      it(`${op} axes [${axes}] keepdims ${keepdims}`, async () => {
        await gradcheck({
          dtype: 'float64',
          inputs: { x: { dims: [2, 3, 4], data: distinct(24) } },
          build: (b, v) => b.op(op, axes.length ? [v.x!, b.ints(axes)] : [v.x!], { keepdims }),
        });
      });
    }
  }
  for (const [p, axis] of [
    [2, 1],
    [2, -1],
    [1, 0],
  ]) {
    it(`LpNormalization p ${p} axis ${axis}`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: [3, 4], data: distinct(12) } },
        build: (b, v) => b.op('LpNormalization', [v.x!], { p, axis }),
      });
    });
  }
});
