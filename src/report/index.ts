/**
 * `quadranet report RUN_DIR... -o report.html` as a library function.
 *
 * ```ts
 * import { writeReport } from './report/index.js';
 * const summary = await writeReport(['runs/quad', 'runs/scratch'], 'report.html', {
 *   pricePerHour: 0.05,
 * });
 * for (const v of summary.verdicts) console.log(v);
 * ```
 *
 * Writes two files, each atomically (temp file + rename): the self-contained HTML at `out`, and
 * the same numbers as markdown beside it (`report.html` → `report.md`; a name without `.html`/
 * `.htm` gets `.md` appended). The output directory is created when missing.
 */

import { basename, dirname } from 'node:path';
import { ensureWritableDir, writeFilesAtomic } from '../io/atomic.js';
import { loadChartJs, renderHtml } from './html.js';
import { RUN_METHODS, loadRuns } from './load.js';
import { renderMarkdown } from './markdown.js';
import type { RunMethod } from '../io/formats/run-format.js';
import type { ReportSummary } from './summary.js';
import { DEFAULT_BASELINE_METHOD, DEFAULT_PRICE_PER_HOUR, summarize } from './summary.js';
import { QuadranetError } from '../util/errors.js';

export type {
  BaseAccuracy,
  ComputeSaving,
  CurvePoint,
  EnvSummary,
  GroupHeadline,
  GroupSummary,
  LatencyComparison,
  ReportSummary,
  RoiSummary,
  RunSummary,
} from './summary.js';
export { DEFAULT_BASELINE_METHOD, DEFAULT_PRICE_PER_HOUR, summarize } from './summary.js';
export type { LatencyVerdict, Recommendation, RecommendationOption } from './recommend.js';
export type { Interval } from './stats.js';
export { loadRun, loadRuns, type LoadedRun } from './load.js';
export { renderHtml, escapeHtml, loadChartJs } from './html.js';
export { renderMarkdown } from './markdown.js';

/** A bad report option (not a file problem): one line, meant for the user. */
export class ReportError extends QuadranetError {
  constructor(message: string) {
    super(message);
    this.name = 'ReportError';
  }
}

/** Options of {@link writeReport}; every field is optional. */
export interface ReportOptions {
  /**
   * Price of compute in USD per CPU-hour, i.e. one core busy for one hour of process CPU time
   * (what the runs' `cpuSeconds` count). Default {@link DEFAULT_PRICE_PER_HOUR} = 0.10. To price
   * a whole machine-hour of an N-core machine that the run kept busy, pass machine price ÷ N.
   */
  pricePerHour?: number;
  /** Report title. Default "QuadraNet adaptation report". */
  title?: string;
  /**
   * The from-scratch method that "compute saved" is measured against. Default
   * 'scratch-quadratic' (the high-order network trained from random init, as in the paper); when a
   * data set has no run of this method, 'scratch' runs are used instead, with a warning.
   */
  baselineMethod?: RunMethod;
  /** The report's date; now by default (set it for reproducible output). */
  date?: Date;
}

/** The markdown path written beside an HTML report path. */
export function markdownPathFor(out: string): string {
  return /\.html?$/i.test(out) ? out.replace(/\.html?$/i, '.md') : `${out}.md`;
}

/**
 * Reads the run directories, computes the report and writes `out` (HTML) and the markdown beside
 * it. Throws a one-line QuadranetFileError naming the file for a missing or damaged run file, and
 * a ReportError for bad options.
 */
export async function writeReport(
  runDirs: string[],
  out: string,
  opts: ReportOptions = {},
): Promise<ReportSummary> {
  if (runDirs.length === 0) {
    throw new ReportError(
      'no run directories given; pass one or more RUN_DIRs written by adapt or train',
    );
  }
  const pricePerHour = opts.pricePerHour ?? DEFAULT_PRICE_PER_HOUR;
  if (!Number.isFinite(pricePerHour) || pricePerHour < 0) {
    throw new ReportError(
      `price per hour must be a number ≥ 0 (USD per CPU-hour), got ${String(opts.pricePerHour)}`,
    );
  }
  const baselineMethod = opts.baselineMethod ?? DEFAULT_BASELINE_METHOD;
  if (!RUN_METHODS.includes(baselineMethod)) {
    throw new ReportError(
      `unknown baseline method "${String(baselineMethod)}"; expected one of ${RUN_METHODS.join(', ')}`,
    );
  }
  const markdownPath = markdownPathFor(out);
  const runs = await loadRuns(runDirs);
  const summary = summarize(
    runs,
    {
      title: opts.title ?? 'QuadraNet adaptation report',
      pricePerHour,
      baselineMethod,
      date: opts.date ?? new Date(),
    },
    { html: out, markdown: markdownPath },
  );
  const chartJs = await loadChartJs();
  await ensureWritableDir(dirname(out));
  // One step: a kill never leaves the HTML and the markdown from different runs.
  await writeFilesAtomic(dirname(out), {
    [basename(out)]: renderHtml(summary, chartJs),
    [basename(markdownPath)]: renderMarkdown(summary),
  });
  return summary;
}
