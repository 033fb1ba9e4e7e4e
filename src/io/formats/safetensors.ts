/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * u64 header length N, N bytes of JSON header, then one byte buffer holding every tensor.
 *
 * Decoding treats the file as hostile: every size, offset and range is checked before any data is
 * touched, and every failure is a one-line QuadranetFileError naming the file and the tensor.
 */

import { stat, readFile } from 'node:fs/promises';
import { QuadranetFileError, fileErrorFrom } from '../errors.js';
import { writeFileAtomic } from '../atomic.js';

/** Element types understood. F16 and BF16 are carried as raw 16-bit patterns (Uint16Array). */
export type SafeDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I8' | 'U8' | 'BOOL';

/** One tensor: row-major data of `shape`, in the typed array that matches `dtype`. */
export interface SafeTensor {
  /** Element type on disk. */
  dtype: SafeDType;
  /** Dimensions; `[]` is a scalar, a 0 dimension an empty tensor. */
  shape: number[];
  /** Elements, as many as the product of `shape`. */
  data:
    Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array | Uint16Array;
}

/** The contents of a safetensors file. */
export interface SafetensorsContents {
  /** Tensors by name. */
  tensors: Record<string, SafeTensor>;
  /** The `__metadata__` strings; empty when the file has none. */
  metadata: Record<string, string>;
}

/** Limits for decoding. */
export interface DecodeOptions {
  /** Name used in error messages; `<buffer>` by default. */
  file?: string;
  /** Refuse inputs larger than this many bytes (whole file). Unlimited by default. */
  maxBytes?: number;
}

type SafeArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | Int32ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor;

const DTYPES: Record<SafeDType, SafeArrayCtor> = {
  F32: Float32Array,
  F64: Float64Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I8: Int8Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** The reference implementation's limit; a larger header is an attack, not a model. */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

// The format is little-endian and data is copied byte-for-byte, so a big-endian host would
// silently scramble every value; refuse instead.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Serialises tensors (written contiguously in sorted name order) and optional string metadata.
 * The header is padded with spaces so the data buffer starts 8-byte aligned.
 */
export function encodeSafetensors(
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  return encodeFor('<buffer>', tensors, metadata);
}

/**
 * Parses and validates a safetensors buffer, copying each tensor into its own aligned typed
 * array (the input may be discarded afterwards).
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  opts: DecodeOptions = {},
): SafetensorsContents {
  const file = opts.file ?? '<buffer>';
  const fail = (what: string, tensor?: string): never => {
    const where = tensor === undefined ? '' : ` tensor ${quote(tensor)}:`;
    throw new QuadranetFileError(
      file,
      `cannot read ${file}:${where} ${what}; the file is corrupt or not safetensors, re-create it`,
    );
  };
  checkHost(file);
  if (opts.maxBytes !== undefined && bytes.length > opts.maxBytes) {
    throw new QuadranetFileError(
      file,
      `cannot read ${file}: it is ${bytes.length} bytes, over the limit of ${opts.maxBytes}; ` +
        `raise maxBytes if the file is trusted`,
    );
  }
  if (bytes.length < 8) fail(`only ${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const n = Number(headerLen);
  if (8 + n > bytes.length) {
    fail(`header length ${n} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(header)) fail('header is not a JSON object');
  const entries = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMeta = entries[METADATA_KEY];
  if (rawMeta !== undefined) {
    if (!isPlainObject(rawMeta)) fail(`${METADATA_KEY} is not a JSON object`);
    for (const [key, value] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof value !== 'string')
        fail(`${METADATA_KEY} value for ${quote(key)} is not a string`);
      defineOwn(metadata, key, value as string);
    }
  }

  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  interface Slot {
    name: string;
    dtype: SafeDType;
    shape: number[];
    begin: number;
    end: number;
  }
  const slots: Slot[] = [];
  for (const [name, raw] of Object.entries(entries)) {
    if (name === METADATA_KEY) continue;
    if (!isPlainObject(raw)) fail('entry is not a JSON object', name);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) {
      fail(`unknown dtype ${clip(JSON.stringify(dtype) ?? String(dtype))}`, name);
    }
    if (!Array.isArray(shape)) fail('shape is not an array', name);
    let elements = 1;
    for (const d of shape as unknown[]) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        fail(
          `shape ${clip(JSON.stringify(shape))} has a dimension that is not a whole number >= 0`,
          name,
        );
      }
      // Capping just above the buffer size keeps the running product exact (no float overflow
      // from hostile dims) while still letting a later 0 dim make an empty tensor.
      elements = Math.min(elements * (d as number), dataLen + 1);
    }
    if (elements > dataLen) {
      fail(
        `shape ${clip(JSON.stringify(shape))} needs more bytes than the ${dataLen}-byte data buffer`,
        name,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail('data_offsets is not a pair of whole numbers >= 0', name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataLen) {
      fail(
        `data_offsets [${begin}, ${end}] run past the end of the ${dataLen}-byte data buffer`,
        name,
      );
    }
    const itemSize = DTYPES[dtype as SafeDType].BYTES_PER_ELEMENT;
    if (elements * itemSize !== end - begin) {
      fail(
        `shape ${clip(JSON.stringify(shape))} of ${dtype} needs ${elements * itemSize} bytes ` +
          `but data_offsets [${begin}, ${end}] hold ${end - begin}`,
        name,
      );
    }
    slots.push({ name, dtype: dtype as SafeDType, shape: [...(shape as number[])], begin, end });
  }

  // The format requires the buffer to be exactly tiled by the tensors: no overlap (which could
  // alias two tensors) and no holes (which could hide data).
  const ordered = [...slots].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: Slot | undefined;
  for (const slot of ordered) {
    if (slot.begin < cursor) {
      fail(
        `data_offsets [${slot.begin}, ${slot.end}] overlap tensor ${quote(previous!.name)}`,
        slot.name,
      );
    }
    if (slot.begin > cursor) {
      fail(`bytes ${cursor}..${slot.begin} before it belong to no tensor`, slot.name);
    }
    cursor = slot.end;
    previous = slot;
  }
  if (cursor !== dataLen) fail(`bytes ${cursor}..${dataLen} at the end belong to no tensor`);

  const tensors: Record<string, SafeTensor> = {};
  for (const slot of slots) {
    const Ctor = DTYPES[slot.dtype];
    const data = new Ctor((slot.end - slot.begin) / Ctor.BYTES_PER_ELEMENT);
    // Copy rather than view: the slot may sit at any byte offset, and typed-array views need
    // alignment to their element size.
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + slot.begin, dataStart + slot.end));
    defineOwn(tensors, slot.name, { dtype: slot.dtype, shape: slot.shape, data });
  }
  return { tensors, metadata };
}

/** Reads and validates a safetensors file; `maxBytes` is checked before the file is read. */
export async function readSafetensors(
  path: string,
  opts: Omit<DecodeOptions, 'file'> = {},
): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    if (opts.maxBytes !== undefined) {
      const { size } = await stat(path);
      if (size > opts.maxBytes) {
        throw new QuadranetFileError(
          path,
          `cannot read ${path}: it is ${size} bytes, over the limit of ${opts.maxBytes}; ` +
            `raise maxBytes if the file is trusted`,
        );
      }
    }
    bytes = await readFile(path);
  } catch (err) {
    throw fileErrorFrom(err, path, 'read');
  }
  return decodeSafetensors(bytes, { ...opts, file: path });
}

