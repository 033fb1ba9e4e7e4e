/**
 * A file system (for the injectable `fs` of the atomic writers) that simulates a SIGKILL at its
 * k-th call: that call does part of its work, as a killed process would (a write puts down half
 * its bytes, a recursive delete removes one file of the tree), and it and every later call throw
 * `Killed`, so nothing the "dead" process would have done after that point reaches the disk.
 * Running an operation with k = 0, 1, 2, ... until it completes visits every kill point.
 */

import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { type AtomicFileHandle, type AtomicFs, nodeFs } from '../../src/io/atomic.js';

/** Thrown by every call from the simulated kill on. */
export class Killed extends Error {
  constructor(readonly at: string) {
    super(`killed at ${at}`);
  }
}

/** A killing file system and what it saw. */
export interface KillFs {
  fs: AtomicFs;
  /** Calls made so far (including the fatal one), e.g. `rename a -> b`. */
  calls: string[];
  /** The call the kill landed on, once it has. */
  killedAt(): string | undefined;
}

/** A file system that is killed at its `killAt`-th call (0-based); never when `killAt` is Infinity. */
export function killingFs(killAt: number): KillFs {
  const calls: string[] = [];
  let dead: string | undefined;
  /** Records a call; true when the kill lands on it (the caller then does its partial work). */
  const step = (what: string): boolean => {
    if (dead !== undefined) throw new Killed(dead);
    calls.push(what);
    if (calls.length - 1 === killAt) {
      dead = what;
      return true;
    }
    return false;
  };
  const die = (): never => {
    throw new Killed(dead!);
  };
  const fs: AtomicFs = {
    async open(path, flags) {
      if (step(`open ${path} ${flags}`)) die();
      const real = await nodeFs.open(path, flags);
      const handle: AtomicFileHandle = {
        async write(buffer, offset, length) {
          if (step(`write ${path}`)) {
            await real.write(buffer, offset, Math.floor(length / 2));
            await real.close();
            die();
          }
          return real.write(buffer, offset, length);
        },
        async sync() {
          if (step(`sync ${path}`)) {
            await real.close();
            die();
          }
          return real.sync();
        },
        async close() {
          // The kernel closes a killed process's files; closing is not a step of the writer.
          if (dead !== undefined) return;
          await real.close();
        },
      };
      return handle;
    },
    async rename(from, to) {
      if (step(`rename ${from} -> ${to}`)) die();
      return nodeFs.rename(from, to);
    },
    async rm(path, options) {
      if (step(`rm ${path}`)) {
        if (options.recursive) await removeOneFile(path);
        die();
      }
      return nodeFs.rm(path, options);
    },
    async mkdir(path, options) {
      if (step(`mkdir ${path}`)) die();
      return nodeFs.mkdir(path, options);
    },
    async readdir(path) {
      if (step(`readdir ${path}`)) die();
      return nodeFs.readdir(path);
    },
    async readFile(path, encoding) {
      if (step(`readFile ${path}`)) die();
      return nodeFs.readFile(path, encoding);
    },
  };
  return { fs, calls, killedAt: () => dead };
}

/** Deletes the first file (by name) found in the tree at `path`: a delete killed part way. */
async function removeOneFile(path: string): Promise<void> {
  const stat = await fsp.lstat(path).catch(() => undefined);
  if (!stat) return;
  if (!stat.isDirectory()) {
    await fsp.rm(path);
    return;
  }
  for (const name of (await fsp.readdir(path)).sort()) {
    const child = join(path, name);
    if ((await fsp.lstat(child)).isDirectory()) {
      await removeOneFile(child);
      return;
    }
    await fsp.rm(child);
    return;
  }
}

/**
 * Runs `op` with a file system killed at call 0, 1, 2, ... until it completes, calling `check`
 * after each kill (with the kill point). Returns the kill points visited, in order. `reset`
 * restores the starting state before each attempt.
 */
export async function atEveryKillPoint(
  reset: () => Promise<void>,
  op: (fs: AtomicFs) => Promise<unknown>,
  check: (killedAt: string) => Promise<void>,
): Promise<string[]> {
  const visited: string[] = [];
  for (let k = 0; ; k++) {
    await reset();
    const kfs = killingFs(k);
    try {
      await op(kfs.fs);
    } catch (err) {
      // Writers wrap errors (QuadranetFileError naming the path), so ask the fs whether it died.
      const at = kfs.killedAt();
      if (at === undefined) throw err;
      visited.push(at);
      await check(at);
      continue;
    }
    // Completed despite the kill (it landed on a call whose failure op tolerates): still a point.
    const at = kfs.killedAt();
    if (at !== undefined) {
      visited.push(at);
      await check(at);
      continue;
    }
    // Completed untouched: k is past op's last call, so every kill point has been visited.
    return visited;
  }
}
