/**
 * A mirror of an exited process is let go at the notifier's RELEASE (exit_mmap), as its GPU
 * buffers already are: its device no longer holds it (100 exited mirrors kept +50 MiB
 * until close()); close() still works, commands still fail with EINVAL.
 */
import { describe, expect } from 'vitest';
import { HmmError, MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE } from '../../src/index.js';
import { mirrorTest } from '../support/mirror.js';

describe('mirror release at RELEASE', () => {
  // The machine only (fixtures are lazy: no `mirror` asked for, none opened): four processes, a mirror each.
  mirrorTest('exit unregisters the mirror from its device; close() afterwards still resolves', async ({ machine: m }) => {
    const dev = m.devices[0];
    const fds = [];
    for (let i = 0; i < 4; i++) {
      const p = m.spawn();
      const buf = await p.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      const fd = await dev.open(p);
      await fd.read(buf, 4);
      fds.push({ p, fd, buf });
    }
    expect(dev.mirrors.size).toBe(4);
    for (const { p } of fds.slice(0, 3)) await p.exit();
    expect(dev.mirrors.size).toBe(1);
    expect(dev.mirrors.has(fds[3].fd)).toBe(true);
    const e = await fds[0].fd.read(fds[0].buf, 1).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(HmmError);
    expect((e as HmmError).code).toBe('EINVAL');
    for (const { fd } of fds) await fd.close();
    expect(dev.mirrors.size).toBe(0);
  });
});
