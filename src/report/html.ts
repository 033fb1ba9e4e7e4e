/**
 * Renders a {@link ReportSummary} as ONE self-contained HTML file: the installed chart.js UMD
 * build is inlined in a <script> tag, the data is embedded as JSON, the CSS is inline and uses
 * system fonts only, so the file opens offline and can be mailed or archived as is. Every user
 * string (labels, paths, data specs, commands) is HTML-escaped; the tables carry every number, so
 * the report still reads without JavaScript.
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { QuadranetFileError } from '../io/errors.js';
import { fmtUsd } from './format.js';
import type { ReportSummary } from './summary.js';
import { CLIENT_JS } from './html/client-bundle.js';
import { CSS } from './html/style.js';
import {
  BASE_COLOR,
  METHOD_COLORS,
  e,
  jsonForScript,
  recommendationSection,
} from './html/cells.js';
import {
  envTableHtml,
  groupTableHtml,
  latencyTableHtml,
  roiTableHtml,
  runsTableHtml,
  savingTableHtml,
  sizeTableHtml,
  spentTableHtml,
  tilesHtml,
  verdictsHtml,
  warningsHtml,
} from './html/sections.js';

export { escapeHtml, jsonForScript, METHOD_COLORS } from './html/cells.js';

/** Makes JavaScript source safe to inline in a <script> element. */
function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/**
 * Reads the UMD build of the installed chart.js package (resolved from this module, so it works
 * from src/ under tsx and from dist/). Throws a one-line error when the package is missing.
 */
export async function loadChartJs(): Promise<string> {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('chart.js');
  } catch (err) {
    throw new QuadranetFileError(
      'chart.js',
      'the chart.js package is not installed; reinstall quadranet (npm install) to write HTML reports',
      { cause: err },
    );
  }
  // The package's exports hide dist/ from require.resolve; the main entry lives in dist/.
  const dist = dirname(entry);
  for (const name of ['chart.umd.min.js', 'chart.umd.js']) {
    try {
      return await readFile(join(dist, name), 'utf8');
    } catch {
      // try the next build
    }
  }
  throw new QuadranetFileError(
    dist,
    `no UMD build of chart.js (chart.umd.min.js or chart.umd.js) in ${dist}; reinstall chart.js`,
  );
}

