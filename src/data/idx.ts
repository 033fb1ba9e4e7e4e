/**
 * Reading and writing IDX files, the format of MNIST and its relatives (Fashion-MNIST, KMNIST,
 * EMNIST): a 4-byte magic number `0x00 0x00 <dtype> <ndims>`, `ndims` big-endian uint32 dimension
 * sizes, then the values in row-major order, big-endian. Files may be gzipped.
 */

import { readFile } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { DataError, reason } from './errors.js';

const gunzipAsync = promisify(gunzip);

/** The element types an IDX file can declare (third byte of the magic number). */
export type IdxDtype = 'ubyte' | 'byte' | 'short' | 'int' | 'float' | 'double';

/** The typed array that holds each IDX element type, in native byte order. */
export type IdxData =
  Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A decoded IDX file. */
export interface IdxArray {
  /** The element type the file declares. */
  dtype: IdxDtype;
  /** The dimension sizes, outermost first (MNIST images: [n, rows, cols]). */
  dims: number[];
  /** The values in row-major order; length is the product of `dims`. */
  data: IdxData;
}

interface DtypeInfo {
  code: number;
  size: number;
}

const DTYPES: Record<IdxDtype, DtypeInfo> = {
  ubyte: { code: 0x08, size: 1 },
  byte: { code: 0x09, size: 1 },
  short: { code: 0x0b, size: 2 },
  int: { code: 0x0c, size: 4 },
  float: { code: 0x0d, size: 4 },
  double: { code: 0x0e, size: 8 },
};

function dtypeOfCode(code: number): IdxDtype | undefined {
  return (Object.keys(DTYPES) as IdxDtype[]).find((k) => DTYPES[k].code === code);
}

/** True when `bytes` starts with the gzip magic number; content, not the file name, decides. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decodes an IDX file already in memory (not gzipped; see `readIdx` for that). Validation is
 * strict because a silently mis-sized array would only fail much later, far from its cause.
 *
 * @param bytes the raw file contents
 * @param source the file name, used in error messages
 * @throws DataError on a bad magic number, an unknown dtype, a truncated header or data, or bytes
 *   left over after the declared data
 */
export function parseIdx(bytes: Uint8Array, source = '<buffer>'): IdxArray {
  const fix = 're-download or regenerate it';
  if (bytes.length < 4) {
    throw new DataError(`${source}: truncated IDX file (${bytes.length} bytes, no header); ${fix}`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    throw new DataError(
      `${source}: not an IDX file (magic 0x${magic}, expected 0x0000TTNN); ` +
        `pass an MNIST-format file, raw or gzipped`,
    );
  }
  const dtype = dtypeOfCode(bytes[2]!);
  if (dtype === undefined) {
    throw new DataError(
      `${source}: unknown IDX element type 0x${bytes[2]!.toString(16).padStart(2, '0')} ` +
        `(valid: 08 ubyte, 09 byte, 0b short, 0c int, 0d float, 0e double); ${fix}`,
    );
  }
  const ndims = bytes[3]!;
  if (ndims === 0) throw new DataError(`${source}: IDX header declares 0 dimensions; ${fix}`);
  const headerLen = 4 + 4 * ndims;
  if (bytes.length < headerLen) {
    throw new DataError(
      `${source}: truncated IDX header (${bytes.length} of ${headerLen} bytes); ${fix}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const { size } = DTYPES[dtype];
  const available = bytes.length - headerLen;
  // The element count is capped just above what the file can hold, so hostile dims can neither
  // overflow the product to Infinity (nor to NaN, Infinity * 0) and slip past the size checks;
  // a later 0 dim still makes it 0.
  const cap = Math.floor(available / size) + 1;
  let count = 1;
  for (const d of dims) count = Math.min(count * d, cap);
  const expected = count * size;
  if (expected > available) {
    // The exact claim, in BigInt: it can exceed 2^53 (or overflow a double) by far.
    const claimed = dims.reduce((a, d) => a * BigInt(d), BigInt(size));
    const need = `${claimed} bytes`;
    throw new DataError(
      `${source}: IDX header declares dims [${dims.join(', ')}] (${need} of ${dtype}) ` +
        `but only ${available} bytes follow; the file is truncated, ${fix}`,
    );
  }
  if (expected < available) {
    throw new DataError(
      `${source}: ${available - expected} unexpected bytes after the data declared by dims ` +
        `[${dims.join(', ')}]; the file is corrupt, ${fix}`,
    );
  }
  return { dtype, dims, data: decode(view, headerLen, count, dtype) };
}

function decode(view: DataView, start: number, count: number, dtype: IdxDtype): IdxData {
  switch (dtype) {
    case 'ubyte':
      // Copy rather than view: the input may be a slice of Node's shared Buffer pool.
      return new Uint8Array(
        view.buffer.slice(view.byteOffset + start, view.byteOffset + start + count),
      );
    case 'byte':
      return new Int8Array(
        view.buffer.slice(view.byteOffset + start, view.byteOffset + start + count),
      );
    case 'short': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(start + 2 * i, false);
      return out;
    }
    case 'int': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(start + 4 * i, false);
      return out;
    }
    case 'float': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + 4 * i, false);
      return out;
    }
    case 'double': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + 8 * i, false);
      return out;
    }
  }
}

/**
 * Reads an IDX file, gunzipping it first when its content is gzip (whatever its name).
 *
 * @throws DataError when the file cannot be read, is not valid gzip, or is not a valid IDX file
 */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new DataError(`${file}: cannot read IDX file (${reason(err)}); check the path`);
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (err) {
      throw new DataError(
        `${file}: corrupt gzip data (${reason(err)}); re-download it or pass the uncompressed file`,
      );
    }
  }
  return parseIdx(bytes, file);
}

/**
 * Encodes an array as an IDX file (uncompressed), the inverse of `parseIdx`: for tests, fixtures
 * and exporting datasets to tools that read MNIST-format files.
 *
 * @throws RangeError when `data.length` is not the product of `dims` or a dimension is not a uint32
 */
export function encodeIdx(array: IdxArray): Uint8Array {
  const { dtype, dims, data } = array;
  const count = dims.reduce((a, b) => a * b, 1);
  if (dims.length === 0 || dims.length > 255) throw new RangeError('IDX needs 1..255 dims');
  if (dims.some((d) => !Number.isInteger(d) || d < 0 || d > 0xffffffff)) {
    throw new RangeError(`IDX dims must be uint32, got [${dims.join(', ')}]`);
  }
  if (data.length !== count) {
    throw new RangeError(
      `IDX data has ${data.length} values, dims [${dims.join(', ')}] need ${count}`,
    );
  }
  const { code, size } = DTYPES[dtype];
  const headerLen = 4 + 4 * dims.length;
  const out = new Uint8Array(headerLen + count * size);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) {
    const at = headerLen + i * size;
    const v = Number(data[i]);
    switch (dtype) {
      case 'ubyte':
        view.setUint8(at, v);
        break;
      case 'byte':
        view.setInt8(at, v);
        break;
      case 'short':
        view.setInt16(at, v, false);
        break;
      case 'int':
        view.setInt32(at, v, false);
        break;
      case 'float':
        view.setFloat32(at, v, false);
        break;
      case 'double':
        view.setFloat64(at, v, false);
        break;
    }
  }
  return out;
}
