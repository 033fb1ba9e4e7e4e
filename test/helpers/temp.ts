import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/**
 * `tempDir()` makes a fresh directory under the OS temp dir (named `quadranet-<prefix>-…`) and
 * removes every one it made when the test file's tests are done.
 */
export function tempDirs(prefix: string): () => Promise<string> {
  const made: string[] = [];
  after(async () => {
    await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), `quadranet-${prefix}-`));
    made.push(dir);
    return dir;
  };
}
