import type { Graph } from '../ir/graph.js';
import { cloneGraph } from '../ir/graph.js';
import { encodeModel } from '../ir/onnx.js';
import { sha256Hex } from '../io/formats/adapter-config.js';
import { importModel } from '../io/import/importers.js';
import { ARCHITECTURES, type ArchName, type ImageShape } from '../models/zoo.js';
import { UserError } from '../util/errors.js';
import type { ImportNotes } from '../io/import/importers.js';

/** A model to work on: read from a file, or a built-in architecture (`arch:cnn`). */
export interface ModelSource {
  /** The model in the IR. */
  graph: Graph;
  /** What the user named (file path or `arch:NAME`). */
  name: string;
  /** SHA-256 identifying the base model (file bytes, or the encoded built-in graph). */
  sha256: string;
  /** What the import changed on the way in (files only). */
  notes?: ImportNotes;
}

/** Options for built-in architectures. */
export interface ArchSourceOptions {
  /** Input shape of a built-in architecture (default [1, 28, 28]). */
  inputShape?: ImageShape;
  /** Classes of a built-in architecture's head (default 10). */
  classes?: number;
  /** Seed of a built-in architecture's initial weights (default 0). */
  seed?: number;
  /**
   * Fixes the input dims after the batch for models with an open input size (e.g. a TF.js model
   * taking [batch, height, width, 3]): given in the model's own layout, e.g. [64, 64, 3].
   */
  fixInput?: number[];
  /** Refuse model files larger than this many bytes (default: 2 GiB). */
  maxBytes?: number;
}

/**
 * Resolves a MODEL argument: `arch:NAME[:CxHxW][:width=W]` builds a built-in first-order
 * architecture (W multiplies its channel counts, default 1),
 * anything else is read as a model file by the importer registered for its format.
 */
export async function loadModelSource(
  spec: string,
  opts: ArchSourceOptions = {},
): Promise<ModelSource> {
  const m = /^arch:([a-z]+)(?::(\d+)x(\d+)x(\d+))?(?::width=([^:]*))?$/.exec(spec);
  if (!m && spec.startsWith('arch:') && /:width=/.test(spec)) {
    throw new UserError(
      `${spec}: write a built-in architecture as arch:NAME[:CxHxW][:width=W], e.g. arch:resnet:width=2`,
    );
  }
  if (m) {
    const name = m[1] as ArchName;
    const make = ARCHITECTURES[name];
    if (!make) {
      throw new UserError(
        `unknown architecture '${m[1]}'; built-in: ${Object.keys(ARCHITECTURES)
          .map((a) => `arch:${a}`)
          .join(', ')}`,
      );
    }
    const inputShape: ImageShape = m[2]
      ? [Number(m[2]), Number(m[3]), Number(m[4])]
      : (opts.inputShape ?? [1, 28, 28]);
    const width = m[5] === undefined ? 1 : Number(m[5]);
    if (!(width > 0) || !Number.isFinite(width) || !/^\d*\.?\d+$/.test(m[5] ?? '1')) {
      throw new UserError(
        `${spec}: width must be a positive number (a multiplier of the channel counts, e.g. width=2)`,
      );
    }
    const graph = make({ inputShape, classes: opts.classes ?? 10, seed: opts.seed ?? 0, width });
    return { graph, name: spec, sha256: sha256Hex(encodeModel(graph)) };
  }
  if (spec.startsWith('arch:')) {
    throw new UserError(
      `'${spec}' is not a built-in architecture; write arch:NAME or arch:NAME:CxHxW (e.g. arch:cnn:3x32x32) with NAME one of ${Object.keys(
        ARCHITECTURES,
      ).join(', ')}`,
    );
  }
  const imported = await importModel(spec, { maxBytes: opts.maxBytes });
  const g = opts.fixInput ? withInputShape(imported.graph, opts.fixInput, spec) : imported.graph;
  return { graph: g, name: spec, sha256: imported.sha256, notes: imported.notes };
}

/** Size given to each open (symbolic) input dim after the batch when none is chosen. */
export const DEFAULT_OPEN_DIM = 224;

/**
 * A copy of `g` whose first input has the dims `dims` after the batch (given in the model's own
 * layout, e.g. [3, 64, 64] or [64, 64, 3]). Only symbolic dims may be set: a fixed dim that
 * differs is refused (fixed sizes were folded into constants on import).
 *
 * @throws UserError naming `name` and the flag `--input-shape`
 */
