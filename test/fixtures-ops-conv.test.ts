import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import type { AttrInput } from '../src/ir/builder.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { emptyGraph } from '../src/ir/graph.js';
import { tensor } from '../src/ir/tensor.js';
import { Session } from '../src/runtime/session.js';
import { expectAllClose } from './helpers/allclose.js';

// The PyTorch reference (fixtures/torch/ops.json, float64) for every conv / pool / resize case:
// each op is built as a one-node graph, differentiated with `backward`, and run forward and
// backward in float32 (onnxruntime has no float64 Conv/ConvTranspose/AveragePool/Resize kernel).
// Tolerances rtol = 1e-4, atol = 1e-5 cover float32 accumulation over these small sums
// (≤ ~300 terms of magnitude ≲ 3), which is ~1e-6 relative.
const RTOL = 1e-4;
const ATOL = 1e-5;

interface FixtureTensor {
  dims: number[];
  data: number[];
}
interface FixtureCase {
  name: string;
  op: string;
  attrs: Record<string, AttrInput>;
  inputs: (FixtureTensor | null)[];
  outputs: FixtureTensor[];
  dy: FixtureTensor;
  grads: (FixtureTensor | null)[];
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/torch/ops.json', import.meta.url), 'utf8'),
) as { cases: FixtureCase[] };

const PREFIXES = ['conv', 'convtranspose', 'maxpool', 'averagepool', 'globalaveragepool', 'resize'];
const cases = fixture.cases.filter((c) => PREFIXES.some((p) => c.name.startsWith(p)));

describe('conv, pool and resize ops against the PyTorch fixtures (float32)', () => {
  it('covers the expected cases', () => {
    const ops = new Set(cases.map((c) => c.op));
    for (const op of [
      'Conv',
      'ConvTranspose',
      'MaxPool',
      'AveragePool',
      'GlobalAveragePool',
      'Resize',
    ]) {
      assert.ok(ops.has(op), `no fixture case for ${op}`);
    }
  });

  for (const c of cases) {
    it(c.name, async () => {
      const g = emptyGraph(c.name);
      const b = new GraphBuilder(g);
      const names: string[] = [];
      const wrt: string[] = [];
      const feeds: Record<string, { dtype: 'float32'; dims: number[]; data: Float32Array }> = {};
      c.inputs.forEach((t, i) => {
        if (!t) {
          names.push('');
          return;
        }
        const name = `in${i}`;
        if (c.grads[i]) {
          b.input(name, 'float32', t.dims);
          feeds[name] = { dtype: 'float32', dims: t.dims, data: Float32Array.from(t.data) };
          wrt.push(name);
        } else {
          g.initializers.set(name, tensor('float32', t.dims, t.data));
        }
        names.push(name);
      });
      const y = b.op(c.op, names, c.attrs, { name: c.name });
      const dy = b.constant(tensor('float32', c.dy.dims, c.dy.data), 'dy');
      const loss = b.op('ReduceSum', [b.mul(y, dy)], { keepdims: 0 });
      b.output(y, 'float32', c.outputs[0]!.dims);
      const { graph, grads } = backward(g, { loss, wrt });
      for (const w of wrt) {
        const dims = c.grads[Number(w.slice(2))]!.dims;
        graph.outputs.push({ name: grads.get(w)!, dtype: 'float32', shape: dims });
      }

      const session = await Session.create(graph);
      try {
        const out = await session.run(feeds);
        assert.deepEqual(out[y]!.dims, c.outputs[0]!.dims);
        expectAllClose(out[y]!.data as Float32Array, c.outputs[0]!.data, {
          rtol: RTOL,
          atol: ATOL,
          what: `${c.name} output`,
        });
        c.inputs.forEach((_, i) => {
          const ref = c.grads[i];
          if (!ref) return;
          const got = out[grads.get(`in${i}`)!]!;
          assert.deepEqual(got.dims, ref.dims, `${c.name} d/d input ${i} shape`);
          expectAllClose(got.data as Float32Array, ref.data, {
            rtol: RTOL,
            atol: ATOL,
            what: `${c.name} d/d input ${i}`,
          });
        });
      } finally {
        await session.release();
      }
    });
  }
});
