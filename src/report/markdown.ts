/**
 * The report as markdown: the same numbers as the HTML, as tables, for pull requests, notebooks
 * and terminals. User strings are escaped so they cannot break a table.
 */

import {
  fmtAcc,
  fmtCpu,
  fmtDuration,
  fmtInt,
  fmtMs,
  fmtRatio,
  fmtShare,
  fmtSigned,
  fmtSignedShare,
  fmtUsd,
} from './format.js';
import { shortLatency } from './recommend.js';
import type { ReportSummary } from './summary.js';
import { mdTable } from '../util/markdown.js';

/** The report's tables name their alignment first (its call sites read better that way). */
const reportTable = (head: string[], align: Array<'l' | 'r'>, rows: string[][]) =>
  mdTable(head, rows, align);

/** Escapes text for a markdown table cell (pipes, line breaks, HTML-significant characters). */
export function escapeMd(s: string): string {
  return s
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([*_`[\]])/g, '\\$1');
}

/** Renders the report summary as a markdown document. */
export function renderMarkdown(s: ReportSummary): string {
  return [
    ...headerSection(s),
    ...recommendationSection(s),
    ...verdictSection(s),
    ...runsSection(s),
    ...finalAccuracySection(s),
    ...computeSavedSection(s),
    ...computeSpentSection(s),
    ...inferenceSection(s),
    ...roiSection(s),
    ...machineSection(s),
  ].join('\n');
}

/** Title and what the report covers. */
function headerSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const runs = s.runs;
  const out: string[] = [];
  out.push(`# ${m(s.title)}`, '');
  const cpus = [...new Set(s.envs.map((v) => v.cpu))].join(' / ');
  const threads = [...new Set(s.envs.map((v) => v.threads))].join('/');
  out.push(
    `Generated ${s.generated} · ${runs.length} run(s) · ${m(cpus)}, ${threads} thread(s) · ` +
      `cost at ${fmtUsd(s.pricePerHour)} per CPU-hour.`,
    '',
  );

  return out;
}

/** The recommendation per data set: the sentences and the options compared. */
function recommendationSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const out: string[] = [];
  if (s.recommendations.length > 0) {
    out.push('## Recommendation', '');
    for (const rec of s.recommendations) {
      if (s.recommendations.length > 1) out.push(`### ${m(rec.data)}`, '');
      for (const x of rec.sentences) out.push(`- ${m(x)}`);
      out.push('');
      out.push(
        reportTable(
          [
            'Option',
            'Accuracy',
            '95% interval',
            'Gap (band), pts',
            'CPU-s',
            'Cost',
            'FLOPs',
            'Inference vs original',
          ],
          ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
          rec.options.map((o) => [
            m(o.name) + (o === rec.choice ? ' (recommended)' : ''),
            fmtAcc(o.accuracy, 2),
            o.interval ? `${fmtAcc(o.interval[0])}–${fmtAcc(o.interval[1])}` : '—',
            o.gapToBestPts === 0 && o.bandPts === 0
              ? 'best'
              : `−${o.gapToBestPts.toFixed(1)} (±${o.bandPts.toFixed(1)})`,
            o.method === 'original' ? '0' : o.cpuSeconds.toFixed(0),
            fmtUsd(o.costUsd),
            fmtSignedShare(o.flopOverheadPct),
            m(o.method === 'original' ? 'none' : shortLatency(o.latency)),
          ]),
        ),
        '',
      );
    }
  }
  return out;
}

/** One verdict per pretrained-start run, then what to check before deciding. */
function verdictSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const out: string[] = [];
  out.push('## Verdict', '');
  if (s.verdicts.length > 0) for (const v of s.verdicts) out.push(`- ${m(v)}`);
  else out.push('No run started from a pretrained model.');
  out.push('');
  if (s.warnings.length > 0) {
    out.push('### Check before deciding', '');
    for (const w of s.warnings) out.push(`- ${m(w)}`);
    out.push('');
  }
  return out;
}

