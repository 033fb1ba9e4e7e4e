/**
 * Kill and resume: a training process (test/helpers/train-child.ts) is SIGKILLed at seeded random
 * points, some of them in the middle of writing a checkpoint, and restarted with --resume each
 * time; once it is also stopped with SIGINT. The run must end with bitwise the parameters (and
 * the same history) of an uninterrupted run, and every checkpoint on disk must load after every
 * kill.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { loadCheckpoint, loadLatestCheckpoint } from '../src/io/checkpoint.js';
import { Rng } from '../src/util/random.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./helpers/train-child.ts', import.meta.url));
/** 480 images in batches of 16: 30 steps per epoch, 3 epochs. */
const TOTAL_STEPS = 90;
/** Checkpoint every 3 steps: a kill can lose up to 3 steps of work, never a step of progress. */
const EVERY = '3';

interface Child {
  proc: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first line (including earlier ones) that satisfies `pred`. */
  waitFor(pred: (line: string) => boolean): Promise<string>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(runDir: string, resume: boolean, every = EVERY): Child {
  const args = ['--import', 'tsx', CHILD, '--run-dir', runDir, '--every', every];
  if (resume) args.push('--resume');
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<{ pred: (l: string) => boolean; resolve: (l: string) => void }>();
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters) {
      if (w.pred(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => proc.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
  return {
    proc,
    lines,
    exit,
    waitFor: (pred) => {
      const seen = lines.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.add({ pred, resolve });
        void exit.then(({ code, signal, stderr }) =>
          reject(new Error(`child exited (${code ?? signal}) before the line; stderr: ${stderr}`)),
        );
      });
    },
  };
}

/** The last `step N` a child reported. */
function lastStep(c: Child): number {
  const steps = c.lines.filter((l) => l.startsWith('step ')).map((l) => Number(l.slice(5)));
  return steps.length > 0 ? steps[steps.length - 1]! : 0;
}

/**
 * Loads every `ckpt-*` directory (each must be complete and valid) and the latest checkpoint;
 * returns how many loaded and the latest step (0 when none was written yet).
 */
async function verifyCheckpoints(runDir: string): Promise<{ loaded: number; latest: number }> {
  const dir = join(runDir, 'checkpoints');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) =>
    /^ckpt-\d+$/.test(n),
  );
  for (const name of names) {
    const ck = await loadCheckpoint(join(dir, name));
    assert.equal(ck.meta.step, Number(name.slice(5)), `${name} holds its own step`);
  }
  const warnings: string[] = [];
  const latest = await loadLatestCheckpoint(dir, { onWarning: (w) => warnings.push(w) });
  assert.deepEqual(warnings, [], 'latest.json names a complete checkpoint');
  return { loaded: names.length, latest: latest?.meta.step ?? 0 };
}

/** History records without the timing fields, which differ between processes. */
async function history(runDir: string): Promise<unknown[]> {
  const text = await readFile(join(runDir, 'history.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      delete r.wallSeconds;
      delete r.cpuSeconds;
      delete r.samplesPerSecond;
      return r;
    });
}

const roots: string[] = [];
after(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

describe('kill and resume', () => {
  let histories: { killed: unknown[]; reference: unknown[] } | undefined;

  it('SIGKILLed at random points and SIGINTed once, a resumed run ends bitwise equal to an uninterrupted one', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'quadranet-kill-'));
    roots.push(root);
    const refDir = join(root, 'reference');
    const runDir = join(root, 'killed');
    // The uninterrupted reference runs alongside the killed one.
    const reference = start(refDir, false);

    const rng = new Rng(20240611);
    const kills = 4;
    let reached = 0;
    let checkpointsLoaded = 0;
    let redone = 0;
    const log: string[] = [];
    for (let k = 0; k < kills; k++) {
      const c = start(runDir, k > 0);
      // A random step in the k-th of `kills` equal parts of steps 1..60 (past the restored one),
      // leaving the rest of the run for the SIGINT.
      const part = 60 / kills;
      const target = Math.max(reached + 2, Math.floor(k * part) + 1 + rng.int(Math.floor(part)));
      await c.waitFor((l) => l === `step ${target}`);
      // 0-40 ms later: in the next step, or while that step's checkpoint is being written.
      await sleep(rng.int(40));
      c.proc.kill('SIGKILL');
      const { signal } = await c.exit;
      assert.equal(signal, 'SIGKILL', 'killed before it could finish');
      const seen = lastStep(c);
      const { loaded, latest } = await verifyCheckpoints(runDir);
      assert.ok(
        latest <= seen && latest >= reached,
        `checkpoint step ${latest} after step ${seen}`,
      );
      checkpointsLoaded += loaded;
      redone += seen - latest;
      log.push(`SIGKILL at step ${seen} (target ${target}): resumes from ${latest}`);
      reached = latest;
    }

    // SIGINT: the run stops after the step in progress and saves a checkpoint there. This
    // process checkpoints only at epoch ends, so a checkpoint mid-epoch comes from the interrupt.
    const c = start(runDir, true, '1000');
    const target = Math.max(reached + 3, 63);
    await c.waitFor((l) => l === `step ${target}`);
    c.proc.kill('SIGINT');
    const end = await c.exit;
    assert.equal(end.code, 0, `exits cleanly after SIGINT; stderr: ${end.stderr}`);
    const stopped = c.lines.at(-1)!;
    assert.match(stopped, /^interrupted \d+$/);
    const at = Number(stopped.split(' ')[1]);
    assert.ok(at >= target && at < TOTAL_STEPS, `stopped at ${at}, after step ${target}`);
    assert.equal(lastStep(c), at, 'no step ran after the interrupted one');
    const { loaded, latest } = await verifyCheckpoints(runDir);
    assert.equal(latest, at, 'a checkpoint was saved at the interrupted step');
    checkpointsLoaded += loaded;
    log.push(`SIGINT after step ${target}: stopped and saved at ${at}`);

    const last = start(runDir, true);
    const done = await last.exit;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(last.lines.at(-1), `done ${TOTAL_STEPS}`);
    const ref = await reference.exit;
    assert.equal(ref.code, 0, ref.stderr);
    assert.equal(reference.lines.at(-1), `done ${TOTAL_STEPS}`);

    const a = await readFile(join(refDir, 'final.safetensors'));
    const b = await readFile(join(runDir, 'final.safetensors'));
    assert.ok(a.equals(b), 'final parameters are bitwise equal to the uninterrupted run');
    histories = { killed: await history(runDir), reference: await history(refDir) };
    const final = await verifyCheckpoints(runDir);
    assert.equal(final.latest, TOTAL_STEPS);
    t.diagnostic(log.join('; '));
    t.diagnostic(
      `${kills} SIGKILLs + 1 SIGINT, ${kills + 1} resumes, ${checkpointsLoaded + final.loaded} ` +
        `checkpoint loads all valid, ${redone} steps recomputed, parameters bitwise equal`,
    );
  });

  it('the resumed run also keeps every epoch record of history.jsonl, with whole-epoch metrics', () => {
    assert.ok(histories, 'the kill test ran');
    assert.deepEqual(histories.killed, histories.reference);
  });
});
