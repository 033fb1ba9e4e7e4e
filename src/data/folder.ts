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
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { Rng } from '../util/random.js';
import { createDataset, type Dataset } from './dataset.js';
import { DataError, reason } from './errors.js';
import type { Split } from './mnist.js';

/** The fraction of each class that goes to the test split when a folder has no `test/`. */
export const DEFAULT_TEST_FRACTION = 0.2;

/** The image file extensions the folder loader reads (compared case-insensitively). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

/**
 * Images declaring more pixels than this are refused before decoding: Pillow's decompression-bomb
 * limit (about 0.25 GiB of 24-bit pixels), far above any training image.
 */
export const MAX_IMAGE_PIXELS = 89_478_485;

/**
 * deflate cannot compress better than 1032:1, so a PNG whose declared pixels need more than this
 * many bytes per byte of file is truncated or a bomb; refusing it costs no allocation.
 */
const DEFLATE_MAX_RATIO = 1032;

/**
 * A Huffman-coded JPEG spends at least one bit on every 8×8 block (64 pixels), so it holds at most
 * 512 pixels per byte; twice that leaves room for the decoder's tolerance of short files.
 */
const JPEG_MAX_PIXELS_PER_BYTE = 1024;

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

/** One decoded image: `width * height` pixels, RGBA, 8 bits per channel. */
export interface RgbaImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width * height * 4` bytes, row-major RGBA. */
  data: Uint8Array;
}

/**
 * Decodes a PNG or JPEG file's bytes, choosing the decoder from the file's signature (not its
 * extension). 16-bit PNGs are rescaled to 8 bits; grey and palette images are expanded to RGBA.
 *
 * @throws DataError naming `file` when the bytes are not a decodable PNG or JPEG
 */
export function decodeImage(bytes: Uint8Array, file: string): RgbaImage {
  const isPng = bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!isPng && !isJpeg) {
    throw new DataError(
      `${file}: not a PNG or JPEG image (unrecognised signature); convert it or remove it`,
    );
  }
  checkDeclaredSize(bytes, isPng, file);
  let img: RgbaImage;
  try {
    if (isPng) {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      img = { width: png.width, height: png.height, data: png.data };
    } else {
      const j = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      });
      img = { width: j.width, height: j.height, data: j.data };
    }
  } catch (err) {
    throw new DataError(
      `${file}: cannot decode ${isPng ? 'PNG' : 'JPEG'} (${reason(err)}); ` +
        `re-save the image or remove it`,
    );
  }
  if (!(img.width > 0 && img.height > 0) || img.data.length < img.width * img.height * 4) {
    throw new DataError(`${file}: decoded to an empty or truncated image; re-save it`);
  }
  return img;
}

/**
 * Refuses an image whose header declares more pixels than `MAX_IMAGE_PIXELS`, or more than its
 * bytes can encode, before a decoder allocates buffers for them: a tiny hostile file must not
 * cost gigabytes. Headers that cannot be found are left for the decoder to reject.
 */
function checkDeclaredSize(bytes: Uint8Array, isPng: boolean, file: string): void {
  const size: { width: number; height: number; minRawBytes?: number } | undefined = isPng
    ? pngSize(bytes)
    : jpegSize(bytes);
  if (size === undefined) return;
  const { width, height } = size;
  const pixels = width * height;
  const what = `${file}: the header declares ${width}×${height} pixels`;
  if (isPng && pixels === 0) {
    throw new DataError(`${what}, an empty image; the file is corrupt, re-save it or remove it`);
  }
  if (pixels > MAX_IMAGE_PIXELS) {
    throw new DataError(
      `${what}, over the limit of ${MAX_IMAGE_PIXELS}; the file is corrupt or a decompression bomb, resize or remove it`,
    );
  }
  const fits = isPng
    ? (size.minRawBytes ?? 0) <= DEFLATE_MAX_RATIO * bytes.length + 4096
    : pixels <= JPEG_MAX_PIXELS_PER_BYTE * bytes.length + 65536;
  if (!fits) {
    throw new DataError(
      `${what}, more than its ${bytes.length} bytes can encode; the file is truncated or corrupt, re-save it or remove it`,
    );
  }
}

/** Channels of each PNG colour type (0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Width, height and the least inflated size of a PNG, from its IHDR chunk (first, by the spec). */
function pngSize(
  bytes: Uint8Array,
): { width: number; height: number; minRawBytes?: number } | undefined {
  // Signature (8), IHDR length (4) and type (4), then width, height, bit depth, colour type.
  if (bytes.length < 26 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') {
    return undefined;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16, false);
  const height = view.getUint32(20, false);
  const bits = bytes[24]! * (PNG_CHANNELS[bytes[25]!] ?? 1);
  // Every scanline is its bytes plus a filter-type byte, so even a 0-wide image inflates to at
  // least one byte per row.
  return { width, height, minRawBytes: (Math.ceil((width * bits) / 8) + 1) * height };
}

/** Width and height from a JPEG's first start-of-frame segment (before the entropy-coded data). */
function jpegSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    // Markers without a length: TEM, RSTn, SOI, EOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
      at += 2;
      continue;
    }
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (at + 9 > bytes.length) return undefined;
      const height = (bytes[at + 5]! << 8) | bytes[at + 6]!;
      const width = (bytes[at + 7]! << 8) | bytes[at + 8]!;
      return { width, height };
    }
    if (marker === 0xda) return undefined; // start of scan: no frame header before the data
    at += 2 + length;
  }
  return undefined;
}

/**
 * Resizes one plane with bilinear interpolation, half-pixel centres (the convention of PIL,
 * OpenCV and PyTorch's `align_corners=False`, without antialiasing), edges clamped. The same size
 * returns an exact copy.
 */
export function resizeBilinear(
  src: Float32Array,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  out: Float32Array = new Float32Array(outH * outW),
  offset = 0,
): Float32Array {
  const sy = inH / outH;
  const sx = inW / outW;
  const x0s = new Int32Array(outW);
  const x1s = new Int32Array(outW);
  const fxs = new Float64Array(outW);
  for (let x = 0; x < outW; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), inW - 1);
    const x0 = Math.floor(fx);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, inW - 1);
    fxs[x] = fx - x0;
  }
  for (let y = 0; y < outH; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), inH - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, inH - 1);
    const wy = fy - y0;
    const r0 = y0 * inW;
    const r1 = y1 * inW;
    for (let x = 0; x < outW; x++) {
      const x0 = x0s[x]!;
      const x1 = x1s[x]!;
      const wx = fxs[x]!;
      const top = src[r0 + x0]! + (src[r0 + x1]! - src[r0 + x0]!) * wx;
      const bottom = src[r1 + x0]! + (src[r1 + x1]! - src[r1 + x0]!) * wx;
      out[offset + y * outW + x] = top + (bottom - top) * wy;
    }
  }
  return out;
}

/**
 * Writes an RGBA image as `channels` planes of `[h, w]` values in [0, 1] into `out` at `offset`
 * (CHW). One channel is the luminance `0.299 R + 0.587 G + 0.114 B` (ITU-R BT.601); three are
 * R, G, B. Alpha is ignored.
 */
export function imageToChw(
  img: RgbaImage,
  channels: 1 | 3,
  h: number,
  w: number,
  out: Float32Array = new Float32Array(channels * h * w),
  offset = 0,
): Float32Array {
  const { width, height, data } = img;
  const plane = new Float32Array(width * height);
  for (let ch = 0; ch < channels; ch++) {
    for (let p = 0, q = 0; p < plane.length; p++, q += 4) {
      plane[p] =
        channels === 1
          ? (0.299 * data[q]! + 0.587 * data[q + 1]! + 0.114 * data[q + 2]!) / 255
          : data[q + ch]! / 255;
    }
    resizeBilinear(plane, height, width, h, w, out, offset + ch * h * w);
  }
  return out;
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
