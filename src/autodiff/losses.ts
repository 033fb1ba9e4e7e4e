import type { GraphBuilder } from '../ir/builder.js';
import type { DType } from '../ir/tensor.js';
import { tensor } from '../ir/tensor.js';

/**
 * Training objectives, written as ordinary differentiable ops. Dense (per-pixel) ones:
 * `pixel_cross_entropy` (class masks) and `pixel_bce` (0/1 masks).
 */
export type LossKind =
  'cross_entropy' | 'mse' | 'l1' | 'nll' | 'bce_logits' | 'pixel_cross_entropy' | 'pixel_bce';

/**
 * Losses whose target is one int64 class index per example (the others take a float tensor of
 * the output's shape).
 */
const CLASS_LABEL_LOSSES: ReadonlySet<LossKind> = new Set(['cross_entropy', 'nll', 'bce_logits']);

/** Whether a loss takes integer class labels [N] (else float targets shaped like the output). */
export function takesClassLabels(kind: LossKind): boolean {
  return CLASS_LABEL_LOSSES.has(kind);
}

/** How the loss is computed. */
export interface LossOptions {
  /**
   * Softmax cross-entropy over class logits (integer labels), mean squared error or mean absolute
   * error; `nll`: negative log-likelihood of log-probabilities (a LogSoftmax output, integer
   * labels); `bce_logits`: binary cross-entropy of sigmoid logits, averaged over all units (one
   * unit: labels 0/1; C units: one-hot of the label, one-vs-rest), in a stable form.
   */
  kind: LossKind;
  /**
   * Label smoothing ε: cross-entropy and NLL targets become (1-ε)·onehot + ε/C, binary
   * cross-entropy targets (1-ε)·t + ε/2.
   */
  labelSmoothing?: number;
}

/** [N, C] one-hot of int64 labels [N], as Equal against 0..C-1 (OneHot has no double kernel in onnxruntime). */
function oneHot(b: GraphBuilder, labels: string, classes: number, dtype: DType): string {
  const classIds = b.constant(
    tensor(
      'int64',
      [1, classes],
      Array.from({ length: classes }, (_, i) => i),
    ),
    'class_ids',
  );
  return b.cast(b.op('Equal', [b.unsqueeze(labels, [1]), classIds]), dtype);
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
 * cross-entropy, `output` is [N, C] logits and `target` holds int64 class indices [N] (likewise
 * for NLL with log-probabilities and BCE-with-logits with [N, K] logits); for MSE
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
    case 'cross_entropy':
    case 'nll': {
      if (shape.length !== 2)
        throw new Error(
          `${opts.kind === 'nll' ? 'NLL needs [N, C] log-probabilities' : 'cross-entropy needs [N, C] logits'}, got [${shape.join(',')}]`,
        );
      const [batch, classes] = shape as [number, number];
      const eps = opts.labelSmoothing ?? 0;
      const hit = oneHot(b, target, classes, dtype);
      const onehot =
        eps === 0
          ? hit
          : b.add(b.mul(hit, b.scalar(1 - eps, dtype)), b.scalar(eps / classes, dtype));
      const logp = opts.kind === 'nll' ? output : b.op('LogSoftmax', [output], { axis: -1 });
      const total = b.op('ReduceSum', [b.mul(logp, onehot)], { keepdims: 0 });
      return b.mul(total, b.scalar(-1 / batch, dtype));
    }
    case 'bce_logits': {
      if (shape.length !== 2)
        throw new Error(`binary cross-entropy needs [N, K] logits, got [${shape.join(',')}]`);
      const [batch, units] = shape as [number, number];
      const eps = opts.labelSmoothing ?? 0;
      // One unit: the label is the target (0/1); K units: one-vs-rest against the label.
      const hit =
        units === 1 ? b.cast(b.unsqueeze(target, [1]), dtype) : oneHot(b, target, units, dtype);
      const t =
        eps === 0 ? hit : b.add(b.mul(hit, b.scalar(1 - eps, dtype)), b.scalar(eps / 2, dtype));
      // log σ(z) and log(1 - σ(z)) as LogSoftmax over the pair (0, z): stable for any |z| and
      // smooth at z = 0, unlike max(z,0) - z·t + log(1 + e^-|z|) whose kinks autodiff gets wrong at 0.
      const zeros = b.constant(
        tensor(dtype, [batch, units, 1], new Array<number>(batch * units).fill(0)),
        'zeros',
      );
      const pair = b.concat([zeros, b.unsqueeze(output, [2])], 2);
      const logp = b.op('LogSoftmax', [pair], { axis: -1 });
      const weights = b.concat(
        [b.sub(b.scalar(1, dtype), t), t].map((x) => b.unsqueeze(x, [2])),
        2,
      );
      const total = b.op('ReduceSum', [b.mul(logp, weights)], { keepdims: 0 });
      return b.mul(total, b.scalar(-1 / (batch * units), dtype));
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
