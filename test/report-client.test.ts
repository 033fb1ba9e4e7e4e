/**
 * The report's browser code is a typed module (src/report/client/charts.ts) bundled into
 * src/report/html/client-bundle.ts; this fails when the committed bundle is stale.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { BUNDLE_FILE, reportClientModule } from '../scripts/build-report-client.js';

describe('report client bundle', () => {
  it('is the bundle of the current client source (else run npm run build:report-client)', async () => {
    assert.equal(
      await readFile(BUNDLE_FILE, 'utf8'),
      await reportClientModule(),
      'src/report/html/client-bundle.ts is stale: run npm run build:report-client',
    );
  });
});
