/**
 * Opset upgrade (issue #12): a graph written for an older opset (7–17) is rewritten into the
 * form of the IR's canonical opset, so every other pass and gradient rule sees one form of each
 * op. A registry of per-op rules keyed by op type, each applied when the file's opset is below
 * the version that introduced the new form; the outputs are unchanged (same names, same values
 * under ONNX semantics of the file's opset). What was rewritten is recorded for `inspect`.
 */

import type { Graph, Node } from '../ir/graph.js';
import {
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  cloneGraph,
  consumers,
  GraphError,
  uniqueName,
  usedNames,
} from '../ir/graph.js';
import { inferShapes } from '../ir/shapes/index.js';
import type { Tensor } from '../ir/tensor.js';
import { int64s, scalar, toNumbers } from '../ir/tensor.js';
import { wrapAxis } from '../ir/axes.js';

/** What `upgradeOpset` did, for `inspect` and the import report. */
export interface UpgradeReport {
  /** The opset the graph was written against. */
  fromOpset: number;
  /** The opset of the upgraded graph. */
  toOpset: number;
  /** Nodes rewritten, by rewrite (e.g. `Upsample→Resize`, `Slice attrs→inputs`): count. */
  rewritten: Record<string, number>;
}

/** What a rule sees while rewriting one node. */
export interface UpgradeContext {
  /** The graph being built (a copy: rules may add initializers to it). */
  graph: Graph;
  /** The opset the graph was written against. */
  from: number;
  /** Adds an initializer under a fresh name derived from `base` and returns the name. */
  constant(base: string, t: Tensor): string;
  /** A fresh value or node name derived from `base`. */
  fresh(base: string): string;
  /** Rank of a value when shape inference knows it (late rules only), else undefined. */
  rank(name: string): number | undefined;
  /** Constant float/int values of an input (an initializer), else undefined. */
  values(name: string): number[] | undefined;
  /** Records one rewrite for the report. */
  note(what: string): void;
}

/** One op type's upgrade from an older form to the one of `before`. */
export interface UpgradeRule {
  /** The opset that introduced the new form: the rule runs when the graph's opset is below it. */
  before: number;
  /**
   * Rules that need ranks (e.g. Softmax's axis semantics) run after every other rule, with shape
   * inference of the partly upgraded graph.
   */
  late?: boolean;
  /** Rewrites `n` in place, or returns the nodes that replace it. Throws GraphError to refuse. */
  apply(n: Node, ctx: UpgradeContext): Node[] | void;
}

const rules = new Map<string, UpgradeRule[]>();

/** Registers an upgrade rule for one or more op types (applied in registration order). */
export function registerUpgrade(opType: string | string[], rule: UpgradeRule): void {
  for (const t of Array.isArray(opType) ? opType : [opType]) {
    const list = rules.get(t) ?? [];
    list.push(rule);
    rules.set(t, list);
  }
}

/** One line, e.g. `upgraded from opset 9 to 18 (2 Upsample→Resize, 1 Slice attrs→inputs)`. */
export function describeUpgrade(r: UpgradeReport): string {
  const list = Object.entries(r.rewritten)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([what, k]) => `${k} ${what}`)
    .join(', ');
  return `upgraded from opset ${r.fromOpset} to ${r.toOpset}${list ? ` (${list})` : ''}`;
}

function fail(n: Node, msg: string): never {
  throw new GraphError(`node '${n.name}' (${n.opType}): ${msg}`, n.name);
}

/**
 * Rewrites a graph written for an older opset into the form of `target` (≥ 13). Returns a new
 * graph (the input is never modified), or the input itself when it is already at `target` or
 * newer. Throws a GraphError naming the node for a form that has no equivalent (e.g. a
 * per-activation BatchNormalization, `spatial = 0`).
 */
export function upgradeOpset(g: Graph, target: number): Graph {
  return upgradeOpsetReported(g, target).graph;
}

