import type { Graph, Node } from '../ir/graph.js';
import { attrInt, cloneGraph, consumers, GraphError, uniqueName, usedNames } from '../ir/graph.js';
import { cloneTensor, scalar, tensor } from '../ir/tensor.js';

/** How `setTrainingMode` treats BatchNormalization and Dropout. */
export interface TrainingModeOptions {
  /**
   * `train`: BatchNormalization normalises with batch statistics (training_mode 1) and outputs
   * updated running statistics; `frozen`: it keeps using its stored statistics (inference mode).
   */
  batchNorm: 'train' | 'frozen';
  /** Whether Dropout drops (training mode, with a mask output for its gradient). */
  dropout: boolean;
}

/** A running statistic of a BatchNormalization: the state initializer and its updated value. */
export interface RunningStat {
  /** Initializer read by the node (its input_mean or input_var). */
  state: string;
  /** Graph output holding the updated value after a step, to be written back into `state`. */
  update: string;
}

/** The rewritten graph and the running statistics the runtime must write back each step. */
export interface TrainingModeResult {
  graph: Graph;
  runningStats: RunningStat[];
}

/**
 * Gives each BatchNormalization its own running statistics where their initializer is read
 * elsewhere too: a running statistic is one layer's state, updated by that layer alone, and it
 * must not move a bias that shares its storage. Import already unties tensors an exporter merged
 * from one repeated value (`untieMerged`); this covers any other sharing before a train step.
 * Returns a new graph, or the input graph itself when nothing is shared.
 */
export function unshareRunningStats(graph: Graph): Graph {
  // Reads of each value: one per node input slot, one per graph output. The copy keeps the
  // node order and names, so the counts hold for it too.
  const reads = new Map([...consumers(graph)].map(([v, ns]) => [v, ns.length]));
  for (const o of graph.outputs) reads.set(o.name, (reads.get(o.name) ?? 0) + 1);
  const batchNorms = (g: Graph) =>
    g.nodes.filter((n) => n.domain === '' && n.opType === 'BatchNormalization');
  const shared = (n: Node) => [3, 4].some((k) => (reads.get(n.inputs[k] ?? '') ?? 0) > 1);
  if (!batchNorms(graph).some(shared)) return graph;
  const g = cloneGraph(graph);
  const names = usedNames(g);
  for (const n of batchNorms(g)) {
    for (const k of [3, 4] as const) {
      const state = n.inputs[k]!;
      if ((reads.get(state) ?? 0) <= 1) continue;
      const own = uniqueName(names, `${n.name}.${k === 3 ? 'running_mean' : 'running_var'}`);
      g.initializers.set(own, cloneTensor(g.initializers.get(state)!));
      reads.set(state, reads.get(state)! - 1);
      n.inputs[k] = own;
    }
  }
  return g;
}

function fail(n: Node, msg: string): never {
  throw new GraphError(`node '${n.name}' (${n.opType}): ${msg}`, n.name);
}

/**
 * Puts BatchNormalization and Dropout nodes into training or inference mode. Returns a new
 * graph; the input graph is never modified.
 *
 * - `batchNorm: 'train'`: every BatchNormalization gets `training_mode = 1` and outputs for its
 *   updated running mean/var (`input·momentum + batch·(1 − momentum)`, biased batch variance),
 *   which are added as graph outputs; `runningStats` pairs each with the initializer it updates.
 *   The running mean/var inputs must be initializers.
 * - `batchNorm: 'frozen'`: every BatchNormalization is in inference mode (`training_mode = 0`,
 *   one output) and normalises with its stored statistics.
 * - `dropout: true`: every Dropout gets a constant-true `training_mode` input and a mask output
 *   (its gradient needs the mask). `false`: Dropout is in inference mode (identity).
 */
