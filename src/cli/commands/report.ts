import type { Command } from 'commander';
import { writeReport } from '../../report/index.js';
import { positiveNumber } from '../options.js';

/** `quadranet report RUN_DIR... -o report.html`. */
export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      'one self-contained HTML report (and a markdown summary) comparing runs: accuracy, compute, cost, latency',
    )
    .argument('<runs...>', 'run directories written by adapt/train')
    .requiredOption('-o, --out <file>', 'report HTML file (report.md is written beside it)')
    .option(
      '--price-per-hour <usd>',
      'price of one CPU-hour in USD, for the cost/ROI section',
      positiveNumber,
      0.1,
    )
    .option('--title <text>', 'report title')
    .option('--json', 'print the summary as JSON')
    .action(
      async (
        runs: string[],
        o: { out: string; pricePerHour: number; title?: string; json?: boolean },
      ) => {
        const summary = await writeReport(runs, o.out, {
          pricePerHour: o.pricePerHour,
          title: o.title,
        });
        if (o.json) {
          console.log(JSON.stringify(summary, null, 2));
          return;
        }
        for (const w of summary.warnings) console.error(`warning: ${w}`);
        for (const v of summary.verdicts) console.log(`- ${v}`);
        console.log(`wrote ${o.out} and its markdown summary`);
      },
    );
}
