import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { differentiableOps } from '../src/autodiff/registry.js';
import { renderSupportedOps, SUPPORTED_OPS_PATH } from '../scripts/gen-supported-ops.js';

describe('docs/supported-ops.md', () => {
  it('matches the gradient and shape registries (regenerate: npx tsx scripts/gen-supported-ops.ts)', () => {
    assert.equal(readFileSync(SUPPORTED_OPS_PATH, 'utf8'), renderSupportedOps());
  });
  it('lists every op with a gradient rule as trainable', () => {
    const doc = readFileSync(SUPPORTED_OPS_PATH, 'utf8');
    for (const op of differentiableOps())
      assert.match(doc, new RegExp(`^\\| ${op} \\| yes \\|`, 'm'));
  });
});
