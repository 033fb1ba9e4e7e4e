import onnxProto from 'onnx-proto';
import type { Attribute, Dim, Graph, Node, ValueInfo } from './graph.js';
import { GraphError, untypedValues } from './graph.js';
import type { DType, Tensor } from './tensor.js';
import { allocate, DTYPE_BYTES, dtypeFromOnnx, numel, ONNX_DTYPE } from './tensor.js';
import type { UpgradeReport } from '../passes/upgrade-opset.js';
import { upgradeOpsetReported } from '../passes/upgrade-opset.js';
import { QuadranetError } from '../util/errors.js';

const { onnx } = onnxProto;
type Long = { toNumber(): number };

/** Where a model came from, for error messages. */
export interface ReadOptions {
  /** File name used in error messages. */
  file?: string;
  /** Told what the opset upgrade rewrote, when the file was older than the canonical opset. */
  onUpgrade?: (report: UpgradeReport) => void;
}

/** An ONNX file that cannot be read; the message names the file and the fault. */
export class OnnxFormatError extends QuadranetError {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxFormatError';
  }
}

function num(x: number | Long | null | undefined): number {
  if (x === null || x === undefined) return 0;
  return typeof x === 'number' ? x : x.toNumber();
}

/** Opsets accepted on input; older ones are upgraded in `upgradeOpset`. */
export const MIN_OPSET = 7;
export const MAX_OPSET = 21;
/** The IR's canonical opset: ops are kept in this version's form (e.g. Reduce* axes as inputs). */
export const CANONICAL_OPSET = 18;

/**
 * Decodes ONNX protobuf bytes into the IR. Constant nodes holding weights become initializers,
 * initializers duplicated as graph inputs are removed from the inputs, and the opset is
 * upgraded to at least `CANONICAL_OPSET`.
 */
export function decodeModel(
  bytes: Uint8Array,
  { file = '<buffer>', onUpgrade }: ReadOptions = {},
): Graph {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxFormatError(
      `${file}: not a valid ONNX model (${(e as Error).message.split('\n')[0]}); check that the file is a complete .onnx export`,
    );
  }
  const g = model.graph;
  if (!g || (g.node?.length ?? 0) === 0) {
    throw new OnnxFormatError(`${file}: no graph or an empty graph; is this an ONNX model file?`);
  }
  let opset = 0;
  for (const o of model.opsetImport ?? []) {
    if (!o.domain || o.domain === 'ai.onnx') opset = num(o.version);
  }
  if (opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new OnnxFormatError(
      `${file}: opset ${opset} is not supported (supported: ${MIN_OPSET}–${MAX_OPSET}); re-export the model with an opset in that range`,
    );
  }
  const { nodes, initializers } = readNodes(g, file, opset, new Set<string>());
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) defineOwn(metadata, p.key ?? '', p.value ?? '');
  const graph: Graph = {
    name: g.name || 'graph',
    nodes,
    inputs: (g.input ?? [])
      .filter((v) => !initializers.has(v.name ?? ''))
      .map((v) => readValueInfo(v, file)),
    outputs: (g.output ?? []).map((v) => readValueInfo(v, file)),
    initializers,
    opset,
    metadata,
  };
  return upgradeOrRefuse(graph, file, opset, onUpgrade);
}

/** Upgrades a (sub)graph read from `file` at `opset`, turning a refused rewrite into a file error. */
function upgradeOrRefuse(
  graph: Graph,
  file: string,
  opset: number,
  onUpgrade?: (report: UpgradeReport) => void,
): Graph {
  try {
    const r = upgradeOpsetReported(graph, CANONICAL_OPSET);
    if (r.report) onUpgrade?.(r.report);
    return r.graph;
  } catch (e) {
    if (!(e instanceof GraphError)) throw e;
    throw new OnnxFormatError(
      `${file}: ${e.message} (while upgrading from opset ${opset}); re-export with opset 13 or newer`,
    );
  }
}

