/**
 * The TensorFlow.js LayersModel file (`model.json`): its types, and parsing with validation of
 * the parts the importer relies on (the Keras topology and the weights manifest). Every error is
 * one line naming the file.
 */

import { readFile } from 'node:fs/promises';
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

/**
 * Parses and validates `model.json` text. Refuses TF.js graph models (converted SavedModels),
 * which have no Keras topology, with a message saying so.
 */
export function parseModelJson(text: string, file: string): ModelJson {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(file, `is not valid JSON (${(e as Error).message}); is it a TensorFlow.js model.json?`);
  }
  if (!isObject(raw)) fail(file, 'is not a TensorFlow.js model.json (expected a JSON object)');
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

const WEIGHT_DTYPES = new Set(['float32', 'int32', 'bool']);
const QUANT_DTYPES = new Set(['uint8', 'uint16', 'float16']);

/** Parses and checks a `weightsManifest` (layers and graph models share its format). */
export function parseManifest(raw: unknown, file: string): WeightsGroup[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) fail(file, 'weightsManifest must be a list of weight groups');
  return raw.map((g, gi): WeightsGroup => {
    if (!isObject(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      fail(file, `weightsManifest[${gi}] must have 'paths' and 'weights' lists`);
    }
    const paths = g.paths.map((p, pi) => {
      if (typeof p !== 'string' || p === '')
        fail(file, `weightsManifest[${gi}].paths[${pi}] must be a file name`);
      return p;
    });
    const weights = g.weights.map((w, wi): WeightSpec => {
      const where = `weightsManifest[${gi}].weights[${wi}]`;
      if (!isObject(w) || typeof w.name !== 'string') fail(file, `${where} has no name`);
      const shape = w.shape;
      if (
        !Array.isArray(shape) ||
        !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)
      ) {
        fail(file, `weight '${w.name}' has no valid shape (a list of sizes)`);
      }
      const dtype = w.dtype ?? 'float32';
      if (typeof dtype !== 'string' || !WEIGHT_DTYPES.has(dtype)) {
        fail(
          file,
          `weight '${w.name}' has dtype ${String(dtype)}; supported: float32, int32, bool`,
        );
      }
      const spec: WeightSpec = {
        name: w.name,
        shape: shape as number[],
        dtype: dtype as WeightSpec['dtype'],
      };
      if (w.quantization !== undefined) {
        const q = w.quantization;
        if (!isObject(q) || typeof q.dtype !== 'string' || !QUANT_DTYPES.has(q.dtype)) {
          fail(
            file,
            `weight '${w.name}' has an unsupported quantization; supported: uint8, uint16, float16`,
          );
        }
        const qd = q.dtype as 'uint8' | 'uint16' | 'float16';
        if (qd === 'float16') {
          if (spec.dtype !== 'float32')
            fail(file, `weight '${w.name}': float16 quantization needs dtype float32`);
          spec.quantization = { dtype: qd };
        } else {
          if (typeof q.scale !== 'number' || typeof q.min !== 'number') {
            fail(file, `weight '${w.name}': ${qd} quantization needs numeric 'scale' and 'min'`);
          }
          if (spec.dtype === 'bool') fail(file, `weight '${w.name}': bool cannot be quantized`);
          spec.quantization = { dtype: qd, scale: q.scale, min: q.min };
        }
      }
      return spec;
    });
    return { paths, weights };
  });
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
