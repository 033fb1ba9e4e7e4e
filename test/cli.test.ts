import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cliIn } from './helpers/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
  allowScripts?: Record<string, boolean>;
};
const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs the installed CLI (bin → dist, built by `npm install`/`npm test`). */
const cli = cliIn();

describe('quadranet CLI', () => {
  it('--version prints the package version', () => {
    const r = cli('--version');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });
  it('--help describes the tool', () => {
    const r = cli('--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Usage: quadranet/);
    assert.match(r.stdout, /quadratic adaptation/);
  });
  it('an unknown flag is a one-line error with a non-zero exit', () => {
    const r = cli('--frobnicate');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unknown option '--frobnicate'/);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  });
  it('npm runs the CLI without warnings (no unknown keys in the project config)', () => {
    // Through npm itself, as a user types it: npm reads the project's .npmrc and package.json here.
    const r = spawnSync('npm', ['exec', '--offline', '--', 'quadranet', '--version'], {
      cwd: root,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
    assert.doesNotMatch(r.stderr, /npm warn/i);
  });
  it("onnxruntime-node's install script (a CUDA download, impossible offline) is denied", () => {
    assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
  });
});

describe('--max-model-bytes (a program-level flag, passed to the command explicitly)', () => {
  it('refuses a larger model file in one line naming the limit', () => {
    const model = fileURLToPath(new URL('../models/mnist-cnn.onnx', import.meta.url));
    const r = cli('--max-model-bytes', '1000', 'inspect', model, '--latency-runs', '0');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /over the limit of 1000 bytes; raise --max-model-bytes/);
    const ok = cli('--max-model-bytes', '100000000', 'inspect', model, '--latency-runs', '0');
    assert.equal(ok.status, 0, ok.stderr);
  });
});
