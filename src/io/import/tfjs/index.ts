/**
 * Importing a TensorFlow.js LayersModel (`model.json` + binary weight shards) into the IR.
 *
 * The graph takes the input as the user feeds it to TF.js (channels-last, e.g. NHWC) and returns
 * the Keras outputs in Keras layout; inside, convolutions and pools run channels-first (ONNX),
 * with Transposes only where the layout changes. Parameters become initializers named after the
 * Keras layers (`conv1.weight`, `bn.running_mean`...), dequantized to float32.
 */

import { basename } from 'node:path';
import { GraphBuilder } from '../../../ir/builder.js';
import type { Graph } from '../../../ir/graph.js';
import { validateGraph, emptyGraph } from '../../../ir/graph.js';
import { QuadranetFileError } from '../../errors.js';
import type { KValue } from './context.js';
import { ConversionContext } from './context.js';
import { isModelClass } from './layers/index.js';
import {
  isObject,
  modelLayers,
  namingFile,
  parseModelJson,
  parseRef,
  readModelJsonText,
} from './model-json.js';
import { convertModel, modelName, symbolicShape, unsupportedLayers } from './topology.js';
import { readWeights } from './weights.js';

export { supportedLayers } from './layers/index.js';
export { ACTIVATIONS } from './activations.js';

/** Options of `importTfjs`. */
export interface TfjsImportOptions {
  /**
   * The input's shape without the batch axis, for single-input models: fills the sizes the model
   * leaves open (e.g. `[64, 64, 3]` for a `[null, null, null, 3]` input). Sizes the model fixes
   * must agree.
   */
  inputShape?: readonly number[];
  /**
   * Names of further Keras layers whose output (of their first call, in Keras layout) becomes an
   * extra graph output named like the layer, e.g. to read features or compare intermediates.
   */
  outputs?: readonly string[];
}

/** Reads `model.json` and the weight shards next to it into an IR graph. */
export async function importTfjs(
  modelJsonPath: string,
  options: TfjsImportOptions = {},
): Promise<Graph> {
  return importTfjsJson(await readModelJsonText(modelJsonPath), modelJsonPath, options);
}

/** Like `importTfjs`, from the already read `model.json` bytes (the importer registry's form). */
export function readTfjs(file: string, bytes: Uint8Array): Promise<Graph> {
  return importTfjsJson(new TextDecoder().decode(bytes), file);
}

/** Converts `model.json` text; shards are read relative to `file`'s directory. */
export async function importTfjsJson(
  text: string,
  file: string,
  options: TfjsImportOptions = {},
): Promise<Graph> {
  return namingFile(file, () => convert(text, file, options));
}

async function convert(text: string, file: string, options: TfjsImportOptions): Promise<Graph> {
  function fail(msg: string): never {
    throw new QuadranetFileError(file, `${file}: ${msg}`);
  }
  const parsed = parseModelJson(text, file);
  const { className, config } = parsed.model;
  if (!isModelClass(className, config)) {
    fail(`the topology is a '${className}', not a Sequential or functional Keras model`);
  }
  const bad = unsupportedLayers(config, file);
  if (bad.length > 0) {
    fail(
      `cannot import ${bad.length} layer${bad.length > 1 ? 's' : ''}: ${bad.join(', ')}; replace them with built-in Keras layers and export again`,
    );
  }
  const weights = await readWeights(parsed.weightsManifest, file);
  const name = modelName(config, basename(file, '.json'));
  const g: Graph = {
    ...emptyGraph(name),
    metadata: { 'source.format': 'tfjs', 'source.file': basename(file) },
  };
  for (const [k, v] of Object.entries(parsed.info)) g.metadata[`source.${k}`] = v;
  const b = new GraphBuilder(g);

  // Graph outputs are named after the Keras output layers; reserved first so they stay exact.
  const modelOutputs = outputLayerNames(className, config, file);
  const extra = (options.outputs ?? []).filter((n) => !modelOutputs.includes(n));
  const outNames = [...modelOutputs, ...extra].map((n, i, all) =>
    b.reserve(all.indexOf(n) === i && all.lastIndexOf(n) === i ? n : `${n}_${i}`),
  );

  let inputCount = 0;
  const newInput = (inName: string, shape: (number | null)[], dtype: string): KValue => {
    if (dtype !== 'float32')
      fail(`input '${inName}' has dtype ${dtype}; only float32 inputs are supported`);
    let s = shape;
    if (options.inputShape) {
      if (inputCount > 0) fail(`inputShape was given but the model has several inputs`);
      const want = options.inputShape;
      if (want.length !== shape.length - 1) {
        fail(
          `inputShape [${want.join(', ')}] has ${want.length} sizes but input '${inName}' has shape [${shape
            .slice(1)
            .map((d) => d ?? '?')
            .join(', ')}]`,
        );
      }
      s = [
        shape[0]!,
        ...want.map((d, i) => {
          const known = shape[i + 1];
          if (known !== null && known !== undefined && known !== d) {
            fail(
              `inputShape [${want.join(', ')}] does not match input '${inName}' [${shape
                .slice(1)
                .map((x) => x ?? '?')
                .join(', ')}]`,
            );
          }
          return d;
        }),
      ];
    }
    const dims = symbolicShape(s, inputCount > 0 ? `${inName}_` : '');
    inputCount++;
    b.input(inName, 'float32', dims);
    return { name: inName, layout: 'keras', shape: dims };
  };

  const cx = new ConversionContext(b, file, weights);
  const outs = convertModel(cx, className, config, name, undefined, newInput);
  for (const n of extra) {
    const v = cx.layerOutputs.get(n);
    if (!v) fail(`outputs: the model has no layer named '${n}'`);
    if (v.length !== 1)
      fail(`outputs: layer '${n}' has ${v.length} outputs; name a layer with one`);
    outs.push(v[0]!);
  }
  if (outs.length !== outNames.length)
    fail(`the model has ${outs.length} outputs, expected ${outNames.length}`);
  outs.forEach((v, i) => {
    // The output name is already reserved, so the node is written directly.
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

function outputLayerNames(className: string, config: unknown, file: string): string[] {
  if (className === 'Sequential') {
    const layers = modelLayers(config, file, 'model');
    return [layers[layers.length - 1]!.name];
  }
  const raw = isObject(config) ? config.output_layers : undefined;
  if (!Array.isArray(raw))
    throw new QuadranetFileError(file, `${file}: the model has no output_layers list`);
  const list = raw.length > 0 && typeof raw[0] === 'string' ? [raw] : raw;
  return list.map((r) => parseRef(r, file, 'output_layers').layer);
}
