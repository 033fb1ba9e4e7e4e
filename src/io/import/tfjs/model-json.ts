/**
 * The TensorFlow.js LayersModel file (`model.json`): its types, and parsing with validation of
 * the parts the importer relies on (the Keras topology and the weights manifest). Every error is
 * one line naming the file.
 */

import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { QuadranetFileError, fileErrorFrom } from '../../errors.js';

/** A JSON object as read from the file. */
export type JsonObject = Record<string, unknown>;

/** One weight of a manifest group, in the order its bytes follow each other in the shards. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  /** Quantized storage: `uint8`/`uint16` (value = q·scale + min) or `float16`. */
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

/** One group of the weights manifest: shard files (concatenated in order) holding `weights`. */
export interface WeightsGroup {
  paths: string[];
  weights: WeightSpec[];
}

/** A serialized Keras layer (or model) as it appears in the topology. */
export interface KerasLayerJson {
  className: string;
  name: string;
  config: JsonObject;
  /** Keras inbound nodes: one entry per call, each a list of [layer, node, tensor] references. */
  inboundNodes: InboundRef[][];
}

/** A reference to one output tensor of one call of a layer. */
export interface InboundRef {
  layer: string;
  node: number;
  tensor: number;
}

/** The parsed file. */
export interface ModelJson {
  /** The model: `{className: 'Functional' | 'Model' | 'Sequential', config}`. */
  model: { className: string; config: unknown };
  weightsManifest: WeightsGroup[];
  /** `format`, `generatedBy`, `convertedBy` and the Keras version, when present. */
  info: Record<string, string>;
}

function fail(file: string, what: string): never {
  throw new QuadranetFileError(file, `${file}: ${what}`);
}

/** Whether `v` is a plain JSON object. */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `model.json` text as a JSON object (layers and graph models alike), or a one-line error. */
export function parseJsonObject(text: string, file: string): JsonObject {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(file, `is not valid JSON (${(e as Error).message}); is it a TensorFlow.js model.json?`);
  }
  if (!isObject(raw)) fail(file, 'is not a TensorFlow.js model.json (expected a JSON object)');
  return raw;
}

/**
 * Parses and validates `model.json` text. Refuses TF.js graph models (converted SavedModels),
 * which have no Keras topology, with a message saying so.
 */
export function parseModelJson(text: string, file: string): ModelJson {
  const raw = parseJsonObject(text, file);
  const format = typeof raw.format === 'string' ? raw.format : undefined;
  if (format === 'graph-model') {
    fail(
      file,
      "is a TensorFlow.js graph model, not a layers model; read it with importTfjsGraph (quadranet commands pick the importer by the file's format)",
    );
  }
  const topology = raw.modelTopology;
  if (!isObject(topology)) fail(file, 'has no modelTopology object; is it a TensorFlow.js model?');
  // Keras files nest the model under model_config; TF.js' own `save` writes it directly.
  const model = isObject(topology.model_config) ? topology.model_config : topology;
  if (typeof model.class_name !== 'string' || model.config === undefined) {
    if (isObject(topology.node) || Array.isArray(topology.node)) {
      fail(file, 'holds a TensorFlow graph (GraphDef), not a Keras layers model');
    }
    fail(file, 'modelTopology has no Keras model (class_name and config)');
  }
  const info: Record<string, string> = {};
  for (const k of ['format', 'generatedBy', 'convertedBy'] as const) {
    if (typeof raw[k] === 'string') info[k] = raw[k];
  }
  if (typeof topology.keras_version === 'string') info.kerasVersion = topology.keras_version;
  return {
    model: { className: model.class_name, config: model.config },
    weightsManifest: parseManifest(raw.weightsManifest, file),
    info,
  };
}

const WEIGHT_DTYPES = ['float32', 'int32', 'bool'] as const;
const QUANT_DTYPES = ['uint8', 'uint16', 'float16'] as const;
const SIZE = 'is not a size (a whole number ≥ 0)';

const WeightSchema = z
  .object({
    name: z.string({ error: (i) => (i.input === undefined ? 'is missing' : 'is not a string') }),
    shape: z.array(z.number({ error: SIZE }).int({ error: SIZE }).min(0, { error: SIZE }), {
      error: 'is not a list of sizes',
    }),
    dtype: z
      .enum(WEIGHT_DTYPES, {
        error: (i) =>
          `${JSON.stringify(i.input)} is not supported (supported: ${WEIGHT_DTYPES.join(', ')})`,
      })
      .default('float32'),
    quantization: z
      .object(
        {
          dtype: z.enum(QUANT_DTYPES, {
            error: (i) =>
              `${JSON.stringify(i.input) ?? 'missing'} is not supported (supported: ${QUANT_DTYPES.join(', ')})`,
          }),
          scale: z.number().optional(),
          min: z.number().optional(),
        },
        { error: 'is not an object' },
      )
      .optional(),
  })
  .superRefine((w, ctx) => {
    const q = w.quantization;
    if (!q) return;
    const at = { code: 'custom' as const, path: ['quantization'] };
    if (q.dtype === 'float16') {
      if (w.dtype !== 'float32') ctx.addIssue({ ...at, message: 'float16 needs dtype float32' });
    } else {
      if (q.scale === undefined || q.min === undefined)
        ctx.addIssue({ ...at, message: `${q.dtype} needs numeric 'scale' and 'min'` });
      if (w.dtype === 'bool') ctx.addIssue({ ...at, message: 'bool cannot be quantized' });
    }
  })
  .transform((w): WeightSpec => ({
    name: w.name,
    shape: w.shape,
    dtype: w.dtype,
    ...(w.quantization
      ? {
          quantization:
            w.quantization.dtype === 'float16'
              ? { dtype: 'float16' }
              : {
                  dtype: w.quantization.dtype,
                  scale: w.quantization.scale!,
                  min: w.quantization.min!,
                },
        }
      : {}),
  }));

