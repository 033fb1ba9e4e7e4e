import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile, mkdir, truncate } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { QuadranetFileError } from '../src/io/errors.js';
import {
  type SafeTensor,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
} from '../src/io/formats/safetensors.js';
import {
  type AtomicFileHandle,
  type AtomicFs,
  COMMIT_FILE,
  ensureWritableDir,
  nodeFs,
  readCommittedFile,
  recoverDir,
  removeAtomic,
  writeFileAtomic,
  writeFilesAtomic,
} from '../src/io/atomic.js';
import {
  type CheckpointData,
  loadCheckpoint,
  loadLatestCheckpoint,
  saveCheckpoint,
} from '../src/io/formats/checkpoint.js';
import { expectAllClose } from './helpers/allclose.js';
import { atEveryKillPoint } from './helpers/kill-fs.js';
import { tempDirs } from './helpers/temp.js';

const tempDir = tempDirs('io');

/** Asserts a QuadranetFileError whose one-line message matches every pattern. */
function assertFileError(err: unknown, ...patterns: (RegExp | string)[]): true {
  assert.ok(err instanceof QuadranetFileError, `expected QuadranetFileError, got ${String(err)}`);
  assert.ok(!/[\r\n]/.test(err.message), `message is not one line: ${err.message}`);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(err.message.includes(p), `"${err.message}" lacks "${p}"`);
    else assert.match(err.message, p);
  }
  return true;
}

/** A file from a raw header string and data length, for hostile-input cases. */
function rawFile(header: string, dataBytes = 0, declaredLen?: bigint): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, declaredLen ?? BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