export function renderHtml(s: ReportSummary, chartJs: string): string {
  const runs = s.runs;
  const date = s.generated.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const threads = [...new Set(s.envs.map((v) => v.threads))];
  const cpus = [...new Set(s.envs.map((v) => v.cpu))];
  const versions = [...new Set(s.envs.map((v) => v.quadranet))];

  const verdicts = verdictsHtml(s);
  const tiles = tilesHtml(s);
  const warnings = warningsHtml(s);
  const runsTable = runsTableHtml(s);
  const groupTable = groupTableHtml(s);
  const spentTable = spentTableHtml(s);
  const savingTable = savingTableHtml(s);
  const latencyTable = latencyTableHtml(s);
  const sizeTable = sizeTableHtml(s);
  const roiTable = roiTableHtml(s);
  const envTable = envTableHtml(s);

  const payload = jsonForScript({ summary: s, colors: METHOD_COLORS, baseColor: BASE_COLOR });

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="quadranet ${e(versions.join(', '))}">
<title>${e(s.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>${e(s.title)}</h1>
<p class="meta">Generated ${e(date)} · ${runs.length} run${runs.length === 1 ? '' : 's'} · ${e(
    cpus.join(' / '),
  )}, ${e(threads.join('/'))} thread${threads.length === 1 && threads[0] === 1 ? '' : 's'} · quadranet ${e(
    versions.join(', '),
  )}</p>
</header>

${recommendationSection(s)}
<section class="card verdict">
<h2>Verdict</h2>
${tiles.join('\n')}
${tiles.length > 0 ? '<h3>Run by run</h3>' : ''}
${verdicts}
<p class="note">Compute is process CPU time (all threads) spent training on the machine(s) listed below; it excludes pretraining the original model. Cost assumes ${e(
    fmtUsd(s.pricePerHour),
  )} per CPU-hour.</p>
</section>
${warnings}
<section class="card">
<h2>Accuracy vs training compute</h2>
<div class="toolbar">
<span>x-axis</span>
<span class="seg"><button type="button" data-curve-x="cpuSeconds">CPU-seconds</button><button type="button" data-curve-x="samples">samples seen</button></span>
<span class="seg"><button type="button" data-curve-scale="linear">linear</button><button type="button" data-curve-scale="log">log</button></span>
</div>
<div class="chart chart-tall"><canvas id="chart-curve" role="img" aria-label="Accuracy against cumulative training compute for every run"></canvas></div>
<p class="note">Validation accuracy after each epoch (training accuracy where a run has no validation split). The dashed line is the from-scratch model's final accuracy: where a curve crosses it is the compute that run needed to match training from scratch.</p>
<noscript><p class="note">JavaScript is off: the charts are not drawn, but every number is in the tables.</p></noscript>
</section>

<div class="grid">
<section class="card">
<h2>Final accuracy by method</h2>
<div class="chart"><canvas id="chart-final" role="img" aria-label="Final test accuracy of each configuration, mean and standard deviation over seeds"></canvas></div>
<p class="note">Test accuracy (eval.json); mean ± sample standard deviation over seeds where a configuration has several runs. <span id="final-axis-note"></span></p>
</section>
<section class="card">
<h2>Training compute</h2>
<div class="chart"><canvas id="chart-compute" role="img" aria-label="Training compute of each run and compute needed to reach the from-scratch accuracy"></canvas></div>
<p class="note">Light bars: everything a run spent. Solid bars: the compute at which it first matched the from-scratch accuracy (missing when it never did).</p>
</section>
</div>

<section class="card">
<h2>Runs</h2>
${runsTable}
</section>

<section class="card">
<h2>Final accuracy</h2>
${groupTable}
</section>

<section class="card">
<h2>Compute saved vs training from scratch</h2>
${savingTable}
<p class="note">Time to target: CPU-seconds at the first epoch whose curve accuracy is at least the from-scratch run's final curve accuracy (resolution: one epoch). Compute saved = 1 − time to target ÷ baseline compute; whole run saved uses everything the run spent.</p>
${spentTable}
</section>

<section class="card">
<h2>Inference cost</h2>
${latencyTable}
${sizeTable}
<p class="note">The quadratic term cannot be merged into the original weights, so its inference overhead is real; ratios above 1 mean slower than the original model.</p>
</section>

${
  s.roi.length > 0
    ? `<section class="card">
<h2>Return on investment</h2>
${roiTable}
<p class="note">Gains are in accuracy points of test accuracy against the original (pretrained) model and against the mean of the fine-tuning runs on the same data. Cost per point = training cost ÷ points gained over the original.</p>
</section>`
    : ''
}

<section class="card">
<h2>Machine and definitions</h2>
${envTable}
<h3>How the numbers are computed</h3>
<dl class="defs">
<dt>CPU-seconds</dt><dd>Process CPU time (user + system, summed over all ${e(
    threads.join('/'),
  )} thread(s)) spent training on ${e(
    cpus.join(' / '),
  )}; evaluation excluded. A run keeping N cores busy for an hour counts N CPU-hours.</dd>
<dt>Cost</dt><dd>CPU-seconds ÷ 3600 × ${e(fmtUsd(s.pricePerHour))} per CPU-hour. Pretraining the original model is not counted.</dd>
<dt>Baseline</dt><dd>${e(
    s.baselineMethod,
  )} runs on the same data (falling back to scratch); with several seeds their mean final accuracy and mean compute.</dd>
<dt>Final accuracy</dt><dd>Test accuracy from eval.json; the last validation (or training) accuracy when a run has no eval.json.</dd>
<dt>Overheads</dt><dd>Parameters and FLOPs of the adapted model relative to the original; latency ratios at equal batch size on the same machine.</dd>
</dl>
</section>

<footer>quadranet report · self-contained file, charts by Chart.js (MIT) embedded</footer>
</main>
<script type="application/json" id="report-data">${payload}</script>
<script>${scriptSafe(chartJs)}</script>
<script>${CLIENT_JS}</script>
</body>
</html>
`;
}
