/**
 * Walking a Keras topology: Sequential and functional (`Model`/`Functional`) models, nested
 * models used as layers, and shared layers (one layer called several times). Layer calls are
 * converted once their inputs exist, so the order of the layer list does not matter.
 */

import type { Dim } from '../../../ir/graph.js';
import { QuadranetFileError } from '../../errors.js';
import { ACTIVATIONS, activationName } from './activations.js';
import type { ConversionContext, KValue } from './context.js';
import { isModelClass, layerConverter } from './layers/index.js';
import type { InboundRef, KerasLayerJson } from './model-json.js';
import { isObject, modelLayers, parseRef } from './model-json.js';

/** Declares a graph input for an InputLayer-like spec and returns its Keras tensor. */
export type InputFactory = (name: string, batchShape: (number | null)[], dtype: string) => KValue;

/** The model's name from its config, or `fallback`. */
export function modelName(config: unknown, fallback: string): string {
  return isObject(config) && typeof config.name === 'string' ? config.name : fallback;
}

function fail(file: string, msg: string): never {
  throw new QuadranetFileError(file, `${file}: ${msg}`);
}

/** The batch input shape declared by an InputLayer or the first layer of a Sequential. */
export function batchShape(layer: KerasLayerJson, file: string): (number | null)[] | undefined {
  const raw = layer.config.batch_input_shape ?? layer.config.batch_shape;
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || !raw.every((d) => d === null || (typeof d === 'number' && d >= 0))) {
    fail(
      file,
      `layer '${layer.name}' (${layer.className}): batch_input_shape must be a list of sizes`,
    );
  }
  return raw as (number | null)[];
}

/**
 * Every layer (nested models included) that cannot be converted, as `'name' (Class: why)`.
 * Checked before converting anything, so one error lists them all.
 */
export function unsupportedLayers(config: unknown, file: string): string[] {
  const out: string[] = [];
  const visit = (cfg: unknown, name: string): void => {
    for (const l of modelLayers(cfg, file, name)) {
      if (l.className === 'InputLayer') continue;
      if (isModelClass(l.className, l.config)) {
        visit(l.config, l.name);
        continue;
      }
      if (l.className === 'Lambda') {
        out.push(`'${l.name}' (Lambda: Python code, not stored in the file)`);
      } else if (!layerConverter(l.className)) {
        out.push(`'${l.name}' (${l.className}: no converter for this layer class)`);
      } else if ('activation' in l.config) {
        const act = activationName(l.config.activation);
        if (!act || !(ACTIVATIONS as readonly string[]).includes(act)) {
          out.push(
            `'${l.name}' (${l.className}: activation '${act ?? JSON.stringify(l.config.activation)}')`,
          );
        }
      }
    }
  };
  visit(config, modelName(config, 'model'));
  return out;
}

/** Converts one call of a layer, recursing into nested models. */
function convertCall(
  cx: ConversionContext,
  layer: KerasLayerJson,
  inputs: KValue[],
  newInput: InputFactory,
): KValue[] {
  let outs: KValue[];
  if (isModelClass(layer.className, layer.config)) {
    outs = convertModel(cx, layer.className, layer.config, layer.name, inputs, newInput);
  } else {
    const conv = layerConverter(layer.className);
    if (!conv) cx.fail(layer, `no converter for this layer class`);
    outs = conv({ cx, layer, inputs });
  }
  if (!cx.layerOutputs.has(layer.name)) cx.layerOutputs.set(layer.name, outs);
  return outs;
}

/**
 * Converts a model. `inputs` are the tensors it is called on when nested; at the top level they
 * are undefined and its input layers become graph inputs through `newInput`.
 */
