import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import {
  DataError,
  decodeImage,
  formatDataSpec,
  loadCsv,
  loadDataset,
  loadFolder,
  parseDataSpec,
  resizeBilinear,
  sampleIndices,
  splitByClass,
  type Dataset,
} from '../src/data/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'quadranet-folder-csv-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function rejectsData(p: Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DataError, `expected DataError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'message must be one line');
    for (const q of parts) assert.ok(err.message.includes(q), `"${err.message}" lacks "${q}"`);
    return true;
  });
}

const H = 4;
const W = 6;
const CLASSES = ['blue', 'green', 'red'];
// Per class: two PNGs (one with an upper-case extension) and two JPEGs.
const FILES = ['a.png', 'b.PNG', 'c.jpg', 'd.jpeg'];

/** The RGBA pixel (x, y) of file i of class k: a gradient for PNGs, a solid colour for JPEGs. */
function pixel(k: number, i: number, x: number, y: number): [number, number, number, number] {
  const b = 100 + 30 * k + 7 * i; // identifies (k, i) even after JPEG's small errors
  if (i < 2) return [40 * x + i, 50 * y + k, b, 60 + 10 * x]; // varying alpha, to be dropped
  return [200 - 60 * k, 30 + 60 * k, b, 255];
}

function rgba(k: number, i: number, h = H, w = W): Buffer {
  const data = Buffer.alloc(h * w * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) data.set(pixel(k, i, x, y), (y * w + x) * 4);
  }
  return data;
}

function png(data: Buffer, h = H, w = W): Buffer {
  const p = new PNG({ width: w, height: h });
  data.copy(p.data);
  return PNG.sync.write(p);
}

function jpg(data: Buffer, h = H, w = W): Buffer {
  return jpeg.encode({ width: w, height: h, data }, 95).data;
}

/** Writes `root/CLASS/FILE` for the given classes (in the given order) and files. */
function writeClasses(root: string, classes: string[], files = FILES): void {
  for (const cls of classes) {
    const k = CLASSES.indexOf(cls);
    mkdirSync(join(root, cls), { recursive: true });
    files.forEach((f, i) => {
      const bytes = /\.png$/i.test(f) ? png(rgba(k, i)) : jpg(rgba(k, i));
      writeFileSync(join(root, cls, f), bytes);
    });
  }
}

/** The (class, file) identity of example `n` of a 3-channel dataset, from its mean blue. */
function identity(ds: Dataset, n: number): string {
  const [c, h, w] = ds.shape;
  const plane = h * w;
  const off = (n * c + 2) * plane;
  let s = 0;
  for (let p = 0; p < plane; p++) s += ds.images[off + p]!;
  const k = ds.labels[n]!;
  return `${k}/${Math.round(((s / plane) * 255 - 100 - 30 * k) / 7)}`;
}

const imgs = join(tmp, 'imgs');
const numeric = join(tmp, 'num.csv');
const species = join(tmp, 'iris.csv');

before(() => {
  // Classes created out of order: the class order must come from sorting, not from readdir.
  writeClasses(imgs, ['red', 'blue', 'green']);
  writeFileSync(join(imgs, 'red', 'notes.txt'), 'not an image');
  writeFileSync(join(imgs, 'README.md'), 'top-level files are ignored');
  const rows = ['x1,x2,label'];
  for (let r = 0; r < 20; r++) rows.push(`${r},${(r * 7) % 5}.5,${r % 3}`);
  writeFileSync(numeric, rows.join('\n') + '\n');
  writeFileSync(
    species,
    '\uFEFFspecies, a ,b\r\n' +
      'virginica,1,2\r\nsetosa,3,4\r\n\r\nversicolor,5,6\r\nsetosa,-7e-1,8\r\n' +
      '"virginica",9,10\r\nversicolor,11,12\r\n',
  );
});

describe('image folders', () => {
  it('decodes PNGs exactly, JPEGs approximately, classes sorted', async () => {
    const ds = await loadFolder(imgs, { testFraction: 0 });
    assert.equal(ds.n, 12);
    assert.deepEqual(ds.shape, [3, H, W]);
    assert.deepEqual(ds.classNames, CLASSES);
    assert.equal(ds.numClasses, 3);
    assert.deepEqual(Array.from(ds.labels), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    assert.equal(ds.name, 'imgs');
    const size = 3 * H * W;
    for (let n = 0; n < ds.n; n++) {
      const k = ds.labels[n]!;
      const i = n % 4; // files sorted by name within a class: a, b, c, d
      for (let ch = 0; ch < 3; ch++) {
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            const got = ds.images[n * size + (ch * H + y) * W + x]!;
            const want = pixel(k, i, x, y)[ch]! / 255;
            if (i < 2) assert.equal(got, Math.fround(want), `png ${n} ${ch} ${y} ${x}`);
            else assert.ok(Math.abs(got - want) < 4 / 255, `jpeg ${n}: ${got} vs ${want}`);
          }
        }
      }
    }
  });

  it('converts to grayscale luminance', async () => {
    const ds = await loadFolder(imgs, { testFraction: 0, channels: 1 });
    assert.deepEqual(ds.shape, [1, H, W]);
    const [r, g, b] = pixel(1, 1, 3, 2);
    const want = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    assert.ok(Math.abs(ds.images[5 * H * W + 2 * W + 3]! - want) < 1e-6);
  });

  it('resizes with bilinear interpolation (half-pixel centres)', async () => {
    // Halving averages 2×2 blocks: red 40x + i over x = 2X, 2X+1 gives 80X + 20 + i.
    const ds = await loadFolder(imgs, { testFraction: 0, size: [2, 3] });
    assert.deepEqual(ds.shape, [3, 2, 3]);
    for (let X = 0; X < 3; X++) {
      assert.ok(Math.abs(ds.images[X]! - (80 * X + 20) / 255) < 1e-6);
      assert.ok(Math.abs(ds.images[18 + X]! - (80 * X + 21) / 255) < 1e-6); // file b
    }
    const up = resizeBilinear(Float32Array.from([0, 1]), 1, 2, 1, 4);
    assert.deepEqual(Array.from(up), [0, 0.25, 0.75, 1]);
    const same = Float32Array.from([1, 2, 3, 4, 5, 6]);
    assert.deepEqual(resizeBilinear(same, 2, 3, 2, 3), same);
    const big = await loadFolder(imgs, { testFraction: 0, size: [9, 13], limit: 2 });
    assert.deepEqual(big.shape, [3, 9, 13]);
    assert.equal(big.images.length, 2 * 3 * 9 * 13);
  });

  it('splits each class deterministically by seed into complementary parts', async () => {
    const all = await loadFolder(imgs, { testFraction: 0 });
    const ids = (ds: Dataset): string[] => Array.from({ length: ds.n }, (_, n) => identity(ds, n));
    assert.deepEqual(new Set(ids(all)).size, 12);
    const train = await loadFolder(imgs, { testFraction: 0.25, seed: 3 });
    const test = await loadFolder(imgs, { split: 'test', testFraction: 0.25, seed: 3 });
    assert.equal(train.n, 9);
    assert.deepEqual(Array.from(test.labels), [0, 1, 2]);
    assert.deepEqual([...ids(train), ...ids(test)].sort(), ids(all).sort());
    assert.deepEqual(await loadFolder(imgs, { testFraction: 0.25, seed: 3 }), train);
    const other = await Promise.all(
      [4, 5, 6, 7].map((seed) => loadFolder(imgs, { split: 'test', testFraction: 0.25, seed })),
    );
    assert.ok(
      other.some((ds) => ids(ds).join() !== ids(test).join()),
      'seed changes the split',
    );
    const defaults = await loadFolder(imgs, { split: 'test' }); // 0.2 of 4 rounds to 1 per class
    assert.equal(defaults.n, 3);
  });

  it('limits to a seeded sample and decodes only that sample', async () => {
    const a = await loadFolder(imgs, { testFraction: 0, limit: 5, seed: 1 });
    assert.equal(a.n, 5);
    assert.deepEqual(await loadFolder(imgs, { testFraction: 0, limit: 5, seed: 1 }), a);
    assert.deepEqual(Array.from(a.labels), [...a.labels].sort());
    assert.equal((await loadFolder(imgs, { testFraction: 0, limit: 100 })).n, 12);
    assert.equal((await loadFolder(imgs, { testFraction: 0, limit: 0, size: [2, 2] })).n, 0);

    // One broken file among four: a limit-1 load fails exactly when the sample picks it.
    const dir = join(tmp, 'lazy');
    writeClasses(dir, ['blue', 'green'], ['a.png', 'b.png']);
    writeFileSync(join(dir, 'green', 'b.png'), 'broken');
    const outcomes = new Set<boolean>();
    for (let seed = 0; seed < 8; seed++) {
      const picked = sampleIndices(Int32Array.from([0, 1, 2, 3]), 1, seed)[0];
      const p = loadFolder(dir, { testFraction: 0, limit: 1, seed });
      if (picked === 3) await rejectsData(p, join(dir, 'green', 'b.png'));
      else assert.equal((await p).n, 1);
      outcomes.add(picked === 3);
    }
    assert.equal(outcomes.size, 2, 'the seeds cover both outcomes');
  });

  it('uses train/ and test/ folders as the splits when both exist', async () => {
    const dir = join(tmp, 'two');
    writeClasses(join(dir, 'train'), ['blue', 'green', 'red'], ['a.png', 'b.png', 'c.jpg']);
    writeClasses(join(dir, 'test'), ['blue', 'red'], ['a.png']);
    writeFileSync(join(dir, 'test', 'red', 'x.jpeg'), 'not really a jpeg');
    const train = await loadFolder(dir, { testFraction: 0.5 }); // the fraction is unused
    assert.equal(train.n, 9);
    assert.deepEqual(train.classNames, CLASSES);
    await rejectsData(loadFolder(dir, { split: 'test' }), 'x.jpeg', 'not a PNG or JPEG');
    rmSync(join(dir, 'test', 'red', 'x.jpeg'));
    const test = await loadFolder(dir, { split: 'test', channels: 1 });
    assert.deepEqual(Array.from(test.labels), [0, 2]);
    assert.equal(test.numClasses, 3);
    assert.deepEqual(test.shape, [1, H, W]);
  });

  it('rejects bad folders with one line naming the directory or file', async () => {
    await rejectsData(loadFolder(join(tmp, 'nope')), join(tmp, 'nope'), 'no such directory');
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    await rejectsData(loadFolder(empty), empty, 'no class subfolders');
    const one = join(tmp, 'one');
    writeClasses(one, ['red'], ['a.png']);
    await rejectsData(loadFolder(one), one, 'only one class folder (red)', 'at least 2');
    const noImages = join(tmp, 'noimg');
    writeClasses(noImages, ['blue', 'red'], ['a.png']);
    mkdirSync(join(noImages, 'zebra'));
    writeFileSync(join(noImages, 'zebra', 'z.gif'), 'gif');
    await rejectsData(loadFolder(noImages), join(noImages, 'zebra'), 'no .png, .jpg or .jpeg');
    await rejectsData(loadFolder(join(imgs, 'README.md')), 'not a directory');

    const bad = join(tmp, 'bad');
    writeClasses(bad, ['blue', 'red'], ['a.png']);
    const truncated = png(rgba(0, 0)).subarray(0, 40);
    writeFileSync(join(bad, 'red', 'b.png'), truncated);
    await rejectsData(
      loadFolder(bad, { testFraction: 0 }),
      join(bad, 'red', 'b.png'),
      'cannot decode PNG',
    );
    writeFileSync(join(bad, 'red', 'b.png'), Buffer.from([0xff, 0xd8, 0xff, 0x67, 1, 2, 3]));
    await rejectsData(loadFolder(bad, { testFraction: 0 }), 'b.png', 'cannot decode JPEG');
    writeFileSync(join(bad, 'red', 'b.png'), 'hello');
    await rejectsData(loadFolder(bad, { testFraction: 0 }), 'b.png', 'not a PNG or JPEG');

    await rejectsData(loadFolder(imgs, { channels: 2 as 1 }), 'channels 2');
    await rejectsData(loadFolder(imgs, { size: [0, 3] }), 'size');
    await rejectsData(loadFolder(imgs, { limit: -1 }), 'limit');
    await rejectsData(loadFolder(imgs, { testFraction: 1.5 }), 'test fraction');
  });

  it('decodes by signature, whatever the extension', () => {
    const gray = Buffer.alloc(2 * 2 * 4, 77);
    const img = decodeImage(jpg(gray, 2, 2), 'x.png');
    assert.equal(img.width, 2);
    assert.ok(Math.abs(img.data[0]! - 77) <= 2);
  });
});

describe('csv datasets', () => {
  it('loads integer labels and numeric features as shape [1, 1, F]', async () => {
    const ds = await loadCsv(numeric, { testFraction: 0, standardize: false });
    assert.deepEqual(ds.shape, [1, 1, 2]);
    assert.equal(ds.n, 20);
    assert.equal(ds.numClasses, 3);
    assert.equal(ds.classNames, undefined);
    assert.equal(ds.name, 'num.csv');
    assert.deepEqual(Array.from(ds.labels.slice(0, 4)), [0, 1, 2, 0]);
    assert.deepEqual(Array.from(ds.images.slice(0, 6)), [0, 0.5, 1, 2.5, 2, 4.5]);
  });

  it('maps string labels to sorted class names', async () => {
    const ds = await loadCsv(species, { label: 'species', testFraction: 0, standardize: false });
    assert.deepEqual(ds.classNames, ['setosa', 'versicolor', 'virginica']);
    assert.deepEqual(Array.from(ds.labels), [2, 0, 1, 0, 2, 1]);
    assert.deepEqual(
      Array.from(ds.images),
      [1, 2, 3, 4, 5, 6, -0.7, 8, 9, 10, 11, 12].map(Math.fround),
    );
  });

  it('splits per class by seed and standardises both splits with train statistics', async () => {
    const rawTrain = await loadCsv(numeric, { standardize: false, seed: 2 });
    const rawTest = await loadCsv(numeric, { split: 'test', standardize: false, seed: 2 });
    assert.equal(rawTrain.n + rawTest.n, 20);
    assert.equal(rawTest.n, 3); // round(0.2 * 7) + round(0.2 * 7) + round(0.2 * 6)
    const keys = (ds: Dataset): number[] =>
      Array.from({ length: ds.n }, (_, i) => ds.images[2 * i]!);
    assert.deepEqual(
      [...keys(rawTrain), ...keys(rawTest)].sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i),
    );
    const train = await loadCsv(numeric, { seed: 2 });
    const test = await loadCsv(numeric, { split: 'test', seed: 2 });
    for (let j = 0; j < 2; j++) {
      const col = Array.from({ length: rawTrain.n }, (_, i) => rawTrain.images[2 * i + j]!);
      const mean = col.reduce((s, v) => s + v, 0) / col.length;
      const std = Math.sqrt(col.reduce((s, v) => s + (v - mean) ** 2, 0) / col.length);
      const z = Array.from({ length: train.n }, (_, i) => train.images[2 * i + j]!);
      assert.ok(Math.abs(z.reduce((s, v) => s + v, 0) / z.length) < 1e-5, 'train mean 0');
      assert.ok(Math.abs(Math.sqrt(z.reduce((s, v) => s + v * v, 0) / z.length) - 1) < 1e-5);
      for (let i = 0; i < test.n; i++) {
        const want = (rawTest.images[2 * i + j]! - mean) / std;
        assert.ok(Math.abs(test.images[2 * i + j]! - want) < 1e-5, 'test uses train stats');
      }
    }
    assert.deepEqual(await loadCsv(numeric, { split: 'test', seed: 2 }), test);
    const limited = await loadCsv(numeric, { seed: 2, limit: 5 });
    assert.equal(limited.n, 5);
    // Standardisation statistics come from the whole train split, whatever the limit.
    const values = new Set(train.images);
    assert.ok(limited.images.every((v) => values.has(v)));
  });

  it('rejects bad CSVs with one line naming the file, line and column', async () => {
    const write = (name: string, text: string): string => {
      const f = join(tmp, name);
      writeFileSync(f, text);
      return f;
    };
    const abc = write('data.csv', 'a,b,c\n1,2,3\n');
    await rejectsData(
      loadCsv(abc, { label: 'foo' }),
      `${abc}: no column 'foo' (columns: a, b, c); pass label=NAME`,
    );
    await rejectsData(loadCsv(abc), "no column 'label'");
    const text = write('text.csv', 'a,b,label\n1,2,0\n3,abc,1\n');
    await rejectsData(loadCsv(text), text, "line 3, column 'b'", "'abc' is not a number");
    const empty = write('empty-cell.csv', 'a,b,label\n1,2,0\n3,,1\n');
    await rejectsData(loadCsv(empty), "line 3, column 'b'", 'empty cell');
    const noLabel = write('no-label.csv', 'a,label\n1,0\n2,\n');
    await rejectsData(loadCsv(noLabel), "line 3, column 'label'", 'empty label');
    const neg = write('neg.csv', 'a,label\n1,0\n2,-1\n');
    await rejectsData(loadCsv(neg), 'label -1');
    const headerless = write('headerless.csv', '1,2,0\n3,4,1\n');
    await rejectsData(loadCsv(headerless), headerless, 'add a header row');
    const ragged = write('ragged.csv', 'a,label\n1,0\n2,1,5\n');
    await rejectsData(loadCsv(ragged), ragged, 'malformed CSV');
    await rejectsData(loadCsv(write('blank.csv', '\n\n')), 'empty file');
    await rejectsData(loadCsv(write('head.csv', 'a,label\n')), 'no data rows');
    await rejectsData(loadCsv(write('only.csv', 'label\n1\n')), 'add feature columns');
    await rejectsData(loadCsv(write('dup.csv', 'a,a,label\n1,2,0\n')), "'a' appears twice");
    await rejectsData(loadCsv(join(tmp, 'missing.csv')), 'missing.csv', 'no such file');
    await rejectsData(loadCsv(numeric, { testFraction: -0.1 }), 'test fraction');
  });
});

describe('folder and csv specs', () => {
  it('parses scheme options', () => {
    assert.deepEqual(parseDataSpec('csv:FILE:label=species'), {
      scheme: 'csv',
      text: 'csv:FILE:label=species',
      file: 'FILE',
      label: 'species',
    });
    assert.deepEqual(parseDataSpec('folder:DIR:size=28x28,channels=1'), {
      scheme: 'folder',
      text: 'folder:DIR:size=28x28,channels=1',
      dir: 'DIR',
      size: [28, 28],
      channels: 1,
    });
    const f = parseDataSpec('folder:C:\\img:size=32,test=0.1,shift=blur,seed=2');
    assert.deepEqual(f, {
      scheme: 'folder',
      text: 'folder:C:\\img:size=32,test=0.1,shift=blur,seed=2',
      dir: 'C:\\img',
      size: [32, 32],
      testFraction: 0.1,
      shift: { kind: 'blur', strength: 0.5, seed: 2 },
    });
    const c = parseDataSpec('csv:d.csv:standardize=false,test=0');
    assert.deepEqual(c, {
      scheme: 'csv',
      text: 'csv:d.csv:standardize=false,test=0',
      file: 'd.csv',
      standardize: false,
      testFraction: 0,
    });
    for (const text of [
      'folder:d:size=28x14,channels=3,test=0.3',
      'folder:d:channels=1,shift=noise,strength=0.2',
      'csv:f.csv:label=y,standardize=true,test=0.25,shift=invert,strength=1,seed=4',
    ]) {
      const spec = parseDataSpec(text);
      assert.equal(formatDataSpec(spec), text);
      assert.deepEqual({ ...parseDataSpec(formatDataSpec(spec)), text: '' }, { ...spec, text: '' });
    }
  });

  it('rejects bad scheme options', () => {
    const bad: [string, string][] = [
      ['folder:d:size=0x3', 'size "0x3"'],
      ['folder:d:size=big', 'HxW'],
      ['folder:d:channels=2', 'channels "2"'],
      ['folder:d:test=1.5', 'test "1.5"'],
      ['folder:d:test=', 'needs a value'],
      ['csv:f:standardize=yes', 'true or false'],
      ['folder:d:label=x', 'valid options: shift, strength, seed, size, channels, test'],
      ['csv:f:size=3', 'valid options: shift, strength, seed, label, standardize, test'],
      ['idx:d:label=x', 'valid options: shift, strength, seed'],
      ['csv:label=x', 'missing location'],
    ];
    for (const [text, part] of bad) {
      assert.throws(
        () => parseDataSpec(text),
        (err: unknown) => err instanceof DataError && err.message.includes(part),
        text,
      );
    }
  });

  it('loadDataset loads folders and csv files, resizing to the model input', async () => {
    const ds = await loadDataset(`folder:${imgs}:test=0.25`, { shape: [1, 2, 3] });
    assert.deepEqual(ds.shape, [1, 2, 3]);
    assert.equal(ds.n, 9);
    const own = await loadDataset(`folder:${imgs}:size=8x8,channels=3`, {
      split: 'test',
      shape: [1, 2, 3],
      limit: 2,
    });
    assert.deepEqual(own.shape, [3, 8, 8]);
    assert.equal(own.n, 2);
    const shifted = await loadDataset(`folder:${imgs}:shift=invert,strength=1`, { limit: 3 });
    const plain = await loadDataset(`folder:${imgs}`, { limit: 3 });
    assert.ok(Math.abs(shifted.images[0]! - (1 - plain.images[0]!)) < 1e-6);
    await rejectsData(loadDataset(`folder:${imgs}`, { shape: [4, 2, 2] }), '4 input channels');
    const iris = await loadDataset(`csv:${species}:label=species,test=0`);
    assert.deepEqual(iris.shape, [1, 1, 2]);
    assert.equal(iris.n, 6);
    await rejectsData(loadDataset(`csv:${species}`), "no column 'label'", 'species, a, b');
    await rejectsData(loadDataset('folder:/no/such/dir'), '/no/such/dir', 'no such directory');
  });

  it('splits labels per class and samples without replacement', () => {
    const labels = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    const { train, test } = splitByClass(labels, 0.5, 9);
    assert.equal(test.length, 5);
    assert.deepEqual(
      [...train, ...test].sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(Array.from(test).filter((i) => labels[i] === 0).length, 2);
    assert.deepEqual(splitByClass(labels, 0.5, 9), { train, test });
    const s = sampleIndices(train, 3, 1);
    assert.equal(new Set(s).size, 3);
    assert.deepEqual(
      Array.from(s),
      [...s].sort((a, b) => a - b),
    );
  });
});
