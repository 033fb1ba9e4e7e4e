import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward } from '../src/autodiff/backward.js';
import { GraphBuilder } from '../src/ir/builder.js';
import { emptyGraph, GraphError } from '../src/ir/graph.js';
import { gradcheck } from './helpers/gradcheck.js';

// Indexing, layout and Einsum gradients (issue #18), all in float64 (onnxruntime 1.30 has
// float64 kernels for Gather, GatherElements, ScatterND / ScatterElements with reduction add,
// Expand, Tile, CumSum, DepthToSpace, SpaceToDepth, Trilu and Einsum) with gradcheck's float64
// defaults (eps 1e-6, rtol 1e-6, atol 1e-7).

describe('gradients: Gather (float64 finite differences)', () => {
  it('embedding lookup: [V, D] table, [B, T] tokens with repeats (gradients sum)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: {
        w: { dims: [5, 3] },
        ids: { dims: [2, 4], data: [0, 3, 3, 1, 4, 0, 3, 2], dtype: 'int64' },
      },
      build: (b, v) => b.op('Gather', [v.w!, v.ids!]),
    });
  });
  it('axis 1 with negative and repeated indices', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: {
        x: { dims: [2, 4, 3] },
        ids: { dims: [3], data: [-1, 1, 3], dtype: 'int64' },
      },
      build: (b, v) => b.op('Gather', [v.x!, v.ids!], { axis: 1 }),
    });
  });
  it('axis -1, scalar index, int32 indices', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: {
        x: { dims: [2, 3, 4] },
        ids: { dims: [], data: [2], dtype: 'int32' },
      },
      build: (b, v) => b.op('Gather', [v.x!, v.ids!], { axis: -1 }),
    });
  });
  it('indices computed at run time (not a constant)', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [4, 3] }, s: { dims: [2, 2], data: [0.2, 0.9, 0.1, 0.8], grad: false } },
      build: (b, v) => b.op('Gather', [v.x!, b.op('ArgMax', [v.s!], { axis: 1 })]),
    });
  });
});

describe('gradients: GatherElements (float64 finite differences)', () => {
  for (const axis of [0, 1, -1]) {
    it(`axis ${axis} with repeated indices`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: {
          x: { dims: [3, 4] },
          ids: { dims: [2, 4], data: [0, 2, 2, 1, 2, 0, 1, -1], dtype: 'int64' },
        },
        build: (b, v) => b.op('GatherElements', [v.x!, v.ids!], { axis }),
      });
    });
  }
});

describe('gradients: Expand, Tile, CumSum, Trilu (float64 finite differences)', () => {
  it('Expand to more axes and along size-1 axes', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [3, 1] } },
      build: (b, v) => b.op('Expand', [v.x!, b.ints([2, 3, 4])]),
    });
  });
  it('Tile', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [2, 3] } },
      build: (b, v) => b.op('Tile', [v.x!, b.ints([3, 2])]),
    });
  });
  for (const [exclusive, reverse] of [
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ]) {
    it(`CumSum exclusive ${exclusive} reverse ${reverse}`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: [2, 5] } },
        build: (b, v) => b.op('CumSum', [v.x!, b.ints([1])], { exclusive, reverse }),
      });
    });
  }
  for (const upper of [0, 1]) {
    it(`Trilu upper ${upper} with k`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: [2, 3, 4] } },
        build: (b, v) =>
          b.op(
            'Trilu',
            [v.x!, b.constant({ dtype: 'int64', dims: [], data: BigInt64Array.of(-1n) })],
            { upper },
          ),
      });
    });
  }
});

describe('gradients: DepthToSpace / SpaceToDepth (float64 finite differences)', () => {
  for (const mode of ['DCR', 'CRD']) {
    it(`DepthToSpace ${mode} blocksize 2`, async () => {
      await gradcheck({
        dtype: 'float64',
        inputs: { x: { dims: [2, 8, 2, 3] } },
        build: (b, v) => b.op('DepthToSpace', [v.x!], { blocksize: 2, mode }),
      });
    });
  }
  it('SpaceToDepth blocksize 2', async () => {
    await gradcheck({
      dtype: 'float64',
      inputs: { x: { dims: [1, 2, 4, 6] } },
      build: (b, v) => b.op('SpaceToDepth', [v.x!], { blocksize: 2 }),
    });
  });
});

describe('gradients: Einsum (float64 finite differences)', () => {
  const cases: [string, number[][]][] = [
    [
      'bhqd,bhkd->bhqk',
      [
        [2, 2, 3, 4],
        [2, 2, 5, 4],
      ],
    ],
    [
      'bhqk,bhkd->bhqd',
      [
        [2, 2, 3, 5],
        [2, 2, 5, 4],
      ],
    ],
    [
      'bij,bjk->bik',
      [
        [2, 3, 4],
        [2, 4, 5],
      ],
    ],
    [
      'ij,jk',
      [
        [3, 4],
        [4, 2],
      ],
    ],
    [
      'bi,oij,bj->bo',
      [
        [2, 3],
        [4, 3, 5],
        [2, 5],
      ],
    ],
    ['bij->bji', [[2, 3, 4]]],
    [
      'bij,bj->b',
      [
        [2, 3, 4],
        [2, 4],
      ],
    ],
    [
      'bij,bk->bik',
      [
        [2, 3, 4],
        [2, 5],
      ],
    ],
    [
      'hqd,bhkd->bhqk',
      [
        [2, 3, 4],
        [2, 2, 5, 4],
      ],
    ],
  ];
  for (const [eq, dims] of cases) {
    it(eq, async () => {
      const inputs = Object.fromEntries(dims.map((d, i) => [`x${i}`, { dims: d }]));
      await gradcheck({
        dtype: 'float64',
        inputs,
        build: (b, v) =>
          b.op(
            'Einsum',
            dims.map((_, i) => v[`x${i}`]!),
            { equation: eq },
          ),
      });
    });
  }
  it('two-operand gradients are emitted as MatMul, not Einsum', () => {
    const g = emptyGraph('e');
    const b = new GraphBuilder(g);
    b.input('q', 'float32', [2, 2, 3, 4]);
    b.input('k', 'float32', [2, 2, 5, 4]);
    const y = b.op('Einsum', ['q', 'k'], { equation: 'bhqd,bhkd->bhqk' });
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    const { graph } = backward(g, { loss, wrt: ['q', 'k'] });
    const added = graph.nodes.slice(g.nodes.length).map((n) => n.opType);
    assert.ok(!added.includes('Einsum'), added.join(','));
    assert.equal(added.filter((op) => op === 'MatMul').length, 2);
  });
  for (const eq of ['...ij,...jk->...ik', 'ii->i']) {
    it(`refuses '${eq}' in one line naming the node`, () => {
      const g = emptyGraph('e');
      const b = new GraphBuilder(g);
      b.input('x', 'float32', [3, 3]);
      const y = b.op(
        'Einsum',
        ['x', 'x'].slice(0, eq.split(',').length),
        { equation: eq },
        { name: 'attn' },
      );
      const loss = b.op('ReduceSum', [y], { keepdims: 0 });
      assert.throws(
        () => backward(g, { loss, wrt: ['x'] }),
        (e: unknown) =>
          e instanceof GraphError &&
          /node 'attn' \(Einsum\)/.test(e.message) &&
          !e.message.includes('\n'),
      );
    });
  }
});
