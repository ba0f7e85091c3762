/**
 * What one round of the mirror costs next to the bare GPU round trip it is built on.
 *   node --import tsx --import ./scripts/wgsl-hooks.mjs bench/round-trip.ts [hardware|software]
 *
 *  1. bare dispatch (a copy kernel over the same 1M words) + 16-byte copy + mapAsync
 *     vs runRound of a 1024-page read, every page mapped (walk + done bits + fault drain);
 *  2. bare writeBuffer + onSubmittedWorkDone vs a PTE change + flush + fence (shootdown);
 *  3. a full fault round trip: 1024 unmapped pages → records → service → replay.
 * Medians over REPS iterations after warm-up.
 */
import { requestGpuDevice } from '../src/device/gpu.js';
import { MirrorEngine } from '../src/device/mirror-engine.js';
import { PTE_WRITE } from '../src/device/page-table.js';

const prefer = process.argv[2] === 'software' ? 'software' : 'hardware';
const ctx = await requestGpuDevice({ prefer, label: 'bench' });
const { device } = ctx;
console.log(`adapter: ${ctx.adapterName} (software=${ctx.isSoftware})`);

const NPAGES = 1024;
const WORDS = NPAGES * 1024;
const WARM = 5;
const REPS = Number(process.env.REPS ?? 30);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn: () => Promise<void>, reps = REPS): Promise<number> {
  for (let i = 0; i < WARM; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(0)} us` : `${ms.toFixed(2)} ms`);

// --- 1. dispatch round trip ------------------------------------------------------------
const bareModule = device.createShaderModule({
  code: `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>,
        @builtin(local_invocation_index) l: u32) {
  let i = (wg.x + wg.y * n.x) * 256u + l;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}`,
});
const barePipe = await device.createComputePipelineAsync({ layout: 'auto', compute: { module: bareModule, entryPoint: 'main' } });
const src = device.createBuffer({ size: WORDS * 4, usage: GPUBufferUsage.STORAGE });
const dst = device.createBuffer({ size: WORDS * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const bareBind = device.createBindGroup({
  layout: barePipe.getBindGroupLayout(0),
  entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }],
});
const groups = WORDS / 256;
const gx = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
const bare = await time(async () => {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(barePipe);
  pass.setBindGroup(0, bareBind);
  pass.dispatchWorkgroups(gx, Math.ceil(groups / gx));
  pass.end();
  enc.copyBufferToBuffer(dst, 0, staging, 0, 16);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  staging.unmap();
});

const engines: Record<string, MirrorEngine> = {};
const rounds: Record<string, number> = {};
for (const checkErrors of [true, false]) {
  const e = await MirrorEngine.create(device, { apertureSlots: NPAGES, deviceSlots: 16, checkErrors });
  const base = 2 ** 33; // pages above 2^32: the walk uses the high word
  for (let p = 0; p < NPAGES; p++) e.pt.map(base + p, p, PTE_WRITE);
  e.flush();
  const cmd = e.createCommand({ op: 'read', page: base, npages: NPAGES });
  rounds[String(checkErrors)] = await time(async () => {
    cmd.reset();
    const r = await e.runRound(cmd);
    if (!r.finished) throw new Error('bench: round did not finish');
  });
  engines[String(checkErrors)] = e;
}
console.log(`\n1. ${NPAGES}-page read (${WORDS} invocations), all mapped:`);
console.log(`   bare dispatch + copy + mapAsync        ${fmt(bare)}`);
console.log(`   runRound (error scopes on)             ${fmt(rounds.true)}   ratio ${(rounds.true / bare).toFixed(2)}`);
console.log(`   runRound (error scopes off)            ${fmt(rounds.false)}   ratio ${(rounds.false / bare).toFixed(2)}`);

// --- 2. shootdown ----------------------------------------------------------------------
const e = engines.false;
const tiny = device.createBuffer({ size: 4, usage: GPUBufferUsage.COPY_DST });
const one = new Uint32Array([1]);
const bareFence = await time(async () => {
  device.queue.writeBuffer(tiny, 0, one);
  await device.queue.onSubmittedWorkDone();
}, REPS * 3);
let flip = 0;
const remap = await time(async () => {
  flip ^= 1;
  e.pt.map(2 ** 33 + 5, 5, flip ? 0 : PTE_WRITE); // downgrade/upgrade one PTE
  e.flush();
  await e.fence();
}, REPS * 3);
const zap = await time(async () => {
  e.pt.map(2 ** 34, 7, PTE_WRITE);
  await e.shootdown(2 ** 34, 1); // zap frees 3 tables; the map re-creates them
}, REPS * 3);
console.log('\n2. shootdown:');
console.log(`   bare writeBuffer + onSubmittedWorkDone ${fmt(bareFence)}`);
console.log(`   map (1 PTE) + flush + fence            ${fmt(remap)}   ratio ${(remap / bareFence).toFixed(2)}`);
console.log(`   map + shootdown (unmap+flush+fence)    ${fmt(zap)}   ratio ${(zap / bareFence).toFixed(2)}`);

// --- 3. fault round trip ---------------------------------------------------------------
{
  const f = await MirrorEngine.create(device, { apertureSlots: NPAGES, deviceSlots: 16, checkErrors: false });
  const base = 2 ** 32;
  let records = 0;
  let faultRounds = 0;
  const cmd = f.createCommand({ op: 'read', page: base, npages: NPAGES });
  const t = await time(async () => {
    f.pt.unmap(base, NPAGES);
    cmd.reset();
    const out = await f.runCommand(cmd, async (faults) => {
      records += faults.length;
      for (const x of faults) if (!f.pt.lookup(x.page)) f.pt.map(x.page, x.page - base, 0);
    });
    faultRounds += out.faultRounds;
  }, 10);
  console.log(`\n3. ${NPAGES} pages all unmapped → fault, service (map), replay:`);
  console.log(`   runCommand                             ${fmt(t)}   (${(records / (10 + WARM)).toFixed(0)} records, ` +
    `${(faultRounds / (10 + WARM)).toFixed(1)} fault rounds per run; ring ${f.faults.capacity}, ${f.faultSources} uTLBs)`);
  f.destroy();
}

for (const x of Object.values(engines)) x.destroy();
device.destroy();
