import { createMachine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
import { Baselines, median } from '../gpu-baselines.js';
async function inter(fns: Record<string, () => Promise<void>>, reps: number) {
  const w: Record<string, number[]> = {}; const c: Record<string, number[]> = {};
  for (const [k, f] of Object.entries(fns)) { w[k] = []; c[k] = []; await f(); await f(); }
  for (let i = 0; i < reps; i++) for (const [k, f] of Object.entries(fns)) {
    const t0 = performance.now(); const u0 = process.cpuUsage(); await f(); const u = process.cpuUsage(u0);
    w[k].push(performance.now() - t0); c[k].push((u.user + u.system) / 1000);
  }
  return { mirror: median(w.mirror), bare: median(w.bare), cm: median(c.mirror), cb: median(c.bare) };
}
const MiB = 1 << 20;
const machine = await createMachine({ devices: 1, aperturePages: 32768, devicePages: 16384, systemPages: 1 << 19 });
const proc = machine.spawn();
const dev = machine.devices[0] as unknown as DmirrorDevice;
const m = (await dev.open(proc)) as Dmirror;
const bare = new Baselines(m.engine.device);
for (const mib of [4, 64]) {
  const n = mib * MiB / PAGE_SIZE;
  const ptr = await proc.mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  await proc.write(ptr, new Uint8Array(n * PAGE_SIZE).fill(7));
  await m.read(ptr, n); if (process.env.NOREC_AFTER) process.env.NOREC = '1';
  const cmd = m.engine.createCommand({ op: 'read', page: ptr / PAGE_SIZE, npages: n, scratch: true });
  const br = bare.round(n, m.engine.roundReadbackBytes);
  const r = await inter({ mirror: async () => { cmd.reset(); const x = await m.engine.runRound(cmd); if (!x.finished) throw new Error('x'); }, bare: br }, mib === 4 ? 30 : 8);
  console.log(mib, 'MiB steady wall', r.mirror.toFixed(2), 'bare', r.bare.toFixed(2), 'ratio', (r.mirror / r.bare).toFixed(2), '| cpu', r.cm.toFixed(2), r.cb.toFixed(2), 'ratio', (r.cm / r.cb).toFixed(2));
  cmd.destroy();
}
process.exit(0);
