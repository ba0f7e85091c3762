// `npm start`: the live lab (demo/) on 127.0.0.1 (WebGPU needs a secure context; loopback
// is one). `npm run build`: a static site in dist/ with relative URLs (base './'), so it
// works from any static host and any sub-path; `npm run preview` serves it.
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'demo',
  base: './',
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1' },
  // The lab's worker (src/lab/worker.ts) imports modules: an ES module worker.
  worker: { format: 'es' },
  build: { outDir: '../dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2048 },
});
