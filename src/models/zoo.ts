import type { Graph } from '../ir/graph.js';
import { NetBuilder } from './net-builder.js';

/** Shape of the images a model takes, [C, H, W]. */
export type ImageShape = [number, number, number];

/** Common options of the built-in architectures. */
export interface ArchOptions {
  /** Input image shape (default [1, 28, 28], MNIST). */
  inputShape?: ImageShape;
  /** Number of classes (default 10). */
  classes?: number;
  /** Seed of the initial weights. */
  seed?: number;
  /** Width multiplier of the channel counts (default 1). */
  width?: number;
}

/** A two-layer perceptron. */
export function mlp({
  inputShape = [1, 28, 28],
  classes = 10,
  seed = 0,
  width = 1,
}: ArchOptions = {}): Graph {
  const n = inputShape[0] * inputShape[1] * inputShape[2];
  const h = Math.round(128 * width);
  return new NetBuilder(inputShape, seed, 'mlp')
    .flatten()
    .linear('fc1', n, h)
    .relu()
    .linear('fc2', h, h)
    .relu()
    .linear('head', h, classes)
    .finish(classes);
}

/** A small CNN: two 3×3 conv + ReLU + max-pool stages and a linear head. */
export function cnn({
  inputShape = [1, 28, 28],
  classes = 10,
  seed = 0,
  width = 1,
}: ArchOptions = {}): Graph {
  const [c, h, w] = inputShape;
  const c1 = Math.round(16 * width);
  const c2 = Math.round(32 * width);
  return new NetBuilder(inputShape, seed, 'cnn')
    .conv('conv1', c, c1, 3)
    .relu()
    .maxPool(2)
    .conv('conv2', c1, c2, 3)
    .relu()
    .maxPool(2)
    .flatten()
    .linear('head', c2 * Math.floor(h / 4) * Math.floor(w / 4), classes)
    .finish(classes);
}

/** ResNet-style CNN: BatchNorm, a strided conv with a projection shortcut and a dilated conv. */
export function resnet({
  inputShape = [1, 28, 28],
  classes = 10,
  seed = 0,
  width = 1,
}: ArchOptions = {}): Graph {
  const c1 = Math.round(16 * width);
  const c2 = Math.round(32 * width);
  const net = new NetBuilder(inputShape, seed, 'resnet');
  net.conv('stem', inputShape[0], c1, 3, { bias: false }).batchNorm('stem_bn', c1).relu();
  net.residual((n) => {
    n.conv('block1.conv1', c1, c1, 3, { bias: false }).batchNorm('block1.bn1', c1).relu();
    n.conv('block1.conv2', c1, c1, 3, { bias: false }).batchNorm('block1.bn2', c1);
  });
  net.relu();
  net.residual(
    (n) => {
      n.conv('block2.conv1', c1, c2, 3, { stride: 2, bias: false })
        .batchNorm('block2.bn1', c2)
        .relu();
      n.conv('block2.conv2', c2, c2, 3, { dilation: 2, bias: false }).batchNorm('block2.bn2', c2);
    },
    (n, input) => {
      const x = n.x;
      n.x = input;
      n.conv('block2.down', c1, c2, 1, { stride: 2, bias: false }).batchNorm('block2.down_bn', c2);
      const s = n.x;
      n.x = x;
      return s;
    },
  );
  return net.relu().globalAvgPool().flatten().linear('head', c2, classes).finish(classes);
}

/**
 * ConvNeXt-style CNN: a patchify stem, then blocks of 7×7 depthwise conv → LayerNorm (channels
 * last) → pointwise MLP (4× expansion, GELU) with a residual connection.
 */
