/**
 * The adapter file format (DESIGN.md §4): the two file names, the key layout written into every
 * config, the config's type and its reader, which checks every field and names the file and the
 * field at fault in one line. Saving and loading adapters (which rebuild the quadratic terms with
 * a pass) live in workflow/adapter-files.ts.
 */

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import type {
  AdapterConfig,
  QuadLayerKind,
  QuadOp,
  QuadMode,
  QuadRole,
} from '../../passes/quadratic-spec.js';
import { QUAD_MODES, QUAD_ROLES } from '../../passes/quadratic-spec.js';
import { quadVariant, quadVariants, variantRefusal } from '../../passes/variants/index.js';
import { readCommittedFile } from '../atomic.js';
import { QuadranetFileError, fileErrorFrom } from '../errors.js';
import { fieldPath } from './json-schema.js';
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
  const bad = (what: string): never => {
    throw new QuadranetFileError(
      path,
      `${path}: ${what}; the file is corrupt or not a quadranet adapter config`,
    );
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return bad('not a JSON object');
  const r = AdapterFileConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  // The field as the messages have always named it (targets[0].op), then what is wrong with it.
  return bad(`${fieldPath(issue.path)} ${issue.message}`);
}

const OPS = ['Conv', 'Gemm', 'MatMul'] as const satisfies readonly QuadOp[];
const KINDS = [
  'conv',
  'depthwise',
  'grouped',
  'gemm',
  'matmul',
] as const satisfies readonly QuadLayerKind[];

/** A whole number ≥ `min` (any whole number without `min`), failing with `message`. */
const whole = (message: string, min?: number) => {
  const n = z.number({ error: message }).int({ error: message });
  return min === undefined ? n : n.min(min, { error: message });
};
const wholeList = z.array(whole('is not a list of whole numbers', 0), {
  error: 'is not a list of whole numbers',
});
const shown = (v: unknown) => JSON.stringify(v) ?? 'undefined';
const modeSchema = z.enum(QUAD_MODES as readonly QuadMode[] as [QuadMode, ...QuadMode[]], {
  error: (i) => `${shown(i.input)} is unknown`,
});
const phiSchema = z.string().refine((v) => quadVariant(v) !== undefined, {
  error: (i) => `${shown(i.input)} is unknown (known: ${quadVariants().join(', ')})`,
});
const sha = z.string().regex(SHA_RE, { error: 'is not a SHA-256 hex string' });
const HeadSchema = z.object({
  node: z.string(),
  numClasses: whole('', 1),
  seed: whole(''),
});

const TargetSchema = z
  .looseObject(
    {
      node: z.string({ error: 'is not a string' }),
      weight: z.string({ error: 'is not a string' }),
      op: z.enum(OPS, { error: (i) => `${shown(i.input)} is not Conv, Gemm or MatMul` }),
      kind: z.enum(KINDS, { error: (i) => `${shown(i.input)} is not one of ${KINDS.join(', ')}` }),
      mode: modeSchema,
      phi: phiSchema,
      rank: whole('is not a whole number ≥ 1', 1).nullable(),
      kq: wholeList.optional(),
      dq: wholeList.optional(),
      strides: wholeList.optional(),
      pads: wholeList.optional(),
      group: whole('is not a whole number ≥ 1', 1).optional(),
      transA: whole('is not 0 or 1', 0).max(1, { error: 'is not 0 or 1' }).optional(),
      transB: whole('is not 0 or 1', 0).max(1, { error: 'is not 0 or 1' }).optional(),
      params: z.array(
        z.object(
          {
            role: z.enum(QUAD_ROLES as readonly QuadRole[] as [QuadRole, ...QuadRole[]], {
              error: (i) => `${shown(i.input)} is not one of ${QUAD_ROLES.join(', ')}`,
            }),
            name: z.string({ error: 'is not a string' }),
            shape: wholeList,
          },
          { error: 'is not {role, name, shape}' },
        ),
        { error: 'is not a list' },
      ),
    },
    { error: 'is not an object' },
  )
  .superRefine((t, ctx) => {
    const refusal = variantRefusal(t.phi, t.mode);
    if (refusal) ctx.addIssue({ code: 'custom', path: ['phi'], message: `refused: ${refusal}` });
    if (t.mode === 'lowrank' ? t.rank === null : t.rank !== null)
      ctx.addIssue({ code: 'custom', path: ['rank'], message: `does not fit mode ${t.mode}` });
    t.params.forEach((p, j) => {
      if (p.name !== `${t.weight}.${p.role}`)
        ctx.addIssue({
          code: 'custom',
          path: ['params', j, 'name'],
          message: `'${p.name}' should be '${t.weight}.${p.role}'`,
        });
    });
  });

/** `adapter_config.json`, checked field by field (the interface above is what it must produce). */
const AdapterFileConfigSchema: z.ZodType<AdapterFileConfig> = z
  .looseObject({
    format: z.literal('quadranet-adapter', {
      error: (i) => `is ${shown(i.input)}, not "quadranet-adapter"`,
    }),
    formatVersion: z.literal(1, {
      error: (i) => `${shown(i.input)} is not supported (this quadranet reads version 1)`,
    }),
    libraryVersion: z.string({ error: 'is not a string' }),
    baseModelSha256: sha,
    weightsSha256: sha,
    mode: modeSchema,
    phi: phiSchema,
    rank: whole('is not a whole number ≥ 1', 1),
    seed: whole('is not a whole number'),
    initScale: z.number({ error: 'is not a number' }),
    weightsFile: z.literal(ADAPTER_WEIGHTS_FILE, {
      error: `must be "${ADAPTER_WEIGHTS_FILE}"`,
    }),
    keyLayout: z.record(z.string(), z.string(), { error: 'is not a map of strings' }),
    targets: z.array(TargetSchema, { error: 'is not a non-empty list' }).min(1, {
      error: 'is not a non-empty list',
    }),
    savedBaseParams: z
      .array(z.object({ name: z.string(), shape: wholeList }, { error: 'is not {name, shape}' }), {
        error: 'is not a list',
      })
      .optional(),
    head: z
      .custom<AdapterHeadRecord>((h) => HeadSchema.safeParse(h).success, {
        error: 'is not {node, numClasses, seed}',
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    // Every parameter name once: the weights file has one tensor per name.
    const seen = new Set<string>();
    const once = (name: string, path: (string | number)[]) => {
      if (seen.has(name))
        ctx.addIssue({ code: 'custom', path, message: `'${name}' is listed twice` });
      seen.add(name);
    };
    c.targets.forEach((t, i) =>
      t.params.forEach((p, j) => once(p.name, ['targets', i, 'params', j, 'name'])),
    );
    c.savedBaseParams?.forEach((p, i) => once(p.name, ['savedBaseParams', i, 'name']));
  });
