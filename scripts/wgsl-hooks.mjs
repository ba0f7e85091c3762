// Makes `import src from './x.wgsl?raw'` work in plain Node the way it does under Vite:
//   node --import tsx --import ./scripts/wgsl-hooks.mjs some-script.ts
// Registering this file installs the hooks below (resolve + load run in Node's loader thread).
import { register } from 'node:module';
import { readFile } from 'node:fs/promises';

const RAW = /\.wgsl\?raw$/;

export async function resolve(specifier, context, next) {
  if (RAW.test(specifier)) {
    const url = new URL(specifier, context.parentURL);
    return { url: url.href, format: 'module', shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (RAW.test(url)) {
    const file = new URL(url);
    file.search = '';
    const text = await readFile(file, 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return next(url, context);
}

// Loaded via --import: register this same file, tagged, as the hooks module. Loaded as
// the hooks module (tagged, in Node's loader thread): only the exports above matter.
if (new URL(import.meta.url).searchParams.get('role') !== 'hooks') {
  register(`${import.meta.url}?role=hooks`);
}
