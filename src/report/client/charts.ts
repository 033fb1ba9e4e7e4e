/**
 * The report's browser code: draws the charts from the JSON embedded in the page. It runs in the
 * page, not in Node: scripts/build-report-client.ts bundles it (esbuild, ES2017, one IIFE) into
 * src/report/html/client-bundle.ts, which the HTML writer inlines; test/report-client.test.ts
 * fails when that bundle is stale. Chart.js is inlined before it as the global `Chart`.
 */

import type {
  Chart as ChartClass,
  ChartConfiguration,
  ChartDataset,
  Plugin,
  ScatterDataPoint,
  TooltipItem,
} from 'chart.js';
import type { RunMethod } from '../../io/formats/run-format.js';
import type { CurvePoint, ReportSummary, RunSummary } from '../summary-types.js';

declare const Chart: typeof ChartClass;

/** What the HTML writer embeds in `#report-data`. */
interface Payload {
  summary: ReportSummary;
  colors: Record<RunMethod, string>;
  baseColor: string;
}

/** A point of a curve dataset: x (CPU-seconds or samples), y (accuracy %), the point it shows. */
interface CurveXY extends ScatterDataPoint {
  p?: CurvePoint;
}
/** A line dataset; `isTarget` marks the from-scratch accuracy lines (no tooltips). */
type CurveDataset = ChartDataset<'line', CurveXY[]> & { isTarget?: boolean };
/** A horizontal bar dataset; `errors` are the ± of each bar (std over seeds), drawn by errorBars. */
type BarDataset = ChartDataset<'bar', (number | null)[]> & { errors?: (number | null)[] };

type CurveX = 'cpuSeconds' | 'samples';

const DASHES: number[][] = [[], [6, 3], [2, 2], [10, 3, 2, 3]];
const MARKS = ['circle', 'triangle', 'rect', 'rectRot'] as const;

function pct(v: number, digits = 1): string {
  return (v * 100).toFixed(digits) + '%';
}

function alpha(hex: string, a: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

function trim(x: number): string {
  const t = x.toPrecision(3);
  return t.indexOf('.') < 0 ? t : t.replace(/0+$/, '').replace(/\.$/, '');
}

/** 1.2k, 3.4M: axis ticks and tooltips. */
function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return trim(v / 1e9) + 'G';
  if (a >= 1e6) return trim(v / 1e6) + 'M';
  if (a >= 1e3) return trim(v / 1e3) + 'k';
  return String(Math.round(v * 100) / 100);
}

const percentTick = (v: number | string) => `${v}%`;

/** Sets the height of a chart's container (Chart.js fills it: maintainAspectRatio is off). */
function setHeight(canvas: HTMLElement, px: number): void {
  const box = canvas.parentElement;
  if (box) box.style.height = `${px}px`;
}

/** Draws each bar's value (and ± error whisker) to the right of the bar. */
const errorBars: Plugin<'bar'> = {
  id: 'errorBars',
  afterDatasetsDraw(chart) {
    const ctx = chart.ctx;
    const x = chart.scales['x']!;
    chart.data.datasets.forEach((dataset, i) => {
      const ds = dataset as BarDataset;
      const meta = chart.getDatasetMeta(i);
      if (meta.hidden) return;
      meta.data.forEach((bar, j) => {
        const v = ds.data[j];
        if (v === null || v === undefined) return;
        const err = ds.errors?.[j] ?? null;
        const right = x.getPixelForValue(v + (err ?? 0));
        ctx.save();
        if (err) {
          const left = x.getPixelForValue(v - err);
          ctx.strokeStyle = '#1f2937';
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.moveTo(left, bar.y);
          ctx.lineTo(right, bar.y);
          ctx.moveTo(left, bar.y - 6);
          ctx.lineTo(left, bar.y + 6);
          ctx.moveTo(right, bar.y - 6);
          ctx.lineTo(right, bar.y + 6);
          ctx.stroke();
        }
        ctx.fillStyle = '#1f2937';
        ctx.font = `600 12px ${Chart.defaults.font.family ?? 'sans-serif'}`;
        ctx.textAlign = 'left';
        ctx.textBaseline = 'middle';
        ctx.fillText(v.toFixed(1) + '%' + (err ? ' ± ' + err.toFixed(1) : ''), right + 6, bar.y);
        ctx.restore();
      });
    });
  },
};

