/** TF op converters: pooling and resizing. */

import { tensor } from '../../../../ir/tensor.js';
import { shortName } from '../graph-context.js';
import {
  attrBool,
  attrInts,
  nhwc,
  nodeName,
  numeric,
  registerTfOp,
  spatial4,
  window,
} from './registry.js';
import type { OpConverter } from './registry.js';

// ---------------------------------------------------------------- pooling

function pool(op: 'MaxPool' | 'AveragePool'): OpConverter {
  return (call) => {
    const { cx, node } = call;
    nhwc(call);
    const x = cx.runtime(node, call.inputs[0], 'x');
    const { sizes, channels } = spatial4(call, x);
    const k = attrInts(call, 'ksize');
    const s = attrInts(call, 'strides');
    if (k.length !== 4 || s.length !== 4 || k[0] !== 1 || k[3] !== 1)
      cx.fail(node, `ksize and strides must be [1, h, w, 1]`);
    const win = window(call, sizes, [k[1]!, k[2]!], [s[1]!, s[2]!], [1, 1]);
    let xin = cx.to(x, 'cf');
    if (op === 'MaxPool' && cx.zeroPadded.has(x.name)) {
      // onnxruntime's PadFusion (basic optimizations, 1.30) folds a zero Pad into MaxPool's pads,
      // which pool as −inf: wrong wherever a window's real values are all negative. Clip(·, ±inf)
      // is the identity (with a gradient rule) and keeps the Pad out of the MaxPool.
      const inf = cx.b.scalar(Infinity);
      xin = cx.b.op(
        'Clip',
        [xin, cx.b.neg(inf), inf],
        {},
        { name: `${shortName(node.name)}_keep_pad` },
      );
    }
    // AveragePool's default count_include_pad = 0 averages over the valid pixels, as TF does.
    const y = cx.b.op(
      op,
      [xin],
      { kernel_shape: [k[1]!, k[2]!], strides: [s[1]!, s[2]!], ...win.attrs },
      nodeName(call),
    );
    return [{ kind: 'value', name: y, layout: 'cf', shape: [x.shape[0]!, ...win.out, channels] }];
  };
}

registerTfOp('MaxPool', pool('MaxPool'));
registerTfOp('AvgPool', pool('AveragePool'));

// ---------------------------------------------------------------- resizing

/**
 * ResizeBilinear / ResizeNearestNeighbor with TF.js' coordinate rules as ONNX Resize modes:
 * align_corners → `align_corners`, half_pixel_centers → `half_pixel`, neither → `asymmetric`.
 */
function resize(mode: 'linear' | 'nearest'): OpConverter {
  return (call) => {
    const { cx, node } = call;
    const x = cx.runtime(node, call.inputs[0], 'images');
    const { sizes } = spatial4(call, x);
    const size = cx.ints(node, call.inputs[1], 'size');
    if (size.length !== 2 || size.some((d) => d < 1))
      cx.fail(node, `the size must be two positive ints, got [${size.join(', ')}]`);
    const align = attrBool(call, 'align_corners', false);
    const half = attrBool(call, 'half_pixel_centers', false);
    if (align && half) cx.fail(node, `align_corners and half_pixel_centers cannot both be set`);
    const coord = align ? 'align_corners' : half ? 'half_pixel' : 'asymmetric';
    const attrs: Record<string, string> = { mode, coordinate_transformation_mode: coord };
    // TF nearest: round half up with align_corners, else floor(src) where half-pixel src is
    // (x + 0.5)·in/out, i.e. ONNX half_pixel's (x + 0.5)·in/out − 0.5 rounded half up.
    if (mode === 'nearest') attrs.nearest_mode = align || half ? 'round_prefer_ceil' : 'floor';
    const b = cx.b;
    const xin = cx.to(x, 'cf');
    const [h, w] = [size[0]!, size[1]!];
    const [H, W] = [
      numeric(call, sizes[0]!, 'input height'),
      numeric(call, sizes[1]!, 'input width'),
    ];
    // Whole factors only: ONNX Resize then takes exact scales (what the Resize gradient rule
    // reads); other ratios would need sizes with the open batch size, which the IR's shape
    // inference cannot follow.
    if (h % H !== 0 || w % W !== 0) {
      cx.fail(
        node,
        `resizing ${H}×${W} to ${h}×${w} is not by whole factors; only whole-factor resizes are supported (convert the model to ONNX with tf2onnx for others)`,
      );
    }
    const scales = b.constant(tensor('float32', [4], [1, 1, h / H, w / W]), 'scales');
    const y = b.op('Resize', [xin, '', scales], attrs, nodeName(call));
    return [{ kind: 'value', name: y, layout: 'cf', shape: [x.shape[0]!, h, w, x.shape[3]!] }];
  };
}

registerTfOp('ResizeBilinear', resize('linear'));
registerTfOp('ResizeNearestNeighbor', resize('nearest'));
