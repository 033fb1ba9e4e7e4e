/**
 * Operations on a quadratized graph's adapter, driven by the record `quadratize` leaves in the
 * graph's metadata (never by guessing from names): remove it exactly, or bypass it.
 */

import type { Graph } from '../ir/graph.js';
import { cloneGraph, consumers, validateGraph } from '../ir/graph.js';
import type { AdapterState } from './quadratic-spec.js';
import {
  ADAPTER_METADATA_KEY,
  QuadratizeError,
  readAdapterState,
  writeAdapterState,
} from './quadratic-spec.js';

export { quadParamNames, readAdapterState } from './quadratic-spec.js';

function requireState(graph: Graph, what: string): AdapterState {
  const state = readAdapterState(graph);
  if (!state)
    throw new QuadratizeError(`graph '${graph.name}' has no quadratic adapter to ${what}`);
  return state;
}

function corrupt(graph: Graph, detail: string): never {
  throw new QuadratizeError(
    `graph '${graph.name}': its adapter record does not match the graph (${detail}); was the graph edited after quadratize?`,
  );
}

/**
 * The base graph the adapter was added to, exactly: the same nodes (in the same order, with the
 * base nodes' original output names), initializers, inputs, outputs and metadata as before
 * `quadratize` (so `encodeModel` gives the same bytes). Base parameters keep their current
 * values (e.g. after full fine-tuning). Throws a QuadratizeError when the graph has no adapter
 * or was changed in a way that makes the record wrong. Pure: the input graph is not modified.
 */
export function unload(graph: Graph): Graph {
  const state = requireState(graph, 'unload');
  const removeNodes = new Set<string>();
  const removeInits = new Set<string>();
  const restore = new Map<string, { from: string; to: string }>();
  const nodeNames = new Set(graph.nodes.map((n) => n.name));
  for (const t of state.targets) {
    const w = state.wiring[t.node];
    if (!w) corrupt(graph, `no wiring for target '${t.node}'`);
    for (const n of w.nodes) {
      if (!nodeNames.has(n)) corrupt(graph, `node '${n}' is missing`);
      removeNodes.add(n);
    }
    for (const i of w.initializers) {
      if (!graph.initializers.has(i)) corrupt(graph, `initializer '${i}' is missing`);
      removeInits.add(i);
    }
    restore.set(t.node, { from: w.baseOutput, to: w.output });
  }
  // Nothing that stays may read a value that goes away (except through the restored names).
  const removedValues = new Set<string>(removeInits);
  for (const n of graph.nodes)
    if (removeNodes.has(n.name)) for (const o of n.outputs) removedValues.add(o);
  for (const { to } of restore.values()) removedValues.delete(to);
  const uses = consumers(graph);
  for (const v of removedValues) {
    const user = uses.get(v)?.find((n) => !removeNodes.has(n.name));
    if (user) corrupt(graph, `node '${user.name}' reads the adapter's value '${v}'`);
  }

  const g = cloneGraph(graph);
  g.nodes = g.nodes.filter((n) => !removeNodes.has(n.name));
  for (const n of g.nodes) {
    const r = restore.get(n.name);
    if (!r) continue;
    if (n.outputs[0] !== r.from) corrupt(graph, `node '${n.name}' no longer outputs '${r.from}'`);
    n.outputs[0] = r.to;
  }
  for (const t of state.targets)
    if (!g.nodes.some((n) => n.name === t.node)) corrupt(graph, `base node '${t.node}' is missing`);
  for (const i of removeInits) g.initializers.delete(i);
  delete g.metadata[ADAPTER_METADATA_KEY];
  validateGraph(g);
  return g;
}

/**
 * A copy of a quadratized graph whose quadratic terms are added (`enabled`) or bypassed. The
 * mechanism is rewiring, not scaling: disabling turns each target's `y = Add(y0, Q)` into
 * `y = Identity(y0)`, so the outputs are exactly the base model's (no `0 · Q` that a NaN or
 * ∞ in Q could poison, and no extra op on the inference path), while the quadratic nodes and
 * parameters stay in the graph (onnxruntime prunes the unused branch) and enabling again
 * restores the Add. Nothing has to be reloaded: the adapter weights never leave the graph, and
 * `setAdapterEnabled(setAdapterEnabled(g, false), true)` equals `g`. Pure.
 */
export function setAdapterEnabled(graph: Graph, enabled: boolean): Graph {
  const state = requireState(graph, enabled ? 'enable' : 'disable');
  const g = cloneGraph(graph);
  const byName = new Map(g.nodes.map((n) => [n.name, n] as const));
  for (const t of state.targets) {
    const w = state.wiring[t.node];
    const add = w && byName.get(w.addNode);
    if (!w || !add || add.outputs[0] !== w.output)
      corrupt(graph, `the Add node of target '${t.node}' is missing`);
    add.opType = enabled ? 'Add' : 'Identity';
    add.inputs = enabled ? [w.baseOutput, w.quadOutput] : [w.baseOutput];
  }
  writeAdapterState(g, { ...state, enabled });
  return g;
}

/** Whether a quadratized graph's terms are enabled; undefined for a graph without adapter. */
export function isAdapterEnabled(graph: Graph): boolean | undefined {
  return readAdapterState(graph)?.enabled;
}
