/**
 * Fuzzing of quadranet's file readers with fast-check: random bytes, mutations of valid files
 * (bit flips, truncations, splices, overwrites with boundary values) and structure-aware hostile
 * files are fed to every reader, which must either accept the input or refuse it with its
 * documented one-line error naming the file. Any other exception, a case over the time bound or
 * memory growth over the bound is a finding.
 *
 *   npm run fuzz -- [--runs N] [--seed S] [--target NAME]...   (runs per target, default 20000)
 *
 * test/fuzz.test.ts runs the same properties with a small number of runs on every `npm test`.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import jpeg from 'jpeg-js';
import onnxProto from 'onnx-proto';
import { PNG } from 'pngjs';
import { loadCsv } from '../src/data/csv.js';
import { DataError } from '../src/data/errors.js';
import { decodeImage } from '../src/data/image.js';
import { encodeIdx, parseIdx, readIdx } from '../src/data/idx.js';
import { QuadranetFileError } from '../src/io/errors.js';
import { decodeSafetensors, encodeSafetensors } from '../src/io/formats/safetensors.js';
import { GraphError, type Graph } from '../src/ir/graph.js';
import { decodeModel, encodeModel, OnnxFormatError } from '../src/ir/onnx.js';
import { numel } from '../src/ir/tensor.js';
import { cnn } from '../src/models/zoo.js';

const { onnx } = onnxProto;

type ErrorClass = abstract new (...args: never[]) => Error;

/** One reader under test. */
export interface FuzzTarget {
  /** Short name used in reports and `--target`. */
  name: string;
  /** The function called, for reports. */
  reader: string;
  /** The error classes the reader documents; anything else thrown is a finding. */
  allowed: ErrorClass[];
  /** File extension of the case's name (the name must appear in error messages). */
  ext: string;
  /** Valid files that mutations start from. */
  seeds: Uint8Array[];
  /** A structure-aware generator of (mostly invalid) files, reaching past the first checks. */
  structured: fc.Arbitrary<Uint8Array>;
  /** Reads one case; returns a description of what was accepted, or throws. */
  run(bytes: Uint8Array, file: string): unknown;
  /** Checks what the reader accepted (sizes consistent); throws on silent corruption. */
  checkAccepted?(value: unknown): void;
}

// ---------------------------------------------------------------------------------------------
// Generic byte mutations.

/** Values at and around type boundaries: where length and size checks tend to be off by one. */
const INTERESTING = [
  0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 1e6, 1e9, 0x7fffffff,
  0x80000000, 0xfffffffe, 0xffffffff,
];
const INTERESTING_64 = [
  2n ** 32n,
  2n ** 40n,
  10n ** 12n,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 64n - 1n,
];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'word'; at: number; value: number; width: 2 | 4; le: boolean }
  | { kind: 'word64'; at: number; value: bigint; le: boolean }
  | { kind: 'varint'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'splice'; at: number; donor: number; from: number; len: number; replace: boolean };

const position = fc.nat({ max: 1 << 20 });
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat(7) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('byte' as const),
      at: position,
      value: fc.oneof(fc.constantFrom(0, 0x7f, 0x80, 0xff), fc.nat(255)),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('word' as const),
      at: position,
      value: fc.constantFrom(...INTERESTING),
      width: fc.constantFrom(2 as const, 4 as const),
      le: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('word64' as const),
      at: position,
      value: fc.constantFrom(...INTERESTING_64),
      le: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('varint' as const),
      at: position,
      value: fc.constantFrom(...INTERESTING, 1e12, 2 ** 53),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: position }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), at: position, len: fc.nat(64) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: position,
      bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('splice' as const),
      at: position,
      donor: fc.nat(),
      from: position,
      len: fc.nat(512),
      replace: fc.boolean(),
    }),
  },
);

function varint(value: number): number[] {
  const out: number[] = [];
  let v = BigInt(Math.trunc(value));
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return out;
}

