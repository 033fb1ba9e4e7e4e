/**
 * A TF.js weights manifest is read by a schema (io/import/tfjs/model-json.ts): a valid one keeps
 * every weight's dtype and quantization, and each fault is one line naming the file, the group,
 * the weight and the field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseManifest } from '../src/io/import/tfjs/model-json.js';
import { QuadranetFileError } from '../src/io/errors.js';

const FILE = 'model.json';
type W = Record<string, unknown>;
const manifest = (weights: W[], paths: unknown = ['group1-shard1of1.bin']) => [{ paths, weights }];
const kernel: W = { name: 'dense/kernel', shape: [4, 2], dtype: 'float32' };

describe('TF.js weights manifest by schema', () => {
  it('reads dtypes (float32 by default) and both kinds of quantization', () => {
    const got = parseManifest(
      manifest([
        { name: 'a', shape: [2] },
        { name: 'b', shape: [], dtype: 'int32' },
        {
          name: 'c',
          shape: [3],
          dtype: 'float32',
          quantization: { dtype: 'uint8', scale: 0.5, min: -1 },
        },
        { name: 'd', shape: [1, 1], dtype: 'float32', quantization: { dtype: 'float16' } },
      ]),
      FILE,
    );
    assert.deepEqual(got, [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'a', shape: [2], dtype: 'float32' },
          { name: 'b', shape: [], dtype: 'int32' },
          {
            name: 'c',
            shape: [3],
            dtype: 'float32',
            quantization: { dtype: 'uint8', scale: 0.5, min: -1 },
          },
          { name: 'd', shape: [1, 1], dtype: 'float32', quantization: { dtype: 'float16' } },
        ],
      },
    ]);
    assert.deepEqual(parseManifest(undefined, FILE), []);
  });

  const faults: [string, unknown, RegExp][] = [
    [
      'not a list',
      { weights: [] },
      /^model\.json: weightsManifest must be a list of weight groups$/,
    ],
    [
      'a group without paths',
      [{ weights: [] }],
      /weightsManifest\[0\]\.paths must have 'paths' and 'weights' lists/,
    ],
    [
      'an empty path',
      manifest([kernel], ['']),
      /weightsManifest\[0\]\.paths\[0\] must be a file name/,
    ],
    [
      'a weight without name',
      manifest([{ shape: [1] }]),
      /weightsManifest\[0\]\.weights\[0\]\.name is missing/,
    ],
    [
      'a negative size',
      manifest([{ ...kernel, shape: [4, -2] }]),
      /weightsManifest\[0\]\.weights\[0\] \('dense\/kernel'\)\.shape\[1\] is not a size/,
    ],
    [
      'an unknown dtype',
      manifest([kernel, { ...kernel, name: 'x', dtype: 'complex64' }]),
      /weights\[1\] \('x'\)\.dtype "complex64" is not supported \(supported: float32, int32, bool\)/,
    ],
    [
      'an unknown quantization',
      manifest([{ ...kernel, quantization: { dtype: 'int4' } }]),
      /\('dense\/kernel'\)\.quantization\.dtype "int4" is not supported \(supported: uint8, uint16, float16\)/,
    ],
    [
      'uint8 without scale',
      manifest([{ ...kernel, quantization: { dtype: 'uint8', min: 0 } }]),
      /\('dense\/kernel'\)\.quantization uint8 needs numeric 'scale' and 'min'/,
    ],
    [
      'float16 of int32',
      manifest([{ ...kernel, dtype: 'int32', quantization: { dtype: 'float16' } }]),
      /\.quantization float16 needs dtype float32/,
    ],
    [
      'a quantized bool',
      manifest([{ ...kernel, dtype: 'bool', quantization: { dtype: 'uint8', scale: 1, min: 0 } }]),
      /\.quantization bool cannot be quantized/,
    ],
  ];
  for (const [what, raw, pattern] of faults) {
    it(`refuses ${what} in one line naming the file and field`, () => {
      assert.throws(
        () => parseManifest(raw, FILE),
        (e: unknown) => {
          assert.ok(e instanceof QuadranetFileError, String(e));
          assert.ok(!/[\r\n]/.test(e.message), 'one line');
          assert.ok(e.message.startsWith(`${FILE}: weightsManifest`), e.message);
          assert.match(e.message, pattern);
          return true;
        },
      );
    });
  }
});