describe('safetensors', () => {
  const samples: Record<string, SafeTensor> = {
    f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3e-8, 1e30, 0, -0]) },
    f64: {
      dtype: 'F64',
      shape: [5],
      data: Float64Array.from([Math.PI, NaN, Infinity, -Infinity, 1e-300]),
    },
    f16: { dtype: 'F16', shape: [3], data: Uint16Array.from([0x3c00, 0xc000, 0x7e00]) },
    bf16: { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xbf80]) },
    i64: {
      dtype: 'I64',
      shape: [3],
      data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 42n]),
    },
    i32: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 0, 7]) },
    i8: { dtype: 'I8', shape: [3], data: Int8Array.from([-128, 127, 0]) },
    u8: { dtype: 'U8', shape: [1, 3], data: Uint8Array.from([0, 128, 255]) },
    bool: { dtype: 'BOOL', shape: [4], data: Uint8Array.from([1, 0, 0, 1]) },
    scalar: { dtype: 'F32', shape: [], data: Float32Array.from([7]) },
    empty: { dtype: 'F64', shape: [0, 4], data: new Float64Array(0) },
  };

  it('round-trips every dtype, scalars and empty tensors', () => {
    const bytes = encodeSafetensors(samples, { format: 'pt', note: 'ünïcode' });
    const { tensors, metadata } = decodeSafetensors(bytes);
    assert.deepEqual(metadata, { format: 'pt', note: 'ünïcode' });
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(samples).sort());
    for (const [name, want] of Object.entries(samples)) {
      const got = tensors[name]!;
      assert.equal(got.dtype, want.dtype, name);
      assert.deepEqual(got.shape, want.shape, name);
      assert.equal(got.data.constructor, want.data.constructor, name);
      if (want.dtype === 'F32' || want.dtype === 'F64') {
        expectAllClose(got.data as Float64Array, want.data as Float64Array, {
          rtol: 0,
          atol: 0,
          what: name,
        });
      } else {
        assert.deepEqual(got.data, want.data, name);
      }
    }
    // -0 must survive bit-exactly, which a tolerance check cannot see.
    assert.ok(Object.is(tensors.f32!.data[5], -0));
  });

  it('is byte-exact with a hand-built reference file', () => {
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"I8","shape":[3],"data_offsets":[0,3]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[3,11]}}';
    assert.equal(header.length, 138);
    const expected = Uint8Array.from([
      ...[144, 0, 0, 0, 0, 0, 0, 0], // 138 header bytes padded with 6 spaces to 144
      ...new TextEncoder().encode(header + '      '),
      ...[1, 2, 3], // a
      ...[0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0], // b = [1, -2.5] little-endian
    ]);
    const got = encodeSafetensors(
      {
        b: { dtype: 'F32', shape: [2], data: Float32Array.from([1, -2.5]) },
        a: { dtype: 'I8', shape: [3], data: Int8Array.from([1, 2, 3]) },
      },
      { format: 'pt' },
    );
    assert.deepEqual(got, expected);
    // b starts at byte 163 - 8 = odd offset: decoding must copy, not view.
    const back = decodeSafetensors(expected);
    assert.deepEqual(back.tensors.b!.data, Float32Array.from([1, -2.5]));
  });

  it('matches the reference implementation test vector and omits empty metadata', () => {
    const header = '{"test":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}';
    const expected = Uint8Array.from([
      ...[64, 0, 0, 0, 0, 0, 0, 0],
      ...new TextEncoder().encode(header + '    '),
      ...new Array<number>(16).fill(0),
    ]);
    const got = encodeSafetensors({
      test: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) },
    });
    assert.deepEqual(got, expected);
  });

  it('keeps integer-like names in sorted order and a __proto__ name as plain data', () => {
    const t = (v: number): SafeTensor => ({ dtype: 'U8', shape: [1], data: Uint8Array.from([v]) });
    const bytes = encodeSafetensors({ b: t(2), '10': t(10), '2': t(3) });
    const text = new TextDecoder().decode(bytes.subarray(8, bytes.length - 3));
    assert.ok(
      text.indexOf('"10"') < text.indexOf('"2"') && text.indexOf('"2"') < text.indexOf('"b"'),
    );
    const hostile = rawFile('{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1);
    const { tensors } = decodeSafetensors(hostile);
    assert.equal(Object.getPrototypeOf(tensors), Object.prototype);
    assert.deepEqual(Object.keys(tensors), ['__proto__']);
  });

  it('refuses to encode inconsistent tensors', () => {
    assert.throws(
      () => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }),
      (e) => assertFileError(e, '"w"', '3 elements'),
    );
    assert.throws(
      () => encodeSafetensors({ w: { dtype: 'F64', shape: [2], data: new Float32Array(2) } }),
      (e) => assertFileError(e, 'Float64Array'),
    );
    assert.throws(
      () =>
        encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }),
      (e) => assertFileError(e, 'reserved'),
    );
  });

  const entry = (name: string, body: string): string => `{${JSON.stringify(name)}:${body}}`;
  const hostile: [string, Uint8Array, (RegExp | string)[]][] = [
    ['too short', new Uint8Array(5), ['too short']],
    ['header longer than the file', rawFile('{}', 0, 1000n), ['runs past the end']],
    ['absurd header length', rawFile('{}', 0, 2n ** 40n), ['exceeds the 100000000-byte limit']],
    ['invalid JSON', rawFile('{"w": '), ['not valid JSON']],
    [
      'invalid UTF-8',
      (() => {
        const f = rawFile('{"x"}');
        f[10] = 0xff;
        return f;
      })(),
      ['UTF-8'],
    ],
    ['array header', rawFile('[]'), ['not a JSON object']],
    ['null header', rawFile('null'), ['not a JSON object']],
    ['entry not an object', rawFile(entry('w', '3')), ['"w"', 'not a JSON object']],
    ['metadata not strings', rawFile('{"__metadata__":{"k":1}}'), ['"k"', 'not a string']],
    [
      'unknown dtype',
      rawFile(entry('w', '{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}'), 1),
      ['"w"', 'unknown dtype "Q4"'],
    ],
    [
      'negative dim',
      rawFile(entry('w', '{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}'), 1),
      ['"w"', 'not a whole number'],
    ],
    [
      'fractional dim',
      rawFile(entry('w', '{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}'), 1),
      ['"w"', 'not a whole number'],
    ],
    [
      'unsafe dim',
      rawFile(entry('w', '{"dtype":"U8","shape":[1e300],"data_offsets":[0,1]}'), 1),
      ['"w"', 'not a whole number'],
    ],
    [
      'huge dims',
      rawFile(
        entry('w', '{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}'),
        4,
      ),
      ['"w"', 'needs more bytes than the 4-byte data buffer'],
    ],
    [
      'shape not an array',
      rawFile(entry('w', '{"dtype":"U8","shape":"1","data_offsets":[0,1]}'), 1),
      ['"w"', 'shape is not an array'],
    ],
    [
      'offsets past the end',
      rawFile(entry('w', '{"dtype":"U8","shape":[4],"data_offsets":[4,8]}'), 4),
      ['"w"', 'run past the end'],
    ],
    [
      'end before begin',
      rawFile(entry('w', '{"dtype":"U8","shape":[0],"data_offsets":[3,1]}'), 4),
      ['"w"', 'end before they begin'],
    ],
    [
      'offsets not a pair',
      rawFile(entry('w', '{"dtype":"U8","shape":[1],"data_offsets":[0]}'), 1),
      ['"w"', 'data_offsets'],
    ],
    [
      'negative offset',
      rawFile(entry('w', '{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}'), 1),
      ['"w"', 'data_offsets'],
    ],
    [
      'size mismatch',
      rawFile(entry('w', '{"dtype":"F32","shape":[2],"data_offsets":[0,4]}'), 4),
      ['"w"', 'needs 8 bytes', 'hold 4'],
    ],
    [
      'overlap',
      rawFile(
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},' +
          '"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}',
        4,
      ),
      ['"b"', 'overlap tensor "a"'],
    ],
    [
      'hole between tensors',
      rawFile(
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
          '"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}',
        3,
      ),
      ['"b"', 'bytes 1..2', 'belong to no tensor'],
    ],
    [
      'trailing bytes',
      rawFile(entry('w', '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}'), 3),
      ['bytes 1..3 at the end belong to no tensor'],
    ],
  ];
  for (const [what, bytes, patterns] of hostile) {
    it(`rejects a hostile file: ${what}`, () => {
      assert.throws(
        () => decodeSafetensors(bytes),
        (e) => assertFileError(e, '<buffer>', ...patterns),
      );
    });
  }

  it('enforces maxBytes in memory and before reading a file', async () => {
    const bytes = encodeSafetensors({
      w: { dtype: 'U8', shape: [100], data: new Uint8Array(100) },
    });
    assert.throws(
      () => decodeSafetensors(bytes, { maxBytes: 50, file: 'x.safetensors' }),
      (e) => assertFileError(e, 'x.safetensors', 'over the limit of 50'),
    );
    const path = join(await tempDir(), 'w.safetensors');
    await writeFile(path, bytes);
    await assert.rejects(readSafetensors(path, { maxBytes: 50 }), (e) =>
      assertFileError(e, path, 'over the limit of 50'),
    );
    assert.equal(
      (await readSafetensors(path, { maxBytes: bytes.length })).tensors.w!.data.length,
      100,
    );
  });

  it('writes and reads files, naming the path in errors', async () => {
    const dir = await tempDir();
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(path, { f32: samples.f32! }, { a: 'b' });
    const { tensors, metadata } = await readSafetensors(path);
    assert.deepEqual(tensors.f32!.data, samples.f32!.data);
    assert.deepEqual(metadata, { a: 'b' });
    assert.deepEqual(await readdir(dir), ['model.safetensors']);

    await truncate(path, 20);
    await assert.rejects(readSafetensors(path), (e) =>
      assertFileError(e, path, 'runs past the end'),
    );
    const missing = join(dir, 'missing.safetensors');
    await assert.rejects(readSafetensors(missing), (e) => assertFileError(e, missing, 'not found'));
  });
});

