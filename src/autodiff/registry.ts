import type { GraphBuilder } from '../ir/builder.js';
import type { Node } from '../ir/graph.js';
import type { DType } from '../ir/tensor.js';

/** What a gradient rule sees: the forward node, static shapes and a builder for new nodes. */
export interface GradContext {
  /** Emits the gradient nodes into the training graph. */
  b: GraphBuilder;
  /** The forward node being differentiated. */
  node: Node;
  /** Static shape of any forward value. */
  shape(name: string): number[];
  /** Element type of any forward value. */
  dtype(name: string): DType;
  /** Whether input `i` of the node needs a gradient (so rules skip work nobody reads). */
  needs(i: number): boolean;
  /** A constant scalar in the node's float dtype. */
  scalar(v: number): string;
  /** Which emitted form a rule with alternatives uses (measurements and tests choose others). */
  forms: Required<GradForms>;
}

/**
 * Alternative gradient forms, for measurements and tests (the defaults are the fastest measured,
 * bench/PROFILE.md): passed to `backward`, never set globally.
 */
export interface GradForms {
  /** Conv weight gradients: `auto` (per layer, the default), `conv` or `im2col`. */
  convWeightGrad?: 'auto' | 'conv' | 'im2col';
  /** Stride-1 Conv input gradients as a Conv of the flipped kernel (default) or a ConvTranspose. */
  convInputGrad?: 'conv' | 'convtranspose';
  /** MaxPool gradients by a mask on non-overlapping pools (default true) or by scatter. */
  maxPoolMask?: boolean;
}

/** The default forms. */
export const DEFAULT_GRAD_FORMS: Required<GradForms> = {
  convWeightGrad: 'auto',
  convInputGrad: 'conv',
  maxPoolMask: true,
};

/**
 * A reverse-mode rule: given gradients of the node's outputs (undefined when an output does not
 * reach the loss), returns the gradient of each input (undefined when not needed or not
 * differentiable). Emitted nodes must be standard ONNX operators.
 */
export type GradRule = (
  ctx: GradContext,
  dOutputs: (string | undefined)[],
) => (string | undefined)[];

const registry = new Map<string, GradRule>();

/** Registers the gradient rule of one or more op types. */
export function registerGradient(opType: string | string[], rule: GradRule): void {
  for (const t of Array.isArray(opType) ? opType : [opType]) {
    if (registry.has(t)) throw new Error(`gradient rule for ${t} registered twice`);
    registry.set(t, rule);
  }
}

/** The rule for an op type, if any. */
export function gradientRule(opType: string): GradRule | undefined {
  return registry.get(opType);
}

/** Op types with a gradient rule. */
export function differentiableOps(): string[] {
  return [...registry.keys()].sort();
}
