/** Shape rules: Convolutions and pooling, with the window arithmetic other stages share (output sizes, pads). */

import type { Dim, Node, ValueInfo } from '../graph.js';
import { attrInt, attrInts, attrString, GraphError } from '../graph.js';
import type { ShapeRule } from './registry.js';
import { fail, registerShapeRule, req } from './registry.js';

/** Output spatial size of a convolution or pooling window. */
export function convOutSize(
  inSize: Dim,
  k: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
  ceil = false,
): Dim {
  if (typeof inSize !== 'number') return `${inSize}'`;
  const eff = (k - 1) * dilation + 1;
  const v = (inSize + padBegin + padEnd - eff) / stride;
  return (ceil ? Math.ceil(v) : Math.floor(v)) + 1;
}

/** Explicit pads for a conv-like node, resolving auto_pad (SAME_UPPER/SAME_LOWER/VALID). */
export function resolvePads(
  node: Node,
  inSpatial: Dim[],
  kernel: number[],
  strides: number[],
  dilations: number[],
): number[] {
  const n = kernel.length;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') return attrInts(node, 'pads', new Array(2 * n).fill(0));
  if (autoPad === 'VALID') return new Array(2 * n).fill(0);
  const pads = new Array(2 * n).fill(0);
  for (let i = 0; i < n; i++) {
    const size = inSpatial[i];
    if (typeof size !== 'number' && strides[i] === 1) {
      // Stride 1: SAME pads are (k−1)·d in all, whatever the (open) input size.
      const total = (kernel[i]! - 1) * dilations[i]!;
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_LOWER' ? total - small : small;
      pads[i + n] = total - pads[i];
      continue;
    }
    if (typeof size !== 'number') {
      throw new GraphError(
        `node '${node.name}': auto_pad ${autoPad} with stride ${strides[i]} needs a static input size (give one with --input-shape, or re-export with explicit pads)`,
        node.name,
      );
    }
    const out = Math.ceil(size / strides[i]!);
    const total = Math.max(
      0,
      (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - size,
    );
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_LOWER' ? total - small : small;
    pads[i + n] = total - pads[i];
  }
  return pads;
}

/** Kernel, strides, dilations and explicit pads of a Conv/ConvTranspose/pool node. */
export function convParams(node: Node, x: ValueInfo, wShape?: Dim[]) {
  const spatial = x.shape.slice(2);
  const kernel =
    attrInts(node, 'kernel_shape') ?? (wShape ? (wShape.slice(2) as number[]) : undefined) ?? [];
  const n = kernel.length;
  const strides = attrInts(node, 'strides', new Array(n).fill(1));
  const dilations = attrInts(node, 'dilations', new Array(n).fill(1));
  const pads = resolvePads(node, spatial, kernel, strides, dilations);
  return { spatial, kernel, strides, dilations, pads };
}

registerShapeRule('Conv', (ctx) => {
  const x = req(ctx, 0);
  const w = req(ctx, 1);
  const { spatial, kernel, strides, dilations, pads } = convParams(ctx.node, x, w.shape);
  const n = kernel.length;
  const group = attrInt(ctx.node, 'group', 1);
  if (
    typeof x.shape[1] === 'number' &&
    typeof w.shape[1] === 'number' &&
    x.shape[1] !== (w.shape[1] as number) * group
  ) {
    fail(ctx, `input has ${x.shape[1]} channels but the weight expects ${w.shape[1]}×${group}`);
  }
  const out = spatial.map((s, i) =>
    convOutSize(s, kernel[i]!, strides[i]!, dilations[i]!, pads[i]!, pads[i + n]!),
  );
  return { outputs: [{ dtype: x.dtype, shape: [x.shape[0]!, w.shape[0]!, ...out] }] };
});

registerShapeRule('ConvTranspose', (ctx) => {
  const x = req(ctx, 0);
  const w = req(ctx, 1);
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  const { spatial, kernel, strides, dilations, pads } = convParams(
    autoPad.startsWith('SAME')
      ? { ...ctx.node, attrs: { ...ctx.node.attrs, auto_pad: { type: 'string', value: 'VALID' } } }
      : ctx.node,
    x,
    w.shape,
  );
  const n = kernel.length;
  const group = attrInt(ctx.node, 'group', 1);
  // SAME_* for ConvTranspose means output = input · stride (pads then follow from it).
  if (autoPad.startsWith('SAME') && !attrInts(ctx.node, 'output_shape')) {
    const cout = typeof w.shape[1] === 'number' ? (w.shape[1] as number) * group : w.shape[1]!;
    const out = spatial.map((s, i) => (typeof s === 'number' ? s * strides[i]! : `${s}'`));
    return { outputs: [{ dtype: x.dtype, shape: [x.shape[0]!, cout, ...out] }] };
  }
  const outPad = attrInts(ctx.node, 'output_padding', new Array(n).fill(0));
  const outShape = attrInts(ctx.node, 'output_shape');
  const out = spatial.map((s, i) =>
    outShape
      ? outShape[i]!
      : typeof s === 'number'
        ? strides[i]! * (s - 1) +
          outPad[i]! +
          (kernel[i]! - 1) * dilations[i]! +
          1 -
          pads[i]! -
          pads[i + n]!
        : `${s}'`,
  );
  const cout = typeof w.shape[1] === 'number' ? (w.shape[1] as number) * group : w.shape[1]!;
  return { outputs: [{ dtype: x.dtype, shape: [x.shape[0]!, cout, ...out] }] };
});

function pool(globalPool: boolean): ShapeRule {
  return (ctx) => {
    const x = req(ctx, 0);
    if (globalPool)
      return {
        outputs: [
          { dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] },
        ],
      };
    const { spatial, kernel, strides, dilations, pads } = convParams(ctx.node, x);
    const n = kernel.length;
    const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
    const out = spatial.map((s, i) =>
      convOutSize(s, kernel[i]!, strides[i]!, dilations[i]!, pads[i]!, pads[i + n]!, ceil),
    );
    const shape = [x.shape[0]!, x.shape[1]!, ...out];
    return {
      outputs: ctx.node.outputs.map((_, k) => ({ dtype: k === 0 ? x.dtype : 'int64', shape })),
    };
  };
}
registerShapeRule(['MaxPool', 'AveragePool', 'LpPool'], pool(false));
registerShapeRule(['GlobalAveragePool', 'GlobalMaxPool'], pool(true));
