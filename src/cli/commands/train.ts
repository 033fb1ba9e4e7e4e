import type { Command } from 'commander';
import { Option } from 'commander';
import type { EvalSummary, RunMethod } from '../../io/formats/run-format.js';
import type { RunResult } from '../../workflow/run.js';
import { runMethod } from '../../workflow/run.js';
import { SMALL_SPLIT, accuracyInterval } from '../../workflow/evaluate.js';
import { loadModelSource } from '../../workflow/model-source.js';
import { METHOD_NAMES } from '../../workflow/methods.js';
import type { ExecutionProvider } from '../../runtime/session.js';
import { UserError } from '../errors.js';
import type { QuadFlags } from '../options.js';
import {
  fraction,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  quadOptions,
  toQuadratizeOptions,
  epOption,
} from '../options.js';
import { phaseReporter, progressReporter } from '../progress.js';
import { parseBatchSizes } from './evaluate.js';
import { modelLimits } from '../options.js';

/** Flags shared by `adapt` and `train`. */
interface TrainFlags extends QuadFlags {
  data: string;
  out: string;
  epochs: number;
  batchSize: number;
  lr: number;
  quadLr?: number;
  optimizer: 'adamw' | 'sgd';
  weightDecay?: number;
  clipNorm?: number;
  bn?: 'train' | 'frozen';
  limit?: number;
  testLimit?: number;
  valFraction: number;
  seed: number;
  threads: number;
  ep?: ExecutionProvider;
  resume?: boolean;
  force?: boolean;
  latencyRuns: number;
  batchSizes: number[];
  label?: string;
  json?: boolean;
  plain?: boolean;
  trainHead: boolean;
  numClasses?: number;
}

function addTrainingOptions(cmd: Command, defaults: { epochs: number; lr: number }): Command {
  cmd
    .argument(
      '<model>',
      'model file (.onnx, TF.js model.json, .safetensors checkpoint) or arch:NAME[:CxHxW]',
    )
    .requiredOption(
      '--data <spec>',
      "data spec: mnist, idx:DIR, folder:DIR, csv:FILE[:label=NAME,task=regression], with options like ':shift=contrast,strength=0.5' (add ',target=clean' to a shift for a restoration task, trained with MSE)",
    )
    .requiredOption(
      '-o, --out <dir>',
      'run directory (history, checkpoints, model.onnx, eval.json)',
    )
    .option('--epochs <n>', 'epochs', positiveInt, defaults.epochs)
    .option('--batch-size <n>', 'batch size', positiveInt, 64)
    .option('--lr <x>', 'learning rate of first-order parameters', positiveNumber, defaults.lr)
    .addOption(
      new Option('--optimizer <name>', 'optimizer').choices(['adamw', 'sgd']).default('adamw'),
    )
    .option('--weight-decay <x>', 'weight decay', (v) => Number(v))
    .option('--clip-norm <x>', 'clip gradients to this global L2 norm', positiveNumber)
    .addOption(
      new Option(
        '--bn <mode>',
        'BatchNorm statistics: update (train) or keep (frozen); default per method',
      ).choices(['train', 'frozen']),
    )
    .option('--limit <n>', 'use only the first N training examples', positiveInt)
    .option('--test-limit <n>', 'use only the first N test examples', positiveInt)
    .option(
      '--val-fraction <f>',
      'fraction of training examples held out for validation',
      fraction,
      0.1,
    )
    .option('--seed <n>', 'seed of data order, initialisation and shifts', nonNegativeInt, 0)
    .option('--threads <n>', 'onnxruntime threads', positiveInt, 2)
    .addOption(epOption())
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--force', 'start afresh in an --out that holds another run (its files are removed)')
    .option(
      '--latency-runs <n>',
      'timed inference runs per batch size after training',
      positiveInt,
      30,
    )
    .option('--batch-sizes <list>', 'latency batch sizes after training', parseBatchSizes, [1, 32])
    .option('--label <text>', 'label of this run in reports')
    .option(
      '--no-train-head',
      'adapter methods: keep the classifier head frozen too (default: the head trains, as in PEFT)',
    )
    .option(
      '--num-classes <n>',
      "the data's class count when the model's head has another: replace the head by a new one of N outputs (it trains and is saved with the adapter)",
      positiveInt,
    )
    .option('--plain', 'plain progress lines even on a terminal')
    .option('--json', 'print the result as JSON');
  for (const opt of quadOptions()) cmd.addOption(opt);
  return cmd;
}

/** The test metric of a summary line: accuracy, or MSE (and PSNR) on regression data. */
function metricText(e: Pick<EvalSummary, 'accuracy' | 'regression' | 'n'>): string {
  const r = e.regression;
  if (!r) {
    // A small test split's accuracy comes with its 95% interval.
    if (e.n >= SMALL_SPLIT.test) return `accuracy ${(e.accuracy * 100).toFixed(2)}%`;
    const [lo, hi] = accuracyInterval(e.accuracy, e.n);
    return `accuracy ${(e.accuracy * 100).toFixed(2)}% (95% interval ${(lo * 100).toFixed(1)}–${(hi * 100).toFixed(1)}%, n = ${e.n})`;
  }
  const db =
    r.psnr === undefined ? '' : `, PSNR ${r.psnr === Infinity ? '∞' : r.psnr.toFixed(2)} dB`;
  return `MSE ${r.mse.toPrecision(4)}${db}`;
}

