/**
 * Decoding and shaping one image: PNG and JPEG by maintained libraries (`pngjs`, `jpeg-js`), with
 * the declared size checked before any allocation (decompression bombs), bilinear resizing and
 * the model's channel layout.
 */

import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { DataError, reason } from './errors.js';

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
