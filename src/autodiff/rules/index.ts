// Importing a rule file registers its gradient rules.
import './elementwise.js';
import './linalg.js';
import './reduce.js';
import './shape.js';
import './activation.js';
import './pointwise.js';
import './indexing.js';
import './norm.js';
import './conv.js';
import './pool.js';
import './spatial.js';
import './einsum.js';