/** {@link upgradeOpset} and what it rewrote (no report when the graph was already at `target`). */
export function upgradeOpsetReported(
  g: Graph,
  target: number,
): { graph: Graph; report?: UpgradeReport } {
  if (g.opset >= target) return { graph: g };
  const out = cloneGraph(g);
  const names = usedNames(out);
  const report: UpgradeReport = { fromOpset: g.opset, toOpset: target, rewritten: {} };
  let ranks: Map<string, number> | undefined;
  const ctx: UpgradeContext = {
    graph: out,
    from: g.opset,
    constant: (base, t) => {
      const name = uniqueName(names, base);
      out.initializers.set(name, t);
      return name;
    },
    fresh: (base) => uniqueName(names, base),
    rank: (name) => ranks?.get(name),
    values: (name) => {
      const t = name ? out.initializers.get(name) : undefined;
      return t && t.data.length <= 64 ? toNumbers(t) : undefined;
    },
    note: (what) => (report.rewritten[what] = (report.rewritten[what] ?? 0) + 1),
  };
  const pass = (late: boolean): void => {
    const nodes: Node[] = [];
    for (const n of out.nodes) {
      let replaced: Node[] | undefined;
      if (n.domain === '') {
        for (const r of rules.get(n.opType) ?? []) {
          if (g.opset >= r.before || !!r.late !== late) continue;
          const res = r.apply(n, ctx);
          if (res) {
            replaced = res;
            break;
          }
        }
      }
      nodes.push(...(replaced ?? [n]));
    }
    out.nodes = nodes;
  };
  pass(false);
  // Ranks for the late rules, from the graph with every structural rule applied (best effort:
  // a rule without a rank falls back to a rank-free form).
  try {
    const info = inferShapes(out);
    ranks = new Map([...info.values].map(([k, v]) => [k, v.shape.length]));
  } catch {
    ranks = undefined;
  }
  pass(true);
  out.opset = target;
  return { graph: out, report };
}

// ---------------------------------------------------------------------------------------------
// The rules.

/** Moves an ints attribute to an int64 initializer input at `index` (absent: left absent). */
function attrToInput(n: Node, ctx: UpgradeContext, attr: string, index: number): boolean {
  const a = n.attrs[attr];
  if (!a) return false;
  if (a.type !== 'ints' && a.type !== 'int') fail(n, `attribute ${attr} must be ints`);
  const v = a.type === 'ints' ? a.value : [a.value];
  while (n.inputs.length < index) n.inputs.push('');
  n.inputs[index] = ctx.constant(`${n.name}_${attr}`, int64s(v));
  delete n.attrs[attr];
  return true;
}

/** A float attribute (`def` when absent) moved to a float32 scalar input at `index`. */
function floatToInput(
  n: Node,
  ctx: UpgradeContext,
  attr: string,
  index: number,
  def?: number,
): boolean {
  const has = !!n.attrs[attr];
  if (!has && def === undefined) return false;
  const v = attrFloat(n, attr, def ?? 0);
  while (n.inputs.length < index) n.inputs.push('');
  n.inputs[index] = ctx.constant(`${n.name}_${attr}`, scalar(v, 'float32'));
  delete n.attrs[attr];
  return true;
}

/** Reduce ops whose `axes` moved from an attribute to an input in opset 18. */
const REDUCE_18 = [
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
];

registerUpgrade(['Squeeze', 'Unsqueeze', 'ReduceSum'], {
  before: 13,
  apply: (n, ctx) => {
    if (attrToInput(n, ctx, 'axes', 1)) ctx.note(`${n.opType} axes→input`);
  },
});

registerUpgrade(REDUCE_18, {
  before: 18,
  apply: (n, ctx) => {
    if (attrToInput(n, ctx, 'axes', 1)) ctx.note(`${n.opType} axes→input`);
  },
});

registerUpgrade('Split', {
  before: 13,
  apply: (n, ctx) => {
    if (attrToInput(n, ctx, 'split', 1)) ctx.note('Split split→input');
  },
});
registerUpgrade('Split', {
  // Opset 18 asks Split for either a `split` input or `num_outputs`.
  before: 18,
  apply: (n) => {
    if (!n.inputs[1] && !n.attrs['num_outputs'])
      n.attrs['num_outputs'] = { type: 'int', value: n.outputs.length };
  },
});

