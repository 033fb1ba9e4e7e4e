/**
 * adapter_config.json is read by a schema (io/formats/adapter-config.ts): a saved config reads
 * back equal, and every fault is refused in one line naming the file and the field at fault.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { saveAdapter } from '../src/workflow/adapter-files.js';
import { ADAPTER_CONFIG_FILE, readAdapterConfig } from '../src/io/formats/adapter-config.js';
import { QuadranetFileError } from '../src/io/errors.js';
import { mlp } from '../src/models/zoo.js';
import { quadratize } from '../src/passes/quadratize.js';
import { tempDirs } from './helpers/temp.js';

const tempDir = tempDirs('adapter-config');
const SHA = 'ab'.repeat(32);

type Json = Record<string, unknown>;
const target = (c: Json, i = 0) => (c['targets'] as Json[])[i]!;
const param = (c: Json, j = 0) => (target(c)['params'] as Json[])[j]!;

async function saved(): Promise<{ dir: string; config: Json }> {
  const dir = await tempDir();
  await saveAdapter(dir, quadratize(mlp({ width: 0.25 }), { rank: 2 }).graph, SHA);
  return {
    dir,
    config: JSON.parse(await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as Json,
  };
}

describe('adapter_config.json by schema', () => {
  it('reads a saved config back with every field', async () => {
    const { dir, config } = await saved();
    assert.deepEqual(await readAdapterConfig(dir), config);
  });

  // Each fault: how to make it, and what the one line must say (besides the file name).
  const faults: [string, (c: Json) => void, RegExp][] = [
    ['another format', (c) => (c['format'] = 'peft'), /format is "peft", not "quadranet-adapter"/],
    ['format version 2', (c) => (c['formatVersion'] = 2), /formatVersion 2 is not supported/],
    ['a short SHA', (c) => (c['weightsSha256'] = 'abc'), /weightsSha256 is not a SHA-256/],
    ['an unknown mode', (c) => (c['mode'] = 'cubic'), /mode "cubic" is unknown/],
    ['an unknown phi', (c) => (c['phi'] = 'tanh'), /phi "tanh" is unknown \(known: .*product/],
    ['rank 0', (c) => (c['rank'] = 0), /rank is not a whole number ≥ 1/],
    ['a fractional seed', (c) => (c['seed'] = 1.5), /seed is not a whole number/],
    ['another weights file', (c) => (c['weightsFile'] = 'w.bin'), /weightsFile must be/],
    ['no targets', (c) => (c['targets'] = []), /targets is not a non-empty list/],
    ['a target that is a string', (c) => (c['targets'] = ['fc1']), /targets\[0\] is not an object/],
    ['a target op', (c) => (target(c)['op'] = 'Einsum'), /targets\[0\]\.op "Einsum" is not Conv/],
    [
      'a target without weight',
      (c) => delete target(c)['weight'],
      /targets\[0\]\.weight is not a string/,
    ],
    [
      'rbf in neuron mode',
      (c) => Object.assign(target(c), { phi: 'rbf', mode: 'neuron', rank: null }),
      /targets\[0\]\.phi refused: phi 'rbf' needs mode/,
    ],
    [
      'a lowrank target without rank',
      (c) => (target(c)['rank'] = null),
      /targets\[0\]\.rank does not fit mode lowrank/,
    ],
    [
      'a negative stride',
      (c) => (target(c)['strides'] = [-1]),
      /targets\[0\]\.strides\[0\] is not a list of whole numbers/,
    ],
    [
      'an unknown role',
      (c) => (param(c)['role'] = 'quad_c'),
      /targets\[0\]\.params\[0\]\.role "quad_c" is not one of/,
    ],
    [
      'a misnamed parameter',
      (c) => (param(c)['name'] = 'x.quad_a'),
      /targets\[0\]\.params\[0\]\.name 'x\.quad_a' should be 'fc1\.weight\.quad_a'/,
    ],
    [
      'a parameter listed twice',
      (c) => (c['savedBaseParams'] = [{ name: param(c)['name'], shape: [1] }]),
      /savedBaseParams\[0\]\.name 'fc1\.weight\.quad_a' is listed twice/,
    ],
    [
      'a bad head',
      (c) => (c['head'] = { node: 'head', numClasses: 0, seed: 0 }),
      /head is not \{node, numClasses, seed\}/,
    ],
  ];
  for (const [what, breakIt, pattern] of faults) {
    it(`refuses ${what} in one line naming the file and field`, async () => {
      const { dir, config } = await saved();
      breakIt(config);
      const file = join(dir, ADAPTER_CONFIG_FILE);
      await writeFile(file, JSON.stringify(config));
      await assert.rejects(readAdapterConfig(dir), (e: unknown) => {
        assert.ok(e instanceof QuadranetFileError, String(e));
        assert.ok(!/[\r\n]/.test(e.message), 'one line');
        assert.ok(e.message.startsWith(`${file}: `), e.message);
        assert.match(e.message, pattern);
        assert.match(e.message, /the file is corrupt or not a quadranet adapter config$/);
        return true;
      });
    });
  }

  it('keeps fields it does not know (a newer writer’s additions pass through)', async () => {
    const { dir, config } = await saved();
    await writeFile(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify({ ...config, note: 'x' }));
    assert.equal(((await readAdapterConfig(dir)) as unknown as Json)['note'], 'x');
  });
});
