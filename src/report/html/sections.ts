/** The report's sections, one function each (renderHtml assembles them). */

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
} from '../format.js';
import { latencyOf } from '../recommend.js';
import type { ReportSummary } from '../summary.js';

import { BASE_COLOR, e, num, runCell, statusBadge, swatch, table, th, txt } from './cells.js';
/** The verdict list: one sentence per run that started from a pretrained model. */
export function verdictsHtml(s: ReportSummary): string {
  const verdicts =
    s.roi.length > 0
      ? `<ul>${s.roi.map((r) => `<li>${swatch(r.method)}${e(r.verdict)}</li>`).join('')}</ul>`
      : '<p>No run started from a pretrained model, so there is nothing to compare against training from scratch.</p>';
  return verdicts;
}

/** The headline tiles of each quadratic (else pretrained-start) configuration: accuracy, compute saved, cost, inference. */
export function tilesHtml(s: ReportSummary): string[] {
  const runs = s.runs;
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
  return tiles;
}

/** What to check before deciding (small splits, mixed machines...), when there is anything. */
export function warningsHtml(s: ReportSummary): string {
  const warnings =
    s.warnings.length > 0
      ? `<section class="card warnings"><h2>Check before deciding</h2><ul>${s.warnings
          .map((w) => `<li>${e(w)}</li>`)
          .join('')}</ul></section>`
      : '';
  return warnings;
}

/** Every run: method, data, accuracy, compute and status. */
export function runsTableHtml(s: ReportSummary): string {
  const runs = s.runs;
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
  return runsTable;
}

/** Seeds grouped per configuration: mean and spread of the final accuracy. */
export function groupTableHtml(s: ReportSummary): string {
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
  return groupTable;
}

/** Compute spent per run: CPU-seconds, samples, wall time and cost. */
export function spentTableHtml(s: ReportSummary): string {
  const runs = s.runs;
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
  return spentTable;
}

/** Compute saved against training from scratch, per run. */
export function savingTableHtml(s: ReportSummary): string {
  const runs = s.runs;
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
  return savingTable;
}

/** Inference latency per batch size against the base model. */
export function latencyTableHtml(s: ReportSummary): string {
  const runs = s.runs;
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
  return latencyTable;
}

/** Parameters and FLOPs against the base model. */
export function sizeTableHtml(s: ReportSummary): string {
  const runs = s.runs;
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
  return sizeTable;
}

/** The ROI view: accuracy gained and compute saved per configuration. */
export function roiTableHtml(s: ReportSummary): string {
  const runs = s.runs;
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
  return roiTable;
}

/** The machines the runs trained on. */
export function envTableHtml(s: ReportSummary): string {
  const runs = s.runs;
  const envTable = table(
    th(['CPU', ['Threads', 'num'], 'Node', 'ONNX Runtime', 'quadranet', 'Runs']),
    s.envs.map(
      (v) =>
        `<tr>${txt(v.cpu)}${num(String(v.threads))}${txt(v.node)}${txt(v.onnxruntime)}${txt(
          v.quadranet,
        )}<td class="path">${e(v.runs.map((i) => runs[i]!.name).join(', '))}</td></tr>`,
    ),
  );
  return envTable;
}
