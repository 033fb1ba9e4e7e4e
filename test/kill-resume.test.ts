/**
 * Kill and resume: a training process (test/helpers/train-child.ts) is SIGKILLed at seeded random
 * points, some of them in the middle of writing a checkpoint, and restarted with --resume each
 * time; once it is also stopped with SIGINT. The run must end with bitwise the parameters (and
 * the same history) of an uninterrupted run, and every checkpoint on disk must load after every
 * kill. No assertion depends on the relative speed of the two processes: the child holds still
 * a few steps after each kill target and interrupts itself at the SIGINT target.
 *
 * Random kill times can miss a short window, so a second part kills a checkpoint save
 * deterministically at every one of its file-system calls (test/helpers/kill-fs.ts), pruning
 * included.
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
import {
  type CheckpointData,
  loadCheckpoint,
  loadLatestCheckpoint,
  recoverCheckpoints,
  saveCheckpoint,
} from '../src/io/formats/checkpoint.js';
import { Rng } from '../src/util/random.js';
import { atEveryKillPoint } from './helpers/kill-fs.js';

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

/** Every child started, so a failed test leaves none running (a held child never exits alone). */
const children: ChildProcess[] = [];

function start(runDir: string, resume: boolean, every = EVERY, extra: string[] = []): Child {
  const args = ['--import', 'tsx', CHILD, '--run-dir', runDir, '--every', every, ...extra];
  if (resume) args.push('--resume');
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
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
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
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
      // A random step in the k-th of `kills` equal parts of steps 1..60 (past the restored one),
      // leaving the rest of the run for the SIGINT.
      const part = 60 / kills;
      const target = Math.max(reached + 2, Math.floor(k * part) + 1 + rng.int(Math.floor(part)));
      // The child stops for good 3 steps after the target, so the kill lands in steps
      // target..target+3, which include one checkpoint save, however slow this process is.
      const c = start(runDir, k > 0, EVERY, ['--hold-at', String(target + 3)]);
      await c.waitFor((l) => l === `step ${target}`);
      // 0-40 ms later: in the next steps, while a checkpoint is being written, or held. Where it
      // lands varies with the machine's load; the assertions below hold wherever it does.
      await sleep(rng.int(40));
      c.proc.kill('SIGKILL');
      const { signal } = await c.exit;
      assert.equal(signal, 'SIGKILL', 'killed before it could finish');
      const seen = lastStep(c);
      assert.ok(seen >= target && seen <= target + 3, `killed at step ${seen}`);
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
    // The child sends the SIGINT to itself after the target step (the same handler as Ctrl-C):
    // sent from here, it could arrive after the child had already finished on a loaded machine.
    const target = Math.max(reached + 3, 63);
    const c = start(runDir, true, '1000', ['--sigint-at', String(target)]);
    const end = await c.exit;
    assert.equal(end.code, 0, `exits cleanly after SIGINT; stderr: ${end.stderr}`);
    const stopped = c.lines.at(-1)!;
    assert.match(stopped, /^interrupted \d+$/);
    const at = Number(stopped.split(' ')[1]);
    // The handler runs on the next event-loop turn, which comes within the next step.
    assert.ok(at === target || at === target + 1, `stopped at ${at}, after step ${target}`);
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

describe('a kill at every step of a checkpoint save', () => {
  const ckpt = (step: number, value = step): CheckpointData => ({
    tensors: { w: { dtype: 'F32', shape: [3], data: Float32Array.from([value, 1, 2]) } },
    meta: { step },
  });
  /** Every entry of `dir` that is not a leftover (leftovers start with a dot). */
  const real = async (dir: string): Promise<string[]> =>
    (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  /** The steps of the `ckpt-*` directories, each of which must load and hold its own step. */
  async function completeSteps(dir: string): Promise<number[]> {
    const steps: number[] = [];
    for (const name of await real(dir)) {
      if (!/^ckpt-\d+$/.test(name)) continue;
      const ck = await loadCheckpoint(join(dir, name));
      assert.equal(ck.meta.step, Number(name.slice(5)), `${name} holds its own step`);
      steps.push(ck.meta.step);
    }
    return steps;
  }

  it('leaves only complete checkpoints, the old or the new latest, and the next resume cleans up', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quadranet-killfs-'));
    roots.push(dir);
    const outcomes = new Set<string>();
    // Steps 1 and 2 on disk (keep 2); saving 3 writes it, commits latest.json, prunes 1.
    const points = await atEveryKillPoint(
      async () => {
        await rm(dir, { recursive: true, force: true });
        await saveCheckpoint(dir, ckpt(1));
        await saveCheckpoint(dir, ckpt(2));
      },
      (fs) => saveCheckpoint(dir, ckpt(3), { fs }),
      async (at) => {
        const steps = await completeSteps(dir);
        const warnings: string[] = [];
        const latest = await loadLatestCheckpoint(dir, { onWarning: (w) => warnings.push(w) });
        assert.deepEqual(warnings, [], `latest.json names a complete checkpoint (killed at ${at})`);
        const step = latest!.meta.step;
        assert.ok(step === 2 || step === 3, `latest is the old or the new one, got ${step}`);
        // Before the commit the old pair (and perhaps a complete 3 that latest.json does not name
        // yet); after it the new one, with 1 perhaps not yet pruned.
        assert.ok(steps.includes(step) && steps.includes(2), `kept ${steps.join(',')}`);
        outcomes.add(`${step}:${steps.join(',')}`);

        // The resume: leftovers go, and the next save prunes down to `keep` again.
        await recoverCheckpoints(dir);
        assert.deepEqual(await readdir(dir), await real(dir), `no leftovers (killed at ${at})`);
        await saveCheckpoint(dir, ckpt(4));
        const newest = Math.max(...steps);
        assert.deepEqual(await real(dir), [
          `ckpt-0000000${newest}`,
          'ckpt-00000004',
          'latest.json',
        ]);
        assert.equal((await loadLatestCheckpoint(dir))!.meta.step, 4);
      },
    );
    // The kills covered writing the new checkpoint, committing it, and pruning the oldest one,
    // including a kill part way through deleting it (the case that left a broken ckpt-*).
    assert.ok(points.some((p) => p.startsWith('write ') && p.includes('.tmp-ckpt-00000003')));
    assert.ok(points.some((p) => p.startsWith('rename ') && p.includes('latest.json')));
    assert.ok(points.some((p) => /^rename .*ckpt-00000001 -> .*\.trash-ckpt-00000001/.test(p)));
    assert.ok(
      points.some((p) => /^rm .*\.trash-ckpt-00000001/.test(p)),
      points.join('\n'),
    );
    assert.deepEqual([...outcomes].sort(), ['2:1,2', '2:1,2,3', '3:1,2,3', '3:2,3']);
  });

  it('leaves the old or the new best checkpoint when a kill interrupts replacing it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quadranet-killfs-'));
    roots.push(dir);
    const seen = new Set<number>();
    const points = await atEveryKillPoint(
      async () => {
        await rm(dir, { recursive: true, force: true });
        await saveCheckpoint(dir, ckpt(1));
        await saveCheckpoint(dir, ckpt(1, 10), { tag: 'best' });
      },
      (fs) => saveCheckpoint(dir, ckpt(1, 20), { tag: 'best', fs }),
      async (at) => {
        // A kill between moving the old best aside and renaming the new one in leaves no best
        // under its name; the resume puts the old one back.
        await recoverCheckpoints(dir);
        assert.deepEqual(await readdir(dir), await real(dir), `no leftovers (killed at ${at})`);
        const value = (await loadCheckpoint(join(dir, 'best'))).tensors['w']!.data[0] as number;
        assert.ok(value === 10 || value === 20, `best is the old or the new one, got ${value}`);
        seen.add(value);
        assert.deepEqual(await completeSteps(dir), [1]);
      },
    );
    assert.ok(
      points.some((p) => /^rm .*\.trash-\.old-best/.test(p)),
      points.join('\n'),
    );
    assert.deepEqual([...seen].sort(), [10, 20]);
  });
});