/** Accuracy against training compute (or samples), with the from-scratch accuracy as a line. */
function curveChart(el: HTMLCanvasElement, p: Payload, order: Record<number, number>): void {
  const runs = p.summary.runs;
  const state: { x: CurveX; log: boolean } = { x: 'cpuSeconds', log: false };
  const maxX: Record<CurveX, number> = { cpuSeconds: 0, samples: 0 };
  const minX: Record<CurveX, number> = { cpuSeconds: Infinity, samples: Infinity };
  for (const r of runs)
    for (const pt of r.curve)
      for (const k of ['cpuSeconds', 'samples'] as const) {
        if (pt[k] > maxX[k]) maxX[k] = pt[k];
        if (pt[k] > 0 && pt[k] < minX[k]) minX[k] = pt[k];
      }
  // A log axis by default when the runs' budgets differ by more than 10x, else linear.
  const totals = runs.map((r) => r.cpuSeconds).filter((v) => v > 0);
  state.log = totals.length > 1 && Math.max(...totals) / Math.min(...totals) > 10;
  const targets: { data: string; acc: number }[] = [];
  for (const c of p.summary.computeSavings) {
    if (c.targetAccuracy === null) continue;
    const data = runs[c.run]!.data;
    if (!targets.some((t) => t.data === data)) targets.push({ data, acc: c.targetAccuracy });
  }

  const datasets = (): CurveDataset[] => {
    const k = state.x;
    const sets: CurveDataset[] = runs
      .filter((r) => r.curve.length > 0)
      .map((r: RunSummary) => {
        const c = p.colors[r.method];
        const j = order[r.index] ?? 0;
        return {
          label: r.name + (r.curveMetric === 'train' ? ' (train acc.)' : ''),
          data: r.curve.map((pt) => ({ x: pt[k], y: pt.accuracy * 100, p: pt })),
          borderColor: c,
          backgroundColor: c,
          borderDash: DASHES[j % DASHES.length],
          pointStyle: MARKS[j % MARKS.length],
          pointRadius: 3,
          pointHoverRadius: 5,
          borderWidth: 2,
          tension: 0,
        };
      });
    for (const t of targets) {
      sets.push({
        label:
          'from-scratch final' +
          (targets.length > 1 ? ' · ' + t.data : '') +
          ' (' +
          pct(t.acc) +
          ')',
        data: [
          { x: state.log ? minX[k] : 0, y: t.acc * 100 },
          { x: maxX[k], y: t.acc * 100 },
        ],
        borderColor: '#111827',
        borderDash: [4, 4],
        borderWidth: 1,
        pointRadius: 0,
        pointHoverRadius: 0,
        backgroundColor: '#111827',
        isTarget: true,
      });
    }
    return sets;
  };

  let chart: ChartClass<'line', CurveXY[]> | null = null;
  const draw = () => {
    chart?.destroy();
    const xTitle =
      state.x === 'cpuSeconds'
        ? 'training compute (CPU-seconds, cumulative)'
        : 'training samples seen (cumulative)';
    const config: ChartConfiguration<'line', CurveXY[]> = {
      type: 'line',
      data: { datasets: datasets() },
      options: {
        parsing: false,
        normalized: true,
        interaction: { mode: 'nearest', intersect: false },
        scales: {
          x: {
            type: state.log ? 'logarithmic' : 'linear',
            ...(state.log ? {} : { min: 0 }),
            title: { display: true, text: xTitle + (state.log ? ', log scale' : '') },
            ticks: {
              callback: (value) => {
                const v = Number(value);
                if (state.log) {
                  // Label only 1, 2 and 5 of each decade.
                  const m = v / Math.pow(10, Math.floor(Math.log10(v)));
                  if ([1, 2, 5].every((d) => Math.abs(m - d) > 1e-6)) return '';
                }
                return compact(v);
              },
              maxRotation: 0,
              autoSkip: true,
            },
          },
          y: {
            title: { display: true, text: 'accuracy (%)' },
            suggestedMax: 100,
            ticks: { callback: percentTick },
          },
        },
        plugins: {
          legend: { position: 'bottom', labels: { usePointStyle: false } },
          tooltip: {
            filter: (item: TooltipItem<'line'>) => !(item.dataset as CurveDataset).isTarget,
            callbacks: {
              label: (ctx: TooltipItem<'line'>) => {
                const raw = ctx.raw as CurveXY;
                const pt = raw.p!;
                return (
                  `${ctx.dataset.label}: ${Number(raw.y).toFixed(2)}% at epoch ${pt.epoch}` +
                  ` (${compact(pt.cpuSeconds)} CPU-s, ${compact(pt.samples)} samples)`
                );
              },
            },
          },
        },
      },
    };
    chart = new Chart(el, config);
  };

  const buttons = (attr: string) => Array.from(document.querySelectorAll<HTMLElement>(`[${attr}]`));
  const sync = () => {
    for (const b of buttons('data-curve-x'))
      b.setAttribute('aria-pressed', String(b.getAttribute('data-curve-x') === state.x));
    for (const b of buttons('data-curve-scale'))
      b.setAttribute(
        'aria-pressed',
        String((b.getAttribute('data-curve-scale') === 'log') === state.log),
      );
  };
  draw();
  for (const b of buttons('data-curve-x'))
    b.addEventListener('click', () => {
      state.x = b.getAttribute('data-curve-x') === 'samples' ? 'samples' : 'cpuSeconds';
      sync();
      draw();
    });
  for (const b of buttons('data-curve-scale'))
    b.addEventListener('click', () => {
      state.log = b.getAttribute('data-curve-scale') === 'log';
      sync();
      draw();
    });
  sync();
}

