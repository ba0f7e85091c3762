/**
 * A macrotask, never a microtask: a yield must let timers, I/O and GPU completions (mapAsync
 * callbacks) run, or a task spinning on yield would starve what it waits for. Node has
 * setImmediate; a browser gets a MessageChannel post (setTimeout(0) is clamped to 4 ms).
 * The one shim: the schedulers and the tests use it.
 */
export const macrotask: (cb: () => void) => void = (() => {
  if (typeof globalThis.setImmediate === 'function') return (cb: () => void) => { globalThis.setImmediate(cb); };
  if (typeof globalThis.MessageChannel === 'function') {
    const ch = new MessageChannel();
    const queue: (() => void)[] = [];
    ch.port1.onmessage = () => { queue.shift()?.(); };
    return (cb: () => void) => { queue.push(cb); ch.port2.postMessage(null); };
  }
  return (cb: () => void) => { setTimeout(cb, 0); };
})();