/** Runs a method with progress, Ctrl-C handling and a printed summary. */
async function execute(
  method: RunMethod,
  modelArg: string,
  o: TrainFlags,
  extra: { train?: 'adapter' | 'full' },
): Promise<void> {
  // A built-in architecture is built with the right head at once.
  const src = await loadModelSource(modelArg, {
    seed: o.seed,
    classes: o.numClasses,
    ...modelLimits(o),
  });
  const ac = new AbortController();
  const onSigint = () => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write('\nstopping after the current step (Ctrl-C again to quit at once)...\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  const progress = progressReporter({ label: o.label ?? method, plain: o.plain, quiet: o.json });
  const phases = phaseReporter({ label: o.label ?? method, plain: o.plain, quiet: o.json });
  let r: RunResult;
  try {
    r = await runMethod({
      method,
      base: src,
      data: o.data,
      outDir: o.out,
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      quadLr: o.quadLr,
      optimizer: o.optimizer,
      weightDecay: o.weightDecay,
      clipNorm: o.clipNorm,
      quad: toQuadratizeOptions(o, o.seed),
      budget: o.budget,
      budgetBatch: o.budgetBatch,
      train: extra.train,
      trainHead: o.trainHead,
      numClasses: o.numClasses,
      onNote: o.json ? undefined : (line) => process.stderr.write(`${line}\n`),
      batchNorm: o.bn,
      limit: o.limit,
      testLimit: o.testLimit,
      valFraction: o.valFraction,
      seed: o.seed,
      threads: o.threads,
      ep: o.ep,
      resume: o.resume,
      force: o.force,
      latency: { runs: o.latencyRuns, batchSizes: o.batchSizes },
      signal: ac.signal,
      onProgress: (p) => progress.update(p),
      onWarning: (m) => console.error(`quadranet: warning: ${m}`),
      onPhase: (p) => {
        // The training bar ends before the phases after training print.
        progress.stop();
        phases.update(p);
      },
      label: o.label,
      command: ['quadranet', ...process.argv.slice(2)].join(' '),
    });
  } finally {
    progress.stop();
    phases.stop();
    process.off('SIGINT', onSigint);
  }
  if (o.json) {
    console.log(
      JSON.stringify(
        {
          status: r.fit.status,
          message: r.fit.message,
          info: r.info,
          history: r.fit.history,
          eval: r.eval,
          files: r.files,
        },
        null,
        2,
      ),
    );
  } else {
    const last = r.fit.history.at(-1);
    if (r.fit.message) console.error(`quadranet: ${r.fit.message}`);
    if (r.eval) {
      const e = r.eval;
      const lat = (l: typeof e.latency) => l.find((x) => x.batchSize === 1)?.p50Ms;
      console.log(
        `${r.info.label}: test ${metricText(e)}` +
          (e.base
            ? ` (original ${e.base.regression ? metricText({ ...e.base, n: e.n }) : `${(e.base.accuracy * 100).toFixed(2)}%`})`
            : ''),
      );
      console.log(
        `  training: ${r.fit.cpuSeconds.toFixed(1)} CPU-s, ${r.fit.wallSeconds.toFixed(1)} s wall, ${last?.samples ?? 0} samples; trainable ${r.info.params.trainable} of ${r.info.params.total} parameters`,
      );
      const a = lat(e.latency);
      const b = e.base ? lat(e.base.latency) : undefined;
      if (a !== undefined)
        console.log(
          `  inference p50 (batch 1): ${a.toFixed(3)} ms` +
            (b ? ` vs original ${b.toFixed(3)} ms (${(a / b).toFixed(2)}×)` : ''),
        );
      console.log(`  wrote ${r.files.join(', ')}`);
    }
  }
  if (r.fit.status === 'diverged') process.exitCode = 3;
  if (r.fit.status === 'interrupted') process.exitCode = 130;
}

/** `quadranet adapt` (QuadraNet V2) and `quadranet train` (the baselines). */
export function registerTraining(program: Command): void {
  const adapt = program
    .command('adapt')
    .description(
      'quadratic adaptation (QuadraNet V2): add zero-initialised quadratic terms and train them on your data',
    );
  addTrainingOptions(adapt, { epochs: 3, lr: 1e-3 })
    .addOption(
      new Option('--train <what>', 'adapter: only quadratic parameters train; full: everything')
        .choices(['adapter', 'full'])
        .default('adapter'),
    )
    .option(
      '--quad-lr <x>',
      'learning rate of the quadratic parameters (default 3e-3; ReLinear-style: keep it small if training diverges)',
      positiveNumber,
      3e-3,
    )
    .action((model: string, o: TrainFlags & { train: 'adapter' | 'full' }) =>
      execute('quadratic-adapt', model, o, { train: o.train }),
    );

  const train = program
    .command('train')
    .description(
      'plain training and the baselines: fine-tune, head-only, linear-adapter (equal budget), scratch, scratch-quadratic',
    );
  addTrainingOptions(train, { epochs: 3, lr: 1e-3 })
    .addOption(
      new Option('--method <m>', 'what to train')
        .choices(METHOD_NAMES.filter((m) => m !== 'quadratic-adapt'))
        .default('fine-tune'),
    )
    .option('--quad-lr <x>', 'learning rate of adapter / quadratic parameters', positiveNumber)
    .action((model: string, o: TrainFlags & { method: RunMethod }) => {
      if (!METHOD_NAMES.includes(o.method)) throw new UserError(`unknown --method '${o.method}'`);
      return execute(o.method, model, o, {});
    });
}
