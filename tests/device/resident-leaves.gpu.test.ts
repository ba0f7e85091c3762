/**
 * A kernel that translates through the range's leaves runs compiled for 'resident' (no miss
 * path: reach is true) only when every page of its range has a VRAM leaf with write rights
 * (GpuPageTable.leafPool). So with every page there, it completes in one round with every
 * word right; and a range with one VRAM page read-only, or one page missing, still faults
 * there and leaves that page as it was — were the resident pipeline chosen for them, the
 * write would go through the read-only entry, or through slot 0 of the hole.
 */
import { describe, expect } from 'vitest';
import accessWgsl from '../../shaders/app-access.wgsl?raw';
import plainWgsl from '../../shaders/app-mem-plain.wgsl?raw';
import { MirrorEngine, WORDS_PER_PAGE } from '../../src/device/mirror-engine.js';
import { PTE_DEVICE, PTE_WRITE } from '../../src/device/page-table.js';
import { gpuTest as test } from '../support/gpu.js';
import { expectAllEqual } from './mirror-helpers.js';

const BASE = 0x9_0000;
const NPAGES = 4;
/** One invocation per word: word w of the range becomes 3 * (its old value) + w. */
const KERNEL = /* wgsl */ `
fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  reach(c, i, true);
  if (!reached(c)) { return false; }
  st(c, i, 3u * ld(c, i) + i);
  return true;
}
`;
const WORDS = NPAGES * WORDS_PER_PAGE;
const before = (p: number): Uint32Array => Uint32Array.from({ length: WORDS_PER_PAGE }, (_, k) => p * 7919 + k);
const bytes = (a: Uint32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('kernels compiled for a resident range', () => {
  test.for([
    ['every page in VRAM, writable', -1, PTE_DEVICE | PTE_WRITE],
    ['page 2 read-only', 2, PTE_DEVICE],
    ['page 1 missing', 1, -1],
  ] as const)('%s', async ([, odd, oddFlags], { gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 8, deviceSlots: 8 });
    try {
      const [kernel] = await e.createKernels('resident-leaves test', accessWgsl + plainWgsl + KERNEL, [{ entryPoint: 'app' }], { rangeLeaves: true });
      const slots: number[] = [];
      for (let p = 0; p < NPAGES; p++) {
        const slot = e.vram.alloc();
        slots.push(slot);
        e.vram.upload(slot, bytes(before(p)));
        const flags = p === odd ? oddFlags : PTE_DEVICE | PTE_WRITE;
        if (flags >= 0) e.pt.map(BASE + p, slot, flags);
      }
      expect(e.pt.leafPool(BASE, NPAGES)).toBe(odd < 0 ? 'resident' : 'device');
      const cmd = e.createCommand({ op: 'write', page: BASE, npages: NPAGES, kernel, invocations: WORDS, ioWords: 64, data: new Uint32Array(64) });
      const r = await e.runRound(cmd);
      expect(r.missed).toBe(odd < 0 ? 0 : WORDS_PER_PAGE);
      // (one record per workgroup that missed: the page's words are 4 workgroups' invocations)
      expect([...new Set(r.faults.map((f) => `${f.page - BASE}:${f.access}${f.protection ? ':prot' : ''}`))]).toEqual(
        odd < 0 ? [] : [`${odd}:write${oddFlags >= 0 ? ':prot' : ''}`]);
      const got = new Uint32Array((await e.vram.readback(slots)).slice().buffer);
      for (let p = 0; p < NPAGES; p++) {
        const old = before(p);
        const want = p === odd ? old : old.map((v, k) => 3 * v + p * WORDS_PER_PAGE + k);
        expectAllEqual(got.subarray(p * WORDS_PER_PAGE, (p + 1) * WORDS_PER_PAGE), want, `page ${p}`);
      }
      cmd.destroy();
    } finally {
      e.destroy();
    }
  });
});
