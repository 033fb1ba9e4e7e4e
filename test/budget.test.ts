import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createDataset } from '../src/data/dataset.js';
import type { Graph } from '../src/ir/graph.js';
import { numel } from '../src/ir/tensor.js';
import { cnn, convnext, mlp, resnet } from '../src/models/zoo.js';
import { accountLayers } from '../src/passes/accounting.js';
import { budgetCandidates } from '../src/passes/budget/candidates.js';
import { parseBudget } from '../src/passes/budget/parse.js';
import type { BudgetCandidate } from '../src/passes/budget/plan.js';
import { placementRanks, planWithinFlops, termFlops } from '../src/passes/budget/plan.js';
import { quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/random.js';
import { UserError } from '../src/util/errors.js';
import { planBudget } from '../src/workflow/budget.js';
import { usefulnessScores } from '../src/workflow/usefulness.js';
import { expectAllClose } from './helpers/allclose.js';
import { runCli } from './helpers/cli.js';

const MODELS: [string, () => Graph][] = [
  ['mlp', () => mlp()],
  ['cnn', () => cnn()],
  ['resnet', () => resnet({ width: 0.5 })],
  ['convnext', () => convnext({ width: 0.5, depth: 1 })],
];

function images(g: Graph, n: number, seed: number) {
  const shape = g.inputs[0]!.shape.slice(1) as number[];
  const rng = new Rng(seed);
  return {
    shape: shape as [number, number, number],
    data: Float32Array.from({ length: n * numel(shape) }, () => rng.uniform(0, 1)),
  };
}

async function forward(g: Graph, x: Float32Array, n: number): Promise<Float32Array> {
  const s = await Session.create(g);
  const dims = [n, ...(g.inputs[0]!.shape.slice(1) as number[])];
  const out = await s.run({ [g.inputs[0]!.name]: { dtype: 'float32', dims, data: x } });
  await s.release();
  return out[g.outputs[0]!.name]!.data as Float32Array;
}

describe('--budget spec', () => {
  it('parses flops=P% and latency=Fx', () => {
    assert.deepEqual(parseBudget('flops=10%'), { kind: 'flops', fraction: 0.1 });
    assert.deepEqual(parseBudget(' FLOPS = 2.5 % '), { kind: 'flops', fraction: 0.025 });
    assert.deepEqual(parseBudget('latency=1.2x'), { kind: 'latency', ratio: 1.2 });
  });
  for (const bad of ['flops=10x', 'latency=20%', 'latency=0.9x', 'flops=0%', 'speed=2x', '10%']) {
    it(`refuses '${bad}' in one line naming --budget`, () => {
      assert.throws(
        () => parseBudget(bad),
        (e) => e instanceof UserError && /--budget/.test(e.message) && !e.message.includes('\n'),
      );
    });
  }
});

describe('budget planner (pure)', () => {
  const c = (node: string, score: number, c0: number, c1: number, maxRank = 4, index = 0) =>
    ({ node, score, c0, c1, maxRank, index }) as BudgetCandidate;

  it('spends by score per FLOP, lowering a rank to fit what is left', () => {
    const cands = [c('a', 1, 10, 10, 4, 0), c('b', 10, 10, 10, 4, 1), c('c', 0.05, 1, 1, 4, 2)];
    // Budget 70: b first (score/FLOP 10/50) takes 50; a (1/50) gets rank 1 (20); c (0.05/5)
    // comes last with nothing left.
    const plan = planWithinFlops(cands, 70);
    assert.deepEqual(
      plan.map((p) => [p.node, p.rank, p.flops]),
      [
        ['a', 1, 20],
        ['b', 4, 50],
        ['c', 0, 0],
      ],
    );
    assert.ok(plan.reduce((s, p) => s + p.flops, 0) <= 70);
  });

  it('placements: all, last stage and random stay within the cost they are given', () => {
    const cands = Array.from({ length: 8 }, (_, i) => c(`l${i}`, 1, 5, 5 + i, 4, i));
    const all = placementRanks(cands, 'all', 0);
    assert.equal(all.size, 8);
    const cost = (m: Map<string, number>) =>
      [...m].reduce(
        (s, [n, r]) =>
          s +
          termFlops(
            cands.find((x) => x.node === n)!,
            r,
          ),
        0,
      );
    const last = placementRanks(cands, 'last-stage', 100);
    assert.ok(last.has('l7') && !last.has('l0'), [...last.keys()].join());
    assert.ok(cost(last) <= 100);
    const r1 = placementRanks(cands, 'random', 100, 1);
    assert.ok(cost(r1) <= 100 && r1.size > 0);
    assert.deepEqual(placementRanks(cands, 'random', 100, 1), r1);
    assert.notDeepEqual(
      [0, 1, 2, 3, 4].map((s) => [...placementRanks(cands, 'random', 100, s).keys()].join()),
      new Array(5).fill([...r1.keys()].join()),
    );
  });
});

describe('FLOPs budgets on the built-in models', () => {
  for (const [name, make] of MODELS) {
    for (const pct of [5, 10, 25]) {
      it(`${name}, flops=${pct}%: added FLOPs within the budget (exact accounting), outputs unchanged`, async () => {
        const base = make();
        let plan;
        try {
          plan = await planBudget(base, { budget: { kind: 'flops', fraction: pct / 100 } });
        } catch (e) {
          // A budget below the cheapest term is refused, not overspent.
          assert.match((e as Error).message, /fits no quadratic term: the cheapest/);
          const { candidates, baseFlops } = budgetCandidates(base, {});
          const cheapest = Math.min(...candidates.map((x) => termFlops(x, 1)));
          assert.ok(cheapest > (pct / 100) * baseFlops);
          return;
        }
        const q = quadratize(base, plan.options).graph;
        const acc = accountLayers(q);
        assert.equal(acc.totals.quadratic.flops, plan.quadFlops);
        assert.ok(
          acc.totals.quadratic.flops <= (pct / 100) * acc.totals.base.flops,
          `${acc.totals.quadratic.flops} > ${pct}% of ${acc.totals.base.flops}`,
        );
        const n = 3;
        const x = images(base, n, 2).data;
        expectAllClose(await forward(q, x, n), await forward(base, x, n), {
          rtol: 0,
          atol: 1e-5,
          what: 'outputs at init',
        });
      });
    }
  }
});

describe('usefulness scores', () => {
  it('are finite, non-negative, differ between layers, and order the plan', async () => {
    const base = resnet({ width: 0.5 });
    const { shape, data } = images(base, 64, 4);
    const labels = Int32Array.from({ length: 64 }, (_, i) => i % 10);
    const ds = createDataset({ name: 'random', images: data, labels, shape });
    const { candidates } = budgetCandidates(base, {});
    const s = await usefulnessScores(base, {}, candidates, ds);
    const values = candidates.map((c) => s.get(c.node)!);
    assert.equal(values.length, candidates.length);
    assert.ok(
      values.every((v) => Number.isFinite(v) && v >= 0),
      values.join(),
    );
    assert.ok(new Set(values).size > 1, 'every layer scored the same');
    assert.ok(
      values.some((v) => v > 0),
      'no gradient reached any U',
    );
    const plan = await planBudget(base, { budget: { kind: 'flops', fraction: 0.05 }, data: ds });
    assert.equal(plan.scores, 'gradient');
    // The first layer the greedy plan funds at its full rank is the best per FLOP that fits.
    const best = [...plan.layers].sort((a, b) => b.scorePerFlop - a.scorePerFlop)[0]!;
    const c = candidates.find((x) => x.node === best.node)!;
    if (termFlops(c, c.maxRank) <= 0.05 * plan.baseFlops) assert.equal(best.rank, c.maxRank);
  });
});

describe('latency budget', () => {
  it('times the plan against the original and reports the ratio with an interval', async () => {
    const base = cnn();
    const plan = await planBudget(base, {
      budget: { kind: 'latency', ratio: 100 },
      latencyRuns: 6,
    });
    const lat = plan.latency!;
    assert.ok(lat.tried.length >= 1);
    assert.ok(lat.chosen, 'a 100× budget fits the full plan');
    assert.ok(lat.chosen.ratio <= 100 && lat.chosen.ratio > 0);
    assert.ok(lat.chosen.interval === null || lat.chosen.interval[0] <= lat.chosen.interval[1]);
    assert.ok(plan.layers.some((l) => l.rank > 0));
  });
});

describe('quadratize --budget (CLI)', () => {
  it('--json reports the plan, and the added FLOPs are within it', () => {
    const r = runCli(['quadratize', 'arch:resnet', '--dry-run', '--budget', 'flops=10%', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      budget: { spec: string; overheadPct: number; ranks: Record<string, number> };
      overhead: { baseFlops: number; quadFlops: number };
      targets: { node: string; matched: boolean; rank: number | null }[];
    };
    assert.equal(out.budget.spec, 'flops=10%');
    assert.ok(out.overhead.quadFlops <= 0.1 * out.overhead.baseFlops);
    expectAllClose(
      [out.budget.overheadPct],
      [(100 * out.overhead.quadFlops) / out.overhead.baseFlops],
      {
        rtol: 1e-12,
        atol: 0,
      },
    );
    const adapted = out.targets.filter((t) => t.matched);
    assert.deepEqual(Object.fromEntries(adapted.map((t) => [t.node, t.rank])), out.budget.ranks);
  });
  it('a budget nothing fits is one line, no stack trace', () => {
    const r = runCli(['quadratize', 'arch:cnn', '--dry-run', '--budget', 'flops=0.01%']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^quadranet: --budget flops=0.01% fits no quadratic term/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
