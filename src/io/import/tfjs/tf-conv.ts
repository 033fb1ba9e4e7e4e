/**
 * TF's convolutions in ONNX terms, shared by the layers and the graph-model importers: the
 * kernel layouts (HWIO and depthwise kernels as ONNX Conv weights) and the windows (TF's SAME
 * padding with the smaller half first, VALID, or explicit pads, and the output size per axis). An unknown size stays symbolic when the window keeps it (stride 1 and
 * pads that make up for the window); SAME with a stride on an unknown size becomes auto_pad
 * SAME_UPPER, which ONNX resolves at run time as TF does.
 */

import type { Dim } from '../../../ir/graph.js';
import type { Tensor } from '../../../ir/tensor.js';
import { tensor } from '../../../ir/tensor.js';
import { transposeData } from './context.js';

/** How a TF window pads: SAME, VALID, or explicit [begin, end] pads per spatial axis. */
export type TfPadding = 'same' | 'valid' | { explicit: [number, number][] };

/** The window's ONNX padding (explicit pads, or auto_pad) and its output sizes. */
export interface TfWindow {
  /** Explicit ONNX pads [begins..., ends...]; absent when `autoPad` is set. */
  pads?: number[];
  /** Set when some pad depends on an unknown input size. */
  autoPad?: 'SAME_UPPER';
  /** Output size per spatial axis. */
  out: Dim[];
}

/**
 * The window of `kernel` (with `strides`, `dilations`) over spatial `sizes`. `fail` reports a
 * window the input cannot hold; `dynamicName(i)` names an output size that is not known.
 */
export function tfWindow(
  sizes: readonly Dim[],
  kernel: readonly number[],
  strides: readonly number[],
  dilations: readonly number[],
  padding: TfPadding,
  fail: (message: string) => never,
  dynamicName: (axis: number) => string,
): TfWindow {
  const begin: number[] = [];
  const end: number[] = [];
  const out: Dim[] = [];
  let dynamic = false;
  sizes.forEach((size, i) => {
    const eff = (kernel[i]! - 1) * dilations[i]! + 1;
    const s = strides[i]!;
    if (!(s >= 1)) fail(`strides must be ≥ 1`);
    let b0 = 0;
    let e0 = 0;
    if (typeof padding === 'object') {
      [b0, e0] = padding.explicit[i]!;
    } else if (padding === 'same') {
      if (typeof size !== 'number') {
        if (s !== 1) {
          dynamic = true;
          out.push(dynamicName(i));
          begin.push(0);
          end.push(0);
          return;
        }
        b0 = Math.floor((eff - 1) / 2);
        e0 = eff - 1 - b0;
      } else {
        const o = Math.ceil(size / s);
        const total = Math.max(0, (o - 1) * s + eff - size);
        b0 = Math.floor(total / 2);
        e0 = total - b0;
      }
    }
    begin.push(b0);
    end.push(e0);
    if (typeof size === 'number') {
      const padded = size + b0 + e0;
      if (padded < eff)
        fail(
          `input size ${size} is smaller than the window ${eff}` +
            (typeof padding === 'string' ? ` (padding ${padding})` : ''),
        );
      out.push(Math.floor((padded - eff) / s) + 1);
    } else {
      // An unknown size stays itself only when the pads make up exactly for the window.
      out.push(s === 1 && b0 + e0 === eff - 1 ? size : dynamicName(i));
    }
  });
  return dynamic ? { autoPad: 'SAME_UPPER', out } : { pads: [...begin, ...end], out };
}

/**
 * A TF/Keras conv kernel [k1..kn, Cin/g, Cout] as an ONNX Conv weight [Cout, Cin/g, k1..kn].
 */
export function onnxConvKernel(data: Float32Array, dims: readonly number[]): Tensor {
  const n = dims.length - 2;
  const t = transposeData(data, [...dims], [n + 1, n, ...Array.from({ length: n }, (_, i) => i)]);
  return tensor('float32', t.dims, t.data);
}

/**
 * A TF/Keras depthwise kernel [k1..kn, C, M] as an ONNX Conv weight [C·M, 1, k1..kn] (group C):
 * output channel c·M + m, in TF's order.
 */
export function onnxDepthwiseKernel(data: Float32Array, dims: readonly number[]): Tensor {
  const n = dims.length - 2;
  const [c, m] = [dims[n]!, dims[n + 1]!];
  const t = transposeData(data, [...dims], [n, n + 1, ...Array.from({ length: n }, (_, i) => i)]);
  return tensor('float32', [c * m, 1, ...dims.slice(0, n)], t.data);
}
