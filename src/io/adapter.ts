/**
 * Adapter files (DESIGN.md §4): `adapter.safetensors` holds only the quadratic parameters (keys
 * = parameter names `W.quad_*`), `adapter_config.json` the configuration needed to rebuild the
 * quadratic terms on the same base model, identified by its SHA-256.
 */

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Graph } from '../ir/graph.js';
import { encodeModel } from '../ir/onnx.js';
import type { DType, Tensor } from '../ir/tensor.js';
import { unload } from '../passes/adapter.js';
import type {
  AdapterConfig,
  QuadOp,
  QuadParamSpec,
  QuadMode,
  QuadRole,
  QuadTargetSpec,
} from '../passes/quadratic-spec.js';
import {
  QUAD_MODES,
  QUAD_ROLES,
  QuadratizeError,
  configOf,
  readAdapterState,
} from '../passes/quadratic-spec.js';
import { quadratizeFromConfig } from '../passes/quadratize.js';
import { replaceHead } from '../passes/replace-head.js';
import { quadVariant, quadVariants, variantRefusal } from '../passes/variants/index.js';
import { VERSION } from '../version.js';
import { type AtomicFs, ensureWritableDir, readCommittedFile, writeFilesAtomic } from './atomic.js';
import { QuadranetFileError, fileErrorFrom } from './errors.js';
import type { SafeDType, SafeTensor } from './safetensors.js';
import { decodeSafetensors, encodeFor } from './safetensors.js';
import { irDType, safeDType } from './tensors.js';

/**
 * An adapter was loaded onto another base model than the one it was saved for (their SHA-256
 * differ). A QuadranetFileError naming the adapter config, so the CLI reports it as one line;
 * `expectedSha256` is the config's base, `actualSha256` the given model's.
 */
export class AdapterBaseMismatchError extends QuadranetFileError {
  /** SHA-256 (hex) of the base model the adapter was saved for. */
  readonly expectedSha256: string;
  /** SHA-256 (hex) of the model it was loaded onto. */
  readonly actualSha256: string;

  constructor(configPath: string, expectedSha256: string, actualSha256: string, model: string) {
    super(
      configPath,
      `${configPath} belongs to a base model with SHA-256 ${short(expectedSha256)}, but ${model} ` +
        `has SHA-256 ${short(actualSha256)}; load the adapter onto the model it was trained from`,
    );
    this.name = 'AdapterBaseMismatchError';
    this.expectedSha256 = expectedSha256;
    this.actualSha256 = actualSha256;
  }
}

/** File name of the adapter weights inside an adapter directory. */
export const ADAPTER_WEIGHTS_FILE = 'adapter.safetensors';
/** File name of the adapter configuration inside an adapter directory. */
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';

/** How the adapter-file keys and shapes are laid out (written into every config for readers). */
export const KEY_LAYOUT: Readonly<Record<QuadRole, string>> = {
  quad_a:
    'W.quad_a, factor A. Conv: [branch, Cin/group, ...kq] with branch = group·rank (neuron: Cout); ' +
    'Gemm: [rank, n] when transB = 1, else [n, rank] (neuron: the shape of W); MatMul: [n, rank] (neuron: [n, m])',
  quad_b: 'W.quad_b, factor B: the shape of quad_a (absent when phi is linear: Q = U(A(x)))',
  quad_u:
    'W.quad_u (lowrank only), factor U without bias. Conv: [Cout, rank, 1, ...] applied as a 1×1 conv with ' +
    '`group` groups; Gemm: [m, rank] when transB = 1, else [rank, m]; MatMul: [rank, m]',
  quad_gamma:
    'W.quad_gamma (rbf only): [branch], the γ of exp(−γ(a − b)²) per channel of A(x) ' +
    '(axis 1 for Conv, the last axis for Gemm/MatMul)',
};

/** The contents of `adapter_config.json`. */
export interface AdapterFileConfig extends AdapterConfig {
  /** Format marker. */
  format: 'quadranet-adapter';
  /** Version of this file format. */
  formatVersion: 1;
  /** quadranet version that wrote the file. */
  libraryVersion: string;
  /** SHA-256 (hex) of the base model the adapter belongs to; loading onto another is refused. */
  baseModelSha256: string;
  /** Name of the weights file next to this config. */
  weightsFile: string;
  /** SHA-256 (hex) of the weights file, so a config and weights from different saves are caught. */
  weightsSha256: string;
  /** Documentation of the keys and shapes in the weights file. */
  keyLayout: Record<QuadRole, string>;
  /**
   * First-order parameters of the base model that were trained with the adapter (e.g. the
   * classifier head, like PEFT's modules_to_save), stored in the weights file under their own
   * names and written over the base model's values on load.
   */
  savedBaseParams?: { name: string; shape: number[] }[];
  /**
   * The base model's head was replaced by a new one of `numClasses` outputs before the adapter
   * was added (`--num-classes`): loading replaces it again (then the saved head weights, listed
   * in `savedBaseParams`, fill it).
   */
  head?: AdapterHeadRecord;
}

/** How the head of the base model was replaced (see `replaceHead`). */
export interface AdapterHeadRecord {
  /** The head layer's node name in the base model. */
  node: string;
  /** Output units of the new head. */
  numClasses: number;
  /** Seed the new head was initialised with. */
  seed: number;
}

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

/** Lower-case hex SHA-256 of some bytes (the identity of a base model file). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 of a graph as `encodeModel` writes it (the identity of an in-memory base model). */
export function graphSha256(graph: Graph): string {
  return sha256Hex(encodeModel(graph));
}

/** Adapter parameters are float32 or float64 (the safetensors dtype, or undefined for others). */
const floatSafeDType = (d: DType): SafeDType | undefined =>
  d === 'float32' || d === 'float64' ? safeDType(d) : undefined;
