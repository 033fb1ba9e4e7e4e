/**
 * End to end in headless Chromium: build the browser bundles and the example page, serve them,
 * load the embedded model, add images through the file inputs of the drop zones, adapt on the
 * sample digits with QuadraNet V2 on onnxruntime-web (WebAssembly), and check what the page reports.
 *
 * Needs Debian's Chromium at /usr/bin/chromium (or CHROMIUM=path); it fails, never skips, without
 * it. The screenshot goes to a temp dir; QUADRANET_UPDATE_DOCS_IMG=1 also writes it to
 * docs/img/browser-example.png.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { chromium } from 'playwright-core';
import type { DemoState } from '../examples/browser/state.js';
import { build } from 'esbuild';
import { buildBrowser, noNodeBuiltins, SAMPLES } from '../scripts/build-browser.js';
import { serveStatic } from '../scripts/serve-static.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Digit `k` of class `c` from the samples sheet as a PNG. `paper` makes it a photo-like picture:
 * a dark digit on a light background, wider than tall (the page must invert and letterbox it).
 */
function cropDigit(sheet: PNG, c: number, k: number, paper: boolean): Buffer {
  const s = SAMPLES.size;
  const [w, h, ox, oy] = paper ? [2 * s, s + 12, s / 2, 6] : [s, s, 0, 0];
  const png = new PNG({ width: w, height: h });
  png.data.fill(paper ? 255 : 0);
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s; x++) {
      const v = sheet.data[((c * s + y) * sheet.width + k * s + x) * 4]!;
      const o = ((y + oy) * w + x + ox) * 4;
      png.data[o] = png.data[o + 1] = png.data[o + 2] = paper ? 255 - v : v;
    }
  return PNG.sync.write(png);
}

test('the browser build refuses Node built-ins', async () => {
  // src/io/formats/safetensors.ts reads files with node:fs/promises: it must never reach the bundle.
  await assert.rejects(
    build({
      entryPoints: [join(ROOT, 'src/io/formats/safetensors.ts')],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      logLevel: 'silent',
      plugins: [noNodeBuiltins],
    }),
    /Node built-in 'node:fs\/promises' imported by src\/io\/formats\/safetensors\.ts/,
  );
});

