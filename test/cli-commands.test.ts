import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { assertUserError, cliIn } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'qn-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const cli = cliIn(dir);

describe('CLI commands on tiny models and data', () => {
  it('inspect --json lists layers, adaptability and latency', () => {
    const r = cli('inspect', 'arch:cnn', '--json', '--latency-runs', '3');
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(
      j.layers.map((l: { node: string; adaptable: boolean }) => [l.node, l.adaptable]),
      [
        ['conv1', true],
        ['conv2', true],
        ['head', false],
      ],
    );
    assert.equal(j.latency.length, 2);
    assert.ok(j.params > 0 && j.flops > 0);
  });

  it('quadratize writes model.onnx and the adapter files; --dry-run writes nothing', () => {
    const out = join(dir, 'q');
    let r = cli('quadratize', 'arch:mlp', '--dry-run', '--json', '-o', out);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      JSON.parse(r.stdout).targets.filter((t: { matched: boolean }) => t.matched).length,
      2,
    );
    assert.ok(!existsSync(join(out, 'model.onnx')));
    r = cli('quadratize', 'arch:mlp', '-o', out, '--rank', '2', '--phi', 'rbf');
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['model.onnx', 'adapter.safetensors', 'adapter_config.json'])
      assert.ok(existsSync(join(out, f)), f);
    assert.equal(JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')).phi, 'rbf');
  });

  it('adapt runs end to end, then report and eval read its results', () => {
    const run = join(dir, 'run');
    const r = cli(
      'adapt',
      'arch:mlp',
      '--data',
      'mnist:shift=invert,strength=0.3',
      '-o',
      run,
      '--epochs',
      '1',
      '--limit',
      '320',
      '--test-limit',
      '100',
      '--batch-size',
      '32',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.status, 'done');
    assert.equal(j.history.length, 1);
    for (const f of ['run.json', 'history.jsonl', 'model.onnx', 'adapter.safetensors', 'eval.json'])
      assert.ok(existsSync(join(run, f)), f);
    const rep = cli('report', run, '-o', join(dir, 'report.html'));
    assert.equal(rep.status, 0, rep.stderr);
    assert.ok(readFileSync(join(dir, 'report.html'), 'utf8').includes('<html'));
    const ev = cli(
      'eval',
      'arch:mlp',
      join(run, 'model.onnx'),
      '--data',
      'mnist',
      '--limit',
      '50',
      '--runs',
      '3',
      '--json',
    );
    assert.equal(ev.status, 0, ev.stderr);
    assert.equal(JSON.parse(ev.stdout).results.length, 2);
    // The run directory is not silently overwritten.
    assertUserError(
      cli('adapt', 'arch:mlp', '--data', 'mnist', '-o', run, '--limit', '64'),
      /already holds a run.*--resume/,
    );
  });

  it('demo runs the whole workflow on the embedded model (tiny budget)', () => {
    const out = join(dir, 'demo');
    const r = cli('demo', '--limit', '256', '--epochs', '1', '--plain', '-o', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Summary \(\d+ s\):/);
    for (const m of ['quadratic-adapt', 'linear-adapter', 'fine-tune', 'head-only', 'scratch'])
      assert.ok(existsSync(join(out, m, 'eval.json')), `${m}/eval.json`);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /Adapting the MNIST CNN to mnist:shift=rotate,strength=0.7/);
    assert.ok(existsSync(join(out, 'report.md')));
  });

  it('bench compares models side by side', () => {
    const ok = cli(
      'bench',
      'arch:mlp',
      join(dir, 'q', 'model.onnx'),
      '--runs',
      '3',
      '--batch-sizes',
      '1',
      '--json',
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).results[1].ratio.length, 1);
  });

  it('errors: missing file, non-ONNX file, unknown data spec, missing label column, input shape that does not fit', () => {
    assertUserError(cli('inspect', join(dir, 'nope.onnx')), /nope\.onnx: no such model file/);
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, 'this is not a model');
    assertUserError(cli('inspect', junk), /junk\.onnx: not a valid ONNX model/);
    assertUserError(
      cli('adapt', 'arch:mlp', '--data', 'imagenet', '-o', join(dir, 'x1')),
      /imagenet/,
    );
    const csv = join(dir, 'iris.csv');
    writeFileSync(
      csv,
      'a,b,c,d,species\n' +
        Array.from({ length: 40 }, (_, i) => `${i % 5},${i % 3},${i % 7},${i % 2},${i % 3}`).join(
          '\n',
        ) +
        '\n',
    );
    assertUserError(
      cli('train', 'arch:mlp:1x1x4', '--data', `csv:${csv}:label=kind`, '-o', join(dir, 'x2')),
      /no column 'kind'/,
    );
    assertUserError(
      cli('adapt', 'arch:cnn:3x32x32', '--data', 'mnist', '-o', join(dir, 'x3'), '--limit', '64'),
      /takes inputs of shape \[3,32,32\].*\[1,28,28\]/,
    );
    assertUserError(
      cli('adapt', 'arch:mlp', '--data', 'mnist', '-o', join(dir, 'x4'), '--rank', 'zero'),
      /rank/,
    );
  });
});
