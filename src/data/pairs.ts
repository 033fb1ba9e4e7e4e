/**
 * `pairs:DIR`: image-to-image data from two folders, `DIR/input/` and `DIR/target/`, paired by
 * file name (the extension may differ): restoration, denoising or super-resolution examples a
 * user brings. Inputs are resized to the model's input; targets keep their own size (the first
 * target image's), so a target may be larger than its input (super-resolution).
 */

import { basename, extname, join } from 'node:path';
import { createDataset, type Dataset } from './dataset.js';
import { DataError } from './errors.js';
import {
  DEFAULT_TEST_FRACTION,
  type FolderOptions,
  checkLimit,
  imageFiles,
  imageToChw,
  readImage,
  sampleIndices,
  splitByClass,
  subdirs,
} from './folder.js';

/**
 * Options of `loadPairs`: those of `loadFolder` (`size` resizes the inputs only; the fraction
 * for test is of the pairs), without `name`.
 */
export type PairsOptions = Omit<FolderOptions, 'name'>;

const stem = (file: string) => basename(file, extname(file));

/**
 * Loads one split of a pairs folder: images `[channels, h, w]` from `input/`, targets
 * `[channels, th, tw]` from `target/`, pixels in [0, 1]; labels are all 0 (one class).
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
  const inSize = channels * h * w;
  const outSize = channels * th * tw;
  const images = new Float32Array(keep.length * inSize);
  const values = new Float32Array(keep.length * outSize);
  for (let k = 0; k < keep.length; k++) {
    const file = inputs[keep[k]!]!;
    imageToChw(await readImage(file), channels, h, w, images, k * inSize);
    imageToChw(await readImage(targets.get(stem(file))!), channels, th, tw, values, k * outSize);
  }
  return createDataset({
    name: basename(dir),
    images,
    labels: new Int32Array(keep.length),
    shape: [channels, h, w],
    numClasses: 1,
    targets: values,
    targetShape: [channels, th, tw],
  });
}
