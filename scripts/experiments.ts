/**
 * `npm run experiments` — QuadraNet V2's claims reproduced at small scale (src/experiments/).
 *
 *   tsx scripts/experiments.ts [--quick] [--json FILE] [--out DIR] [--docs FILE | --no-docs]
 *                              [--fashion-dir DIR]
 *
 * --quick: < 10 minutes on 2 cores (one seed); default: the full setting (≈ 1 hour on 2
 * cores, cut data); --gpu: the same protocol on the full data sets with wider backbones (a GPU
 * machine; see docs/experiments.md). --micro: a seconds-long smoke setting for the test suite
 * (numbers meaningless). Only the full setting writes docs/experiments.md by default.
 * Progress goes to stderr; runs are cached in the output directory (rerun to continue).
 */

import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_FASHION_DIR } from '../src/experiments/config.js';
import type { PresetName } from '../src/experiments/index.js';
import { runExperiments } from '../src/experiments/index.js';

const HELP = `usage: tsx scripts/experiments.ts [--quick] [--json FILE] [--out DIR] [options]

Reproduces QuadraNet V2's claims at small scale: (a) time to accuracy of quadratic adaptation vs
the quadratic network from scratch, (b) adaptation to distribution shift vs the alternatives,
(c) ablations (rank, atrous kernels, phi, mode, init, full training, memory-efficient backward).

  --quick            the quick setting: < 10 minutes on 2 cores, one seed
  --gpu              the protocol at full data-set size with wider backbones (GPU machine)
  --micro            a seconds-long smoke setting (tests); numbers are meaningless
  --json FILE        write the results JSON here too
  --out DIR          output directory (default runs/experiments/<setting>)
  --docs FILE        write the markdown here too (default: docs/experiments.md for the full setting only)
  --no-docs          do not write the markdown outside the output directory
  --fashion-dir DIR  Fashion-MNIST (default ${DEFAULT_FASHION_DIR}; apt-get install dataset-fashion-mnist)
  -h, --help         this help
`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: 'boolean' },
        micro: { type: 'boolean' },
        gpu: { type: 'boolean' },
        json: { type: 'string' },
        out: { type: 'string' },
        docs: { type: 'string' },
        'no-docs': { type: 'boolean' },
        'fashion-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
  } catch (e) {
    process.stderr.write(`experiments: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if ([args.quick, args.micro, args.gpu].filter(Boolean).length > 1) {
    process.stderr.write('experiments: choose one of --quick, --micro and --gpu\n');
    return 2;
  }
  const preset: PresetName = args.micro
    ? 'micro'
    : args.quick
      ? 'quick'
      : args.gpu
        ? 'gpu'
        : 'full';
  const outDir = args.out ?? `runs/experiments/${preset}`;
  const docsFile = args['no-docs']
    ? undefined
    : // Only the full setting's results belong on the committed page (quick/micro are indicative).
      (args.docs ?? (preset === 'full' ? 'docs/experiments.md' : undefined));
  for (const f of [args.json, docsFile]) if (f) mkdirSync(dirname(f), { recursive: true });
  const ac = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted: stopping after the current step (rerun to continue)\n');
    ac.abort();
  });
  const argv = process.argv.slice(2).join(' ');
  const res = await runExperiments({
    preset,
    outDir,
    jsonFile: args.json,
    docsFile,
    fashionDir: args['fashion-dir'],
    log: (line) => process.stderr.write(line + '\n'),
    signal: ac.signal,
    command: `npm run experiments${argv ? ` -- ${argv}` : ''}`,
    source: gitRevision(),
  });
  for (const c of res.claims) {
    process.stderr.write(`claim (${c.claim}): ${c.verdict}\n`);
    for (const d of c.details) process.stderr.write(`  ${d}\n`);
  }
  process.stderr.write(
    `done in ${(res.meta.wall_seconds / 60).toFixed(1)} min; results in ${outDir}/results.json, ${outDir}/experiments.md${docsFile ? `, ${docsFile}` : ''}${args.json ? `, ${args.json}` : ''}\n`,
  );
  return 0;
}

/** The checkout's revision (`dirty` when tracked files differ), or undefined outside git. */
function gitRevision(): string | undefined {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty', '--abbrev=12'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`experiments: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
