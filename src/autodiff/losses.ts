import type { GraphBuilder } from '../ir/builder.js';
import type { DType } from '../ir/tensor.js';
import { tensor } from '../ir/tensor.js';

/** Training objectives, written as ordinary differentiable ops. */
export type LossKind = 'cross_entropy' | 'mse' | 'l1';

/** How the loss is computed. */
export interface LossOptions {
  /** Softmax cross-entropy over class logits (integer labels), mean squared error or mean absolute error. */
  kind: LossKind;
  /** Cross-entropy label smoothing ε: targets become (1-ε)·onehot + ε/C. */
  labelSmoothing?: number;
}

/**
 * Appends the mean loss of `output` against `target` and returns the scalar's name. For
 * cross-entropy, `output` is [N, C] logits and `target` holds int64 class indices [N]; for MSE
 * and L1, `target` has the output's shape.
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
  }
}
