/**
 * The house rules that code review alone would let drift: data flows one way (nothing below
 * the CLI imports from it), and every error raised for the user has the one base class the CLI
 * prints as one line.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as api from '../src/index.js';
import { isUserFacing, oneLine } from '../src/cli/errors.js';
import { QuadranetError, UserError } from '../src/util/errors.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

async function sources(dir = SRC): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('structure', () => {
  it('nothing outside src/cli imports from src/cli', async () => {
    const files = await sources();
    assert.ok(files.length > 50, 'the source scan found the sources');
    const bad: string[] = [];
    for (const f of files) {
      const rel = relative(SRC, f);
      if (rel.startsWith('cli/')) continue;
      const text = await readFile(f, 'utf8');
      for (const m of text.matchAll(/from '([^']+)'/g)) {
        const target = relative(SRC, join(f, '..', m[1]!));
        if (m[1]!.startsWith('.') && target.startsWith('cli/')) bad.push(`${rel} → ${m[1]}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('io/ reads and writes files: it never reaches up to the workflow, the report or the CLI', async () => {
    const bad: string[] = [];
    for (const f of await sources()) {
      const rel = relative(SRC, f);
      if (!rel.startsWith('io/')) continue;
      const text = await readFile(f, 'utf8');
      for (const m of text.matchAll(/from '([^']+)'/g)) {
        if (!m[1]!.startsWith('.')) continue;
        const target = relative(SRC, join(f, '..', m[1]!));
        if (/^(workflow|cli|report|experiments)\//.test(target)) bad.push(`${rel} → ${m[1]}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('every error class raised for users extends QuadranetError and folds line breaks', async () => {
    const classes = Object.entries(api).filter(
      ([name, v]) => typeof v === 'function' && name.endsWith('Error') && name !== 'QuadranetError',
    ) as [string, new (...a: never[]) => Error][];
    assert.ok(classes.length >= 8, classes.map(([n]) => n).join(', '));
    for (const [name, cls] of classes)
      assert.ok(cls.prototype instanceof QuadranetError, `${name} does not extend QuadranetError`);
    // Every source file's error classes too, not only the exported ones.
    for (const f of await sources()) {
      for (const m of (await readFile(f, 'utf8')).matchAll(/class (\w+) extends (\w+)/g)) {
        if (m[1]!.endsWith('Error') && m[1] !== 'QuadranetError')
          assert.ok(m[2]!.endsWith('Error') && m[2] !== 'Error', `${m[1]} extends ${m[2]}`);
      }
    }
    const e = new api.DataError('a\n  b\r\nc\u2028d');
    assert.equal(e.message, 'a b c d');
    assert.ok(isUserFacing(e) && isUserFacing(new UserError('x')));
    assert.equal(oneLine(new api.GraphError('node\nX')), 'node X');
    assert.match(oneLine(new Error('boom\nstack')), /^internal error: boom \(/);
  });
});
