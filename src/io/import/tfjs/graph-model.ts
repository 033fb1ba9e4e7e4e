/**
 * Importing a TensorFlow.js graph model (`"format": "graph-model"`: a frozen TF GraphDef in
 * `model.json` plus binary weight shards, what `tensorflowjs_converter` writes from a SavedModel
 * or TF Hub module, and the format of most published TF.js models) into the IR.
 *
 * As for layers models, the graph takes the input as TF.js does (NHWC) and returns the outputs in
 * TF layout; convolutions and pools run channels-first inside. Const nodes become initializers
 * named after them (wrapper scopes dropped), dequantized to float32. Only the nodes the outputs
 * depend on are converted; an op without a converter is refused by node name and op.
 */

import { basename } from 'node:path';
import { GraphBuilder } from '../../../ir/builder.js';
import type { Dim, Graph } from '../../../ir/graph.js';
import { emptyGraph, validateGraph } from '../../../ir/graph.js';
import { QuadranetFileError } from '../../errors.js';
import type { TfAttr, TfNode, TfValue } from './graph-context.js';
import { GraphContext, shortName } from './graph-context.js';
import { tfOpConverter } from './graph-ops/index.js';
import type { JsonObject } from './model-json.js';
import {
  isObject,
  namingFile,
  parseJsonObject,
  parseManifest,
  readModelJsonText,
} from './model-json.js';
import { symbolicShape } from './topology.js';
import { readWeights } from './weights.js';

export { supportedTfOps } from './graph-ops/index.js';

/** Options of `importTfjsGraph`. */
export interface TfjsGraphImportOptions {
  /**
   * The input's shape without the batch axis, for single-input models: fills the sizes the model
   * leaves open (e.g. `[64, 64, 3]` for a `[-1, -1, -1, 3]` input). Sizes the model fixes must
   * agree.
   */
  inputShape?: readonly number[];
  /**
   * Further TF tensors (`node` or `node:k`) that become extra graph outputs (in TF layout), e.g.
   * to read features or compare intermediates; named like the tensor with `:` replaced by `_`.
   */
  outputs?: readonly string[];
}

function fail(file: string, msg: string): never {
  throw new QuadranetFileError(file, `${file}: ${msg}`);
}

/** Whether `model.json` bytes are a TF.js graph model (the importer registry's content check). */
export function isGraphModelJson(bytes: Uint8Array): boolean {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return false;
  }
  if (!isObject(raw)) return false;
  if (raw.format === 'graph-model') return true;
  return isObject(raw.modelTopology) && Array.isArray(raw.modelTopology.node);
}

/** Reads a graph model's `model.json` and the weight shards next to it into an IR graph. */
export async function importTfjsGraph(
  modelJsonPath: string,
  options: TfjsGraphImportOptions = {},
): Promise<Graph> {
  return importTfjsGraphJson(await readModelJsonText(modelJsonPath), modelJsonPath, options);
}

/** Like `importTfjsGraph`, from the already read bytes (the importer registry's form). */
export function readTfjsGraph(file: string, bytes: Uint8Array): Promise<Graph> {
  return importTfjsGraphJson(new TextDecoder().decode(bytes), file);
}

/** Converts graph-model `model.json` text; shards are read relative to `file`'s directory. */
export async function importTfjsGraphJson(
  text: string,
  file: string,
  options: TfjsGraphImportOptions = {},
): Promise<Graph> {
  return namingFile(file, () => convert(text, file, options));
}

// ---------------------------------------------------------------- parsing

function decodeBase64(s: string): string {
  return Buffer.from(s, 'base64').toString('utf8');
}

/** A TF `AttrValue` in its proto3 JSON form (int64 as strings, bytes as base64). */
function parseAttr(v: unknown): TfAttr {
  if (!isObject(v)) return { kind: 'other' };
  if ('i' in v) return { kind: 'int', value: Number(v.i) };
  if ('f' in v) return { kind: 'float', value: Number(v.f) };
  if ('b' in v) return { kind: 'bool', value: v.b === true };
  if ('s' in v && typeof v.s === 'string') return { kind: 'string', value: decodeBase64(v.s) };
  if ('type' in v && typeof v.type === 'string') return { kind: 'type', value: v.type };
  if ('shape' in v && isObject(v.shape)) {
    const s = v.shape;
    if (s.unknownRank === true) return { kind: 'shape', value: undefined };
    const dims = Array.isArray(s.dim) ? s.dim : [];
    return {
      kind: 'shape',
      value: dims.map((d) => {
        const n = isObject(d) ? Number(d.size ?? 0) : NaN;
        return Number.isFinite(n) && n >= 0 ? n : null;
      }),
    };
  }
  if ('list' in v && isObject(v.list)) {
    const l = v.list;
    const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
    return {
      kind: 'list',
      ints: arr(l.i).map(Number),
      floats: arr(l.f).map(Number),
      strings: arr(l.s).map((s) => (typeof s === 'string' ? decodeBase64(s) : '')),
    };
  }
  return { kind: 'other' };
}

