import type { Dim, Graph, Node, ValueInfo } from './graph.js';
import {
  attrInt,
  attrInts,
  attrString,
  GraphError,
  implicitInputs,
  topoSort,
  untypedValues,
} from './graph.js';
import type { DType } from './tensor.js';
import { dtypeFromOnnx, toNumbers } from './tensor.js';
import { axisInRange, sliceBounds, wrapAxis } from './axes.js';

/** What a shape rule sees of one node. */
export interface ShapeContext {
  node: Node;
  /** Type and shape of each input ('' inputs give undefined). */
  inputs: (ValueInfo | undefined)[];
  /** The integer values of an input when known statically (initializers, Shape chains). */
  value(index: number): number[] | undefined;
  /** Like `value`, but entries may be symbolic dims (e.g. the batch size from a Shape op). */
  dims(index: number): Dim[] | undefined;
  /** The float values of a constant input (initializer), e.g. Resize scales. */
  floats(index: number): number[] | undefined;
  /** Type and shape of any value inferred so far (subgraphs read outer values by name). */
  lookup(name: string): ValueInfo | undefined;
}

/** Output types and shapes of a node, plus statically known int64 values (shape arithmetic). */
export interface ShapeResult {
  outputs: { dtype: DType; shape: Dim[] }[];
  /** The rule cannot tell (e.g. an If with untyped branches): treat the node as unsupported. */
  unknown?: boolean;
  values?: (Dim[] | undefined)[];
}

/** Computes a node's output types and shapes from its inputs. */
export type ShapeRule = (ctx: ShapeContext) => ShapeResult;

const rules = new Map<string, ShapeRule>();

/** Registers the shape rule of an op type. */
export function registerShapeRule(opType: string | string[], rule: ShapeRule): void {
  for (const t of Array.isArray(opType) ? opType : [opType]) rules.set(t, rule);
}

/** Op types that have a shape rule. */
export function shapeRuleOps(): string[] {
  return [...rules.keys()].sort();
}

/** The inferred type and shape of every value, and the nodes whose op had no rule. */
export interface ShapeInfo {
  values: Map<string, ValueInfo>;
  /** Statically known integer contents (e.g. of Shape → Gather → Concat chains). */
  constants: Map<string, Dim[]>;
  unsupported: Node[];
}

/**
 * Infers dtype and shape of every value in the graph, in topological order. Nodes whose op has
 * no rule are listed in `unsupported` and their outputs left unknown (callers decide whether
 * that is an error).
 */
export function inferShapes(g: Graph): ShapeInfo {
  const values = new Map<string, ValueInfo>();
  const constants = new Map<string, Dim[]>();
  for (const v of g.inputs) values.set(v.name, v);
  for (const [name, t] of g.initializers) {
    values.set(name, { name, dtype: t.dtype, shape: [...t.dims] });
    if ((t.dtype === 'int64' || t.dtype === 'int32') && t.data.length <= 64)
      constants.set(name, toNumbers(t));
  }
  // Small float constants (Resize scales written as Constant nodes, or a Concat of them, as
  // torch.onnx.export writes nn.Upsample), so `floats` sees more than initializers.
  const floatValues = new Map<string, number[]>();
  for (const [name, t] of g.initializers) {
    if (
      (t.dtype === 'float32' || t.dtype === 'float64') &&
      t.dims.length <= 1 &&
      t.data.length <= 64
    )
      floatValues.set(name, toNumbers(t));
  }
  const unsupported: Node[] = [];
  for (const node of topoSort(g)) {
    const rule = node.domain === '' ? rules.get(node.opType) : undefined;
    const inputs = node.inputs.map((i) => (i ? values.get(i) : undefined));
    if (!rule || inputs.some((v, k) => node.inputs[k] && !v)) {
      if (!rule) unsupported.push(node);
      continue;
    }
    let res: ShapeResult;
    try {
      res = rule({
        node,
        inputs,
        value: (k) => {
          const v = node.inputs[k] ? constants.get(node.inputs[k]!) : undefined;
          return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
        },
        dims: (k) => (node.inputs[k] ? constants.get(node.inputs[k]!) : undefined),
        lookup: (name) => values.get(name),
        floats: (k) => {
          const name = node.inputs[k];
          const t = name ? g.initializers.get(name) : undefined;
          if (t) return t.data.length > 0 ? toNumbers(t) : undefined;
          const f = name ? floatValues.get(name) : undefined;
          return f && f.length > 0 ? f : undefined;
        },
      });
    } catch (e) {
      if (e instanceof GraphError) throw e;
      throw new GraphError(
        `node '${node.name}' (${node.opType}): ${(e as Error).message}`,
        node.name,
      );
    }
    if (res.unknown) {
      unsupported.push(node);
      continue;
    }
    res.outputs.forEach((o, k) => {
      const name = node.outputs[k];
      if (name) values.set(name, { name, dtype: o.dtype, shape: o.shape });
    });
    res.values?.forEach((v, k) => {
      const name = node.outputs[k];
      if (name && v) constants.set(name, v);
    });
    const f = smallFloats(node, floatValues);
    if (f && node.outputs[0]) floatValues.set(node.outputs[0], f);
  }
  return { values, constants, unsupported };
}

