import type { Command } from 'commander';
import { runDemo } from '../../workflow/demo.js';
import { positiveInt } from '../options.js';
import { phaseReporter, progressReporter } from '../progress.js';
import type { PhaseReporter, ProgressReporter } from '../progress.js';

/** `quadranet demo`: the whole workflow on the embedded default model. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the whole workflow on the embedded MNIST CNN: inspect, adapt to rotated digits, compare, report',
    )
    .option('-o, --out <dir>', 'output directory', 'demo-run')
    .option('--data <spec>', 'the shifted data to adapt to', 'mnist:shift=rotate,strength=0.7')
    .option('--limit <n>', 'training examples per run', positiveInt, 6000)
    .option('--epochs <n>', 'epochs of the adaptation runs', positiveInt, 2)
    .option('--threads <n>', 'onnxruntime threads', positiveInt, 2)
    .option('--plain', 'plain progress lines even on a terminal')
    .action(
      async (o: {
        out: string;
        data: string;
        limit: number;
        epochs: number;
        threads: number;
        plain?: boolean;
      }) => {
        const ac = new AbortController();
        const onSigint = () => (ac.signal.aborted ? process.exit(130) : ac.abort());
        process.on('SIGINT', onSigint);
        const bars = new Map<string, ProgressReporter>();
        const phases = new Map<string, PhaseReporter>();
        try {
          const r = await runDemo({
            outDir: o.out,
            data: o.data,
            limit: o.limit,
            epochs: o.epochs,
            threads: o.threads,
            signal: ac.signal,
            log: (l) => console.log(l),
            onProgress: (label, p) => {
              let bar = bars.get(label);
              if (!bar) bars.set(label, (bar = progressReporter({ label, plain: o.plain })));
              bar.update(p);
              if (p.kind === 'epoch' && p.step >= p.totalSteps) bar.stop();
            },
            onPhase: (label, p) => {
              bars.get(label)?.stop();
              let ph = phases.get(label);
              if (!ph) phases.set(label, (ph = phaseReporter({ label, plain: o.plain })));
              ph.update(p);
            },
          });
          console.log(`\nSummary (${r.seconds.toFixed(0)} s):`);
          for (const v of r.report.verdicts) console.log(`- ${v}`);
          console.log(`\nreport: ${r.reportFile} (and report.md beside it)`);
        } finally {
          for (const b of [...bars.values(), ...phases.values()]) b.stop();
          process.off('SIGINT', onSigint);
        }
      },
    );
}
