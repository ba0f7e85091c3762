/**
 * Two projects:
 *  - node:    every test, on Dawn (webgpu npm package) for the GPU ones.
 *  - browser: the GPU tests (named *.gpu.test.ts, in each layer's folder under tests/), in
 *    headless Debian Chromium (SwiftShader WebGPU).
 * Timeouts are generous: the GPUs here are software rasterisers on a 2-core machine.
 */
import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { CHROMIUM_ARGS, SOFTWARE_COMPOSITING } from './tests/support/chromium.js';


export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // Custom matchers (toBeErrno, toThrowErrno), for both projects: browser-safe.
    setupFiles: ['tests/support/setup.ts'],
    // Node first, then the browser: both at once oversubscribe two cores.
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          environment: 'node',
          include: ['tests/**/*.test.ts'],
          // Child processes, not worker threads: dawn.node segfaults the whole run when
          // worker threads that loaded it exit, and a worker's process.env never reaches
          // Mesa (EGL_PLATFORM). Each forked worker owns its own Dawn device.
          pool: 'forks',
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['tests/**/*.gpu.test.ts'],
          sequence: { groupOrder: 1 },
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({
              launchOptions: { executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, SOFTWARE_COMPOSITING] },
            }),
            instances: [{ browser: 'chromium' }],
            // A screenshot of the test iframe says nothing about a GPU failure.
            screenshotFailures: false,
          },
        },
      },
    ],
    maxWorkers: 2,
  },
});
