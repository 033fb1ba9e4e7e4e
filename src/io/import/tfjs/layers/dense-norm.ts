/** Layer converters: Dense and the normalisations. */

import { tensor } from '../../../../ir/tensor.js';
import { applyActivation } from '../activations.js';
import type { KValue, Layout } from '../context.js';
import { wrapAxis } from '../../../../ir/axes.js';
import {
  axisConfig,
  biasParam,
  bool,
  cfg,
  num,
  numericDim,
  one,
  registerLayer,
  useBias,
} from './registry.js';

registerLayer('Dense', (call) => {
  const x = one(call);
  const units = num(call, 'units');
  const r = x.shape.length;
  if (r < 2) call.cx.fail(call.layer, `expects an input of rank ≥ 2`);
  const cin = numericDim(call, x.shape[r - 1]!, 'input size (last axis)');
  const k = call.cx.weight(call.layer, 'kernel', 0, [cin, units]);
  const w = call.cx.param(call.layer, 'weight', () => tensor('float32', k.dims, k.data));
  // Dense acts on the last Keras axis: MatMul on the Keras layout (any rank ≥ 2).
  let y = call.cx.b.op('MatMul', [call.cx.to(x, 'keras'), w], {}, { name: call.layer.name });
  if (useBias(call))
    y = call.cx.b.op(
      'Add',
      [y, biasParam(call, 1, units)],
      {},
      { name: `${call.layer.name}_bias` },
    );
  const v: KValue = { name: y, layout: 'keras', shape: [...x.shape.slice(0, -1), units] };
  return [applyActivation(call.cx, call.layer, v, cfg(call, 'activation'))];
});

registerLayer('BatchNormalization', (call) => {
  const x = one(call);
  const r = x.shape.length;
  const axis = axisConfig(call, -1);
  const a = wrapAxis(axis, r);
  // ONNX BatchNormalization normalises axis 1: the Keras channel axis must land there.
  let layout: Layout;
  if (a === 1) layout = 'keras';
  else if (a === r - 1 && r >= 3) layout = 'cf';
  else
    return call.cx.fail(call.layer, `axis ${axis} of a rank-${r} input is not supported (use -1)`);
  const c = numericDim(call, x.shape[a]!, 'number of channels');
  const eps = num(call, 'epsilon', 1e-3);
  let i = 0;
  const get = (suffix: string, role: string, on: boolean, fill: number): string => {
    if (!on)
      return call.cx.param(call.layer, role, () => tensor('float32', [c], new Array(c).fill(fill)));
    const w = call.cx.weight(call.layer, suffix, i++, [c]);
    return call.cx.param(call.layer, role, () => tensor('float32', [c], w.data));
  };
  const gamma = get('gamma', 'weight', bool(call, 'scale', true), 1);
  const beta = get('beta', 'bias', bool(call, 'center', true), 0);
  const mean = get('moving_mean', 'running_mean', true, 0);
  const variance = get('moving_variance', 'running_var', true, 1);
  const y = call.cx.b.op(
    'BatchNormalization',
    [call.cx.to(x, layout), gamma, beta, mean, variance],
    { epsilon: eps },
    { name: call.layer.name },
  );
  return [{ name: y, layout, shape: [...x.shape] }];
});

registerLayer('LayerNormalization', (call) => {
  const x = one(call);
  const r = x.shape.length;
  const axis = axisConfig(call, -1);
  if (axis !== -1 && axis !== r - 1)
    call.cx.fail(call.layer, `axis ${axis} is not supported (only the last axis)`);
  const c = numericDim(call, x.shape[r - 1]!, 'size of the last axis');
  let i = 0;
  const get = (suffix: string, role: string, on: boolean, fill: number): string => {
    if (!on)
      return call.cx.param(call.layer, role, () => tensor('float32', [c], new Array(c).fill(fill)));
    const w = call.cx.weight(call.layer, suffix, i++, [c]);
    return call.cx.param(call.layer, role, () => tensor('float32', [c], w.data));
  };
  const gamma = get('gamma', 'weight', bool(call, 'scale', true), 1);
  const beta = get('beta', 'bias', bool(call, 'center', true), 0);
  const y = call.cx.b.op(
    'LayerNormalization',
    [call.cx.to(x, 'keras'), gamma, beta],
    { axis: -1, epsilon: num(call, 'epsilon', 1e-3) },
    { name: call.layer.name },
  );
  return [{ name: y, layout: 'keras', shape: [...x.shape] }];
});
