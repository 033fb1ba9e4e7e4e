import cliProgress from 'cli-progress';
import type { FitProgress } from '../runtime/fit.js';
import type { HistoryRecord } from '../report/run-format.js';

/** Reports training progress: a bar with ETA, loss, accuracy and throughput on a TTY, plain lines otherwise. */
export interface ProgressReporter {
  update(p: FitProgress): void;
  stop(): void;
}

/** Options of the progress display. */
export interface ProgressOptions {
  /** Label in front of the bar, e.g. the run's method. */
  label: string;
  /** Force the plain-line mode (default: bar when stderr is a TTY). */
  plain?: boolean;
  /** Plain mode: print a line at most every this many seconds (default 5). */
  intervalSeconds?: number;
  /** Print nothing (e.g. with --json). */
  quiet?: boolean;
}

/** Creates the reporter that fits the terminal. */
export function progressReporter(opts: ProgressOptions): ProgressReporter {
  if (opts.quiet) return { update: () => {}, stop: () => {} };
  const tty = !opts.plain && process.stderr.isTTY;
  if (tty) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${opts.label} {bar} {percentage}% | ETA {eta_formatted} | step {value}/{total} | loss {loss} | acc {acc} | {sps} samples/s`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p) {
        const payload = {
          loss: p.loss.toFixed(4),
          acc: pct(p.trainAccuracy, 1),
          sps: p.samplesPerSecond.toFixed(0),
        };
        if (!started) {
          bar.start(p.totalSteps, p.step, payload);
          started = true;
        }
        bar.update(p.step, payload);
        const val = p.kind === 'epoch' ? valText(p.record) : '';
        if (val) {
          bar.stop();
          process.stderr.write(`  epoch ${p.epoch + 1}: val ${val}\n`);
          started = false;
        }
      },
      stop: () => bar.stop(),
    };
  }
  const every = (opts.intervalSeconds ?? 5) * 1000;
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (p.kind === 'epoch') {
        const v = valText(p.record, 'acc');
        process.stderr.write(
          `${opts.label}: epoch ${p.epoch + 1} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}` +
            (v ? ` val ${v}` : '') +
            ` ${p.samplesPerSecond.toFixed(0)} samples/s\n`,
        );
        last = now;
      } else if (now - last >= every) {
        process.stderr.write(
          `${opts.label}: step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} acc ${pct(p.trainAccuracy, 1)} ${p.samplesPerSecond.toFixed(0)} samples/s\n`,
        );
        last = now;
      }
    },
    stop: () => {},
  };
}

/** A fraction as a percentage; '–' when there is none (regression has no accuracy). */
function pct(v: number, digits: number): string {
  return Number.isNaN(v) ? '–' : `${(v * 100).toFixed(digits)}%`;
}

/** An epoch's validation metric: accuracy, or MSE (and PSNR) on regression data; '' when none. */
function valText(r: HistoryRecord | undefined, accName = 'accuracy'): string {
  if (r?.valAccuracy !== undefined) return `${accName} ${pct(r.valAccuracy, 2)}`;
  if (r?.valMse === undefined) return '';
  const db = r.valPsnr === undefined ? '' : ` PSNR ${r.valPsnr.toFixed(2)} dB`;
  return `MSE ${r.valMse.toPrecision(4)}${db}`;
}