registerUpgrade('Slice', {
  before: 10,
  apply: (n, ctx) => {
    const starts = attrInts(n, 'starts');
    const ends = attrInts(n, 'ends');
    if (!starts || !ends) fail(n, 'opset-1 Slice needs starts and ends attributes');
    // Opset 1 clamps like later versions; only the operands moved.
    n.inputs = [n.inputs[0]!];
    attrToInput(n, ctx, 'starts', 1);
    attrToInput(n, ctx, 'ends', 2);
    attrToInput(n, ctx, 'axes', 3);
    ctx.note('Slice attrs→inputs');
  },
});

registerUpgrade('Pad', {
  before: 11,
  apply: (n, ctx) => {
    if (!n.attrs['pads']) fail(n, 'opset-2 Pad needs a pads attribute');
    n.inputs = [n.inputs[0]!];
    attrToInput(n, ctx, 'pads', 1);
    const mode = attrString(n, 'mode', 'constant');
    // The fill value matters (and is allowed) in constant mode only.
    if (mode === 'constant') floatToInput(n, ctx, 'value', 2, 0);
    else delete n.attrs['value'];
    ctx.note('Pad attrs→inputs');
  },
});

registerUpgrade('Clip', {
  before: 11,
  apply: (n, ctx) => {
    // Opset 6 defaults are ±FLT_MAX, the same as an absent input at opset 11+.
    n.inputs = [n.inputs[0]!];
    floatToInput(n, ctx, 'min', 1);
    floatToInput(n, ctx, 'max', 2);
    ctx.note('Clip attrs→inputs');
  },
});

registerUpgrade('Dropout', {
  before: 12,
  apply: (n, ctx) => {
    // Before 12, a Dropout is inference (identity) in an inference graph; the ratio moves.
    floatToInput(n, ctx, 'ratio', 1, 0.5);
    delete n.attrs['is_test'];
    ctx.note('Dropout ratio→input');
  },
});

registerUpgrade('TopK', {
  before: 10,
  apply: (n, ctx) => {
    const k = attrInt(n, 'k');
    if (k === undefined) fail(n, 'opset-1 TopK needs a k attribute');
    n.inputs[1] = ctx.constant(`${n.name}_k`, int64s([k]));
    delete n.attrs['k'];
    ctx.note('TopK k→input');
  },
});

registerUpgrade('Scatter', {
  before: 11,
  apply: (n, ctx) => {
    n.opType = 'ScatterElements';
    ctx.note('Scatter→ScatterElements');
  },
});

registerUpgrade('BatchNormalization', {
  before: 9,
  apply: (n) => {
    if (attrInt(n, 'spatial', 1) !== 1)
      fail(n, 'per-activation BatchNormalization (spatial = 0) has no opset-9+ form; re-export');
    delete n.attrs['spatial'];
  },
});
registerUpgrade('BatchNormalization', {
  // Before 14 the number of outputs chose the mode: five outputs meant training (Y, running
  // mean and var, saved mean and var); 14+ says `training_mode = 1` with three outputs.
  before: 14,
  apply: (n, ctx) => {
    if (n.outputs.length <= 1) return;
    const uses = consumers(ctx.graph);
    const outs = new Set(ctx.graph.outputs.map((v) => v.name));
    for (const o of n.outputs.slice(3)) {
      if (o && (uses.has(o) || outs.has(o)))
        fail(n, `its saved mean/variance output '${o}' is used; re-export in inference mode`);
    }
    n.outputs = n.outputs.slice(0, 3);
    n.attrs['training_mode'] = { type: 'int', value: 1 };
    ctx.note('BatchNormalization training outputs→training_mode');
  },
});

/**
 * The opset-11 Resize form of an Upsample (7–9) or a Resize-10: ONNX before 11 scales with an
 * asymmetric coordinate transform; nearest picks floor of the source coordinate when enlarging
 * and its ceiling when shrinking (onnxruntime's reading of the old versions).
 */
