/**
 * The registry of quadratic-term variants: one entry per kernel function φ (DESIGN.md §3), like
 * the gradient rules are keyed by op type. Everything that depends on φ (which factors a target
 * has, how they start, which modes may run it, the emitted subgraph, the CLI's `--phi` choices,
 * adapter validation) reads its entry; adding a variant is one file that calls
 * `registerQuadVariant` (plus its PyTorch twin in python/quadranet_torch.py's `PHIS`).
 */

import type { GraphBuilder } from '../../ir/builder.js';
import type { QuadMode, QuadRole } from '../quadratic-spec.js';

/** What a variant's φ emitter receives besides A(x) and B(x). */
export interface PhiContext {
  /** Builder on the graph being built (node names get the target's prefix). */
  b: GraphBuilder;
  /** Initializer name of one of the target's parameters (e.g. a per-channel `quad_gamma`). */
  param(role: QuadRole): string;
  /**
   * Shape that makes a per-channel parameter broadcast over the branch's channel axis (e.g.
   * `[1, -1, 1, 1]` for NCHW); undefined when it already broadcasts (channels last).
   */
  channelShape: number[] | undefined;
}

/** A per-channel parameter of a variant (shape `[branch channels]`) and its initial value. */
export interface ChannelParam {
  /** Its role, also the suffix of its name (`W.quad_gamma`). */
  role: QuadRole;
  /** The constant it starts at (the same at every re-initialisation). */
  init: number;
}

/** One quadratic-term variant: a kernel function φ and what it needs. */
export interface QuadVariant {
  /** The name stored in `adapter_config.json` (`phi`) and accepted by `--phi`. */
  name: string;
  /** φ as a formula, for `--help` and reports. */
  formula: string;
  /** Whether φ reads B(x); without it the target has no `quad_b` factor at all. */
  usesB: boolean;
  /** Per-channel parameters beyond A, B and U. */
  channelParams?: readonly ChannelParam[];
  /**
   * Modes the variant cannot run in, each with the reason (a sentence that follows
   * "phi 'NAME' needs mode …"), e.g. a φ that is non-zero at zero input needs U.
   */
  refusedModes?: Partial<Readonly<Record<QuadMode, string>>>;
  /** The first-order control (chosen by the linear-adapter method), not offered by `--phi`. */
  control?: boolean;
  /** Emits φ(a, b) and returns its value name (`b` is undefined when `usesB` is false). */
  emit(ctx: PhiContext, a: string, b: string | undefined): string;
}

const variants = new Map<string, QuadVariant>();

/**
 * Registers (or replaces) a quadratic-term variant. Its name must be a lowercase identifier: it
 * is written into adapter files and read back by every tool that loads them.
 */
export function registerQuadVariant(variant: QuadVariant): void {
  if (!/^[a-z][a-z0-9_]*$/.test(variant.name))
    throw new Error(`quadratic variant name '${variant.name}' must be a lowercase identifier`);
  variants.set(variant.name, variant);
}

/** The registered variant of a φ name, or undefined. */
export function quadVariant(name: string): QuadVariant | undefined {
  return variants.get(name);
}

/** The names of every registered variant, in registration order (`control` ones included). */
export function quadVariants(): string[] {
  return [...variants.keys()];
}

/** The variants a user picks with `--phi` (all but the first-order control). */
export function phiChoices(): string[] {
  return [...variants.values()].filter((v) => !v.control).map((v) => v.name);
}

/**
 * Why `phi` cannot be used in `mode` (unknown name or a mode the variant refuses), as one
 * sentence; undefined when it can.
 */
export function variantRefusal(phi: string, mode: QuadMode): string | undefined {
  const v = variants.get(phi);
  if (!v) return `phi '${phi}' is unknown (known: ${quadVariants().join(', ')})`;
  const why = v.refusedModes?.[mode];
  return why === undefined ? undefined : `phi '${phi}' needs mode ${why}`;
}

/** The variant of a φ name; throws when it is not registered (callers validated it already). */
export function requireVariant(name: string): QuadVariant {
  const v = variants.get(name);
  if (!v) throw new Error(`quadratic variant '${name}' is not registered`);
  return v;
}
