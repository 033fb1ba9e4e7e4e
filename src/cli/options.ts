import { InvalidArgumentError, Option } from 'commander';
import type { QuadMode, QuadPhi } from '../passes/quadratic-spec.js';
import { QUAD_MODES } from '../passes/quadratic-spec.js';
import type { QuadratizeOptions } from '../passes/quadratize.js';
import { phiChoices, quadVariant } from '../passes/variants/index.js';
import type { QuadBudget } from '../passes/budget/parse.js';
import { parseBudget } from '../passes/budget/parse.js';
import type { ExecutionProvider } from '../runtime/session.js';
import { EXECUTION_PROVIDERS } from '../runtime/session.js';

/** Parses a positive integer flag value (commander reports the flag name on error). */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

/** The `--ep` option: where onnxruntime runs (cpu, or webgpu where a GPU is present). */
export function epOption(): Option {
  return new Option(
    '--ep <provider>',
    'onnxruntime execution provider: cpu, or webgpu (needs a GPU and its Vulkan driver)',
  ).choices(EXECUTION_PROVIDERS as ExecutionProvider[]);
}

/** Parses a non-negative integer. */
export function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`expected a whole number ≥ 0, got '${v}'`);
  return n;
}

/** Parses a positive number. */
export function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number, got '${v}'`);
  return n;
}

/** Parses a fraction in [0, 1). */
export function fraction(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n >= 1)
    throw new InvalidArgumentError(`expected a number in [0, 1), got '${v}'`);
  return n;
}

/** Collects a repeatable flag into a list. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** The quadratic-term flags shared by quadratize, adapt and train. */
export function quadOptions(): Option[] {
  return [
    new Option(
      '--rank <r>',
      'rank of the quadratic term for every target (default: 4, and 1 on depthwise/grouped convs)',
    ).argParser(positiveInt),
    new Option('--mode <mode>', 'lowrank (QuadraNet V2) or neuron (full rank, V1)')
      .choices(QUAD_MODES)
      .default('lowrank'),
    new Option(
      '--phi <phi>',
      `kernel function: ${phiChoices()
        .map((n) => `${n} ${quadVariant(n)!.formula}`)
        .join(', ')}`,
    )
      .choices(phiChoices())
      .default('product'),
    new Option(
      '--kernel-size <k>',
      'kernel size of A and B (default: atrous rule, 7×7 → 3×3)',
    ).argParser(positiveInt),
    new Option('--atrous <d>', 'dilation of A and B (default: atrous rule, d·(k−1)/2)').argParser(
      positiveInt,
    ),
    new Option(
      '--targets <pattern>',
      'adapt only these layers: op type or regex on node/weight name (repeatable)',
    ).argParser(collect),
    new Option('--exclude <pattern>', 'leave out these layers (repeatable)').argParser(collect),
    new Option('--include-head', 'also adapt the classifier head'),
    new Option('--init-scale <s>', 'scale of the Kaiming-uniform init of A and B').argParser(
      positiveNumber,
    ),
    new Option(
      '--budget <spec>',
      'place and size the terms within a cost: flops=P% (added FLOPs of the whole model) or latency=Fx (measured inference time vs the original); ranks up to --rank or the defaults',
    ).argParser(parseBudget),
    new Option(
      '--budget-batch <n>',
      'batch size a latency budget is timed at (default 1)',
    ).argParser(positiveInt),
  ];
}

/** Parsed quadratic-term flags. */
export interface QuadFlags {
  /** Explicit rank for every target; absent: the per-kind defaults. */
  rank?: number;
  mode: QuadMode;
  /** A registered variant's name (`--phi`). */
  phi: QuadPhi;
  kernelSize?: number;
  atrous?: number;
  targets?: string[];
  exclude?: string[];
  includeHead?: boolean;
  initScale?: number;
  /** `--budget`: plan the targets and ranks within this cost. */
  budget?: QuadBudget;
  /** `--budget-batch`: batch size of a latency budget's timings. */
  budgetBatch?: number;
}

/** The quadratize options the flags say. */
export function toQuadratizeOptions(f: QuadFlags, seed: number): QuadratizeOptions {
  return {
    rank: f.rank,
    mode: f.mode,
    phi: f.phi,
    kernelSize: f.kernelSize,
    dilation: f.atrous,
    targets: f.targets,
    exclude: f.exclude,
    includeHead: f.includeHead,
    initScale: f.initScale,
    seed,
  };
}

/** Parses `--input-shape 64x64x3` (dims after the batch, in the model's layout). */
export function inputShape(v: string): number[] {
  const dims = v.split('x').map((d) => Number(d));
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new InvalidArgumentError(`expected dims like 64x64x3, got '${v}'`);
  }
  return dims;
}

/** Flags of the program itself, copied into every command's options before it runs (main.ts). */
export interface GlobalFlags {
  /** `--max-model-bytes`: refuse larger model files. */
  maxModelBytes?: number;
}

/** The model-file limits a command's options carry (for loadModelSource). */
export function modelLimits(o: object): { maxBytes?: number } {
  return { maxBytes: (o as GlobalFlags).maxModelBytes };
}
