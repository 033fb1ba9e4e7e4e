/**
 * The report as a person sees it, in headless Chromium at 1280 px: no table needs horizontal
 * scrolling, no chart's axis tick labels overlap, and the recommendation comes first.
 *
 * Needs Debian's Chromium at /usr/bin/chromium (or CHROMIUM=path); it fails, never skips, without it.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { writeReport } from '../src/report/index.js';
import { writeExampleRuns } from '../scripts/report-example.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
let root = '';
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('report layout at 1280 px: tables fit, axis labels do not overlap', async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\``,
  );
  root = await mkdtemp(join(tmpdir(), 'quadranet-report-layout-'));
  const dirs = await writeExampleRuns(join(root, 'runs'));
  const out = join(root, 'report.html');
  await writeReport(dirs, out, { title: 'layout', date: new Date('2025-03-01T12:00:00Z') });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(pathToFileURL(out).href);
    await page.waitForFunction(`Object.keys(window.Chart?.instances ?? {}).length === 3`);
    // Runs in the page (plain JavaScript: the test's types have no DOM).
    const layout = (await page.evaluate(`(() => {
      const wraps = [...document.querySelectorAll('.table-wrap')].map((w) => ({
        section: w.closest('section')?.querySelector('h2')?.textContent ?? '',
        scroll: w.scrollWidth,
        client: w.clientWidth,
      }));
      // Chart.js exposes each axis's tick label items; neighbours overlapping on an axis fail.
      const overlaps = [];
      for (const c of Object.values(window.Chart.instances)) {
        for (const [id, scale] of Object.entries(c.scales)) {
          const horizontal = scale.isHorizontal();
          // Extent of each label along its axis (a rotated label takes its line height).
          const boxes = scale.getLabelItems().map((it) => {
            const lines = Array.isArray(it.label) ? it.label : [it.label];
            const width = Math.max(...lines.map((l) => scale.ctx.measureText(String(l)).width));
            const height = lines.length * it.font.size;
            const [x, y] = it.options.translation;
            const along = horizontal ? (it.options.rotation ? it.font.size : width) : height;
            return { at: horizontal ? x : y, along };
          });
          for (let i = 1; i < boxes.length; i++) {
            const gap = Math.abs(boxes[i].at - boxes[i - 1].at) - (boxes[i].along + boxes[i - 1].along) / 2;
            if (gap < 0) overlaps.push(c.canvas.id + '/' + id + ': labels ' + (i - 1) + ' and ' + i + ' overlap by ' + (-gap).toFixed(1) + ' px');
          }
        }
      }
      return { wraps, overlaps, firstSection: document.querySelector('main section h2')?.textContent };
    })()`)) as {
      wraps: Array<{ section: string; scroll: number; client: number }>;
      overlaps: string[];
      firstSection: string;
    };
    for (const w of layout.wraps) {
      assert.ok(
        w.scroll <= w.client,
        `a table in "${w.section}" needs horizontal scrolling: ${w.scroll} > ${w.client} px`,
      );
    }
    assert.ok(layout.wraps.length >= 8, `tables found: ${layout.wraps.length}`);
    assert.deepEqual(layout.overlaps, []);
    assert.equal(layout.firstSection, 'Recommendation');
  } finally {
    await browser.close();
  }
});
