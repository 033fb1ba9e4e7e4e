import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

/** The installed command (bin/quadranet.js, which runs the built dist/). */
export const BIN = fileURLToPath(new URL('../../bin/quadranet.js', import.meta.url));

/** What one CLI invocation printed and how it exited. */
export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `quadranet ARGS` in a child process (in `cwd` when given). */
export function runCli(args: readonly string[], cwd?: string): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A `cli(...args)` bound to a working directory. */
export function cliIn(cwd?: string): (...args: string[]) => CliResult {
  return (...args) => runCli(args, cwd);
}

/** A phase's progress line (`label: phase...`, `label: phase: done in 2.1 s`), not an error. */
export const PROGRESS_LINE = /^(?!quadranet:)[\w-]+: .*(\.\.\.|: done in \d+\.\d s)$/;

/** A user error: non-zero exit, one line on stderr (besides progress lines), no stack trace. */
export function assertUserError(r: CliResult, pattern: RegExp): void {
  assert.notEqual(r.status, 0, 'exit status');
  // Progress lines of a slow phase (e.g. loading data on a busy machine) may precede the error.
  const lines = r.stderr
    .split('\n')
    .filter((l) => l.trim() && !/onnxruntime|\[W:/.test(l) && !PROGRESS_LINE.test(l));
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

/**
 * Runs the CLI's `main` in this process, capturing what it prints (faster than a child process,
 * and it reaches the sources without a build).
 */
export async function mainCaptured(
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error, write] = [console.log, console.error, process.stderr.write];
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof write;
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error, process.stderr.write] = [log, error, write];
  }
}