function parseNodes(topology: JsonObject, file: string): TfNode[] {
  const list = topology.node;
  if (!Array.isArray(list))
    fail(file, 'modelTopology has no node list; is it a TF.js graph model?');
  const seen = new Set<string>();
  return list.map((n, i): TfNode => {
    if (!isObject(n) || typeof n.name !== 'string' || typeof n.op !== 'string')
      fail(file, `modelTopology.node[${i}] has no name and op`);
    if (seen.has(n.name)) fail(file, `node '${n.name}' appears twice`);
    seen.add(n.name);
    const rawInputs = n.input ?? [];
    if (!Array.isArray(rawInputs) || !rawInputs.every((x) => typeof x === 'string'))
      fail(file, `node '${n.name}' (${n.op}): input must be a list of tensor names`);
    const attr: Record<string, TfAttr> = {};
    if (isObject(n.attr)) for (const [k, v] of Object.entries(n.attr)) attr[k] = parseAttr(v);
    return {
      name: n.name,
      op: n.op,
      // `^node` inputs only order execution; inference needs none of them.
      inputs: (rawInputs as string[]).filter((x) => !x.startsWith('^')),
      controlInputs: (rawInputs as string[])
        .filter((x) => x.startsWith('^'))
        .map((x) => x.slice(1)),
      attr,
    };
  });
}

/** `node:k` → [node, k]; `node` → [node, 0]. */
function splitRef(ref: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(ref);
  return m ? [m[1]!, Number(m[2])] : [ref, 0];
}

/** The signature (inputs/outputs by tensor name), where the converter wrote one. */
function signatureOf(raw: JsonObject): { inputs?: string[]; outputs?: string[] } {
  const sig = isObject(raw.signature)
    ? raw.signature
    : isObject(raw.userDefinedMetadata) && isObject(raw.userDefinedMetadata.signature)
      ? raw.userDefinedMetadata.signature
      : undefined;
  if (!sig) return {};
  const keys = (x: unknown): string[] | undefined =>
    isObject(x)
      ? Object.entries(x).map(([k, v]) => (isObject(v) && typeof v.name === 'string' ? v.name : k))
      : undefined;
  return { inputs: keys(sig.inputs), outputs: keys(sig.outputs) };
}

// ---------------------------------------------------------------- conversion

