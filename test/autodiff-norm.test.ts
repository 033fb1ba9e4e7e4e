import { describe, it } from 'node:test';
import { gradcheck } from './helpers/gradcheck.js';

// onnxruntime-node 1.30 has float64 kernels for BatchNormalization (both modes) and for
// LayerNormalization; with stash_type 1 (the default) LayerNormalization's Mean / InvStdDev
// outputs are float32 even for float64 X (the rule then recomputes them in float64).
// onnxruntime refuses a training-mode BatchNormalization with fewer than 3 outputs, which is why
// setTrainingMode always adds the running-statistic outputs.

describe('gradients: BatchNormalization (float64 finite differences)', () => {
  for (const dims of [
    [2, 3, 2, 3],
    [4, 3],
    [3, 2, 4],
  ]) {
    const c = dims[1]!;
    const stats = {
      mean: { dims: [c], data: [0.3, -0.2, 0.5].slice(0, c) },
      var: { dims: [c], data: [0.5, 1.7, 2.2].slice(0, c) },
    };
    it(`inference mode [${dims}]: X, scale, B, mean and var`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          x: { dims },
          scale: { dims: [c] },
          bias: { dims: [c] },
          ...stats,
        },
        build: (b, v) =>
          b.op('BatchNormalization', [v.x!, v.scale!, v.bias!, v.mean!, v.var!], {
            epsilon: 1e-3,
          }),
      });
    });
    it(`training mode [${dims}]: batch statistics, X, scale and B`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          x: { dims },
          scale: { dims: [c] },
          bias: { dims: [c] },
          mean: { ...stats.mean, constant: true },
          var: { ...stats.var, constant: true },
        },
        build: (b, v) =>
          b.opN(
            'BatchNormalization',
            [v.x!, v.scale!, v.bias!, v.mean!, v.var!],
            { epsilon: 1e-3, momentum: 0.8, training_mode: 1 },
            { outputs: 3 },
          )[0]!,
      });
    });
  }
});

describe('gradients: LayerNormalization (float64 finite differences)', () => {
  const cases: [string, number[], number, number[]][] = [
    ['last axis', [2, 3, 5], -1, [5]],
    ['axis 1', [2, 3, 4], 1, [3, 4]],
    ['axis 0 (everything)', [2, 3], 0, [2, 3]],
    ['axis 2 of rank 4', [2, 2, 3, 2], 2, [3, 2]],
  ];
  for (const [label, dims, axis, ps] of cases) {
    it(`${label}: X, Scale, B`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims }, scale: { dims: ps }, bias: { dims: ps } },
        build: (b, v) =>
          b.op('LayerNormalization', [v.x!, v.scale!, v.bias!], { axis, epsilon: 1e-4 }),
      });
    });
  }
  it('no bias, Mean / InvStdDev outputs present (float32 there, so recomputed)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [3, 4] }, scale: { dims: [4] } },
      build: (b, v) => b.opN('LayerNormalization', [v.x!, v.scale!], {}, { outputs: 3 })[0]!,
    });
  });
});

// The float32 path reuses the op's own Mean / InvStdDev outputs, and gradients that reach them
// are propagated; checked in float32 (the stats are float32) with gradcheck's float32 defaults.
describe('gradients: LayerNormalization with its Mean / InvStdDev outputs (float32)', () => {
  it('reuses Mean and InvStdDev', async () => {
    await gradcheck({
      dtype: 'float32',
      inputs: { x: { dims: [2, 3, 4] }, scale: { dims: [3, 4] }, bias: { dims: [3, 4] } },
      build: (b, v) =>
        b.opN('LayerNormalization', [v.x!, v.scale!, v.bias!], { axis: 1 }, { outputs: 3 })[0]!,
    });
  });
  it('gradients through Mean and InvStdDev', async () => {
    await gradcheck({
      dtype: 'float32',
      inputs: { x: { dims: [2, 3, 5] }, scale: { dims: [5] } },
      build: (b, v) => {
        const [y, mean, inv] = b.opN('LayerNormalization', [v.x!, v.scale!], {}, { outputs: 3 });
        return b.add(b.add(y!, b.mul(mean!, b.scalar(2))), b.mul(inv!, b.scalar(0.5)));
      },
    });
  });
  it('only Mean and InvStdDev reach the loss', async () => {
    await gradcheck({
      dtype: 'float32',
      inputs: { x: { dims: [2, 5] }, scale: { dims: [5], grad: false } },
      build: (b, v) => {
        const [, mean, inv] = b.opN('LayerNormalization', [v.x!, v.scale!], {}, { outputs: 3 });
        return b.add(mean!, inv!);
      },
    });
  });
});
