import cliProgress from 'cli-progress';
import type { FitProgress } from '../runtime/fit.js';
import type { HistoryRecord } from '../io/formats/run-format.js';
import type { PhaseProgress } from '../workflow/evaluate.js';

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

/** Reports the phases around training and evaluation (loading, evaluating, timing). */
export interface PhaseReporter {
  update(p: PhaseProgress): void;
  stop(): void;
}

/** Phases without a known size are announced only once they last this long. */
const QUIET_PHASE_MS = 2000;

/**
 * Creates the phase display that fits the terminal: a bar per sized phase on a TTY; otherwise
 * (or with `plain`) a line when a phase starts, at most every `intervalSeconds` while it runs,
 * and when it ends with its duration, so no long phase passes in silence. Phases of unknown
 * size (loading, building) are announced after two seconds, so quick ones and a failure's
 * one-line error are not buried in progress lines.
 */
export function phaseReporter(opts: ProgressOptions): PhaseReporter {
  if (opts.quiet) return { update: () => {}, stop: () => {} };
  const tty = !opts.plain && process.stderr.isTTY;
  const every = (opts.intervalSeconds ?? 5) * 1000;
  const say = (text: string) => process.stderr.write(`${opts.label}: ${text}\n`);
  let started = 0;
  let last = 0;
  let announced = false;
  let pending: NodeJS.Timeout | undefined;
  let bar: cliProgress.SingleBar | undefined;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
    clearTimeout(pending);
    pending = undefined;
  };
  return {
    update(p) {
      const now = Date.now();
      if (p.finished) {
        stopBar();
        // A phase of unknown size that ran synchronously could not announce itself in time.
        if (started && (announced || now - started >= QUIET_PHASE_MS))
          say(`${p.phase}: done in ${((now - started) / 1000).toFixed(1)} s`);
        started = 0;
        return;
      }
      if (p.done === 0) {
        stopBar();
        started = last = now;
        announced = p.total > 0;
        if (p.total === 0) {
          pending = setTimeout(() => {
            announced = true;
            say(`${p.phase}...`);
          }, QUIET_PHASE_MS);
          pending.unref();
        } else if (tty) {
          bar = new cliProgress.SingleBar(
            {
              format: `${opts.label}: ${p.phase} {bar} {value}/{total} ${p.unit} | ETA {eta_formatted}`,
              stream: process.stderr,
              hideCursor: true,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.total, 0);
        } else say(`${p.phase} (${p.total} ${p.unit})...`);
        return;
      }
      if (bar) bar.update(p.done);
      else if (p.total > 0 && now - last >= every) {
        say(`${p.phase}: ${p.done}/${p.total} ${p.unit}`);
        last = now;
      }
    },
    stop: stopBar,
  };
}
