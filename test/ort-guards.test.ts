import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '../src/ir/builder.js';
import { emptyGraph } from '../src/ir/graph.js';
import { tensor } from '../src/ir/tensor.js';
import { guardPadBeforeMaxPool } from '../src/runtime/ort-guards.js';
import { Session } from '../src/runtime/session.js';
import { expectAllClose } from './helpers/allclose.js';

/** Pad(0, one pixel each side) → MaxPool 2×2 stride 2 on a 1×1×2×2 input. */
function padPool() {
  const g = emptyGraph();
  g.opset = 18;
  const b = new GraphBuilder(g);
  const x = b.input('x', 'float32', [1, 1, 2, 2]);
  const p = b.op('Pad', [x, b.constant(tensor('int64', [8], [0, 0, 1, 1, 0, 0, 1, 1]), 'pads')]);
  b.output(
    b.op('MaxPool', [p], { kernel_shape: [2, 2], strides: [2, 2] }),
    'float32',
    [1, 1, 2, 2],
  );
  return g;
}

async function runOnce(optimization: 'all' | 'disabled', data: number[]): Promise<number[]> {
  const g = padPool();
  const s = await Session.create(g, { optimization });
  try {
    const r = await s.run({
      x: { dtype: 'float32', dims: [1, 1, 2, 2], data: Float32Array.from(data) },
    });
    return Array.from(Object.values(r)[0]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

describe('onnxruntime guards', () => {
  it('a zero Pad before MaxPool keeps its zeros (onnxruntime would pool its pads as −inf)', async () => {
    // Each 2×2 window holds one real value and three padded zeros: the maximum is 0.
    const neg = [-1, -2, -3, -4];
    expectAllClose(await runOnce('all', neg), [0, 0, 0, 0], { rtol: 0, atol: 0 });
    expectAllClose(await runOnce('disabled', neg), [0, 0, 0, 0], { rtol: 0, atol: 0 });
    expectAllClose(await runOnce('all', [1, 2, 3, 4]), [1, 2, 3, 4], { rtol: 0, atol: 0 });
  });

  it('the guard is a Clip(−inf, +inf) right before the MaxPool, and absent when not needed', () => {
    const guarded = guardPadBeforeMaxPool(padPool());
    assert.deepEqual(
      guarded.nodes.map((n) => n.opType),
      ['Pad', 'Clip', 'MaxPool'],
    );
    const g = padPool();
    g.nodes = g.nodes.filter((n) => n.opType !== 'Pad');
    g.nodes[0]!.inputs = ['x'];
    assert.equal(guardPadBeforeMaxPool(g), g);
  });
});