const SHA_RE = /^[0-9a-f]{64}$/;

function short(sha: string): string {
  return `${sha.slice(0, 16)}…`;
}

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

/** Reads and validates `adapter_config.json` of an adapter directory. */
export async function readAdapterConfig(dir: string): Promise<AdapterFileConfig> {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  let text: string;
  try {
    text = (await readCommittedFile(dir, ADAPTER_CONFIG_FILE)).toString('utf8');
  } catch (e) {
    throw fileErrorFrom(e, path, 'read');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new QuadranetFileError(
      path,
      `cannot read ${path}: not valid JSON (${(e as Error).message})`,
    );
  }
  return validateConfig(raw, path);
}

const OPS: readonly QuadOp[] = ['Conv', 'Gemm', 'MatMul'];

/** Checks the structure of a parsed config; every fault is a one-line error naming the file. */
function validateConfig(raw: unknown, path: string): AdapterFileConfig {
  const bad = (what: string): never => {
    throw new QuadranetFileError(
      path,
      `${path}: ${what}; the file is corrupt or not a quadranet adapter config`,
    );
  };
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const isInts = (v: unknown): v is number[] =>
    Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
  if (!isObj(raw)) return bad('not a JSON object');
  const c = raw;
  if (c['format'] !== 'quadranet-adapter')
    bad(`format is ${JSON.stringify(c['format'])}, not "quadranet-adapter"`);
  if (c['formatVersion'] !== 1)
    bad(
      `formatVersion ${JSON.stringify(c['formatVersion'])} is not supported (this quadranet reads version 1)`,
    );
  for (const k of ['baseModelSha256', 'weightsSha256'] as const)
    if (typeof c[k] !== 'string' || !SHA_RE.test(c[k] as string))
      bad(`${k} is not a SHA-256 hex string`);
  const isMode = (v: unknown) => QUAD_MODES.includes(v as QuadMode);
  if (!isMode(c['mode'])) bad(`mode ${JSON.stringify(c['mode'])} is unknown`);
  const isPhi = (v: unknown) => typeof v === 'string' && quadVariant(v) !== undefined;
  if (!isPhi(c['phi']))
    bad(`phi ${JSON.stringify(c['phi'])} is unknown (known: ${quadVariants().join(', ')})`);
  if (!Number.isSafeInteger(c['rank']) || (c['rank'] as number) < 1)
    bad('rank is not a whole number ≥ 1');
  if (!Number.isSafeInteger(c['seed'])) bad('seed is not a whole number');
  if (typeof c['initScale'] !== 'number') bad('initScale is not a number');
  if (typeof c['weightsFile'] !== 'string' || c['weightsFile'] !== ADAPTER_WEIGHTS_FILE)
    bad(`weightsFile must be "${ADAPTER_WEIGHTS_FILE}"`);
  if (!Array.isArray(c['targets']) || c['targets'].length === 0)
    bad('targets is not a non-empty list');
  const seen = new Set<string>();
  (c['targets'] as unknown[]).forEach((t, i) => {
    if (!isObj(t)) return bad(`targets[${i}] is not an object`);
    const where = `targets[${i}]`;
    if (typeof t['node'] !== 'string' || typeof t['weight'] !== 'string')
      bad(`${where} lacks node or weight`);
    if (!OPS.includes(t['op'] as QuadOp))
      bad(`${where}.op ${JSON.stringify(t['op'])} is not Conv, Gemm or MatMul`);
    if (!isMode(t['mode'])) bad(`${where}.mode is unknown`);
    if (!isPhi(t['phi'])) bad(`${where}.phi is unknown`);
    const refusal = variantRefusal(t['phi'] as string, t['mode'] as QuadMode);
    if (refusal) bad(`${where}: ${refusal}`);
    if (t['mode'] === 'lowrank' ? !Number.isSafeInteger(t['rank']) : t['rank'] !== null)
      bad(`${where}.rank does not fit its mode`);
    for (const k of ['kq', 'dq', 'strides', 'pads'])
      if (t[k] !== undefined && !isInts(t[k])) bad(`${where}.${k} is not a list of whole numbers`);
    if (!Array.isArray(t['params'])) return bad(`${where}.params is not a list`);
    for (const p of t['params'] as unknown[]) {
      if (!isObj(p) || !QUAD_ROLES.includes(p['role'] as QuadRole) || !isInts(p['shape']))
        bad(`${where}.params has an entry without a valid role and shape`);
      const q = p as unknown as QuadParamSpec;
      if (q.name !== `${t['weight'] as string}.${q.role}`)
        bad(
          `${where}: parameter '${String(q.name)}' should be named '${t['weight'] as string}.${q.role}'`,
        );
      if (seen.has(q.name)) bad(`parameter '${q.name}' is listed twice`);
      seen.add(q.name);
    }
  });
  if (c['savedBaseParams'] !== undefined) {
    const list = c['savedBaseParams'];
    if (!Array.isArray(list)) bad('savedBaseParams is not a list');
    for (const p of list as unknown[]) {
      if (!isObj(p) || typeof p['name'] !== 'string' || !isInts(p['shape']))
        bad('savedBaseParams has an entry without a name and shape');
      const name = (p as { name: string }).name;
      if (seen.has(name)) bad(`parameter '${name}' is listed twice`);
      seen.add(name);
    }
  }
  if (c['head'] !== undefined) {
    const h = c['head'];
    if (
      !isObj(h) ||
      typeof h['node'] !== 'string' ||
      !Number.isSafeInteger(h['numClasses']) ||
      (h['numClasses'] as number) < 1 ||
      !Number.isSafeInteger(h['seed'])
    )
      bad('head is not {node, numClasses, seed}');
  }
  return c as unknown as AdapterFileConfig;
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
