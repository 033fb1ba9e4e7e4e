/**
 * Renders a report HTML to a PNG with headless Chromium, to check the layout and to make the
 * picture in the docs.
 *
 *   npx tsx scripts/screenshot-report.ts REPORT.html -o OUT.png [--width 1280] [--height 2400]
 *   npx tsx scripts/screenshot-report.ts --example -o docs/img/report-example.png [--keep DIR]
 *
 * `--example` first writes synthetic run directories (a plausible MNIST-shift study: quadratic
 * adaptation over three seeds, a linear adapter, fine-tuning, and both from-scratch baselines) and
 * their report into a temp directory (or DIR with --keep), then screenshots that report. The
 * browser is Debian's /usr/bin/chromium (override with CHROMIUM=path), run with networking and
 * background services off, a throw-away profile, and scripts given a few seconds of virtual time
 * so the charts are drawn before the capture.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeReport } from '../src/report/index.js';
import { writeExampleRuns } from './report-example.js';

interface Args {
  html?: string;
  out: string;
  width: number;
  height: number;
  example: boolean;
  keep?: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { out: 'report.png', width: 1280, height: 2400, example: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    if (k === '-o' || k === '--out') a.out = next();
    else if (k === '--width') a.width = Number(next());
    else if (k === '--height') a.height = Number(next());
    else if (k === '--example') a.example = true;
    else if (k === '--keep') a.keep = next();
    else if (k.startsWith('-')) throw new Error(`unknown option ${k}`);
    else a.html = k;
  }
  if (!a.example && !a.html) throw new Error('give a report HTML file, or --example');
  if (!(a.width > 0 && a.height > 0)) throw new Error('--width and --height must be positive');
  return a;
}

// ---- Screenshot --------------------------------------------------------------------------------

/** Screenshots `html` into `png` with headless Chromium. */
export async function screenshot(
  html: string,
  png: string,
  width: number,
  height: number,
): Promise<void> {
  const chromium = process.env['CHROMIUM'] ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    throw new Error(`${chromium} not found; install Debian's chromium package or set CHROMIUM`);
  }
  const profile = await mkdtemp(join(tmpdir(), 'quadranet-chromium-'));
  try {
    const r = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        '--force-device-scale-factor=1',
        '--virtual-time-budget=5000',
        `--user-data-dir=${profile}`,
        `--window-size=${width},${height}`,
        `--screenshot=${resolve(png)}`,
        pathToFileURL(resolve(html)).href,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (r.error) throw r.error;
    if (r.status !== 0 || !existsSync(png)) {
      throw new Error(
        `chromium failed (exit ${r.status}): ${(r.stderr || '').trim().slice(-2000)}`,
      );
    }
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let html = args.html;
  let temp: string | undefined;
  if (args.example) {
    const root = resolve(
      args.keep ?? (temp = await mkdtemp(join(tmpdir(), 'quadranet-report-example-'))),
    );
    await mkdir(root, { recursive: true });
    // Relative run paths, as a user would type them, so the report shows no temp directory.
    const cwd = process.cwd();
    process.chdir(root);
    const dirs = await writeExampleRuns('runs');
    html = join(root, 'report.html');
    const s = await writeReport(dirs, 'report.html', {
      title: 'LeNet-5 on MNIST with a contrast shift: adapt or retrain?',
      date: new Date('2025-03-01T12:00:00Z'),
    });
    process.chdir(cwd);
    for (const v of s.verdicts) console.log(`- ${v}`);
  }
  try {
    await mkdir(resolve(args.out, '..'), { recursive: true });
    await screenshot(html!, args.out, args.width, args.height);
    const { size } = await stat(args.out);
    console.log(`wrote ${args.out} (${(size / 1024).toFixed(0)} KiB) from ${html}`);
  } finally {
    if (temp) await rm(temp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`screenshot-report: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