/** A file system whose writes fail with `code` after `allowBytes` bytes of a matching path. */
function failingFs(code: string, allowBytes: number, match = /\.tmp-/): AtomicFs {
  const fail = (): never => {
    throw Object.assign(new Error(`${code}: simulated`), { code });
  };
  return {
    ...nodeFs,
    async open(path, flags) {
      const real = await nodeFs.open(path, flags);
      if (!match.test(path) || flags === 'r') return real;
      let budget = allowBytes;
      const handle: AtomicFileHandle = {
        async write(buffer, offset, length) {
          if (budget <= 0) fail();
          const n = Math.min(length, budget);
          budget -= n;
          return real.write(buffer, offset, n);
        },
        sync: () => real.sync(),
        close: () => real.close(),
      };
      return handle;
    },
  };
}

describe('atomic writes', () => {
  it('replaces a file and leaves no temp file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'out.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, new TextEncoder().encode('two'));
    assert.equal(await readFile(path, 'utf8'), 'two');
    assert.deepEqual(await readdir(dir), ['out.json']);
  });

  it('keeps the old file intact and removes the temp file when the disk fills mid-write', async () => {
    const dir = await tempDir();
    const path = join(dir, 'weights.bin');
    await writeFileAtomic(path, 'old contents');
    const big = new Uint8Array(1 << 20).fill(7);
    await assert.rejects(writeFileAtomic(path, big, { fs: failingFs('ENOSPC', 4096) }), (e) =>
      assertFileError(e, `disk full while writing ${path}; free space and retry`),
    );
    assert.equal(await readFile(path, 'utf8'), 'old contents');
    assert.deepEqual(await readdir(dir), ['weights.bin']);
  });

  it('reports permission and read-only failures with the path and what to do', async () => {
    const dir = await tempDir();
    const path = join(dir, 'x');
    const denied = (code: string): AtomicFs => ({
      ...nodeFs,
      open: async () => {
        throw Object.assign(new Error(code), { code });
      },
    });
    await assert.rejects(writeFileAtomic(path, 'x', { fs: denied('EACCES') }), (e) =>
      assertFileError(
        e,
        `cannot write ${path}: permission denied; choose another output directory`,
      ),
    );
    await assert.rejects(writeFileAtomic(path, 'x', { fs: denied('EROFS') }), (e) =>
      assertFileError(e, path, 'read-only', 'choose another output directory'),
    );
    await assert.rejects(ensureWritableDir(dir, { fs: denied('EACCES') }), (e) =>
      assertFileError(e, dir, 'permission denied'),
    );
    assert.deepEqual(await readdir(dir), []);
  });

  it('removes the temp file when the rename fails', async () => {
    const dir = await tempDir();
    const target = join(dir, 'sub');
    await mkdir(join(target, 'child'), { recursive: true });
    await assert.rejects(writeFileAtomic(target, 'x'), (e) => assertFileError(e, target));
    assert.deepEqual(await readdir(dir), ['sub']);
  });

  it('ensureWritableDir creates nested directories and refuses a file', async () => {
    const dir = await tempDir();
    const nested = join(dir, 'a', 'b');
    await ensureWritableDir(nested);
    assert.deepEqual(await readdir(nested), []);
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    await assert.rejects(ensureWritableDir(join(file, 'sub')), (e) =>
      assertFileError(e, join(file, 'sub'), 'is a file'),
    );
    await assert.rejects(ensureWritableDir(file), (e) => assertFileError(e, file, 'is a file'));
  });
});

