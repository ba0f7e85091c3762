/**
 * The three retry protocols on the GPU mirror:
 *  - valid-flag's stale-pfn hazard, reproduced by a deterministic interleaving (a whole
 *    invalidation between hmm_range_fault and the driver's check) and found by the same
 *    audit that finds nothing under seq and lock-fallback;
 *  - lock-fallback completes every fault under a storm in which valid-flag times out.
 */
import { describe, expect } from 'vitest';
import type { Dmirror } from '../../src/driver/dmirror.js';
import { totals } from '../../src/driver/records.js';
import { RETRY_PROTOCOLS, type RetryProtocol } from '../../src/driver/retry.js';
import { HmmError, MADV_DONTNEED, MADV_PAGEOUT, PAGE_SIZE, type Process } from '../../src/index.js';
import { checkFrameAccounting } from '../../src/mm/accounting.js';
import { startStorm } from '../../src/workloads/storm.js';
import { mirrorTest } from '../support/mirror.js';
import { ANON, RW } from './machines.js';
import { pagesOf } from './pages.js';

const STORM_SEED = 3;

describe('retry protocols', () => {
  mirrorTest.override('machineOptions', { systemPages: 1 << 14, aperturePages: 1024, devicePages: 512 });

  mirrorTest.for(RETRY_PROTOCOLS.map((p) => [p, p === 'valid-flag' ? 'leaves a stale pfn (A-B-A)' : 'is caught'] as const))('%s: an invalidation between hmm_range_fault and the check %s', async ([protocol], { machine: m, mirror, proc }) => {
    const n = 8;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, ANON);
    const scratch = await proc.mmap(0, 4 * PAGE_SIZE, RW, ANON);
    await proc.write(buf, pagesOf(n, (p) => 0x1000 + p));
    const victim = buf + 2 * PAGE_SIZE;
    let raced = false;
    mirror.setServicer({
      protocol,
      // Once: in the window after hmm_range_fault, the CPU zaps the victim page (its frame
      // is freed and reused by the scratch page) and writes it again in a new frame.
      afterRangeFault: async () => {
        if (raced) return;
        raced = true;
        await proc.madvise(victim, PAGE_SIZE, MADV_DONTNEED);
        await proc.write(scratch, new Uint8Array(4).fill(0xee));
        await proc.write(victim, pagesOf(1, () => 0x2222));
      },
    });
    const r = await mirror.read(buf, n);
    expect(raced).toBe(true);
    const audit = await mirror.audit(buf, n);
    expect(audit.checked).toBe(n);
    const again = new Uint32Array((await mirror.read(buf, n)).data.buffer);
    if (protocol === 'valid-flag') {
      // The driver's `range->valid` check passed: the mirror maps the old frame.
      expect(audit.stale).toEqual([victim]);
      expect(again[2 * 1024]).not.toBe(0x2222);
    } else {
      expect(audit.stale).toEqual([]);
      expect(totals(mirror.servicer.records).retries).toBeGreaterThan(0);
      expect(again[2 * 1024]).toBe(0x2222);
      expect(new Uint32Array(r.data.buffer)[2 * 1024]).toBe(0x2222);
    }
    for (let p = 0; p < n; p++) if (p !== 2) expect(again[p * 1024]).toBe(0x1000 + p);
    checkFrameAccounting(m);
  });

  describe('under a reclaim storm lock-fallback completes every fault; seq times out; valid-flag times out or commits stale pfns', () => {
    mirrorTest.override('seed', STORM_SEED);

    /** Five reads of a buffer under the storm: how many read right, wrong, and the records' EBUSYs and fallbacks. */
    async function outcome(protocol: RetryProtocol, { mirror, proc }: { mirror: Dmirror; proc: Process }): Promise<{ ok: number; wrong: number; ebusy: number; fallbacks: number }> {
      // On the seeded scheduler: the storm's sleeps and the 40 ms range-fault timeout are
      // virtual time, so who wins each race is the seed's choice, not the machine's speed.
      const n = 16;
      const buf = await proc.mmap(0, n * PAGE_SIZE, RW, ANON);
      await proc.write(buf, pagesOf(n, (p) => 0x3000 + p));
      // The storm, made deterministic: the driver spends a moment between hmm_range_fault
      // and its commit (programming the device, say), and every time, reclaim starts paging
      // out a page of the range. It needs the mmap lock for read, so it lands in the window
      // unless the driver holds the lock for write.
      const pending: Promise<void>[] = [];
      let k = 0;
      mirror.setServicer({
        protocol, timeoutMs: 40, fallbackAfter: 2, batchSize: 256, replay: 'batch-flush',
        afterRangeFault: () => {
          pending.push(proc.madvise(buf + (k++ % n) * PAGE_SIZE, PAGE_SIZE, MADV_PAGEOUT));
          return proc.mm.core.sched.sleep(1, 'driver commit latency');
        },
      });
      // And a background storm on top.
      const storms = [1, 2].map((seed) => startStorm(proc, { rate: 2000, start: buf, end: buf + n * PAGE_SIZE, seed, kinds: ['reclaim'] }));
      let ok = 0;
      let wrong = 0;
      try {
        for (let i = 0; i < 5; i++) {
          try {
            const r = await mirror.read(buf, n);
            const words = new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.byteLength / 4);
            let good = true;
            for (let p = 0; p < n; p++) for (let k = 0; k < 1024; k += 97) if (words[p * 1024 + k] !== 0x3000 + p) good = false;
            if (good) ok++;
            else wrong++;
          } catch (e) {
            if (!(e instanceof HmmError && e.code === 'EBUSY')) throw e;
          }
        }
      } finally {
        for (const s of storms) await s.stop();
        await Promise.all(pending);
      }
      const t = totals(mirror.servicer.records);
      return { ok, wrong, ebusy: t.ebusy, fallbacks: t.fallbacks };
    }

    mirrorTest('lock-fallback completes every fault', async ({ mirror, proc }) => {
      const fallback = await outcome('lock-fallback', { mirror, proc });
      expect(fallback).toMatchObject({ ok: 5, wrong: 0, ebusy: 0 });
      expect(fallback.fallbacks).toBeGreaterThan(0);
    });

    mirrorTest('seq never commits a stale pfn, but it can be starved (EBUSY)', async ({ mirror, proc }) => {
      const seq = await outcome('seq', { mirror, proc });
      expect(seq.wrong).toBe(0); // seq never commits a stale pfn ...
      expect(seq.ebusy).toBeGreaterThan(0); // ... but it can be starved: the livelock of the seed thread
    });

    mirrorTest('valid-flag times out or reads data the page no longer holds', async ({ mirror, proc }) => {
      const valid = await outcome('valid-flag', { mirror, proc });
      expect(valid.ok).toBeLessThan(5); // timed out (EBUSY) or read data the page no longer holds
      expect(valid.ebusy + valid.wrong).toBeGreaterThan(0);
    });
  });
});
