/**
 * Model checkpoints as safetensors with a declared architecture: weights trained elsewhere (e.g.
 * PyTorch, `python/quadranet_torch.py` ResNetStyle / ConvNeXtStyle) for one of quadranet's
 * built-in definitions (`src/models/zoo.ts`), brought in as a Graph.
 *
 * The declaration is read from the header's `__metadata__` when it has `quadranet.arch`
 * (`quadranet.input_shape` = `CxHxW`, `quadranet.classes`, `quadranet.width`, `quadranet.depth`,
 * all strings); otherwise from a `config.json` next to the file
 * (`{"architecture": "resnet", "input_shape": [1, 28, 28], "classes": 10, "width": 1}`); the
 * header wins when both exist. The tensor keys are PyTorch state_dict names, equal to the
 * initializer names of the built-in definition; every tensor has the initializer's shape except a
 * channels-last dense weight (a MatMul's, ConvNeXt's `block{i}.pwconv1/2.weight`), which PyTorch's
 * nn.Linear stores [out, in] and the MatMul takes [in, out], so it is transposed on the way in.
 * `num_batches_tracked` entries are ignored. F16, BF16 and F64 weights are converted to float32.
 *
 * Everything is checked before any weight is loaded: the declaration, then every expected key
 * present with its exact shape and a float dtype, and no unexpected key. Each failure is a
 * one-line QuadranetFileError naming the file, the key and what to do.
 * Layout table and PyTorch snippet: docs/safetensors-checkpoints.md.
 */

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Graph } from '../../ir/graph.js';
import { convnext, resnet, type ImageShape } from '../../models/zoo.js';
import { QuadranetFileError, errnoCode, fileErrorFrom } from '../errors.js';
import { decodeSafetensors, type SafeTensor } from '../formats/safetensors.js';
import { halfToFloat } from './tfjs/weights.js';

/** The architectures a checkpoint can declare. */
export const CHECKPOINT_ARCHITECTURES = ['resnet', 'convnext'] as const;
/** Name of an architecture a checkpoint can declare. */
export type CheckpointArch = (typeof CHECKPOINT_ARCHITECTURES)[number];

/** The architecture a checkpoint declares, with the options of its built-in definition. */
export interface CheckpointDeclaration {
  arch: CheckpointArch;
  /** Input image shape [C, H, W]. */
  inputShape: ImageShape;
  /** Classes of the head (default 10). */
  classes: number;
  /** Width multiplier of the channel counts (default 1). */
  width: number;
  /** ConvNeXt blocks (convnext only; default 2). */
  depth?: number;
  /** Where the declaration was read: `__metadata__` or the config.json path. */
  source: string;
}

/** One tensor of a checkpoint and the initializer it becomes. */
export interface CheckpointEntry {
  /** The state_dict key (equal to the initializer name). */
  key: string;
  /** Shape in the checkpoint (PyTorch layout). */
  shape: number[];
  /** Whether the tensor is transposed ([out, in] → [in, out]) into the initializer. */
  transposed: boolean;
}

/** Name of the sibling file read when the header declares no architecture. */
export const CHECKPOINT_CONFIG_FILE = 'config.json';

const META = 'quadranet.';
const META_KEYS = ['arch', 'input_shape', 'classes', 'width', 'depth'] as const;
/** Bounds of a declaration, so hostile metadata cannot make a huge graph before the checks. */
const LIMITS = { classes: 100_000, width: 16, depth: 16, channels: 64, side: 4096 };

type Raw = Partial<Record<(typeof META_KEYS)[number], unknown>>;

/**
 * Reads the architecture a checkpoint declares (header metadata first, then a config.json next to
 * the file) and checks every value; throws a one-line QuadranetFileError otherwise.
 */
