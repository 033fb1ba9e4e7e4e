/**
 * Named, reproducible distribution shifts: the test conditions under which adaptation is measured
 * (a pretrained model adapted to shifted data). Each shift maps a strength in [0, 1] to a concrete
 * corruption, where 0 is the identity and 1 is severe but still recognisable, and draws any
 * randomness from a seeded `Rng`, so a (kind, strength, seed) triple names one exact dataset.
 *
 * Shifts assume pixel values in [0, 1], as the loaders produce: apply them before `normalize`.
 * Random draws are made image by image in dataset order with a fixed number of draws per image, so
 * the first k images of a shifted dataset do not depend on how many images follow them.
 */

import { Rng } from '../util/random.js';
import { withArrays, type Dataset } from './dataset.js';
import { DataError } from './errors.js';

/** The valid shift kinds, in the order error messages list them. */
export const SHIFT_KINDS = [
  'contrast',
  'gamma',
  'invert',
  'rotate',
  'elastic',
  'noise',
  'blur',
] as const;

/** A shift kind. */
export type ShiftKind = (typeof SHIFT_KINDS)[number];

/** Options of `applyShift`. */
export interface ShiftOptions {
  /**
   * The corruption:
   * - `contrast`: each image pulled towards its mean, `m + (1 - 0.9 s)(x - m)`;
   * - `gamma`: `x ** (1 + 3 s)` (darkens mid-tones, thins MNIST strokes);
   * - `invert`: `x + s (1 - 2x)`, so strength 1 maps x to 1 - x;
   * - `rotate`: counter-clockwise by `45 s` degrees about the centre, bilinear, zero fill;
   * - `elastic`: Simard et al. (2003): uniform(-1, 1) displacement fields smoothed by a Gaussian of
   *   sigma 4 px and scaled by alpha = 34 s px (both for 28 px images, scaled with image size),
   *   a fresh field per image, bilinear;
   * - `noise`: additive Gaussian with sigma 0.4 s, clipped to [0, 1], fresh per pixel;
   * - `blur`: Gaussian blur with sigma 2 s px (for 28 px images, scaled with image size).
   */
  kind: ShiftKind;
  /** The severity in [0, 1]; 0 leaves the data unchanged. */
  strength: number;
  /** Seed of the random draws (`elastic`, `noise`; the other kinds are deterministic). */
  seed: number;
}

/** True when `kind` names a shift. */
export function isShiftKind(kind: string): kind is ShiftKind {
  return (SHIFT_KINDS as readonly string[]).includes(kind);
}

/**
 * A shifted copy of `ds`: same shape, labels, classes and targets (never shifted), name
 * `<name>+<kind>@<strength>`.
 *
 * @throws DataError on an unknown kind (listing the valid ones) or a strength outside [0, 1]
 */
export function applyShift(ds: Dataset, opts: ShiftOptions): Dataset {
  const { kind, strength, seed } = opts;
  if (!isShiftKind(kind)) {
    throw new DataError(`unknown shift "${String(kind)}"; valid shifts: ${SHIFT_KINDS.join(', ')}`);
  }
  if (!(strength >= 0 && strength <= 1)) {
    throw new DataError(`shift ${kind}: strength ${strength} must be in [0, 1]`);
  }
  const [c, h, w] = ds.shape;
  // Spatial parameters are defined for 28 px MNIST and scaled so a shift means the same
  // relative distortion on larger images.
  const scale = Math.min(h, w) / 28;
  const src = ds.images;
  const out = new Float32Array(src.length);
  const rng = new Rng(seed);
  const plane = h * w;
  const imageSize = c * plane;
  switch (kind) {
    case 'contrast': {
      const f = 1 - 0.9 * strength;
      for (let i = 0; i < ds.n; i++) {
        const off = i * imageSize;
        let sum = 0;
        for (let p = off; p < off + imageSize; p++) sum += src[p]!;
        const m = sum / imageSize;
        for (let p = off; p < off + imageSize; p++) out[p] = m + f * (src[p]! - m);
      }
      break;
    }
    case 'gamma': {
      const g = 1 + 3 * strength;
      // Clamped below at 0 because a negative base with a fractional exponent is NaN.
      for (let p = 0; p < src.length; p++) out[p] = Math.max(src[p]!, 0) ** g;
      break;
    }
    case 'invert':
      for (let p = 0; p < src.length; p++) out[p] = src[p]! + strength * (1 - 2 * src[p]!);
      break;
    case 'rotate': {
      const theta = (strength * 45 * Math.PI) / 180;
      const cos = Math.cos(theta);
      const sin = Math.sin(theta);
      const cx = (w - 1) / 2;
      const cy = (h - 1) / 2;
      // One sampling map for all images: the source coordinates of every output pixel.
      const sx = new Float64Array(plane);
      const sy = new Float64Array(plane);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const dx = x - cx;
          const dy = y - cy;
          // Inverse rotation in y-down image coordinates, so the picture turns counter-clockwise.
          sx[y * w + x] = cx + cos * dx - sin * dy;
          sy[y * w + x] = cy + sin * dx + cos * dy;
        }
      }
      for (let q = 0; q < ds.n * c; q++) remap(src, out, q * plane, w, h, sx, sy);
      break;
    }
    case 'elastic': {
      const alpha = 34 * strength * scale;
      const kernel = gaussianKernel(4 * scale);
      const fx = new Float64Array(plane);
      const fy = new Float64Array(plane);
      const tmp = new Float64Array(plane);
      const sx = new Float64Array(plane);
      const sy = new Float64Array(plane);
      for (let i = 0; i < ds.n; i++) {
        for (let p = 0; p < plane; p++) fx[p] = rng.uniform(-1, 1);
        for (let p = 0; p < plane; p++) fy[p] = rng.uniform(-1, 1);
        blur2d(fx, fx, tmp, w, h, kernel);
        blur2d(fy, fy, tmp, w, h, kernel);
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            sx[y * w + x] = x + alpha * fx[y * w + x]!;
            sy[y * w + x] = y + alpha * fy[y * w + x]!;
          }
        }
        // The same field moves every channel, so colours stay aligned.
        for (let ch = 0; ch < c; ch++) remap(src, out, (i * c + ch) * plane, w, h, sx, sy);
      }
      break;
    }
    case 'noise': {
      const sigma = 0.4 * strength;
      for (let p = 0; p < src.length; p++) {
        out[p] = Math.min(Math.max(src[p]! + sigma * rng.normal(), 0), 1);
      }
      break;
    }
    case 'blur': {
      const kernel = gaussianKernel(2 * strength * scale);
      const a = new Float64Array(plane);
      const tmp = new Float64Array(plane);
      for (let q = 0; q < ds.n * c; q++) {
        const off = q * plane;
        for (let p = 0; p < plane; p++) a[p] = src[off + p]!;
        blur2d(a, a, tmp, w, h, kernel);
        for (let p = 0; p < plane; p++) out[off + p] = a[p]!;
      }
      break;
    }
  }
  // Only the inputs are corrupted: targets (e.g. the clean images of a restoration task) are copied.
  return { ...withArrays(ds, out, ds.labels.slice()), name: `${ds.name}+${kind}@${strength}` };
}