/** Applies mutations in order; positions are taken modulo the current length. */
export function mutate(seed: Uint8Array, mutations: Mutation[], donors: Uint8Array[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(seed);
  const overwrite = (at: number, bytes: ArrayLike<number>): void => {
    if (b.length === 0) return;
    const p = at % b.length;
    for (let i = 0; i < bytes.length && p + i < b.length; i++) b[p + i] = bytes[i]!;
  };
  for (const m of mutations) {
    const n = b.length;
    switch (m.kind) {
      case 'flip':
        if (n > 0) b[m.at % n]! ^= 1 << m.bit;
        break;
      case 'byte':
        overwrite(m.at, [m.value]);
        break;
      case 'word': {
        const w = new Uint8Array(m.width);
        const dv = new DataView(w.buffer);
        if (m.width === 2) dv.setUint16(0, m.value & 0xffff, m.le);
        else dv.setUint32(0, m.value >>> 0, m.le);
        overwrite(m.at, w);
        break;
      }
      case 'word64': {
        const w = new Uint8Array(8);
        new DataView(w.buffer).setBigUint64(0, m.value, m.le);
        overwrite(m.at, w);
        break;
      }
      case 'varint':
        overwrite(m.at, varint(m.value));
        break;
      case 'truncate':
        b = b.slice(0, m.at % (n + 1));
        break;
      case 'delete': {
        const p = m.at % (n + 1);
        b = concat(b.subarray(0, p), b.subarray(p + m.len));
        break;
      }
      case 'insert': {
        const p = m.at % (n + 1);
        b = concat(b.subarray(0, p), m.bytes, b.subarray(p));
        break;
      }
      case 'splice': {
        const donor = donors.length > 0 ? donors[m.donor % donors.length]! : b;
        const from = donor.length > 0 ? m.from % donor.length : 0;
        const piece = donor.slice(from, from + m.len);
        const p = m.at % (n + 1);
        b = concat(b.subarray(0, p), piece, b.subarray(m.replace ? p + piece.length : p));
        break;
      }
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Random bytes, mutated valid files, and the target's structure-aware files. */
export function casesFor(t: FuzzTarget): fc.Arbitrary<Uint8Array> {
  const mutated = fc
    .tuple(fc.nat(), fc.array(mutationArb, { minLength: 1, maxLength: 8 }))
    .map(([i, ms]) => mutate(t.seeds[i % t.seeds.length]!, ms, t.seeds));
  const structuredMutated = fc
    .tuple(t.structured, fc.array(mutationArb, { maxLength: 3 }))
    .map(([b, ms]) => mutate(b, ms, t.seeds));
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
    { weight: 5, arbitrary: mutated },
    { weight: 3, arbitrary: t.structured },
    { weight: 1, arbitrary: structuredMutated },
  );
}

// ---------------------------------------------------------------------------------------------
// Interesting values for structure-aware generators.

const hugeCount = fc.constantFrom(1e6, 2 ** 31, 2 ** 32, 1e12, 2 ** 53, 2 ** 60);
const dimValue = fc.oneof(
  { weight: 6, arbitrary: fc.nat(6) },
  { weight: 2, arbitrary: hugeCount },
  {
    weight: 1,
    arbitrary: fc.constantFrom(-1, -(2 ** 31), 1.5, 1e300, Number.MAX_SAFE_INTEGER + 2),
  },
);

// ---------------------------------------------------------------------------------------------
// ONNX.

function onnxSeeds(): Uint8Array[] {
  const legacy: Graph = {
    name: 'legacy',
    opset: 11,
    metadata: { source: 'fuzz' },
    inputs: [{ name: 'x', dtype: 'float32', shape: ['n', 4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['n'] }],
    initializers: new Map(),
    nodes: [
      {
        name: 'c1',
        opType: 'Constant',
        domain: '',
        inputs: [],
        outputs: ['k'],
        attrs: { value_ints: { type: 'ints', value: [1, 2, 3] } },
      },
      {
        name: 'c2',
        opType: 'Constant',
        domain: '',
        inputs: [],
        outputs: ['s'],
        attrs: { value_float: { type: 'float', value: 0.5 } },
      },
      {
        name: 'c3',
        opType: 'Constant',
        domain: '',
        inputs: [],
        outputs: ['w'],
        attrs: {
          value: {
            type: 'tensor',
            value: { dtype: 'float32', dims: [4], data: Float32Array.of(1, 2, 3, 4) },
          },
        },
      },
      {
        name: 'mul',
        opType: 'Mul',
        domain: '',
        inputs: ['x', 'w'],
        outputs: ['xw'],
        attrs: {},
      },
      {
        name: 'sum',
        opType: 'ReduceSum',
        domain: '',
        inputs: ['xw'],
        outputs: ['r'],
        attrs: { axes: { type: 'ints', value: [1] }, keepdims: { type: 'int', value: 0 } },
      },
      {
        name: 'scale',
        opType: 'Mul',
        domain: '',
        inputs: ['r', 's'],
        outputs: ['y'],
        attrs: {
          note: { type: 'string', value: 'x' },
          fs: { type: 'floats', value: [1, 2] },
          ss: { type: 'strings', value: ['a'] },
        },
      },
    ],
  };
  const small = cnn({ inputShape: [1, 8, 8], width: 0.25, seed: 1 });
  return [
    encodeModel(cnn()),
    encodeModel(small),
    encodeModel(legacy, { opset: 11 }),
    encodeModel({ ...legacy, opset: 13 }, { opset: 13 }),
  ];
}

type OnnxEdit = { op: string; i: number; j: number; value: unknown };

const onnxEditArb: fc.Arbitrary<OnnxEdit> = fc.record({
  op: fc.constantFrom(
    'dims',
    'dataType',
    'rawData',
    'floatData',
    'int64Data',
    'external',
    'attrType',
    'attrValue',
    'constant',
    'opset',
    'elemType',
    'valueDims',
    'noType',
    'dropGraph',
    'dropNodes',
    'metadata',
  ),
  i: fc.nat(),
  j: fc.nat(),
  value: fc.oneof(
    fc.array(dimValue, { maxLength: 5 }),
    fc.integer({ min: -2, max: 30 }),
    dimValue,
    fc.uint8Array({ maxLength: 40 }),
    fc.array(fc.double(), { maxLength: 20 }),
    fc.string(),
    fc.constantFrom('__proto__', 'constructor', 'value_int', 'value_ints', 'value_float', 'value'),
  ),
});

const asArray = (v: unknown): number[] =>
  Array.isArray(v) ? v.map(Number) : typeof v === 'number' ? [v] : [];
const asNumber = (v: unknown): number =>
  typeof v === 'number' ? v : Array.isArray(v) ? Number(v[0] ?? 0) : 0;
/** protobufjs encodes int64 from a number only within the safe range; others go as strings. */
const int64 = (v: number): number | string =>
  Number.isSafeInteger(v)
    ? v
    : String(BigInt(Math.trunc(Math.max(Math.min(v, 2 ** 63 - 1), -(2 ** 63)))));

/** Applies structural edits to a decoded ModelProto and re-encodes it. */
function editModel(seed: Uint8Array, edits: OnnxEdit[]): Uint8Array {
  const m = onnx.ModelProto.decode(seed);
  const g = m.graph!;
  g.initializer ??= [];
  g.node ??= [];
  g.input ??= [];
  g.output ??= [];
  for (const n of g.node) n.attribute ??= [];
  for (const e of edits) {
    const inits = g.initializer;
    const t = inits.length > 0 ? inits[e.i % inits.length]! : undefined;
    const nodes: onnxProto.onnx.INodeProto[] = g.node;
    const node = nodes.length > 0 ? nodes[e.i % nodes.length]! : undefined;
    const attrs = node?.attribute ?? [];
    const attr = attrs.length > 0 ? attrs[e.j % attrs.length]! : undefined;
    switch (e.op) {
      case 'dims':
        if (t) t.dims = asArray(e.value).map(int64) as never;
        break;
      case 'dataType':
        if (t) t.dataType = asNumber(e.value) | 0;
        break;
      case 'rawData':
        if (t)
          t.rawData =
            e.value instanceof Uint8Array
              ? e.value
              : (t.rawData ?? new Uint8Array(0)).subarray(0, e.j % 64);
        break;
      case 'floatData':
        if (t) {
          t.floatData = asArray(e.value);
          if (e.j % 2 === 0) t.rawData = new Uint8Array(0);
        }
        break;
      case 'int64Data':
        if (t) {
          t.int64Data = asArray(e.value).map(int64) as never;
          t.rawData = new Uint8Array(0);
        }
        break;
      case 'external':
        if (t) t.dataLocation = 1;
        break;
      case 'attrType':
        if (attr) attr.type = asNumber(e.value) | 0;
        break;
      case 'attrValue':
        if (attr) {
          attr.i = int64(asNumber(e.value)) as never;
          attr.f = asNumber(e.value);
          attr.ints = asArray(e.value).map(int64) as never;
          if (e.value instanceof Uint8Array) attr.s = e.value;
        }
        break;
      case 'constant': {
        // A Constant node whose attribute name and kind disagree, e.g. value_int holding a float.
        const names = [
          'value',
          'value_int',
          'value_ints',
          'value_float',
          'value_floats',
          'sparse_value',
          'value_string',
        ];
        const T = onnx.AttributeProto.AttributeType;
        const kinds = [T.INT, T.INTS, T.FLOAT, T.FLOATS, T.STRING, T.TENSOR, T.GRAPH, T.UNDEFINED];
        const a = onnx.AttributeProto.create({
          name:
            typeof e.value === 'string' && e.value.length < 12
              ? e.value
              : names[e.j % names.length]!,
          type: kinds[e.i % kinds.length]!,
          i: int64(asNumber(e.value)) as never,
          f: asNumber(e.value) + 0.5,
          ints: asArray(e.value).map(int64) as never,
          floats: asArray(e.value),
          s: new TextEncoder().encode(String(e.value)),
          t:
            kinds[e.i % kinds.length] === T.TENSOR
              ? { dims: asArray(e.value).map(int64) as never, dataType: 1 }
              : undefined,
        });
        nodes.push(
          onnx.NodeProto.create({
            name: `k${e.i}`,
            opType: 'Constant',
            output: [`k${e.i}`],
            attribute: [a],
          }),
        );
        break;
      }
      case 'opset':
        if (m.opsetImport.length > 0) m.opsetImport[0]!.version = int64(asNumber(e.value)) as never;
        break;
      case 'elemType': {
        const vi = [...g.input, ...g.output];
        const v = vi.length > 0 ? vi[e.i % vi.length]! : undefined;
        if (v?.type?.tensorType) v.type.tensorType.elemType = asNumber(e.value) | 0;
        break;
      }
      case 'valueDims': {
        const vi = [...g.input, ...g.output];
        const v = vi.length > 0 ? vi[e.i % vi.length]! : undefined;
        if (v?.type?.tensorType) {
          v.type.tensorType.shape = {
            dim: asArray(e.value).map((d) => ({ dimValue: int64(d) as never })),
          } as never;
        }
        break;
      }
      case 'noType': {
        const vi = [...g.input, ...g.output];
        if (vi.length > 0) vi[e.i % vi.length]!.type = null;
        break;
      }
      case 'dropGraph':
        if (e.j % 4 === 0) m.graph = null;
        break;
      case 'dropNodes':
        g.node = nodes.slice(0, e.j % (nodes.length + 1));
        break;
      case 'metadata':
        m.metadataProps.push({ key: String(e.value), value: 'x' });
        break;
    }
  }
  return onnx.ModelProto.encode(m).finish();
}

function onnxTarget(): FuzzTarget {
  const seeds = onnxSeeds();
  return {
    name: 'onnx',
    reader: 'decodeModel',
    allowed: [OnnxFormatError, GraphError],
    ext: 'onnx',
    seeds,
    structured: fc
      .tuple(fc.nat(), fc.array(onnxEditArb, { minLength: 1, maxLength: 4 }))
      .map(([i, edits]) => editModel(seeds[i % seeds.length]!, edits)),
    run: (bytes, file) => decodeModel(bytes, { file }),
    checkAccepted(value) {
      const g = value as Graph;
      for (const [name, t] of g.initializers) {
        if (t.data.length !== numel(t.dims)) {
          throw new Error(
            `accepted initializer '${name}' with ${t.data.length} values for [${t.dims}]`,
          );
        }
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// safetensors.

const SAFE_DTYPES = ['F32', 'F64', 'F16', 'BF16', 'I64', 'I32', 'I8', 'U8', 'BOOL'] as const;
const SAFE_SIZE: Record<string, number> = {
  F32: 4,
  F64: 8,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

function safetensorsSeeds(): Uint8Array[] {
  return [
    encodeSafetensors(
      {
        'conv1.weight': {
          dtype: 'F32',
          shape: [2, 1, 3, 3],
          data: Float32Array.from({ length: 18 }, (_, i) => i / 7),
        },
        'conv1.bias': { dtype: 'F32', shape: [2], data: Float32Array.of(0.5, -1) },
        step: { dtype: 'I64', shape: [], data: BigInt64Array.of(42n) },
        mask: { dtype: 'BOOL', shape: [4], data: Uint8Array.of(1, 0, 1, 1) },
        half: { dtype: 'F16', shape: [2], data: Uint16Array.of(0x3c00, 0xc000) },
        empty: { dtype: 'F64', shape: [0, 3], data: new Float64Array(0) },
      },
      { format: 'pt', note: 'fuzz' },
    ),
    encodeSafetensors({ w: { dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) } }),
  ];
}

interface SafeEntry {
  name: string;
  dtype: string;
  shape: unknown;
  offsets: unknown;
}

const safeName = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('__proto__', '__metadata__', 'constructor', 'toString', 'a', 'b'),
);
const safeEntryArb: fc.Arbitrary<SafeEntry> = fc.record({
  name: safeName,
  dtype: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...SAFE_DTYPES) },
    { weight: 1, arbitrary: fc.string({ maxLength: 4 }) },
  ),
  shape: fc.oneof(
    { weight: 8, arbitrary: fc.array(dimValue, { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  ),
  offsets: fc.oneof(
    { weight: 6, arbitrary: fc.constant('tile') },
    { weight: 2, arbitrary: fc.tuple(dimValue, dimValue) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  ),
});

/** A safetensors file from generated entries: offsets tile the buffer unless the entry says otherwise. */
function buildSafetensors(
  entries: SafeEntry[],
  meta: unknown,
  extra: number,
  lengthField: number | undefined,
): Uint8Array {
  const parts: string[] = [];
  if (meta !== undefined) parts.push(`"__metadata__":${JSON.stringify(meta)}`);
  let cursor = 0;
  for (const e of entries) {
    let offsets = e.offsets;
    if (offsets === 'tile') {
      const shape = Array.isArray(e.shape) ? (e.shape as unknown[]) : [];
      let n = 1;
      for (const d of shape) n *= typeof d === 'number' ? d : 1;
      const bytes =
        Number.isSafeInteger(n) && n >= 0 && n < 4096 ? n * (SAFE_SIZE[e.dtype] ?? 1) : 4;
      offsets = [cursor, cursor + bytes];
      cursor += bytes;
    }
    parts.push(
      `${JSON.stringify(e.name)}:${JSON.stringify({ dtype: e.dtype, shape: e.shape, data_offsets: offsets })}`,
    );
  }
  const header = new TextEncoder().encode(`{${parts.join(',')}}`);
  const out = new Uint8Array(8 + header.length + Math.max(0, cursor + extra));
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthField ?? header.length), true);
  out.set(header, 8);
  for (let i = 8 + header.length; i < out.length; i++) out[i] = i & 0xff;
  return out;
}

function safetensorsTarget(): FuzzTarget {
  return {
    name: 'safetensors',
    reader: 'decodeSafetensors',
    allowed: [QuadranetFileError],
    ext: 'safetensors',
    seeds: safetensorsSeeds(),
    structured: fc
      .tuple(
        fc.array(safeEntryArb, { maxLength: 4 }),
        fc.option(
          fc.oneof(
            fc.dictionary(safeName, fc.string({ maxLength: 4 })),
            fc.jsonValue({ maxDepth: 2 }),
          ),
          { nil: undefined },
        ),
        fc.oneof(
          { weight: 6, arbitrary: fc.constant(0) },
          { weight: 1, arbitrary: fc.integer({ min: -8, max: 16 }) },
        ),
        fc.option(fc.oneof(fc.nat(64), fc.constantFrom(2 ** 32, 1e12, 2 ** 53)), {
          nil: undefined,
          freq: 8,
        }),
      )
      .map(([entries, meta, extra, len]) => buildSafetensors(entries, meta, extra, len)),
    run: (bytes, file) => decodeSafetensors(bytes, { file }),
    checkAccepted(value) {
      const { tensors } = value as ReturnType<typeof decodeSafetensors>;
      for (const [name, t] of Object.entries(tensors)) {
        if (t.data.length !== numel(t.shape)) {
          throw new Error(
            `accepted tensor '${name}' with ${t.data.length} values for [${t.shape}]`,
          );
        }
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// IDX (raw and gzipped).

function idxSeeds(): Uint8Array[] {
  const images = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 37) & 0xff);
  return [
    encodeIdx({ dtype: 'ubyte', dims: [3, 4, 5], data: images }),
    encodeIdx({ dtype: 'ubyte', dims: [6], data: Uint8Array.of(0, 1, 2, 9, 4, 5) }),
    encodeIdx({ dtype: 'float', dims: [2, 3], data: Float32Array.of(1, -2.5, 3, 0, 1e-8, 7) }),
    encodeIdx({ dtype: 'int', dims: [2, 2], data: Int32Array.of(-1, 2, 1 << 30, 7) }),
    encodeIdx({ dtype: 'double', dims: [2], data: Float64Array.of(Math.PI, -0) }),
    encodeIdx({ dtype: 'short', dims: [1, 2, 2, 1], data: Int16Array.of(-32768, 32767, 0, 5) }),
  ];
}

const IDX_CODES = [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e];
const IDX_SIZE: Record<number, number> = { 8: 1, 9: 1, 11: 2, 12: 4, 13: 4, 14: 8 };

const idxStructured: fc.Arbitrary<Uint8Array> = fc
  .record({
    zero: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(255) }),
    code: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...IDX_CODES) },
      { weight: 1, arbitrary: fc.nat(255) },
    ),
    dims: fc.array(
      fc.oneof(
        { weight: 6, arbitrary: fc.nat(6) },
        { weight: 2, arbitrary: fc.constantFrom(...INTERESTING) },
      ),
      { maxLength: 6 },
    ),
    ndims: fc.option(fc.nat(255), { nil: undefined, freq: 8 }),
    slack: fc.oneof(
      { weight: 6, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: -9, max: 9 }) },
    ),
  })
  .map(({ zero, code, dims, ndims, slack }) => {
    const head = new Uint8Array(4 + 4 * dims.length);
    const dv = new DataView(head.buffer);
    head[1] = zero;
    head[2] = code;
    head[3] = ndims ?? dims.length;
    dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d >>> 0, false));
    const count = dims.reduce((a, b) => a * b, 1) * (IDX_SIZE[code] ?? 1);
    const data = new Uint8Array(Math.max(0, (count < 4096 ? count : 16) + slack));
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    return concat(head, data);
  });

