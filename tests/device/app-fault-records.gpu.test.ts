/**
 * An application kernel's fault records are its uTLB's (app-access.wgsl): a workgroup records
 * each page it missed once, at its end, with the most intrusive access any of its invocations
 * missed it with (as UVM keeps a fault's most intrusive access) and a protection fault where
 * the entry is valid; a page past its miss set (64 entries) is still recorded, once, by the
 * invocations that miss it. The same on an engine that gates stalled workgroups and on one
 * that re-runs them, since both build the set.
 */
import { describe, expect } from 'vitest';
import accessWgsl from '../../shaders/app-access.wgsl?raw';
import plainWgsl from '../../shaders/app-mem-plain.wgsl?raw';
import { MirrorEngine, WORDS_PER_PAGE } from '../../src/device/mirror-engine.js';
import { gpuTest as test } from '../support/gpu.js';
import { patternPage } from './mirror-helpers.js';

const BASE = 0x8_0000;
const NPAGES = 72;
/** Two workgroups of 256 invocations: two uTLBs (sourceOf: a uTLB per 256 invocations). */
const INVOCATIONS = 512;

/**
 * Every invocation misses page 0, the even ones to read it and the odd ones to write it, and
 * writes page 1, mapped read-only (a protection fault). Workgroup 1 also reads 70 more pages,
 * 2 + i % 70: with pages 0 and 1 that is 72 distinct pages, past its set of 64.
 */
const KERNEL = /* wgsl */ `
fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  reach(c, i % 256u, (i % 2u) == 1u);
  reach(c, ${WORDS_PER_PAGE}u + i % 256u, true);
  if (i / 256u == 1u) { reach(c, (2u + i % 70u) * ${WORDS_PER_PAGE}u, false); }
  return reached(c);
}
`;

describe('application kernels record faults as a uTLB', () => {
  test.for([true, false])('one record per (uTLB, page) a round, with the write where any invocation wrote (gated: %s)', async (gated, { gpu }) => {
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 8, deviceSlots: 4, skipStalled: gated });
    try {
      const [kernel] = await e.createKernels('app-fault-records test', accessWgsl + plainWgsl + KERNEL, [{ entryPoint: 'app' }], { stallGate: true });
      const slot = e.sysmem.alloc();
      e.sysmem.upload(slot, patternPage(BASE + 1));
      e.pt.map(BASE + 1, slot, 0);
      const cmd = e.createCommand({ op: 'write', page: BASE, npages: NPAGES, kernel, invocations: INVOCATIONS, ioWords: 64, data: new Uint32Array(64) });
      const r = await e.runRound(cmd);
      expect(r.overflow).toBe(false);
      expect(r.missed).toBe(INVOCATIONS);
      const got = r.faults.map((f) => `${f.source}:${f.page - BASE}:${f.access}${f.protection ? ':prot' : ''}`).sort();
      // Workgroup 1's uTLB is the one that missed page 2; workgroup 0's the other.
      const s1 = r.faults.find((f) => f.page === BASE + 2)!.source;
      const others = [...new Set(r.faults.map((f) => f.source))].filter((s) => s !== s1);
      expect(others.length).toBe(1);
      const s0 = others[0];
      const want = [`${s0}:0:write`, `${s0}:1:write:prot`, `${s1}:0:write`, `${s1}:1:write:prot`];
      for (let p = 2; p < NPAGES; p++) want.push(`${s1}:${p}:read`);
      expect(got).toEqual(want.sort());
      cmd.destroy();
    } finally {
      e.destroy();
    }
  });
  test('a uTLB\'s outstanding read does not hide its write on the same page: one record per (uTLB, page, access kind), whichever workgroup records first', async ({ gpu }) => {
    // 16 workgroups of 256 invocations over 8 uTLBs (sourceOf: workgroups g and g + 8 share
    // one). Workgroup 0 reads page 0 and workgroup 8 writes it; every other workgroup reads
    // page 1. With one pending bit per (uTLB, page) the first to record wins and the other's
    // kind is lost for the round (workgroup 0's read, as llvmpipe runs them).
    const kernel2 = /* wgsl */ `
fn invocation(c: ptr<function, Acc>, i: u32) -> bool {
  let g = i / 256u;
  if (g == 0u) { reach(c, i % 256u, false); }
  else if (g == 8u) { reach(c, i % 256u, true); }
  else { reach(c, ${WORDS_PER_PAGE}u + i % 256u, false); }
  return reached(c);
}
`;
    const e = await MirrorEngine.create(gpu.device, { apertureSlots: 8, deviceSlots: 4 });
    try {
      const [kernel] = await e.createKernels('app-fault-records kinds', accessWgsl + plainWgsl + kernel2, [{ entryPoint: 'app' }], { stallGate: true });
      for (let run = 0; run < 3; run++) {
        const cmd = e.createCommand({ op: 'write', page: BASE, npages: 4, kernel, invocations: 16 * 256, ioWords: 64, data: new Uint32Array(64) });
        const r = await e.runRound(cmd);
        cmd.destroy();
        expect(r.overflow).toBe(false);
        const page0 = r.faults.filter((f) => f.page === BASE).map((f) => `${f.source}:${f.access}`).sort();
        const s = r.faults.find((f) => f.page === BASE)!.source;
        expect(page0, `run ${run}`).toEqual([`${s}:read`, `${s}:write`]);
        // Page 1: one read record for each other uTLB (workgroups 1-7 and 9-15 read it).
        expect(s).toBe(0);
        expect(r.faults.filter((f) => f.page === BASE + 1).map((f) => `${f.source}:${f.access}`).sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map((x) => `${x}:read`));
      }
    } finally {
      e.destroy();
    }
  });
});

