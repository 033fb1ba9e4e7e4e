import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mlp } from '../src/models/zoo.js';
import { pairedRatio } from '../src/report/stats.js';
import { measureLatency } from '../src/workflow/evaluate.js';

describe('latency over session sets', () => {
  it('spreads the runs over six fresh session sets by default, fewer when there are fewer runs', async () => {
    const g = mlp({ inputShape: [1, 4, 4] });
    const [a, b] = await measureLatency([g, structuredClone(g)], [1, 4, 4], {
      batchSizes: [1, 2],
      runs: 14,
    });
    for (const l of [...a!, ...b!]) {
      assert.deepEqual(l.setSizes, [3, 3, 2, 2, 2, 2]);
      assert.equal(l.timesMs?.length, 14);
    }
    // Six set medians: the interval reaches from the lowest to the highest of them.
    const p = pairedRatio(b![0]!.timesMs, a![0]!.timesMs, b![0]!.setSizes)!;
    assert.equal(p.setMedians!.length, 6);
    assert.ok(p.interval![0] <= Math.min(...p.setMedians!));
    assert.ok(p.interval![1] >= Math.max(...p.setMedians!));
    const [few] = await measureLatency([g], [1, 4, 4], { batchSizes: [1], runs: 4 });
    assert.deepEqual(few![0]!.setSizes, [1, 1, 1, 1]);
  });
});
