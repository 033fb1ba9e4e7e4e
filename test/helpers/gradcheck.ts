import { backward } from '../../src/autodiff/backward.js';
import { GraphBuilder } from '../../src/ir/builder.js';
import { emptyGraph } from '../../src/ir/graph.js';
import { inferShapes, staticShape } from '../../src/ir/shapes/index.js';
import type { DType, Tensor } from '../../src/ir/tensor.js';
import { numel, tensor } from '../../src/ir/tensor.js';
import { Session } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/random.js';
import { expectAllClose } from './allclose.js';

/** One input of a gradient check. */
export interface CheckInput {
  dims: number[];
  /** Values; random normal when absent. */
  data?: number[];
  /** Element type; defaults to the case's dtype. Integer inputs become constants. */
  dtype?: DType;
  /** Whether to check this input's gradient (default: float inputs yes). */
  grad?: boolean;
  /** Keep the value constant (an initializer) instead of a graph input. */
  constant?: boolean;
}

/** A gradient check: a small graph, its inputs and tolerances. */
export interface GradCheckCase {
  /** Builds the op under test from the input names; returns the output to differentiate. */
  build: (b: GraphBuilder, x: Record<string, string>) => string;
  inputs: Record<string, CheckInput>;
  dtype: 'float32' | 'float64';
  /** Finite-difference step (default 1e-6 for float64, 1e-2 for float32). */
  eps?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
  /** Upstream gradient (random normal by default). */
  dy?: number[];
}

function asTensor(dtype: DType, dims: number[], data: number[]): Tensor {
  return tensor(dtype, dims, data);
}

/** The analytic gradients of sum(y * dy) from `backward`, and the forward loss function. */
export async function buildCheck(c: GradCheckCase) {
  const rng = new Rng(c.seed ?? 1);
  const g = emptyGraph('check');
  const b = new GraphBuilder(g);
  const names: Record<string, string> = {};
  const values: Record<string, number[]> = {};
  const wrt: string[] = [];
  for (const [name, inp] of Object.entries(c.inputs)) {
    const dtype = inp.dtype ?? c.dtype;
    const data = inp.data ?? Array.from({ length: numel(inp.dims) }, () => rng.normal());
    values[name] = data;
    const isFloat = dtype === 'float32' || dtype === 'float64';
    if (!isFloat || inp.constant) {
      g.initializers.set(name, asTensor(dtype, inp.dims, data));
    } else {
      b.input(name, dtype, inp.dims);
      if (inp.grad !== false) wrt.push(name);
    }
    names[name] = name;
  }
  const y = c.build(b, names);
  const yShape = staticShape(inferShapes(g), y);
  const dyData = c.dy ?? Array.from({ length: numel(yShape) }, () => rng.normal());
  const dyName = b.constant(asTensor(c.dtype, yShape, dyData), 'dy');
  const loss = b.op('ReduceSum', [b.mul(y, dyName)], { keepdims: 0 });
  b.output(loss, c.dtype, []);
  const { graph, grads } = backward(g, { loss, wrt });
  for (const w of wrt)
    graph.outputs.push({ name: grads.get(w)!, dtype: c.dtype, shape: c.inputs[w]!.dims });
  return { forward: g, graph, grads, wrt, values, loss };
}

/**
 * Checks every gradient of `c` against central finite differences of sum(y * dy), computed with
 * the forward graph in onnxruntime.
 */
export async function gradcheck(c: GradCheckCase): Promise<void> {
  const { forward, graph, grads, wrt, values, loss } = await buildCheck(c);
  const feeds = (over?: { name: string; i: number; delta: number }) => {
    const f: Record<string, { dtype: DType; dims: number[]; data: Float32Array | Float64Array }> =
      {};
    for (const w of forward.inputs) {
      const arr =
        c.dtype === 'float64'
          ? Float64Array.from(values[w.name]!)
          : Float32Array.from(values[w.name]!);
      if (over && over.name === w.name) arr[over.i] = arr[over.i]! + over.delta;
      f[w.name] = { dtype: c.dtype, dims: c.inputs[w.name]!.dims, data: arr };
    }
    return f;
  };
  const train = await Session.create(graph);
  const fwd = await Session.create(forward);
  const analytic = await train.run(feeds());
  const eps = c.eps ?? (c.dtype === 'float64' ? 1e-6 : 1e-2);
  const rtol = c.rtol ?? (c.dtype === 'float64' ? 1e-6 : 2e-2);
  const atol = c.atol ?? (c.dtype === 'float64' ? 1e-7 : 2e-3);
  for (const w of wrt) {
    const n = values[w]!.length;
    const numeric = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = (await fwd.run(feeds({ name: w, i, delta: eps }), [loss]))[loss]!.data[0] as number;
      const m = (await fwd.run(feeds({ name: w, i, delta: -eps }), [loss]))[loss]!
        .data[0] as number;
      numeric[i] = (p - m) / (2 * eps);
    }
    const got = analytic[grads.get(w)!]!.data as Float64Array;
    expectAllClose(got, numeric, { rtol, atol, what: `d/d${w}` });
  }
  await train.release();
  await fwd.release();
}
