/**
 * Training checkpoints. Layout of a checkpoint directory DIR:
 *
 *   DIR/ckpt-00000012/state.safetensors   parameters + optimizer state, keys as given
 *   DIR/ckpt-00000012/meta.json           step, epoch, RNG state, anything JSON
 *   DIR/latest.json                       {"checkpoint": "ckpt-00000012", "step": 12}
 *   DIR/best/                             optional tagged checkpoint, same two files
 *
 * Each checkpoint is written into a temp directory, fsynced, then renamed into place, and only
 * then is latest.json replaced atomically; so a crash at any point leaves the previous checkpoint
 * loadable. Old checkpoints are removed by renaming them aside first (`removeAtomic`), so a kill
 * never leaves a half-deleted `ckpt-*` under its real name. One writer per DIR is assumed: a save
 * or a resume (`recoverCheckpoints`) removes the leftovers of earlier, killed writers.
 */

import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { QuadranetFileError, errnoCode, fileErrorFrom } from '../errors.js';
import { readSafetensors, encodeFor, type SafeTensor } from './safetensors.js';
import {
  TEMP_PREFIX,
  TRASH_PREFIX,
  type AtomicFs,
  ensureWritableDir,
  fsyncDir,
  nodeFs,
  removeAtomic,
  tempPathFor,
  writeFileAtomic,
  writeFileDurable,
} from '../atomic.js';
import { z } from 'zod';
import { parseJsonFile } from './json-schema.js';

/** What a checkpoint holds: tensors by name, and JSON metadata that includes the step. */
export interface CheckpointData {
  /** Parameters and optimizer state, stored under exactly these names. */
  tensors: Record<string, SafeTensor>;
  /** Step (whole number >= 0), epoch, RNG state and anything else JSON can hold. */
  meta: CheckpointMeta;
}

const WHOLE = 'is not a whole number >= 0';

/** meta.json of a checkpoint: the step, and whatever else the trainer and the loop keep. */
const CheckpointMetaSchema = z.looseObject({
  step: z.number({ error: WHOLE }).int({ error: WHOLE }).min(0, { error: WHOLE }),
});

/** The checkpoint's meta.json, as its schema defines it. */
export type CheckpointMeta = z.infer<typeof CheckpointMetaSchema>;

/** latest.json: the name of the newest step directory (only a `ckpt-*` name is accepted). */
const LatestSchema = z.object({ checkpoint: z.string().regex(/^ckpt-\d{8,}$/) });

/** Options for `saveCheckpoint`. */
export interface SaveCheckpointOptions {
  /** How many step checkpoints to keep, newest first, counting the one just saved; default 2. */
  keep?: number;
  /**
   * Write the named checkpoint `DIR/best/` instead of a step checkpoint. It replaces the previous
   * `best` and leaves latest.json and the step checkpoints alone.
   */
  tag?: 'best';
  /** File-system implementation, for tests that simulate failures; the real one by default. */
  fs?: AtomicFs;
}

/** Options for `loadLatestCheckpoint`. */
export interface LoadLatestOptions {
  /** Told, in one line each, when latest.json or a checkpoint is unusable and an older one is tried. */
  onWarning?: (message: string) => void;
}

const STATE_FILE = 'state.safetensors';
const META_FILE = 'meta.json';
const LATEST_FILE = 'latest.json';
const STEP_DIR = /^ckpt-(\d{8,})$/;
/** Prefix of a directory moved aside while its replacement is renamed in (see `replaceDir`). */
const OLD_PREFIX = '.old-';

