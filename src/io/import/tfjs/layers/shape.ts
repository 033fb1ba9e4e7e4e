/** Layer converters: merges, concatenation, upsampling, padding and cropping, and the reshaping layers. */

import type { Dim } from '../../../../ir/graph.js';
import { broadcastDims } from '../../../../ir/shapes/registry.js';
import { tensor } from '../../../../ir/tensor.js';
import type { KValue, Layout } from '../context.js';
import { wrapAxis } from '../../../../ir/axes.js';
import { cfg, ints, num, one, pairs, registerLayer, str } from './registry.js';
import type { LayerCall, LayerConverter } from './registry.js';

/** Brings all inputs to one layout: the first input's when the ranks agree, else Keras. */
function commonLayout(call: LayerCall): { names: string[]; layout: Layout } {
  const ins = call.inputs;
  if (ins.length < 1) call.cx.fail(call.layer, `has no inputs`);
  const sameRank = ins.every((v) => v.shape.length === ins[0]!.shape.length);
  const layout: Layout = sameRank ? ins[0]!.layout : 'keras';
  return { names: ins.map((v) => call.cx.to(v, layout)), layout };
}

function broadcastKeras(call: LayerCall): Dim[] {
  const shapes = call.inputs.map((v) => v.shape);
  return broadcastDims(shapes, () =>
    call.cx.fail(
      call.layer,
      `input shapes [${shapes.map((x) => x.join(', ')).join('] and [')}] do not match`,
    ),
  );
}

function merge(op: string, variadic: boolean): LayerConverter {
  return (call) => {
    const { names, layout } = commonLayout(call);
    const shape = broadcastKeras(call);
    if (op === 'Sub' && names.length !== 2)
      call.cx.fail(call.layer, `expects exactly two inputs, got ${names.length}`);
    const b = call.cx.b;
    let y: string;
    if (variadic || names.length === 1) {
      y = b.op(op, names, {}, { name: call.layer.name });
    } else {
      y = names[0]!;
      for (let i = 1; i < names.length; i++) {
        y = b.op(op, [y, names[i]!], {}, { name: call.layer.name });
      }
    }
    return [{ name: y, layout, shape }];
  };
}

registerLayer('Add', merge('Add', false));
registerLayer('Subtract', merge('Sub', false));
registerLayer('Multiply', merge('Mul', false));
registerLayer('Average', merge('Mean', true));
registerLayer('Maximum', merge('Max', true));
registerLayer('Minimum', merge('Min', true));

registerLayer('Concatenate', (call) => {
  const { names, layout } = commonLayout(call);
  const first = call.inputs[0]!;
  const r = first.shape.length;
  if (!call.inputs.every((v) => v.shape.length === r))
    call.cx.fail(call.layer, `inputs must have the same rank`);
  const axis = num(call, 'axis', -1);
  const a = wrapAxis(axis, r);
  if (a <= 0 || a >= r) call.cx.fail(call.layer, `axis ${axis} is out of range for rank ${r}`);
  const sizes = call.inputs.map((v) => v.shape[a]!);
  const total: Dim = sizes.every((d) => typeof d === 'number')
    ? (sizes as number[]).reduce((p, q) => p + q, 0)
    : `${call.layer.name}_axis`;
  const shape = first.shape.map((d, i) => (i === a ? total : d));
  const y = call.cx.b.op(
    'Concat',
    names,
    { axis: call.cx.irAxis({ ...first, layout }, a) },
    { name: call.layer.name },
  );
  return [{ name: y, layout, shape }];
});

// ---------------------------------------------------------------- spatial reshaping

/** Keras spatial axes (in Keras numbering) of an n-d layer with the given data format. */
function spatialAxes(call: LayerCall, x: KValue, n: number): number[] {
  const fmt = str(call, 'data_format', 'channels_last');
  if (x.shape.length !== n + 2)
    call.cx.fail(call.layer, `expects a rank-${n + 2} input, got [${x.shape.join(', ')}]`);
  return Array.from({ length: n }, (_, i) => (fmt === 'channels_first' ? i + 2 : i + 1));
}

function upsampling(n: number): LayerConverter {
  return (call) => {
    const x = one(call);
    const axes = spatialAxes(call, x, n);
    const size = ints(call, 'size', n, new Array<number>(n).fill(2));
    const interp = str(call, 'interpolation', 'nearest');
    if (interp !== 'nearest' && interp !== 'bilinear')
      call.cx.fail(call.layer, `interpolation '${interp}' is not supported (nearest, bilinear)`);
    const scales = new Array<number>(x.shape.length).fill(1);
    const shape = [...x.shape];
    axes.forEach((a, i) => {
      scales[call.cx.irAxis(x, a)] = size[i]!;
      const d = x.shape[a]!;
      shape[a] = typeof d === 'number' ? d * size[i]! : `${d}*${size[i]}`;
    });
    const b = call.cx.b;
    // TF.js: resizeNearestNeighbor / resizeBilinear with align_corners = half_pixel = false,
    // i.e. source = floor(dst / scale) (asymmetric coordinates).
    const y = b.op(
      'Resize',
      [x.name, '', b.constant(tensor('float32', [scales.length], scales), 'scales')],
      interp === 'nearest'
        ? { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }
        : { mode: 'linear', coordinate_transformation_mode: 'asymmetric' },
      { name: call.layer.name },
    );
    return [{ ...x, name: y, shape }];
  };
}

