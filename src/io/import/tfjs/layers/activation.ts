/** Layer converters: activations. */

import { tensor } from '../../../../ir/tensor.js';
import { applyActivation } from '../activations.js';
import { transposeData } from '../context.js';
import { axisConfig, cfg, num, numericDim, one, optNum, registerLayer } from './registry.js';

registerLayer('Activation', (call) => [
  applyActivation(call.cx, call.layer, one(call), cfg(call, 'activation')),
]);

registerLayer('ReLU', (call) => {
  const x = one(call);
  const maxValue = optNum(call, 'max_value');
  const slope = num(call, 'negative_slope', 0);
  const threshold = num(call, 'threshold', 0);
  const b = call.cx.b;
  const name = { name: call.layer.name };
  let y: string;
  if (slope === 0 && threshold === 0) {
    y =
      maxValue === undefined
        ? b.op('Relu', [x.name], {}, name)
        : b.op('Clip', [x.name, b.scalar(0), b.scalar(maxValue)], {}, name);
  } else {
    // Keras: x ≥ threshold → x, else negative_slope · (x − threshold); then min(·, max_value).
    const below = b.mul(b.sub(x.name, b.scalar(threshold)), b.scalar(slope));
    const keep = b.op('GreaterOrEqual', [x.name, b.scalar(threshold)]);
    y = b.op('Where', [keep, x.name, below], {}, maxValue === undefined ? name : {});
    if (maxValue !== undefined) y = b.op('Min', [y, b.scalar(maxValue)], {}, name);
  }
  return [{ ...x, name: y }];
});

registerLayer('LeakyReLU', (call) => {
  const x = one(call);
  const alpha = optNum(call, 'alpha') ?? num(call, 'negative_slope', 0.3);
  const y = call.cx.b.op('LeakyRelu', [x.name], { alpha }, { name: call.layer.name });
  return [{ ...x, name: y }];
});

registerLayer('ELU', (call) => {
  const x = one(call);
  const y = call.cx.b.op(
    'Elu',
    [x.name],
    { alpha: num(call, 'alpha', 1) },
    { name: call.layer.name },
  );
  return [{ ...x, name: y }];
});

registerLayer('ThresholdedReLU', (call) => {
  const x = one(call);
  const b = call.cx.b;
  const theta = num(call, 'theta', 1);
  const mask = b.cast(b.op('Greater', [x.name, b.scalar(theta)]), 'float32');
  return [{ ...x, name: b.op('Mul', [x.name, mask], {}, { name: call.layer.name }) }];
});

registerLayer('Softmax', (call) => {
  const x = one(call);
  const axis = axisConfig(call, -1);
  const y = call.cx.b.op(
    'Softmax',
    [x.name],
    { axis: call.cx.irAxis(x, axis) },
    { name: call.layer.name },
  );
  return [{ ...x, name: y }];
});

registerLayer('PReLU', (call) => {
  const x = one(call);
  const r = x.shape.length;
  const shared = cfg(call, 'shared_axes');
  const sharedAxes =
    shared === null || shared === undefined ? [] : Array.isArray(shared) ? shared : [shared];
  // alpha has the input's shape without the batch, with size 1 on shared axes.
  const dims = x.shape
    .slice(1)
    .map((d, i) => (sharedAxes.includes(i + 1) ? 1 : numericDim(call, d, `size of axis ${i + 1}`)));
  const a = call.cx.weight(call.layer, 'alpha', 0, dims);
  const slope = call.cx.param(call.layer, 'slope', () => {
    if (x.layout === 'keras' || r < 3) return tensor('float32', dims, a.data);
    // In the cf layout the channel axis comes first among the non-batch axes.
    const perm = [r - 2, ...Array.from({ length: r - 2 }, (_, i) => i)];
    const t = transposeData(a.data, dims, perm);
    return tensor('float32', t.dims, t.data);
  });
  return [{ ...x, name: call.cx.b.op('PRelu', [x.name, slope], {}, { name: call.layer.name }) }];
});
