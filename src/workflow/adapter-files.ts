/**
 * Saving and loading adapters (DESIGN.md §4): `adapter.safetensors` holds only the quadratic
 * parameters (keys = parameter names `W.quad_*`), `adapter_config.json` the configuration needed
 * to rebuild the quadratic terms on the same base model, identified by its SHA-256. Loading
 * rebuilds the terms with the quadratize pass, so it lives here above the passes; the file
 * format itself is io/formats/adapter-config.ts.
 */

import { join } from 'node:path';
import type { Graph } from '../ir/graph.js';
import { encodeModel } from '../ir/onnx.js';
import type { DType, Tensor } from '../ir/tensor.js';
import { unload } from '../passes/adapter.js';
import type { QuadParamSpec, QuadTargetSpec } from '../passes/quadratic-spec.js';
import { QuadratizeError, configOf, readAdapterState } from '../passes/quadratic-spec.js';
import { quadratizeFromConfig } from '../passes/quadratize.js';
import { replaceHead } from '../passes/replace-head.js';
import { VERSION } from '../version.js';
import {
  type AtomicFs,
  ensureWritableDir,
  readCommittedFile,
  writeFilesAtomic,
} from '../io/atomic.js';
import { QuadranetFileError, fileErrorFrom } from '../io/errors.js';
import type { SafeDType, SafeTensor } from '../io/formats/safetensors.js';
import { decodeSafetensors, encodeFor } from '../io/formats/safetensors.js';
import { irDType, safeDType } from '../io/formats/tensors.js';
import type { AdapterFileConfig, AdapterHeadRecord } from '../io/formats/adapter-config.js';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  AdapterBaseMismatchError,
  KEY_LAYOUT,
  readAdapterConfig,
  SHA_RE,
  sha256Hex,
} from '../io/formats/adapter-config.js';

/** Options of `saveAdapter`. */
export interface SaveAdapterOptions {
  /** Base-model initializers trained alongside the adapter to store with it (e.g. the head). */
  alsoSave?: readonly string[];
  /** The graph's head replaces the base model's (recorded so `loadAdapter` rebuilds it). */
  head?: AdapterHeadRecord;
  /**
   * Other files of the same output (name in `dir` -> contents, e.g. `model.onnx`) to write in the
   * same all-or-nothing step as the adapter, so a kill never pairs them with an older adapter.
   */
  alongside?: Readonly<Record<string, Uint8Array | string>>;
  /** File-system implementation, for tests that simulate failures; the real one by default. */
  fs?: AtomicFs;
}

/** Options of `loadAdapter`. */
export interface LoadAdapterOptions {
  /** The base model's file name, for error messages. */
  modelFile?: string;
}

/** SHA-256 of a graph as `encodeModel` writes it (the identity of an in-memory base model). */
export function graphSha256(graph: Graph): string {
  return sha256Hex(encodeModel(graph));
}

/** Adapter parameters are float32 or float64 (the safetensors dtype, or undefined for others). */
const floatSafeDType = (d: DType): SafeDType | undefined =>
  d === 'float32' || d === 'float64' ? safeDType(d) : undefined;

/**
 * Writes `adapter.safetensors` (the quadratic parameters only) and `adapter_config.json` into
 * `dir` (created if needed) as one atomic step (`writeFilesAtomic`, with `options.alongside`):
 * after a kill, `loadAdapter` finds the old pair or the new one, never a mix (the config also
 * records the weights' SHA-256, so a pair mixed by hand is refused). `base` identifies the base model: its file bytes, their SHA-256 (hex), or
 * omitted for the SHA-256 of `encodeModel(unload(graph))`. Returns the config written.
 */