async function convert(text: string, file: string, options: TfjsGraphImportOptions) {
  const raw = parseJsonObject(text, file);
  const topology = raw.modelTopology;
  if (!isObject(topology)) fail(file, 'has no modelTopology object; is it a TensorFlow.js model?');
  const nodes = parseNodes(topology, file);
  const byName = new Map(nodes.map((n) => [n.name, n] as const));
  const manifest = parseManifest(raw.weightsManifest, file);

  // Outputs: the signature's, else every non-constant node no other node reads (as TF.js does).
  const sig = signatureOf(raw);
  const consumed = new Set(
    nodes.flatMap((n) => [...n.inputs.map((r) => splitRef(r)[0]), ...n.controlInputs]),
  );
  const outputRefs = sig.outputs?.length
    ? sig.outputs
    : nodes
        .filter((n) => !consumed.has(n.name) && !['Const', 'NoOp', 'Placeholder'].includes(n.op))
        .map((n) => n.name);
  if (outputRefs.length === 0) fail(file, 'the graph has no outputs');
  const extra = (options.outputs ?? []).filter((o) => !outputRefs.includes(o));
  const allOutputs = [...outputRefs, ...extra];
  for (const ref of allOutputs) {
    if (!byName.has(splitRef(ref)[0])) fail(file, `output '${ref}' is not a node of the graph`);
  }

  // The nodes the outputs depend on, in dependency order (GraphDef lists need not be sorted);
  // an explicit stack, since graphs may be deeper than the call stack.
  const order: TfNode[] = [];
  const state = new Map<string, 'open' | 'done'>();
  for (const ref of allOutputs) {
    const stack: { name: string; from: string; next: number }[] = [
      { name: splitRef(ref)[0], from: ref, next: 0 },
    ];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const n = byName.get(top.name);
      if (!n) fail(file, `node '${top.from}' reads '${top.name}', which is not in the graph`);
      if (top.next === 0) {
        if (state.get(n.name) === 'done') {
          stack.pop();
          continue;
        }
        if (state.get(n.name) === 'open')
          fail(file, `node '${n.name}' depends on itself (a cycle: control flow is not supported)`);
        state.set(n.name, 'open');
      }
      if (top.next < n.inputs.length) {
        stack.push({ name: splitRef(n.inputs[top.next++]!)[0], from: n.name, next: 0 });
      } else {
        state.set(n.name, 'done');
        order.push(n);
        stack.pop();
      }
    }
  }

  const unsupported = order.filter(
    (n) => n.op !== 'Const' && n.op !== 'Placeholder' && !tfOpConverter(n.op),
  );
  if (unsupported.length > 0) {
    const list = unsupported
      .slice(0, 8)
      .map((n) => `'${n.name}' (${n.op})`)
      .join(', ');
    const more = unsupported.length > 8 ? ` and ${unsupported.length - 8} more` : '';
    const ops = [...new Set(unsupported.map((n) => n.op))].join(', ');
    fail(
      file,
      `cannot import ${unsupported.length} node${unsupported.length > 1 ? 's' : ''}: ${list}${more}; no converter for the TensorFlow op${ops.includes(',') ? 's' : ''} ${ops}: convert the model to ONNX with tf2onnx and import the .onnx, or re-export it without ${ops.includes(',') ? 'these ops' : 'this op'} (docs/adapting-a-tfjs-model.md lists the supported ops)`,
    );
  }

  const weights = await readWeights(manifest, file);
  const g: Graph = {
    ...emptyGraph(basename(file, '.json')),
    metadata: { 'source.format': 'tfjs-graph', 'source.file': basename(file) },
  };
  for (const k of ['format', 'generatedBy', 'convertedBy'] as const) {
    if (typeof raw[k] === 'string') g.metadata[`source.${k}`] = raw[k];
  }
  const b = new GraphBuilder(g);
  const outName = (ref: string): string => {
    const [n, k] = splitRef(ref);
    return k === 0 ? n : `${n}_${k}`;
  };
  const outNames = allOutputs.map((ref) => b.reserve(outName(ref)));
  const cx: GraphContext = new GraphContext(b, file);
  const values = new Map<string, TfValue[]>();

  const placeholders = order.filter((n) => n.op === 'Placeholder');
  if (options.inputShape && placeholders.length !== 1)
    fail(file, `inputShape was given but the model has ${placeholders.length} inputs`);
  const inputOrder = sig.inputs?.map((r) => splitRef(r)[0]) ?? [];
  placeholders.sort((p, q) => rank(inputOrder, p.name) - rank(inputOrder, q.name));

  for (const n of placeholders) values.set(n.name, [placeholder(cx, n, options.inputShape)]);
  for (const n of order) {
    if (n.op === 'Placeholder') continue;
    if (n.op === 'Const') {
      const w = weights.get(n.name);
      if (!w) {
        cx.fail(
          n,
          `has no value in the weights manifest; the model.json and its shards do not match`,
        );
      }
      values.set(n.name, [
        {
          kind: 'const',
          tfName: n.name,
          dtype: w.spec.dtype,
          dims: [...w.spec.shape],
          data: w.data,
        },
      ]);
      continue;
    }
    const inputs = n.inputs.map((ref) => {
      const [src, k] = splitRef(ref);
      const v = values.get(src)?.[k];
      if (!v) cx.fail(n, `reads output ${k} of '${src}', which the importer does not compute`);
      return v;
    });
    values.set(n.name, tfOpConverter(n.op)!({ cx, node: n, inputs }));
  }

  allOutputs.forEach((ref, i) => {
    const [src, k] = splitRef(ref);
    const v = values.get(src)?.[k];
    const node = byName.get(src)!;
    if (!v) cx.fail(node, `output ${k} is not computed by the importer`);
    if (v.kind !== 'value') cx.fail(node, `the output '${ref}' is a constant`);
    g.nodes.push({
      name: b.fresh(`${outNames[i]}_output`),
      opType: 'Identity',
      domain: '',
      inputs: [cx.to(v, 'keras')],
      outputs: [outNames[i]!],
      attrs: {},
    });
    g.outputs.push({ name: outNames[i]!, dtype: 'float32', shape: [...v.shape] });
  });
  validateGraph(g);
  return g;
}

function rank(order: string[], name: string): number {
  const i = order.indexOf(name);
  return i < 0 ? order.length : i;
}

/** Declares a Placeholder as a graph input (float32, TF layout). */
function placeholder(
  cx: GraphContext,
  n: TfNode,
  inputShape: readonly number[] | undefined,
): TfValue {
  const dtype = n.attr.dtype;
  if (dtype?.kind !== 'type' || dtype.value !== 'DT_FLOAT') {
    cx.fail(
      n,
      `has dtype ${dtype?.kind === 'type' ? dtype.value : 'unknown'}; only float32 inputs are supported`,
    );
  }
  const s = n.attr.shape;
  let shape = s?.kind === 'shape' ? s.value : undefined;
  if (!shape) {
    if (!inputShape) cx.fail(n, `has no known rank; give the input shape`);
    shape = [null, ...inputShape];
  }
  if (inputShape) {
    const tail = shape.slice(1);
    const show = tail.map((d) => d ?? '?').join(', ');
    if (inputShape.length !== tail.length)
      cx.fail(
        n,
        `inputShape [${inputShape.join(', ')}] has ${inputShape.length} sizes but the input has [${show}]`,
      );
    inputShape.forEach((d, i) => {
      if (tail[i] !== null && tail[i] !== d)
        cx.fail(n, `inputShape [${inputShape.join(', ')}] does not match the input [${show}]`);
    });
    shape = [shape[0] ?? null, ...inputShape];
  }
  const dims: Dim[] = symbolicShape(shape, '');
  const name = cx.b.input(shortName(n.name), 'float32', dims);
  return { kind: 'value', name, layout: 'keras', shape: dims };
}