/** A weights manifest: groups of shard files (concatenated in order) and the weights they hold. */
const ManifestSchema = z.array(
  z.object(
    {
      paths: z.array(z.string().min(1, { error: 'must be a file name' }), {
        error: "must have 'paths' and 'weights' lists",
      }),
      weights: z.array(WeightSchema, { error: "must have 'paths' and 'weights' lists" }),
    },
    { error: "must have 'paths' and 'weights' lists" },
  ),
  { error: 'must be a list of weight groups' },
);

/** Parses and checks a `weightsManifest` (layers and graph models share its format). */
export function parseManifest(raw: unknown, file: string): WeightsGroup[] {
  if (raw === undefined) return [];
  const r = ManifestSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  // weightsManifest[0].weights[3] ('dense/kernel').quantization: the field, then the weight's name.
  let where = 'weightsManifest';
  let node: unknown = raw;
  for (const k of issue.path) {
    node = (node as Record<PropertyKey, unknown> | undefined)?.[k];
    where += typeof k === 'number' ? `[${k}]` : `.${String(k)}`;
    const name = (node as { name?: unknown } | undefined)?.name;
    if (typeof k === 'number' && where.endsWith(`weights[${k}]`) && typeof name === 'string')
      where += ` ('${name}')`;
  }
  return fail(file, `${where} ${issue.message}`);
}

/** The Keras layers of a model config (`{layers: [...]}`, or a bare list for old Sequentials). */
export function modelLayers(config: unknown, file: string, modelName: string): KerasLayerJson[] {
  const list = Array.isArray(config)
    ? config
    : isObject(config) && Array.isArray(config.layers)
      ? config.layers
      : fail(file, `model '${modelName}' has no list of layers`);
  return list.map((l, i) => parseLayer(l, i, file, modelName));
}

function parseLayer(l: unknown, i: number, file: string, modelName: string): KerasLayerJson {
  if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) {
    fail(file, `model '${modelName}': layer ${i} has no class_name and config`);
  }
  const name =
    typeof l.name === 'string'
      ? l.name
      : typeof l.config.name === 'string'
        ? l.config.name
        : fail(file, `model '${modelName}': layer ${i} (${l.class_name}) has no name`);
  const inbound = l.inbound_nodes ?? [];
  if (!Array.isArray(inbound))
    fail(file, `layer '${name}' (${l.class_name}): inbound_nodes must be a list`);
  const inboundNodes = inbound.map((node) => {
    if (!Array.isArray(node)) {
      fail(
        file,
        `layer '${name}' (${l.class_name}): inbound_nodes are not in the Keras 2 format ([layer, node, tensor] lists); re-save the model with Keras 2 / TF.js`,
      );
    }
    return node.map((ref) => parseRef(ref, file, `layer '${name}'`));
  });
  return { className: l.class_name, name, config: l.config, inboundNodes };
}

/** Parses a `[layer, node, tensor, kwargs?]` reference (inbound nodes, model inputs/outputs). */
export function parseRef(ref: unknown, file: string, where: string): InboundRef {
  if (
    !Array.isArray(ref) ||
    typeof ref[0] !== 'string' ||
    typeof ref[1] !== 'number' ||
    typeof ref[2] !== 'number'
  ) {
    fail(file, `${where}: a tensor reference must be [layer name, node index, tensor index]`);
  }
  // `training` only selects train/inference behaviour, which the importer fixes to inference.
  const kwargs = isObject(ref[3]) ? Object.keys(ref[3]).filter((k) => k !== 'training') : [];
  if (kwargs.length > 0) {
    fail(file, `${where}: calls with keyword arguments (${kwargs.join(', ')}) are not supported`);
  }
  return { layer: ref[0], node: ref[1], tensor: ref[2] };
}

/** The text of a `model.json`, with a read failure named after the file. */
export async function readModelJsonText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw fileErrorFrom(e, path, 'read');
  }
}

/**
 * Runs a conversion of `file`; anything it throws besides a file error (e.g. a graph check) gets
 * the one-line form naming the file.
 */
export async function namingFile<T>(file: string, convert: () => Promise<T>): Promise<T> {
  try {
    return await convert();
  } catch (e) {
    if (e instanceof QuadranetFileError) throw e;
    throw new QuadranetFileError(file, `${file}: ${(e as Error).message}`, { cause: e });
  }
}