export async function readDeclaration(
  file: string,
  metadata: Record<string, string>,
): Promise<CheckpointDeclaration> {
  const fail = (what: string): never => {
    throw new QuadranetFileError(file, `${file}: ${what}`);
  };
  const ours = Object.keys(metadata).filter((k) => k.startsWith(META));
  if (ours.length > 0) {
    const unknown = ours.find(
      (k) => !(META_KEYS as readonly string[]).includes(k.slice(META.length)),
    );
    if (unknown !== undefined) {
      fail(
        `__metadata__ has an unknown key ${quote(unknown)}; the declaration keys are ${META_KEYS.map((k) => META + k).join(', ')}`,
      );
    }
    if (!Object.hasOwn(metadata, `${META}arch`)) {
      fail(
        `__metadata__ has ${quote(ours[0]!)} but no "quadranet.arch"; add the architecture name`,
      );
    }
    const raw: Raw = {};
    for (const k of META_KEYS) if (Object.hasOwn(metadata, META + k)) raw[k] = metadata[META + k];
    return checkDeclaration(file, raw, '__metadata__', (k) => `__metadata__ ${quote(META + k)}`);
  }

  const config = join(dirname(file), CHECKPOINT_CONFIG_FILE);
  let text: string | undefined;
  try {
    text = await readFile(config, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fileErrorFrom(err, config, 'read');
  }
  const howTo =
    'save it with quadranet_torch.save_checkpoint, or add __metadata__ "quadranet.arch" or a config.json ' +
    '{"architecture": "resnet", "input_shape": [C, H, W], "classes": N} next to it (docs/safetensors-checkpoints.md)';
  if (text === undefined) {
    if (metadata['format'] === 'quadranet-adapter') {
      fail('is a quadranet adapter, not a model; load it onto its base model (loadAdapter)');
    }
    fail(`declares no architecture (no "quadranet.arch" in __metadata__, no ${config}); ${howTo}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text!);
  } catch (err) {
    fail(`${config} is not valid JSON (${(err as Error).message}); fix or remove it`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail(`${config} is not a JSON object; fix or remove it`);
  }
  const obj = json as Record<string, unknown>;
  if (!Object.hasOwn(obj, 'architecture')) {
    fail(
      `declares no architecture (no "quadranet.arch" in __metadata__, no "architecture" in ${config}); ${howTo}`,
    );
  }
  const raw: Raw = {
    arch: obj['architecture'],
    input_shape: obj['input_shape'],
    classes: obj['classes'],
    width: obj['width'],
    depth: obj['depth'],
  };
  for (const k of META_KEYS)
    if (!Object.hasOwn(obj, k === 'arch' ? 'architecture' : k)) delete raw[k];
  return checkDeclaration(
    file,
    raw,
    config,
    (k) => `${config} ${quote(k === 'arch' ? 'architecture' : k)}`,
  );
}

function checkDeclaration(
  file: string,
  raw: Raw,
  source: string,
  where: (key: (typeof META_KEYS)[number]) => string,
): CheckpointDeclaration {
  const bad = (key: (typeof META_KEYS)[number], what: string): never => {
    throw new QuadranetFileError(
      file,
      `${file}: ${where(key)} is ${clip(JSON.stringify(raw[key]) ?? String(raw[key]))}, ${what}; fix the declaration`,
    );
  };
  const arch = raw.arch;
  if (typeof arch !== 'string' || !(CHECKPOINT_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new QuadranetFileError(
      file,
      `${file}: unknown architecture ${clip(JSON.stringify(arch) ?? String(arch))} (${where('arch')}); declare one of: ${CHECKPOINT_ARCHITECTURES.join(', ')}`,
    );
  }
  // Metadata values are strings; config.json values are JSON numbers (or, leniently, strings).
  const int = (key: (typeof META_KEYS)[number], max: number, fallback: number): number => {
    const v = raw[key];
    if (v === undefined) {
      return fallback;
    }
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > max)
      bad(key, `not a whole number from 1 to ${max}`);
    return n as number;
  };
  let inputShape: unknown = raw.input_shape;
  if (inputShape === undefined) {
    throw new QuadranetFileError(
      file,
      `${file}: ${where('input_shape')} is missing; declare the input images' C, H, W`,
    );
  }
  if (typeof inputShape === 'string') {
    inputShape = /^\d+x\d+x\d+$/.test(inputShape) ? inputShape.split('x').map(Number) : undefined;
  }
  const minSide = arch === 'convnext' ? 2 : 1; // the 2×2 stride-2 stem needs 2 pixels
  if (
    !Array.isArray(inputShape) ||
    inputShape.length !== 3 ||
    !inputShape.every((d) => Number.isSafeInteger(d) && d >= 1) ||
    inputShape[0] > LIMITS.channels ||
    inputShape.slice(1).some((d: number) => d < minSide || d > LIMITS.side)
  ) {
    bad(
      'input_shape',
      `not ${source === '__metadata__' ? '"CxHxW"' : '[C, H, W]'} with C from 1 to ${LIMITS.channels}, H and W from ${minSide} to ${LIMITS.side}`,
    );
  }
  const classes = int('classes', LIMITS.classes, 10);
  let width = 1;
  if (raw.width !== undefined) {
    const v = raw.width;
    const n = typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > LIMITS.width)
      bad('width', `not a number above 0 and at most ${LIMITS.width}`);
    width = n as number;
    // The narrowest layer has round(16·width) channels in resnet, round(32·width) in convnext.
    if (Math.round((arch === 'convnext' ? 32 : 16) * width) < 1)
      bad('width', 'so small that a layer has no channels');
  }
  const decl: CheckpointDeclaration = {
    arch: arch as CheckpointArch,
    inputShape: inputShape as ImageShape,
    classes,
    width,
    source,
  };
  if (arch === 'convnext') decl.depth = int('depth', LIMITS.depth, 2);
  else if (raw.depth !== undefined) bad('depth', `but ${arch} has no depth; remove it`);
  return decl;
}

