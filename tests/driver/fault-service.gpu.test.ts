/**
 * The two fault services (dmirror's range fault, UVM's batched service) behind FaultService,
 * and what an observer sees of them: the service's events, subscribed to — never a wrapped or
 * replaced servicer. (Node and browser: the GPU through the shared gpuTest context.)
 */
import { describe, expect } from 'vitest';
import type { BatchRecord } from '../../src/driver/records.js';
import type { CommandRange, RoundEvent } from '../../src/driver/fault-service.js';
import { BatchFaultService } from '../../src/driver/batch-service.js';
import { RangeFaultService } from '../../src/driver/range-service.js';
import { err } from '../../src/errors.js';
import { PAGE_SIZE } from '../../src/index.js';
import { firstTouch } from '../../src/policy/builtins.js';
import { ANON, RW } from './machines.js';
import { pagesOf } from './pages.js';
import { mirrorTest } from '../support/mirror.js';

const N = 96; // more than one 64-page dmirror_fault range

describe('fault services', () => {
  mirrorTest('the default is dmirror_fault\'s range service; shaping options or a policy select the batch service', async ({ proc, mirror }) => {
    expect(mirror.servicer).toBeInstanceOf(RangeFaultService);
    expect(mirror.servicer.kind).toBe('range');
    expect(mirror.setServicer({ batchSize: 32 })).toBeInstanceOf(BatchFaultService);
    const buf = await proc.mmap(0, N * PAGE_SIZE, RW, ANON);
    mirror.setPolicy(firstTouch(), { start: buf, npages: N, capacityPages: N });
    expect(mirror.servicer.kind).toBe('batch');
    expect(mirror.servicer.opts.policy).toBeDefined();
    mirror.setPolicy(null);
    expect(mirror.servicer.opts.policy).toBeUndefined();
    // No setter: the servicer is replaced only through setServicer / setPolicy.
    expect(Object.getOwnPropertyDescriptor(Object.getPrototypeOf(mirror), 'servicer')?.set).toBeUndefined();
  });

  mirrorTest.for([
    // dmirror_fault services the whole command after the first faulting round: one record.
    { name: 'range', opts: {}, records: [1, 1] },
    { name: 'batch', opts: { batchSize: 32, replay: 'batch' as const }, records: [1, Infinity] },
  ])('$name service: each command, faulting round and record is emitted once, in order, and the gate runs before every round', async ({ name, opts, records }, { proc, mirror }) => {
    const s = mirror.setServicer(opts);
    expect(s.kind).toBe(name);
    const buf = await proc.mmap(0, N * PAGE_SIZE, RW, ANON);
    await proc.write(buf, pagesOf(N, (p) => 0x500 + p));
    const seen: string[] = [];
    const cmds: CommandRange[] = [];
    const rounds: RoundEvent[] = [];
    const batches: BatchRecord[] = [];
    const off = s.events.subscribe({
      onCommand: (c) => { cmds.push({ page: c.page, npages: c.npages, op: c.op }); seen.push('command'); },
      onRound: (r) => { rounds.push(r); seen.push('round'); },
      onBatch: (rec) => { batches.push(rec); seen.push('batch'); },
      beforeRound: async () => { seen.push('gate'); },
    });
    const r = await mirror.read(buf, N);
    const words = new Uint32Array(r.data.buffer);
    for (let p = 0; p < N; p++) expect(words[p * 1024]).toBe(0x500 + p);
    expect(cmds).toEqual([{ page: buf / PAGE_SIZE, npages: N, op: 'read' }]);
    // Every record, once, in order, the same objects the service keeps.
    expect(batches).toEqual(s.records);
    expect(batches.length).toBeGreaterThanOrEqual(records[0]);
    expect(batches.length).toBeLessThanOrEqual(records[1]);
    for (let i = 0; i < batches.length; i++) expect(batches[i]).toBe(s.records[i]);
    // A gate before every round (the first included), a round event per faulting round.
    const gates = seen.filter((x) => x === 'gate').length;
    expect(rounds.length).toBe(gates - 1);
    expect(seen[0]).toBe('command');
    expect(seen[1]).toBe('gate');
    expect(rounds[0].faults).toBeGreaterThan(0);
    expect(rounds.every((x) => x.overflow === false && x.finished === false)).toBe(true);
    // Each batch is reported before the gate of the next round.
    for (let i = 1; i < seen.length; i++) if (seen[i] === 'gate' && seen[i - 1] === 'round') throw new Error(`gate right after a round: ${seen.join(',')}`);
    // Unsubscribed: nothing more arrives.
    off();
    const before = seen.length;
    const again = await proc.mmap(0, N * PAGE_SIZE, RW, ANON);
    await mirror.read(again, N);
    expect(seen.length).toBe(before);
    expect(s.records.length).toBeGreaterThan(batches.length);
  });

  mirrorTest('a gate that throws ends the command with that error before its round runs; listeners after it are not asked', async ({ proc, mirror }) => {
    const s = mirror.setServicer({ batchSize: 32 });
    const buf = await proc.mmap(0, N * PAGE_SIZE, RW, ANON);
    await proc.write(buf, pagesOf(N, (p) => p));
    let gates = 0;
    let later = 0;
    s.events.subscribe({ beforeRound: async () => { if (++gates === 2) throw err('EINTR', 'stopped'); } });
    s.events.subscribe({ beforeRound: async () => { later++; } });
    const rounds0 = mirror.stats.rounds;
    await expect(mirror.read(buf, N)).rejects.toBeErrno('EINTR');
    expect(gates).toBe(2);
    expect(later).toBe(1);
    // The first round ran and faulted; its service ran; the replay never did.
    expect(mirror.stats.rounds - rounds0).toBe(1);
    expect(s.records.length).toBeGreaterThan(0);
  });
});
