/**
 * Issue #12, item 7: the default quadratic term on depthwise-heavy networks (MobileNetV2,
 * EfficientNet-Lite0 at 224×224) adds at most 25% FLOPs; `--rank R` still means rank R on every
 * default target; `quadratize --dry-run` prints the totals.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { main } from '../src/cli/main.js';
import { encodeModel } from '../src/ir/onnx.js';
import { efficientnetLite0, mobilenetV2 } from '../src/models/zoo.js';
import { accountLayers } from '../src/passes/accounting.js';
import { DEFAULT_RANKS, quadratize } from '../src/passes/quadratize.js';

const NETS = [
  ['MobileNetV2', mobilenetV2],
  ['EfficientNet-Lite0', efficientnetLite0],
] as const;

/** Quadratic FLOPs over base FLOPs of a quadratized graph. */
function added(g: ReturnType<typeof quadratize>['graph']): number {
  const a = accountLayers(g);
  return a.totals.quadratic.flops / a.totals.base.flops;
}

describe('default quadratic term on depthwise-heavy networks', () => {
  for (const [name, make] of NETS) {
    it(`${name}: the default term adds at most 25% FLOPs; --rank 4 adapts every layer at rank 4`, (t) => {
      const g = make();
      const def = quadratize(g);
      const share = added(def.graph);
      t.diagnostic(`${name}: default +${(100 * share).toFixed(1)}% FLOPs`);
      assert.ok(share <= 0.25, `+${(100 * share).toFixed(1)}% FLOPs`);
      for (const r of def.targets) {
        if (r.matched) {
          assert.equal(r.spec!.rank, DEFAULT_RANKS[r.kind!], r.node);
        } else if (r.kind === 'depthwise') {
          // Only 3×3 depthwise convs are too dear at rank 1 (19 weights per channel against 9).
          assert.match(r.reason, /^depthwise: its term would cost more than the layer/);
          assert.equal(g.initializers.get(r.weight!)!.dims[2], 3, r.node);
        } else assert.match(r.reason, /^head/, r.node);
      }
      // Larger depthwise kernels keep an atrous rank-1 term (EfficientNet's 5×5).
      const dw5 = def.targets.filter((r) => r.matched && r.kind === 'depthwise');
      assert.equal(dw5.length > 0, name === 'EfficientNet-Lite0');
      const r4 = quadratize(g, { rank: 4 });
      assert.ok(
        r4.targets.every((r) => (r.matched ? r.spec!.rank === 4 : /^head/.test(r.reason))),
        'explicit rank: every default target, rank 4',
      );
      t.diagnostic(`${name}: --rank 4 +${(100 * added(r4.graph)).toFixed(1)}% FLOPs`);
      assert.ok(added(r4.graph) > 2 * share, 'the old default cost more than twice as much');
    });
  }

  it('quadratize --dry-run prints the parameters and FLOPs the term adds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qn-mobilenet-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'mobilenetv2.onnx');
    writeFileSync(file, encodeModel(mobilenetV2()));
    const lines: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void lines.push(a.join(' '));
    let code: number;
    try {
      code = await main(['quadratize', file, '--dry-run']);
    } finally {
      console.log = log;
    }
    assert.equal(code, 0);
    const total = lines.find((l) => l.includes('quadratic term: +'));
    assert.ok(total, lines.join('\n'));
    const m = /\+[\d.]+[kM]? FLOPs \(\+([\d.]+)%\) per sample at input \[3,224,224\]/.exec(total);
    assert.ok(m, total);
    const expected = 100 * added(quadratize(mobilenetV2()).graph);
    assert.equal(Number(m[1]), Number(expected.toFixed(1)));
    assert.ok(lines.some((l) => /block1\.dw .*depthwise: its term would cost more/.test(l)));
  });
});
