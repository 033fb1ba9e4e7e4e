/**
 * Builds quadranet for the browser into a self-contained static site (default `dist/browser`):
 *
 *   quadranet.mjs          the library (src/browser.ts) on onnxruntime-web, WebAssembly
 *   quadranet.webgpu.mjs   the same on onnxruntime-web's WebGPU build (WebAssembly fallback)
 *   ort-wasm-simd-threaded[.asyncify].{mjs,wasm}   the onnxruntime-web binaries those two load
 *   app.mjs, index.html    the example page (examples/browser)
 *   models/mnist-cnn.onnx  the embedded model, the page's default
 *   samples/digits.png     rotated MNIST test digits (one row per class) for "try with sample digits"
 *
 *   npx tsx scripts/build-browser.ts [--out DIR] [--no-minify]
 *
 * The library is bundled with `platform: 'browser'` and a plugin that refuses every Node built-in
 * (`fs`, `node:path`...), naming the file that imports it: the browser bundle must not need Node.
 */

import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BuildOptions, Plugin } from 'esbuild';
import { build } from 'esbuild';
import { PNG } from 'pngjs';
import { loadMnist } from '../src/data/mnist.js';
import { applyShift } from '../src/data/shifts.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The onnxruntime-web builds the two library bundles use, and the files each one loads. */
const VARIANTS = [
  { file: 'quadranet.mjs', ort: 'onnxruntime-web/wasm', binary: 'ort-wasm-simd-threaded' },
  {
    file: 'quadranet.webgpu.mjs',
    ort: 'onnxruntime-web/webgpu',
    binary: 'ort-wasm-simd-threaded.asyncify',
  },
] as const;

/** The sample digits: MNIST test images rotated as in the demo (the embedded model's weak spot). */
export const SAMPLES = { perClass: 40, shift: 'rotate', strength: 0.7, size: 28 } as const;

/** Options of `buildBrowser`. */
export interface BuildBrowserOptions {
  /** Output directory (default `dist/browser` in the project). */
  outDir?: string;
  /** Minify the bundles (default true). */
  minify?: boolean;
}

/** What `buildBrowser` wrote. */
export interface BuildBrowserResult {
  outDir: string;
  /** Bytes of each bundle. */
  sizes: Record<string, number>;
  ms: number;
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Fails the build on any Node built-in, naming the importer. */
export const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      const bare = args.path.split('/')[0]!;
      if (!NODE_BUILTINS.has(args.path) && !NODE_BUILTINS.has(bare) && !bare.startsWith('node:'))
        return undefined;
      return {
        errors: [
          {
            text: `Node built-in '${args.path}' imported by ${args.importer.replace(ROOT + '/', '')}: the browser bundle must not use Node built-ins`,
          },
        ],
      };
    });
  },
};

/** Builds the browser bundles, the example page and its assets. */
export async function buildBrowser(o: BuildBrowserOptions = {}): Promise<BuildBrowserResult> {
  const t0 = performance.now();
  const outDir = resolve(o.outDir ?? join(ROOT, 'dist/browser'));
  const minify = o.minify ?? true;
  await rm(outDir, { recursive: true, force: true });
  await mkdir(join(outDir, 'models'), { recursive: true });
  await mkdir(join(outDir, 'samples'), { recursive: true });
  const common: BuildOptions & { metafile: true } = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    sourcemap: 'linked',
    legalComments: 'none',
    // The onnxruntime-web builds that load their .mjs/.wasm from next to the bundle.
    conditions: ['onnxruntime-web-use-extern-wasm'],
    plugins: [noNodeBuiltins],
    logLevel: 'silent',
    metafile: true,
  };
  const results = await Promise.all([
    ...VARIANTS.map((v) =>
      build({
        ...common,
        entryPoints: [join(ROOT, 'src/browser.ts')],
        outfile: join(outDir, v.file),
        alias: { 'onnxruntime-node': v.ort },
      }),
    ),
    // The page imports the library at run time (the bundle for the chosen device), types only here.
    build({
      ...common,
      entryPoints: [join(ROOT, 'examples/browser/app.ts')],
      outfile: join(outDir, 'app.mjs'),
    }),
  ]);
  const sizes: Record<string, number> = {};
  for (const r of results)
    for (const [file, meta] of Object.entries(r.metafile.outputs))
      if (file.endsWith('.mjs')) sizes[file.slice(file.lastIndexOf('/') + 1)] = meta.bytes;

  const ortDir = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/wasm'));
  await Promise.all([
    ...VARIANTS.flatMap((v) =>
      ['.mjs', '.wasm'].map((ext) =>
        copyFile(join(ortDir, v.binary + ext), join(outDir, v.binary + ext)),
      ),
    ),
    copyFile(join(ROOT, 'examples/browser/index.html'), join(outDir, 'index.html')),
    copyFile(join(ROOT, 'models/mnist-cnn.onnx'), join(outDir, 'models/mnist-cnn.onnx')),
    writeSamples(join(outDir, 'samples')),
  ]);
  return { outDir, sizes, ms: performance.now() - t0 };
}

/**
 * Writes `digits.png`: row c holds the first `perClass` MNIST test digits of class c, rotated like
 * the demo's shifted data, each 28×28 grayscale (white digit on black, as MNIST).
 */
async function writeSamples(dir: string): Promise<void> {
  const { perClass, size } = SAMPLES;
  const test = applyShift(await loadMnist({ split: 'test', limit: 2000 }), {
    kind: SAMPLES.shift,
    strength: SAMPLES.strength,
    seed: 0,
  });
  const width = perClass * size;
  const png = new PNG({ width, height: 10 * size, colorType: 0, inputColorType: 0 });
  png.data = Buffer.alloc(width * 10 * size);
  const count = new Array<number>(10).fill(0);
  const px = size * size;
  for (let i = 0; i < test.n; i++) {
    const c = test.labels[i]!;
    const k = count[c]!;
    if (k >= perClass) continue;
    count[c] = k + 1;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const v = test.images[i * px + y * size + x]!;
        png.data[(c * size + y) * width + k * size + x] = Math.round(
          Math.min(1, Math.max(0, v)) * 255,
        );
      }
  }
  if (count.some((k) => k < perClass))
    throw new Error(`not enough MNIST test digits per class: ${count.join(',')}`);
  await writeFile(
    join(dir, 'digits.png'),
    PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }),
  );
  await writeFile(
    join(dir, 'samples.json'),
    JSON.stringify({
      ...SAMPLES,
      classes: 10,
      source: `MNIST test set, first ${perClass} per class, ${SAMPLES.shift} strength ${SAMPLES.strength}`,
    }),
  );
}

async function main(argv: string[]): Promise<void> {
  const o: BuildBrowserOptions = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') o.outDir = argv[++i];
    else if (argv[i] === '--no-minify') o.minify = false;
    else
      throw new Error(`unknown option ${argv[i]}; usage: build-browser [--out DIR] [--no-minify]`);
  }
  const r = await buildBrowser(o);
  for (const [f, n] of Object.entries(r.sizes))
    console.log(`${f.padEnd(24)} ${(n / 1024).toFixed(1)} KiB`);
  const html = await readFile(join(r.outDir, 'index.html'));
  console.log(`built ${r.outDir} in ${(r.ms / 1000).toFixed(1)} s (index.html ${html.length} B)`);
  console.log('serve it with: npx tsx scripts/serve-static.ts ' + r.outDir);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`build-browser: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