/**
 * The nodes and initializers of a graph or subgraph. Node names are unique across the model
 * (`usedNodeNames` is shared with the subgraphs), Constant nodes become initializers.
 */
function readNodes(
  g: onnxProto.onnx.IGraphProto,
  file: string,
  opset: number,
  usedNodeNames: Set<string>,
): { nodes: Node[]; initializers: Map<string, Tensor> } {
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) {
    initializers.set(t.name ?? '', readTensor(t, file));
  }
  const nodes: Node[] = [];
  let anon = 0;
  for (const n of g.node ?? []) {
    let name = n.name || `${n.opType}_${anon++}`;
    while (usedNodeNames.has(name)) name = `${name}_${anon++}`;
    usedNodeNames.add(name);
    const attrs: Record<string, Attribute> = {};
    for (const a of n.attribute ?? []) {
      const sub = a.type === onnx.AttributeProto.AttributeType.GRAPH ? a.g : undefined;
      defineOwn(
        attrs,
        a.name ?? '',
        sub
          ? { type: 'graph', value: readSubgraph(sub, file, opset, usedNodeNames) }
          : readAttribute(a, file, name),
      );
    }
    const node: Node = {
      name,
      opType: n.opType ?? '',
      domain: n.domain === 'ai.onnx' ? '' : (n.domain ?? ''),
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs,
    };
    // Weights given as Constant nodes become initializers, so every pass sees one form.
    if (node.opType === 'Constant' && node.domain === '' && node.outputs.length === 1) {
      const t = constantValue(node, file);
      if (t) {
        initializers.set(node.outputs[0]!, t);
        continue;
      }
    }
    nodes.push(node);
  }
  return { nodes, initializers };
}

/**
 * A subgraph attribute (If branch, Loop/Scan body) in the IR, upgraded to the canonical opset
 * like the main graph. Its inputs and outputs may lack a type (ONNX infers them); such values
 * read as float32 of unknown rank.
 */
function readSubgraph(
  g: onnxProto.onnx.IGraphProto,
  file: string,
  opset: number,
  usedNodeNames: Set<string>,
): Graph {
  const { nodes, initializers } = readNodes(g, file, opset, usedNodeNames);
  const info = (v: onnxProto.onnx.IValueInfoProto): ValueInfo => {
    if (v.type?.tensorType) return readValueInfo(v, file);
    const u: ValueInfo = { name: v.name ?? '', dtype: 'float32', shape: [] };
    untypedValues.add(u);
    return u;
  };
  const sub: Graph = {
    name: g.name || 'subgraph',
    nodes,
    inputs: (g.input ?? []).map(info),
    outputs: (g.output ?? []).map(info),
    initializers,
    opset,
    metadata: {},
  };
  return upgradeOrRefuse(sub, file, opset);
}

/** The attribute kind each Constant attribute must have. */
const CONSTANT_KINDS: Record<string, Attribute['type']> = {
  value: 'tensor',
  value_float: 'float',
  value_floats: 'floats',
  value_int: 'int',
  value_ints: 'ints',
};

function constantValue(n: Node, file: string): Tensor | undefined {
  const a = Object.entries(n.attrs)[0];
  if (!a) return undefined;
  const [key, attr] = a;
  const kind = Object.hasOwn(CONSTANT_KINDS, key) ? CONSTANT_KINDS[key] : undefined;
  if (kind !== undefined && attr.type !== kind) {
    throw new OnnxFormatError(
      `${file}: Constant node '${n.name}' has ${key} of kind ${attr.type}, not ${kind}; the file is corrupt, re-export the model`,
    );
  }
  switch (key) {
    case 'value':
      return attr.value as Tensor;
    case 'value_float':
      return { dtype: 'float32', dims: [], data: Float32Array.of(attr.value as number) };
    case 'value_floats':
      return {
        dtype: 'float32',
        dims: [(attr.value as number[]).length],
        data: Float32Array.from(attr.value as number[]),
      };
    case 'value_int':
      return { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(attr.value as number)) };
    case 'value_ints':
      return {
        dtype: 'int64',
        dims: [(attr.value as number[]).length],
        data: BigInt64Array.from((attr.value as number[]).map((v) => BigInt(v))),
      };
    default:
      throw new OnnxFormatError(
        `${file}: Constant node '${n.name}' uses ${key}, which is not supported`,
      );
  }
}

