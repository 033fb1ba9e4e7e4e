import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/quadranet.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** Runs the installed CLI (bin → dist, built by `npm install`/`npm test`). */
function cli(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
}

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
});