/** Writes a safetensors file atomically (see `writeFileAtomic`). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeFor(path, tensors, metadata));
}

/** `encodeSafetensors` with errors naming `file`, so writers can report the path. */
export function encodeFor(
  file: string,
  tensors: Record<string, SafeTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  checkHost(file);
  const fail = (name: string, what: string): never => {
    throw new QuadranetFileError(file, `cannot write ${file}: tensor ${quote(name)}: ${what}`);
  };
  const names = Object.keys(tensors).sort();
  // The header is assembled by hand because JSON.stringify moves integer-like keys ("0", "12")
  // to the front; the file must list tensors in the same sorted order as their data.
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const keys = Object.keys(metadata).sort();
    parts.push(
      `${JSON.stringify(METADATA_KEY)}:{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`,
    );
  }
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) fail(name, 'the name is reserved for metadata; rename the tensor');
    const { dtype, shape, data } = tensors[name]!;
    const Ctor = Object.hasOwn(DTYPES, dtype) ? DTYPES[dtype] : undefined;
    if (Ctor === undefined) return fail(name, `unknown dtype ${quote(String(dtype))}`);
    if (!(data instanceof Ctor)) fail(name, `${dtype} data must be a ${Ctor.name}`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(name, `shape ${JSON.stringify(shape)} has a dimension that is not a whole number >= 0`);
    }
    const elements = shape.reduce((a, b) => a * b, 1);
    if (elements !== data.length) {
      fail(
        name,
        `shape ${JSON.stringify(shape)} holds ${elements} elements but data has ${data.length}`,
      );
    }
    const end = offset + data.byteLength;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const headerBytes = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(headerBytes, 8);
  out.fill(0x20, 8 + headerBytes.length, 8 + padded);
  let cursor = 8 + padded;
  for (const name of names) {
    const { data } = tensors[name]!;
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), cursor);
    cursor += data.byteLength;
  }
  return out;
}

function checkHost(file: string): void {
  if (!HOST_IS_LITTLE_ENDIAN) {
    throw new QuadranetFileError(
      file,
      `cannot process ${file}: safetensors needs a little-endian machine; use an x64 or arm64 host`,
    );
  }
}

function isPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Quotes a name for a message, cut short so a hostile megabyte-long name cannot flood the log. */
function quote(name: string): string {
  return clip(JSON.stringify(name));
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Sets an own enumerable property even for the key `__proto__`, which plain assignment would
 * treat as a prototype change (a hostile header could otherwise inject a prototype).
 */
function defineOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
