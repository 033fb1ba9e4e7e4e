import { registerQuadVariant } from './registry.js';

// No B and no φ: Q(x) = U(A(x)), the first-order (LoRA-style) low-rank control the quadratic
// adapter is compared against, with the same targets, geometry, names and init.
registerQuadVariant({
  name: 'linear',
  formula: 'a (no B: the first-order control)',
  usesB: false,
  control: true,
  refusedModes: {
    neuron: `'lowrank': the linear baseline is Q(x) = U(A(x)) of rank r (in neuron mode it would be a second copy of the layer)`,
  },
  emit: (_ctx, x) => x,
});