function checkIdx(value: unknown): void {
  const a = value as ReturnType<typeof parseIdx>;
  if (a.data.length !== a.dims.reduce((x, y) => x * y, 1)) {
    throw new Error(`accepted IDX with ${a.data.length} values for dims [${a.dims}]`);
  }
}

function idxTarget(): FuzzTarget {
  return {
    name: 'idx',
    reader: 'parseIdx',
    allowed: [DataError],
    ext: 'idx',
    seeds: idxSeeds(),
    structured: idxStructured,
    run: (bytes, file) => parseIdx(bytes, file),
    checkAccepted: checkIdx,
  };
}

function idxGzTarget(dir: string): FuzzTarget {
  return {
    name: 'idx.gz',
    reader: 'readIdx (gzipped file)',
    allowed: [DataError],
    ext: 'idx.gz',
    seeds: idxSeeds().map((b) => gzipSync(b)),
    structured: idxStructured.map((b) => gzipSync(b)),
    run: async (bytes, file) => {
      const path = join(dir, file);
      writeFileSync(path, bytes);
      return readIdx(path);
    },
    checkAccepted: checkIdx,
  };
}

// ---------------------------------------------------------------------------------------------
// CSV.

const CSV_SEED = [
  'sepal_length,sepal_width,petal_length,label',
  '5.1,3.5,1.4,setosa',
  '4.9,3.0,1.4,setosa',
  '7.0,3.2,4.7,versicolor',
  '6.4,3.2,4.5,versicolor',
  '6.3,3.3,6.0,virginica',
  '5.8,2.7,5.1,virginica',
  '',
].join('\n');
const CSV_SEED_INT = ['x0,x1,label', '0.5,-1e3,0', '.25,+2,1', '1,2,1', '3,4,0', ''].join('\r\n');

