/**
 * `pairs:DIR`: image-to-image data from two folders, `DIR/input/` and `DIR/target/`, paired by
 * file name (the extension may differ): restoration, denoising or super-resolution examples a
 * user brings. Inputs are resized to the model's input; targets keep their own size (the first
 * target image's), so a target may be larger than its input (super-resolution).
 */

import { basename, extname, join } from 'node:path';
import { createDataset, type Dataset, type MaskKind } from './dataset.js';
import { DataError } from './errors.js';
import {
  DEFAULT_TEST_FRACTION,
  type FolderOptions,
  checkLimit,
  imageFiles,
  readImage,
  sampleIndices,
  splitByClass,
  subdirs,
} from './folder.js';
import type { RgbaImage } from './image.js';
import { imageToChw } from './image.js';

/**
 * Options of `loadPairs`: those of `loadFolder` (`size` resizes the inputs only; the fraction
 * for test is of the pairs), without `name`, plus how the targets are read.
 */
export type PairsOptions = Omit<FolderOptions, 'name'> & {
  /**
   * `classes`: each target is a class mask, one class index per pixel (the first channel's
   * 0–255 value, e.g. a PNG holding 0, 1, 2); `binary`: a 0/1 mask (first channel ≥ 128 → 1).
   * Masks have one channel and are resized (when their size differs from the first target's)
   * by nearest neighbour, never blended. Absent: targets are images like the inputs.
   */
  masks?: MaskKind;
  /** Channels of image targets (1 or 3; default: the inputs' channels). Masks have 1. */
  targetChannels?: 1 | 3;
};

/** One mask image as `th × tw` class indices or 0/1 values (nearest-neighbour resize). */
function maskToPlane(
  img: RgbaImage,
  kind: MaskKind,
  th: number,
  tw: number,
  out: Float32Array,
  offset: number,
): void {
  const { width, height, data } = img;
  for (let y = 0; y < th; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / th));
    for (let x = 0; x < tw; x++) {
      const sx = Math.min(width - 1, Math.floor(((x + 0.5) * width) / tw));
      const v = data[4 * (sy * width + sx)]!;
      out[offset + y * tw + x] = kind === 'classes' ? v : v >= 128 ? 1 : 0;
    }
  }
}

const stem = (file: string) => basename(file, extname(file));

/**
 * Loads one split of a pairs folder: images `[channels, h, w]` from `input/`, targets
 * `[targetChannels, th, tw]` from `target/`, pixels in [0, 1] (masks: `[1, th, tw]` class
 * indices or 0/1); labels are all 0 (one class).
 *
 * @throws DataError naming the folder or file: no `input/` or `target/`, an image without its
 *   partner, an image that cannot be decoded, bad options
 */
export async function loadPairs(dir: string, opts: PairsOptions = {}): Promise<Dataset> {
  const { split = 'train', channels = 3, limit, seed = 0 } = opts;
  checkLimit(limit, dir);
  const present = new Set(await subdirs(dir));
  if (!present.has('input') || !present.has('target')) {
    throw new DataError(
      `${dir}: a pairs folder needs input/ and target/ subfolders holding images of the same names (input/1.png ↔ target/1.png)`,
    );
  }
  const inputs = await imageFiles(join(dir, 'input'));
  const targets = new Map((await imageFiles(join(dir, 'target'))).map((f) => [stem(f), f]));
  const lonely = inputs.find((f) => !targets.has(stem(f)));
  if (lonely) {
    throw new DataError(
      `${lonely}: no target image of the same name in ${join(dir, 'target')}; add it or remove the input`,
    );
  }
  const all = new Int32Array(inputs.length); // one class: split by a seeded random draw
  const parts = splitByClass(all, opts.testFraction ?? DEFAULT_TEST_FRACTION, seed, dir);
  const keep = sampleIndices(split === 'train' ? parts.train : parts.test, limit, seed);

  const firstIn = await readImage(inputs[0]!);
  const [h, w] = opts.size ?? [firstIn.height, firstIn.width];
  const firstTarget = await readImage(targets.get(stem(inputs[0]!))!);
  const [th, tw] = [firstTarget.height, firstTarget.width];
  const masks = opts.masks;
  const tc = masks ? 1 : (opts.targetChannels ?? channels);
  const inSize = channels * h * w;
  const outSize = tc * th * tw;
  const images = new Float32Array(keep.length * inSize);
  const values = new Float32Array(keep.length * outSize);
  for (let k = 0; k < keep.length; k++) {
    const file = inputs[keep[k]!]!;
    imageToChw(await readImage(file), channels, h, w, images, k * inSize);
    const target = await readImage(targets.get(stem(file))!);
    if (masks) maskToPlane(target, masks, th, tw, values, k * outSize);
    else imageToChw(target, tc, th, tw, values, k * outSize);
  }
  return createDataset({
    name: basename(dir),
    images,
    labels: new Int32Array(keep.length),
    shape: [channels, h, w],
    numClasses: 1,
    targets: values,
    targetShape: [tc, th, tw],
    masks,
  });
}
