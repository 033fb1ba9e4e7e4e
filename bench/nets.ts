import type { Graph } from '../src/ir/graph.js';
import { NetBuilder } from '../src/models/net-builder.js';

/**
 * The benchmark CNN of the performance issue (64×3×32×32: conv 3→32, dilated conv 32→64, pool,
 * dense), with its channel counts scaled by `width`; the same net as bench/torch_peer.py's.
 */
export function benchCnn(width = 1): Graph {
  const c1 = Math.round(32 * width);
  const c2 = Math.round(64 * width);
  return new NetBuilder([3, 32, 32], 0, 'bench_cnn')
    .conv('conv1', 3, c1, 3)
    .relu()
    .conv('conv2', c1, c2, 3, { dilation: 2 })
    .relu()
    .maxPool(2)
    .flatten()
    .linear('head', c2 * 16 * 16, 10)
    .finish(10);
}
