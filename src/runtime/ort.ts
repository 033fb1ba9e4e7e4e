/**
 * The ONNX Runtime module every quadranet session runs on, named in this one place.
 *
 * In Node this is `onnxruntime-node` (native CPU kernels). The browser bundle
 * (`scripts/build-browser.ts`) aliases `onnxruntime-node` to `onnxruntime-web`, whose API is the
 * same (both re-export `onnxruntime-common`), so the rest of the runtime is environment-agnostic.
 */
import * as ort from 'onnxruntime-node';

export { ort };

/**
 * Session options merged over quadranet's own when a session is created. Empty in Node; the
 * browser entry sets e.g. `executionProviders: ['webgpu', 'wasm']` here (`configureBackend`).
 */
export const backendSessionOptions: ort.InferenceSession.SessionOptions = {};

let pending: Promise<unknown> = Promise.resolve();

/**
 * Creates an onnxruntime session with `backendSessionOptions` applied. Options a backend does not
 * know (onnxruntime-web has no intra-op thread count) are ignored by it. Creations on WebGPU are
 * queued: onnxruntime-web's WebGPU execution provider refuses to create two sessions at once.
 */
export function createInferenceSession(
  bytes: Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  const opts = { ...options, ...backendSessionOptions };
  const webgpu = (opts.executionProviders ?? []).some(
    (ep) => (typeof ep === 'string' ? ep : ep.name) === 'webgpu',
  );
  if (!webgpu) return ort.InferenceSession.create(bytes, opts);
  const created = pending.then(() => ort.InferenceSession.create(bytes, opts));
  pending = created.catch(() => undefined);
  return created;
}
