/**
 * Folding of `If` nodes whose condition is a constant (issue #18). Exports of optional branches
 * (a scripted `if self.use_bias:` or a TensorFlow `tf.cond` on a fixed flag) keep an `If` whose
 * condition is known when the model is loaded; such a node is replaced by the nodes of the branch
 * it always takes, so the rest of quadranet sees a plain graph. Other `If`, `Loop` and `Scan`
 * nodes stay (inspect lists them; training refuses to differentiate through them by name).
 */

import type { Graph, Node } from '../ir/graph.js';
import { implicitInputs, usedNames, uniqueName } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { toNumbers } from '../ir/tensor.js';

/** Op types that carry subgraphs (control flow). */
export const CONTROL_FLOW_OPS: ReadonlySet<string> = new Set(['If', 'Loop', 'Scan']);

const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  Equal: (a, b) => a === b,
  Greater: (a, b) => a > b,
  Less: (a, b) => a < b,
  GreaterOrEqual: (a, b) => a >= b,
  LessOrEqual: (a, b) => a <= b,
};

/**
 * The value of a one-element condition, or undefined when it is not a constant: an initializer
 * (bool or number), or Not / And / Or / a comparison / a Cast of such values.
 */
export function constantCondition(g: Graph, name: string, depth = 0): boolean | undefined {
  const scalarOf = (v: string): number | undefined => {
    const t: Tensor | undefined = g.initializers.get(v);
    if (t && t.data.length === 1) return toNumbers(t)[0];
    const b = depth < 16 ? constantCondition(g, v, depth + 1) : undefined;
    return b === undefined ? undefined : Number(b);
  };
  const t = g.initializers.get(name);
  if (t) return t.data.length === 1 ? toNumbers(t)[0] !== 0 : undefined;
  if (depth >= 16) return undefined;
  const p = g.nodes.find((n) => n.outputs.includes(name));
  if (!p || p.domain !== '') return undefined;
  const [a, b] = p.inputs.map((i) => (i ? scalarOf(i) : undefined));
  if (a === undefined) return undefined;
  if (p.opType === 'Not') return a === 0;
  if (p.opType === 'Cast' || p.opType === 'Identity') return a !== 0;
  if (b === undefined) return undefined;
  if (p.opType === 'And') return a !== 0 && b !== 0;
  if (p.opType === 'Or') return a !== 0 || b !== 0;
  const cmp = COMPARE[p.opType];
  return cmp ? cmp(a, b) : undefined;
}

/** Renames the values a subgraph's nodes read (recursively), for names defined outside it. */
function renameReads(g: Graph, rename: (v: string) => string): Graph {
  const local = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) local.add(o);
  const r = (v: string) => (v && !local.has(v) ? rename(v) : v);
  return {
    ...g,
    nodes: g.nodes.map((n) => ({ ...n, inputs: n.inputs.map(r), attrs: renameAttrs(n, r) })),
    outputs: g.outputs.map((o) => ({ ...o, name: r(o.name) })),
  };
}

/** A node's attributes with the outer reads of its subgraphs renamed. */
function renameAttrs(n: Node, r: (v: string) => string): Node['attrs'] {
  return Object.fromEntries(
    Object.entries(n.attrs).map(([k, a]) => [
      k,
      a.type === 'graph' ? { type: 'graph' as const, value: renameReads(a.value, r) } : a,
    ]),
  );
}

/** What `inlineConstantIfs` did. */
export interface InlineResult {
  graph: Graph;
  /** Names of the If nodes replaced by their taken branch. */
  inlined: string[];
}

/**
 * Replaces every `If` whose condition is constant by its taken branch: the branch's nodes and
 * initializers join the graph under fresh names (prefixed by the If's name), and its outputs
 * take the If's output names (through an Identity when a branch output is not produced by a
 * node of the branch). The input graph is not modified.
 */
export function inlineConstantIfs(graph: Graph): InlineResult {
  const ifs = graph.nodes.filter((n) => n.opType === 'If' && n.domain === '');
  const taken = new Map<Node, Graph>();
  for (const n of ifs) {
    const c = n.inputs[0] ? constantCondition(graph, n.inputs[0]) : undefined;
    const branch = n.attrs[c ? 'then_branch' : 'else_branch'];
    if (c === undefined || branch?.type !== 'graph') continue;
    if (branch.value.outputs.length !== n.outputs.length) continue;
    taken.set(n, branch.value);
  }
  if (taken.size === 0) return { graph, inlined: [] };
  const names = usedNames(graph);
  for (const n of graph.nodes) for (const v of implicitInputs(n)) names.add(v);
  const nodes: Node[] = [];
  const initializers = new Map(graph.initializers);
  for (const n of graph.nodes) {
    const branch = taken.get(n);
    if (!branch) {
      nodes.push(n);
      continue;
    }
    // Every value the branch defines gets a fresh name; its outputs map to the If's outputs.
    const map = new Map<string, string>();
    const produced = new Set(branch.nodes.flatMap((m) => m.outputs));
    branch.outputs.forEach((o, i) => {
      if (n.outputs[i] && produced.has(o.name) && !map.has(o.name)) map.set(o.name, n.outputs[i]);
    });
    for (const [k, t] of branch.initializers) {
      const fresh = uniqueName(names, `${n.name}/${k}`);
      map.set(k, fresh);
      initializers.set(fresh, t);
    }
    for (const m of branch.nodes)
      for (const o of m.outputs)
        if (o && !map.has(o)) map.set(o, uniqueName(names, `${n.name}/${o}`));
    const r = (v: string) => map.get(v) ?? v;
    for (const m of branch.nodes) {
      nodes.push({
        ...m,
        name: uniqueName(names, `${n.name}/${m.name}`),
        inputs: m.inputs.map(r),
        outputs: m.outputs.map(r),
        attrs: renameAttrs(m, r),
      });
    }
    branch.outputs.forEach((o, i) => {
      const y = n.outputs[i]!;
      if (y && map.get(o.name) !== y) {
        nodes.push({
          name: uniqueName(names, `${n.name}/output_${i}`),
          opType: 'Identity',
          domain: '',
          inputs: [r(o.name)],
          outputs: [y],
          attrs: {},
        });
      }
    });
  }
  return {
    graph: { ...graph, nodes, initializers },
    inlined: [...taken.keys()].map((n) => n.name),
  };
}