function readValueInfo(v: onnxProto.onnx.IValueInfoProto, file: string): ValueInfo {
  const tt = v.type?.tensorType;
  if (!tt)
    throw new OnnxFormatError(
      `${file}: value '${v.name}' is not a tensor; only tensor inputs and outputs are supported`,
    );
  const dtype = dtypeFromOnnx(tt.elemType ?? 0);
  if (!dtype) {
    throw new OnnxFormatError(
      `${file}: value '${v.name}' has unsupported element type ${tt.elemType}`,
    );
  }
  const shape: Dim[] = (tt.shape?.dim ?? []).map((d, i) => {
    if (d.dimParam) return d.dimParam;
    const n = d.dimValue !== null && d.dimValue !== undefined ? num(d.dimValue) : 0;
    if (n > 0 && !Number.isSafeInteger(n)) {
      throw new OnnxFormatError(
        `${file}: value '${v.name}' has dimension ${n}, too large to be real; the file is corrupt, re-export the model`,
      );
    }
    return n > 0 ? n : `${v.name}_d${i}`;
  });
  return { name: v.name ?? '', dtype, shape };
}

/** Decodes a TensorProto into an IR tensor (data copied into an aligned typed array). */
export function readTensor(t: onnxProto.onnx.ITensorProto, file: string): Tensor {
  const name = t.name ?? '';
  if (
    t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL ||
    (t.externalData?.length ?? 0) > 0
  ) {
    throw new OnnxFormatError(
      `${file}: tensor '${name}' stores its data in an external file, which is not supported; re-save the model with all weights inside the .onnx file`,
    );
  }
  const dtype = dtypeFromOnnx(t.dataType ?? 0);
  if (!dtype)
    throw new OnnxFormatError(`${file}: tensor '${name}' has unsupported data type ${t.dataType}`);
  const dims = (t.dims ?? []).map(num);
  if (dims.some((d) => d < 0 || !Number.isSafeInteger(d))) {
    throw new OnnxFormatError(`${file}: tensor '${name}' has an invalid shape [${dims.join(',')}]`);
  }
  // Every size is checked against the data actually present before anything is allocated, so a
  // shape claiming 10^12 elements costs nothing.
  const n = numel(dims);
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const bytes = n * DTYPE_BYTES[dtype];
    if (raw.length !== bytes) {
      throw new OnnxFormatError(
        `${file}: tensor '${name}' holds ${raw.length} bytes but shape [${dims.join(',')}] needs ${bytes}`,
      );
    }
    const data = allocate(dtype, n);
    new Uint8Array(data.buffer).set(raw);
    return { dtype, dims, data };
  }
  let src: ArrayLike<number | Long> = [];
  switch (dtype) {
    case 'float32':
      src = t.floatData ?? [];
      break;
    case 'float64':
      src = t.doubleData ?? [];
      break;
    case 'int64':
      src = t.int64Data ?? [];
      break;
    default:
      src = t.int32Data ?? []; // int32, int8, uint8, bool and float16 bits live in int32_data
  }
  if (src.length !== n) {
    throw new OnnxFormatError(
      `${file}: tensor '${name}' holds ${src.length} values but shape [${dims.join(',')}] needs ${n}`,
    );
  }
  const data = allocate(dtype, n);
  if (data instanceof BigInt64Array) {
    for (let i = 0; i < n; i++) {
      const v = src[i]!;
      data[i] =
        typeof v === 'number'
          ? BigInt(v)
          : BigInt((v as unknown as { toString(): string }).toString());
    }
  } else {
    for (let i = 0; i < n; i++) (data as Float32Array)[i] = num(src[i]);
  }
  return { dtype, dims, data };
}

