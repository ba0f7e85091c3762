/**
 * HMM_DMIRROR_SNAPSHOT over a huge range gives the CPU up as the kernel's walks do
 * (cond_resched): other tasks run while it walks, and a process that exits meanwhile ends
 * the walk (fatal_signal_pending: EINTR) instead of being walked to the end.
 */
import { describe, expect } from 'vitest';
import { HmmError } from '../../src/index.js';
import { mirrorTest } from '../support/mirror.js';
import { SNAPSHOT_RESCHED_RANGES } from '../../src/driver/snapshot.js';

const HOLE = 0x1000_0000;

describe('SNAPSHOT over a huge range', () => {
  mirrorTest('yields to other tasks while it walks (one reschedule point every 64 ranges)', async ({ proc, mirror: fd }) => {
    const sched = proc.mm.core.sched;
    const pages = 2 ** 16;
    let ran = 0;
    let on = true;
    // Another task on the machine's scheduler (FIFO macrotasks, in Node and the browser):
    // it runs once for each point at which the walk gives the CPU up.
    const other = (async () => {
      while (on) {
        ran++;
        await sched.yield('test: other task');
      }
    })();
    const snap = await fd.snapshot(HOLE, pages);
    on = false;
    await other;
    expect(snap.length).toBe(pages);
    // The walk's reschedule points each let the other task run once at least.
    expect(ran).toBeGreaterThanOrEqual(Math.floor(pages / 64 / SNAPSHOT_RESCHED_RANGES) - 1);
  });

  mirrorTest('a process that exits during the walk ends it with EINTR', async ({ proc, mirror: fd }) => {
    const p = fd.snapshot(HOLE, 2 ** 20).then(() => null, (e: unknown) => e);
    // The exit runs at the walk's first reschedule point.
    void proc.mm.core.sched.yield('test: exit').then(() => proc.exit());
    const e = await p;
    expect(e).toBeInstanceOf(HmmError);
    expect((e as HmmError).code).toBe('EINTR');
  });
});