/** The value of a small float Constant node, or of a Concat of known small float vectors. */
function smallFloats(node: Node, known: Map<string, number[]>): number[] | undefined {
  if (node.domain !== '') return undefined;
  if (node.opType === 'Constant') {
    const a = node.attrs['value'];
    if (a?.type !== 'tensor' || a.value.dims.length > 1 || a.value.data.length > 64)
      return undefined;
    return a.value.dtype === 'float32' || a.value.dtype === 'float64'
      ? toNumbers(a.value)
      : undefined;
  }
  if (node.opType === 'Concat') {
    const parts = node.inputs.map((i) => (i ? known.get(i) : undefined));
    return parts.every((p) => p) ? (parts as number[][]).flat() : undefined;
  }
  return undefined;
}

/** Static shape of a value, or a GraphError naming it when unknown or symbolic. */
export function staticShape(info: ShapeInfo, name: string): number[] {
  const v = info.values.get(name);
  if (!v) throw new GraphError(`the shape of '${name}' could not be inferred`);
  if (v.shape.some((d) => typeof d !== 'number')) {
    throw new GraphError(
      // Derived dims carry primes (height'); shown by the name they derive from.
      `value ${name} has a symbolic shape [${v.shape.map((d) => String(d).replace(/'+$/, '')).join(',')}]; a static shape is needed here: fix the model's open input size (the CLI's --input-shape, or the data's size)`,
    );
  }
  return v.shape as number[];
}

function fail(ctx: ShapeContext, msg: string): never {
  throw new GraphError(`node '${ctx.node.name}' (${ctx.node.opType}): ${msg}`, ctx.node.name);
}

function req(ctx: ShapeContext, i: number): ValueInfo {
  const v = ctx.inputs[i];
  if (!v) fail(ctx, `input ${i} is missing`);
  return v;
}

function normAxis(ctx: ShapeContext, axis: number, rank: number): number {
  const a = axisInRange(axis, rank);
  if (a === undefined) fail(ctx, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Numpy-style broadcast of shapes. */
export function broadcastShapes(ctx: ShapeContext | undefined, shapes: Dim[][]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i];
      if (e === undefined || e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e) {
        if (typeof d === 'number' && typeof e === 'number') {
          const msg = `shapes [${shapes.map((x) => x.join(',')).join('] and [')}] do not broadcast`;
          if (ctx) fail(ctx, msg);
          throw new Error(msg);
        }
        if (typeof d === 'string') d = e;
      }
    }
    out.push(d);
  }
  return out;
}

const same: ShapeRule = (ctx) => ({
  outputs: [{ dtype: req(ctx, 0).dtype, shape: [...req(ctx, 0).shape] }],
});

registerShapeRule(
  [
    'Identity',
    'Neg',
    'Sqrt',
    'Exp',
    'Log',
    'Relu',
    'LeakyRelu',
    'Sigmoid',
    'Tanh',
    'Erf',
    'Gelu',
    'Softmax',
    'LogSoftmax',
    'Abs',
    'Reciprocal',
    'Sign',
    'Clip',
    'HardSigmoid',
    'HardSwish',
    'Elu',
    'Selu',
    'Softplus',
    'Floor',
    'Ceil',
    'Round',
    'Cos',
    'Sin',
    'Mish',
    'PRelu',
    'Celu',
    'Softsign',
    'ThresholdedRelu',
    'Atan',
    'CumSum',
    'Trilu',
    'InstanceNormalization',
    'GroupNormalization',
    'LpNormalization',
    'ScatterND',
    'ScatterElements',
  ],
  same,
);

