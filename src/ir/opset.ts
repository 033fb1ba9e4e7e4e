// The opset upgrade is a pass with a registry of per-op rules (src/passes/upgrade-opset.ts);
// kept importable from here for the decoder and older imports.
export { upgradeOpset } from '../passes/upgrade-opset.js';
