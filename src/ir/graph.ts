import type { DType, Tensor } from './tensor.js';
import { cloneTensor } from './tensor.js';
import { QuadranetError } from '../util/errors.js';

/** A dimension: a number, or a symbolic name such as `batch`. */
export type Dim = number | string;

/** Name, element type and (possibly partly symbolic) shape of a graph value. */
export interface ValueInfo {
  /** Value name. */
  name: string;
  /** Element type. */
  dtype: DType;
  /** Shape; symbolic dims (e.g. `batch`) are strings. */
  shape: Dim[];
}

/**
 * Subgraph inputs/outputs that the file gave no type (ONNX lets a runtime infer them): read as
 * float32 of unknown shape, written back without a type, never trusted by shape inference.
 */
export const untypedValues = new WeakSet<ValueInfo>();

/** A typed ONNX attribute value; the tag keeps int and float apart as ONNX does. */
export type Attribute =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: Tensor }
  /** A subgraph (If branches, Loop/Scan bodies); it may read values of the enclosing graph. */
  | { type: 'graph'; value: Graph };

/** One ONNX operator application. An empty input name means an omitted optional input. */
export interface Node {
  /** Node name (unique in the graph). */
  name: string;
  /** ONNX operator type, e.g. `Conv`. */
  opType: string;
  /** Operator domain (`''` for the default ONNX domain). */
  domain: string;
  /** Input value names, in the operator's order (`''` for an omitted optional input). */
  inputs: string[];
  /** Output value names. */
  outputs: string[];
  /** Attributes by name. */
  attrs: Record<string, Attribute>;
}

/**
 * The IR: a graph of ONNX nodes over named values. Initializers are the parameters and other
 * constants; graph inputs never include initializer names.
 */
export interface Graph {
  /** Graph name. */
  name: string;
  /** Nodes in topological order. */
  nodes: Node[];
  /** Graph inputs (never initializers). */
  inputs: ValueInfo[];
  /** Graph outputs. */
  outputs: ValueInfo[];
  /** Constant tensors by name: the parameters (weights, biases) and other constants. */
  initializers: Map<string, Tensor>;
  /** Default-domain opset the graph is written against. */
  opset: number;
  /** Free-form key/value metadata kept through passes (written as ONNX metadata_props). */
  metadata: Record<string, string>;
}

/** An error about a specific graph node or value; the message names it. */
export class GraphError extends QuadranetError {
  constructor(
    message: string,
    /** Name of the node the error concerns, when it concerns one. */
    readonly node?: string,
  ) {
    super(message);
    this.name = 'GraphError';
  }
}

/** A graph with nothing in it yet (e.g. for a GraphBuilder), at the canonical opset 18. */
export function emptyGraph(name = 'g'): Graph {
  return {
    name,
    nodes: [],
    inputs: [],
    outputs: [],
    initializers: new Map(),
    opset: 18,
    metadata: {},
  };
}

/** A deep copy, so passes can build a new graph without touching their input. */
export function cloneGraph(g: Graph, { tensors = false }: { tensors?: boolean } = {}): Graph {
  return {
    name: g.name,
    nodes: g.nodes.map(cloneNode),
    inputs: g.inputs.map((v) => ({ ...v, shape: [...v.shape] })),
    outputs: g.outputs.map((v) => ({ ...v, shape: [...v.shape] })),
    initializers: new Map(
      [...g.initializers].map(([k, t]) => [k, tensors ? cloneTensor(t) : t] as const),
    ),
    opset: g.opset,
    metadata: { ...g.metadata },
  };
}

/** A copy of a node (attribute tensors shared: they are treated as immutable). */
export function cloneNode(n: Node): Node {
  const attrs: Record<string, Attribute> = {};
  for (const [k, a] of Object.entries(n.attrs)) {
    attrs[k] = Array.isArray(a.value) ? ({ ...a, value: [...a.value] } as Attribute) : { ...a };
  }
  return { ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs };
}

/**
 * Values of enclosing graphs that a node's subgraphs (If branches, Loop/Scan bodies) read
 * without listing them as inputs, at any depth.
 */
export function implicitInputs(n: Node): string[] {
  const out = new Set<string>();
  const walk = (g: Graph): void => {
    const defined = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys()]);
    for (const m of g.nodes) for (const o of m.outputs) if (o) defined.add(o);
    const visit = (name: string) => {
      if (name && !defined.has(name)) out.add(name);
    };
    for (const m of g.nodes) {
      for (const i of m.inputs) visit(i);
      for (const a of Object.values(m.attrs)) {
        if (a.type !== 'graph') continue;
        const before = new Set(out);
        walk(a.value);
        // A nested read of a value defined here is not implicit to the outer node.
        for (const v of out) if (!before.has(v) && defined.has(v)) out.delete(v);
      }
    }
    for (const o of g.outputs) visit(o.name);
  };
  for (const a of Object.values(n.attrs)) if (a.type === 'graph') walk(a.value);
  return [...out];
}