describe('multi-file writes and removals under a kill at every step', () => {
  /** The committed contents of `names` in `dir` as a reader sees them ('-' for none). */
  const committed = async (dir: string, names: string[]): Promise<string> =>
    (
      await Promise.all(
        names.map(
          async (n) => (await readCommittedFile(dir, n).catch(() => undefined))?.toString() ?? '-',
        ),
      )
    ).join(' ');
  /** The same, read under the real names only. */
  const onDisk = async (dir: string, names: string[]): Promise<string> =>
    (await Promise.all(names.map((n) => readFile(join(dir, n), 'utf8').catch(() => '-')))).join(
      ' ',
    );

  it('writeFilesAtomic: readers see the old set or the new set; recovery puts it under the real names', async () => {
    const dir = await tempDir();
    const names = ['a.json', 'b.bin', 'c.txt'];
    const OLD = 'old-a old-b -';
    const NEW = 'new-a new-b new-c';
    const states = new Set<string>();
    const points = await atEveryKillPoint(
      async () => {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir);
        await writeFile(join(dir, 'a.json'), 'old-a');
        await writeFile(join(dir, 'b.bin'), 'old-b');
        await writeFile(join(dir, 'mine.txt'), 'not ours');
      },
      (fs) =>
        writeFilesAtomic(
          dir,
          { 'a.json': 'new-a', 'b.bin': new TextEncoder().encode('new-b'), 'c.txt': 'new-c' },
          { fs },
        ),
      async (at) => {
        const seen = await committed(dir, names);
        assert.ok(seen === OLD || seen === NEW, `killed at ${at}: readers see ${seen}`);
        states.add(seen);
        await recoverDir(dir);
        assert.equal(await onDisk(dir, names), seen, `after recovery (killed at ${at})`);
        const left = (await readdir(dir)).filter((n) => n.startsWith('.'));
        assert.deepEqual(left, [], `no leftovers (killed at ${at})`);
        assert.equal(await readFile(join(dir, 'mine.txt'), 'utf8'), 'not ours');
      },
    );
    assert.deepEqual([...states].sort(), [NEW, OLD]);
    // Kills landed while staging, at the commit point, and between renames after it, where the
    // real names hold a mix and only the journal tells the committed set.
    assert.ok(points.some((p) => /^write .*\.staged-b\.bin/.test(p)));
    assert.ok(points.some((p) => p.startsWith('rename ') && p.endsWith(COMMIT_FILE)));
    assert.ok(points.some((p) => /^rename .*\.staged-b\.bin.* -> .*b\.bin$/.test(p)));
    assert.deepEqual(await readdir(dir).then((e) => e.sort()), [...names, 'mine.txt']);
  });

  it('removeAtomic: a kill leaves the whole tree or nothing under its name', async () => {
    const root = await tempDir();
    const dir = join(root, 'run');
    const whole = ['a/1.bin', 'a/2.bin', 'b.json'];
    const outcomes = new Set<string>();
    const points = await atEveryKillPoint(
      async () => {
        await rm(dir, { recursive: true, force: true });
        await mkdir(join(dir, 'a'), { recursive: true });
        for (const f of whole) await writeFile(join(dir, f), f);
      },
      (fs) => removeAtomic(dir, { fs }),
      async (at) => {
        const present = await readdir(dir).then(
          () => true,
          () => false,
        );
        if (present) {
          for (const f of whole) assert.equal(await readFile(join(dir, f), 'utf8'), f, at);
        }
        outcomes.add(present ? 'whole' : 'gone');
        await recoverDir(root);
        assert.deepEqual(await readdir(root), present ? ['run'] : [], `after recovery (${at})`);
      },
    );
    assert.deepEqual([...outcomes].sort(), ['gone', 'whole']);
    // Including a kill part way through deleting the tree, renamed aside by then.
    assert.ok(
      points.some((p) => /^rm .*\.trash-run-/.test(p)),
      points.join('\n'),
    );
    await removeAtomic(dir); // a missing path is not an error
  });

  it('recovery leaves files of other programs and temp files of live writers alone', async () => {
    const dir = await tempDir();
    const mine = `.tmp-out.json-${process.pid}.0123abcd`;
    // Above Linux's PID_MAX_LIMIT (2^22), so no process can have it: a dead writer.
    const dead = '.tmp-out.json-99999999.0123abcd';
    for (const f of [mine, dead, '.tmp-editor-swap', '.trash-notes', 'keep.txt'])
      await writeFile(join(dir, f), 'x');
    await mkdir(join(dir, '.trash-user-folder'));
    await mkdir(join(dir, '.trash-run-99999999.0123abcd', 'sub'), { recursive: true });
    await writeFile(join(dir, '.staged-a.json-99999999.0123abcd'), 'uncommitted');
    await recoverDir(dir);
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ['.tmp-editor-swap', '.trash-notes', '.trash-user-folder', mine, 'keep.txt'].sort(),
    );
  });

  it('a malformed or hostile journal commits nothing and is removed', async () => {
    const root = await tempDir();
    const dir = join(root, 'out');
    await mkdir(dir);
    await writeFile(join(root, 'outside'), 'x');
    await writeFile(join(dir, '.staged-a-1.0123abcd'), 'staged');
    for (const text of [
      '{"files":[["../outside","a"]]}',
      '{"files":[[".staged-a-1.0123abcd","../x"]]}',
      'nope',
    ]) {
      await writeFile(join(dir, COMMIT_FILE), text);
      assert.equal((await readCommittedFile(root, 'outside')).toString(), 'x');
      await recoverDir(dir);
      assert.deepEqual(await readdir(dir), []);
      assert.deepEqual((await readdir(root)).sort(), ['out', 'outside']);
      await writeFile(join(dir, '.staged-a-1.0123abcd'), 'staged');
    }
    await assert.rejects(writeFilesAtomic(dir, { '../x': 'y' }), TypeError);
  });
});