/** The directory name of the checkpoint for `step`, zero-padded so names sort by step. */
export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(8, '0')}`;
}

/**
 * Saves a checkpoint under `dir` (created if needed) and returns its path. A step checkpoint then
 * becomes latest.json's target and older step checkpoints beyond `keep` are removed.
 */
export async function saveCheckpoint(
  dir: string,
  data: CheckpointData,
  { keep = 2, tag, fs = nodeFs }: SaveCheckpointOptions = {},
): Promise<string> {
  const { step } = data.meta;
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new TypeError(`checkpoint meta.step must be a whole number >= 0, got ${String(step)}`);
  }
  if (!Number.isSafeInteger(keep) || keep < 1) {
    throw new TypeError(`checkpoint keep must be a whole number >= 1, got ${String(keep)}`);
  }
  const name = tag ?? checkpointName(step);
  const target = join(dir, name);
  // Encode before touching the disk, so bad input (wrong dtype, unserialisable meta) leaves no trace.
  const state = encodeFor(join(target, STATE_FILE), data.tensors);
  const meta = `${JSON.stringify(data.meta, null, 2)}\n`;

  await ensureWritableDir(dir, { fs });
  await cleanLeftovers(dir, fs);
  const tmp = tempPathFor(target);
  try {
    await fs.mkdir(tmp);
    await writeFileDurable(join(tmp, STATE_FILE), state, { fs });
    await writeFileDurable(join(tmp, META_FILE), meta, { fs });
    await fsyncDir(tmp, { fs });
    await replaceDir(tmp, target, fs);
    await fsyncDir(dir, { fs });
  } catch (err) {
    // Leave the old checkpoint as the only one; a failed cleanup must not mask the real error.
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw fileErrorFrom(err, target, 'write');
  }
  if (tag !== undefined) return target;

  await writeFileAtomic(join(dir, LATEST_FILE), `${JSON.stringify({ checkpoint: name, step })}\n`, {
    fs,
  });
  // The one just saved always survives, even if older runs left higher-numbered checkpoints.
  const others = stepDirs(await listDir(dir, fs)).filter((c) => c.name !== name);
  for (const old of others.slice(keep - 1)) await removeAtomic(join(dir, old.name), { fs });
  return target;
}

/**
 * Removes what a writer killed in `dir` left behind (temp and half-deleted directories) and puts
 * back a checkpoint moved aside for replacement whose replacement never arrived. A missing `dir`
 * is not an error. `saveCheckpoint` does this itself; a resume calls it before loading.
 */
export async function recoverCheckpoints(
  dir: string,
  { fs = nodeFs }: { fs?: AtomicFs } = {},
): Promise<void> {
  try {
    await fs.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw fileErrorFrom(err, dir, 'read');
  }
  await cleanLeftovers(dir, fs);
}

/**
 * Loads the checkpoint latest.json names. If latest.json or that checkpoint is unreadable, falls
 * back to the newest older checkpoint that loads, reporting each problem through `onWarning`.
 * Returns null when `dir` holds no checkpoint; throws when checkpoints exist but none loads, since
 * silently restarting from scratch would throw away a run's progress.
 */
export async function loadLatestCheckpoint(
  dir: string,
  { onWarning = () => undefined }: LoadLatestOptions = {},
): Promise<CheckpointData | null> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw fileErrorFrom(err, dir, 'read');
  }
  const all = stepDirs(entries);
  const latestPath = join(dir, LATEST_FILE);
  let candidates = all;
  try {
    const named = await readLatest(latestPath);
    // latest.json is the commit point: a higher-numbered directory without it was never committed.
    candidates = [named, ...all.filter((c) => c.step < named.step)];
  } catch (err) {
    if (all.length === 0) return null;
    onWarning(
      errnoCode(err) === 'ENOENT'
        ? `${latestPath} is missing; using the newest checkpoint found in ${dir}`
        : `${latestPath} is unusable (${(err as Error).message}); using the newest checkpoint found`,
    );
  }
  for (const [i, candidate] of candidates.entries()) {
    const path = join(dir, candidate.name);
    try {
      const loaded = await loadCheckpoint(path);
      if (loaded.meta.step !== candidate.step) {
        throw new QuadranetFileError(
          path,
          `${path} holds step ${loaded.meta.step}, not ${candidate.step}; it was moved or edited`,
        );
      }
      return loaded;
    } catch (err) {
      if (!(err instanceof QuadranetFileError)) throw err;
      const next = candidates[i + 1];
      onWarning(
        `checkpoint ${path} is unusable (${err.message}); ` +
          (next ? `falling back to ${next.name}` : 'no older checkpoint is left'),
      );
    }
  }
  throw new QuadranetFileError(
    dir,
    `no usable checkpoint in ${dir}: all ${candidates.length} are corrupt; ` +
      `restore a backup or delete the directory to start over`,
  );
}

/** Loads the checkpoint directory at `path` (a `ckpt-*` or `best` directory). */
export async function loadCheckpoint(path: string): Promise<CheckpointData> {
  const metaPath = join(path, META_FILE);
  let text: string;
  try {
    text = await readFile(metaPath, 'utf8');
  } catch (err) {
    throw errnoCode(err) === 'ENOENT'
      ? new QuadranetFileError(
          path,
          `${path} is not a complete checkpoint (no ${META_FILE}); check the path`,
          {
            cause: err,
          },
        )
      : fileErrorFrom(err, metaPath, 'read');
  }
  const meta = parseJsonFile(CheckpointMetaSchema, text, metaPath, 'the checkpoint is corrupt');
  const { tensors } = await readSafetensors(join(path, STATE_FILE));
  return { tensors, meta };
}

interface StepDir {
  name: string;
  step: number;
}

/** The `ckpt-*` entries among `entries`, newest step first. */
function stepDirs(entries: string[]): StepDir[] {
  const found: StepDir[] = [];
  for (const name of entries) {
    const m = STEP_DIR.exec(name);
    if (m) found.push({ name, step: Number(m[1]) });
  }
  return found.sort((a, b) => b.step - a.step);
}

/** Reads latest.json, accepting only a `ckpt-*` name so a hostile file cannot point elsewhere. */
async function readLatest(path: string): Promise<StepDir> {
  const parsed = LatestSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
  if (!parsed.success) throw new Error('it does not name a ckpt-* directory');
  const m = STEP_DIR.exec(parsed.data.checkpoint)!;
  return { name: m[0], step: Number(m[1]) };
}

async function listDir(dir: string, fs: AtomicFs): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    throw fileErrorFrom(err, dir, 'read');
  }
}

/**
 * Replaces directory `target` with `tmp`. rename() cannot replace a non-empty directory, so an
 * existing target is first moved aside to `.old-<name>-*`, then removed. A crash between the two
 * renames leaves that `.old-` directory, which `cleanLeftovers` moves back.
 */
async function replaceDir(tmp: string, target: string, fs: AtomicFs): Promise<void> {
  try {
    await fs.rename(tmp, target);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw err;
  }
  const aside = tempPathFor(target, OLD_PREFIX);
  await fs.rename(target, aside);
  try {
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rename(aside, target).catch(() => undefined);
    throw err;
  }
  // Renamed again before the delete, so a half-deleted tree is never mistaken for a whole one.
  await removeAtomic(aside, { fs });
}

/**
 * Removes what a killed writer left in `dir`: temp files and directories, half-deleted `.trash-`
 * directories, and directories moved aside for replacement; one moved aside whose replacement
 * never arrived is put back instead.
 */
async function cleanLeftovers(dir: string, fs: AtomicFs): Promise<void> {
  const entries = new Set(await listDir(dir, fs));
  for (const entry of [...entries]) {
    const path = join(dir, entry);
    if (entry.startsWith(TEMP_PREFIX) || entry.startsWith(TRASH_PREFIX)) {
      await fs.rm(path, { recursive: true, force: true }).catch((err: unknown) => {
        throw fileErrorFrom(err, path, 'remove');
      });
    } else if (entry.startsWith(OLD_PREFIX)) {
      // `.old-<name>-<pid>.<hex>`: the original name is everything up to the last dash.
      const original = entry.slice(OLD_PREFIX.length, entry.lastIndexOf('-'));
      try {
        if (original && !entries.has(original)) {
          await fs.rename(path, join(dir, original));
          entries.add(original);
        } else {
          await fs.rm(path, { recursive: true, force: true });
        }
      } catch (err) {
        throw fileErrorFrom(err, path, 'remove');
      }
    }
  }
}