export function convnext({
  inputShape = [1, 28, 28],
  classes = 10,
  seed = 0,
  width = 1,
  depth = 2,
}: ArchOptions & { depth?: number } = {}): Graph {
  const c = Math.round(32 * width);
  const net = new NetBuilder(inputShape, seed, 'convnext');
  net.conv('stem', inputShape[0], c, 2, { stride: 2, pad: 0 });
  for (let i = 0; i < depth; i++) {
    net.residual((n) => {
      n.conv(`block${i}.dwconv`, c, c, 7, { groups: c });
      n.transpose([0, 2, 3, 1]).layerNorm(`block${i}.norm`, c);
      n.dense(`block${i}.pwconv1`, c, 4 * c)
        .gelu()
        .dense(`block${i}.pwconv2`, 4 * c, c);
      n.transpose([0, 3, 1, 2]);
    });
  }
  return net.globalAvgPool().flatten().linear('head', c, classes).finish(classes);
}

/** The built-in architectures by name. */
export const ARCHITECTURES = { mlp, cnn, resnet, convnext } as const;
/** Name of a built-in architecture. */
export type ArchName = keyof typeof ARCHITECTURES;

/** One inverted-residual stage: expansion t, kernel k, output channels c, n blocks, first stride s. */
type MbStage = [t: number, k: number, c: number, n: number, s: number];

/**
 * Inverted residual blocks (MobileNetV2 / EfficientNet-Lite): 1×1 expansion, k×k depthwise
 * (stride s), 1×1 projection, residual when the shape is kept. No BatchNorm (folded into the
 * convs' biases, as exported inference models have it).
 */
function invertedResidualNet(
  name: string,
  stages: readonly MbStage[],
  { inputShape = [3, 224, 224], classes = 1000, seed = 0, width = 1 }: ArchOptions,
): Graph {
  const ch = (c: number) => Math.max(8, Math.round(c * width));
  const net = new NetBuilder(inputShape, seed, name);
  let cin = ch(32);
  net.conv('stem', inputShape[0], cin, 3, { stride: 2 }).relu();
  let i = 0;
  for (const [t, k, c, n, s] of stages) {
    const cout = ch(c);
    for (let j = 0; j < n; j++, i++) {
      const stride = j === 0 ? s : 1;
      const hidden = cin * t;
      const block = (b: NetBuilder) => {
        if (t !== 1) b.conv(`block${i}.expand`, cin, hidden, 1).relu();
        b.conv(`block${i}.dw`, hidden, hidden, k, { stride, groups: hidden }).relu();
        b.conv(`block${i}.project`, hidden, cout, 1);
      };
      if (stride === 1 && cin === cout) net.residual(block);
      else block(net);
      cin = cout;
    }
  }
  const last = ch(1280);
  net.conv('last', cin, last, 1).relu();
  return net.globalAvgPool().flatten().linear('head', last, classes).finish(classes);
}

/**
 * MobileNetV2 (Sandler et al. 2018) at width 1: 3×3 depthwise inverted residuals, ImageNet
 * shapes by default (3×224×224, 1000 classes). Not trained: for costing and the default rules
 * of the quadratic pass on depthwise-heavy networks.
 */
export function mobilenetV2(o: ArchOptions = {}): Graph {
  return invertedResidualNet(
    'mobilenetv2',
    [
      [1, 3, 16, 1, 1],
      [6, 3, 24, 2, 2],
      [6, 3, 32, 3, 2],
      [6, 3, 64, 4, 2],
      [6, 3, 96, 3, 1],
      [6, 3, 160, 3, 2],
      [6, 3, 320, 1, 1],
    ],
    o,
  );
}

/**
 * EfficientNet-Lite0 (EfficientNet-B0 without squeeze-excitation, as in the TF Lite models):
 * 3×3 and 5×5 depthwise inverted residuals, ImageNet shapes by default. Not trained.
 */
export function efficientnetLite0(o: ArchOptions = {}): Graph {
  return invertedResidualNet(
    'efficientnet-lite0',
    [
      [1, 3, 16, 1, 1],
      [6, 3, 24, 2, 2],
      [6, 5, 40, 2, 2],
      [6, 3, 80, 3, 2],
      [6, 5, 112, 3, 1],
      [6, 5, 192, 4, 2],
      [6, 3, 320, 1, 1],
    ],
    o,
  );
}
