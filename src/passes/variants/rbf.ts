import { registerQuadVariant } from './registry.js';

// φ(a, b) = exp(−γ (a − b)²) with a learnable γ per branch channel (starting at 1).
registerQuadVariant({
  name: 'rbf',
  formula: 'exp(-γ(a-b)²)',
  usesB: true,
  channelParams: [{ role: 'quad_gamma', init: 1 }],
  // φ ∈ (0, 1] is never zero, so only a zero U lets the converted model start at the
  // pretrained function.
  refusedModes: {
    neuron: `'lowrank': in neuron mode there is no U factor to start exp(−γ(a−b)²) ≠ 0 at zero`,
  },
  emit: ({ b, param, channelShape }, x, y) => {
    const gamma = channelShape ? b.reshape(param('quad_gamma'), channelShape) : param('quad_gamma');
    const d = b.op('Sub', [x, y!], {}, { name: 'rbf_diff' });
    const sq = b.op('Mul', [d, d], {}, { name: 'rbf_sq' });
    const scaled = b.op('Mul', [sq, gamma], {}, { name: 'rbf_scale' });
    return b.op('Exp', [b.op('Neg', [scaled], {}, { name: 'rbf_neg' })], {}, { name: 'phi' });
  },
});
