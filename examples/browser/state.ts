/**
 * What the example page publishes as `window.quadranetDemo` (read by test/browser.test.ts).
 * No DOM types here, so Node code can import it.
 */

/** What the page reports after an adaptation. */
export interface DemoResult {
  model: string;
  device: 'wasm' | 'webgpu';
  threads: number;
  images: { adapt: number; heldOut: number };
  /** The quadratized model before training against the original (DESIGN.md §3: ≤ 1e-6). */
  identity: { maxAbsDiff: number; relative: number; ok: boolean };
  /** Accuracy on the adaptation images and on the held-out ones (null when none is held out). */
  before: { adaptAccuracy: number; heldOutAccuracy: number | null };
  after: { adaptAccuracy: number; heldOutAccuracy: number | null };
  /** Mean training loss of each epoch. */
  epochLosses: number[];
  steps: number;
  /** Mean wall time of a training step. */
  stepMs: number;
  /** Wall time of the adaptation (quadratize, identity check, training). */
  trainSeconds: number;
  trainableParams: number;
  /** p50 inference latency of both models, per batch size. */
  latency: { batch: number; originalP50Ms: number; adaptedP50Ms: number }[];
}

/** The page's state. */
export interface DemoState {
  state: 'loading' | 'ready' | 'adapting' | 'done' | 'error';
  model?: { name: string; shape: [number, number, number]; classes: number; params: number };
  /** Images collected so far (all classes). */
  images: number;
  result?: DemoResult;
  error?: string;
}
