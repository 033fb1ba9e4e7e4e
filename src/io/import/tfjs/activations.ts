/**
 * Keras activation functions (the `activation` of Conv2D/Dense/Activation layers) as IR ops,
 * with the same formulas as TF.js' layers. They are elementwise, so they work in either layout;
 * only softmax needs its axis mapped.
 */

import type { ConversionContext, KValue } from './context.js';
import type { KerasLayerJson } from './model-json.js';

/** Keras activation names (Python and TF.js spellings) the importer converts. */
export const ACTIVATIONS = [
  'linear',
  'relu',
  'relu6',
  'sigmoid',
  'hard_sigmoid',
  'tanh',
  'softmax',
  'log_softmax',
  'elu',
  'selu',
  'softplus',
  'softsign',
  'swish',
  'silu',
  'mish',
  'exponential',
] as const;

/** Normalises `hardSigmoid` → `hard_sigmoid` and reads `{class_name}` forms. */
export function activationName(raw: unknown): string | undefined {
  if (raw === null || raw === undefined) return 'linear';
  const name =
    typeof raw === 'string'
      ? raw
      : typeof raw === 'object' && typeof (raw as { class_name?: unknown }).class_name === 'string'
        ? (raw as { class_name: string }).class_name
        : undefined;
  return name?.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/^_/, '');
}

/** Applies the named activation to `v` (keeping its layout); unknown names are an error. */
export function applyActivation(
  cx: ConversionContext,
  layer: KerasLayerJson,
  v: KValue,
  raw: unknown,
): KValue {
  const act = activationName(raw);
  const b = cx.b;
  const x = v.name;
  const opts = { name: `${layer.name}_${act ?? 'act'}` };
  let y: string;
  switch (act) {
    case 'linear':
      return v;
    case 'relu':
      y = b.op('Relu', [x], {}, opts);
      break;
    case 'relu6':
      y = b.op('Clip', [x, b.scalar(0), b.scalar(6)], {}, opts);
      break;
    case 'sigmoid':
      y = b.op('Sigmoid', [x], {}, opts);
      break;
    case 'hard_sigmoid':
      y = b.op('HardSigmoid', [x], { alpha: 0.2, beta: 0.5 }, opts);
      break;
    case 'tanh':
      y = b.op('Tanh', [x], {}, opts);
      break;
    case 'softmax':
    case 'log_softmax':
      y = b.op(act === 'softmax' ? 'Softmax' : 'LogSoftmax', [x], { axis: cx.irAxis(v, -1) }, opts);
      break;
    case 'elu':
      y = b.op('Elu', [x], { alpha: 1 }, opts);
      break;
    case 'selu':
      y = b.op('Selu', [x], { alpha: 1.6732632423543772, gamma: 1.0507009873554805 }, opts);
      break;
    case 'softplus':
      y = b.op('Softplus', [x], {}, opts);
      break;
    case 'softsign':
      y = b.op('Div', [x, b.add(b.op('Abs', [x]), b.scalar(1))], {}, opts);
      break;
    case 'swish':
    case 'silu':
      y = b.op('Mul', [b.op('Sigmoid', [x]), x], {}, opts);
      break;
    case 'mish':
      y = b.op('Mish', [x], {}, opts);
      break;
    case 'exponential':
      y = b.op('Exp', [x], {}, opts);
      break;
    default:
      cx.fail(
        layer,
        `activation '${String(act ?? JSON.stringify(raw))}' is not supported; supported: ${ACTIVATIONS.join(', ')}`,
      );
  }
  return { ...v, name: y };
}
