import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** A tensor as stored in the PyTorch fixtures. */
export interface FixtureTensor {
  dims: number[];
  data: number[];
}

/** Loads `fixtures/torch/<name>.json` (produced by scripts/gen_fixtures.py). */
export function loadFixtures<T>(name: string): { torch: string; cases: T[] } {
  const path = fileURLToPath(new URL(`../../fixtures/torch/${name}.json`, import.meta.url));
  return JSON.parse(readFileSync(path, 'utf8')) as { torch: string; cases: T[] };
}
