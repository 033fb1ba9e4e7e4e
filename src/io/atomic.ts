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
  /** Reads a whole text file. */
  readFile(path: string, encoding: 'utf8'): Promise<string>;
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
  // Garbage from the start, so named as such: recovery removes one left by a kill.
  const probe = tempPathFor(join(dir, 'probe'), TRASH_PREFIX);
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

/**
 * Prefix of a file or directory renamed aside to be deleted. A recursive delete is not atomic: a
 * kill in the middle would leave a half-deleted tree under its real name, which listings and
 * loaders would take for a broken one. Renaming first makes the removal atomic; what a kill
 * leaves is a `.trash-` entry that nothing reads and `recoverDir` deletes.
 */
export const TRASH_PREFIX = '.trash-';

/** Prefix of the new files of a `writeFilesAtomic` before they are renamed into place. */
export const STAGED_PREFIX = '.staged-';

/**
 * The journal of a multi-file write: its atomic creation is the commit point. It lists
 * `[staged, name]` pairs; while it exists, `name`'s committed content is `staged` if that still
 * exists (not yet renamed), otherwise `name` itself.
 */
export const COMMIT_FILE = '.commit.json';

/**
 * Removes the file or directory tree at `path` atomically: renames it aside to a `.trash-` name
 * in the same directory, fsyncs that directory, then deletes the renamed tree. A missing `path`
 * is not an error. Errors name `path`.
 */
export async function removeAtomic(
  path: string,
  { fs = nodeFs }: AtomicOptions = {},
): Promise<void> {
  const aside = tempPathFor(path, TRASH_PREFIX);
  try {
    await fs.rename(path, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw fileErrorFrom(err, path, 'remove');
  }
  await fsyncDir(dirname(path), { fs });
  await fs.rm(aside, { recursive: true, force: true }).catch((err: unknown) => {
    throw fileErrorFrom(err, path, 'remove');
  });
}

/**
 * Writes several files into `dir` as one unit: after a kill at any point, every quadranet reader
 * (through `readCommittedFile`) sees either all the old files or all the new ones, and the next
 * `writeFilesAtomic` or `recoverDir` on `dir` finishes the job under the real names. The files are
 * staged and fsynced, the journal (COMMIT_FILE) is written atomically as the commit point, then
 * the staged files are renamed into place and the journal removed. One writer per directory is
 * assumed. On a failure before the commit point the staged files are removed and the old files
 * are untouched.
 */
export async function writeFilesAtomic(
  dir: string,
  files: Record<string, Uint8Array | string>,
  { fs = nodeFs }: AtomicOptions = {},
): Promise<void> {
  const names = Object.keys(files);
  for (const name of names) {
    if (!isPlainName(name) || name === COMMIT_FILE || name.startsWith(STAGED_PREFIX))
      throw new TypeError(`writeFilesAtomic: '${name}' is not a file name it may write`);
  }
  await recoverDir(dir, { fs });
  const stage = (name: string): string => basename(tempPathFor(join(dir, name), STAGED_PREFIX));
  const staged: [string, string][] = names.map((name) => [stage(name), name]);
  // The journal is staged like the files (not a writeFileAtomic `.tmp-`), so that recovery
  // removes it too when a kill lands before the commit.
  const journal: [string, string] = [stage(COMMIT_FILE), COMMIT_FILE];
  const contents = [...names.map((name) => files[name]!), `${JSON.stringify({ files: staged })}\n`];
  try {
    for (const [i, [tmp, name]] of [...staged, journal].entries()) {
      try {
        await writeAndSync(fs, join(dir, tmp), toBytes(contents[i]!), 'wx');
      } catch (err) {
        throw fileErrorFrom(err, join(dir, name), 'write');
      }
    }
    await fsyncDir(dir, { fs });
    try {
      // The commit point.
      await fs.rename(join(dir, journal[0]), join(dir, COMMIT_FILE));
    } catch (err) {
      throw fileErrorFrom(err, join(dir, COMMIT_FILE), 'write');
    }
  } catch (err) {
    for (const [tmp] of [...staged, journal])
      await fs.rm(join(dir, tmp), { force: true }).catch(() => undefined);
    throw err;
  }
  // Durable before any file is renamed over, or a power cut could keep renames without it.
  await fsyncDir(dir, { fs });
  await rollForward(dir, staged, fs);
}

/**
 * Finishes or discards what a killed writer left in `dir`: completes a committed multi-file write
 * (see `writeFilesAtomic`), deletes `.trash-` and uncommitted `.staged-` entries, and deletes the
 * `.tmp-` files of writers that are no longer running (a live process's pid keeps its temp file);
 * only entries named exactly as `tempPathFor` names them.
 * A missing `dir` is not an error.
 */
export async function recoverDir(dir: string, { fs = nodeFs }: AtomicOptions = {}): Promise<void> {
  const journal = await readJournal(dir, fs);
  if (journal) await rollForward(dir, journal, fs);
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw fileErrorFrom(err, dir, 'read');
  }
  for (const entry of entries) {
    // Only names exactly as tempPathFor makes them: this may run in a directory the user shares
    // with other programs (a report's folder), whose `.trash-…` files are not ours to delete.
    const m = OUR_TEMP_NAME.exec(entry);
    if (!m) continue;
    const stale =
      entry.startsWith(TRASH_PREFIX) ||
      entry.startsWith(STAGED_PREFIX) ||
      (entry.startsWith(TEMP_PREFIX) && writerIsGone(Number(m[1])));
    if (!stale) continue;
    const path = join(dir, entry);
    await fs.rm(path, { recursive: true, force: true }).catch((err: unknown) => {
      throw fileErrorFrom(err, path, 'remove');
    });
  }
}

