/**
 * The built site as a person opens it: `npm run build`'s static site served from dist/ by a
 * plain static server on 127.0.0.1 (port 0), in headless Debian Chromium (WebGPU on
 * SwiftShader). Shared by the e2e files; each builds once in its beforeAll.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import { CHROMIUM_ARGS, SOFTWARE_COMPOSITING } from '../support/chromium.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const shots = join(root, 'docs/screenshots');


const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.wasm': 'application/wasm',
};

function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    try {
      const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/` });
  }));
}

export interface Site {
  browser: Browser;
  base: string;
  close(): Promise<void>;
}

export async function openSite(): Promise<Site> {
  await build({ configFile: join(root, 'vite.config.ts'), logLevel: 'error' });
  const { server, url } = await serve(join(root, 'dist'));
  const browser = await launch(true);
  return {
    browser, base: url,
    async close() {
      await browser.close();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Headless Debian Chromium; `software`: software compositing (see SOFTWARE_COMPOSITING). */
function launch(software: boolean): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: software ? [...CHROMIUM_ARGS, SOFTWARE_COMPOSITING] : [...CHROMIUM_ARGS] });
}

/**
 * First contentful paint (ms) of the site's first page in a browser launched for it alone,
 * every frame composited through SwiftShader's GL: the figure before SOFTWARE_COMPOSITING.
 */
export async function firstPaintGpuCompositing(site: Site): Promise<number> {
  const browser = await launch(false);
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
    await page.goto(`${site.base}?stormRate=0`);
    await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint').length > 0, null, { timeout: 60_000 });
    return await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0].startTime);
  } finally {
    await browser.close();
  }
}

/** `init` runs in the page before its own scripts (playwright's addInitScript). */
export async function openPage(site: Site, query = '', init?: () => void): Promise<{ page: Page; errors: string[] }> {
  const page = await site.browser.newPage({ viewport: { width: 1200, height: 1400 } });
  if (init) await page.addInitScript(init);
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${site.base}${query}`);
  await page.waitForSelector('body[data-lab="ready"]', { timeout: 60_000 });
  return { page, errors };
}

export const num = (s: string | null | undefined): number => Number((s ?? '').replace(/,/g, ''));
export const batches = async (page: Page): Promise<number> => num(await page.textContent('#c-batches'));
export const state = (page: Page): Promise<string | undefined> => page.$eval('#status', (e) => (e as HTMLElement).dataset.state);

export async function waitEnded(page: Page, timeout = 60_000): Promise<string> {
  await page.waitForFunction(() => ['done', 'failed', 'stopped'].includes(document.getElementById('status')?.dataset.state ?? ''), null, { timeout });
  return (await state(page)) ?? '';
}

export async function download(page: Page, button: string): Promise<{ text: string; path: string }> {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  const path = await dl.path();
  return { text: readFileSync(path, 'utf8'), path };
}
