/**
 * A small training run in its own process, for test/kill-resume.test.ts: a narrow MLP on a few
 * hundred MNIST images, checkpointing into a run directory. The parent kills it (SIGKILL) or
 * interrupts it (SIGINT) and restarts it with --resume.
 *
 *   node --import tsx test/helpers/train-child.ts --run-dir DIR [--resume] [--every N]
 *     [--epochs E] [--limit N] [--seed S] [--hold-at N] [--sigint-at N]
 *
 * Prints one line per event on stdout: `ready`, `step N` after every step (before that step's
 * checkpoint is written), then `done N` or `interrupted N`. On `done` the final parameters are
 * written to DIR/final.safetensors. SIGINT aborts the run after the current step; fit then saves
 * a checkpoint and the process exits 0.
 *
 * So that no test depends on how fast this process runs compared with its parent: --hold-at N
 * blocks the process for good after it reports step N (a parent that kills it a random time
 * after an earlier step cannot find it finished), and --sigint-at N makes it send itself SIGINT
 * after step N (the interrupt lands at that step however late the parent reads its output).
 */

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadMnist } from '../../src/data/mnist.js';
import type { SafeTensor } from '../../src/io/formats/safetensors.js';
import { writeSafetensors } from '../../src/io/formats/safetensors.js';
import { toSafeTensor } from '../../src/io/formats/tensors.js';
import { mlp } from '../../src/models/zoo.js';
import { fit } from '../../src/runtime/fit.js';
import { Trainer } from '../../src/runtime/trainer.js';

const { values } = parseArgs({
  options: {
    'run-dir': { type: 'string' },
    resume: { type: 'boolean', default: false },
    every: { type: 'string', default: '1' },
    epochs: { type: 'string', default: '3' },
    limit: { type: 'string', default: '480' },
    seed: { type: 'string', default: '5' },
    'hold-at': { type: 'string' },
    'sigint-at': { type: 'string' },
  },
});
const runDir = values['run-dir'];
if (!runDir) throw new Error('--run-dir is required');

// Wired before anything slow, so an early SIGINT is not fatal either.
const ac = new AbortController();
process.on('SIGINT', () => ac.abort());

const say = (line: string): void => {
  // Pipes are synchronous on Linux, so a line is out before the process can be killed after it.
  process.stdout.write(`${line}\n`);
};

const holdAt = values['hold-at'] === undefined ? undefined : Number(values['hold-at']);
const sigintAt = values['sigint-at'] === undefined ? undefined : Number(values['sigint-at']);

const epochs = Number(values.epochs);
const train = await loadMnist({ split: 'train', limit: Number(values.limit) });
const model = mlp({ seed: Number(values.seed), width: 0.25 });
const params = [...model.initializers.keys()];
const batchSize = 16;
const trainer = await Trainer.create(model, {
  batchSize,
  loss: { kind: 'cross_entropy' },
  optimizer: { kind: 'adamw' },
  groups: [{ name: 'all', params, lr: 2e-3, weightDecay: 1e-4 }],
  schedule: { warmupSteps: 5, totalSteps: Math.floor(train.n / batchSize) * epochs },
});
say('ready');
const result = await fit(trainer, {
  train,
  epochs,
  seed: Number(values.seed),
  runDir,
  resume: values.resume,
  checkpointEvery: Number(values.every),
  signal: ac.signal,
  onProgress: (p) => {
    if (p.kind !== 'step') return;
    say(`step ${p.step}`);
    // Through the real signal path: the handler above runs on the next event-loop turn, which
    // comes within the next step (every step awaits onnxruntime).
    if (p.step === sigintAt) process.kill(process.pid, 'SIGINT');
    // Blocks without a timeout, event loop included, until the parent's SIGKILL.
    if (p.step === holdAt) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  },
});
if (result.status === 'done') {
  const tensors: Record<string, SafeTensor> = {};
  for (const [k, v] of trainer.params) tensors[k] = toSafeTensor(v);
  await writeSafetensors(join(runDir, 'final.safetensors'), tensors);
}
await trainer.release();
say(`${result.status} ${trainer.step}`);
