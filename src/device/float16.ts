/**
 * webgpu-utils 2.x names Float16Array when it loads (the View of its f16 types), and
 * Node 20 has none. The mirror's structs are all u32, so no f16 view is ever made: a
 * stand-in with the right element size lets the library load. Imported before it.
 */
if (!('Float16Array' in globalThis)) {
  Object.defineProperty(globalThis, 'Float16Array', { value: Uint16Array, configurable: true, writable: true });
}
export {};
