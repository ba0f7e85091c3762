/**
 * The live demo end to end, as a person would use it: `npm start`'s page in headless Debian
 * Chromium (WebGPU on SwiftShader), a workload run from the form, the report rendered with
 * every run verified.
 */
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('demo page', () => {
  it('runs a workload on the browser GPU and shows the verified report', async () => {
    const server = await createServer({ configFile: `${root}vite.config.ts`, server: { port: 0, host: '127.0.0.1' }, logLevel: 'error' });
    await server.listen();
    const address = server.httpServer?.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForSelector('#run:not([disabled])', { timeout: 60_000 });
      expect(await page.getAttribute('#smoke', 'data-status')).toBe('pass');
      await page.selectOption('select[name=workload]', 'gather');
      await page.fill('input[name=sizeMiB]', '1');
      await page.click('#run');
      await page.waitForSelector('#report[data-status]', { timeout: 120_000 });
      expect(await page.getAttribute('#report', 'data-status')).toBe('pass');
      expect(await page.locator('#report svg').count()).toBeGreaterThan(2);
      expect(await page.textContent('#log')).toMatch(/gather 1 MiB.*ok in/);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 180_000);
});
