// `npm start`: serves demo/ on 127.0.0.1 (WebGPU needs a secure context; loopback is one).
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'demo',
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1' },
  build: { outDir: '../dist', emptyOutDir: true, target: 'es2022' },
});