/** Every run: method, data, seed, parameters, epochs, status. */
function runsSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const runs = s.runs;
  const out: string[] = [];
  out.push('## Runs', '');
  out.push(
    reportTable(
      ['Run', 'Method', 'Data', 'Seed', 'Params', 'Trainable', 'Epochs', 'Status', 'Directory'],
      ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'l', 'l'],
      runs.map((r) => [
        m(r.name),
        r.method,
        m(r.data),
        String(r.seed),
        fmtInt(r.params.total),
        fmtInt(r.params.trainable),
        String(r.epochs),
        r.status,
        m(r.dir),
      ]),
    ),
    '',
  );
  return out;
}

/** Final accuracy per configuration (mean, spread and range over seeds). */
function finalAccuracySection(s: ReportSummary): string[] {
  const m = escapeMd;
  const out: string[] = [];
  out.push('## Final accuracy', '');
  out.push(
    reportTable(
      ['Configuration', 'Method', 'Runs', 'Seeds', 'Mean', '± std (pts)', 'Range'],
      ['l', 'l', 'r', 'l', 'r', 'r', 'r'],
      [
        ...s.baseAccuracies.map((b) => [
          s.baseAccuracies.length > 1 ? `original model · ${m(b.data)}` : 'original model',
          'base',
          '—',
          '—',
          fmtAcc(b.accuracy, 2),
          '—',
          '—',
        ]),
        ...s.groups.map((g) => [
          m(g.name),
          g.method,
          String(g.runs.length),
          g.seeds.join(', '),
          fmtAcc(g.meanAccuracy, 2),
          g.stdAccuracy === null ? '—' : `± ${(g.stdAccuracy * 100).toFixed(2)}`,
          g.n > 1 ? `${fmtAcc(g.minAccuracy, 2)} – ${fmtAcc(g.maxAccuracy, 2)}` : '—',
        ]),
      ],
    ),
    '',
  );
  return out;
}

/** Compute saved against the from-scratch baseline. */
function computeSavedSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const out: string[] = [];
  out.push('## Compute saved vs from scratch', '');
  if (s.computeSavings.length > 0) {
    out.push(
      reportTable(
        [
          'Run',
          'Baseline',
          'Target acc.',
          'Baseline compute',
          'Time to target',
          'Compute saved',
          'Whole run',
          'Whole run saved',
        ],
        ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
        s.computeSavings.map((c) => [
          m(c.name),
          c.baselineMethod === null
            ? 'none on this data'
            : `${c.baselineMethod} (${c.baselineRuns.length} run(s))`,
          fmtAcc(c.targetAccuracy, 2),
          fmtCpu(c.baselineCpuSeconds),
          c.baselineMethod === null
            ? '—'
            : c.reached
              ? fmtCpu(c.timeToAccuracyCpuSeconds)
              : 'not reached',
          fmtShare(c.savingPct),
          fmtCpu(c.spentCpuSeconds),
          fmtShare(c.totalSavingPct),
        ]),
      ),
      '',
      'Time to target: CPU-seconds at the first history record whose curve accuracy is at least the ' +
        "baseline's final curve accuracy. Compute saved = 1 − time to target ÷ baseline compute.",
      '',
    );
  } else {
    out.push('No run started from a pretrained model.', '');
  }
  return out;
}

/** Training compute spent per run (CPU-seconds, wall clock, cost, samples). */
function computeSpentSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const runs = s.runs;
  const out: string[] = [];
  out.push('## Training compute spent', '');
  out.push(
    reportTable(
      ['Run', 'Method', 'CPU-seconds', 'Wall clock', 'CPU-hours', 'Cost', 'Samples'],
      ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
      runs.map((r) => [
        m(r.name),
        r.method,
        r.cpuSeconds.toFixed(1),
        fmtDuration(r.wallSeconds),
        r.computeHours.toFixed(4),
        fmtUsd(r.costUsd),
        fmtInt(r.samples),
      ]),
    ),
    '',
  );
  return out;
}

