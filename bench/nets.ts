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

/**
 * A ResNet-18-sized network at 224×224 (issue #14's inference case): 7×7 stride-2 stem, max
 * pool, four stages of two basic blocks (64, 128, 256, 512 channels; stride 2 with a 1×1
 * projection at stages 2–4), global pooling and a 1000-way head: torchvision's resnet18 layout
 * (11.7M parameters, ≈ 3.6 GFLOPs per image at 2 FLOPs per multiply-add).
 */
export function resnet18(): Graph {
  const net = new NetBuilder([3, 224, 224], 0, 'resnet18');
  net.conv('conv1', 3, 64, 7, { stride: 2, pad: 3, bias: false }).batchNorm('bn1', 64).relu();
  net.maxPool(3, 2);
  let cin = 64;
  [64, 128, 256, 512].forEach((c, s) => {
    for (let blk = 0; blk < 2; blk++) {
      const stride = s > 0 && blk === 0 ? 2 : 1;
      const p = `layer${s + 1}.${blk}`;
      const inC = cin;
      net.residual(
        (n) => {
          n.conv(`${p}.conv1`, inC, c, 3, { stride, bias: false }).batchNorm(`${p}.bn1`, c).relu();
          n.conv(`${p}.conv2`, c, c, 3, { bias: false }).batchNorm(`${p}.bn2`, c);
        },
        stride === 1 && inC === c
          ? undefined
          : (n, input) => {
              const x = n.x;
              n.x = input;
              n.conv(`${p}.downsample`, inC, c, 1, { stride, pad: 0, bias: false });
              n.batchNorm(`${p}.downsample_bn`, c);
              const sc = n.x;
              n.x = x;
              return sc;
            },
      );
      net.relu();
      cin = c;
    }
  });
  return net.globalAvgPool().flatten().linear('fc', 512, 1000).finish(1000);
}
