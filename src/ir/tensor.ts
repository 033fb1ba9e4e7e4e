/** Element types the IR carries (ONNX names in lower case). */
export type DType =
  'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** Typed array backing each dtype (float16 is kept as raw bits). */
export type TypedArray =
  Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

/** A dense constant tensor: an initializer, a Constant's value or a tensor attribute. */
export interface Tensor {
  /** Element type. */
  dtype: DType;
  /** Shape. */
  dims: number[];
  /** Values in row-major order (float16 as raw bits). */
  data: TypedArray;
}

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

const FROM_ONNX = new Map<number, DType>(
  Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]),
);

/** The IR dtype for an ONNX data-type code, or undefined when unsupported. */
export function dtypeFromOnnx(code: number): DType | undefined {
  return FROM_ONNX.get(code);
}

/** Bytes per element. */
export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Allocates a zeroed typed array of `n` elements for `dtype`. */
export function allocate(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'float16':
      return new Uint16Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
  }
}

/** Number of elements of a shape. */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A tensor from numbers (int64 converted to bigint). */
export function tensor(
  dtype: DType,
  dims: number[],
  values: ArrayLike<number> | TypedArray,
): Tensor {
  const n = numel(dims);
  if (values.length !== n) {
    throw new Error(`tensor: ${values.length} values for shape [${dims.join(',')}]`);
  }
  const data = allocate(dtype, n);
  if (data instanceof BigInt64Array) {
    // Clamp so that "to the end" sentinels like INT64_MAX (not exact as a JS number) stay maximal.
    for (let i = 0; i < n; i++) {
      const v = Math.trunc(Number(values[i]));
      data[i] = v >= 2 ** 63 ? INT64_MAX : v <= -(2 ** 63) ? -INT64_MAX - 1n : BigInt(v);
    }
  } else if (dtype === 'float16') {
    for (let i = 0; i < n; i++) data[i] = toHalfBits(Number(values[i]));
  } else {
    for (let i = 0; i < n; i++) (data as Float32Array)[i] = Number(values[i]);
  }
  return { dtype, dims: [...dims], data };
}

const INT64_MAX = 9223372036854775807n;

/** IEEE half-precision bits of a number (round to nearest even). */
export function toHalfBits(v: number): number {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  f[0] = v;
  const x = u[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant = (mant | 0x800000) >>> (1 - e);
    return sign | ((mant + 0x1000 + ((mant >>> 13) & 1) - 1) >>> 13);
  }
  const half = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // Round to nearest even; a carry into the exponent is the correct result.
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) return half + 1;
  return half;
}

/** A 1-D int64 tensor (shapes, axes, pads). */
export function int64s(values: readonly number[]): Tensor {
  return tensor('int64', [values.length], values);
}

/** A scalar tensor. */
export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return tensor(dtype, [], [value]);
}

/** Reads element `i` of a tensor as a JS number. */
export function at(t: Tensor, i: number): number {
  return Number(t.data[i]);
}

/** All elements of a tensor as JS numbers. */
export function toNumbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/** A deep copy. */
export function cloneTensor(t: Tensor): Tensor {
  return { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() as TypedArray };
}
