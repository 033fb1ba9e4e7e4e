import { describe, it } from 'node:test';
import type { OptimizerOptions } from '../src/autodiff/optimizers.js';
import { clipByGlobalNorm, emitUpdate } from '../src/autodiff/optimizers.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { emptyGraph } from '../src/ir/graph.js';
import type { HostTensor } from '../src/runtime/session.js';
import { Session } from '../src/runtime/session.js';
import { lrFactor } from '../src/runtime/schedule.js';
import { expectAllClose } from './helpers/allclose.js';
import type { FixtureTensor } from './helpers/fixtures.js';
import { loadFixtures } from './helpers/fixtures.js';
import assert from 'node:assert/strict';

interface OptimCase {
  name: string;
  hyper: OptimizerOptions;
  p0: FixtureTensor;
  grads: FixtureTensor[];
  lrs: number[];
  after: FixtureTensor[];
}

const f64 = (dims: readonly number[], data: ArrayLike<number>): HostTensor => ({
  dtype: 'float64',
  dims,
  data: Float64Array.from(data),
});

describe('optimizer update graphs match torch.optim (float64)', () => {
  for (const c of loadFixtures<OptimCase>('optim').cases) {
    it(c.name, async () => {
      const g = emptyGraph('opt');
      const b = new GraphBuilder(g);
      const shape = c.p0.dims;
      const p = b.input('p', 'float64', shape);
      const grad = b.input('grad', 'float64', shape);
      const lr = b.input('lr', 'float64', []);
      const bc1 = b.input('bc1', 'float64', []);
      const sqrtBc2 = b.input('sqrt_bc2', 'float64', []);
      const wd = c.hyper.weightDecay ?? 0;
      const u = emitUpdate(b, p, grad, shape, 'float64', c.hyper, { lr, bc1, sqrtBc2 }, wd);
      g.outputs.push({ name: u.newParam, dtype: 'float64', shape });
      for (const s of u.state) g.outputs.push({ name: s.output, dtype: 'float64', shape });
      // Unused scalar inputs would be pruned by onnxruntime; keep them consumed.
      if (c.hyper.kind === 'sgd')
        g.outputs.push({ name: b.add(bc1, sqrtBc2), dtype: 'float64', shape: [] });
      const s = await Session.create(g);
      let param: Float64Array = Float64Array.from(c.p0.data);
      const state = new Map<string, Float64Array>(
        u.state.map((x) => [x.input, new Float64Array(param.length)]),
      );
      const beta1 = c.hyper.kind === 'adamw' ? (c.hyper.beta1 ?? 0.9) : 0;
      const beta2 = c.hyper.kind === 'adamw' ? (c.hyper.beta2 ?? 0.999) : 0;
      for (let t = 0; t < c.grads.length; t++) {
        const feeds: Record<string, HostTensor> = {
          p: f64(shape, param),
          grad: f64(shape, c.grads[t]!.data),
          lr: f64([], [c.lrs[t]!]),
          bc1: f64([], [1 - Math.pow(beta1, t + 1)]),
          sqrt_bc2: f64([], [Math.sqrt(1 - Math.pow(beta2, t + 1))]),
        };
        for (const [k, v] of state) feeds[k] = f64(shape, v);
        const out = await s.run(feeds);
        param = out[u.newParam]!.data as Float64Array;
        for (const x of u.state) state.set(x.input, out[x.output]!.data as Float64Array);
        expectAllClose(param, c.after[t]!.data, {
          rtol: 1e-9,
          atol: 1e-10,
          what: `${c.name} step ${t + 1}`,
        });
      }
      await s.release();
    });
  }
});

describe('gradient clipping by global norm', () => {
  it('scales all gradients by maxNorm/‖g‖ only when the norm exceeds maxNorm', async () => {
    const g = emptyGraph('opt');
    const b = new GraphBuilder(g);
    const a = b.input('a', 'float64', [2]);
    const c = b.input('c', 'float64', [1]);
    const clipped = clipByGlobalNorm(b, [a, c], 2.5, 'float64');
    for (const n of [...clipped.grads, clipped.norm])
      g.outputs.push({ name: n, dtype: 'float64', shape: [] });
    const s = await Session.create(g);
    // ‖(3, 4, 12)‖ = 13 → scale 2.5/13
    let out = await s.run({ a: f64([2], [3, 4]), c: f64([1], [12]) });
    expectAllClose(out[clipped.norm]!.data as Float64Array, [13], { rtol: 1e-12 });
    expectAllClose(out[clipped.grads[0]!]!.data as Float64Array, [3 * (2.5 / 13), 4 * (2.5 / 13)], {
      rtol: 1e-6,
    });
    out = await s.run({ a: f64([2], [0.3, 0.4]), c: f64([1], [1.2]) });
    expectAllClose(out[clipped.grads[1]!]!.data as Float64Array, [1.2], { rtol: 1e-12 });
    await s.release();
  });
});

describe('learning-rate schedule', () => {
  it('warms up linearly, then decays by cosine to the minimum', () => {
    const s = { warmupSteps: 4, totalSteps: 104, minFactor: 0.1 };
    expectAllClose(
      [0, 1, 2, 3].map((t) => lrFactor(t, s)),
      [0.2, 0.4, 0.6, 0.8],
      { rtol: 1e-12 },
    );
    assert.equal(lrFactor(4, s), 1);
    expectAllClose([lrFactor(54, s)], [0.1 + 0.9 * 0.5], { rtol: 1e-12 });
    expectAllClose([lrFactor(104, s), lrFactor(500, s)], [0.1, 0.1], { rtol: 1e-12 });
    assert.equal(lrFactor(1000, {}), 1);
  });
});