const csvCell = fc.oneof(
  { weight: 6, arbitrary: fc.double({ noNaN: true }).map(String) },
  { weight: 3, arbitrary: fc.integer({ min: -3, max: 5 }).map(String) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '"a,b"',
      '"x\ny"',
      '"unterminated',
      '""',
      '1e999',
      'NaN',
      '-0',
      '0x10',
      '99999999999',
      '2147483648',
      '9007199254740993',
      '-1',
      'label',
      '\ufeff1',
      '__proto__',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);

const csvStructured: fc.Arbitrary<Uint8Array> = fc
  .record({
    header: fc.array(
      fc.oneof(fc.constantFrom('label', 'x', 'y', 'z', ''), fc.string({ maxLength: 4 })),
      {
        minLength: 0,
        maxLength: 5,
      },
    ),
    rows: fc.array(fc.array(csvCell, { maxLength: 6 }), { maxLength: 8 }),
    eol: fc.constantFrom('\n', '\r\n', '\r'),
    bom: fc.boolean(),
  })
  .map(({ header, rows, eol, bom }) =>
    new TextEncoder().encode(
      (bom ? '\ufeff' : '') + [header, ...rows].map((r) => r.join(',')).join(eol),
    ),
  );

function csvTarget(dir: string): FuzzTarget {
  const enc = new TextEncoder();
  return {
    name: 'csv',
    reader: 'loadCsv',
    allowed: [DataError],
    ext: 'csv',
    seeds: [enc.encode(CSV_SEED), enc.encode(CSV_SEED_INT)],
    structured: csvStructured,
    run: async (bytes, file) => {
      const path = join(dir, file);
      writeFileSync(path, bytes);
      const train = await loadCsv(path);
      const test = await loadCsv(path, { split: 'test', standardize: false, limit: 3, seed: 2 });
      return [train, test];
    },
    checkAccepted(value) {
      for (const ds of value as Awaited<ReturnType<typeof loadCsv>>[]) {
        const size = ds.shape[0] * ds.shape[1] * ds.shape[2];
        if (ds.images.length !== ds.n * size || ds.labels.length !== ds.n) {
          throw new Error(
            `accepted CSV with inconsistent sizes (${ds.images.length} values, n=${ds.n})`,
          );
        }
        for (const y of ds.labels) {
          if (y < 0 || y >= ds.numClasses)
            throw new Error(`accepted CSV label ${y} of ${ds.numClasses}`);
        }
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Images.

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Recomputes every complete chunk's CRC, so that mutated PNG headers (IHDR sizes, bit depths,
 * palettes) get past the CRC check and reach the decoder proper.
 */
export function fixPngCrcs(png: Uint8Array): Uint8Array {
  const out = Uint8Array.from(png);
  const dv = new DataView(out.buffer);
  let at = 8;
  while (at + 12 <= out.length) {
    const len = dv.getUint32(at, false);
    if (at + 12 + len > out.length) break;
    dv.setUint32(at + 8 + len, crc32(out.subarray(at + 4, at + 8 + len)), false);
    at += 12 + len;
  }
  return out;
}

function rgba(w: number, h: number, seed: number): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 29 + seed * 7) & 0xff;
  return data;
}

function pngBytes(
  w: number,
  h: number,
  seed: number,
  colorType: 0 | 2 | 4 | 6,
  bitDepth: 8 | 16,
): Uint8Array {
  const p = new PNG({ width: w, height: h, colorType, bitDepth, inputHasAlpha: true } as never);
  rgba(w, h, seed).copy(p.data);
  return new Uint8Array(PNG.sync.write(p, { colorType, bitDepth, inputHasAlpha: true } as never));
}

function jpegBytes(w: number, h: number, seed: number, quality: number): Uint8Array {
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba(w, h, seed) }, quality).data);
}