function readAttribute(a: onnxProto.onnx.IAttributeProto, file: string, node: string): Attribute {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.INT:
      return { type: 'int', value: num(a.i) };
    case T.FLOAT:
      return { type: 'float', value: a.f ?? 0 };
    case T.STRING:
      return { type: 'string', value: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    case T.INTS:
      return { type: 'ints', value: (a.ints ?? []).map(num) };
    case T.FLOATS:
      return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.STRINGS:
      return { type: 'strings', value: (a.strings ?? []).map((s) => new TextDecoder().decode(s)) };
    case T.TENSOR:
      return { type: 'tensor', value: readTensor(a.t ?? {}, file) };
    default:
      throw new OnnxFormatError(
        `${file}: node '${node}' has attribute '${a.name}' of a kind quadranet does not support (lists of subgraphs and sparse tensors are not supported)`,
      );
  }
}

function writeTensor(name: string, t: Tensor): onnxProto.onnx.ITensorProto {
  return {
    name,
    dims: t.dims,
    dataType: ONNX_DTYPE[t.dtype],
    rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  };
}

function writeAttribute(name: string, a: Attribute): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'strings':
      return { name, type: T.STRINGS, strings: a.value.map((s) => new TextEncoder().encode(s)) };
    case 'tensor':
      return { name, type: T.TENSOR, t: writeTensor('', a.value) };
    case 'graph':
      return { name, type: T.GRAPH, g: writeGraph(a.value) };
  }
}

function writeValueInfo(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  if (untypedValues.has(v)) return { name: v.name };
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[v.dtype],
        shape: {
          dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function writeGraph(g: Graph): onnxProto.onnx.IGraphProto {
  return {
    name: g.name,
    node: g.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k, a]) => writeAttribute(k, a)),
    })),
    initializer: [...g.initializers].map(([k, t]) => writeTensor(k, t)),
    input: g.inputs.map(writeValueInfo),
    output: g.outputs.map(writeValueInfo),
  };
}

/** ONNX IR version matching an opset (what onnx's checker expects). */
function irVersionFor(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/** Opset needed by ops that are newer than the canonical one. */
const OP_MIN_OPSET: Record<string, number> = { Gelu: 20 };

/** How a model is written. */
export interface EncodeOptions {
  /** producer_name of the model. */
  producer?: string;
  /** Write exactly this opset (for producing legacy files in tests); default max(graph opset, 17, what the ops need). */
  opset?: number;
}

/** Encodes the IR as ONNX protobuf bytes runnable by stock onnxruntime. */
export function encodeModel(
  g: Graph,
  { producer = 'quadranet', opset: forced }: EncodeOptions = {},
): Uint8Array {
  let opset = forced ?? Math.max(g.opset, 17);
  const domains = new Set<string>();
  for (const n of g.nodes) {
    if (forced === undefined) opset = Math.max(opset, OP_MIN_OPSET[n.opType] ?? 0);
    if (n.domain) domains.add(n.domain);
  }
  const model: onnxProto.onnx.IModelProto = {
    irVersion: irVersionFor(opset),
    producerName: producer,
    opsetImport: [
      { domain: '', version: opset },
      ...[...domains].map((d) => ({ domain: d, version: 1 })),
    ],
    metadataProps: Object.entries(g.metadata).map(([key, value]) => ({ key, value })),
    graph: writeGraph(g),
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/**
 * Sets an own enumerable property even for the key `__proto__`, which plain assignment would treat
 * as a prototype change (a hostile file could otherwise replace an attribute map's prototype).
 */
function defineOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Throws a GraphError-based message as an OnnxFormatError for a file (used by importers). */
export function inFile(file: string, e: unknown): Error {
  if (e instanceof GraphError) return new OnnxFormatError(`${file}: ${e.message}`);
  return e as Error;
}

export type { DType };
