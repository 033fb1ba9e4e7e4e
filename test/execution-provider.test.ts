/**
 * `--ep`: cpu runs; webgpu runs where a GPU and its Vulkan driver are present, and is otherwise
 * refused in one line that names the fix (this machine class has no GPU).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Session } from '../src/runtime/session.js';
import { importModel } from '../src/io/import/importers.js';
import { expectAllClose } from './helpers/allclose.js';
import { cliIn } from './helpers/cli.js';

const model = fileURLToPath(new URL('../models/mnist-cnn.onnx', import.meta.url));

const cli = cliIn();

it('inspect --ep cpu times the model; an unknown provider is refused by the flag parser', () => {
  const ok = cli('inspect', model, '--json', '--latency-runs', '2', '--ep', 'cpu');
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok((JSON.parse(ok.stdout) as { latency: unknown[] }).latency.length > 0);
  const bad = cli('inspect', model, '--ep', 'cuda');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--ep .*cuda.*(cpu|webgpu)/);
});

it('webgpu: same outputs as cpu where it runs, else a one-line refusal naming --ep cpu', async () => {
  const { graph } = await importModel(model);
  const x = {
    dtype: 'float32' as const,
    dims: [2, 1, 28, 28],
    data: new Float32Array(2 * 784).fill(0.5),
  };
  const cpu = await Session.create(graph, { ep: 'cpu' });
  const ref = Object.values(await cpu.run({ [graph.inputs[0]!.name]: x }))[0]!.data as Float32Array;
  await cpu.release();
  let gpu: Session | undefined;
  try {
    gpu = await Session.create(graph, { ep: 'webgpu' });
  } catch (e) {
    assert.equal((e as Error).name, 'ExecutionProviderError');
    assert.match(
      (e as Error).message,
      /^the webgpu execution provider cannot run here .*use --ep cpu$/,
    );
    assert.doesNotMatch((e as Error).message, /\n/);
    const r = cli('inspect', model, '--latency-runs', '1', '--ep', 'webgpu');
    assert.equal(r.status, 1);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('quadranet:'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /webgpu execution provider cannot run here.*--ep cpu/);
    return;
  }
  const out = Object.values(await gpu.run({ [graph.inputs[0]!.name]: x }))[0]!.data as Float32Array;
  await gpu.release();
  expectAllClose(out, ref, { rtol: 1e-3, atol: 1e-4, what: 'webgpu vs cpu' });
});
