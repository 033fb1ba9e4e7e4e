/**
 * The CLI as a new user meets it: adapters as files (apply / unload), progress during the
 * phases around training, no leftovers from failed runs, no silent overwrites.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { assertUserError, cliIn } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'qn-hygiene-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const cli = cliIn(dir);

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A tiny training run's flags (the model and data come first). */
const TINY = ['--epochs', '1', '--limit', '96', '--test-limit', '40', '--batch-size', '32'];

describe('adapters as files: apply and unload', () => {
  const q = join(dir, 'q');

  it('quadratize refuses an occupied directory unless --force', () => {
    let r = cli('quadratize', 'arch:mlp', '-o', q, '--rank', '2');
    assert.equal(r.status, 0, r.stderr);
    const before = sha(join(q, 'adapter.safetensors'));
    assertUserError(
      cli('quadratize', 'arch:mlp', '-o', q, '--rank', '3'),
      /already holds model\.onnx, adapter\.safetensors, adapter_config\.json; .*--force/,
    );
    assert.equal(sha(join(q, 'adapter.safetensors')), before, 'the refused run wrote nothing');
    r = cli('quadratize', 'arch:mlp', '-o', q, '--rank', '3', '--force');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(join(q, 'adapter_config.json'), 'utf8')).rank, 3);
  });

  it('apply rebuilds the adapted model on its base; unload takes it off again', () => {
    const a = join(dir, 'applied');
    const r = cli('apply', 'arch:mlp', q, '-o', a, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).targets, 2);
    // The same model quadratize wrote, byte for byte: structure and the saved weights.
    assert.deepEqual(readFileSync(join(a, 'model.onnx')), readFileSync(join(q, 'model.onnx')));
    assertUserError(cli('apply', 'arch:mlp', q, '-o', a), /already holds model\.onnx.*--force/);

    const off = join(dir, 'disabled');
    assert.equal(cli('apply', 'arch:mlp', q, '-o', off, '--disable').status, 0);
    assert.notDeepEqual(readFileSync(join(off, 'model.onnx')), readFileSync(join(a, 'model.onnx')));
    // Disabled and unloaded models give the base model's outputs.
    const un = join(dir, 'unloaded');
    const u = cli('unload', join(a, 'model.onnx'), '-o', un);
    assert.equal(u.status, 0, u.stderr);
    const ev = cli(
      'eval',
      'arch:mlp',
      join(off, 'model.onnx'),
      join(un, 'model.onnx'),
      join(a, 'model.onnx'),
      '--data',
      'mnist',
      '--limit',
      '64',
      '--runs',
      '1',
      '--batch-sizes',
      '1',
      '--json',
    );
    assert.equal(ev.status, 0, ev.stderr);
    const losses = JSON.parse(ev.stdout).results.map((x: { loss: number }) => x.loss) as number[];
    assert.equal(losses[1], losses[0], 'disabled = base');
    assert.equal(losses[2], losses[0], 'unloaded = base');
    assertUserError(
      cli('unload', join(un, 'model.onnx'), '-o', join(dir, 'u2')),
      /has no quadratic adapter to unload/,
    );
  });

  it('apply refuses another base model and an adapted model in one line, writing nothing', () => {
    const out = join(dir, 'wrong');
    assertUserError(
      cli('apply', 'arch:cnn', q, '-o', out),
      /adapter_config\.json belongs to a base model with SHA-256 [0-9a-f]{16}…, but arch:cnn has SHA-256 [0-9a-f]{16}…/,
    );
    assertUserError(
      cli('apply', join(q, 'model.onnx'), q, '-o', out),
      /already carries a quadratic adapter/,
    );
    assertUserError(cli('apply', 'arch:mlp', join(dir, 'none'), '-o', out), /not found/);
    assert.ok(!existsSync(out), 'no output directory');
  });
});

