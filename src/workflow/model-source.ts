import type { Graph } from '../ir/graph.js';
import { encodeModel } from '../ir/onnx.js';
import { importModel, sha256 } from '../io/importers.js';
import { ARCHITECTURES, type ArchName, type ImageShape } from '../models/zoo.js';
import { UserError } from '../cli/errors.js';

/** A model to work on: read from a file, or a built-in architecture (`arch:cnn`). */
export interface ModelSource {
  /** The model in the IR. */
  graph: Graph;
  /** What the user named (file path or `arch:NAME`). */
  name: string;
  /** SHA-256 identifying the base model (file bytes, or the encoded built-in graph). */
  sha256: string;
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

let modelByteLimit: number | undefined;

/** Sets the default size limit of model files (the CLI's --max-model-bytes). */
export function setModelByteLimit(bytes: number | undefined): void {
  modelByteLimit = bytes;
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
    return { graph, name: spec, sha256: sha256(encodeModel(graph)) };
  }
  const imported = await importModel(spec, { maxBytes: opts.maxBytes ?? modelByteLimit });
  const g = imported.graph;
  if (opts.fixInput) {
    const input = g.inputs[0];
    if (!input || input.shape.length !== opts.fixInput.length + 1) {
      throw new UserError(
        `${spec}: --input-shape gives ${opts.fixInput.length} dims but the input has ${Math.max(0, (input?.shape.length ?? 1) - 1)} after the batch`,
      );
    }
    // Only symbolic dims may be set: fixed ones were folded into constants on import.
    const clash = opts.fixInput.findIndex(
      (d, i) => typeof input.shape[i + 1] === 'number' && input.shape[i + 1] !== d,
    );
    if (clash >= 0) {
      throw new UserError(
        `${spec}: --input-shape ${opts.fixInput.join('x')} changes the model's fixed input [${input.shape.slice(1).join(',')}]; it sets only symbolic dims — drop it or export the model with that shape`,
      );
    }
    input.shape = [input.shape[0]!, ...opts.fixInput];
  }
  return { graph: g, name: spec, sha256: imported.sha256 };
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
      `${file}: input '${g.inputs[0]!.name}' has symbolic dims [${s.join(',')}] beyond the batch; re-export with a static input size`,
    );
  }
  if (rest.length === 3) return rest as [number, number, number];
  if (rest.length === 2) return [1, rest[0] as number, rest[1] as number];
  if (rest.length === 1) return [1, 1, rest[0] as number];
  throw new UserError(`${file}: input shape [${s.join(',')}] is not an image or feature vector`);
}
