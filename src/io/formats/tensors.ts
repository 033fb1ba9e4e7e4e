import type { DType, Tensor, TypedArray } from '../../ir/tensor.js';
import type { SafeDType, SafeTensor } from './safetensors.js';

const TO_SAFE: Record<DType, SafeDType> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  int64: 'I64',
  int32: 'I32',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

const FROM_SAFE = new Map<SafeDType, DType>(
  Object.entries(TO_SAFE).map(([k, v]) => [v, k as DType]),
);

/** The safetensors dtype of an IR dtype. */
export function safeDType(d: DType): SafeDType {
  return TO_SAFE[d];
}

/** The IR dtype of a safetensors dtype, or undefined for one the IR lacks (BF16). */
export function irDType(d: SafeDType): DType | undefined {
  return FROM_SAFE.get(d);
}

/** An IR tensor as a safetensors entry (data shared, not copied). */
export function toSafeTensor(t: Tensor): SafeTensor {
  return { dtype: TO_SAFE[t.dtype], shape: [...t.dims], data: t.data as SafeTensor['data'] };
}

/** A safetensors entry as an IR tensor (data shared); throws for dtypes the IR lacks (BF16). */
export function fromSafeTensor(t: SafeTensor, name: string): Tensor {
  const dtype = FROM_SAFE.get(t.dtype);
  if (!dtype) throw new Error(`tensor '${name}' has dtype ${t.dtype}, which quadranet cannot use`);
  return { dtype, dims: [...t.shape], data: t.data as TypedArray };
}
