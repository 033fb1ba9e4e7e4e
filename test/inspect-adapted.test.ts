/**
 * `inspect` of an adapted model counts its quadratic terms: the FLOPs it reports exceed the
 * original's by exactly the overhead `quadratize` printed (issue #14, honest accounting).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/quadranet.js', import.meta.url));
const model = fileURLToPath(new URL('../models/mnist-cnn.onnx', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'quadranet-inspect-adapted-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function json(...args: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

it('inspect of a quadratized model reports the original FLOPs plus the quadratic overhead', () => {
  const q = json('quadratize', model, '-o', join(dir, 'q'), '--rank', '4');
  const overhead = q['overhead'] as { baseFlops: number; quadFlops: number };
  assert.ok(overhead.quadFlops > 0);
  const original = json('inspect', model, '--latency-runs', '0');
  const adapted = json('inspect', join(dir, 'q', 'model.onnx'), '--latency-runs', '0');
  assert.equal(original['flops'], overhead.baseFlops);
  assert.equal(original['quadFlops'], 0);
  assert.equal(adapted['baseFlops'], overhead.baseFlops);
  assert.equal(adapted['quadFlops'], overhead.quadFlops);
  assert.equal(adapted['flops'], overhead.baseFlops + overhead.quadFlops);
  // Per layer too: the adapted layers carry their term's FLOPs.
  const layers = adapted['layers'] as Array<{ quadFlops?: number }>;
  assert.equal(
    layers.reduce((s, l) => s + (l.quadFlops ?? 0), 0),
    overhead.quadFlops,
  );
});
