/**
 * Reading the binary weight shards of a TensorFlow.js model: each manifest group's shard files are
 * concatenated in order and its weights follow each other in that byte stream. Quantized weights
 * are dequantized exactly as TF.js does (`q·scale + min` rounded to float32; float16 widened).
 */

import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { QuadranetFileError, fileErrorFrom } from '../../errors.js';
import type { WeightSpec, WeightsGroup } from './model-json.js';

/** A decoded weight: its manifest entry and values (float32, int32, or bool as 0/1 bytes). */
export interface DecodedWeight {
  spec: WeightSpec;
  data: Float32Array | Int32Array | Uint8Array;
}

const BYTES = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 } as const;

/** Stored bytes of one weight (after quantization). */
export function storedBytes(spec: WeightSpec): number {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  return n * BYTES[spec.quantization?.dtype ?? spec.dtype];
}

/** The float value of IEEE half-precision bits. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Decodes one weight from `bytes` (exactly `storedBytes(spec)` long, any alignment). */
export function decodeWeight(spec: WeightSpec, bytes: Uint8Array): DecodedWeight {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = spec.quantization;
  if (q) {
    const raw = new Float64Array(n);
    if (q.dtype === 'uint8') for (let i = 0; i < n; i++) raw[i] = bytes[i]!;
    else for (let i = 0; i < n; i++) raw[i] = view.getUint16(2 * i, true);
    if (q.dtype === 'float16') {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = halfToFloat(raw[i]!);
      return { spec, data };
    }
    const scale = q.scale!;
    const min = q.min!;
    if (spec.dtype === 'int32') {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = Math.round(raw[i]! * scale + min);
      return { spec, data };
    }
    // The same arithmetic as TF.js (double, then stored as float32), so values match bitwise.
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = raw[i]! * scale + min;
    return { spec, data };
  }
  switch (spec.dtype) {
    case 'float32': {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(4 * i, true);
      return { spec, data };
    }
    case 'int32': {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getInt32(4 * i, true);
      return { spec, data };
    }
    case 'bool':
      return { spec, data: Uint8Array.from(bytes.subarray(0, n), (v) => (v ? 1 : 0)) };
  }
}

/**
 * Reads every group's shards (paths relative to the model file's directory) and decodes all
 * weights by name. Refuses URLs and paths outside that directory; a missing or short shard is an
 * error naming it.
 */
export async function readWeights(
  groups: readonly WeightsGroup[],
  modelFile: string,
): Promise<Map<string, DecodedWeight>> {
  const dir = dirname(resolve(modelFile));
  const out = new Map<string, DecodedWeight>();
  for (const [gi, group] of groups.entries()) {
    const parts: Uint8Array[] = [];
    for (const p of group.paths) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p) || isAbsolute(p)) {
        throw new QuadranetFileError(
          modelFile,
          `${modelFile}: weight shard '${p}' is not a relative path; put the shards next to model.json`,
        );
      }
      const path = resolve(dir, decodeURIComponent(p));
      const rel = relative(dir, path);
      if (rel.startsWith('..') || isAbsolute(rel)) {
        throw new QuadranetFileError(
          modelFile,
          `${modelFile}: weight shard '${p}' lies outside the model's directory; put the shards next to model.json`,
        );
      }
      try {
        parts.push(await readFile(path));
      } catch (e) {
        const err = fileErrorFrom(e, path, 'read');
        throw new QuadranetFileError(
          modelFile,
          `${modelFile}: weight shard '${p}' (group ${gi}): ${err.message}`,
          { cause: e },
        );
      }
    }
    const total = parts.reduce((a, b) => a + b.byteLength, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.byteLength;
    }
    const needed = group.weights.reduce((a, w) => a + storedBytes(w), 0);
    if (total < needed) {
      throw new QuadranetFileError(
        modelFile,
        `${modelFile}: the shards of weight group ${gi} (${group.paths.join(', ')}) hold ${total} bytes but the manifest needs ${needed}; a shard is missing or truncated`,
      );
    }
    let offset = 0;
    for (const spec of group.weights) {
      const size = storedBytes(spec);
      if (out.has(spec.name)) {
        throw new QuadranetFileError(
          modelFile,
          `${modelFile}: weight '${spec.name}' appears twice in the manifest`,
        );
      }
      out.set(spec.name, decodeWeight(spec, bytes.subarray(offset, offset + size)));
      offset += size;
    }
  }
  return out;
}
