/**
 * The shape-rule registry (one rule per op type, like the gradient rules) and the helpers the
 * rules share. A leaf of the shapes folder: rule files import it, it imports none of them.
 */

import type { Dim, Node, ValueInfo } from '../graph.js';
import { GraphError } from '../graph.js';
import type { DType } from '../tensor.js';
import { axisInRange } from '../axes.js';

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

/** The rule of an op type in the default domain, if there is one. */
export function shapeRule(opType: string): ShapeRule | undefined {
  return rules.get(opType);
}

/** Registers the shape rule of an op type. */
export function registerShapeRule(opType: string | string[], rule: ShapeRule): void {
  for (const t of Array.isArray(opType) ? opType : [opType]) rules.set(t, rule);
}

/** Op types that have a shape rule. */
export function shapeRuleOps(): string[] {
  return [...rules.keys()].sort();
}

export function fail(ctx: ShapeContext, msg: string): never {
  throw new GraphError(`node '${ctx.node.name}' (${ctx.node.opType}): ${msg}`, ctx.node.name);
}

export function req(ctx: ShapeContext, i: number): ValueInfo {
  const v = ctx.inputs[i];
  if (!v) fail(ctx, `input ${i} is missing`);
  return v;
}

export function normAxis(ctx: ShapeContext, axis: number, rank: number): number {
  const a = axisInRange(axis, rank);
  if (a === undefined) fail(ctx, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/**
 * Numpy-style broadcast of shapes. An unknown (symbolic) size yields to a known one; two known
 * sizes that differ (neither 1) call `mismatch`, which throws.
 */
export function broadcastDims(shapes: readonly (readonly Dim[])[], mismatch: () => never): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i];
      if (e === undefined || e === 1) continue;
      if (d === 1 || typeof d === 'string') d = e;
      else if (typeof e === 'number' && e !== d) mismatch();
    }
    out.push(d);
  }
  return out;
}

/** Numpy-style broadcast of shapes, failing in `ctx` (or with an Error) when they do not. */
export function broadcastShapes(ctx: ShapeContext | undefined, shapes: Dim[][]): Dim[] {
  return broadcastDims(shapes, () => {
    const msg = `shapes [${shapes.map((x) => x.join(',')).join('] and [')}] do not broadcast`;
    if (ctx) fail(ctx, msg);
    throw new Error(msg);
  });
}

export const same: ShapeRule = (ctx) => ({
  outputs: [{ dtype: req(ctx, 0).dtype, shape: [...req(ctx, 0).shape] }],
});

/**
 * A symbolic dim as its symbol and a whole factor: `batch*9` (the open batch times 9, from
 * shape arithmetic such as Swin's window count) is [`batch`, 9]; `batch` is [`batch`, 1].
 */
export function symbolFactor(d: string): [string, number] {
  const m = /^(.*)\*(\d+)$/.exec(d);
  return m ? [m[1]!, Number(m[2])] : [d, 1];
}
