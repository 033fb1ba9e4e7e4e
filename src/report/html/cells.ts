/** The report's HTML building blocks: colours, escaping, table cells and the recommendation section. */

import { fmtAcc, fmtSignedShare, fmtUsd } from '../format.js';
import { shortLatency } from '../recommend.js';
import type { RunMethod } from '../../io/formats/run-format.js';
import type { ReportSummary, RunSummary } from '../summary.js';

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
export const BASE_COLOR = '#94a3b8';

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

export const e = escapeHtml;

export function num(text: string): string {
  return `<td class="num">${e(text)}</td>`;
}
export function txt(text: string, cls = ''): string {
  return cls ? `<td class="${cls}">${e(text)}</td>` : `<td>${e(text)}</td>`;
}
export function th(cells: Array<string | [string, 'num']>): string {
  return `<tr>${cells
    .map((c) => (Array.isArray(c) ? `<th class="num">${e(c[0])}</th>` : `<th>${e(c)}</th>`))
    .join('')}</tr>`;
}
export function table(head: string, rows: string[], caption = ''): string {
  const cap = caption ? `<caption>${e(caption)}</caption>` : '';
  return `<div class="table-wrap"><table>${cap}<thead>${head}</thead><tbody>${rows.join('')}</tbody></table></div>`;
}
export function swatch(method: RunMethod): string {
  return `<span class="swatch" style="background:${METHOD_COLORS[method]}"></span>`;
}
export function runCell(r: RunSummary): string {
  return `<td class="run">${swatch(r.method)}${e(r.name)}</td>`;
}

export function statusBadge(status: RunSummary['status']): string {
  return `<td><span class="badge badge-${status}">${e(status)}</span></td>`;
}

/** The recommendation: per data set, the options ranked, the choice and the plain sentences. */
export function recommendationSection(s: ReportSummary): string {
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
