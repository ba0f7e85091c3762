/**
 * The short paths issue 11 added, held to the data they must return:
 *  - MIGRATE_TO_DEV reads its own device pages back as dmirror_do_read does (a copy of the
 *    VRAM slots, no kernel round) when every page moved;
 *  - aperture merge bases are taken only before a kernel that can write runs: a slot mapped
 *    writable by a read, whose frame the CPU then rewrote, is uploaded whole at that point,
 *    so neither that kernel nor a later read sees the old bytes.
 */
import { describe, expect } from 'vitest';
import { checkFrameAccounting, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { mirrorTest } from '../support/mirror.js';
import { firstDiff, pagesOf } from './pages.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV_ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const tag = (p: number, g: number): number => ((g << 20) | p) >>> 0;

describe('issue 11 fast paths', () => {
  mirrorTest('MIGRATE_TO_DEV returns every word of the moved pages without a kernel round', async ({ machines }) => {
    const m = await machines({ systemPages: 4096, devicePages: 1024, aperturePages: 1024 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const n = 64;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => tag(p, 1)));
    const rounds = fd.stats.rounds;
    const r = await fd.migrateToDevice(buf, n);
    expect(r.cpages).toBe(n);
    expect(firstDiff(r.data, pagesOf(n, (p) => tag(p, 1)))).toBeNull();
    expect(fd.stats.rounds - rounds, 'kernel rounds for the read-back').toBe(0);
    // The device's own reads of those pages agree, and so does the CPU after moving them back.
    expect(firstDiff((await fd.read(buf, n)).data, pagesOf(n, (p) => tag(p, 1)))).toBeNull();
    expect((await fd.migrateToSystem(buf, n)).cpages).toBe(n);
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), pagesOf(n, (p) => tag(p, 1)))).toBeNull();
    checkFrameAccounting(m);
    await fd.close();
  });

  mirrorTest('a slot mapped writable by a read, its frame rewritten by the CPU, is current for the next write kernel and read', async ({ machines }) => {
    const m = await machines({ systemPages: 4096, devicePages: 1024, aperturePages: 1024 });
    const proc = m.spawn();
    const fd = await m.devices[0].open(proc);
    const n = 8;
    const buf = await proc.mmap(0, n * PAGE_SIZE, RW, PRIV_ANON);
    await proc.write(buf, pagesOf(n, (p) => tag(p, 1)));
    await fd.read(buf, n); // every slot mapped writable (the CPU PTEs are), no merge base yet
    await proc.write(buf, pagesOf(4, (p) => tag(p, 2))); // the CPU rewrites pages 0..3
    // A write kernel over pages 4..7 (the others stay mapped): the bases are taken now.
    await fd.write(buf + 4 * PAGE_SIZE, pagesOf(4, (k) => tag(4 + k, 3)));
    const want = pagesOf(n, (p) => (p < 4 ? tag(p, 2) : tag(p, 3)));
    expect(firstDiff((await fd.read(buf, n)).data, want), 'device read').toBeNull();
    expect(firstDiff(await proc.read(buf, n * PAGE_SIZE), want), 'CPU read').toBeNull();
    checkFrameAccounting(m);
    await fd.close();
  });
});
