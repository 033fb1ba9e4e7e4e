/**
 * The `folder:DIR` loader: a directory of images with one sub-directory per class, decoded by
 * maintained libraries (`pngjs`, `jpeg-js`), converted to the model's channels, resized to its
 * height and width and scaled to [0, 1]. Also the seeded, per-class train/test split that the
 * folder and CSV loaders share.
 *
 * Layouts:
 * - `DIR/CLASS/*.png|jpg|jpeg`: the files of each class are split at random (seeded) into train
 *   and test parts, `testFraction` of each class going to test;
 * - `DIR/train/CLASS/...` and `DIR/test/CLASS/...`: the two folders are the splits as they are.
 *
 * Only the files of the requested split (and of the `limit` sample, when given) are read and
 * decoded, so a small limited load of a large folder is fast.
 */

import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Rng } from '../util/random.js';
import { createDataset, type Dataset } from './dataset.js';
import { DataError, reason } from './errors.js';
import type { Split } from './mnist.js';
import type { RgbaImage } from './image.js';
import { decodeImage, imageToChw } from './image.js';

/** The fraction of each class that goes to the test split when a folder has no `test/`. */
export const DEFAULT_TEST_FRACTION = 0.2;

/** The image file extensions the folder loader reads (compared case-insensitively). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

/** Options of `loadFolder`. */
export interface FolderOptions {
  /** Which split to load (default `train`). */
  split?: Split;
  /** 1: grayscale (luminance), 3: RGB (default). Alpha is dropped. */
  channels?: 1 | 3;
  /**
   * `[height, width]` every image is resized to (bilinear); default: the size of the first image
   * of the folder (of `train/` in the two-folder layout).
   */
  size?: [h: number, w: number];
  /** Keep a seeded random sample of `limit` images of the split (all when absent or larger). */
  limit?: number;
  /** Seed of the train/test assignment and of the `limit` sample (default 0). */
  seed?: number;
  /** The fraction of each class that goes to test, in [0, 1] (default 0.2); unused with `test/`. */
  testFraction?: number;
  /** The dataset name for reports (default: the directory's base name). */
  name?: string;
}

/**
 * The train and test indices of a labelled list, split per class: each class's examples are
 * shuffled by one `Rng(seed)` (classes in order) and the first `round(count * testFraction)` go
 * to test. Both index lists are ascending, so each split keeps the source order. A pure function
 * of (labels, fraction, seed): loading the train and the test split separately gives
 * complementary parts.
 *
 * @throws DataError (naming `what`) when `testFraction` is not in [0, 1]
 */
export function splitByClass(
  labels: ArrayLike<number>,
  testFraction: number,
  seed: number,
  what = 'data',
): { train: Int32Array; test: Int32Array } {
  checkFraction(testFraction, what);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    let list = byClass.get(y);
    if (list === undefined) byClass.set(y, (list = []));
    list.push(i);
  }
  const rng = new Rng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = rng.shuffle(byClass.get(y)!);
    const nTest = Math.round(idx.length * testFraction);
    test.push(...idx.slice(0, nTest));
    train.push(...idx.slice(nTest));
  }
  const asc = (a: number[]): Int32Array => Int32Array.from(a).sort();
  return { train: asc(train), test: asc(test) };
}

/**
 * `limit` of `indices` chosen at random by `seed` without replacement, ascending; all of them when
 * `limit` is absent or not smaller.
 */
export function sampleIndices(
  indices: Int32Array,
  limit: number | undefined,
  seed: number,
): Int32Array {
  if (limit === undefined || limit >= indices.length) return indices;
  const pick = new Rng(seed).shuffle(Int32Array.from(indices)).slice(0, limit);
  return pick.sort();
}

/** @throws DataError when `limit` is given and not a non-negative integer */
export function checkLimit(limit: number | undefined, what: string): void {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new DataError(`${what}: limit ${limit} must be a non-negative integer`);
  }
}

function checkFraction(f: number, what: string): void {
  if (!(f >= 0 && f <= 1)) {
    throw new DataError(`${what}: test fraction ${f} must be a number in [0, 1]`);
  }
}

async function isDir(dir: string, e: Dirent): Promise<boolean> {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  return (await stat(join(dir, e.name)).catch(() => null))?.isDirectory() ?? false;
}

async function isFile(dir: string, e: Dirent): Promise<boolean> {
  if (e.isFile()) return true;
  if (!e.isSymbolicLink()) return false;
  return (await stat(join(dir, e.name)).catch(() => null))?.isFile() ?? false;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(`${dir}: no such directory; check the data path`);
    if (code === 'ENOTDIR') {
      throw new DataError(`${dir}: not a directory; folder: needs a directory of class folders`);
    }
    throw new DataError(`${dir}: cannot read directory (${reason(err)})`);
  }
}

/** The sorted sub-directory names of `dir` (hidden ones skipped). */
export async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await entries(dir)) {
    if (!e.name.startsWith('.') && (await isDir(dir, e))) out.push(e.name);
  }
  return out.sort(byCodeUnit);
}

