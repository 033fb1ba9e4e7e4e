import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import type { LossOptions } from '../src/autodiff/losses.js';
import { addLoss } from '../src/autodiff/losses.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { emptyGraph } from '../src/ir/graph.js';
import { tensor } from '../src/ir/tensor.js';
import { Session } from '../src/runtime/session.js';
import { expectAllClose } from './helpers/allclose.js';
import type { FixtureTensor } from './helpers/fixtures.js';
import { loadFixtures } from './helpers/fixtures.js';
import { gradcheck } from './helpers/gradcheck.js';

interface OpCase {
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  inputs: (FixtureTensor | null)[];
  outputs: FixtureTensor[];
  grads: (FixtureTensor | null)[];
}

const LOSSES: Record<string, LossOptions['kind']> = {
  softmax_cross_entropy: 'cross_entropy',
  mse: 'mse',
  l1: 'l1',
};

function lossGraph(c: OpCase, dtype: 'float32' | 'float64') {
  const g = emptyGraph(c.name);
  const b = new GraphBuilder(g);
  const [pred, target] = c.inputs as [FixtureTensor, FixtureTensor];
  const p = b.input('pred', dtype, pred.dims);
  const isCe = c.op === 'softmax_cross_entropy';
  const t = isCe ? 'labels' : b.input('target', dtype, target.dims);
  if (isCe) g.initializers.set('labels', tensor('int64', target.dims, target.data));
  const loss = addLoss(
    b,
    p,
    t,
    pred.dims,
    { kind: LOSSES[c.op]!, labelSmoothing: c.attrs['label_smoothing'] as number | undefined },
    dtype,
  );
  g.outputs.push({ name: loss, dtype, shape: [] });
  return { g, loss, isCe };
}

describe('losses match PyTorch (float64 fixtures)', () => {
  for (const c of loadFixtures<OpCase>('ops').cases.filter((x) => x.op in LOSSES)) {
    it(c.name, async () => {
      const { g, loss, isCe } = lossGraph(c, 'float64');
      const wrt = isCe ? ['pred'] : ['pred', 'target'];
      const { graph, grads } = backward(g, { loss, wrt });
      for (const w of wrt) graph.outputs.push({ name: grads.get(w)!, dtype: 'float64', shape: [] });
      const s = await Session.create(graph);
      const feeds = Object.fromEntries(
        wrt.map((w, i) => [
          w,
          {
            dtype: 'float64' as const,
            dims: c.inputs[i]!.dims,
            data: Float64Array.from(c.inputs[i]!.data),
          },
        ]),
      );
      const out = await s.run(feeds);
      expectAllClose(out[loss]!.data as Float64Array, c.outputs[0]!.data, {
        rtol: 1e-9,
        what: 'loss',
      });
      wrt.forEach((w, i) =>
        expectAllClose(out[grads.get(w)!]!.data as Float64Array, c.grads[i]!.data, {
          rtol: 1e-8,
          atol: 1e-12,
          what: `d/d${w}`,
        }),
      );
      await s.release();
    });
  }
});

describe('loss gradients by finite differences (float64)', () => {
  it('cross-entropy with label smoothing', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { z: { dims: [3, 4] }, y: { dims: [3], dtype: 'int64', data: [0, 3, 1] } },
      build: (b, x) =>
        b.reshape(
          addLoss(b, x.z!, x.y!, [3, 4], { kind: 'cross_entropy', labelSmoothing: 0.2 }, 'float64'),
          [1],
        ),
    });
  });
  it('MSE and L1', async () => {
    for (const kind of ['mse', 'l1'] as const) {
      await gradcheck({
        dtype: 'float64',
        inputs: { p: { dims: [2, 3] }, t: { dims: [2, 3] } },
        build: (b, x) => b.reshape(addLoss(b, x.p!, x.t!, [2, 3], { kind }, 'float64'), [1]),
      });
    }
  });
});