describe('no leftovers, no silent overwrites', () => {
  it('a failed adapt or train leaves no output directory (or an occupied one as it was)', () => {
    const csv = join(dir, 'iris.csv');
    writeFileSync(
      csv,
      'a,b,c,d,species\n' +
        Array.from({ length: 40 }, (_, i) => `${i % 5},${i % 3},${i % 7},${i % 2},${i % 3}`).join(
          '\n',
        ) +
        '\n',
    );
    // A folder of images, one of which is corrupt.
    const imgs = join(dir, 'imgs');
    for (const c of ['a', 'b']) {
      mkdirSync(join(imgs, c), { recursive: true });
      const png = new PNG({ width: 28, height: 28 });
      png.data.fill(c === 'a' ? 40 : 200);
      writeFileSync(join(imgs, c, 'ok.png'), PNG.sync.write(png));
    }
    writeFileSync(join(imgs, 'b', 'broken.png'), 'not a png');
    const cases: [string[], RegExp][] = [
      [['adapt', 'arch:mlp', '--data', 'mnist:shift=sideways'], /unknown shift/],
      [['train', 'arch:mlp:1x1x4', '--data', `csv:${csv}:label=kind`], /no column 'kind'/],
      [['adapt', 'arch:mlp', '--data', `folder:${imgs}`], /broken\.png/],
      [['adapt', 'arch:cnn:3x32x32', '--data', 'mnist'], /takes inputs of shape \[3,32,32\]/],
    ];
    for (const [i, [args, pattern]] of cases.entries()) {
      const out = join(dir, `failed-${i}`);
      assertUserError(cli(...args, '-o', out, ...TINY), pattern);
      assert.ok(!existsSync(out), `${args.join(' ')}: ${out} was left behind`);
    }
    // A directory the user made stays, without the failed run's files.
    const mine = join(dir, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'notes.txt'), 'mine');
    assertUserError(cli(...cases[3]![0], '-o', mine, ...TINY), cases[3]![1]);
    assert.deepEqual(readdirSync(mine), ['notes.txt']);
  });

  it('adapt shows every phase in --plain lines, takes latency flags, and --force starts afresh', () => {
    const run = join(dir, 'run');
    const args = ['adapt', 'arch:mlp', '--data', 'mnist', '-o', run, ...TINY, '--plain'];
    const r = cli(...args, '--latency-runs', '2', '--batch-sizes', '1,3');
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: the test split has only 40 examples: .* 91–100% \(95% interval\)/,
    );
    assert.match(r.stdout, /test accuracy \d+\.\d\d% \(95% interval \d+\.\d–\d+\.\d%, n = 40\)/);
    for (const phase of [
      /quadratic-adapt: evaluating the trained model on the test split \(40 examples\)\.\.\./,
      /quadratic-adapt: evaluating the trained model on the test split: done in \d+\.\d s/,
      /quadratic-adapt: timing inference \(batch 1, 3\) \(4 runs\)\.\.\./,
      /quadratic-adapt: evaluating the original model on the test split \(40 examples\)\.\.\./,
    ])
      assert.match(r.stderr, phase);
    const evalJson = JSON.parse(readFileSync(join(run, 'eval.json'), 'utf8'));
    assert.deepEqual(
      evalJson.latency.map((l: { batchSize: number }) => l.batchSize),
      [1, 3],
    );
    // Occupied: refused, then replaced with --force (the old run's files go).
    assertUserError(cli(...args), /already holds a run; .*--force/);
    writeFileSync(join(run, 'checkpoints', 'step-99999999.stale'), 'old');
    const f = cli(...args, '--force', '--json');
    assert.equal(f.status, 0, f.stderr);
    assert.equal(JSON.parse(f.stdout).status, 'done');
    assert.ok(!existsSync(join(run, 'checkpoints', 'step-99999999.stale')));
  });

  it('eval and inspect show their phases in --plain lines', () => {
    const ev = cli(
      'eval',
      'arch:mlp',
      '--data',
      'mnist',
      '--limit',
      '30',
      '--runs',
      '2',
      '--plain',
    );
    assert.equal(ev.status, 0, ev.stderr);
    assert.match(ev.stderr, /eval: evaluating arch:mlp \(30 examples\)\.\.\./);
    assert.match(ev.stderr, /eval: timing inference \(batch 1, 32\) \(4 runs\)\.\.\./);
    // 30 examples: even 30 of 30 right is only known to lie in 89-100%.
    assert.match(
      ev.stderr,
      /warning: only 30 test examples: .* anywhere in 89–100% \(95% interval\)/,
    );
    const ins = cli('inspect', 'arch:mlp', '--latency-runs', '2', '--plain');
    assert.equal(ins.status, 0, ins.stderr);
    assert.match(ins.stderr, /inspect: timing inference \(batch 1, 32\) \(4 runs\)\.\.\./);
    assert.match(ins.stderr, /inspect: timing inference \(batch 1, 32\): done in/);
  });
});