export async function saveAdapter(
  dir: string,
  graph: Graph,
  base?: Uint8Array | string,
  options: SaveAdapterOptions = {},
): Promise<AdapterFileConfig> {
  const state = readAdapterState(graph);
  if (!state) throw new QuadratizeError(`graph '${graph.name}' has no quadratic adapter to save`);
  let baseSha: string;
  if (base === undefined) baseSha = graphSha256(unload(graph));
  else if (typeof base === 'string') {
    baseSha = base.toLowerCase();
    if (!SHA_RE.test(baseSha))
      throw new QuadratizeError(`base model SHA-256 '${base}' is not 64 hexadecimal digits`);
  } else baseSha = sha256Hex(base);

  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const tensors: Record<string, SafeTensor> = {};
  for (const t of state.targets) {
    for (const p of t.params) {
      const v = graph.initializers.get(p.name);
      if (!v)
        throw new QuadratizeError(
          `graph '${graph.name}' lacks the quadratic parameter '${p.name}'`,
        );
      const dtype = floatSafeDType(v.dtype);
      if (!dtype)
        throw new QuadratizeError(
          `quadratic parameter '${p.name}' has unsupported dtype ${v.dtype}`,
        );
      if (v.dims.join(',') !== p.shape.join(',')) {
        throw new QuadratizeError(
          `quadratic parameter '${p.name}' has shape [${v.dims.join(',')}], but the adapter record says [${p.shape.join(',')}]`,
        );
      }
      tensors[p.name] = { dtype, shape: [...v.dims], data: v.data as Float32Array | Float64Array };
    }
  }
  const savedBaseParams: { name: string; shape: number[] }[] = [];
  for (const name of options.alsoSave ?? []) {
    const v = graph.initializers.get(name);
    const dtype = v ? floatSafeDType(v.dtype) : undefined;
    if (!v || !dtype || tensors[name]) {
      throw new QuadratizeError(
        `cannot save '${name}' with the adapter: it is not a float parameter of the base model`,
      );
    }
    tensors[name] = { dtype, shape: [...v.dims], data: v.data as Float32Array | Float64Array };
    savedBaseParams.push({ name, shape: [...v.dims] });
  }
  const bytes = encodeFor(weightsPath, tensors, { format: 'quadranet-adapter' });
  const config: AdapterFileConfig = {
    format: 'quadranet-adapter',
    formatVersion: 1,
    libraryVersion: VERSION,
    baseModelSha256: baseSha,
    weightsFile: ADAPTER_WEIGHTS_FILE,
    weightsSha256: sha256Hex(bytes),
    keyLayout: { ...KEY_LAYOUT },
    ...configOf(state),
    ...(savedBaseParams.length > 0 ? { savedBaseParams } : {}),
    ...(options.head ? { head: { ...options.head } } : {}),
  };
  for (const name of Object.keys(options.alongside ?? {})) {
    if (name === ADAPTER_WEIGHTS_FILE || name === ADAPTER_CONFIG_FILE)
      throw new TypeError(`saveAdapter: 'alongside' must not name the adapter's own file ${name}`);
  }
  const { fs } = options;
  await ensureWritableDir(dir, { fs });
  await writeFilesAtomic(
    dir,
    {
      ...options.alongside,
      [ADAPTER_WEIGHTS_FILE]: bytes,
      [ADAPTER_CONFIG_FILE]: `${JSON.stringify(config, null, 2)}\n`,
    },
    { fs },
  );
  return config;
}

function listNames(names: string[]): string {
  const shown = names
    .slice(0, 3)
    .map((n) => `'${n}'`)
    .join(', ');
  return names.length > 3 ? `${shown} and ${names.length - 3} more` : shown;
}

/**
 * Rebuilds the adapter saved in `dir` on `graph` and returns the quadratized graph with the
 * saved weights. `graph` is the base model (a graph that already has an adapter is unloaded
 * first, so a fresh `quadratize` of the same base can be given too). The base must be the one
 * the adapter was saved for: `baseSha256` (its file's SHA-256; default the SHA-256 of
 * `encodeModel(base)`) must equal the config's, otherwise a one-line error names both files.
 * Keys, shapes and dtypes of the weights are checked against the config (missing or extra
 * keys, wrong shapes are refused). Pure with respect to `graph`.
 */
