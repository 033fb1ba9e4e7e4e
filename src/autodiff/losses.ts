import type { GraphBuilder } from '../ir/builder.js';
import type { DType } from '../ir/tensor.js';
import { tensor } from '../ir/tensor.js';

/**
 * Training objectives, written as ordinary differentiable ops. Dense (per-pixel) ones:
 * `pixel_cross_entropy` (class masks) and `pixel_bce` (0/1 masks).
 */
export type LossKind = 'cross_entropy' | 'mse' | 'l1' | 'pixel_cross_entropy' | 'pixel_bce';

/** How the loss is computed. */
export interface LossOptions {
  /** Softmax cross-entropy over class logits (integer labels), mean squared error or mean absolute error. */
  kind: LossKind;
  /** Cross-entropy label smoothing ε: targets become (1-ε)·onehot + ε/C. */
  labelSmoothing?: number;
}

/**
 * The shape of the target a loss compares `[N, ...]` outputs with (besides `cross_entropy`'s
 * int64 labels `[N]`): the output's own shape, or for `pixel_cross_entropy` one channel
 * `[N, 1, ...spatial]` of class indices (as float, one per pixel).
 */
export function lossTargetShape(kind: LossKind, outShape: readonly number[]): number[] {
  if (kind === 'pixel_cross_entropy') return [outShape[0]!, 1, ...outShape.slice(2)];
  return [...outShape];
}

/**
 * Appends the mean loss of `output` against `target` and returns the scalar's name. For
 * cross-entropy, `output` is [N, C] logits and `target` holds int64 class indices [N]; for MSE
 * and L1, `target` has the output's shape. Dense losses on [N, C, ...spatial] logits, averaged
 * over every pixel of every example: `pixel_cross_entropy`, softmax over C against a float
 * target [N, 1, ...spatial] of class indices; `pixel_bce`, binary cross-entropy of each logit
 * z against a target t in [0, 1] of the output's shape, as softplus(z) − z·t written
 * relu(z) + softplus(−|z|) − z·t (no overflow for large |z|).
 */
export function addLoss(
  b: GraphBuilder,
  output: string,
  target: string,
  shape: readonly number[],
  opts: LossOptions,
  dtype: DType = 'float32',
): string {
  switch (opts.kind) {
    case 'cross_entropy': {
      if (shape.length !== 2)
        throw new Error(`cross-entropy needs [N, C] logits, got [${shape.join(',')}]`);
      const [batch, classes] = shape as [number, number];
      const eps = opts.labelSmoothing ?? 0;
      // One-hot as Equal against 0..C-1: OneHot has no double kernel in onnxruntime.
      const classIds = b.constant(
        tensor(
          'int64',
          [1, classes],
          Array.from({ length: classes }, (_, i) => i),
        ),
        'class_ids',
      );
      const hit = b.cast(b.op('Equal', [b.unsqueeze(target, [1]), classIds]), dtype);
      const onehot =
        eps === 0
          ? hit
          : b.add(b.mul(hit, b.scalar(1 - eps, dtype)), b.scalar(eps / classes, dtype));
      const logp = b.op('LogSoftmax', [output], { axis: -1 });
      const total = b.op('ReduceSum', [b.mul(logp, onehot)], { keepdims: 0 });
      return b.mul(total, b.scalar(-1 / batch, dtype));
    }
    case 'mse': {
      const d = b.sub(output, target);
      return b.op('ReduceMean', [b.mul(d, d)], { keepdims: 0 });
    }
    case 'l1':
      return b.op('ReduceMean', [b.op('Abs', [b.sub(output, target)])], { keepdims: 0 });
    case 'pixel_cross_entropy': {
      if (shape.length < 3)
        throw new Error(
          `per-pixel cross-entropy needs [N, C, ...spatial] logits, got [${shape.join(',')}]`,
        );
      const classes = shape[1]!;
      const pixels = shape.reduce((p, d) => p * d, 1) / classes;
      const ids = b.constant(
        tensor(
          dtype,
          [1, classes, ...shape.slice(2).map(() => 1)],
          Array.from({ length: classes }, (_, i) => i),
        ),
        'pixel_class_ids',
      );
      const onehot = b.cast(b.op('Equal', [target, ids]), dtype);
      const logp = b.op('LogSoftmax', [output], { axis: 1 });
      const total = b.op('ReduceSum', [b.mul(logp, onehot)], { keepdims: 0 });
      return b.mul(total, b.scalar(-1 / pixels, dtype));
    }
    case 'pixel_bce': {
      const z = output;
      const soft = b.op('Softplus', [b.op('Neg', [b.op('Abs', [z])])]);
      const per = b.sub(b.add(b.relu(z), soft), b.mul(z, target));
      return b.op('ReduceMean', [per], { keepdims: 0 });
    }
  }
}
