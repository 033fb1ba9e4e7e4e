/**
 * Evaluating foldable nodes on constant int64/int32 tensors (and small float vectors): the
 * arithmetic of constant folding, separate from the pass that decides what to fold (fold.ts).
 */

import type { Graph, Node } from '../ir/graph.js';
import { attrInt, attrInts } from '../ir/graph.js';
import type { DType, Tensor } from '../ir/tensor.js';
import { dtypeFromOnnx, numel } from '../ir/tensor.js';
import { axisInRange, sliceBounds } from '../ir/axes.js';

// ---------------------------------------------------------------------------------------------
// Evaluation of integer ops on constant inputs (ONNX semantics; undefined = do not fold).

/** The integer element types folding evaluates. */
export const INT_TYPES: ReadonlySet<DType> = new Set<DType>(['int64', 'int32']);

/** An integer tensor as bigints. */
interface Ints {
  dtype: DType;
  dims: number[];
  v: bigint[];
}

function ints(t: Tensor): Ints {
  return {
    dtype: t.dtype,
    dims: t.dims,
    v: Array.from(t.data as ArrayLike<number | bigint>, (x) => BigInt(x)),
  };
}

export function make(dtype: DType, dims: number[], v: bigint[]): Tensor {
  const data =
    dtype === 'int64'
      ? BigInt64Array.from(v, (x) => BigInt.asIntN(64, x))
      : Int32Array.from(v, (x) => Number(BigInt.asIntN(32, x)));
  return { dtype, dims: [...dims], data };
}

function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let k = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = k;
    k *= dims[i]!;
  }
  return s;
}

/** Axes from an input (opset ≥ 13) or the older attribute. */
function axesOf(n: Node, k: number, constant: (name: string) => Tensor | undefined) {
  if (n.inputs[k]) {
    const t = constant(n.inputs[k]!);
    return t ? { axes: ints(t).v.map(Number) } : undefined;
  }
  return { axes: attrInts(n, 'axes') };
}