function checkImage(value: unknown): void {
  const img = value as ReturnType<typeof decodeImage>;
  if (!(img.width > 0 && img.height > 0) || img.data.length < img.width * img.height * 4) {
    throw new Error(`accepted image ${img.width}x${img.height} with ${img.data.length} bytes`);
  }
}

function pngTarget(): FuzzTarget {
  // Encoded once: every `new PNG()` leaks its stream machinery (about 32 KiB) in pngjs, which
  // would show up as memory growth of the harness, not of the reader.
  const pool: Uint8Array[] = [];
  const colorTypes = [0, 2, 4, 6] as const;
  for (let i = 0; i < 16; i++) {
    pool.push(
      pngBytes(1 + ((i * 5) % 9), 1 + ((i * 7) % 9), i, colorTypes[i % 4]!, i % 8 < 4 ? 8 : 16),
    );
  }
  const seeds = pool.slice(0, 4);
  const mutateThenFix = fc
    .tuple(fc.nat(), fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
    .map(([i, ms]) => fixPngCrcs(mutate(pool[i % pool.length]!, ms, pool)));
  return {
    name: 'png',
    reader: 'decodeImage (PNG)',
    allowed: [DataError],
    ext: 'png',
    seeds,
    structured: fc.oneof(mutateThenFix, fc.constantFrom(...pool)),
    run: (bytes, file) => decodeImage(bytes, file),
    checkAccepted: checkImage,
  };
}

/** The [start, end) byte ranges of a JPEG's marker segments before the entropy-coded data. */
function jpegSegments(bytes: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  let at = 2;
  while (at + 4 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1]!;
    const end = at + 2 + ((bytes[at + 2]! << 8) | bytes[at + 3]!);
    out.push([at, Math.min(end, bytes.length)]);
    if (marker === 0xda) break;
    at = end;
  }
  return out;
}

