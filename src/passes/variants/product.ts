import { registerQuadVariant } from './registry.js';

// φ(a, b) = a ⊙ b: QuadraNet's quadratic neuron. Zero at a zero factor, so neuron mode (A = 0)
// starts at the pretrained function too.
registerQuadVariant({
  name: 'product',
  formula: 'a⊙b',
  usesB: true,
  emit: ({ b }, x, y) => b.op('Mul', [x, y!], {}, { name: 'phi' }),
});
