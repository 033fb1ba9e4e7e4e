/**
 * The adapter file format (DESIGN.md §4): the two file names, the key layout written into every
 * config, the config's type and its reader, which checks every field and names the file and the
 * field at fault in one line. Saving and loading adapters (which rebuild the quadratic terms with
 * a pass) live in workflow/adapter-files.ts.
 */

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type {
  AdapterConfig,
  QuadOp,
  QuadParamSpec,
  QuadMode,
  QuadRole,
} from '../../passes/quadratic-spec.js';
import { QUAD_MODES, QUAD_ROLES } from '../../passes/quadratic-spec.js';
import { quadVariant, quadVariants, variantRefusal } from '../../passes/variants/index.js';
import { readCommittedFile } from '../atomic.js';
import { QuadranetFileError, fileErrorFrom } from '../errors.js';
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

/** Lower-case hex SHA-256 of some bytes (the identity of a base model file). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A SHA-256 in lower-case hex. */
export const SHA_RE = /^[0-9a-f]{64}$/;

/** The first 16 hex digits of a SHA-256, for messages. */
export function short(sha: string): string {
  return `${sha.slice(0, 16)}…`;
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
