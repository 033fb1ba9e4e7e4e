/**
 * The layer converters, keyed by Keras class name: each turns one call of a Keras layer into IR
 * nodes with the same arithmetic as TF.js. Convolutions and pools run channels-first (ONNX); the
 * Keras kernels are converted (Conv2D HWIO → OIHW, depthwise H×W×C×M → (C·M)×1×H×W with group C),
 * and TF's SAME padding is resolved to explicit (possibly asymmetric) pads when sizes are known.
 * One file per layer family registers its converters.
 */

import './conv.js';
import './dense-norm.js';
import './activation.js';
import './pool.js';
import './shape.js';

export {
  isModelClass,
  layerConverter,
  registerLayer,
  supportedLayers,
  type LayerCall,
  type LayerConverter,
} from './registry.js';
