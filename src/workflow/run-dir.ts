/** A run directory's files: what a run writes there and how a failed or forced run removes them. */

import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../io/formats/adapter-config.js';
import { removeAtomic } from '../io/atomic.js';

/** What a run writes into its directory (removed by --force, or when a run fails to start). */
export const RUN_FILES = [
  'run.json',
  'history.jsonl',
  'checkpoints',
  'model.onnx',
  ADAPTER_WEIGHTS_FILE,
  ADAPTER_CONFIG_FILE,
  'eval.json',
];

/** Removes a run's files from `dir`, or `dir` itself when the run created it (`whole`). */
export async function removeRunFiles(dir: string, whole = false): Promise<void> {
  // Renamed aside, then deleted: a kill never leaves a half-deleted file under its real name.
  if (whole) await removeAtomic(dir);
  else for (const f of RUN_FILES) await removeAtomic(join(dir, f));
}

export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