export async function loadAdapter(
  dir: string,
  graph: Graph,
  baseSha256?: string,
  options: LoadAdapterOptions = {},
): Promise<Graph> {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  const config = await readAdapterConfig(dir);
  let base = readAdapterState(graph) ? unload(graph) : graph;
  const sha = (baseSha256 ?? graphSha256(base)).toLowerCase();
  if (sha !== config.baseModelSha256) {
    const model = options.modelFile ?? `base model '${base.name}'`;
    throw new AdapterBaseMismatchError(configPath, config.baseModelSha256, sha, model);
  }
  let bytes: Uint8Array;
  try {
    bytes = await readCommittedFile(dir, ADAPTER_WEIGHTS_FILE);
  } catch (e) {
    throw fileErrorFrom(e, weightsPath, 'read');
  }
  if (sha256Hex(bytes) !== config.weightsSha256) {
    throw new QuadranetFileError(
      weightsPath,
      `${weightsPath} does not match ${configPath} (SHA-256 differs): they come from different saves; save the adapter again`,
    );
  }
  const { tensors } = decodeSafetensors(bytes, { file: weightsPath });
  if (config.head) {
    // The adapter was trained on the base with a new head: build that head's shape again.
    try {
      const r = replaceHead(base, { numClasses: config.head.numClasses, seed: config.head.seed });
      if (r.report.node !== config.head.node)
        throw new Error(`its head is '${r.report.node}', not '${config.head.node}'`);
      base = r.graph;
    } catch (e) {
      throw new QuadranetFileError(
        configPath,
        `${configPath} replaces the head of the base model with ${config.head.numClasses} classes, which fails: ${(e as Error).message}`,
      );
    }
  }
  const specs = new Map<string, { target: QuadTargetSpec; param: QuadParamSpec }>();
  for (const target of config.targets)
    for (const param of target.params) specs.set(param.name, { target, param });
  const baseParams = new Map((config.savedBaseParams ?? []).map((p) => [p.name, p] as const));
  for (const [name, p] of baseParams) {
    const cur = base.initializers.get(name);
    if (!cur || cur.dims.join(',') !== p.shape.join(',')) {
      throw new QuadranetFileError(
        configPath,
        `${configPath} saves base parameter '${name}' [${p.shape.join(',')}], which the base model lacks or shapes differently`,
      );
    }
    if (!Object.hasOwn(tensors, name)) {
      throw new QuadranetFileError(
        weightsPath,
        `${weightsPath} lacks '${name}', listed in ${configPath}`,
      );
    }
  }
  const missing = [...specs.keys()].filter((k) => !Object.hasOwn(tensors, k));
  if (missing.length > 0)
    throw new QuadranetFileError(
      weightsPath,
      `${weightsPath} lacks ${listNames(missing)}, listed in ${configPath}`,
    );
  const extra = Object.keys(tensors).filter((k) => !specs.has(k) && !baseParams.has(k));
  if (extra.length > 0)
    throw new QuadranetFileError(
      weightsPath,
      `${weightsPath} has ${listNames(extra)}, which ${configPath} does not list`,
    );
  for (const [name, { param }] of specs) {
    const t = tensors[name]!;
    if (t.shape.join(',') !== param.shape.join(',')) {
      throw new QuadranetFileError(
        weightsPath,
        `${weightsPath}: '${name}' has shape [${t.shape.join(',')}], but ${configPath} says [${param.shape.join(',')}]`,
      );
    }
  }

  let built: Graph;
  try {
    built = quadratizeFromConfig(base, config).graph;
  } catch (e) {
    if (e instanceof QuadratizeError)
      throw new QuadranetFileError(
        configPath,
        `${configPath} does not fit the base model: ${e.message}`,
      );
    throw e;
  }
  for (const [name] of specs) {
    const t = tensors[name]!;
    const current = built.initializers.get(name)!;
    const dtype = irDType(t.dtype);
    if (dtype !== current.dtype) {
      throw new QuadranetFileError(
        weightsPath,
        `${weightsPath}: '${name}' is ${t.dtype}, but the base model's layer needs ${current.dtype}`,
      );
    }
    const loaded: Tensor = {
      dtype,
      dims: [...t.shape],
      data: t.data as Float32Array | Float64Array,
    };
    built.initializers.set(name, loaded);
  }
  for (const [name, p] of baseParams) {
    const t = tensors[name]!;
    if (
      t.shape.join(',') !== p.shape.join(',') ||
      irDType(t.dtype) !== built.initializers.get(name)!.dtype
    ) {
      throw new QuadranetFileError(
        weightsPath,
        `${weightsPath}: '${name}' does not match the base model's parameter`,
      );
    }
    built.initializers.set(name, {
      dtype: irDType(t.dtype)!,
      dims: [...t.shape],
      data: t.data as Float32Array | Float64Array,
    });
  }
  return built;
}