/** Reads an int attribute, or `def` when absent. */
export function attrInt(n: Node, name: string, def: number): number;
export function attrInt(n: Node, name: string): number | undefined;
export function attrInt(n: Node, name: string, def?: number): number | undefined {
  const a = n.attrs[name];
  if (!a) return def;
  if (a.type !== 'int')
    throw new GraphError(`node '${n.name}': attribute ${name} must be an int`, n.name);
  return a.value;
}

/** Reads a float attribute, or `def` when absent. */
export function attrFloat(n: Node, name: string, def: number): number {
  const a = n.attrs[name];
  if (!a) return def;
  if (a.type !== 'float' && a.type !== 'int') {
    throw new GraphError(`node '${n.name}': attribute ${name} must be a float`, n.name);
  }
  return a.value;
}

/** Reads an ints attribute, or `def` when absent. */
export function attrInts(n: Node, name: string, def: number[]): number[];
export function attrInts(n: Node, name: string): number[] | undefined;
export function attrInts(n: Node, name: string, def?: number[]): number[] | undefined {
  const a = n.attrs[name];
  if (!a) return def;
  if (a.type !== 'ints')
    throw new GraphError(`node '${n.name}': attribute ${name} must be ints`, n.name);
  return a.value;
}

/** Reads a string attribute, or `def` when absent. */
export function attrString(n: Node, name: string, def: string): string {
  const a = n.attrs[name];
  if (!a) return def;
  if (a.type !== 'string')
    throw new GraphError(`node '${n.name}': attribute ${name} must be a string`, n.name);
  return a.value;
}

/** Map from value name to the node producing it. */
export function producers(g: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/** Map from value name to the nodes consuming it. */
export function consumers(g: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!i) continue;
      let list = m.get(i);
      if (!list) m.set(i, (list = []));
      list.push(n);
    }
  }
  return m;
}

/**
 * Nodes in a topological order (stable: keeps the given order when it is already valid).
 * Throws GraphError naming the node whose input is never produced, or a node on a cycle.
 */
export function topoSort(g: Graph): Node[] {
  const available = new Set<string>([...g.inputs.map((v) => v.name), ...g.initializers.keys(), '']);
  const prod = producers(g);
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!available.has(i) && !prod.has(i)) {
        throw new GraphError(
          `node '${n.name}' (${n.opType}) reads '${i}', which no node, input or initializer provides`,
          n.name,
        );
      }
    }
  }
  const out: Node[] = [];
  const state = new Map<Node, 1 | 2>();
  const visit = (n: Node): void => {
    const s = state.get(n);
    if (s === 2) return;
    if (s === 1) throw new GraphError(`node '${n.name}' (${n.opType}) is on a cycle`, n.name);
    state.set(n, 1);
    for (const i of n.inputs) {
      if (available.has(i)) continue;
      visit(prod.get(i)!);
    }
    // Values an If/Loop/Scan reads inside its subgraphs must be computed before it too.
    for (const i of implicitInputs(n)) {
      const p = available.has(i) ? undefined : prod.get(i);
      if (p && p !== n) visit(p);
    }
    state.set(n, 2);
    out.push(n);
  };
  for (const n of g.nodes) visit(n);
  return out;
}

/**
 * Checks the graph's structure: unique node and value names, every input defined, no cycles,
 * outputs produced. Throws GraphError naming the first fault.
 */
export function validateGraph(g: Graph): void {
  const defined = new Set<string>();
  const define = (name: string, by: string): void => {
    if (defined.has(name))
      throw new GraphError(`value '${name}' is defined twice (again by ${by})`, by);
    defined.add(name);
  };
  for (const v of g.inputs) define(v.name, `graph input`);
  for (const k of g.initializers.keys()) define(k, `initializer`);
  const names = new Set<string>();
  for (const n of g.nodes) {
    if (n.name && names.has(n.name))
      throw new GraphError(`node name '${n.name}' is used twice`, n.name);
    names.add(n.name);
    for (const o of n.outputs) if (o) define(o, `node '${n.name}'`);
  }
  topoSort(g);
  for (const o of g.outputs) {
    if (!defined.has(o.name)) throw new GraphError(`graph output '${o.name}' is never produced`);
  }
}

/** Makes a name that is not yet used in `taken`, and reserves it. */
export function uniqueName(taken: Set<string>, base: string): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

/** Every value and node name used in the graph. */
export function usedNames(g: Graph): Set<string> {
  const s = new Set<string>();
  for (const v of g.inputs) s.add(v.name);
  for (const v of g.outputs) s.add(v.name);
  for (const k of g.initializers.keys()) s.add(k);
  for (const n of g.nodes) {
    s.add(n.name);
    for (const o of n.outputs) s.add(o);
  }
  return s;
}