/** Inference latency against the original, and parameter and FLOP overheads. */
function inferenceSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const runs = s.runs;
  const out: string[] = [];
  out.push('## Inference cost', '');
  const lat: string[][] = [];
  for (const r of runs) {
    for (const l of r.latency) {
      lat.push([
        m(r.name),
        String(l.batchSize),
        fmtMs(l.model.p50Ms),
        fmtMs(l.model.p95Ms),
        fmtMs(l.model.perSampleMs),
        fmtMs(l.base?.p50Ms ?? null),
        fmtMs(l.base?.p95Ms ?? null),
        fmtMs(l.base?.perSampleMs ?? null),
        fmtRatio(l.p50Ratio),
        fmtRatio(l.p95Ratio),
      ]);
    }
  }
  if (lat.length > 0) {
    out.push(
      reportTable(
        [
          'Run',
          'Batch',
          'p50',
          'p95',
          'Per sample',
          'Base p50',
          'Base p95',
          'Base per sample',
          'p50 ratio',
          'p95 ratio',
        ],
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
        lat,
      ),
      '',
    );
  } else {
    out.push('No run has latency measurements.', '');
  }
  out.push(
    reportTable(
      [
        'Run',
        'Params',
        'Base params',
        'Param overhead',
        'FLOPs/sample',
        'Base FLOPs',
        'FLOP overhead',
      ],
      ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
      runs.map((r) => [
        m(r.name),
        fmtInt(r.params.total),
        fmtInt(r.params.base),
        fmtSignedShare(r.paramOverheadPct),
        fmtInt(r.flops.model),
        fmtInt(r.flops.base),
        fmtSignedShare(r.flopOverheadPct),
      ]),
    ),
    '',
  );
  return out;
}

/** Return on investment of each pretrained-start run. */
function roiSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const out: string[] = [];
  if (s.roi.length > 0) {
    out.push('## Return on investment', '');
    out.push(
      reportTable(
        [
          'Run',
          'Final acc.',
          'vs original (pts)',
          'vs fine-tune (pts)',
          'CPU-hours',
          'Cost',
          'Cost / pt gained',
          'Slowdown',
        ],
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
        s.roi.map((o) => [
          m(o.name),
          fmtAcc(o.finalAccuracy, 2),
          fmtSigned(o.gainVsBasePts, 2),
          fmtSigned(o.gainVsFineTunePts, 2),
          o.computeHours.toFixed(4),
          fmtUsd(o.costUsd),
          fmtUsd(o.costPerPointUsd),
          o.slowdown === null ? '—' : `${fmtRatio(o.slowdown)} (batch ${o.latencyBatchSize})`,
        ]),
      ),
      '',
    );
  }
  return out;
}

/** The machines and the definitions of the numbers. */
function machineSection(s: ReportSummary): string[] {
  const m = escapeMd;
  const runs = s.runs;
  const out: string[] = [];
  out.push('## Machine and definitions', '');
  out.push(
    reportTable(
      ['CPU', 'Threads', 'Node', 'ONNX Runtime', 'quadranet', 'Runs'],
      ['l', 'r', 'l', 'l', 'l', 'l'],
      s.envs.map((v) => [
        m(v.cpu),
        String(v.threads),
        m(v.node),
        m(v.onnxruntime),
        m(v.quadranet),
        m(v.runs.map((i) => runs[i]!.name).join(', ')),
      ]),
    ),
    '',
    '- **CPU-seconds**: process CPU time (user + system, summed over all threads) spent training, ' +
      'evaluation excluded; a run keeping N cores busy for an hour counts N CPU-hours.',
    `- **Cost**: CPU-seconds ÷ 3600 × ${fmtUsd(s.pricePerHour)} per CPU-hour; pretraining the ` +
      'original model is not counted.',
    `- **Baseline**: ${s.baselineMethod} runs on the same data (falling back to scratch); with ` +
      'several seeds, their mean final accuracy and mean compute.',
    '- **Final accuracy**: test accuracy from eval.json (the last validation or training accuracy ' +
      'when a run has none); ± is the sample standard deviation over seeds.',
    '',
  );
  return out;
}
