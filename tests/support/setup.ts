/**
 * Setup file of both vitest projects (node and browser): the custom matchers. Keep it
 * browser-safe: no node: imports, nothing that needs a GPU.
 */
import './errno.js';