test(
  'the browser example adapts the embedded model in headless Chromium',
  // A guard against a hung browser, not a speed requirement: far above a slow, loaded machine.
  { timeout: 20 * 60_000 },
  async (t) => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: the browser test needs Chromium; install it with \`apt-get install -y chromium\` (or set CHROMIUM=/path/to/chromium)`,
    );
    const t0 = performance.now();
    const dir = await mkdtemp(join(tmpdir(), 'quadranet-browser-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const site = join(dir, 'site');
    const built = await buildBrowser({ outDir: site });
    assert.ok(built.sizes['quadranet.mjs']! < 1_000_000, 'the library bundle stays small');
    const server = await serveStatic(site);
    t.after(() => server.close());
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    t.after(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 960, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    // Nothing but the local server may be reached: the page must work offline.
    await page.route('**/*', (route) =>
      route.request().url().startsWith(server.url) ? route.continue() : route.abort(),
    );

    await page.goto(server.url);
    // The page runs in the browser: read it with expressions (Node code has no DOM types).
    const demoState = () => page.evaluate('window.quadranetDemo') as Promise<DemoState>;
    // No deadline per wait (0): how long loading or training takes depends on the machine's
    // load; a page that never gets there is caught by the test's hang guard.
    const until = (expr: string) => page.waitForFunction(expr, null, { timeout: 0 });
    await until("window.quadranetDemo?.state !== 'loading'");
    const loaded = await demoState();
    assert.equal(
      loaded.state,
      'ready',
      `page did not load the model: ${loaded.error ?? ''} ${errors.join('; ')}`,
    );
    assert.deepEqual(loaded.model?.shape, [1, 28, 28]);
    assert.equal(loaded.model?.classes, 10);
    assert.match(
      (await page.textContent('#model-status')) ?? '',
      /mnist-cnn\.onnx.*parameters.*10 classes/,
    );
    assert.equal(
      await page.evaluate('crossOriginIsolated'),
      true,
      'COOP/COEP make the page isolated',
    );

    // The drop / file-picker path: PNG files into the zone of class 3, one of them dark on light.
    const sheet = PNG.sync.read(await readFile(join(site, 'samples/digits.png')));
    const files = [0, 1].map((k) => join(dir, `three-${k}.png`));
    await writeFile(files[0]!, cropDigit(sheet, 3, 0, false));
    await writeFile(files[1]!, cropDigit(sheet, 3, 1, true));
    await page.setInputFiles('#zone-3 input[type=file]', files);
    await until('window.quadranetDemo.images === 2');
    assert.equal((await page.textContent('#zone-3 .head span'))?.trim(), '2');
    // Both files became the same kind of model input (white digit on black): the dark-on-light
    // one was inverted, judged by its border.
    const means =
      (await page.evaluate(`[...document.querySelectorAll('#zone-3 canvas')].map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let s = 0;
      for (let i = 0; i < d.length; i += 4) s += d[i];
      return s / (d.length / 4) / 255;
    })`)) as number[];
    assert.equal(means.length, 2);
    for (const m of means) assert.ok(m < 0.4, `thumbnail mean ${m}: digit should be light on dark`);
    await page.click('#clear');
    await until('window.quadranetDemo.images === 0');

    // The sample digits, then QuadraNet V2 adaptation.
    await page.click('#samples');
    await until(`window.quadranetDemo.images === ${10 * SAMPLES.perClass}`);
    await page.click('#adapt');
    await until("['done', 'error'].includes(window.quadranetDemo.state)");
    const demo = await demoState();
    assert.equal(demo.state, 'done', `adaptation failed: ${demo.error ?? ''} ${errors.join('; ')}`);
    const r = demo.result!;
    t.diagnostic(JSON.stringify(r));
    assert.ok(
      r.identity.ok && r.identity.relative <= 1e-6,
      `quadratized ≠ original: ${JSON.stringify(r.identity)}`,
    );
    assert.ok(r.epochLosses.length >= 2);
    assert.ok(r.epochLosses.at(-1)! < r.epochLosses[0]!, `loss did not fall: ${r.epochLosses}`);
    assert.ok(
      r.after.adaptAccuracy > r.before.adaptAccuracy,
      'adaptation fits the adaptation images',
    );
    assert.equal(r.images.adapt + r.images.heldOut, 10 * SAMPLES.perClass);
    for (const v of [r.before.heldOutAccuracy, r.after.heldOutAccuracy])
      assert.ok(v !== null && v >= 0 && v <= 1);
    assert.deepEqual(
      r.latency.map((l) => l.batch),
      [1, 32],
    );
    for (const l of r.latency) assert.ok(l.originalP50Ms > 0 && l.adaptedP50Ms > 0);
    const rows = await page.$$eval('#results-table tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
    );
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.match(row[1]!, /^\d+\.\d%$/);
      assert.match(row[2]!, /^\d+\.\d%$/);
      assert.match(row[3]!, /^\d+\.\d+ ms$/);
      assert.match(row[4]!, /^\d+\.\d+ ms$/);
    }
    assert.match((await page.textContent('#identity')) ?? '', /✓/);
    assert.deepEqual(errors, []);

    const shot = join(dir, 'browser-example.png');
    await page.screenshot({ path: shot, fullPage: true });
    const bytes = (await stat(shot)).size;
    assert.ok(bytes < 250_000, `screenshot is ${bytes} B`);
    if (process.env.QUADRANET_UPDATE_DOCS_IMG === '1')
      await copyFile(shot, join(ROOT, 'docs/img/browser-example.png'));
    t.diagnostic(
      `build ${(built.ms / 1000).toFixed(1)} s, total ${((performance.now() - t0) / 1000).toFixed(1)} s, ${r.steps} steps at ${r.stepMs.toFixed(0)} ms`,
    );
  },
);
