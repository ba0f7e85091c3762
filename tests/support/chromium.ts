/**
 * Debian Chromium's flags for WebGPU headless, as root, offline: one list for the browser test
 * project (vitest.config.ts) and the e2e site (tests/e2e/site.ts).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--enable-unsafe-webgpu', // the one WebGPU needs on Linux
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  // The sandbox's network is closed: stop Chromium trying Google's hosts at every start.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * Software compositing, as Chrome falls back to where it has no GPU to composite with. These
 * machines have none: without it every frame is composited through SwiftShader's GL, and the
 * GPU process's first swaps (1.0-1.5 s each here) hold back a fresh browser's first paint
 * (2.4-3.0 s for the built site at load 4, 1.6 s for a two-line page), while WebGPU still gets
 * SwiftShader's Vulkan adapter either way. tests/e2e/truth.test.ts prints first paint both ways.
 */
export const SOFTWARE_COMPOSITING = '--disable-gpu-compositing';