function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** The sorted image file paths of one class folder. */
export async function imageFiles(classDir: string): Promise<string[]> {
  const names: string[] = [];
  for (const e of await entries(classDir)) {
    if (isImageName(e.name) && (await isFile(classDir, e))) names.push(e.name);
  }
  if (names.length === 0) {
    throw new DataError(
      `${classDir}: class folder has no .png, .jpg or .jpeg images; add images or remove the folder`,
    );
  }
  return names.sort(byCodeUnit).map((n) => join(classDir, n));
}

/** The labelled file list of one root (`DIR` or `DIR/train`), classes given. */
async function listRoot(
  root: string,
  classes: readonly string[],
  present: ReadonlySet<string>,
): Promise<{ files: string[]; labels: number[] }> {
  const files: string[] = [];
  const labels: number[] = [];
  for (let k = 0; k < classes.length; k++) {
    if (!present.has(classes[k]!)) continue;
    for (const f of await imageFiles(join(root, classes[k]!))) {
      files.push(f);
      labels.push(k);
    }
  }
  return { files, labels };
}

export async function readImage(file: string): Promise<RgbaImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new DataError(`${file}: cannot read image (${reason(err)})`);
  }
  return decodeImage(bytes, file);
}

function checkSize(size: [number, number], dir: string): void {
  if (size.length !== 2 || !size.every((d) => Number.isInteger(d) && d > 0)) {
    throw new DataError(`${dir}: size [${size.join(', ')}] must be two positive integers [h, w]`);
  }
}

/**
 * Loads one split of an image folder as a dataset of shape `[channels, h, w]`, pixels in [0, 1],
 * one class per sub-directory (classes are the sorted folder names, which become `classNames`).
 * Examples are ordered by class, then by file name; shuffle with `batches`.
 *
 * @throws DataError naming the directory or file: a missing directory, no or only one class
 *   folder, a class folder without images, an image that cannot be decoded, bad options
 */
export async function loadFolder(dir: string, opts: FolderOptions = {}): Promise<Dataset> {
  const {
    split = 'train',
    channels = 3,
    limit,
    seed = 0,
    testFraction = DEFAULT_TEST_FRACTION,
  } = opts;
  if (channels !== 1 && channels !== 3) {
    throw new DataError(`${dir}: channels ${String(channels)} must be 1 (grayscale) or 3 (RGB)`);
  }
  if (opts.size !== undefined) checkSize(opts.size, dir);
  checkLimit(limit, dir);
  checkFraction(testFraction, dir);

  const top = await subdirs(dir);
  const twoFolders = top.includes('train') && top.includes('test');
  let classes: string[];
  let files: string[];
  let labels: number[];
  let first: string; // the image whose size is the default `size`
  if (twoFolders) {
    const trainDir = join(dir, 'train');
    const testDir = join(dir, 'test');
    const inTrain = new Set(await subdirs(trainDir));
    const inTest = new Set(await subdirs(testDir));
    for (const [part, set] of [
      [trainDir, inTrain],
      [testDir, inTest],
    ] as const) {
      if (set.size === 0) {
        throw new DataError(`${part}: no class subfolders; put its images in ${part}/CLASS/`);
      }
    }
    classes = [...new Set([...inTrain, ...inTest])].sort(byCodeUnit);
    checkClasses(classes, `${dir} (train/ and test/)`);
    const train = await listRoot(trainDir, classes, inTrain);
    const chosen = split === 'train' ? train : await listRoot(testDir, classes, inTest);
    ({ files, labels } = chosen);
    first = train.files[0]!;
  } else {
    classes = top;
    checkClasses(classes, dir);
    const all = await listRoot(dir, classes, new Set(classes));
    const parts = splitByClass(all.labels, testFraction, seed, dir);
    const idx = split === 'train' ? parts.train : parts.test;
    files = Array.from(idx, (i) => all.files[i]!);
    labels = Array.from(idx, (i) => all.labels[i]!);
    first = all.files[0]!;
  }

  const keep = sampleIndices(
    Int32Array.from(files, (_, i) => i),
    limit,
    seed,
  );
  let hw = opts.size;
  if (hw === undefined) {
    const im = await readImage(first);
    hw = [im.height, im.width];
  }
  const [h, w] = hw;
  const size = channels * h * w;
  const images = new Float32Array(keep.length * size);
  for (let k = 0; k < keep.length; k++) {
    const img = await readImage(files[keep[k]!]!);
    imageToChw(img, channels, h, w, images, k * size);
  }
  return createDataset({
    name: opts.name ?? basename(dir),
    images,
    labels: Int32Array.from(keep, (i) => labels[i]!),
    shape: [channels, h, w],
    numClasses: classes.length,
    classNames: classes,
  });
}

function checkClasses(classes: readonly string[], where: string): void {
  if (classes.length === 0) {
    throw new DataError(
      `${where}: no class subfolders; put the images of each class in DIR/CLASS/ ` +
        `(e.g. DIR/cat/1.png, DIR/dog/2.jpg)`,
    );
  }
  if (classes.length < 2) {
    throw new DataError(
      `${where}: only one class folder (${classes[0]}); classification needs at least 2, ` +
        `one subfolder per class`,
    );
  }
}