export function convertModel(
  cx: ConversionContext,
  className: string,
  config: unknown,
  name: string,
  inputs: KValue[] | undefined,
  newInput: InputFactory,
): KValue[] {
  const layers = modelLayers(config, cx.file, name);
  if (layers.length === 0) fail(cx.file, `model '${name}' has no layers`);
  if (className === 'Sequential') {
    let x: KValue;
    let rest = layers;
    if (inputs) {
      if (inputs.length !== 1)
        fail(cx.file, `Sequential model '${name}' is called on ${inputs.length} tensors`);
      x = inputs[0]!;
      if (layers[0]!.className === 'InputLayer') rest = layers.slice(1);
    } else {
      const first = layers[0]!;
      const shape = batchShape(first, cx.file);
      if (!shape) {
        fail(
          cx.file,
          `Sequential model '${name}' does not declare its input shape (no InputLayer or batch_input_shape on its first layer)`,
        );
      }
      const dtype = typeof first.config.dtype === 'string' ? first.config.dtype : 'float32';
      if (first.className === 'InputLayer') {
        x = newInput(first.name, shape, dtype);
        rest = layers.slice(1);
      } else {
        x = newInput(`${first.name}_input`, shape, dtype);
      }
    }
    for (const layer of rest) {
      const outs = convertCall(cx, layer, [x], newInput);
      if (outs.length !== 1) cx.fail(layer, `a Sequential layer must have one output`);
      x = outs[0]!;
    }
    return [x];
  }
  if (!isObject(config)) fail(cx.file, `model '${name}' has no config`);
  const refs = (key: string): InboundRef[] => {
    const raw = config[key];
    if (!Array.isArray(raw)) fail(cx.file, `model '${name}' has no ${key} list`);
    // A single reference may be written without the enclosing list.
    const list = raw.length > 0 && typeof raw[0] === 'string' ? [raw] : raw;
    return list.map((r) => parseRef(r, cx.file, `model '${name}' ${key}`));
  };
  const inputRefs = refs('input_layers');
  const outputRefs = refs('output_layers');
  const byName = new Map(layers.map((l) => [l.name, l] as const));
  const values = new Map<string, KValue>();
  const key = (r: InboundRef): string => `${r.layer}\u0000${r.node}\u0000${r.tensor}`;

  if (inputs && inputs.length !== inputRefs.length) {
    fail(
      cx.file,
      `model '${name}' has ${inputRefs.length} inputs but is called on ${inputs.length} tensors`,
    );
  }
  inputRefs.forEach((r, i) => {
    const layer = byName.get(r.layer);
    if (!layer || layer.className !== 'InputLayer')
      fail(cx.file, `model '${name}': input '${r.layer}' is not an InputLayer of the model`);
    if (inputs) {
      values.set(key(r), inputs[i]!);
      return;
    }
    const shape = batchShape(layer, cx.file);
    if (!shape) fail(cx.file, `InputLayer '${layer.name}' has no batch_input_shape`);
    const dtype = typeof layer.config.dtype === 'string' ? layer.config.dtype : 'float32';
    values.set(key(r), newInput(layer.name, shape, dtype));
  });

  interface Pending {
    layer: KerasLayerJson;
    node: number;
    refs: InboundRef[];
  }
  let pending: Pending[] = [];
  for (const layer of layers) {
    if (layer.className === 'InputLayer') continue;
    layer.inboundNodes.forEach((refs, node) => pending.push({ layer, node, refs }));
  }
  while (pending.length > 0) {
    const next: Pending[] = [];
    for (const p of pending) {
      if (!p.refs.every((r) => values.has(key(r)))) {
        next.push(p);
        continue;
      }
      const outs = convertCall(
        cx,
        p.layer,
        p.refs.map((r) => values.get(key(r))!),
        newInput,
      );
      // A nested model's own first node is its internal input node, so Keras and TF.js number
      // its calls from 1.
      const node = isModelClass(p.layer.className, p.layer.config) ? p.node + 1 : p.node;
      outs.forEach((v, t) => values.set(key({ layer: p.layer.name, node, tensor: t }), v));
    }
    if (next.length === pending.length) {
      const p = next[0]!;
      const missing = p.refs.find((r) => !values.has(key(r)))!;
      const what = byName.has(missing.layer)
        ? `output ${missing.tensor} of call ${missing.node} of layer '${missing.layer}', which is never computed (a cycle or a missing call)`
        : `layer '${missing.layer}', which is not in the model`;
      fail(cx.file, `layer '${p.layer.name}' (${p.layer.className}) reads ${what}`);
    }
    pending = next;
  }
  return outputRefs.map((r) => {
    const v = values.get(key(r));
    if (!v) {
      fail(
        cx.file,
        `model '${name}': output '${r.layer}' (call ${r.node}, tensor ${r.tensor}) is never computed`,
      );
    }
    return v;
  });
}

/** Symbolic names for the unknown sizes of a graph input. */
export function symbolicShape(shape: (number | null)[], prefix: string): Dim[] {
  const names =
    shape.length === 4
      ? ['batch', 'height', 'width', 'channels']
      : shape.length === 3
        ? ['batch', 'steps', 'channels']
        : shape.map((_, i) => (i === 0 ? 'batch' : `dim${i}`));
  return shape.map((d, i) =>
    d !== null ? d : i === 0 ? 'batch' : `${prefix}${names[i] ?? `dim${i}`}`,
  );
}
