/** Layer converters: pooling. */

import type { Dim } from '../../../../ir/graph.js';
import {
  bool,
  cfg,
  ints,
  one,
  registerLayer,
  spatial,
  str,
  windowAttrs,
  windowPads,
} from './registry.js';
import type { LayerConverter } from './registry.js';

function poolLayer(op: 'MaxPool' | 'AveragePool', n: number): LayerConverter {
  return (call) => {
    const x = one(call);
    const sp = spatial(call, x, n);
    const size = ints(call, 'pool_size', n, new Array<number>(n).fill(2));
    const stridesRaw = cfg(call, 'strides');
    const strides =
      stridesRaw === null || stridesRaw === undefined ? size : ints(call, 'strides', n);
    const win = windowPads(
      call,
      sp.sizes,
      size,
      strides,
      new Array<number>(n).fill(1),
      str(call, 'padding', 'valid'),
    );
    // AveragePool's default count_include_pad = 0 averages over the valid pixels, as TF does.
    const y = call.cx.b.op(
      op,
      [sp.name],
      { kernel_shape: size, strides, ...windowAttrs(win) },
      { name: call.layer.name },
    );
    return [{ name: y, layout: sp.layout, shape: sp.kerasShape(sp.channels, win.out) }];
  };
}

registerLayer('MaxPooling2D', poolLayer('MaxPool', 2));
registerLayer('AveragePooling2D', poolLayer('AveragePool', 2));
registerLayer('MaxPooling1D', poolLayer('MaxPool', 1));
registerLayer('AveragePooling1D', poolLayer('AveragePool', 1));

function globalPool(op: 'GlobalAveragePool' | 'GlobalMaxPool', n: number): LayerConverter {
  return (call) => {
    const x = one(call);
    const sp = spatial(call, x, n);
    const y = call.cx.b.op(op, [sp.name], {}, { name: call.layer.name });
    const ones = new Array<Dim>(n).fill(1);
    if (bool(call, 'keepdims', false))
      return [{ name: y, layout: sp.layout, shape: sp.kerasShape(sp.channels, ones) }];
    const flat = call.cx.b.op('Flatten', [y], { axis: 1 }, { name: `${call.layer.name}_flatten` });
    return [{ name: flat, layout: 'keras', shape: [x.shape[0]!, sp.channels] }];
  };
}

registerLayer('GlobalAveragePooling2D', globalPool('GlobalAveragePool', 2));
registerLayer('GlobalMaxPooling2D', globalPool('GlobalMaxPool', 2));
registerLayer('GlobalAveragePooling1D', globalPool('GlobalAveragePool', 1));
registerLayer('GlobalMaxPooling1D', globalPool('GlobalMaxPool', 1));