export function setTrainingMode(graph: Graph, opts: TrainingModeOptions): TrainingModeResult {
  if (opts.batchNorm !== 'train' && opts.batchNorm !== 'frozen') {
    throw new GraphError(
      `setTrainingMode: batchNorm must be 'train' or 'frozen', not '${String(opts.batchNorm)}'`,
    );
  }
  if (typeof opts.dropout !== 'boolean') {
    throw new GraphError(`setTrainingMode: dropout must be true or false`);
  }

  // Validation, before anything is copied or changed.
  const uses = consumers(graph);
  for (const n of graph.nodes) {
    if (n.domain !== '') continue;
    if (n.opType === 'BatchNormalization') {
      if (n.inputs.length < 5 || n.inputs.slice(0, 5).some((i) => !i))
        fail(n, `expected 5 inputs (X, scale, B, input_mean, input_var)`);
      if (opts.batchNorm === 'train') {
        for (const k of [3, 4]) {
          if (!graph.initializers.has(n.inputs[k]!)) {
            fail(
              n,
              `its running ${k === 3 ? 'mean' : 'variance'} '${n.inputs[k]}' must be an initializer to be trained`,
            );
          }
        }
      } else {
        for (const o of n.outputs.slice(1)) {
          if (o && uses.has(o))
            fail(n, `its running-statistic output '${o}' is used by other nodes; cannot freeze`);
        }
      }
    }
  }
  if (opts.batchNorm === 'train') {
    // One state must have one update: two nodes sharing a running statistic cannot both write it
    // (unshareRunningStats gives each its own first).
    const owner = new Map<string, Node>();
    for (const n of graph.nodes) {
      if (n.domain !== '' || n.opType !== 'BatchNormalization') continue;
      for (const s of new Set(n.inputs.slice(3, 5))) {
        const o = owner.get(s);
        if (o)
          fail(n, `shares its running statistic '${s}' with node '${o.name}'; cannot train both`);
        owner.set(s, n);
      }
    }
  }

  const g = cloneGraph(graph);
  const names = usedNames(g);
  const runningStats: RunningStat[] = [];
  let trueConst: string | undefined;
  const removedOutputs = new Set<string>();
  const dropped = new Set<string>();

  for (const n of g.nodes) {
    if (n.domain !== '') continue;
    if (n.opType === 'BatchNormalization') {
      if (opts.batchNorm === 'train') {
        n.attrs['training_mode'] = { type: 'int', value: 1 };
        const outs = [n.outputs[0]!];
        for (const k of [3, 4] as const) {
          const state = n.inputs[k]!;
          const existing = n.outputs[k - 2];
          const update = existing || uniqueName(names, `${state}_updated`);
          outs.push(update);
          runningStats.push({ state, update });
          if (!g.outputs.some((v) => v.name === update)) {
            const t = g.initializers.get(state)!;
            g.outputs.push({ name: update, dtype: t.dtype, shape: [...t.dims] });
          }
        }
        n.outputs = outs;
      } else {
        if (attrInt(n, 'training_mode', 0) !== 0)
          n.attrs['training_mode'] = { type: 'int', value: 0 };
        for (const o of n.outputs.slice(1)) if (o) removedOutputs.add(o);
        n.outputs = [n.outputs[0]!];
      }
    } else if (n.opType === 'Dropout') {
      if (opts.dropout) {
        trueConst ??= addTrue(g, names);
        while (n.inputs.length < 2) n.inputs.push('');
        // Pre-opset-12 form: the ratio attribute becomes the ratio input.
        const ratioAttr = n.attrs['ratio'];
        if (ratioAttr && (ratioAttr.type === 'float' || ratioAttr.type === 'int')) {
          if (!n.inputs[1]) {
            // ONNX types the ratio (T1) independently of the data (T): float32 always fits.
            const name = uniqueName(names, `${n.name}_ratio`);
            g.initializers.set(name, scalar(ratioAttr.value, 'float32'));
            n.inputs[1] = name;
          }
          delete n.attrs['ratio'];
        }
        n.inputs[2] = trueConst;
        if (!n.outputs[1]) n.outputs[1] = uniqueName(names, `${n.outputs[0]}_mask`);
      } else {
        // Inference mode: no training_mode input (absent means false).
        if (n.inputs[2]) dropped.add(n.inputs[2]);
        n.inputs = n.inputs.slice(0, 2);
        while (n.inputs.length > 1 && n.inputs[n.inputs.length - 1] === '') n.inputs.pop();
      }
    }
  }
  if (removedOutputs.size > 0) g.outputs = g.outputs.filter((v) => !removedOutputs.has(v.name));
  // A constant training_mode flag nobody reads any more is removed (not a parameter: a bool).
  const stillUsed = consumers(g);
  for (const name of dropped) {
    if (!stillUsed.has(name) && g.initializers.get(name)?.dtype === 'bool')
      g.initializers.delete(name);
  }
  return { graph: g, runningStats };
}

function addTrue(g: Graph, names: Set<string>): string {
  const name = uniqueName(names, 'dropout_training_mode');
  g.initializers.set(name, tensor('bool', [], [1]));
  return name;
}