/** Final accuracy by method: mean ± std over seeds, beside the original model's. */
function finalChart(el: HTMLCanvasElement, p: Payload): void {
  const S = p.summary;
  const manyData =
    S.baseAccuracies.length > 1 || S.groups.some((g) => g.data !== S.groups[0]!.data);
  const labels: (string | string[])[] = [];
  const vals: number[] = [];
  const errs: (number | null)[] = [];
  const colors: string[] = [];
  const notes: string[] = [];
  for (const b of S.baseAccuracies) {
    labels.push(manyData ? ['original model', b.data] : ['original model', 'before adaptation']);
    vals.push(b.accuracy * 100);
    errs.push(null);
    colors.push(p.baseColor);
    notes.push('base model');
  }
  for (const g of S.groups) {
    if (g.meanAccuracy === null) continue;
    const sub = (g.label === g.method ? '' : g.method) + (g.n > 1 ? ' · ' + g.n + ' seeds' : '');
    labels.push(sub ? [g.name, sub.replace(/^ · /, '')] : g.name);
    vals.push(g.meanAccuracy * 100);
    errs.push(g.stdAccuracy === null ? null : g.stdAccuracy * 100);
    colors.push(p.colors[g.method]);
    notes.push(g.n > 1 ? `mean of ${g.n} seeds (${g.seeds.join(', ')})` : `seed ${g.seeds[0]}`);
  }
  const lo = Math.min(...vals.map((v, i) => v - (errs[i] ?? 0)));
  const xMin = Math.max(0, Math.floor((lo - 2) / 2) * 2);
  const axisNote = document.getElementById('final-axis-note');
  if (axisNote && xMin > 0)
    axisNote.textContent = `The axis starts at ${xMin}%, not 0, so small differences are visible.`;
  setHeight(el, Math.max(220, 50 + labels.length * 44));
  const dataset: BarDataset = {
    label: 'final accuracy',
    data: vals,
    errors: errs,
    backgroundColor: colors.map((c) => alpha(c, 0.85)),
    borderColor: colors,
    borderWidth: 1,
    barPercentage: 0.8,
    categoryPercentage: 0.9,
  };
  new Chart(el, {
    type: 'bar',
    data: { labels, datasets: [dataset] },
    options: {
      indexAxis: 'y',
      layout: { padding: { right: 86 } },
      scales: {
        x: {
          min: xMin,
          max: 100,
          title: { display: true, text: 'final test accuracy (%)' },
          ticks: { callback: percentTick },
        },
        y: { ticks: { autoSkip: false } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (ctx: TooltipItem<'bar'>) => {
              const err = errs[ctx.dataIndex];
              return (
                (ctx.raw as number).toFixed(2) +
                '%' +
                (err ? ' ± ' + err.toFixed(2) : '') +
                ` (${notes[ctx.dataIndex]})`
              );
            },
          },
        },
      },
    },
    plugins: [errorBars],
  } satisfies ChartConfiguration<'bar', (number | null)[], string | string[]>);
}

