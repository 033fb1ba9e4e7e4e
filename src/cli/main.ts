import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { registerApply } from './commands/apply.js';
import { registerDemo } from './commands/demo.js';
import { registerEval } from './commands/evaluate.js';
import { registerInspect } from './commands/inspect.js';
import { registerQuadratize } from './commands/quadratize.js';
import { registerReport } from './commands/report.js';
import { registerTraining } from './commands/train.js';
import { oneLine } from './errors.js';
import type { GlobalFlags } from './options.js';
import { positiveInt } from './options.js';

/** Builds the command tree (each command lives in its own file under src/cli/commands). */
export function program(): Command {
  const p = new Command('quadranet')
    .description('QuadraNet V2: quadratic adaptation of pretrained networks (ONNX in, ONNX out)')
    .version(VERSION, '-V, --version')
    // Usage errors are one line, like every other user error.
    .configureOutput({
      outputError: (str, write) => write(`quadranet: ${str.replace(/^error: /, '')}`),
    })
    .exitOverride()
    .option(
      '--max-model-bytes <n>',
      'refuse model files larger than this (default 2 GiB)',
      positiveInt,
    )
    // Program-level flags travel in each command's own options (read with modelLimits).
    .hook('preAction', (cmd, action) => {
      action.setOptionValue('maxModelBytes', cmd.opts<GlobalFlags>().maxModelBytes);
    });
  registerInspect(p);
  registerQuadratize(p);
  registerTraining(p);
  registerEval(p);
  registerReport(p);
  registerDemo(p);
  registerApply(p);
  return p;
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const p = program();
  try {
    await p.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0; usage errors were already printed.
      return e.exitCode;
    }
    if (process.env['QUADRANET_DEBUG']) console.error(e);
    console.error(`quadranet: ${oneLine(e)}`);
    return 1;
  }
}