describe('checkpoints', () => {
  const ckpt = (step: number, value = step): CheckpointData => ({
    tensors: {
      'layer.weight': { dtype: 'F32', shape: [2, 2], data: Float32Array.from([value, 1, 2, 3]) },
      'optim.m/layer.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array(4).fill(0.5) },
      'optim.t': { dtype: 'I64', shape: [], data: BigInt64Array.from([BigInt(step)]) },
    },
    meta: { step, epoch: Math.floor(step / 10), rng: [1, 2, 3, 4294967295], lr: 1e-3 },
  });
  const visible = async (dir: string): Promise<string[]> => (await readdir(dir)).sort();

  it('saves and loads a checkpoint with its layout and latest.json', async () => {
    const dir = join(await tempDir(), 'run');
    const path = await saveCheckpoint(dir, ckpt(12));
    assert.equal(path, join(dir, 'ckpt-00000012'));
    assert.deepEqual(await visible(dir), ['ckpt-00000012', 'latest.json']);
    assert.deepEqual(await visible(path), ['meta.json', 'state.safetensors']);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'latest.json'), 'utf8')), {
      checkpoint: 'ckpt-00000012',
      step: 12,
    });
    const loaded = await loadLatestCheckpoint(dir);
    assert.deepEqual(loaded, ckpt(12));
    assert.deepEqual(await loadCheckpoint(path), ckpt(12));
  });

  it('returns null when there is no checkpoint', async () => {
    const dir = await tempDir();
    assert.equal(await loadLatestCheckpoint(join(dir, 'nope')), null);
    assert.equal(await loadLatestCheckpoint(dir), null);
  });

  it('keeps the last K checkpoints', async () => {
    const dir = await tempDir();
    for (const step of [1, 2, 3, 4]) await saveCheckpoint(dir, ckpt(step));
    assert.deepEqual(await visible(dir), ['ckpt-00000003', 'ckpt-00000004', 'latest.json']);
    for (const step of [5, 6, 7]) await saveCheckpoint(dir, ckpt(step), { keep: 3 });
    assert.deepEqual(await visible(dir), [
      'ckpt-00000005',
      'ckpt-00000006',
      'ckpt-00000007',
      'latest.json',
    ]);
    // Saving a lower step (a rewound run) must not prune the checkpoint just written.
    await saveCheckpoint(dir, ckpt(2), { keep: 1 });
    assert.deepEqual(await visible(dir), ['ckpt-00000002', 'latest.json']);
    assert.equal((await loadLatestCheckpoint(dir))!.meta.step, 2);
    // Re-saving an existing step replaces it.
    await saveCheckpoint(dir, ckpt(2, 99), { keep: 1 });
    assert.equal((await loadLatestCheckpoint(dir))!.tensors['layer.weight']!.data[0], 99);
    assert.deepEqual(await visible(dir), ['ckpt-00000002', 'latest.json']);
  });

  it('writes best separately and replaces it atomically', async () => {
    const dir = await tempDir();
    await saveCheckpoint(dir, ckpt(1));
    assert.equal(await saveCheckpoint(dir, ckpt(1), { tag: 'best' }), join(dir, 'best'));
    await saveCheckpoint(dir, ckpt(2));
    await saveCheckpoint(dir, ckpt(3));
    await saveCheckpoint(dir, ckpt(3), { tag: 'best' });
    assert.deepEqual(await visible(dir), ['best', 'ckpt-00000002', 'ckpt-00000003', 'latest.json']);
    assert.deepEqual(await loadCheckpoint(join(dir, 'best')), ckpt(3));
    assert.equal((await loadLatestCheckpoint(dir))!.meta.step, 3);
  });

  it('falls back to the previous valid checkpoint when the latest is corrupt', async () => {
    const dir = await tempDir();
    await saveCheckpoint(dir, ckpt(1));
    await saveCheckpoint(dir, ckpt(2));
    await truncate(join(dir, 'ckpt-00000002', 'state.safetensors'), 30);
    const warnings: string[] = [];
    const loaded = await loadLatestCheckpoint(dir, { onWarning: (m) => warnings.push(m) });
    assert.deepEqual(loaded, ckpt(1));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /ckpt-00000002 is unusable .*falling back to ckpt-00000001/);

    await writeFile(join(dir, 'ckpt-00000001', 'meta.json'), '{not json');
    await assert.rejects(loadLatestCheckpoint(dir), (e) =>
      assertFileError(e, dir, 'no usable checkpoint', 'all 2 are corrupt'),
    );
  });

  it('a checkpoint meta.json is read against its schema: each fault is one line naming the file and field', async () => {
    const dir = await tempDir();
    const path = await saveCheckpoint(dir, ckpt(3));
    const meta = join(path, 'meta.json');
    for (const [text, expected] of [
      ['{not json', /meta\.json: not valid JSON \(.*\); the checkpoint is corrupt$/],
      ['[1]', /meta\.json: not a JSON object; the checkpoint is corrupt$/],
      ['{"step": -1}', /meta\.json: "step" is not a whole number >= 0; the checkpoint is corrupt$/],
      ['{"step": 1.5}', /"step" is not a whole number >= 0/],
      ['{"epoch": 2}', /"step" is not a whole number >= 0/],
    ] as const) {
      await writeFile(meta, text);
      await assert.rejects(loadCheckpoint(path), (e) => {
        assert.ok(e instanceof QuadranetFileError, String(e));
        assert.match(e.message, expected);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    }
    await writeFile(meta, JSON.stringify({ step: 3, epoch: 1, extra: { a: [1] } }));
    assert.deepEqual((await loadCheckpoint(path)).meta, { step: 3, epoch: 1, extra: { a: [1] } });
  });

  it('survives a corrupt or hostile latest.json', async () => {
    const dir = await tempDir();
    await saveCheckpoint(dir, ckpt(1));
    await saveCheckpoint(dir, ckpt(2));
    for (const text of ['garbage', '{"checkpoint":"../../etc"}', 'null']) {
      await writeFile(join(dir, 'latest.json'), text);
      const warnings: string[] = [];
      const loaded = await loadLatestCheckpoint(dir, { onWarning: (m) => warnings.push(m) });
      assert.equal(loaded!.meta.step, 2);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /latest\.json is unusable/);
    }
    await rm(join(dir, 'latest.json'));
    const warnings: string[] = [];
    assert.equal(
      (await loadLatestCheckpoint(dir, { onWarning: (m) => warnings.push(m) }))!.meta.step,
      2,
    );
    assert.match(warnings[0]!, /latest\.json is missing/);
  });

  it('ignores stale temp dirs of a killed writer and cleans them up on the next save', async () => {
    const dir = await tempDir();
    await saveCheckpoint(dir, ckpt(1));
    await saveCheckpoint(dir, ckpt(1), { tag: 'best' });
    // What a writer killed at various points leaves behind.
    await mkdir(join(dir, '.tmp-ckpt-00000002-999.dead'));
    await writeFile(join(dir, '.tmp-ckpt-00000002-999.dead', 'state.safetensors'), 'partial');
    await writeFile(join(dir, '.tmp-latest.json-999.dead'), '{"checkp');
    // Killed between moving the old best aside and renaming the new one in.
    await fsp.rename(join(dir, 'best'), join(dir, '.old-best-999.dead'));
    assert.equal((await loadLatestCheckpoint(dir))!.meta.step, 1);

    await saveCheckpoint(dir, ckpt(2));
    assert.deepEqual(await visible(dir), ['best', 'ckpt-00000001', 'ckpt-00000002', 'latest.json']);
    assert.deepEqual(await loadCheckpoint(join(dir, 'best')), ckpt(1));
  });

  it('leaves the previous checkpoint intact when the disk fills during a save', async () => {
    const dir = await tempDir();
    await saveCheckpoint(dir, ckpt(1));
    await assert.rejects(saveCheckpoint(dir, ckpt(2), { fs: failingFs('ENOSPC', 100) }), (e) =>
      assertFileError(e, 'disk full while writing', 'ckpt-00000002'),
    );
    assert.deepEqual(await visible(dir), ['ckpt-00000001', 'latest.json']);
    assert.deepEqual(await loadLatestCheckpoint(dir), ckpt(1));
  });

  it('rejects invalid arguments before touching the disk', async () => {
    const dir = join(await tempDir(), 'never');
    await assert.rejects(saveCheckpoint(dir, { tensors: {}, meta: { step: -1 } }), TypeError);
    await assert.rejects(saveCheckpoint(dir, ckpt(1), { keep: 0 }), TypeError);
    await assert.rejects(
      saveCheckpoint(dir, { tensors: {}, meta: { step: 1, bad: 1n } }),
      TypeError,
    );
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  });
});