function resize11(n: Node, ctx: UpgradeContext, scales: string, scaleValues?: number[]): void {
  let mode = attrString(n, 'mode', 'nearest');
  if (mode === 'bilinear') mode = 'linear';
  if (mode !== 'nearest' && mode !== 'linear') fail(n, `mode '${mode}' has no opset-11 form`);
  n.opType = 'Resize';
  n.inputs = [n.inputs[0]!, '', scales];
  n.attrs = {
    mode: { type: 'string', value: mode },
    coordinate_transformation_mode: { type: 'string', value: 'asymmetric' },
  };
  if (mode === 'nearest') {
    const s = scaleValues ?? ctx.values(scales);
    const up = !s || s.every((v) => v >= 1);
    const down = !!s && s.every((v) => v <= 1);
    if (!up && !down)
      fail(n, 'nearest scaling that enlarges some axes and shrinks others has no opset-11 form');
    n.attrs['nearest_mode'] = { type: 'string', value: up ? 'floor' : 'ceil' };
  }
}

registerUpgrade('Upsample', {
  before: 11,
  apply: (n, ctx) => {
    const attr = attrFloatsOrUndefined(n, 'scales');
    let scales = n.inputs[1] ?? '';
    if (attr) scales = ctx.constant(`${n.name}_scales`, floats(attr));
    if (!scales) fail(n, 'Upsample needs scales (an attribute before opset 9, an input after)');
    resize11(n, ctx, scales, attr);
    ctx.note('Upsample→Resize');
  },
});

registerUpgrade('Resize', {
  before: 11,
  apply: (n, ctx) => {
    const scales = n.inputs[1];
    if (!scales) fail(n, 'Resize-10 needs a scales input');
    resize11(n, ctx, scales);
    ctx.note('Resize-10→Resize-11');
  },
});

function attrFloatsOrUndefined(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  return a?.type === 'floats' ? a.value : undefined;
}

function floats(v: number[]): Tensor {
  return { dtype: 'float32', dims: [v.length], data: Float32Array.from(v) };
}

registerUpgrade(['Softmax', 'LogSoftmax', 'Hardmax'], {
  // Before 13 these coerce the input to 2-D at `axis` (default 1) and normalise over all of
  // the trailing axes; 13+ normalises over the one axis (default -1). Same meaning when `axis`
  // is the last axis; otherwise Flatten → op → Reshape back keeps the old meaning.
  before: 13,
  late: true,
  apply: (n, ctx) => {
    const axis = attrInt(n, 'axis', 1);
    const x = n.inputs[0]!;
    const rank = ctx.rank(x);
    const last = rank !== undefined && wrapAxis(axis, rank) === rank - 1;
    if (axis === -1 || last) {
      n.attrs['axis'] = { type: 'int', value: -1 };
      ctx.note(`${n.opType} axis kept`);
      return;
    }
    const flat = ctx.fresh(`${x}_2d`);
    const y = ctx.fresh(`${n.outputs[0]}_2d`);
    const shape = ctx.fresh(`${x}_shape`);
    const nodes: Node[] = [
      node(ctx, 'Flatten', `${n.name}_flatten`, [x], [flat], {
        axis: { type: 'int', value: axis },
      }),
      { ...n, inputs: [flat], outputs: [y], attrs: { axis: { type: 'int', value: -1 } } },
      node(ctx, 'Shape', `${n.name}_shape`, [x], [shape], {}),
      node(ctx, 'Reshape', `${n.name}_reshape`, [y, shape], [n.outputs[0]!], {}),
    ];
    ctx.note(`${n.opType} coerce-to-2D→Flatten/Reshape`);
    return nodes;
  },
});

function node(
  ctx: UpgradeContext,
  opType: string,
  name: string,
  inputs: string[],
  outputs: string[],
  attrs: Node['attrs'],
): Node {
  return { name: ctx.fresh(name), opType, domain: '', inputs, outputs, attrs };
}
