import { readdir } from 'node:fs/promises';
import { UserError } from './errors.js';

/**
 * Refuses to write into `dir` when it already holds any of `files` (another model's or run's
 * output), unless `force`: commands never silently overwrite what an earlier command wrote.
 * A missing or empty directory is fine.
 */
export async function refuseOccupiedDir(
  dir: string,
  files: readonly string[],
  force: boolean | undefined,
): Promise<void> {
  if (force) return;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    // Missing (created later) or not a directory (ensureWritableDir reports that in one line).
    return;
  }
  const taken = files.filter((f) => entries.includes(f));
  if (taken.length > 0) {
    throw new UserError(
      `${dir} already holds ${taken.join(', ')}; choose another -o, or add --force to overwrite`,
    );
  }
}