registerShapeRule('GatherElements', (ctx) => ({
  outputs: [{ dtype: req(ctx, 0).dtype, shape: [...req(ctx, 1).shape] }],
}));

registerShapeRule(['DepthToSpace', 'SpaceToDepth'], (ctx) => {
  const x = req(ctx, 0).shape;
  const bs = attrInt(ctx.node, 'blocksize', 0);
  if (x.length !== 4 || bs < 1) fail(ctx, `needs a rank-4 input and a positive blocksize`);
  const up = ctx.node.opType === 'DepthToSpace';
  const scale = (d: Dim, f: number): Dim =>
    typeof d !== 'number' ? `${d}*${f}` : f >= 1 ? d * f : d / Math.round(1 / f);
  const [n, c, h, w] = x as [Dim, Dim, Dim, Dim];
  const shape: Dim[] = up
    ? [n, scale(c, 1 / (bs * bs)), scale(h, bs), scale(w, bs)]
    : [n, scale(c, bs * bs), scale(h, 1 / bs), scale(w, 1 / bs)];
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape }] };
});

registerShapeRule('Einsum', (ctx) => {
  const eq = attrString(ctx.node, 'equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  const terms = lhs.split(',');
  if (eq.includes('.') || terms.length !== ctx.node.inputs.length)
    fail(ctx, `equation '${eq}' is not supported (no ellipsis, one term per input)`);
  const size = new Map<string, Dim>();
  terms.forEach((t, k) => {
    const s = req(ctx, k).shape;
    if (s.length !== t.length)
      fail(ctx, `term '${t}' does not match input ${k} of rank ${s.length}`);
    [...t].forEach((ch, i) => {
      const prev = size.get(ch);
      if (prev === undefined || prev === 1) size.set(ch, s[i]!);
    });
  });
  let out = rhs;
  if (out === undefined) {
    const counts = new Map<string, number>();
    for (const ch of lhs.replace(/,/g, '')) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    out = [...counts]
      .filter(([, k]) => k === 1)
      .map(([ch]) => ch)
      .sort()
      .join('');
  }
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: [...out].map((ch) => size.get(ch)!) }] };
});

registerShapeRule('NonZero', (ctx) => ({
  outputs: [{ dtype: 'int64', shape: [req(ctx, 0).shape.length, `nonzero_${ctx.node.name}`] }],
}));

function elementwise(outDtype?: DType): ShapeRule {
  return (ctx) => {
    const ins = ctx.inputs.filter((v): v is ValueInfo => !!v);
    return {
      outputs: [
        {
          dtype: outDtype ?? ins[0]!.dtype,
          shape: broadcastShapes(
            ctx,
            ins.map((v) => v.shape),
          ),
        },
      ],
    };
  };
}
registerShapeRule(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean'], (ctx) => {
  const r = elementwise()(ctx);
  const [a, b] = [ctx.value(0), ctx.value(1)];
  // Shape arithmetic on small int vectors (e.g. batch * channels) stays static.
  if (
    a &&
    b &&
    ctx.node.inputs.length === 2 &&
    (a.length === b.length || a.length === 1 || b.length === 1)
  ) {
    const n = Math.max(a.length, b.length);
    const f = {
      Add: (x: number, y: number) => x + y,
      Sub: (x: number, y: number) => x - y,
      Mul: (x: number, y: number) => x * y,
      Div: (x: number, y: number) => Math.trunc(x / y),
    }[ctx.node.opType as 'Add'];
    if (f)
      r.values = [
        Array.from({ length: n }, (_, i) =>
          f(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!),
        ),
      ];
  }
  return r;
});
registerShapeRule(
  ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Not'],
  elementwise('bool'),
);
registerShapeRule('Where', (ctx) => ({
  outputs: [
    {
      dtype: req(ctx, 1).dtype,
      shape: broadcastShapes(
        ctx,
        ctx.inputs.map((v) => v!.shape),
      ),
    },
  ],
}));

registerShapeRule('Cast', (ctx) => {
  const to = dtypeFromOnnx(attrInt(ctx.node, 'to', 1));
  if (!to) fail(ctx, `unsupported target type`);
  return { outputs: [{ dtype: to, shape: [...req(ctx, 0).shape] }], values: [ctx.dims(0)] };
});