function jpegTarget(): FuzzTarget {
  // Encoding is slow (jpeg-js builds large tables per call), so a pool is encoded once and the
  // structure-aware cases mutate the header segments (frame, tables, scan) of its members.
  const pool: Uint8Array[] = [];
  for (let i = 0; i < 12; i++) {
    pool.push(jpegBytes(1 + ((i * 7) % 20), 1 + ((i * 5) % 17), i, [90, 50, 10, 100][i % 4]!));
  }
  const seeds = pool.slice(0, 3);
  const segmentMutated = fc
    .tuple(fc.nat(), fc.nat(), fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
    .map(([i, k, ms]) => {
      const bytes = pool[i % pool.length]!;
      const segs = jpegSegments(bytes);
      if (segs.length === 0) return mutate(bytes, ms, pool);
      const [start, end] = segs[k % segs.length]!;
      // Point every in-place mutation into the chosen segment.
      const inSegment = ms.map((m) =>
        m.kind === 'truncate' || m.kind === 'delete' || m.kind === 'insert' || m.kind === 'splice'
          ? m
          : { ...m, at: start + (m.at % Math.max(1, end - start)) },
      );
      return mutate(bytes, inSegment, pool);
    });
  return {
    name: 'jpeg',
    reader: 'decodeImage (JPEG)',
    allowed: [DataError],
    ext: 'jpg',
    seeds,
    structured: fc.oneof(segmentMutated, fc.constantFrom(...pool)),
    run: (bytes, file) => decodeImage(bytes, file),
    checkAccepted: checkImage,
  };
}

/** Every target; `dir` is a scratch directory for the readers that take a path. */
export function fuzzTargets(dir: string): FuzzTarget[] {
  return [
    onnxTarget(),
    safetensorsTarget(),
    idxTarget(),
    idxGzTarget(dir),
    csvTarget(dir),
    pngTarget(),
    jpegTarget(),
  ];
}

// ---------------------------------------------------------------------------------------------
// Running.

/** Options of `fuzzTarget`. */
export interface FuzzOptions {
  /** Generated cases. */
  runs: number;
  /** fast-check seed (the same seed replays the same cases). */
  seed: number;
  /** Longest a single case may take, in ms. */
  timeBoundMs: number;
  /** Largest growth of RSS or ArrayBuffer memory over the start of the target, in bytes. */
  memoryBoundBytes: number;
  /** fast-check replay path of a reported finding (with its seed). */
  path?: string;
  /** Report the first failing case as found, without shrinking it. */
  noShrink?: boolean;
}

/** What one target's run found. */
export interface FuzzStats {
  target: string;
  reader: string;
  cases: number;
  accepted: number;
  /** Refusals by error class. */
  rejected: Record<string, number>;
  maxMs: number;
  totalMs: number;
  /** Peak growth over the target's start, in bytes. */
  peakRssGrowth: number;
  peakArrayBufferGrowth: number;
}

let gcFn: (() => void) | undefined;
/** A full garbage collection when it can be triggered, so memory readings are comparable. */
export function collectGarbage(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** Checks one outcome; returns the error class name, or 'accepted'. */
export function judge(
  t: FuzzTarget,
  file: string,
  outcome: { value?: unknown; error?: unknown },
): string {
  if (outcome.error === undefined) {
    t.checkAccepted?.(outcome.value);
    return 'accepted';
  }
  const err = outcome.error;
  const cls = t.allowed.find((c) => err instanceof c);
  if (!cls) {
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new Error(`${t.reader} threw an undocumented ${what.slice(0, 300)}`, { cause: err });
  }
  const msg = (err as Error).message;
  if (/[\r\n]/.test(msg))
    throw new Error(`${t.reader}: message is not one line: ${JSON.stringify(msg)}`);
  if (!msg.includes(file)) throw new Error(`${t.reader}: message does not name ${file}: ${msg}`);
  return cls.name;
}

/**
 * Runs `runs` generated cases through one target. Throws (with fast-check's shrunk
 * counterexample) on the first undocumented exception, unchecked acceptance, slow case or memory
 * growth over the bound.
 */
export async function fuzzTarget(t: FuzzTarget, opts: FuzzOptions): Promise<FuzzStats> {
  const stats: FuzzStats = {
    target: t.name,
    reader: t.reader,
    cases: 0,
    accepted: 0,
    rejected: {},
    maxMs: 0,
    totalMs: 0,
    peakRssGrowth: 0,
    peakArrayBufferGrowth: 0,
  };
  collectGarbage();
  const base = process.memoryUsage();
  const file = `fuzz-case.${t.ext}`;
  const details = await fc.check(
    fc.asyncProperty(casesFor(t), async (bytes) => {
      const t0 = performance.now();
      let outcome: { value?: unknown; error?: unknown };
      try {
        outcome = { value: await t.run(bytes, file) };
      } catch (error) {
        outcome = { error: error ?? new Error('undefined thrown') };
      }
      const ms = performance.now() - t0;
      const kind = judge(t, file, outcome);
      if (ms > opts.timeBoundMs) {
        throw new Error(
          `${t.reader} took ${ms.toFixed(0)} ms on a ${bytes.length}-byte case (bound ${opts.timeBoundMs} ms)`,
        );
      }
      const mem = process.memoryUsage();
      const rss = mem.rss - base.rss;
      const ab = mem.arrayBuffers - base.arrayBuffers;
      if (Math.max(rss, ab) > opts.memoryBoundBytes) {
        // Garbage from earlier cases can count too; only a growth that survives a collection is a finding.
        collectGarbage();
        const after = process.memoryUsage();
        const grown = Math.max(after.rss - base.rss, after.arrayBuffers - base.arrayBuffers);
        if (grown > opts.memoryBoundBytes) {
          throw new Error(
            `${t.reader}: memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB on a ${bytes.length}-byte case`,
          );
        }
      }
      stats.cases++;
      stats.totalMs += ms;
      stats.maxMs = Math.max(stats.maxMs, ms);
      stats.peakRssGrowth = Math.max(stats.peakRssGrowth, rss);
      stats.peakArrayBufferGrowth = Math.max(stats.peakArrayBufferGrowth, ab);
      if (kind === 'accepted') stats.accepted++;
      else stats.rejected[kind] = (stats.rejected[kind] ?? 0) + 1;
    }),
    { numRuns: opts.runs, seed: opts.seed, path: opts.path, endOnFailure: opts.noShrink },
  );
  if (details.failed) {
    const bytes = details.counterexample?.[0];
    const err = details.errorInstance;
    throw new FuzzFinding(
      t.name,
      err instanceof Error ? err.message : String(err),
      bytes ?? new Uint8Array(0),
      details.seed,
      details.counterexamplePath ?? '',
      err,
    );
  }

  return stats;
}

/** A property violation: the shrunk input and how to replay it. */
export class FuzzFinding extends Error {
  constructor(
    readonly target: string,
    readonly what: string,
    readonly input: Uint8Array,
    readonly seed: number,
    readonly path: string,
    cause: unknown,
  ) {
    super(
      `${target}: ${what} (shrunk input: ${input.length} bytes; replay with --target ${target} ` +
        `--seed ${seed} --path ${path})`,
      { cause },
    );
    this.name = 'FuzzFinding';
  }
}

/** A fixed-width table of the stats. */
export function formatStats(all: FuzzStats[]): string {
  const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
  const rows = [
    [
      'target',
      'reader',
      'cases',
      'accepted',
      'refused (class: count)',
      'max ms',
      'mean ms',
      'peak RSS +MiB',
      'peak AB +MiB',
    ],
    ...all.map((s) => [
      s.target,
      s.reader,
      String(s.cases),
      String(s.accepted),
      Object.entries(s.rejected)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', '),
      s.maxMs.toFixed(1),
      (s.totalMs / Math.max(s.cases, 1)).toFixed(2),
      mib(s.peakRssGrowth),
      mib(s.peakArrayBufferGrowth),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20000' },
      seed: { type: 'string' },
      target: { type: 'string', multiple: true },
      'time-bound': { type: 'string', default: '2000' },
      path: { type: 'string' },
      'no-shrink': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs ${values.runs} must be a whole number >= 1`);
  const dir = mkdtempSync(join(tmpdir(), 'quadranet-fuzz-'));
  const all: FuzzStats[] = [];
  let failed = false;
  try {
    const targets = fuzzTargets(dir).filter(
      (t) => !values.target || values.target.includes(t.name),
    );
    console.log(
      `fuzzing ${targets.map((t) => t.name).join(', ')}: ${runs} runs each, seed ${seed}`,
    );
    collectGarbage();
    const mem0 = process.memoryUsage();
    for (const t of targets) {
      const t0 = performance.now();
      try {
        const s = await fuzzTarget(t, {
          runs,
          seed,
          timeBoundMs: Number(values['time-bound']),
          memoryBoundBytes: 512 * 2 ** 20,
          path: values.path,
          noShrink: values['no-shrink'],
        });
        all.push(s);
        console.log(
          `${t.name}: ${s.cases} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
      } catch (err) {
        failed = true;
        if (!(err instanceof FuzzFinding)) throw err;
        const saved = join(tmpdir(), `quadranet-fuzz-${t.name}-${err.seed}.bin`);
        writeFileSync(saved, err.input);
        console.error(`FINDING ${err.message}; input saved to ${saved}`);
        const cause = err.cause instanceof Error ? err.cause.cause : undefined;
        if (cause instanceof Error) console.error(cause.stack);
      }
    }
    collectGarbage();
    console.log(`\n${formatStats(all)}`);
    const mem1 = process.memoryUsage();
    const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
    console.log(
      `\nGrowth over the whole run, after GC: JS heap ${mib(mem1.heapUsed - mem0.heapUsed)} MiB, ` +
        `ArrayBuffers ${mib(mem1.arrayBuffers - mem0.arrayBuffers)} MiB, ` +
        `RSS ${mib(mem1.rss - mem0.rss)} MiB (peak RSS ${mib(process.resourceUsage().maxRSS * 1024)} MiB)`,
    );
    const retained = mem1.heapUsed - mem0.heapUsed + mem1.arrayBuffers - mem0.arrayBuffers;
    if (retained > 64 * 2 ** 20) {
      failed = true;
      console.error(`FINDING: ${mib(retained)} MiB retained after the run (bound 64 MiB)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  await main();
}
