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
import {
  fmtAcc,
  fmtCompact,
  fmtDuration,
  fmtInt,
  fmtMs,
  fmtRatio,
  fmtShare,
  fmtSigned,
  fmtSignedShare,
  fmtUsd,
} from './format.js';
import { latencyOf, shortLatency } from './recommend.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type { ReportSummary, RunSummary } from './summary.js';
import { CLIENT_JS } from './html/client.js';
import { CSS } from './html/style.js';

/** Chart colour of each method (also used for the verdict bullets). */
export const METHOD_COLORS: Record<RunMethod, string> = {
  'quadratic-adapt': '#7c3aed',
  'linear-adapter': '#d97706',
  'fine-tune': '#2563eb',
  'head-only': '#0d9488',
  'scratch-quadratic': '#be123c',
  scratch: '#64748b',
};

/** Colour of the original (base) model's bars. */
const BASE_COLOR = '#94a3b8';

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`, no line separators). */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

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

const e = escapeHtml;

function num(text: string): string {
  return `<td class="num">${e(text)}</td>`;
}
function txt(text: string, cls = ''): string {
  return cls ? `<td class="${cls}">${e(text)}</td>` : `<td>${e(text)}</td>`;
}
function th(cells: Array<string | [string, 'num']>): string {
  return `<tr>${cells
    .map((c) => (Array.isArray(c) ? `<th class="num">${e(c[0])}</th>` : `<th>${e(c)}</th>`))
    .join('')}</tr>`;
}
function table(head: string, rows: string[], caption = ''): string {
  const cap = caption ? `<caption>${e(caption)}</caption>` : '';
  return `<div class="table-wrap"><table>${cap}<thead>${head}</thead><tbody>${rows.join('')}</tbody></table></div>`;
}
function swatch(method: RunMethod): string {
  return `<span class="swatch" style="background:${METHOD_COLORS[method]}"></span>`;
}
function runCell(r: RunSummary): string {
  return `<td class="run">${swatch(r.method)}${e(r.name)}</td>`;
}

function statusBadge(status: RunSummary['status']): string {
  return `<td><span class="badge badge-${status}">${e(status)}</span></td>`;
}

/** The recommendation: per data set, the options ranked, the choice and the plain sentences. */
function recommendationSection(s: ReportSummary): string {
  if (s.recommendations.length === 0) return '';
  const blocks = s.recommendations.map((rec) => {
    const rows = rec.options.map((o) => {
      const chosen = o === rec.choice;
      const iv = o.interval ? `${fmtAcc(o.interval[0])}–${fmtAcc(o.interval[1])}` : '—';
      const gap =
        o.gapToBestPts === 0 && o.bandPts === 0
          ? 'best'
          : `−${o.gapToBestPts.toFixed(1)} (±${o.bandPts.toFixed(1)})`;
      const inf = o.method === 'original' ? 'none' : shortLatency(o.latency);
      return `<tr${chosen ? ' class="chosen"' : ''}><td class="run">${
        o.method === 'original'
          ? `<span class="swatch" style="background:${BASE_COLOR}"></span>`
          : swatch(o.method)
      }${e(o.name)}${chosen ? ' <span class="badge badge-done">recommended</span>' : ''}</td>${num(
        fmtAcc(o.accuracy, 2),
      )}${num(iv)}<td class="num${o.withinNoiseOfBest ? '' : ' bad'}">${e(gap)}</td>${num(
        o.method === 'original' ? '0' : o.cpuSeconds.toFixed(0),
      )}${num(fmtUsd(o.costUsd))}${num(fmtSignedShare(o.flopOverheadPct))}${txt(inf, 'wrap')}</tr>`;
    });
    const head = th([
      'Option',
      ['Accuracy', 'num'],
      ['95% interval', 'num'],
      ['Gap (band), pts', 'num'],
      ['CPU-s', 'num'],
      ['Cost', 'num'],
      ['FLOPs', 'num'],
      'Inference vs original',
    ]);
    return `${s.recommendations.length > 1 ? `<h3>${e(rec.data)}</h3>` : ''}<ul class="recommend">${rec.sentences
      .map((x) => `<li>${e(x)}</li>`)
      .join('')}</ul>${table(head, rows)}`;
  });
  return `<section class="card recommendation">
