/**
 * A value of the wrong type on purpose, for bad-input tests: what a caller from plain
 * JavaScript (or a buggy module) could pass where the types say otherwise.
 */
export function forge<T>(v: unknown): T {
  return v as T;
}
