import { join } from 'node:path';
import type { Command } from 'commander';
import { encodeModel } from '../../ir/onnx.js';
import { loadAdapter } from '../../workflow/adapter-files.js';
import { readAdapterConfig } from '../../io/formats/adapter-config.js';
import { ensureWritableDir, writeFileAtomic } from '../../io/atomic.js';
import { readAdapterState, setAdapterEnabled, unload } from '../../passes/adapter.js';
import { loadModelSource } from '../../workflow/model-source.js';
import { UserError } from '../errors.js';
import { refuseOccupiedDir } from '../output-dir.js';
import { modelLimits } from '../options.js';

/** What `apply` and `unload` wrote. */
interface Written {
  model: string;
  file: string;
  adapter?: string;
  enabled?: boolean;
  targets: number;
}

function report(w: Written, json: boolean | undefined, what: string): void {
  if (json) console.log(JSON.stringify(w, null, 2));
  else console.log(`${what}; wrote ${w.file}`);
}

/**
 * `quadranet apply BASE ADAPTER_DIR -o DIR` (put an adapter back on its base model) and
 * `quadranet unload MODEL -o DIR` (take it off again). The quadratic term cannot be merged into
 * W (unlike LoRA), so there is no `--merge`: `--disable` writes the adapted structure with the
 * terms bypassed instead (outputs of the base, weights kept for enabling later).
 */
export function registerApply(program: Command): void {
  program
    .command('apply')
    .description(
      'put an adapter (adapter.safetensors + adapter_config.json) back on its base model and write model.onnx; refuses another base',
    )
    .argument('<base>', 'the base model the adapter was trained from (file or arch:NAME)')
    .argument('<adapter-dir>', 'directory with adapter_config.json and adapter.safetensors')
    .requiredOption('-o, --out <dir>', 'output directory (model.onnx)')
    .option(
      '--disable',
      'write the quadratic terms bypassed (their weights stay in the file; a head saved with the adapter stays applied)',
    )
    .option('--force', 'overwrite model.onnx in an occupied output directory')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        baseArg: string,
        adapterDir: string,
        o: { out: string; disable?: boolean; force?: boolean; json?: boolean },
      ) => {
        await refuseOccupiedDir(o.out, ['model.onnx'], o.force);
        // Read the config first: a wrong adapter directory is reported before the model loads.
        await readAdapterConfig(adapterDir);
        const src = await loadModelSource(baseArg, modelLimits(o));
        if (readAdapterState(src.graph)) {
          throw new UserError(
            `${baseArg} already carries a quadratic adapter; give the base model it was trained from (or 'quadranet unload' it first)`,
          );
        }
        let g = await loadAdapter(adapterDir, src.graph, src.sha256, { modelFile: baseArg });
        if (o.disable) g = setAdapterEnabled(g, false);
        await ensureWritableDir(o.out);
        const file = join(o.out, 'model.onnx');
        await writeFileAtomic(file, encodeModel(g));
        const targets = readAdapterState(g)!.targets.length;
        report(
          { model: baseArg, adapter: adapterDir, file, enabled: !o.disable, targets },
          o.json,
          `${adapterDir} applied to ${baseArg} (${targets} quadratic layers${o.disable ? ', disabled' : ''})`,
        );
      },
    );

  program
    .command('unload')
    .description(
      'remove the quadratic terms from an adapted model.onnx and write the base model (trained base parameters, e.g. the head, stay)',
    )
    .argument('<model>', 'an adapted model (model.onnx from quadratize, adapt or apply)')
    .requiredOption('-o, --out <dir>', 'output directory (model.onnx)')
    .option('--force', 'overwrite model.onnx in an occupied output directory')
    .option('--json', 'print the result as JSON')
    .action(async (modelArg: string, o: { out: string; force?: boolean; json?: boolean }) => {
      await refuseOccupiedDir(o.out, ['model.onnx'], o.force);
      const src = await loadModelSource(modelArg, modelLimits(o));
      const state = readAdapterState(src.graph);
      if (!state)
        throw new UserError(`${modelArg} has no quadratic adapter to unload; it is a base model`);
      const g = unload(src.graph);
      await ensureWritableDir(o.out);
      const file = join(o.out, 'model.onnx');
      await writeFileAtomic(file, encodeModel(g));
      report(
        { model: modelArg, file, targets: state.targets.length },
        o.json,
        `removed the quadratic terms of ${state.targets.length} layers from ${modelArg}`,
      );
    });
}
