// `import src from '…/x.wgsl?raw'`: Vite and vitest load it natively; plain Node commands
// use scripts/wgsl-hooks.mjs.
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}