export function evaluate(
  n: Node,
  constant: (name: string) => Tensor | undefined,
  max: number,
): Tensor | undefined {
  const x = n.inputs[0] ? constant(n.inputs[0]) : undefined;
  if (!x) return undefined;
  const a = ints(x);
  let out: Ints | undefined;
  switch (n.opType) {
    case 'Cast': {
      const to = dtypeFromOnnx(attrInt(n, 'to', 0));
      out = to && INT_TYPES.has(to) ? { ...a, dtype: to } : undefined;
      break;
    }
    case 'Unsqueeze': {
      const ax = axesOf(n, 1, constant);
      if (!ax?.axes) return undefined;
      const rank = a.dims.length + ax.axes.length;
      const axes = ax.axes.map((k) => axisInRange(k, rank));
      if (axes.some((k) => k === undefined) || new Set(axes).size !== axes.length) return undefined;
      const dims: number[] = [];
      for (let i = 0, j = 0; i < rank; i++) dims.push(axes.includes(i) ? 1 : a.dims[j++]!);
      out = { ...a, dims };
      break;
    }
    case 'Squeeze': {
      const ax = axesOf(n, 1, constant);
      if (!ax) return undefined;
      const axes = ax.axes
        ? ax.axes.map((k) => axisInRange(k, a.dims.length))
        : a.dims.flatMap((d, i) => (d === 1 ? [i] : []));
      if (axes.some((k) => k === undefined || a.dims[k] !== 1)) return undefined;
      out = { ...a, dims: a.dims.filter((_, i) => !axes.includes(i)) };
      break;
    }
    case 'Reshape': {
      const s = n.inputs[1] ? constant(n.inputs[1]) : undefined;
      if (!s) return undefined;
      const target = ints(s).v.map(Number);
      const allowZero = attrInt(n, 'allowzero', 0) === 1;
      const dims = target.map((d, i) => (d === 0 && !allowZero ? a.dims[i] : d));
      if (dims.some((d) => d === undefined || d < -1)) return undefined;
      const known = (dims as number[]).filter((d) => d !== -1);
      const rest = known.reduce((p, d) => p * d, 1);
      const free = dims.indexOf(-1);
      if (free >= 0) {
        if (dims.lastIndexOf(-1) !== free || rest === 0 || a.v.length % rest !== 0)
          return undefined;
        dims[free] = a.v.length / rest;
      } else if (rest !== a.v.length) return undefined;
      out = { ...a, dims: dims as number[] };
      break;
    }
    case 'Concat': {
      const parts = n.inputs.map((i) => (i ? constant(i) : undefined));
      if (parts.some((t) => !t)) return undefined;
      const ts = parts.map((t) => ints(t!));
      const rank = a.dims.length;
      const axis = axisInRange(attrInt(n, 'axis', 0), rank);
      if (axis === undefined) return undefined;
      for (const t of ts) {
        if (t.dtype !== a.dtype || t.dims.length !== rank) return undefined;
        if (t.dims.some((d, i) => i !== axis && d !== a.dims[i])) return undefined;
      }
      const outer = a.dims.slice(0, axis).reduce((p, d) => p * d, 1);
      const inner = a.dims.slice(axis + 1).reduce((p, d) => p * d, 1);
      const v: bigint[] = [];
      for (let o = 0; o < outer; o++) {
        for (const t of ts) {
          const chunk = t.dims[axis]! * inner;
          for (let k = 0; k < chunk; k++) v.push(t.v[o * chunk + k]!);
        }
      }
      const dims = [...a.dims];
      dims[axis] = ts.reduce((s, t) => s + t.dims[axis]!, 0);
      out = { dtype: a.dtype, dims, v };
      break;
    }
    case 'Gather': {
      const it = n.inputs[1] ? constant(n.inputs[1]) : undefined;
      if (!it) return undefined;
      const idx = ints(it);
      const axis = axisInRange(attrInt(n, 'axis', 0), a.dims.length);
      if (axis === undefined) return undefined;
      const size = a.dims[axis]!;
      const picks = idx.v.map((i) => Number(i < 0n ? i + BigInt(size) : i));
      if (picks.some((i) => i < 0 || i >= size)) return undefined;
      const outer = a.dims.slice(0, axis).reduce((p, d) => p * d, 1);
      const inner = a.dims.slice(axis + 1).reduce((p, d) => p * d, 1);
      const v: bigint[] = [];
      for (let o = 0; o < outer; o++)
        for (const i of picks)
          for (let k = 0; k < inner; k++) v.push(a.v[(o * size + i) * inner + k]!);
      out = {
        dtype: a.dtype,
        dims: [...a.dims.slice(0, axis), ...idx.dims, ...a.dims.slice(axis + 1)],
        v,
      };
      break;
    }
    case 'Slice':
      out = slice(n, a, constant);
      break;
    case 'ConstantOfShape': {
      // torch's F.pad at opset ≥ 11 builds its pads with it (zeros of the unpadded rank).
      const value = n.attrs['value'];
      const fill = value?.type === 'tensor' ? value.value : undefined;
      if (fill && (!INT_TYPES.has(fill.dtype) || fill.data.length !== 1)) return undefined;
      const dims = a.v.map(Number);
      if (a.dims.length !== 1 || dims.some((d) => d < 0) || numel(dims) > max) return undefined;
      if (!fill) return undefined; // float zeros by default: not an integer result
      out = { dtype: fill.dtype, dims, v: new Array<bigint>(numel(dims)).fill(ints(fill).v[0]!) };
      break;
    }
    case 'Transpose': {
      const rank = a.dims.length;
      const perm = attrInts(n, 'perm') ?? [...Array(rank).keys()].reverse();
      if (perm.length !== rank || new Set(perm.map((k) => axisInRange(k, rank))).size !== rank)
        return undefined;
      const dims = perm.map((k) => a.dims[k]!);
      const [src, dst] = [stridesOf(a.dims), stridesOf(dims)];
      const v: bigint[] = [];
      for (let f = 0; f < a.v.length; f++) {
        let off = 0;
        for (let k = 0; k < rank; k++) off += (Math.floor(f / dst[k]!) % dims[k]!) * src[perm[k]!]!;
        v.push(a.v[off]!);
      }
      out = { dtype: a.dtype, dims, v };
      break;
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
    case 'Mod': {
      const y = n.inputs.length === 2 && n.inputs[1] ? constant(n.inputs[1]) : undefined;
      if (!y || y.dtype !== a.dtype) return undefined;
      const op = n.opType === 'Mod' && attrInt(n, 'fmod', 0) === 1 ? 'Fmod' : n.opType;
      out = arithmetic(op, a, ints(y));
      break;
    }
    default:
      return undefined;
  }
  if (!out || out.v.length > max || out.v.length !== numel(out.dims)) return undefined;
  return make(out.dtype, out.dims, out.v);
}

/** A 1-D Concat of float32 constants (Resize scales), or undefined. */
export function concatFloats(n: Node, g: Graph, max: number): Tensor | undefined {
  const parts = n.inputs.map((i) => (i ? g.initializers.get(i) : undefined));
  if (parts.some((t) => !t || t.dtype !== 'float32' || t.dims.length !== 1)) return undefined;
  const total = parts.reduce((s, t) => s + t!.data.length, 0);
  if (total > max) return undefined;
  const data = new Float32Array(total);
  let k = 0;
  for (const t of parts) {
    data.set(t!.data as Float32Array, k);
    k += t!.data.length;
  }
  return { dtype: 'float32', dims: [total], data };
}

/** ONNX Slice (opset ≥ 10: starts, ends, axes, steps as inputs). */
function slice(n: Node, a: Ints, constant: (name: string) => Tensor | undefined): Ints | undefined {
  const arg = (k: number): number[] | null | undefined => {
    if (!n.inputs[k]) return null;
    const t = constant(n.inputs[k]!);
    return t ? ints(t).v.map(Number) : undefined;
  };
  const [starts, ends, axesIn, stepsIn] = [arg(1), arg(2), arg(3), arg(4)];
  if (!starts || !ends || axesIn === undefined || stepsIn === undefined) return undefined;
  if (starts.length !== ends.length) return undefined;
  const rank = a.dims.length;
  const axes = (axesIn ?? starts.map((_, i) => i)).map((k) => axisInRange(k, rank));
  const steps = stepsIn ?? starts.map(() => 1);
  if (axes.length !== starts.length || steps.length !== starts.length) return undefined;
  if (axes.some((k) => k === undefined) || new Set(axes).size !== axes.length) return undefined;
  const begin = a.dims.map(() => 0);
  const step = a.dims.map(() => 1);
  const dims = [...a.dims];
  for (let i = 0; i < axes.length; i++) {
    const ax = axes[i]!;
    const d = a.dims[ax]!;
    const st = steps[i]!;
    if (st === 0) return undefined;
    const b = sliceBounds(starts[i]!, ends[i]!, st, d);
    begin[ax] = b.start;
    step[ax] = st;
    dims[ax] = b.count;
  }
  const total = numel(dims);
  const src = stridesOf(a.dims);
  const dst = stridesOf(dims);
  const v: bigint[] = [];
  for (let f = 0; f < total; f++) {
    let off = 0;
    for (let k = 0; k < dims.length; k++) {
      const i = Math.floor(f / dst[k]!) % dims[k]!;
      off += (begin[k]! + i * step[k]!) * src[k]!;
    }
    v.push(a.v[off]!);
  }
  return { dtype: a.dtype, dims, v };
}

/**
 * Broadcast integer Add/Sub/Mul/Div/Mod (Div truncates toward zero, as onnxruntime does; Mod
 * takes the divisor's sign, Fmod, i.e. Mod with fmod = 1, the dividend's).
 */
function arithmetic(op: string, a: Ints, b: Ints): Ints | undefined {
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (d: number[]) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [da, db] = [pad(a.dims), pad(b.dims)];
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) {
    if (da[i] !== db[i] && da[i] !== 1 && db[i] !== 1) return undefined;
    dims.push(da[i] === 1 ? db[i]! : da[i]!);
  }
  const [sa, sb, so] = [stridesOf(da), stridesOf(db), stridesOf(dims)];
  const total = numel(dims);
  const v: bigint[] = [];
  for (let f = 0; f < total; f++) {
    let ia = 0;
    let ib = 0;
    for (let k = 0; k < rank; k++) {
      const i = Math.floor(f / so[k]!) % dims[k]!;
      if (da[k] !== 1) ia += i * sa[k]!;
      if (db[k] !== 1) ib += i * sb[k]!;
    }
    const [x, y] = [a.v[ia]!, b.v[ib]!];
    if ((op === 'Div' || op === 'Mod' || op === 'Fmod') && y === 0n) return undefined;
    if (op === 'Mod' || op === 'Fmod') {
      const r = x % y;
      v.push(op === 'Fmod' || r === 0n || r < 0n === y < 0n ? r : r + y);
    } else v.push(op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : x / y);
  }
  return { dtype: a.dtype, dims, v };
}
