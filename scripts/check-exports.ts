/**
 * Checks exported ONNX models end to end (a manual sweep over scripts/export_torchvision.py's
 * output, not a test): import, quadratize with the defaults, compare the quadratized model's
 * outputs with the original's at init, compare ours with onnxruntime on the eval-mode file, and
 * take two adapter train steps. One line per file; exit 1 if any file failed.
 *
 *   npx tsx scripts/check-exports.ts DIR/*.onnx
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';
import { quadParamNames } from '../src/passes/quadratic-spec.js';
import { quadratize } from '../src/passes/quadratize.js';
import { Session } from '../src/runtime/session.js';
import { Trainer } from '../src/runtime/trainer.js';
import { Rng } from '../src/util/random.js';
import { loadModelSource } from '../src/workflow/model-source.js';

const BATCH = 2;

async function check(file: string): Promise<string> {
  const g = (await loadModelSource(file)).graph;
  const inp = g.inputs[0]!;
  const shape = inp.shape.slice(1).map(Number);
  const x = new Rng(1).uniformArray(BATCH * shape.reduce((a, b) => a * b, 1), -1, 1);
  const feeds = { [inp.name]: { dtype: 'float32' as const, dims: [BATCH, ...shape], data: x } };
  const first = async (m: typeof g) => {
    const s = await Session.create(m, { threads: 2 });
    try {
      return Object.values(await s.run(feeds))[0]!.data as Float32Array;
    } finally {
      await s.release();
    }
  };
  // A training-mode export holds the eval-mode one's statistics: the eval file is the reference.
  const evalFile = file.replace('_train_', '_eval_');
  let ref: Float32Array | undefined;
  if (existsSync(evalFile)) {
    const s = await ort.InferenceSession.create(evalFile);
    const out = await s.run({
      [s.inputNames[0]!]: new ort.Tensor('float32', x, [BATCH, ...shape]),
    });
    ref = out[s.outputNames[0]!]!.data as Float32Array;
  }
  const q = quadratize(g, { seed: 0 });
  const [yo, yq] = [await first(g), await first(q.graph)];
  let scale = 0;
  for (const v of yo) scale = Math.max(scale, Math.abs(v));
  // Relative to the output scale (absolute when the outputs are all zero, e.g. a zero head).
  const rel = (a: Float32Array, b: Float32Array) =>
    a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0) / (scale || 1);
  const trainer = await Trainer.create(q.graph, {
    batchSize: BATCH,
    loss: { kind: 'cross_entropy' },
    optimizer: { kind: 'adamw' },
    groups: [{ name: 'quad', params: quadParamNames(q.graph), lr: 1e-3 }],
    session: { threads: 2 },
  });
  const losses: number[] = [];
  try {
    for (let i = 0; i < 2; i++)
      losses.push((await trainer.trainStep({ x, y: Int32Array.of(1, 2), size: BATCH })).loss);
  } finally {
    await trainer.release();
  }
  const quadDiff = rel(yq, yo);
  const refDiff = ref ? rel(yo, ref) : undefined;
  const ok =
    quadDiff <= 1e-6 && (refDiff === undefined || refDiff <= 1e-5) && losses.every(Number.isFinite);
  return `${ok ? 'ok  ' : 'FAIL'} ${basename(file)}: ${q.targets.length} targets; quadratized vs original ${quadDiff.toExponential(1)}; ours vs onnxruntime ${refDiff?.toExponential(1) ?? '-'}; loss ${losses.map((l) => l.toFixed(4)).join(' → ')}`;
}

let failed = 0;
for (const f of process.argv.slice(2)) {
  let line: string;
  try {
    line = await check(f);
  } catch (e) {
    line = `FAIL ${basename(f)}: ${(e as Error).message.split('\n')[0]}`;
  }
  if (line.startsWith('FAIL')) failed++;
  console.log(line);
}
process.exitCode = failed ? 1 : 0;