registerShapeRule('Shape', (ctx) => {
  const s = req(ctx, 0).shape;
  const start = attrInt(ctx.node, 'start', 0);
  const end = attrInt(ctx.node, 'end', s.length);
  const sl = s.slice(start < 0 ? start + s.length : start, end < 0 ? end + s.length : end);
  return { outputs: [{ dtype: 'int64', shape: [sl.length] }], values: [sl] };
});

registerShapeRule('Size', () => ({ outputs: [{ dtype: 'int64', shape: [] }] }));

/** Output spatial size of a convolution or pooling window. */
export function convOutSize(
  inSize: Dim,
  k: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
  ceil = false,
): Dim {
  if (typeof inSize !== 'number') return `${inSize}'`;
  const eff = (k - 1) * dilation + 1;
  const v = (inSize + padBegin + padEnd - eff) / stride;
  return (ceil ? Math.ceil(v) : Math.floor(v)) + 1;
}

/** Explicit pads for a conv-like node, resolving auto_pad (SAME_UPPER/SAME_LOWER/VALID). */
export function resolvePads(
  node: Node,
  inSpatial: Dim[],
  kernel: number[],
  strides: number[],
  dilations: number[],
): number[] {
  const n = kernel.length;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') return attrInts(node, 'pads', new Array(2 * n).fill(0));
  if (autoPad === 'VALID') return new Array(2 * n).fill(0);
  const pads = new Array(2 * n).fill(0);
  for (let i = 0; i < n; i++) {
    const size = inSpatial[i];
    if (typeof size !== 'number' && strides[i] === 1) {
      // Stride 1: SAME pads are (k−1)·d in all, whatever the (open) input size.
      const total = (kernel[i]! - 1) * dilations[i]!;
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_LOWER' ? total - small : small;
      pads[i + n] = total - pads[i];
      continue;
    }
    if (typeof size !== 'number') {
      throw new GraphError(
        `node '${node.name}': auto_pad ${autoPad} with stride ${strides[i]} needs a static input size (give one with --input-shape, or re-export with explicit pads)`,
        node.name,
      );
    }
    const out = Math.ceil(size / strides[i]!);
    const total = Math.max(
      0,
      (out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - size,
    );
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_LOWER' ? total - small : small;
    pads[i + n] = total - pads[i];
  }
  return pads;
}

/** Kernel, strides, dilations and explicit pads of a Conv/ConvTranspose/pool node. */
export function convParams(node: Node, x: ValueInfo, wShape?: Dim[]) {
  const spatial = x.shape.slice(2);
  const kernel =
    attrInts(node, 'kernel_shape') ?? (wShape ? (wShape.slice(2) as number[]) : undefined) ?? [];
  const n = kernel.length;
  const strides = attrInts(node, 'strides', new Array(n).fill(1));
  const dilations = attrInts(node, 'dilations', new Array(n).fill(1));
  const pads = resolvePads(node, spatial, kernel, strides, dilations);
  return { spatial, kernel, strides, dilations, pads };
}

registerShapeRule('Conv', (ctx) => {
  const x = req(ctx, 0);
  const w = req(ctx, 1);
  const { spatial, kernel, strides, dilations, pads } = convParams(ctx.node, x, w.shape);
  const n = kernel.length;
  const group = attrInt(ctx.node, 'group', 1);
  if (
    typeof x.shape[1] === 'number' &&
    typeof w.shape[1] === 'number' &&
    x.shape[1] !== (w.shape[1] as number) * group
  ) {
    fail(ctx, `input has ${x.shape[1]} channels but the weight expects ${w.shape[1]}×${group}`);
  }
  const out = spatial.map((s, i) =>
    convOutSize(s, kernel[i]!, strides[i]!, dilations[i]!, pads[i]!, pads[i + n]!),
  );
  return { outputs: [{ dtype: x.dtype, shape: [x.shape[0]!, w.shape[0]!, ...out] }] };
});

registerShapeRule('ConvTranspose', (ctx) => {
  const x = req(ctx, 0);
  const w = req(ctx, 1);
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  const { spatial, kernel, strides, dilations, pads } = convParams(
    autoPad.startsWith('SAME')
      ? { ...ctx.node, attrs: { ...ctx.node.attrs, auto_pad: { type: 'string', value: 'VALID' } } }
      : ctx.node,
    x,
    w.shape,
  );
  const n = kernel.length;
  const group = attrInt(ctx.node, 'group', 1);
  // SAME_* for ConvTranspose means output = input · stride (pads then follow from it).
  if (autoPad.startsWith('SAME') && !attrInts(ctx.node, 'output_shape')) {
    const cout = typeof w.shape[1] === 'number' ? (w.shape[1] as number) * group : w.shape[1]!;
    const out = spatial.map((s, i) => (typeof s === 'number' ? s * strides[i]! : `${s}'`));
    return { outputs: [{ dtype: x.dtype, shape: [x.shape[0]!, cout, ...out] }] };
  }
  const outPad = attrInts(ctx.node, 'output_padding', new Array(n).fill(0));
  const outShape = attrInts(ctx.node, 'output_shape');
  const out = spatial.map((s, i) =>
    outShape
      ? outShape[i]!
      : typeof s === 'number'
        ? strides[i]! * (s - 1) +
          outPad[i]! +
          (kernel[i]! - 1) * dilations[i]! +
          1 -
          pads[i]! -
          pads[i + n]!
        : `${s}'`,
  );
  const cout = typeof w.shape[1] === 'number' ? (w.shape[1] as number) * group : w.shape[1]!;
  return { outputs: [{ dtype: x.dtype, shape: [x.shape[0]!, cout, ...out] }] };
});

function pool(globalPool: boolean): ShapeRule {
  return (ctx) => {
    const x = req(ctx, 0);
    if (globalPool)
      return {
        outputs: [
          { dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] },
        ],
      };
    const { spatial, kernel, strides, dilations, pads } = convParams(ctx.node, x);
    const n = kernel.length;
    const ceil = attrInt(ctx.node, 'ceil_mode', 0) === 1;
    const out = spatial.map((s, i) =>
      convOutSize(s, kernel[i]!, strides[i]!, dilations[i]!, pads[i]!, pads[i + n]!, ceil),
    );
    const shape = [x.shape[0]!, x.shape[1]!, ...out];
    return {
      outputs: ctx.node.outputs.map((_, k) => ({ dtype: k === 0 ? x.dtype : 'int64', shape })),
    };
  };
}
registerShapeRule(['MaxPool', 'AveragePool', 'LpPool'], pool(false));
registerShapeRule(['GlobalAveragePool', 'GlobalMaxPool'], pool(true));

