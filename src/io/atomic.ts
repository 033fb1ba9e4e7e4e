/**
 * Crash-safe file writes. A reader sees either the old file or the complete new one, never a
 * half-written file: data goes to a temp file in the same directory, is fsynced, renamed over the
 * target (atomic within one file system), and the directory is fsynced so the rename itself
 * survives a power cut.
 */

import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { QuadranetFileError, errnoCode, fileErrorFrom } from './errors.js';

/** The subset of an open file that the writers use; `fs/promises`' FileHandle satisfies it. */
export interface AtomicFileHandle {
  /** Writes `length` bytes of `buffer` from `offset` at the current position. */
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  /** Flushes the file's data and metadata to the device. */
  sync(): Promise<void>;
  /** Closes the handle. */
  close(): Promise<void>;
}

/**
 * The file-system calls the writers make. Injectable so tests can simulate failures (a disk that
 * fills up mid-write, a read-only mount) that cannot be produced reliably on a real machine.
 */
export interface AtomicFs {
  /** Opens a file (or, with flags `r`, a directory so it can be fsynced). */
  open(path: string, flags: string): Promise<AtomicFileHandle>;
  /** Renames, replacing a file (or an empty directory) at `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or directory tree. */
  rm(path: string, options: { recursive?: boolean; force?: boolean }): Promise<void>;
  /** Creates a directory. */
  mkdir(path: string, options?: { recursive?: boolean }): Promise<string | undefined>;
  /** Lists the entry names of a directory. */
  readdir(path: string): Promise<string[]>;
}

/** The real file system. */
export const nodeFs: AtomicFs = fsp;

/** Options shared by the writers. */
export interface AtomicOptions {
  /** File-system implementation; the real one by default. */
  fs?: AtomicFs;
}

/**
 * Every temp file or directory a writer creates starts with this, so a later run can recognise
 * and remove what a killed writer left behind.
 */
export const TEMP_PREFIX = '.tmp-';

/**
 * A fresh temp path next to `target` (same directory, hence same file system, so the final rename
 * is atomic), named `<prefix><name>-<pid>.<hex>`; the pid and random suffix keep concurrent
 * writers from colliding.
 */
export function tempPathFor(target: string, prefix = TEMP_PREFIX): string {
  const suffix = `${process.pid}.${randomBytes(4).toString('hex')}`;
  return join(dirname(target), `${prefix}${basename(target)}-${suffix}`);
}

/**
 * Writes `data` to `path` and fsyncs it, without the rename step: for files inside a temp
 * directory that is itself renamed into place afterwards. Errors name `path`.
 */
export async function writeFileDurable(
  path: string,
  data: Uint8Array | string,
  { fs = nodeFs }: AtomicOptions = {},
): Promise<void> {
  try {
    await writeAndSync(fs, path, toBytes(data), 'w');
  } catch (err) {
    throw fileErrorFrom(err, path, 'write');
  }
}

/**
 * Replaces `path` with `data` atomically: temp file in the same directory, fsync, rename over the
 * target, fsync the directory. On any failure the temp file is removed, the old file (if any) is
 * left untouched, and a QuadranetFileError naming `path` is thrown.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  { fs = nodeFs }: AtomicOptions = {},
): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeAndSync(fs, tmp, toBytes(data), 'wx');
    await fs.rename(tmp, path);
  } catch (err) {
    // The original failure is what the user must act on; a failed cleanup must not mask it.
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw fileErrorFrom(err, path, 'write');
  }
  await fsyncDir(dirname(path), { fs });
}

/**
 * Fsyncs a directory so renames and creations inside it are durable. Platforms that cannot open
 * or fsync a directory (Windows, some network file systems) report EISDIR/EPERM/EINVAL/...; there
 * the rename is as durable as the platform allows, so those codes are not errors.
 */
export async function fsyncDir(dir: string, { fs = nodeFs }: AtomicOptions = {}): Promise<void> {
  let handle: AtomicFileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code === undefined || !DIR_SYNC_UNSUPPORTED.has(code))
      throw fileErrorFrom(err, dir, 'write');
  } finally {
    await handle?.close();
  }
}

const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'EBADF', 'ENOTSUP', 'EACCES']);

/**
 * Creates `dir` (and its parents) if needed and proves it is writable by creating and removing a
 * probe file, which catches read-only mounts, ACLs and quotas that a permission-bit check misses.
 */
export async function ensureWritableDir(
  dir: string,
  { fs = nodeFs }: AtomicOptions = {},
): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new QuadranetFileError(
        dir,
        `cannot use ${dir} as an output directory: it (or a parent) is a file; choose another path`,
        { cause: err },
      );
    }
    throw fileErrorFrom(err, dir, 'write');
  }
  const probe = tempPathFor(join(dir, 'probe'));
  try {
    const handle = await fs.open(probe, 'wx');
    await handle.close();
    await fs.rm(probe, { force: true });
  } catch (err) {
    throw fileErrorFrom(err, dir, 'write');
  }
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

async function writeAndSync(
  fs: AtomicFs,
  path: string,
  bytes: Uint8Array,
  flags: 'w' | 'wx',
): Promise<void> {
  const handle = await fs.open(path, flags);
  try {
    // write() may accept fewer bytes than asked (large buffers, pipes), so loop until done.
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
      if (bytesWritten <= 0) throw new Error('the device accepted no bytes');
      offset += bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}
