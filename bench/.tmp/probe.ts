import { createMachine, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import type { Dmirror } from '../../src/driver/dmirror.js';
import type { DmirrorDevice } from '../../src/driver/dmirror-device.js';
const MiB = 1 << 20;
for (const mib of [4, 64]) {
  const t0 = performance.now();
  const machine = await createMachine({ devices: 1, aperturePages: 32768, devicePages: 16384, systemPages: 1 << 19 });
  const proc = machine.spawn();
  const n = mib * MiB / PAGE_SIZE;
  const ptr = await proc.mmap(0, n * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  await proc.write(ptr, new Uint8Array(n * PAGE_SIZE).fill(7));
  const t1 = performance.now();
  const dev = machine.devices[0] as unknown as DmirrorDevice;
  const m = (await dev.open(proc)) as Dmirror;
  const s0 = m.engine.stats;
  const log: string[] = [];
  const rr = m.engine.runRound.bind(m.engine);
  m.engine.runRound = async (c) => { const x = await rr(c); log.push(`${c.npages}p:rec=${x.faults.length}${x.overflow ? '+ovf' : ''}:done=${x.done}/${x.total}${(x as any).tlb ? ':tlb=' + JSON.stringify((x as any).tlb) : ''}`); return x; };
  const t2 = performance.now();
  const r = await m.read(ptr, n);
  const t3 = performance.now();
  const r2 = await m.read(ptr, n);
  const t4 = performance.now();
  const s = m.engine.stats;
  console.log(JSON.stringify({ mib, setupMs: t1 - t0, openMs: t2 - t1, freshMs: t3 - t2, warmMs: t4 - t3, faults: r.faults, rounds: s.rounds - s0.rounds, faultRecords: s.faultRecords - s0.faultRecords, overflows: s.overflows - s0.overflows, log }));
  await machine.destroy();
}
process.exit(0);