registerShapeRule('Gemm', (ctx) => {
  const a = req(ctx, 0);
  const b = req(ctx, 1);
  const ta = attrInt(ctx.node, 'transA', 0);
  const tb = attrInt(ctx.node, 'transB', 0);
  const m = ta ? a.shape[1]! : a.shape[0]!;
  const ka = ta ? a.shape[0]! : a.shape[1]!;
  const kb = tb ? b.shape[1]! : b.shape[0]!;
  const n = tb ? b.shape[0]! : b.shape[1]!;
  if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb)
    fail(ctx, `inner dimensions ${ka} and ${kb} differ`);
  return { outputs: [{ dtype: a.dtype, shape: [m, n] }] };
});

registerShapeRule('MatMul', (ctx) => {
  const a = req(ctx, 0).shape;
  const b = req(ctx, 1).shape;
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const k1 = a2[a2.length - 1]!;
  const k2 = b2[b2.length - 2]!;
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2)
    fail(ctx, `inner dimensions ${k1} and ${k2} differ`);
  const batch = broadcastShapes(ctx, [a2.slice(0, -2), b2.slice(0, -2)]);
  const out: Dim[] = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]!);
  if (b.length > 1) out.push(b2[b2.length - 1]!);
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
});

registerShapeRule('BatchNormalization', (ctx) => {
  const x = req(ctx, 0);
  const c = [x.shape[1]!];
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: x.dtype,
      shape: k === 0 ? [...x.shape] : c,
    })),
  };
});

registerShapeRule('LayerNormalization', (ctx) => {
  const x = req(ctx, 0);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.shape.length);
  const stat = x.shape.map((d, i) => (i < axis ? d : 1));
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: k === 0 ? x.dtype : 'float32',
      shape: k === 0 ? [...x.shape] : stat,
    })),
  };
});

registerShapeRule('Dropout', (ctx) => {
  const x = req(ctx, 0);
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: k === 0 ? x.dtype : 'bool',
      shape: [...x.shape],
    })),
  };
});