registerLayer('UpSampling2D', upsampling(2));

registerLayer('ZeroPadding2D', (call) => {
  const x = one(call);
  const axes = spatialAxes(call, x, 2);
  const p = pairs(call, 'padding', 2);
  const r = x.shape.length;
  const pads = new Array<number>(2 * r).fill(0);
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    const ia = call.cx.irAxis(x, a);
    pads[ia] = p[i]![0];
    pads[ia + r] = p[i]![1];
    const d = x.shape[a]!;
    shape[a] = typeof d === 'number' ? d + p[i]![0] + p[i]![1] : `${call.layer.name}_out${i}`;
  });
  const b = call.cx.b;
  const y = b.op('Pad', [x.name, b.ints(pads)], { mode: 'constant' }, { name: call.layer.name });
  return [{ ...x, name: y, shape }];
});

registerLayer('Cropping2D', (call) => {
  const x = one(call);
  const axes = spatialAxes(call, x, 2);
  const p = pairs(call, 'cropping', 2);
  const starts: number[] = [];
  const ends: number[] = [];
  const irAxes: number[] = [];
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    irAxes.push(call.cx.irAxis(x, a));
    starts.push(p[i]![0]);
    ends.push(p[i]![1] === 0 ? Number.MAX_SAFE_INTEGER : -p[i]![1]);
    const d = x.shape[a]!;
    shape[a] = typeof d === 'number' ? d - p[i]![0] - p[i]![1] : `${call.layer.name}_out${i}`;
  });
  const b = call.cx.b;
  const y = b.op(
    'Slice',
    [x.name, b.ints(starts), b.ints(ends), b.ints(irAxes)],
    {},
    {
      name: call.layer.name,
    },
  );
  return [{ ...x, name: y, shape }];
});

// ---------------------------------------------------------------- shape layers

registerLayer('Flatten', (call) => {
  const x = one(call);
  const r = x.shape.length;
  let name = call.cx.to(x, 'keras');
  // With channels_first, Keras moves the channels last before flattening.
  if (str(call, 'data_format', 'channels_last') === 'channels_first' && r > 2) {
    name = call.cx.b.transpose(name, [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1]);
  }
  const rest = x.shape.slice(1);
  const size: Dim = rest.every((d) => typeof d === 'number')
    ? (rest as number[]).reduce((a, b) => a * b, 1)
    : `${call.layer.name}_size`;
  const y = call.cx.b.op('Flatten', [name], { axis: 1 }, { name: call.layer.name });
  return [{ name: y, layout: 'keras', shape: [x.shape[0]!, size] }];
});

registerLayer('Reshape', (call) => {
  const x = one(call);
  const raw = cfg(call, 'target_shape');
  // TF.js writes an inferred size as null, Keras as -1.
  const target = Array.isArray(raw) ? raw.map((d) => (d === null ? -1 : d)) : raw;
  if (
    !Array.isArray(target) ||
    !target.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && (d > 0 || d === -1)) ||
    target.filter((d) => d === -1).length > 1
  ) {
    call.cx.fail(call.layer, `config 'target_shape' must be a list of sizes (one may be -1)`);
  }
  const t = target as number[];
  const rest = x.shape.slice(1);
  let shape: Dim[] = [x.shape[0]!, ...t];
  if (t.includes(-1)) {
    const known = t.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const total = rest.every((d) => typeof d === 'number')
      ? (rest as number[]).reduce((a, b) => a * b, 1)
      : undefined;
    shape = [
      x.shape[0]!,
      ...t.map((d) =>
        d !== -1 ? d : total !== undefined ? total / known : `${call.layer.name}_size`,
      ),
    ];
  }
  // 0 copies the batch size from the input.
  const y = call.cx.b.op(
    'Reshape',
    [call.cx.to(x, 'keras'), call.cx.b.ints([0, ...t])],
    {},
    { name: call.layer.name },
  );
  return [{ name: y, layout: 'keras', shape }];
});

registerLayer('Permute', (call) => {
  const x = one(call);
  const dims = cfg(call, 'dims');
  const r = x.shape.length;
  if (
    !Array.isArray(dims) ||
    dims.length !== r - 1 ||
    [...dims].sort().some((d, i) => d !== i + 1)
  ) {
    call.cx.fail(call.layer, `config 'dims' must be a permutation of 1..${r - 1}`);
  }
  const perm = [0, ...(dims as number[])];
  const y = call.cx.b.op(
    'Transpose',
    [call.cx.to(x, 'keras')],
    { perm },
    { name: call.layer.name },
  );
  return [{ name: y, layout: 'keras', shape: perm.map((p) => x.shape[p]!) }];
});

registerLayer('Rescaling', (call) => {
  const x = one(call);
  const b = call.cx.b;
  const y = b.op(
    'Add',
    [b.mul(x.name, b.scalar(num(call, 'scale'))), b.scalar(num(call, 'offset', 0))],
    {},
    { name: call.layer.name },
  );
  return [{ ...x, name: y }];
});

// Inference-time identities: their outputs are their inputs.
registerLayer(
  [
    'Dropout',
    'SpatialDropout1D',
    'SpatialDropout2D',
    'SpatialDropout3D',
    'GaussianNoise',
    'GaussianDropout',
    'AlphaDropout',
    'ActivityRegularization',
  ],
  (call) => [one(call)],
);
