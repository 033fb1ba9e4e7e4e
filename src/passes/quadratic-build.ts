/**
 * Builds the quadratized copy of a graph from validated plans: initial values of the quadratic
 * parameters (seeded per weight name), the emitted terms and the Add that joins each to its
 * layer, and the adapter record in the graph's metadata.
 */

import { GraphBuilder } from '../ir/builder.js';
import type { Graph, Node } from '../ir/graph.js';
import { cloneGraph, validateGraph } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { allocate, numel } from '../ir/tensor.js';
import { Rng } from '../util/random.js';
import type { PlannedTarget } from './quadratic-handlers.js';
import { quadHandler } from './quadratic-handlers.js';
import type {
  AdapterConfig,
  AdapterState,
  QuadParamSpec,
  QuadTargetSpec,
  TargetWiring,
} from './quadratic-spec.js';
import { QuadratizeError, writeAdapterState } from './quadratic-spec.js';
import { constantLookup } from './targets.js';
import { requireVariant } from './variants/index.js';

/** Refuses parameter names that already exist (e.g. a graph quadratized and then exported). */
export function checkNameClashes(graph: Graph, planned: PlannedTarget[]): void {
  const taken = new Set<string>([...graph.initializers.keys(), ...graph.inputs.map((v) => v.name)]);
  for (const n of graph.nodes) for (const o of n.outputs) taken.add(o);
  for (const { spec } of planned) {
    for (const p of spec.params) {
      if (taken.has(p.name)) {
        throw new QuadratizeError(
          `node '${spec.node}' (${spec.op}): the graph already has a value named '${p.name}'; was it quadratized and exported before?`,
          spec.node,
        );
      }
    }
  }
}

/** A 32-bit seed for one target: FNV-1a of the weight name mixed with the global seed. */
function targetSeed(seed: number, weight: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 2 ** 32);
  for (let i = 0; i < weight.length; i++) {
    h ^= weight.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Initial value of one quadratic parameter (see `quadratize`). */
function initParam(
  p: QuadParamSpec,
  spec: QuadTargetSpec,
  fanIn: number,
  like: Tensor,
  rng: Rng,
  initScale: number,
): Tensor {
  const n = numel(p.shape);
  const data = allocate(like.dtype, n) as Float32Array | Float64Array;
  const zero = p.role === 'quad_u' || (p.role === 'quad_a' && spec.mode === 'neuron');
  const channel = requireVariant(spec.phi).channelParams?.find((c) => c.role === p.role);
  if (channel) data.fill(channel.init);
  else if (!zero) {
    const bound = initScale * Math.sqrt(6 / fanIn);
    for (let i = 0; i < n; i++) data[i] = rng.uniform(-bound, bound);
  }
  return { dtype: like.dtype, dims: [...p.shape], data };
}

/** Builds the quadratized copy of `graph` from validated plans. */
export function build(graph: Graph, planned: PlannedTarget[], config: AdapterConfig): Graph {
  const g = cloneGraph(graph);
  const b = new GraphBuilder(g);
  const constant = constantLookup(g);
  const wiring: Record<string, TargetWiring> = {};
  for (const { spec, fanIn } of planned) {
    const node = g.nodes.find((n) => n.name === spec.node)!;
    const handler = quadHandler(node)!;
    const firstNew = g.nodes.length;
    const initsBefore = new Set(g.initializers.keys());
    const weight = constant(spec.weight)!;
    const rng = new Rng(targetSeed(config.seed, spec.weight));
    const names = new Map<string, string>();
    for (const p of spec.params) {
      b.reserve(p.name);
      g.initializers.set(p.name, initParam(p, spec, fanIn, weight, rng, config.initScale));
      names.set(p.role, p.name);
    }
    b.prefix = `${node.name}/quad/`;
    const quadOutput = handler.emit({
      b,
      node,
      spec,
      param: (role) => {
        const name = names.get(role);
        if (!name) throw new Error(`target '${spec.node}' has no ${role} parameter`);
        return name;
      },
    });
    b.prefix = '';
    const output = node.outputs[0]!;
    const baseOutput = b.fresh(`${output}/base`);
    node.outputs[0] = baseOutput;
    // The Add takes over the original output name, so every consumer and graph output now sees
    // y0 + Q(x) without being touched. (Built by hand: the builder would rename the output.)
    const add: Node = {
      name: b.fresh(`${node.name}/quad/add`),
      opType: 'Add',
      domain: '',
      inputs: [baseOutput, quadOutput],
      outputs: [output],
      attrs: {},
    };
    g.nodes.push(add);
    // Keep the graph in topological order: the new nodes go right after the base node.
    const added = g.nodes.splice(firstNew);
    g.nodes.splice(g.nodes.indexOf(node) + 1, 0, ...added);
    wiring[node.name] = {
      output,
      baseOutput,
      quadOutput,
      addNode: add.name,
      nodes: added.map((n) => n.name),
      initializers: [...g.initializers.keys()].filter((k) => !initsBefore.has(k)),
    };
  }
  const state: AdapterState = {
    format: 'quadranet.adapter',
    version: 1,
    enabled: true,
    ...config,
    wiring,
  };
  writeAdapterState(g, state);
  validateGraph(g);
  return g;
}