registerShapeRule('Flatten', (ctx) => {
  const x = req(ctx, 0).shape;
  const axis = attrInt(ctx.node, 'axis', 1);
  const a = wrapAxis(axis, x.length);
  const prod = (ds: Dim[]): Dim =>
    ds.length === 1
      ? ds[0]!
      : ds.every((d) => typeof d === 'number')
        ? (ds as number[]).reduce((p, d) => p * d, 1)
        : `flat_${ctx.node.name}_${ds.join('x')}`;
  return {
    outputs: [{ dtype: req(ctx, 0).dtype, shape: [prod(x.slice(0, a)), prod(x.slice(a))] }],
  };
});

registerShapeRule('Reshape', (ctx) => {
  const x = req(ctx, 0);
  const target = ctx.dims(1);
  if (!target) fail(ctx, `the target shape is not a constant`);
  const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? x.shape[i]! : d));
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const known = out.filter((_, i) => i !== neg);
    const total = x.shape.every((d) => typeof d === 'number')
      ? (x.shape as number[]).reduce((p, d) => p * d, 1)
      : undefined;
    if (total !== undefined && known.every((d) => typeof d === 'number')) {
      const rest = (known as number[]).reduce((p, d) => p * d, 1);
      if (rest === 0 || total % rest !== 0)
        fail(ctx, `cannot reshape [${x.shape.join(',')}] to [${target.join(',')}]`);
      out[neg] = total / rest;
    } else {
      // Dynamic batch: the symbolic dim that is not matched elsewhere carries over.
      const sym = x.shape.find((d) => typeof d === 'string');
      out[neg] = sym !== undefined && !out.includes(sym) ? sym : `reshape_${ctx.node.name}`;
    }
  }
  return { outputs: [{ dtype: x.dtype, shape: out }], values: [ctx.dims(0)] };
});

registerShapeRule('Transpose', (ctx) => {
  const x = req(ctx, 0).shape;
  const perm = attrInts(
    ctx.node,
    'perm',
    x.map((_, i) => x.length - 1 - i),
  );
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: perm.map((p) => x[p]!) }] };
});

registerShapeRule('Concat', (ctx) => {
  const ins = ctx.inputs.filter((v): v is ValueInfo => !!v);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), ins[0]!.shape.length);
  const out = [...ins[0]!.shape];
  let sum: Dim = 0;
  for (const v of ins) {
    const d = v.shape[axis]!;
    sum = typeof sum === 'number' && typeof d === 'number' ? sum + d : `concat_${ctx.node.name}`;
  }
  out[axis] = sum;
  const vals = ctx.node.inputs.map((_, k) => ctx.dims(k));
  return {
    outputs: [{ dtype: ins[0]!.dtype, shape: out }],
    values: [
      ins[0]!.shape.length === 1 && vals.every((v) => v) ? (vals as Dim[][]).flat() : undefined,
    ],
  };
});

registerShapeRule('Split', (ctx) => {
  const x = req(ctx, 0);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.shape.length);
  const n = ctx.node.outputs.length;
  let sizes = ctx.value(1);
  if (!sizes) {
    const d = x.shape[axis]!;
    if (typeof d !== 'number') fail(ctx, `cannot split a symbolic axis without sizes`);
    const chunk = Math.ceil(d / n);
    sizes = Array.from({ length: n }, (_, i) => Math.min(chunk, d - chunk * i));
  }
  return {
    outputs: sizes.map((s) => ({
      dtype: x.dtype,
      shape: x.shape.map((d, i) => (i === axis ? s : d)),
    })),
  };
});

registerShapeRule('Slice', (ctx) => {
  const x = req(ctx, 0);
  const starts = ctx.value(1);
  const ends = ctx.value(2);
  if (!starts || !ends) fail(ctx, `starts and ends must be constants`);
  const axes = ctx.value(3) ?? starts.map((_, i) => i);
  const steps = ctx.value(4) ?? starts.map(() => 1);
  const out = [...x.shape];
  axes.forEach((ax, i) => {
    const a = normAxis(ctx, ax, x.shape.length);
    const d = x.shape[a]!;
    if (typeof d !== 'number') {
      out[a] = `slice_${ctx.node.name}_${a}`;
      return;
    }
    out[a] = sliceBounds(starts[i]!, ends[i]!, steps[i]!, d).count;
  });
  // dims, not value: a slice of a shape vector keeps its symbolic entries (tf2onnx's Flatten).
  const v = ctx.dims(0);
  let values: Dim[] | undefined;
  if (v && x.shape.length === 1 && steps[0] === 1) {
    const d = v.length;
    const b = sliceBounds(starts[0]!, ends[0]!, 1, d);
    values = v.slice(b.start, b.end);
  }
  return { outputs: [{ dtype: x.dtype, shape: out }], values: [values] };
});

