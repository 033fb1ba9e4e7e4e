/**
 * The built-in quadratic-term variants, registered on import (each file registers one), and the
 * registry's API.
 */

import './product.js';
import './rbf.js';
import './linear.js';
import './square.js';

export * from './registry.js';
