/**
 * The published package: what `npm pack` would put in the tarball (package.json `files`), and
 * that every entry point the manifest names (`main`, `types`, `bin`, the `exports` map) is in it.
 * Runs `npm pack --dry-run --json --ignore-scripts` (no build, nothing written).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface PackResult {
  name: string;
  version: string;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

type ExportTarget = string | { [condition: string]: ExportTarget };

interface Manifest {
  name: string;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, ExportTarget>;
  files?: string[];
}

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const built = existsSync(join(ROOT, 'dist/src/index.js'));
const notBuilt = built ? false : 'dist/ is not built (npm run build builds it)';

/** `./dist/x.js` → `dist/x.js` (tarball paths have no leading `./`). */
const rel = (p: string) => p.replace(/^\.\//, '');

/** Every file path an exports entry can resolve to, with its condition chain. */
function targets(t: ExportTarget, chain: string[] = []): { chain: string[]; path: string }[] {
  if (typeof t === 'string') return [{ chain, path: t }];
  return Object.entries(t).flatMap(([cond, sub]) => targets(sub, [...chain, cond]));
}

describe('npm package contents', () => {
  let paths: Set<string>;
  let pack: PackResult;
  before(() => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      // The JSON goes to stdout; npm's own warnings (e.g. about .npmrc) go to stderr.
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `npm pack failed: ${r.stderr}`);
    const parsed = JSON.parse(r.stdout) as PackResult[];
    assert.equal(parsed.length, 1);
    pack = parsed[0]!;
    paths = new Set(pack.files.map((f) => f.path));
  });

  it('is the package the manifest names', () => {
    assert.equal(pack.name, 'quadranet');
    assert.ok(Array.isArray(manifest.files), 'package.json lists its files');
  });

  it('includes the README, the CLI, the embedded model and the PyTorch bridge', () => {
    for (const p of [
      'package.json',
      'README.md',
      'bin/quadranet.js',
      'models/mnist-cnn.onnx',
      'python/quadranet_torch.py',
    ])
      assert.ok(paths.has(p), `${p} is in the package`);
  });

  it('includes the compiled library and its type declarations', { skip: notBuilt }, () => {
    for (const p of [
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/cli/main.js',
      'dist/src/version.js',
    ])
      assert.ok(paths.has(p), `${p} is in the package`);
  });

  it('excludes tests, fixtures, benchmarks, dependencies, generated docs and runs', () => {
    const banned = [
      /^test\//,
      /^fixtures\//,
      /^bench\//,
      /^scripts\//,
      /(^|\/)node_modules\//,
      /^docs\/api\//,
      /^demo-run\//,
      /^runs\//,
      /^\.tmp\//,
      /^dist\/test\//,
      /^src\//,
      /\.map$/,
      /\.wasm$/,
      /\.tgz$/,
    ];
    const bad = [...paths].filter((p) => banned.some((re) => re.test(p)));
    assert.deepEqual(bad, [], `unexpected files in the package: ${bad.slice(0, 10).join(', ')}`);
    // A guard against shipping something big by accident (the onnxruntime binaries are
    // dependencies, not part of this package).
    assert.ok(
      pack.unpackedSize < 8 * 2 ** 20,
      `unpacked size ${pack.unpackedSize} bytes is over 8 MiB`,
    );
  });

  it('every entry point in the manifest is in the package', { skip: notBuilt }, () => {
    const entries: { what: string; path: string }[] = [];
    if (manifest.main) entries.push({ what: 'main', path: manifest.main });
    if (manifest.types) entries.push({ what: 'types', path: manifest.types });
    for (const [name, p] of Object.entries(manifest.bin ?? {}))
      entries.push({ what: `bin ${name}`, path: p });
    for (const [sub, t] of Object.entries(manifest.exports ?? {}))
      for (const { chain, path } of targets(t))
        entries.push({ what: `exports['${sub}'] ${chain.join('.')}`, path });
    assert.ok(entries.length > 0);
    const browserBuilt = existsSync(join(ROOT, 'dist/browser/quadranet.mjs'));
    for (const { what, path } of entries) {
      // The browser bundles are built by scripts/build-browser.ts, not by `npm run build`.
      if (/^(\.\/)?dist\/browser\//.test(path) && !browserBuilt) continue;
      assert.ok(paths.has(rel(path)), `${what} → ${path} is in the package`);
    }
  });

  it('the exports map has the Node entry and the browser entry, each with types', () => {
    const exp = manifest.exports ?? {};
    const main = targets(exp['.']!);
    assert.ok(
      main.some((t) => t.chain.includes('types') && rel(t.path) === 'dist/src/index.d.ts'),
      "exports['.'] has types",
    );
    assert.ok(
      main.some((t) => t.chain.at(-1) === 'default' && rel(t.path) === 'dist/src/index.js'),
      "exports['.'] resolves to dist/src/index.js",
    );
    const browser = targets(exp['./browser']!);
    assert.ok(
      browser.some(
        (t) => t.chain.includes('browser') && rel(t.path) === 'dist/browser/quadranet.mjs',
      ),
      "exports['./browser'] has the browser condition → dist/browser/quadranet.mjs",
    );
    assert.ok(
      browser.some((t) => t.chain.includes('types') && /\.d\.ts$/.test(t.path)),
      "exports['./browser'] has types",
    );
  });
});
