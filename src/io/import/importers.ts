import { readFile, stat } from 'node:fs/promises';
import type { Graph } from '../../ir/graph.js';
import { GraphError } from '../../ir/graph.js';
import type { FoldReport } from '../../passes/fold.js';
import type { NormalizeReport, NormalizeResult } from '../../passes/normalize-export.js';
import type { UpgradeReport } from '../../passes/upgrade-opset.js';
import { decodeModel } from '../../ir/onnx.js';
import { QuadranetFileError } from '../errors.js';
import { sha256Hex } from '../formats/adapter-config.js';
import { isGraphModelJson } from './tfjs/graph-model.js';

/** A model file read into the IR, with what identifies the exact base model. */
export interface ImportedModel {
  /** The model in the IR. */
  graph: Graph;
  /** The file's path as given. */
  file: string;
  /** SHA-256 of the file's bytes (adapters record it to refuse another base model). */
  sha256: string;
  /** Which importer read it. */
  format: string;
  /** What the import changed on the way in (for `inspect`); empty when nothing. */
  notes: ImportNotes;
}

/** What an importer did to the file's graph on the way into the IR. */
export interface ImportNotes {
  /** Older opset rewritten to the canonical one. */
  upgraded?: UpgradeReport;
  /** Training-mode export put in inference form, layout ops folded into weights. */
  normalized?: NormalizeReport;
  /** Identity nodes and static shape arithmetic folded. */
  folded?: FoldReport;
}

/** Reads one model format into the IR. */
export interface Importer {
  /** Whether this importer handles the file (by name; content is checked when reading). */
  matches(file: string): boolean;
  /**
   * A content check among importers whose names match (e.g. TF.js graph vs layers models, both
   * `model.json`): an importer whose check accepts the bytes wins over one without a check.
   */
  accepts?(bytes: Uint8Array): boolean;
  /** The graph, or the graph with notes of what the import changed. */
  read(
    file: string,
    bytes: Uint8Array,
  ): Promise<Graph | { graph: Graph; notes: ImportNotes }> | Graph;
}

/** Options of `importModel`. */
export interface ImportOptions {
  /** Refuse files larger than this many bytes (default 2 GiB, protobuf's limit). */
  maxBytes?: number;
}

const importers = new Map<string, Importer>();

/** Registers an importer under a format name (e.g. 'onnx', 'tfjs'). */
export function registerImporter(format: string, importer: Importer): void {
  importers.set(format, importer);
}

registerImporter('onnx', {
  matches: (file) => /\.onnx$/i.test(file),
  // Older opsets are upgraded (upgradeOpset, in decodeModel), training-mode exports put in
  // inference form (normalizeExport), Identity nodes and static shape arithmetic folded
  // (foldConstants), initializers the exporter merged untied (untieMerged); what was done is
  // kept for `inspect`.
  read: async (file, bytes) => {
    const [{ foldOnImport }, norm] = await Promise.all([
      import('../../passes/fold.js'),
      import('../../passes/normalize-export.js'),
    ]);
    const notes: ImportNotes = {};
    const decoded = decodeModel(bytes, { file, onUpgrade: (r) => (notes.upgraded = r) });
    let normal: NormalizeResult;
    try {
      normal = norm.normalizeExport(decoded);
    } catch (e) {
      if (!(e instanceof GraphError)) throw e;
      throw new QuadranetFileError(file, `${file}: ${e.message}`);
    }
    const folded = foldOnImport(normal.graph);
    if (folded.report) notes.folded = folded.report;
    const untied = norm.untieMerged(folded.graph);
    normal.report.untied = untied.untied;
    if (norm.normalizedAnything(normal.report)) notes.normalized = normal.report;
    return { graph: untied.graph, notes };
  },
});

registerImporter('tfjs', {
  matches: (file) => /model\.json$/i.test(file),
  read: async (file, bytes) => (await import('./tfjs/index.js')).readTfjs(file, bytes),
});

registerImporter('tfjs-graph', {
  matches: (file) => /model\.json$/i.test(file),
  // `"format": "graph-model"` (a TF GraphDef) rather than a Keras topology.
  accepts: (bytes) => isGraphModelJson(bytes),
  read: async (file, bytes) => (await import('./tfjs/graph-model.js')).readTfjsGraph(file, bytes),
});

registerImporter('safetensors', {
  matches: (file) => /\.safetensors$/i.test(file),
  read: async (file, bytes) =>
    (await import('./safetensors-arch.js')).readArchCheckpoint(file, bytes),
});

/**
 * Reads a model file with the importer registered for its format. Errors are one line naming
 * the file and what to do.
 */
export async function importModel(
  file: string,
  { maxBytes = 2 ** 31 }: ImportOptions = {},
): Promise<ImportedModel> {
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile())
      throw new QuadranetFileError(
        file,
        `${file}: is not a file; pass a model file (.onnx, TF.js model.json or .safetensors)`,
      );
    size = s.size;
  } catch (e) {
    if (e instanceof QuadranetFileError) throw e;
    throw new QuadranetFileError(file, `${file}: no such model file; check the path`);
  }
  if (size > maxBytes) {
    throw new QuadranetFileError(
      file,
      `${file}: ${size} bytes is over the limit of ${maxBytes} bytes; raise --max-model-bytes if the file is trusted`,
    );
  }
  const candidates = [...importers].filter(([, imp]) => imp.matches(file));
  if (candidates.length === 0) {
    throw new QuadranetFileError(
      file,
      `${file}: unknown model format; supported: ${[...importers.keys()].join(', ')} (by file extension)`,
    );
  }
  const bytes = await readFile(file);
  const entry =
    candidates.find(([, imp]) => imp.accepts?.(bytes) === true) ??
    candidates.find(([, imp]) => !imp.accepts) ??
    candidates[0]!;
  const read = await entry[1].read(file, bytes);
  const { graph, notes } = 'nodes' in read ? { graph: read, notes: {} } : read;
  return { graph, file, sha256: sha256Hex(bytes), format: entry[0], notes };
}