<h2>Recommendation</h2>
${blocks.join('\n')}
<p class="note">Recommended: the option with the least training compute among those within the noise band of the most accurate one (95% band of the difference, from the seeds' spread and the test set's binomial error). Inference: the median of paired per-run time ratios against the original model with its 95% interval; an interval covering 1 is no measurable difference.</p>
</section>`;
}

/** Renders the report page. `chartJs` is the chart.js UMD source to inline. */
export function renderHtml(s: ReportSummary, chartJs: string): string {
  const runs = s.runs;
  const date = s.generated.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const threads = [...new Set(s.envs.map((v) => v.threads))];
  const cpus = [...new Set(s.envs.map((v) => v.cpu))];
  const versions = [...new Set(s.envs.map((v) => v.quadranet))];

  const verdicts =
    s.roi.length > 0
      ? `<ul>${s.roi.map((r) => `<li>${swatch(r.method)}${e(r.verdict)}</li>`).join('')}</ul>`
      : '<p>No run started from a pretrained model, so there is nothing to compare against training from scratch.</p>';

  // Headline tiles: the quadratic configurations (or every pretrained-start one when none).
  const quad = s.headlines.filter((h) => h.method === 'quadratic-adapt');
  const tiles = (quad.length > 0 ? quad : s.headlines).slice(0, 4).map((h) => {
    const tile = (label: string, value: string, sub: string, cls = '') =>
      `<div class="kpi${cls}"><div class="kpi-label">${e(label)}</div><div class="kpi-value">${e(
        value,
      )}</div><div class="kpi-sub">${e(sub)}</div></div>`;
    const accSub = [
      h.stdAccuracy !== null
        ? `± ${(h.stdAccuracy * 100).toFixed(2)} pts over ${h.runs} seeds`
        : '',
      h.meanGainVsBasePts !== null ? `${fmtSigned(h.meanGainVsBasePts)} pts vs the original` : '',
      h.meanGainVsFineTunePts !== null
        ? `${fmtSigned(h.meanGainVsFineTunePts)} vs fine-tuning`
        : '',
    ].filter((x) => x !== '');
    const saved =
      h.targetAccuracy === null
        ? tile('Compute saved', '—', `no from-scratch run on ${h.data}`)
        : h.meanSavingPct === null
          ? tile(
              'Compute saved',
              'not reached',
              `${h.runs > 1 ? 'no seed' : 'it'} reached the from-scratch ${fmtAcc(h.targetAccuracy)}`,
              ' kpi-bad',
            )
          : tile(
              'Compute saved',
              fmtShare(h.meanSavingPct),
              `vs training from scratch, to reach its ${fmtAcc(h.targetAccuracy)}` +
                (h.runs > 1 ? ` (${h.reached} of ${h.runs} seeds did)` : ''),
              ' kpi-good',
            );
    const group = s.groups.find((g) => g.key === h.group);
    const lat = group ? latencyOf(group.runs.map((i) => runs[i]!)) : null;
    // Only a difference the paired interval shows is called slower or faster.
    const slow =
      lat === null
        ? '—'
        : lat.difference === 'slower'
          ? `${fmtRatio(lat.ratio)} slower`
          : lat.difference === 'faster'
            ? `${fmtRatio(1 / lat.ratio)} faster`
            : lat.difference === 'none'
              ? 'no measurable difference'
              : `≈${fmtRatio(lat.ratio)}`;
    const infSub = [
      lat === null
        ? 'no latency measured'
        : lat.interval
          ? `batch ${lat.batchSize}, 95% interval ${fmtRatio(lat.interval[0])}–${fmtRatio(lat.interval[1])}`
          : `p50 at batch ${lat.batchSize}; no paired timings, not evidence of a difference`,
      h.paramOverheadPct !== null ? `${fmtSignedShare(h.paramOverheadPct)} params` : '',
      h.flopOverheadPct !== null ? `${fmtSignedShare(h.flopOverheadPct)} FLOPs` : '',
    ].filter((x) => x !== '');
    return `<h3>${swatch(h.method)}${e(h.name)} <span class="muted">· ${e(h.method)}${
      h.runs > 1 ? ` · mean of ${h.runs} seeds` : ''
    }</span></h3><div class="kpis">${tile(
      'Final test accuracy',
      fmtAcc(h.meanAccuracy),
      accSub.join(' · '),
    )}${saved}${tile(
      'Training cost',
      fmtUsd(h.meanCostUsd),
      `${h.meanCpuSeconds.toFixed(0)} CPU-s per run at ${fmtUsd(s.pricePerHour)}/CPU-hour`,
    )}${tile('Inference', slow, infSub.join(' · '))}</div>`;
  });

  const warnings =
    s.warnings.length > 0
      ? `<section class="card warnings"><h2>Check before deciding</h2><ul>${s.warnings
          .map((w) => `<li>${e(w)}</li>`)
          .join('')}</ul></section>`
      : '';

  const runsTable = table(
    th([
      'Run',
      'Method',
      'Data',
      ['Seed', 'num'],
      ['Params', 'num'],
      ['Trainable', 'num'],
      ['Epochs', 'num'],
      'Status',
      'Directory',
    ]),
    runs.map(
      (r) =>
        `<tr>${runCell(r)}${txt(r.method)}${txt(r.data)}${num(String(r.seed))}${num(
          fmtInt(r.params.total),
        )}${num(fmtInt(r.params.trainable))}${num(String(r.epochs))}${statusBadge(r.status)}<td class="path" title="${e(
          r.command,
        )}">${e(r.dir)}</td></tr>`,
    ),
  );

  const groupTable = table(
    th([
      'Configuration',
      'Method',
      ['Runs', 'num'],
      'Seeds',
      ['Mean', 'num'],
      ['± std', 'num'],
      ['Range', 'num'],
    ]),
    [
      ...s.baseAccuracies.map(
        (b) =>
          `<tr><td class="run"><span class="swatch" style="background:${BASE_COLOR}"></span>original model${
            s.baseAccuracies.length > 1 ? ` · ${e(b.data)}` : ''
          }</td>${txt('base')}${num('—')}${txt('—')}${num(fmtAcc(b.accuracy, 2))}${num('—')}${num('—')}</tr>`,
      ),
      ...s.groups.map(
        (g) =>
          `<tr><td class="run">${swatch(g.method)}${e(g.name)}</td>${txt(g.method)}${num(
            String(g.runs.length),
          )}${txt(g.seeds.join(', '))}${num(fmtAcc(g.meanAccuracy, 2))}${num(
            g.stdAccuracy === null ? '—' : `± ${(g.stdAccuracy * 100).toFixed(2)} pts`,
          )}${num(
            g.n > 1 ? `${fmtAcc(g.minAccuracy, 2)} – ${fmtAcc(g.maxAccuracy, 2)}` : '—',
          )}</tr>`,
      ),
    ],
  );

  const spentTable = table(
    th([
      'Run',
      'Method',
      ['CPU-seconds', 'num'],
      ['Wall clock', 'num'],
      ['CPU-hours', 'num'],
      ['Cost', 'num'],
      ['Samples', 'num'],
      ['Samples/s', 'num'],
    ]),
    runs.map(
      (r) =>
        `<tr>${runCell(r)}${txt(r.method)}${num(r.cpuSeconds.toFixed(1))}${num(
          fmtDuration(r.wallSeconds),
        )}${num(r.computeHours.toFixed(4))}${num(fmtUsd(r.costUsd))}${num(fmtInt(r.samples))}${num(
          r.wallSeconds > 0 ? (r.samples / r.wallSeconds).toFixed(0) : '—',
        )}</tr>`,
    ),
    'Total training compute spent by every run',
  );

  const savingTable =
    s.computeSavings.length > 0
      ? table(
          th([
            'Run',
            'Baseline',
            ['Target acc.', 'num'],
            ['Baseline CPU-s', 'num'],
            ['CPU-s to target', 'num'],
            ['Saved', 'num'],
            ['Run total CPU-s', 'num'],
            ['Saved, whole run', 'num'],
          ]),
          s.computeSavings.map((c) => {
            const r = runs[c.run]!;
            const base =
              c.baselineMethod === null
                ? 'none on this data'
                : `${c.baselineMethod}${c.baselineRuns.length > 1 ? ` (mean of ${c.baselineRuns.length})` : ''}`;
            const cpu = (x: number | null) => (x === null ? '—' : x.toFixed(1));
            const tta =
              c.baselineMethod === null
                ? '—'
                : c.reached
                  ? cpu(c.timeToAccuracyCpuSeconds)
                  : 'not reached';
            return `<tr>${runCell(r)}${txt(base)}${num(fmtAcc(c.targetAccuracy, 2))}${num(
              cpu(c.baselineCpuSeconds),
            )}<td class="num${c.reached ? '' : ' bad'}">${e(tta)}</td><td class="num${
              c.savingPct !== null && c.savingPct > 0 ? ' good' : ''
            }">${e(fmtShare(c.savingPct))}</td>${num(cpu(c.spentCpuSeconds))}${num(
              fmtShare(c.totalSavingPct),
            )}</tr>`;
          }),
          'Compute to reach the from-scratch model’s final accuracy, against what the from-scratch run spent',
        )
      : '<p>No run started from a pretrained model.</p>';

  const latencyRows: string[] = [];
  for (const r of runs) {
    for (const l of r.latency) {
      latencyRows.push(
        `<tr>${runCell(r)}${num(String(l.batchSize))}${num(fmtMs(l.model.p50Ms))}${num(
          fmtMs(l.model.p95Ms),
        )}${num(fmtMs(l.model.perSampleMs))}${num(fmtMs(l.base?.p50Ms ?? null))}${num(
          fmtMs(l.base?.p95Ms ?? null),
        )}${num(fmtMs(l.base?.perSampleMs ?? null))}${num(fmtRatio(l.p50Ratio))}${num(
          fmtRatio(l.p95Ratio),
        )}</tr>`,
      );
    }
  }
  const latencyTable =
    latencyRows.length > 0
      ? table(
          th([
            'Run',
            ['Batch', 'num'],
            ['p50', 'num'],
            ['p95', 'num'],
            ['Per sample', 'num'],
            ['Base p50', 'num'],
            ['Base p95', 'num'],
            ['Base per sample', 'num'],
            ['p50 ratio', 'num'],
            ['p95 ratio', 'num'],
          ]),
          latencyRows,
          'Inference latency per batch (p50/p95) and per sample, this model against its base model',
        )
      : '<p>No run has latency measurements (eval.json latency).</p>';

  const sizeTable = table(
    th([
      'Run',
      ['Params', 'num'],
      ['Base params', 'num'],
      ['Param overhead', 'num'],
      ['FLOPs/sample', 'num'],
      ['Base FLOPs', 'num'],
      ['FLOP overhead', 'num'],
    ]),
    runs.map(
      (r) =>
        `<tr>${runCell(r)}${num(fmtInt(r.params.total))}${num(fmtInt(r.params.base))}${num(
          fmtSignedShare(r.paramOverheadPct),
        )}${num(fmtCompact(r.flops.model))}${num(fmtCompact(r.flops.base))}${num(
          fmtSignedShare(r.flopOverheadPct),
        )}</tr>`,
    ),
    'Model size and compute per inference (multiply-add = 2 FLOPs)',
  );

  const roiTable =
    s.roi.length > 0
      ? table(
          th([
            'Run',
            ['Final acc.', 'num'],
            ['vs original', 'num'],
            ['vs fine-tune', 'num'],
            ['CPU-hours', 'num'],
            ['Cost', 'num'],
            ['Cost / pt gained', 'num'],
            ['Slowdown', 'num'],
          ]),
          s.roi.map((o) => {
            const r = runs[o.run]!;
            const gainCls = o.gainVsBasePts !== null && o.gainVsBasePts > 0 ? ' good' : '';
            return `<tr>${runCell(r)}${num(fmtAcc(o.finalAccuracy, 2))}<td class="num${gainCls}">${e(
              o.gainVsBasePts === null ? '—' : `${fmtSigned(o.gainVsBasePts, 2)} pts`,
            )}</td>${num(
              o.gainVsFineTunePts === null ? '—' : `${fmtSigned(o.gainVsFineTunePts, 2)} pts`,
            )}${num(o.computeHours.toFixed(4))}${num(fmtUsd(o.costUsd))}${num(
              fmtUsd(o.costPerPointUsd),
            )}${num(
              o.slowdown === null ? '—' : `${fmtRatio(o.slowdown)} (batch ${o.latencyBatchSize})`,
            )}</tr>`;
          }),
          `Cost at ${fmtUsd(s.pricePerHour)} per CPU-hour`,
        )
      : '';

  const envTable = table(
    th(['CPU', ['Threads', 'num'], 'Node', 'ONNX Runtime', 'quadranet', 'Runs']),
    s.envs.map(
      (v) =>
        `<tr>${txt(v.cpu)}${num(String(v.threads))}${txt(v.node)}${txt(v.onnxruntime)}${txt(
          v.quadranet,
        )}<td class="path">${e(v.runs.map((i) => runs[i]!.name).join(', '))}</td></tr>`,
    ),
  );

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