/** Training compute per run, and the compute each took to reach the from-scratch accuracy. */
function computeChart(el: HTMLCanvasElement, p: Payload): void {
  const S = p.summary;
  const byRun = new Map(S.computeSavings.map((c) => [c.run, c]));
  const ordered = S.groups.flatMap((g) => g.runs.map((i) => S.runs[i]!));
  const tta = ordered.map((r) => {
    const c = byRun.get(r.index);
    return c && c.reached ? c.timeToAccuracyCpuSeconds : null;
  });
  const sets: BarDataset[] = [
    {
      label: 'total training compute',
      data: ordered.map((r) => r.cpuSeconds),
      backgroundColor: ordered.map((r) => alpha(p.colors[r.method], 0.35)),
      borderColor: ordered.map((r) => p.colors[r.method]),
      borderWidth: 1,
      barPercentage: 0.9,
      categoryPercentage: 0.85,
    },
  ];
  if (tta.some((v) => v !== null)) {
    sets.push({
      label: 'compute to reach the from-scratch accuracy',
      data: tta,
      backgroundColor: ordered.map((r) => p.colors[r.method]),
      borderWidth: 0,
      barPercentage: 0.9,
      categoryPercentage: 0.85,
    });
  }
  setHeight(el, Math.max(220, 70 + ordered.length * (sets.length > 1 ? 40 : 30)));
  new Chart(el, {
    type: 'bar',
    data: { labels: ordered.map((r) => r.name), datasets: sets },
    options: {
      indexAxis: 'y',
      scales: {
        x: {
          beginAtZero: true,
          title: { display: true, text: 'training compute (CPU-seconds)' },
          ticks: { callback: (v) => compact(Number(v)) },
        },
      },
      plugins: {
        legend: { position: 'bottom', labels: { boxHeight: 10 } },
        tooltip: {
          callbacks: {
            label: (ctx: TooltipItem<'bar'>) =>
              `${ctx.dataset.label}: ` +
              (ctx.raw === null ? 'not reached' : `${(ctx.raw as number).toFixed(1)} CPU-s`),
          },
        },
      },
    },
  } satisfies ChartConfiguration<'bar', (number | null)[], string>);
}

function main(): void {
  const data = document.getElementById('report-data')?.textContent;
  if (!data || typeof Chart === 'undefined') return;
  const payload = JSON.parse(data) as Payload;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = '#475063';
  Chart.defaults.plugins.legend.labels.boxWidth = 14;
  Chart.defaults.plugins.legend.labels.boxHeight = 2;
  // Seeds of one configuration share the colour and differ in dash and marker.
  const order: Record<number, number> = {};
  for (const g of payload.summary.groups) g.runs.forEach((ri, k) => (order[ri] = k));
  const canvas = (id: string) => document.getElementById(id) as HTMLCanvasElement | null;
  const curve = canvas('chart-curve');
  if (curve) curveChart(curve, payload, order);
  const final = canvas('chart-final');
  if (final) finalChart(final, payload);
  const compute = canvas('chart-compute');
  if (compute) computeChart(compute, payload);
}

main();
