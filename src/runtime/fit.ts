import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import {
  loadLatestCheckpoint,
  recoverCheckpoints,
  saveCheckpoint,
} from '../io/formats/checkpoint.js';
import type { HistoryRecord } from '../io/formats/run-format.js';
import type { FitLoopOptions, FitResult, FitState, FitStore } from './fit-loop.js';
import { fitLoop } from './fit-loop.js';
import type { Trainer } from './trainer.js';

export type { FitProgress, FitResult } from './fit-loop.js';

/** How a training run proceeds; the Trainer holds the model, optimizer and groups. */
export interface FitOptions extends Omit<FitLoopOptions, 'orderSeed' | 'store' | 'cpuClock'> {
  /** Seed of the data order (epoch e shuffles with seed + e, so a resumed run sees the same batches). */
  seed: number;
  /** Run directory: history.jsonl and checkpoints/ are written here. */
  runDir?: string;
  /** Continue from the run directory's latest checkpoint. */
  resume?: boolean;
}

function cpuSecondsNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * The run directory as a fit store: history.jsonl rewritten atomically at every record, and
 * checkpoints/ (the latest, the best, pruned; see src/io/formats/checkpoint.ts).
 */
export async function runDirStore(runDir: string, resume: boolean): Promise<FitStore> {
  const ckptDir = join(runDir, 'checkpoints');
  await ensureWritableDir(runDir);
  return {
    async resume(trainer) {
      if (!resume) return undefined;
      // A run killed while saving or pruning leaves temp and half-deleted directories; clear them.
      await recoverCheckpoints(ckptDir);
      const ck = await loadLatestCheckpoint(ckptDir);
      if (!ck) return undefined;
      trainer.restore(ck);
      return ck.meta['progress'] as unknown as FitState;
    },
    async checkpoint(trainer, state, best) {
      await saveCheckpoint(
        ckptDir,
        trainer.snapshot({ progress: state }),
        best ? { tag: 'best' } : {},
      );
    },
    async writeHistory(history) {
      await writeFileAtomic(
        join(runDir, 'history.jsonl'),
        history.map((r) => JSON.stringify(r)).join('\n') + (history.length ? '\n' : ''),
      );
    },
  };
}

/**
 * Trains for `epochs` with validation (per epoch by default), history and checkpoints in the
 * run directory, on the one training loop (runtime/fit-loop.ts) with Node's CPU clock.
 */
export async function fit(trainer: Trainer, opts: FitOptions): Promise<FitResult> {
  const { seed, runDir, resume, ...loop } = opts;
  return fitLoop(trainer, {
    ...loop,
    orderSeed: (epoch) => seed + epoch,
    store: runDir ? await runDirStore(runDir, resume ?? false) : undefined,
    cpuClock: cpuSecondsNow,
  });
}

/** Reads a run's history.jsonl (empty when absent). */
export async function readHistory(runDir: string): Promise<HistoryRecord[]> {
  try {
    const text = await readFile(join(runDir, 'history.jsonl'), 'utf8');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as HistoryRecord);
  } catch {
    return [];
  }
}
