/**
 * Static shape inference (one rule per op type, registered by the files of this folder by op
 * family) and the window arithmetic other stages share.
 */

import './elementwise.js';
import './conv.js';
import './linalg-norm.js';
import './layout.js';
import './reduce-index.js';
import './control-flow.js';

export {
  broadcastShapes,
  registerShapeRule,
  shapeRule,
  shapeRuleOps,
  type ShapeContext,
  type ShapeResult,
  type ShapeRule,
} from './registry.js';
export { inferShapes, staticShape, type InferOptions, type ShapeInfo } from './infer.js';
export { convOutSize, convParams, resolvePads } from './conv.js';