export function withInputShape(g: Graph, dims: readonly number[], name: string): Graph {
  const input = g.inputs[0];
  if (!input || input.shape.length !== dims.length + 1) {
    throw new UserError(
      `${name}: --input-shape gives ${dims.length} dims but the input has ${Math.max(0, (input?.shape.length ?? 1) - 1)} after the batch`,
    );
  }
  const clash = dims.findIndex(
    (d, i) => typeof input.shape[i + 1] === 'number' && input.shape[i + 1] !== d,
  );
  if (clash >= 0) {
    throw new UserError(
      `${name}: --input-shape ${dims.join('x')} changes the model's fixed input [${input.shape.slice(1).join(',')}]; it sets only symbolic dims — drop it or export the model with that shape`,
    );
  }
  const out = cloneGraph(g);
  out.inputs[0] = { ...input, shape: [input.shape[0]!, ...dims] };
  return out;
}

/** Where the input size that costs are computed at came from. */
export type InputSizeSource = 'model' | 'given' | 'default';

/** The input size (dims after the batch) that FLOPs and latency are computed at, and its source. */
export interface CostInputSize {
  /** Dims after the batch, in the model's layout. */
  dims: number[];
  /** `model`: the model's input is fixed; `given`: --input-shape; `default`: open dims set to 224. */
  source: InputSizeSource;
  /** Names of the open dims of the model's input (empty for a fixed input). */
  open: string[];
}

/**
 * The size FLOPs and latency are computed at: `given` (the --input-shape), else the model's own
 * when fixed, else its open dims set to `DEFAULT_OPEN_DIM`.
 */
export function costInputSize(g: Graph, given?: readonly number[]): CostInputSize {
  const shape = g.inputs[0]?.shape.slice(1) ?? [];
  const open = shape.filter((d): d is string => typeof d === 'string');
  if (given) return { dims: [...given], source: 'given', open };
  if (open.length === 0) return { dims: shape as number[], source: 'model', open };
  return {
    dims: shape.map((d) => (typeof d === 'number' ? d : DEFAULT_OPEN_DIM)),
    source: 'default',
    open,
  };
}

/** One phrase naming the input size of a cost, e.g. `input [3,224,224] (open height, width: default 224; set --input-shape)`. */
export function describeInputSize(s: CostInputSize): string {
  const dims = `input [${s.dims.join(',')}]`;
  if (s.source === 'default')
    return `${dims} (open ${s.open.join(', ')} set to the default ${DEFAULT_OPEN_DIM}; choose with --input-shape)`;
  if (s.source === 'given') return `${dims} (--input-shape)`;
  return dims;
}

/** The [C, H, W] a single-input image model takes, or a UserError saying why not. */
export function imageInputShape(g: Graph, file: string): [number, number, number] {
  if (g.inputs.length !== 1) {
    throw new UserError(
      `${file}: the model has ${g.inputs.length} inputs; quadranet trains models with one input`,
    );
  }
  const s = g.inputs[0]!.shape;
  if (g.inputs[0]!.dtype !== 'float32') {
    throw new UserError(
      `${file}: input '${g.inputs[0]!.name}' is ${g.inputs[0]!.dtype}; quadranet feeds float32 images or features`,
    );
  }
  if (typeof s[0] === 'number' && s[0] !== -1) {
    throw new UserError(
      `${file}: input '${g.inputs[0]!.name}' has a fixed batch size of ${s[0]}; re-export it with a dynamic batch dimension (e.g. dynamic_axes in torch.onnx.export)`,
    );
  }
  const rest = s.slice(1);
  if (rest.some((d) => typeof d !== 'number')) {
    throw new UserError(
      `${file}: input '${g.inputs[0]!.name}' has symbolic dims [${s.join(',')}] beyond the batch; give it a size: --input-shape (inspect, quadratize, bench), image data (adapt, train and eval run at the data's size), or re-export with a static input size`,
    );
  }
  if (rest.length === 3) return rest as [number, number, number];
  if (rest.length === 2) return [1, rest[0] as number, rest[1] as number];
  if (rest.length === 1) return [1, 1, rest[0] as number];
  throw new UserError(`${file}: input shape [${s.join(',')}] is not an image or feature vector`);
}
