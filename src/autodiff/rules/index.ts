// Importing a rule file registers its gradient rules.
import './elementwise.js';
import './linalg.js';
import './reduce.js';
import './shape.js';