/**
 * Reads the committed content of `dir/name`: normally that file, but while a killed multi-file
 * write is not yet finished, its staged file. Readers of files written together (adapter weights
 * and config) go through this so they never pair an old file with a new one. Errors are the raw
 * errors of reading `dir/name`.
 */
export async function readCommittedFile(dir: string, name: string): Promise<Buffer> {
  const real = join(dir, name);
  const journal = await readJournal(dir, nodeFs).catch(() => undefined);
  const staged = journal?.find(([, n]) => n === name)?.[0];
  if (staged !== undefined) {
    try {
      return await fsp.readFile(join(dir, staged));
    } catch (err) {
      // Renamed into place since the journal was read (or before): the real name holds it.
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  return fsp.readFile(real);
}

/** Renames each staged file of a committed write into place, then removes the journal. */
async function rollForward(dir: string, staged: [string, string][], fs: AtomicFs): Promise<void> {
  for (const [tmp, name] of staged) {
    try {
      await fs.rename(join(dir, tmp), join(dir, name));
    } catch (err) {
      // Already renamed by an earlier, interrupted roll-forward.
      if (errnoCode(err) !== 'ENOENT') throw fileErrorFrom(err, join(dir, name), 'write');
    }
  }
  await fsyncDir(dir, { fs });
  const journal = join(dir, COMMIT_FILE);
  await fs.rm(journal, { force: true }).catch((err: unknown) => {
    throw fileErrorFrom(err, journal, 'remove');
  });
}

/** The journal's pairs; undefined when there is none. A malformed journal is never committed. */
async function readJournal(dir: string, fs: AtomicFs): Promise<[string, string][] | undefined> {
  const path = join(dir, COMMIT_FILE);
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw fileErrorFrom(err, path, 'read');
  }
  let files: unknown;
  try {
    files = (JSON.parse(text) as { files?: unknown } | null)?.files;
  } catch {
    files = undefined;
  }
  const valid =
    Array.isArray(files) &&
    files.every(
      (p) =>
        Array.isArray(p) &&
        p.length === 2 &&
        typeof p[0] === 'string' &&
        p[0].startsWith(STAGED_PREFIX) &&
        isPlainName(p[0]) &&
        typeof p[1] === 'string' &&
        isPlainName(p[1]),
    );
  // Written atomically, so a malformed journal was never a commit; do not follow its names.
  return valid ? (files as [string, string][]) : [];
}

/** A single path component that cannot point outside its directory. */
function isPlainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\]/.test(name);
}

/** The `-<pid>.<8 hex digits>` ending of every name tempPathFor makes. */
const OUR_TEMP_NAME = /-(\d+)\.[0-9a-f]{8}$/;

/** Whether process `pid`, which created a temp entry, has exited. */
function writerIsGone(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return errnoCode(err) === 'ESRCH';
  }
}
