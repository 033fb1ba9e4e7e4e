import type { GraphBuilder } from '../ir/builder.js';
import type { DType } from '../ir/tensor.js';

/** Stochastic gradient descent with PyTorch's semantics (dampening 0). */
export interface SgdOptions {
  /** Discriminant: SGD. */
  kind: 'sgd';
  /** Momentum factor (0 disables the velocity buffer). */
  momentum?: number;
  /** Nesterov momentum. */
  nesterov?: boolean;
  /** L2 penalty added to the gradient. */
  weightDecay?: number;
}

/** AdamW (decoupled weight decay), PyTorch's semantics. */
export interface AdamWOptions {
  /** Discriminant: AdamW. */
  kind: 'adamw';
  /** Decay of the first-moment (mean) estimate (default 0.9). */
  beta1?: number;
  /** Decay of the second-moment estimate (default 0.999). */
  beta2?: number;
  /** Added to the denominator for numerical stability (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay: p ← p − lr·wd·p. */
  weightDecay?: number;
}

/** An optimizer's settings. */
export type OptimizerOptions = SgdOptions | AdamWOptions;

/** One parameter's update: the graph inputs it reads and the outputs that replace them. */
export interface ParamUpdate {
  param: string;
  newParam: string;
  /** Optimizer state buffers: input name → output name (same shape as the parameter). */
  state: { input: string; output: string; kind: string }[];
}

/** Scalar inputs an update reads each step (fed by the runtime's schedule). */
export interface UpdateScalars {
  /** Learning rate of the parameter's group. */
  lr: string;
  /** AdamW bias corrections 1 − β1ᵗ and √(1 − β2ᵗ). */
  bc1?: string;
  sqrtBc2?: string;
}

/**
 * Emits the update of one parameter given its gradient, with optimizer state as graph inputs
 * and outputs so the whole step is one ONNX graph.
 */
export function emitUpdate(
  b: GraphBuilder,
  param: string,
  grad: string,
  shape: readonly number[],
  dtype: DType,
  opt: OptimizerOptions,
  s: UpdateScalars,
  weightDecay: number,
): ParamUpdate {
  const state: ParamUpdate['state'] = [];
  const stateIn = (kind: string): string => {
    const name = b.input(`${param}.${kind}`, dtype, [...shape]);
    return name;
  };
  const stateOut = (kind: string, input: string, value: string): void => {
    const out = b.op('Identity', [value], {}, { outputs: [`${param}.${kind}.next`] });
    state.push({ input, output: out, kind });
  };
  if (opt.kind === 'sgd') {
    const mom = opt.momentum ?? 0;
    let g = grad;
    if (weightDecay > 0) g = b.add(g, b.mul(param, b.scalar(weightDecay, dtype)));
    if (mom > 0) {
      const bufIn = stateIn('momentum');
      const buf = b.add(b.mul(bufIn, b.scalar(mom, dtype)), g);
      stateOut('momentum', bufIn, buf);
      g = opt.nesterov ? b.add(g, b.mul(buf, b.scalar(mom, dtype))) : buf;
    }
    const newParam = b.op('Sub', [param, b.mul(g, s.lr)], {}, { outputs: [`${param}.next`] });
    return { param, newParam, state };
  }
  const beta1 = opt.beta1 ?? 0.9;
  const beta2 = opt.beta2 ?? 0.999;
  const eps = opt.eps ?? 1e-8;
  const mIn = stateIn('adam_m');
  const vIn = stateIn('adam_v');
  const m = b.add(b.mul(mIn, b.scalar(beta1, dtype)), b.mul(grad, b.scalar(1 - beta1, dtype)));
  const v = b.add(
    b.mul(vIn, b.scalar(beta2, dtype)),
    b.mul(b.mul(grad, grad), b.scalar(1 - beta2, dtype)),
  );
  stateOut('adam_m', mIn, m);
  stateOut('adam_v', vIn, v);
  const denom = b.add(b.div(b.sqrt(v), s.sqrtBc2!), b.scalar(eps, dtype));
  const step = b.mul(b.div(b.div(m, s.bc1!), denom), s.lr);
  let p = param;
  if (weightDecay > 0) p = b.sub(p, b.mul(b.mul(param, s.lr), b.scalar(weightDecay, dtype)));
  const newParam = b.op('Sub', [p, step], {}, { outputs: [`${param}.next`] });
  return { param, newParam, state };
}

/**
 * Scales all gradients so that their global L2 norm is at most `maxNorm`; returns the scaled
 * gradients and the (unclipped) norm's value name.
 */
export function clipByGlobalNorm(
  b: GraphBuilder,
  grads: readonly string[],
  maxNorm: number | undefined,
  dtype: DType,
): { grads: string[]; norm: string } {
  const squares = grads.map((g) => b.op('ReduceSumSquare', [g], { keepdims: 0 }));
  const total = squares.length === 1 ? squares[0]! : b.op('Sum', squares);
  const norm = b.sqrt(total);
  if (maxNorm === undefined) return { grads: [...grads], norm };
  const scale = b.op('Min', [
    b.scalar(1, dtype),
    b.div(b.scalar(maxNorm, dtype), b.add(norm, b.scalar(1e-6, dtype))),
  ]);
  return { grads: grads.map((g) => b.mul(g, scale)), norm };
}
