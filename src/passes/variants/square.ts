import { registerQuadVariant } from './registry.js';

// φ(a, b) = a ⊙ (a + b) = a⊙b + a⊙a: the product plus a squared term of A, so one factor also
// acts alone. Zero when A = 0 (neuron mode starts at the pretrained function), and ∂φ/∂a = b at
// A = 0, so that zero factor still gets a gradient at step 0.
registerQuadVariant({
  name: 'square',
  formula: 'a⊙(a+b)',
  usesB: true,
  emit: ({ b }, x, y) =>
    b.op('Mul', [x, b.op('Add', [x, y!], {}, { name: 'square_sum' })], {}, { name: 'phi' }),
});