/**
 * A normalised 1-D Gaussian kernel truncated at 3 sigma; `[1]` (the identity) for a negligible
 * sigma, so strength 0 is exactly the identity.
 */
export function gaussianKernel(sigma: number): Float64Array {
  if (sigma < 1e-3) return Float64Array.of(1);
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-(i * i) / (2 * sigma * sigma));
    k[i + radius] = v;
    sum += v;
  }
  for (let i = 0; i < k.length; i++) k[i]! /= sum;
  return k;
}

/**
 * Separable 2-D convolution of an h×w plane with `kernel` along both axes, edges replicated (so a
 * constant image stays constant). `src` and `dst` may be the same array; `tmp` is scratch.
 */
function blur2d(
  src: Float64Array,
  dst: Float64Array,
  tmp: Float64Array,
  w: number,
  h: number,
  kernel: Float64Array,
): void {
  const r = (kernel.length - 1) / 2;
  if (r === 0) {
    if (dst !== src) dst.set(src);
    return;
  }
  // Each row (then column) is copied into a padded line with replicated ends, so the inner loop
  // needs no bounds checks; elastic distortion blurs two fields per image, which makes this hot.
  const line = new Float64Array(Math.max(w, h) + 2 * r);
  for (let y = 0; y < h; y++) {
    for (let i = 0; i < w + 2 * r; i++) line[i] = src[y * w + Math.min(Math.max(i - r, 0), w - 1)]!;
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = 0; k < kernel.length; k++) s += kernel[k]! * line[x + k]!;
      tmp[y * w + x] = s;
    }
  }
  for (let x = 0; x < w; x++) {
    for (let i = 0; i < h + 2 * r; i++) line[i] = tmp[Math.min(Math.max(i - r, 0), h - 1) * w + x]!;
    for (let y = 0; y < h; y++) {
      let s = 0;
      for (let k = 0; k < kernel.length; k++) s += kernel[k]! * line[y + k]!;
      dst[y * w + x] = s;
    }
  }
}

/**
 * Bilinear resampling of one h×w plane at `off`: output pixel p takes the source value at
 * (sx[p], sy[p]); source pixels outside the image count as 0 (background).
 */
function remap(
  src: Float32Array,
  dst: Float32Array,
  off: number,
  w: number,
  h: number,
  sx: Float64Array,
  sy: Float64Array,
): void {
  const at = (x: number, y: number): number =>
    x >= 0 && x < w && y >= 0 && y < h ? src[off + y * w + x]! : 0;
  for (let p = 0; p < w * h; p++) {
    const x = sx[p]!;
    const y = sy[p]!;
    const x0 = Math.floor(x);
    const y0 = Math.floor(y);
    const ax = x - x0;
    const ay = y - y0;
    dst[off + p] =
      (1 - ay) * ((1 - ax) * at(x0, y0) + ax * at(x0 + 1, y0)) +
      ay * ((1 - ax) * at(x0, y0 + 1) + ax * at(x0 + 1, y0 + 1));
  }
}
