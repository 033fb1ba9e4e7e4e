/** TF op converters: elementwise arithmetic, activations, softmax, identity and casts. */

import type { Dim } from '../../../../ir/graph.js';
import { broadcastDims } from '../../../../ir/shapes/registry.js';
import type { Layout } from '../context.js';
import type { RuntimeValue, TfValue } from '../graph-context.js';
import { shapeOf } from '../graph-context.js';
import { attrFloat, input, nodeName, registerTfOp } from './registry.js';
import type { OpCall, OpConverter } from './registry.js';

// ---------------------------------------------------------------- elementwise

/** NumPy/TF broadcasting of shapes; mismatching known sizes are an error. */
export function broadcast(call: OpCall, shapes: Dim[][]): Dim[] {
  return broadcastDims(shapes, () =>
    call.cx.fail(
      call.node,
      `input shapes [${shapes.map((x) => x.join(', ')).join('] and [')}] do not broadcast`,
    ),
  );
}

/**
 * The IR names of elementwise operands in one layout, and that layout: the layout of the first
 * full-rank computed input, unless a lower-rank computed input needs TF order.
 */
export function elementwiseOperands(call: OpCall, values: TfValue[]) {
  const { cx, node } = call;
  const shape = broadcast(call, values.map(shapeOf));
  const r = shape.length;
  const runtime = values.filter((v): v is RuntimeValue => v.kind === 'value');
  const full = runtime.find((v) => v.shape.length === r);
  let layout: Layout = full?.layout ?? 'keras';
  if (runtime.some((v) => v.shape.length < r)) layout = 'keras';
  if (r < 3) layout = 'keras';
  const names = values.map((v) =>
    v.kind === 'value' ? cx.to(v, layout) : cx.operand(node, v, layout, r),
  );
  return { names, layout, shape };
}

function binary(op: string, post?: (call: OpCall, y: string) => string): OpConverter {
  return (call) => {
    if (call.inputs.length !== 2) call.cx.fail(call.node, `expects two inputs`);
    const { names, layout, shape } = elementwiseOperands(call, call.inputs);
    let y = call.cx.b.op(op, names, {}, post ? {} : nodeName(call));
    if (post) y = post(call, y);
    return [{ kind: 'value', name: y, layout, shape }];
  };
}

registerTfOp(['Add', 'AddV2', 'BiasAdd'], binary('Add'));
registerTfOp('Sub', binary('Sub'));
registerTfOp('Mul', binary('Mul'));
registerTfOp(['RealDiv', 'Div'], binary('Div'));
registerTfOp('Maximum', binary('Max'));
registerTfOp('Minimum', binary('Min'));
registerTfOp('Pow', binary('Pow'));
registerTfOp(
  'SquaredDifference',
  binary('Sub', (call, d) => call.cx.b.op('Mul', [d, d], {}, nodeName(call))),
);

registerTfOp('AddN', (call) => {
  const { names, layout, shape } = elementwiseOperands(call, call.inputs);
  const y = call.cx.b.op('Sum', names, {}, nodeName(call));
  return [{ kind: 'value', name: y, layout, shape }];
});

registerTfOp('Prelu', (call) => {
  const { names, layout, shape } = elementwiseOperands(call, call.inputs);
  const y = call.cx.b.op('PRelu', names, {}, nodeName(call));
  return [{ kind: 'value', name: y, layout, shape }];
});

function unary(emit: (call: OpCall, x: string) => string): OpConverter {
  return (call) => {
    const x = call.cx.runtime(call.node, call.inputs[0], 'x');
    return [{ ...x, name: emit(call, x.name) }];
  };
}

function simple(op: string, attrs: (call: OpCall) => Record<string, number> = () => ({})) {
  return unary((call, x) => call.cx.b.op(op, [x], attrs(call), nodeName(call)));
}

registerTfOp('Relu', simple('Relu'));
registerTfOp(
  'Elu',
  simple('Elu', () => ({ alpha: 1 })),
);
registerTfOp(
  'Selu',
  simple('Selu', () => ({ alpha: 1.6732632423543772, gamma: 1.0507009873554805 })),
);
registerTfOp('Sigmoid', simple('Sigmoid'));
registerTfOp('Tanh', simple('Tanh'));
registerTfOp('Softplus', simple('Softplus'));
registerTfOp('Exp', simple('Exp'));
registerTfOp('Log', simple('Log'));
registerTfOp('Sqrt', simple('Sqrt'));
registerTfOp('Neg', simple('Neg'));
registerTfOp('Abs', simple('Abs'));
registerTfOp('Floor', simple('Floor'));
registerTfOp('Reciprocal', simple('Reciprocal'));
registerTfOp('Erf', simple('Erf'));
registerTfOp(
  'LeakyRelu',
  simple('LeakyRelu', (call) => ({ alpha: attrFloat(call, 'alpha', 0.2) })),
);
registerTfOp(
  'Relu6',
  unary((call, x) =>
    call.cx.b.op('Clip', [x, call.cx.b.scalar(0), call.cx.b.scalar(6)], {}, nodeName(call)),
  ),
);
registerTfOp(
  'Rsqrt',
  unary((call, x) => call.cx.b.op('Reciprocal', [call.cx.b.sqrt(x)], {}, nodeName(call))),
);
registerTfOp(
  'Square',
  unary((call, x) => call.cx.b.op('Mul', [x, x], {}, nodeName(call))),
);

function softmax(op: 'Softmax' | 'LogSoftmax'): OpConverter {
  return (call) => {
    const x = call.cx.runtime(call.node, call.inputs[0], 'logits');
    const axis = call.cx.irAxis(x.layout, x.shape.length, -1);
    return [{ ...x, name: call.cx.b.op(op, [x.name], { axis }, nodeName(call)) }];
  };
}

registerTfOp('Softmax', softmax('Softmax'));
registerTfOp('LogSoftmax', softmax('LogSoftmax'));

// Inference-time identities.
registerTfOp(['Identity', 'StopGradient', 'Snapshot', 'PreventGradient'], (call) => [
  input(call, 0, 'x'),
]);

registerTfOp('Cast', (call) => {
  const dst = call.node.attr.DstT;
  const to = dst?.kind === 'type' ? dst.value : 'unknown';
  const x = input(call, 0, 'x');
  // Sizes may be cast between int32 and int64 (Shape's out_type); floats stay floats.
  if (x.kind === 'dims' && (to === 'DT_INT32' || to === 'DT_INT64')) return [x];
  if (to !== 'DT_FLOAT' || x.kind === 'dims' || (x.kind === 'const' && x.dtype !== 'float32'))
    call.cx.fail(call.node, `only float32 → float32 casts (and casts of sizes) are supported`);
  return [x];
});
