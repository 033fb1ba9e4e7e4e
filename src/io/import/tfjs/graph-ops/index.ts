/**
 * The TensorFlow op converters of the graph-model importer, keyed by TF op name: each turns one
 * GraphDef node into IR nodes with the arithmetic TF.js' graph executor uses (tfjs-converter's
 * op mappings: attribute names, defaults, fused ops). Convolutions and pools run channels-first;
 * TF filters are converted (Conv2D HWIO → OIHW, depthwise H×W×C×M → (C·M)×1×H×W with group C)
 * and SAME padding is resolved to explicit pads when sizes are known. One file per op family.
 */

import './conv-matmul.js';
import './elementwise.js';
import './pool-resize.js';
import './axes.js';
import './sizes.js';

export {
  registerTfOp,
  supportedTfOps,
  tfOpConverter,
  type OpCall,
  type OpConverter,
} from './registry.js';