/** A declaration in words, for messages: `resnet (input 3x32x32, 10 classes, width 1)`. */
export function describeDeclaration(d: CheckpointDeclaration): string {
  const depth = d.depth === undefined ? '' : `, depth ${d.depth}`;
  return `${d.arch} (input ${d.inputShape.join('x')}, ${d.classes} classes, width ${d.width}${depth})`;
}

/**
 * The built-in graph of a declaration (initial weights seeded 0) and the checkpoint tensors it
 * expects: one per initializer, named alike, MatMul weights transposed ([out, in] in PyTorch).
 */
export function checkpointLayout(d: CheckpointDeclaration): {
  graph: Graph;
  entries: CheckpointEntry[];
} {
  const opts = { inputShape: d.inputShape, classes: d.classes, width: d.width, seed: 0 };
  const graph = d.arch === 'convnext' ? convnext({ ...opts, depth: d.depth }) : resnet(opts);
  const matmulWeights = new Set(
    graph.nodes.filter((n) => n.opType === 'MatMul').map((n) => n.inputs[1]!),
  );
  const entries = [...graph.initializers].map(([key, t]): CheckpointEntry => {
    const transposed = matmulWeights.has(key) && t.dims.length === 2;
    return { key, shape: transposed ? [t.dims[1]!, t.dims[0]!] : [...t.dims], transposed };
  });
  return { graph, entries };
}

/** Whether a key is BatchNorm's step counter, which inference does not use. */
function isBatchCounter(key: string): boolean {
  return key === 'num_batches_tracked' || key.endsWith('.num_batches_tracked');
}

/**
 * Reads a safetensors checkpoint with a declared built-in architecture into a Graph (the
 * importer registered as `safetensors`). Throws a one-line QuadranetFileError naming the file and
 * key on anything that does not fit, before any weight is loaded.
 */
export async function readArchCheckpoint(file: string, bytes: Uint8Array): Promise<Graph> {
  const { tensors, metadata } = decodeSafetensors(bytes, { file });
  const decl = await readDeclaration(file, metadata);
  const { graph, entries } = checkpointLayout(decl);
  const what = describeDeclaration(decl);
  const fail = (msg: string): never => {
    throw new QuadranetFileError(file, `${file}: ${msg}`);
  };
  const expected = new Set(entries.map((e) => e.key));
  const unexpected = Object.keys(tensors).filter((k) => !expected.has(k) && !isBatchCounter(k));
  const missing = entries.filter((e) => !Object.hasOwn(tensors, e.key));
  if (missing.length > 0) {
    const instead =
      unexpected.length > 0 ? `; the file has unexpected ${quote(unexpected[0]!)}` : '';
    fail(
      `tensor ${quote(missing[0]!.key)} is missing (${missing.length} of the ${entries.length} tensors of ${what} are missing${instead}); ` +
        `save the full state_dict of the matching quadranet_torch model, or fix the declaration`,
    );
  }
  if (unexpected.length > 0) {
    fail(
      `unexpected tensor ${quote(unexpected[0]!)} (${unexpected.length} not in ${what}); ` +
        `remove it, or fix the declaration (architecture, depth)`,
    );
  }
  for (const e of entries) {
    const t = tensors[e.key]!;
    if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) {
      fail(
        `tensor ${quote(e.key)} is ${t.dtype}; weights must be F32 (or F16, BF16, F64); save it as float32`,
      );
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      fail(
        `tensor ${quote(e.key)} has shape [${t.shape.join(',')}] but ${what} expects [${e.shape.join(',')}]; ` +
          `fix the declaration (width, classes, input_shape) or the checkpoint`,
      );
    }
  }
  for (const e of entries) {
    const init = graph.initializers.get(e.key)!;
    let data = toFloat32(tensors[e.key]!);
    if (e.transposed) data = transpose2d(data, e.shape[0]!, e.shape[1]!);
    graph.initializers.set(e.key, { dtype: 'float32', dims: [...init.dims], data });
  }
  return graph;
}

/** A float tensor's values as float32 (F32 as is; F64 rounded; F16 and BF16 widened exactly). */
function toFloat32(t: SafeTensor): Float32Array {
  if (t.dtype === 'F32') return t.data as Float32Array;
  if (t.dtype === 'F64') return Float32Array.from(t.data as Float64Array);
  const bits = t.data as Uint16Array;
  const out = new Float32Array(bits.length);
  if (t.dtype === 'F16') {
    for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i]!);
  } else {
    // bfloat16 is the top half of a float32.
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
  }
  return out;
}

/** Row-major [rows, cols] → [cols, rows]. */
function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

function quote(s: string): string {
  return clip(JSON.stringify(s));
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