registerShapeRule('Squeeze', (ctx) => {
  const x = req(ctx, 0).shape;
  const axes =
    ctx.value(1)?.map((a) => normAxis(ctx, a, x.length)) ??
    x.flatMap((d, i) => (d === 1 ? [i] : []));
  return {
    outputs: [{ dtype: req(ctx, 0).dtype, shape: x.filter((_, i) => !axes.includes(i)) }],
    values: [ctx.dims(0)],
  };
});

registerShapeRule('Unsqueeze', (ctx) => {
  const x = req(ctx, 0).shape;
  const axesRaw = ctx.value(1);
  if (!axesRaw) fail(ctx, `axes must be a constant`);
  const rank = x.length + axesRaw.length;
  const axes = axesRaw.map((a) => normAxis(ctx, a, rank));
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(axes.includes(i) ? 1 : x[k++]!);
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }], values: [ctx.dims(0)] };
});

registerShapeRule('Pad', (ctx) => {
  const x = req(ctx, 0).shape;
  const pads = ctx.value(1);
  if (!pads) fail(ctx, `pads must be a constant`);
  const axes = ctx.value(3)?.map((a) => normAxis(ctx, a, x.length)) ?? x.map((_, i) => i);
  const out = [...x];
  axes.forEach((a, i) => {
    const d = x[a]!;
    out[a] =
      typeof d === 'number' ? d + pads[i]! + pads[i + axes.length]! : `pad_${ctx.node.name}_${a}`;
  });
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
});

registerShapeRule('Resize', (ctx) => {
  const x = req(ctx, 0).shape;
  const sizes = ctx.value(3);
  let out: Dim[];
  if (sizes && sizes.length > 0) out = sizes;
  else {
    const scales = ctx.floats(2);
    if (!scales) fail(ctx, `scales or sizes must be constants`);
    out = x.map((d, i) =>
      typeof d === 'number'
        ? Math.floor(d * scales[i]!)
        : scales[i] === 1
          ? d
          : `${d}*${scales[i]}`,
    );
  }
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
});

function reduce(axesFromInput: boolean): ShapeRule {
  return (ctx) => {
    const x = req(ctx, 0).shape;
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    const raw = axesFromInput ? ctx.value(1) : attrInts(ctx.node, 'axes');
    const noop = attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
    if (axesFromInput && ctx.node.inputs[1] && !raw) fail(ctx, `axes must be a constant`);
    const axes =
      raw && raw.length > 0
        ? raw.map((a) => normAxis(ctx, a, x.length))
        : noop
          ? []
          : x.map((_, i) => i);
    const out = keep
      ? x.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.filter((_, i) => !axes.includes(i));
    return { outputs: [{ dtype: req(ctx, 0).dtype, shape: out }] };
  };
}
registerShapeRule(
  [
    'ReduceSum',
    'ReduceMean',
    'ReduceMax',
    'ReduceMin',
    'ReduceProd',
    'ReduceL2',
    'ReduceSumSquare',
    'ReduceL1',
    'ReduceLogSumExp',
  ],
  reduce(true),
);

registerShapeRule(['ArgMax', 'ArgMin'], (ctx) => {
  const x = req(ctx, 0).shape;
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.length);
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  return {
    outputs: [
      {
        dtype: 'int64',
        shape: keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis),
      },
    ],
  };
});

registerShapeRule('Gather', (ctx) => {
  const x = req(ctx, 0);
  const idx = req(ctx, 1);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.shape.length);
  const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
  const v = ctx.dims(0);
  const iv = ctx.value(1);
  const values =
    v && iv && x.shape.length === 1 ? [iv.map((i) => v[i < 0 ? i + v.length : i]!)] : undefined;
  return { outputs: [{ dtype: x.dtype, shape }], values };
});

registerShapeRule('Expand', (ctx) => {
  const shape = ctx.value(1);
  if (!shape) fail(ctx, `shape must be a constant`);
  return {
    outputs: [
      { dtype: req(ctx, 0).dtype, shape: broadcastShapes(ctx, [req(ctx, 0).shape, shape]) },
    ],
  };
});

registerShapeRule('Tile', (ctx) => {
  const x = req(ctx, 0).shape;
  const reps = ctx.value(1);
  if (!reps) fail(ctx, `repeats must be a constant`);
  return {
    outputs: [
      {
        dtype: req(ctx, 0).dtype,
        shape: x.map((d, i) => (typeof d === 'number' ? d * reps[i]! : d)),
      },
    ],
  };
});

registerShapeRule('OneHot', (ctx) => {
  const idx = req(ctx, 0).shape;
  const depth = ctx.value(1);
  if (!depth) fail(ctx, `depth must be a constant`);
  const axis = attrInt(ctx.node, 'axis', -1);
  const out = [...idx];
  out.splice(axis < 0 ? idx.length + 1 + axis : axis, 0, depth[0]!);
  return { outputs: [{ dtype: req(ctx, 2).dtype, shape: out }] };
});

registerShapeRule('ConstantOfShape', (ctx) => {
  const shape = ctx.value(0);
  if (!shape) fail(ctx, `shape must be a constant`);
  const a = ctx.node.attrs['value'];
  return { outputs: [{ dtype: a?.type === 'tensor' ? a.value.dtype : 'float32', shape }] };
});

registerShapeRule('Range', (ctx) => {
  const [s, l, d] = [ctx.value(0), ctx.value(1), ctx.value(2)];
  const n =
    s && l && d ? Math.max(0, Math.ceil((l[0]! - s[0]!) / d[0]!)) : `range_${ctx.node.name}`;
  return { outputs: [{ dtype: req(ctx, 0).dtype, shape: [n] }] };
});

// SoftmaxCrossEntropyLoss is used by the loss builders in inference-only graphs.
registerShapeRule('SoftmaxCrossEntropyLoss', (ctx) => {
  const x = req(ctx, 0);
  const red = attrString(ctx.node, 'reduction', 'mean');
  return {
    outputs: ctx.node.outputs.map((_, k) => ({
      dtype: x.dtype,
      shape: k === 0 ? (red === 'none' ? [x.shape[0]!] : []) : [...x.shape],
    })),
  };
});

// Constant nodes are folded into initializers on import; a rule keeps graphs built by hand working.
registerShapeRule('Constant', (ctx) => {
  const a = ctx.node.attrs['value'];
  if (!a || a.type !== 'tensor') fail(ctx, `only tensor-valued Constant nodes are supported`);
  return { outputs: [{ dtype: a.value.dtype, shape: [...a.value.dims] }] };
});

// If whose condition is not a constant (constant ones are folded on import): each branch is
// inferred with the outer values it reads, and the outputs merged (a dimension the branches
// disagree on becomes symbolic). Where a branch cannot be inferred, its declared output types are
// used; without those the node is left unknown. Loop and Scan have no rule.
registerShapeRule('If', (ctx) => {
  const branch = (k: string): ValueInfo[] | undefined => {
    const a = ctx.node.attrs[k];
    if (a?.type !== 'graph') return undefined;
    const sub = a.value;
    const probe: Node = { ...ctx.node, attrs: { b: a } };
    const outer = implicitInputs(probe).map((v) => ctx.lookup(v));
    let inferred: ShapeInfo | undefined;
    if (outer.every((v) => v))
      try {
        inferred = inferShapes({ ...sub, inputs: [...sub.inputs, ...(outer as ValueInfo[])] });
      } catch {
        inferred = undefined;
      }
    return sub.outputs.map((o) => {
      const v = inferred?.values.get(o.name);
      if (v) return v;
      return untypedValues.has(o) ? { ...o, dtype: 'bool' as const, shape: ['?'] } : o;
    });
  };
  const [t, e] = [branch('then_branch'), branch('else_branch')];
  if (!t || !e) fail(ctx, `then_branch and else_branch are needed`);
  const known = ctx.node.outputs.every((_, i) => {
    const [a, b] = [t[i], e[i]];
    return (
      a && b && a.dtype === b.dtype && a.shape.length === b.shape.length && !a.shape.includes('?')
    );
  });
  if (!known) return { outputs: [], unknown: true };
  return {
    outputs: ctx.node.outputs.map((_, i) => {
      const [a, b] = [t[i]!, e[i]!];
      const shape = a.shape.map((d, k) => (d === b.shape[k] ? d : `if_${ctx.node.name}_${i}_${k}`));
      return { dtype: a.dtype, shape };
    }),
  };
});
